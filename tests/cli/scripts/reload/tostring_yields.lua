-- Raises a value whose __tostring tries to yield and to block: neither
-- can happen inside a metamethod called from C.
local process = require "process"
error(setmetatable({}, {
  __tostring = function()
    coroutine.yield("x")
    process.receive(process.new_subject())
    return "unreachable"
  end,
}))
