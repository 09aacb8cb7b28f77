-- idle: spawn N processes that block in receive; the time until all of
-- them are blocked, and the memory they hold (total host memory after
-- minus before, divided by N).  Same scheme in idle.erl: the last process
-- spawned tells the bench process when it is blocked (FIFO run queue:
-- every earlier one is blocked by then).
--
--   arbor tests/bench/idle.lua [N]    (default 100000)
local process = require "process"
local core = require "arbor.core"

local n = math.tointeger(tonumber(arg[1])) or 100000
local spawn, now = process.spawn, core.now
local new_subject, send, receive =
  process.new_subject, process.send, process.receive

local function idle(ready)
  local inbox = new_subject()
  if ready then send(ready, true) end
  receive(inbox)
end

-- core.compact() rebuilds the host's tables to their contents first: a
-- Lua table keeps the capacity of its busiest moment (here, garbage pids
-- of the spawn burst), which is not memory the idle processes hold.
local function memory()
  core.compact()
  local lua, c = core.memory()
  return lua + c
end

local ready = new_subject()
local before = memory()
local t0 = now()
for _ = 1, n - 1 do spawn(idle) end
spawn(idle, ready)
receive(ready)
local ms = now() - t0
local after = memory()
assert(core.process_count() >= n)
print(string.format("RESULT idle_spawn %.1f ms", ms))
print(string.format("RESULT idle_memory %.1f bytes/proc", (after - before) / n))
