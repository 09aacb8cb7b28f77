-- spawn_exit: spawn N processes that return at once; time until all are
-- gone.  Scheme (the same in spawn_exit.erl): spawn N, monitor the last
-- one, wait for its DOWN, then wait (1 ms naps) until the process count is
-- back where it started.  With one scheduler the run queue is FIFO, so the
-- last DOWN means all are gone and the nap loop never runs.
--
--   arbor tests/bench/spawn_exit.lua [N]    (default 1000000)
local process = require "process"
local core = require "arbor.core"

local n = math.tointeger(tonumber(arg[1])) or 1000000
local spawn, now = process.spawn, core.now
local function noop() end

collectgarbage("collect")
local base = core.process_count()
local t0 = now()
for _ = 1, n - 1 do spawn(noop) end
local last = spawn(noop)
local m = process.monitor(last)
process.select(process.new_selector():selecting_process_down(m))
while core.process_count() > base do process.sleep(1) end
local ms = now() - t0
print(string.format("RESULT spawn_exit %.1f ms", ms))
print(string.format("RESULT spawn_exit_rate %.0f procs/s", n / (ms / 1000)))
