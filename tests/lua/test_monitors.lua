-- test_monitors: monitors and DOWN messages.
local lib = require "testlib"
local process = require "process"

local self, spawn = process.self, process.spawn
local send, receive = process.send, process.receive
local new_selector, select = process.new_selector, process.select
local down = lib.down

-- A process that waits for one message on its own subject and then
-- returns ("normal") or raises it.  Returns pid, own subject.
local function start_waiter()
  local hand = process.new_subject()
  local p = spawn(function()
    local own = process.new_subject()
    send(hand, own)
    local r = receive(own)
    if r ~= "normal" then error(r, 0) end
  end)
  return p, receive(hand, 1000)
end

local function select_down(m, timeout)
  return select(new_selector():selecting_process_down(m), timeout)
end

local function no_down(m, timeout, what)
  lib.same({ select_down(m, timeout or 0) }, { nil, "timeout" },
           what or "no DOWN")
end

lib.test("one DOWN with the reason", function()
  local p, own = start_waiter()
  local m = process.monitor(p)
  lib.ok(tostring(m):match("^Monitor<"), "tostring: " .. tostring(m))
  no_down(m, 0, "no DOWN while the target lives")
  send(own, "the reason")
  local d = down(m)
  lib.ok(rawequal(d.monitor, m), "monitor")
  lib.ok(d.pid == p, "pid")
  lib.eq(d.reason, "the reason", "reason")
  no_down(m, 0, "only one DOWN")
  no_down(m, 20, "only one DOWN (waiting)")
  lib.no_leftovers()
end)

lib.test("DOWN reasons: normal, killed, exit signal, table", function()
  local cases = {
    { "normal", function(_, own) send(own, "normal") end, "normal" },
    { "kill", function(p) process.kill(p) end, "killed" },
    { "exit", function(p) process.exit(p, "shutdown") end, "shutdown" },
  }
  for _, c in ipairs(cases) do
    local p, own = start_waiter()
    local m = process.monitor(p)
    c[2](p, own)
    lib.eq(down(m).reason, c[3], c[1])
  end
  local t = { "table reason" }
  local p, own = start_waiter()
  local m = process.monitor(p)
  send(own, t)
  lib.copy_of(down(m).reason, t, "a table reason arrives as a copy")
  lib.no_leftovers()
end)

lib.test("noproc at once for a dead pid", function()
  local p, own = start_waiter()
  local m0 = process.monitor(p)
  send(own, "normal")
  down(m0)
  local m = process.monitor(p)
  local d = select_down(m, 0)
  lib.ok(d ~= nil, "DOWN is there at once (timeout 0)")
  lib.eq(d.reason, "noproc", "reason")
  lib.ok(d.pid == p, "pid")
  lib.ok(rawequal(d.monitor, m), "monitor")
  no_down(m, 0, "only one DOWN")
  lib.raises(function() process.monitor("x") end, "bad argument #1",
             "monitor(string)")
  lib.no_leftovers()
end)

lib.test("several monitors fan out", function()
  local p, own = start_waiter()
  local mine = {}
  for i = 1, 3 do mine[i] = process.monitor(p) end
  lib.ok(not rawequal(mine[1], mine[2]), "each call makes a new monitor")
  -- Two other processes monitor p as well and report their DOWN.
  local report = process.new_subject()
  local watchers = {}
  for i = 1, 2 do
    local hand = process.new_subject()
    watchers[i] = spawn(function()
      local m = process.monitor(p)
      send(hand, "monitoring")
      local d = select(new_selector():selecting_process_down(m))
      send(report, { i, d.reason, d.pid == p })
    end)
    lib.eq(receive(hand, 1000), "monitoring", "watcher " .. i)
  end
  local wm = { process.monitor(watchers[1]), process.monitor(watchers[2]) }
  send(own, "fan out")
  for i = 1, 3 do
    local d = down(mine[i])
    lib.eq(d.reason, "fan out", "main's monitor " .. i)
    lib.ok(rawequal(d.monitor, mine[i]), "each DOWN names its monitor")
  end
  local got = {}
  for _ = 1, 2 do
    local r = receive(report, 1000)
    got[r[1]] = r
  end
  for i = 1, 2 do
    lib.eq(got[i][2], "fan out", "watcher " .. i .. " reason")
    lib.eq(got[i][3], true, "watcher " .. i .. " pid")
    lib.eq(down(wm[i]).reason, "normal", "watcher " .. i .. " ended")
  end
  lib.no_leftovers()
end)

