-- tests/cli/test_reports.sh: a tree of two workers started and stopped,
-- for its progress reports (OTP's "child started"), which are debug
-- events.
local supervisor = require "supervisor"
local actor = require "actor"
local function worker(id)
  return supervisor.worker(function()
    return actor.start(0, function(_, n) return actor.continue(n) end)
  end):id(id)
end
local sup = supervisor.start_spec(supervisor.spec {
  name = "app",
  init = function(children) return children:add(worker("db")):add(worker("web")) end,
})
supervisor.stop(sup)
