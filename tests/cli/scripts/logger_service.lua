-- tests/cli/test_logger.sh: a service (one worker) whose reloads are log
-- events under --log-format json.
local supervisor = require "supervisor"
local process = require "process"
return supervisor.spec {
  name = "svc",
  init = function(children)
    return children:add(supervisor.worker(function()
      local reply = process.new_subject()
      process.spawn_link(function()
        process.send(reply, process.new_subject())
        process.sleep_forever()
      end)
      return process.receive(reply, 5000)
    end):id("w"))
  end,
}