lib.test("one selector over several monitors takes DOWNs in order",
         function()
  local pids, owns, mons = {}, {}, {}
  for i = 1, 3 do
    pids[i], owns[i] = start_waiter()
    mons[i] = process.monitor(pids[i])
  end
  local sel = new_selector()
  for i = 1, 3 do
    sel:selecting_process_down(mons[i], function(d) return { i, d.reason } end)
  end
  -- End them in the order 2, 3, 1, each fully before the next.
  for _, i in ipairs { 2, 3, 1 } do
    local sync = process.monitor(pids[i])
    send(owns[i], "r" .. i)
    down(sync)
  end
  local got = {}
  for k = 1, 3 do got[k] = select(sel, 0) end
  lib.same(got, { { 2, "r2" }, { 3, "r3" }, { 1, "r1" } }, "DOWN order")
  lib.no_leftovers()
end)

lib.test("demonitor drops a DOWN already queued", function()
  local p, own = start_waiter()
  local m = process.monitor(p)
  local sync = process.monitor(p)
  send(own, "gone")
  down(sync) -- p has ended; m's DOWN is queued
  process.demonitor(m)
  no_down(m, 0, "the queued DOWN is gone")
  no_down(m, 20, "and does not come back")
  process.demonitor(m) -- twice is harmless
  lib.no_leftovers()
end)

lib.test("demonitor before the end: no DOWN", function()
  local p, own = start_waiter()
  local m = process.monitor(p)
  local sync = process.monitor(p)
  process.demonitor(m)
  send(own, "gone")
  lib.eq(down(sync).reason, "gone", "the other monitor still fires")
  no_down(m, 0, "no DOWN for the demonitored one")
  lib.no_leftovers()
end)

lib.test("demonitor after the DOWN was taken is harmless", function()
  local p, own = start_waiter()
  local m = process.monitor(p)
  send(own, "normal")
  down(m)
  process.demonitor(m)
  no_down(m, 0)
  lib.raises(function() process.demonitor(p) end, "bad argument #1",
             "demonitor(pid)")
  lib.no_leftovers()
end)

lib.test("monitors do not kill the monitoring process", function()
  local report = process.new_subject()
  local victim, vown = start_waiter()
  local hand = process.new_subject()
  local watcher = spawn(function()
    local own = process.new_subject()
    local m = process.monitor(victim)
    send(hand, own)
    local d = select(new_selector():selecting_process_down(m))
    send(report, { d.reason, process.is_alive(self()) })
    receive(own)
  end)
  local wown = receive(hand, 1000)
  local wm = process.monitor(watcher)
  send(vown, "victim crash")
  lib.same(receive(report, 1000), { "victim crash", true },
           "the watcher got the DOWN and lives")
  lib.eq(process.is_alive(watcher), true, "watcher alive")
  send(wown, "stop")
  lib.eq(down(wm).reason, "normal", "the watcher ends normally")
  -- main, a non-trapper, monitoring a crash: still here.
  local p, own = start_waiter()
  local m = process.monitor(p)
  send(own, "crash")
  lib.eq(down(m).reason, "crash", "reason")
  lib.eq(process.is_alive(self()), true, "main alive")
  lib.no_leftovers()
end)

lib.test("a monitor owner's death cleans up its monitors", function()
  local target, town = start_waiter()
  local hand = process.new_subject()
  local owner = spawn(function()
    local own = process.new_subject()
    for _ = 1, 10 do process.monitor(target) end
    send(hand, own)
    receive(own)
  end)
  local oown = receive(hand, 1000)
  local mo = process.monitor(owner)
  send(oown, "stop")
  down(mo)
  local mt = process.monitor(target)
  send(town, "later")
  lib.eq(down(mt).reason, "later", "target ends after the owner")
  lib.no_leftovers()
end)
