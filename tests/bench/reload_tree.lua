--[[
reload_tree.lua: a service with many workers in one supervisor, for the
reload benchmark (tests/bench/reload.sh) and the reload scale test
(tests/cli/test_reload_scale.sh).

Its shape comes from reload_shape.lua, a module next to it (required from
the script's folder, so a reload reads it again):

  return { n = 20000, strategy = "one_for_one", keep = "all" or "even",
           extra = 0, changed = 0, value = "1" }

Children c1 .. cn (only the even ones with keep = "even"), and x<i> after
c<i> for i <= extra; child c<changed> has `value` as a constant in its
code, the others "1".  Each worker is a process of its own that sleeps
(the start function waits for it to hand over its subject).
]]
local process = require "process"
local supervisor = require "supervisor"
local shape = require "reload_shape"

local function worker(id, value)
  return supervisor.worker(function()
    local hand = process.new_subject()
    process.spawn_link(function()
      local _ = value
      process.send(hand, process.new_subject())
      process.sleep_forever()
    end)
    return process.receive(hand, 5000)
  end):id(id)
end

return supervisor.spec {
  name = "bench", strategy = shape.strategy or "one_for_one",
  max_frequency = 3, frequency_period = 5,
  init = function(children)
    for i = 1, shape.n do
      if shape.keep ~= "even" or i % 2 == 0 then
        children:add(worker("c" .. i, i == shape.changed and shape.value
                                      or "1"))
      end
      if i <= (shape.extra or 0) then children:add(worker("x" .. i, "1")) end
    end
    return children
  end,
}
