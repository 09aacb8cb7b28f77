-- restart: a one_for_one supervisor with one worker that crashes on
-- command; N crash -> restart cycles, each waiting for the new child.
-- The worker is a plain linked process; on every start it sends its new
-- subject to the bench process, which sends "crash" to it and waits for
-- the next one.  Every BATCH cycles the supervisor is stopped and a fresh
-- one started, outside the timed part, as restart.erl must do to keep
-- OTP's restart history short.  REPORTS 0 silences crash reports
-- (core.quiet), as restart.erl turns the logger off; REPORTS 1 writes
-- them to stderr, as restart.erl then does.  Same scheme in restart.erl /
-- restart_sup.erl.
--
--   arbor tests/bench/restart.lua [N [BATCH [REPORTS]]]  (100000 100 0)
local process = require "process"
local supervisor = require "supervisor"
local core = require "arbor.core"

local n = math.tointeger(tonumber(arg[1])) or 100000
local batch = math.tointeger(tonumber(arg[2])) or 100
local reports = (math.tointeger(tonumber(arg[3])) or 0) ~= 0
assert(n >= 1 and batch >= 1, "N and BATCH must be >= 1")
local new_subject, send, receive =
  process.new_subject, process.send, process.receive

core.quiet(not reports)

-- The start function runs in the supervisor; the worker's subject comes
-- back to it over a hand-off subject (the child must own its subject).
local function start_worker(bench)
  local hand = new_subject()
  process.spawn_link(function()
    local inbox = new_subject()
    send(hand, inbox)
    send(bench, inbox)
    receive(inbox)
    error("crash")
  end)
  return receive(hand)
end

local bench = new_subject()
local function fresh_supervisor()
  return assert(supervisor.start_spec {
    argument = bench,
    strategy = "one_for_one",
    max_frequency = 1000000, -- the engine allows up to 2^20
    frequency_period = 1,
    init = function(children)
      return children:add(supervisor.worker(start_worker))
    end,
  })
end

local ms, done = 0, 0
while done < n do
  local k = math.min(batch, n - done)
  local sup = fresh_supervisor()
  local worker = receive(bench)
  local t0 = core.now()
  for _ = 1, k do
    send(worker, "crash")
    worker = receive(bench)
  end
  ms = ms + (core.now() - t0)
  supervisor.stop(sup)
  done = done + k
end
print(string.format("RESULT restart %.1f ms", ms))
print(string.format("RESULT restart_cycle %.3f us", ms * 1000 / n))
