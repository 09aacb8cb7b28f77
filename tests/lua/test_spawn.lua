-- test_spawn: spawn, spawn_link, self, is_alive and pids.
local lib = require "testlib"
local process = require "process"

local self, spawn, spawn_link = process.self, process.spawn, process.spawn_link
local send, receive = process.send, process.receive
local down, trapping = lib.down, lib.trapping

-- Spawns fn() (no arguments) with a monitor that is in place before fn
-- runs.  Returns pid, monitor.
local function spawn_monitored(fn)
  local p, m = lib.spawn_monitored(function() return fn() end)
  return p, m
end

lib.test("spawn runs the function with its arguments", function()
  local s = process.new_subject()
  local t = {}
  local p = spawn(function(...)
    local stop = process.new_subject()
    send(s, { n = select("#", ...), stop = stop, ... })
    receive(stop)
  end, "a", 2, nil, t, false)
  local got = receive(s, 1000)
  lib.eq(got.n, 5, "argument count")
  lib.eq(got[1], "a", "arg 1")
  lib.eq(got[2], 2, "arg 2")
  lib.eq(got[3], nil, "arg 3")
  lib.copy_of(got[4], t, "a table argument (sent back: a copy)")
  lib.eq(got[5], false, "arg 5")
  local m = process.monitor(p)
  send(got.stop, true)
  lib.eq(down(m).reason, "normal", "reason")
  lib.no_leftovers()
end)

lib.test("spawn with no arguments", function()
  local s = process.new_subject()
  local _, m = spawn_monitored(function(...) send(s, select("#", ...)) end)
  lib.eq(receive(s, 1000), 0, "argument count")
  lib.eq(down(m).reason, "normal", "reason")
  lib.no_leftovers()
end)

lib.test("a spawned process is alive at once and runs", function()
  local s = process.new_subject()
  local p, m = spawn_monitored(function() send(s, "ran") end)
  lib.eq(process.is_alive(p), true, "alive right after spawn")
  lib.eq(receive(s, 1000), "ran", "message")
  lib.eq(down(m).reason, "normal", "reason")
  lib.no_leftovers()
end)

lib.test("a returning process ends normal", function()
  local p, m = spawn_monitored(function() return 1, 2, 3 end)
  local d = down(m)
  lib.eq(d.reason, "normal", "reason")
  lib.ok(d.pid == p, "DOWN pid")
  lib.eq(process.is_alive(p), false, "is_alive after the end")
  lib.no_leftovers()
end)

lib.test("self() is the pid spawn returned", function()
  local s = process.new_subject()
  local p, m = spawn_monitored(function() send(s, self()); send(s, self()) end)
  local a, b = receive(s, 1000), receive(s, 1000)
  lib.ok(a == p, "self() inside == pid from spawn")
  lib.ok(rawequal(a, b), "self() twice gives one object")
  lib.ok(p ~= self(), "child pid ~= main pid")
  lib.ok(self() == self(), "main's self() is stable")
  lib.eq(tostring(a), tostring(p), "tostring")
  down(m)
  lib.no_leftovers()
end)

