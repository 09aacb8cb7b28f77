-- Flags beyond the restart engine's limits (2,000,000 restarts).
local process = require "process"
local supervisor = require "supervisor"
return supervisor.spec {
  name = "svc", max_frequency = 2000000,
  init = function(children)
    return children:add(supervisor.worker(function()
      return process.new_subject()
    end):id("a"))
  end,
}
