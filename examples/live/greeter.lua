-- greeter.lua: a module the tree requires from its own folder; editing
-- it restarts the children whose code uses it.
local M = {}

local GREETING = "tick"

function M.tick(name)
  io.write(GREETING, " from ", name, "\n")
  io.flush()
end

return M