lib.test("pids index the same table entry from spawn and from self()",
         function()
  local s = process.new_subject()
  local seen, names = {}, {}
  for i = 1, 5 do
    local p = spawn(function()
      local g = process.new_subject()
      send(s, g)
      receive(g)
      send(s, self())
      receive(g)
    end)
    seen[p] = i
    names[i] = tostring(p)
  end
  local gates = {}
  for i = 1, 5 do gates[i] = receive(s, 1000) end
  -- Only the table keys hold the pids now: a collection must not break
  -- their identity.
  collectgarbage("collect")
  collectgarbage("collect")
  for i = 1, 5 do send(gates[i], true) end
  local order, mons = {}, {}
  for _ = 1, 5 do
    local p = receive(s, 1000)
    local i = seen[p]
    lib.ok(i ~= nil, "pid from self() found in the table: " .. tostring(p))
    lib.eq(tostring(p), names[i], "tostring of the same pid")
    order[#order + 1] = i
    seen[p] = nil
    mons[i] = process.monitor(p)
  end
  table.sort(order)
  lib.same(order, { 1, 2, 3, 4, 5 }, "each pid once")
  lib.eq(next(seen), nil, "all entries found and removed")
  for i = 1, 5 do send(gates[i], true) end
  for i = 1, 5 do lib.eq(down(mons[i]).reason, "normal", "process " .. i) end
  lib.no_leftovers()
end)

lib.test("pids have __tostring and __eq", function()
  local s = process.new_subject()
  local a = spawn(function() receive(process.new_subject()) end)
  local b = spawn(function() receive(process.new_subject()) end)
  lib.ok(tostring(a):match("^<0%.%d+%.%d+>$"), "format of " .. tostring(a))
  lib.ok(tostring(self()):match("^<0%.%d+%.%d+>$"), "format of main's pid")
  lib.ok(tostring(a) ~= tostring(b), "distinct pids print differently")
  lib.ok(a ~= b, "distinct pids are not equal")
  lib.ok(a == a, "a pid equals itself")
  lib.ok(a ~= "x" and a ~= s, "a pid is not equal to other values")
  local t = { [a] = "a", [b] = "b" }
  lib.eq(t[a], "a", "key a")
  lib.eq(t[b], "b", "key b")
  local ma, mb = process.monitor(a), process.monitor(b)
  process.kill(a)
  process.kill(b)
  lib.eq(down(ma).reason, "killed", "a")
  lib.eq(down(mb).reason, "killed", "b")
  lib.no_leftovers()
end)

lib.test("is_alive", function()
  lib.eq(process.is_alive(self()), true, "main is alive")
  local s = process.new_subject()
  local p = spawn(function()
    local g = process.new_subject()
    send(s, g)
    receive(g)
  end)
  lib.eq(process.is_alive(p), true, "before it runs")
  local g = receive(s, 1000)
  lib.eq(process.is_alive(p), true, "while it waits")
  local m = process.monitor(p)
  send(g, "stop")
  down(m)
  lib.eq(process.is_alive(p), false, "after it ended")
  lib.raises(function() process.is_alive("x") end, "bad argument #1",
             "is_alive(string)")
  lib.no_leftovers()
end)

lib.test("a dead pid stays dead when its slot is reused", function()
  local old, m = spawn_monitored(function() end)
  lib.eq(down(m).reason, "normal", "reason")
  local new, mons = {}, {}
  for i = 1, 5 do
    new[i] = spawn(function() process.sleep_forever() end)
    mons[i] = process.monitor(new[i])
  end
  for i = 1, 5 do
    lib.ok(new[i] ~= old, "new pid " .. i .. " differs from the dead one")
    lib.ok(tostring(new[i]) ~= tostring(old), "tostring differs")
  end
  lib.eq(process.is_alive(old), false, "old pid is still dead")
  lib.eq(lib.await_down(old), "noproc", "monitoring the old pid")
  lib.eq(process.link(old), false, "linking the old pid")
  for i = 1, 5 do process.kill(new[i]) end
  for i = 1, 5 do lib.eq(down(mons[i]).reason, "killed", "new " .. i) end
  lib.no_leftovers()
end)

lib.test("spawn_link links atomically (a child that crashes at once)",
         function()
  trapping(function()
    local p = spawn_link(function() error("early", 0) end)
    local e = process.select(process.new_selector():selecting_trapped_exits(),
                             1000)
    lib.ok(e ~= nil, "an exit message arrived")
    lib.ok(e.pid == p, "exit from the child")
    lib.eq(e.reason, "early", "reason")
  end)
  lib.no_leftovers()
end)

lib.test("spawn_link: the child's crash takes the parent down", function()
  local _, m = spawn_monitored(function()
    spawn_link(function() error({ tag = "child" }) end)
    process.sleep_forever()
  end)
  local reason = down(m).reason
  lib.eq(type(reason), "table", "reason type")
  lib.eq(reason.tag, "child", "the parent ends with the child's reason")
  lib.no_leftovers()
end)

lib.test("spawn_link: the parent's crash takes the child down", function()
  local s = process.new_subject()
  local parent = spawn(function()
    local go = process.new_subject()
    send(s, { spawn_link(function() process.sleep_forever() end), go })
    receive(go)
    error("parent died", 0)
  end)
  local child, go = table.unpack(receive(s, 1000))
  local mp, mc = process.monitor(parent), process.monitor(child)
  send(go, "go")
  lib.eq(down(mp).reason, "parent died", "parent reason")
  lib.eq(down(mc).reason, "parent died", "child reason")
  lib.no_leftovers()
end)

lib.test("spawn checks its argument", function()
  lib.raises(function() spawn(42) end, "bad argument #1 to 'spawn'",
             "spawn(42)")
  lib.raises(function() spawn_link("f") end,
             "bad argument #1 to 'spawn_link'", "spawn_link('f')")
  lib.raises(function() spawn() end, "bad argument #1 to 'spawn'",
             "spawn()")
  lib.no_leftovers()
end)

lib.test("a thousand processes", function()
  local s = process.new_subject()
  local index, mons = {}, {}
  for i = 1, 1000 do
    local p = spawn(function(n)
      local g = process.new_subject()
      send(s, { n, self(), g })
      receive(g)
    end, i)
    index[p] = i
    mons[i] = process.monitor(p)
  end
  local seen, gates = {}, {}
  for _ = 1, 1000 do
    local m = receive(s, 2000)
    lib.ok(m ~= nil, "message arrived")
    lib.eq(index[m[2]], m[1], "pid key maps to its argument")
    seen[m[1]] = true
    gates[#gates + 1] = m[3]
  end
  for i = 1, 1000 do lib.ok(seen[i], "process " .. i .. " ran") end
  for _, g in ipairs(gates) do send(g, true) end
  for i = 1, 1000 do lib.eq(down(mons[i]).reason, "normal", "ended") end
  lib.no_leftovers()
end)

-- spawn makes the pid's handle before the process (lprocess.c); a
-- finalizer run by that allocation may spawn first and take the pid it
-- expected, and then the handle is made again afterwards.  Garbage with
-- spawning finalizers and a small GC pause make that happen among these
-- spawns; whichever way a spawn went, its pid must be its process's.
lib.test("pids stay right when finalizers spawn during spawns", function()
  local inbox = process.new_subject()
  local function report(tag) send(inbox, { tag, self() }) end
  local pause = collectgarbage("setpause", 10)
  local stepmul = collectgarbage("setstepmul", 400)
  local n, from_gc = 2000, 0
  local returned = {}
  for i = 1, n do
    setmetatable({}, { __gc = function()
      from_gc = from_gc + 1
      spawn(report, "gc")
    end })
    local pid = spawn(report, i)
    lib.ok(returned[pid] == nil, "a fresh pid each time")
    returned[pid] = i
    returned[i] = pid
  end
  collectgarbage("setpause", pause)
  collectgarbage("setstepmul", stepmul)
  collectgarbage()
  local seen, gc_seen = 0, 0
  while seen < n or gc_seen < from_gc do
    local msg = receive(inbox, 5000)
    lib.ok(msg, "every process reports")
    if msg[1] == "gc" then
      gc_seen = gc_seen + 1
      lib.eq(returned[msg[2]], nil, "a finalizer's process has its own pid")
    else
      seen = seen + 1
      lib.ok(rawequal(returned[msg[1]], msg[2]),
             "spawn " .. msg[1] .. " returned its process's pid")
    end
  end
  lib.ok(from_gc > 0, "finalizers spawned")
  lib.no_leftovers()
end)

-- The pid cache is keyed by a scramble of the pid (larb.c, node.h's
-- arb_pid_mix); whatever the key, a pid seen again (a DOWN's pid, self())
-- must be the very value spawn returned, also for many generations of
-- the same slots and with pids of ended processes still held.
lib.test("pids keep their identity over many generations of a slot", function()
  local inbox = process.new_subject()
  local held, by_pid = {}, {}
  for round = 1, 300 do
    local pids, mons = {}, {}
    for i = 1, 5 do
      pids[i] = spawn(function() send(inbox, self()) end)
      mons[i] = process.monitor(pids[i])
    end
    for i = 1, 5 do
      local me = receive(inbox, 5000)
      lib.ok(rawequal(me, pids[i]), "self() is spawn's pid, round " .. round)
      local d = process.select(process.new_selector()
                                 :selecting_process_down(mons[i]), 5000)
      lib.ok(rawequal(d.pid, pids[i]), "DOWN's pid is spawn's pid")
    end
    if round % 30 == 0 then
      held[#held + 1] = pids[1]
      by_pid[pids[1]] = round
    end
    if round % 50 == 0 then collectgarbage() end
  end
  -- Slots were reused: the held pids of ended processes are all distinct
  -- and each still finds its own entry.
  for i, pid in ipairs(held) do
    lib.eq(by_pid[pid], i * 30, "held pid " .. i .. " keys its entry")
    lib.eq(process.is_alive(pid), false, "held pid " .. i .. " is dead")
  end
  lib.no_leftovers()
end)

-- A thread whose function returned goes back to the pool as it is (no
-- reset: lsched.c's pool_thread); a crashed one is not reused.  The next
-- process must start clean either way: exactly its arguments, the same
-- frames as on a fresh thread, and each to-be-closed variable of the one
-- before closed once.
lib.test("a reused thread starts clean; a crashed one is not reused",
         function()
  local inbox = process.new_subject()
  local closed = 0
  local function deep(n) if n == 0 then return 0 end return 1 + deep(n - 1) end
  local function returns_many()
    local _ <close> = setmetatable({}, { __close = function()
      closed = closed + 1
    end })
    deep(5000) -- the stack grows well past its first size
    send(inbox, coroutine.running())
    return table.unpack({}, 1, 200)
  end
  local function crashes()
    local _ <close> = setmetatable({}, { __close = function()
      closed = closed + 1
    end })
    send(inbox, coroutine.running())
    error("crash with a pending close", 0)
  end
  local function reports(...)
    local depth = 1
    while debug.getinfo(depth + 1, "l") do depth = depth + 1 end
    send(inbox, { co = coroutine.running(), n = select("#", ...),
                  args = { ... }, depth = depth })
  end
  local depths = {}
  for _, first in ipairs({ returns_many, crashes }) do
    for round = 1, 3 do
      local _, m = spawn_monitored(first)
      local first_co = receive(inbox, 5000)
      down(m)
      local _, m2 = spawn_monitored(function() return reports(1, nil, 3) end)
      local got = receive(inbox, 5000)
      down(m2)
      -- Lua 5.4.4's lua_resetthread reports the error a crashed thread
      -- died of, so pool_thread drops those; a returned one is reused.
      lib.eq(rawequal(got.co, first_co), first == returns_many,
             "the thread reused only after a return, round " .. round)
      lib.eq(got.n, 3, "exactly the arguments")
      lib.same(got.args, { 1, nil, 3 }, "their values")
      depths[#depths + 1] = got.depth
    end
  end
  -- A reset thread (after a crash) is as fresh as a new one: the frames
  -- seen after a return must be the same.
  for i = 2, #depths do
    lib.eq(depths[i], depths[1], "the same frames on the thread, run " .. i)
  end
  lib.eq(closed, 6, "each to-be-closed variable closed once")
  lib.no_leftovers()
end)
