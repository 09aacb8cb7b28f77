-- tests/cli/test_logger.sh: user events of every kind, a crash and a
-- supervisor restart, as one host logs them.
local logger = require "logger"
local process = require "process"
local supervisor = require "supervisor"

logger.info("plain %d", 1)
logger.debug("hidden at info")
local c = {}
c.self = c
logger.warning{ msg = "fields", user = "ann", n = 3, ok = true,
                t = { 1, { x = "y" } }, cyc = c,
                ctl = "a\nb\0c\27[31m", bad = "\255\254ok" }

local starts = 0
local done = process.new_subject()
assert(supervisor.start_spec {
  name = "web", strategy = "one_for_one", max_frequency = 5,
  frequency_period = 5,
  init = function(children)
    return children:add(supervisor.worker(function()
      starts = starts + 1
      local n = starts
      local reply = process.new_subject()
      process.spawn_link(function()
        local inbox = process.new_subject()
        process.send(reply, inbox)
        if n == 1 then
          process.send(done, inbox)
          process.receive(inbox) -- main says when: the start is over
          error({ code = 7, why = "first run" })
        end
        process.send(done, "second")
        process.sleep_forever()
      end)
      return process.receive(reply, 5000)
    end):id("worker"))
  end,
})
process.send(process.receive(done, 10000), "crash now")
assert(process.receive(done, 10000) == "second", "the worker restarted")
logger.info("done")
