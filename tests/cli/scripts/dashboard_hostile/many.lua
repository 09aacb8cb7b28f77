-- A tree for tests/cli/test_dashboard_hostile.sh: one worker that holds
-- $MANY_PROCESSES idle processes (default 100,000), and prints
-- "spawned N" once they all exist.
local process = require "process"
local supervisor = require "supervisor"

local n = math.tointeger(tonumber(os.getenv("MANY_PROCESSES") or "")) or 100000

return supervisor.spec {
  name = "many",
  strategy = "one_for_one",
  init = function(children)
    return children:add(supervisor.worker(function()
      local ready = process.new_subject()
      process.spawn_link(function()
        for _ = 1, n do
          process.spawn(function() process.receive(process.new_subject()) end)
        end
        local inbox = process.new_subject()
        process.send(ready, inbox)
        print("spawned " .. n)
        io.stdout:flush()
        process.receive(inbox)
      end)
      return process.receive(ready, 60000)
    end):id("holder"))
  end,
}
