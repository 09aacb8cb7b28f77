-- down_select: arbor-only micro for issue 14 item 5 (what a DOWN and a
-- select cost).  Two phases, each timed with core.now():
--   down:   spawn N processes that wait on a subject, monitor each, tell
--           them all to return, and take every DOWN with process.select
--           (one selector per monitor: the common "wait for this one"
--           shape that call uses);
--   select: M round trips with one partner process, the receiving side
--           using process.select on a selector built once (a server's
--           loop) and the sending side a fresh selector each time (call's
--           shape).
--
--   arbor tests/bench/down_select.lua [N] [M]   (defaults 100000, 100000)
local process = require "process"
local core = require "arbor.core"

local n = math.tointeger(tonumber(arg[1])) or 100000
local m = math.tointeger(tonumber(arg[2])) or 100000
local spawn, send, select, monitor = process.spawn, process.send,
  process.select, process.monitor
local new_subject, new_selector = process.new_subject, process.new_selector
local now = core.now

-- Phase 1: DOWNs.
local gate = new_subject()
local pids = {}
local function waiter(to)
  local inbox = new_subject()
  send(to, inbox)
  process.receive(inbox)
end
for i = 1, n do pids[i] = spawn(waiter, gate) end
local inboxes = {}
for i = 1, n do inboxes[i] = process.receive(gate) end
local t0 = now()
local mons = {}
for i = 1, n do mons[i] = monitor(pids[i]) end
for i = 1, n do send(inboxes[i], true) end
local normal = 0
for i = 1, n do
  local down = select(new_selector():selecting_process_down(mons[i]))
  if down.reason == "normal" and down.pid == pids[i] then
    normal = normal + 1
  end
end
local ms = now() - t0
assert(normal == n, "every DOWN is normal")
print(string.format("RESULT down %.1f ms", ms))
print(string.format("RESULT down_rate %.0f downs/s", n / (ms / 1000)))
pids, inboxes, mons = nil, nil, nil

-- Phase 2: select round trips.
local mine = new_subject()
local partner = spawn(function(back)
  local inbox = new_subject()
  send(back, inbox)
  local sel = new_selector():selecting(inbox)
  for _ = 1, m do
    local reply_to = select(sel)
    send(reply_to, true)
  end
end, mine)
local theirs = process.receive(mine)
t0 = now()
for _ = 1, m do
  send(theirs, mine)
  select(new_selector():selecting(mine))
end
ms = now() - t0
print(string.format("RESULT select_rtt %.1f ms", ms))
print(string.format("RESULT select_rate %.0f round trips/s", m / (ms / 1000)))
assert(partner)
