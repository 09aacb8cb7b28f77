-- Main is linked to a process that crashes with a reason whose
-- __tostring misbehaves (arg[1]: raises, loops, non_string, yields).
local process = require "process"
local how = arg[1]
local bodies = {
  raises = function() error("boom") end,
  loops = function() while true do end end,
  non_string = function() return {} end,
  yields = function() process.sleep(1) return "never" end,
}
local reason = setmetatable({}, { __tostring = bodies[how] })
process.spawn_link(function() error(reason) end)
process.sleep_forever()
