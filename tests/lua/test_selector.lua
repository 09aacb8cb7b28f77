-- test_selector: selectors over subjects, trapped exits and monitors.
local lib = require "testlib"
local process = require "process"

local self, spawn = process.self, process.spawn
local send, receive = process.send, process.receive
local new_selector, select = process.new_selector, process.select
local spawn_monitored, down = lib.spawn_monitored, lib.down
local trapping = lib.trapping

lib.test("the oldest message across several subjects wins", function()
  local a, b, c = process.new_subject(), process.new_subject(),
                  process.new_subject()
  send(b, "b1")
  send(a, "a1")
  send(c, "c1")
  send(b, "b2")
  send(a, "a2")
  local sel = new_selector():selecting(a):selecting(b):selecting(c)
  local got = {}
  for i = 1, 5 do got[i] = select(sel, 0) end
  lib.same(got, { "b1", "a1", "c1", "b2", "a2" }, "order")
  lib.same({ select(sel, 0) }, { nil, "timeout" }, "then empty")
  -- The order the entries were added in does not matter.
  send(c, 1)
  send(a, 2)
  send(b, 3)
  local sel2 = new_selector():selecting(c):selecting(b):selecting(a)
  lib.same({ select(sel2, 0), select(sel2, 0), select(sel2, 0) }, { 1, 2, 3 },
           "order with entries added in another order")
  lib.no_leftovers()
end)

lib.test("the oldest across senders in different processes", function()
  local a, b = process.new_subject(), process.new_subject()
  local _, m = spawn_monitored(function()
    for i = 1, 20 do send(i % 2 == 0 and a or b, i) end
  end)
  down(m)
  local sel = new_selector():selecting(a):selecting(b)
  for i = 1, 20 do lib.eq(select(sel, 0), i, "message " .. i) end
  lib.no_leftovers()
end)

lib.test("a subject left out of the selector keeps its messages", function()
  local a, b = process.new_subject(), process.new_subject()
  send(b, "b1")
  send(a, "a1")
  local sel = new_selector():selecting(a)
  lib.eq(select(sel, 0), "a1", "selected")
  lib.same({ select(sel, 0) }, { nil, "timeout" }, "nothing else on a")
  lib.eq(receive(b, 0), "b1", "b untouched")
  lib.no_leftovers()
end)

lib.test("map functions", function()
  local a, b = process.new_subject(), process.new_subject()
  local calls = 0
  local sel = new_selector()
    :selecting(a, function(m) calls = calls + 1; return "a:" .. m end)
    :selecting(b)
  send(a, "x")
  send(b, "y")
  send(a, "z")
  lib.eq(select(sel, 0), "a:x", "mapped")
  lib.eq(select(sel, 0), "y", "unmapped")
  lib.eq(select(sel, 0), "a:z", "mapped again")
  lib.eq(calls, 2, "map calls")
  -- The map result is returned as is, even a table or false.
  local t = {}
  local sel2 = new_selector():selecting(a, function() return t end)
                             :selecting(b, function() return false end)
  send(a, 1)
  send(b, 2)
  lib.ok(rawequal(select(sel2, 0), t), "table from map fn")
  lib.eq(select(sel2, 0), false, "false from map fn")
  lib.no_leftovers()
end)

lib.test("selecting returns the selector; bad arguments raise", function()
  local sel = new_selector()
  local a = process.new_subject()
  lib.ok(rawequal(sel:selecting(a), sel), "selecting returns the selector")
  lib.ok(rawequal(sel:selecting_trapped_exits(), sel),
         "selecting_trapped_exits returns the selector")
  local m = process.monitor(self())
  lib.ok(rawequal(sel:selecting_process_down(m), sel),
         "selecting_process_down returns the selector")
  process.demonitor(m)
  lib.raises(function() sel:selecting("x") end, "bad argument",
             "selecting(string)")
  lib.raises(function() sel:selecting(a, 42) end, "bad argument",
             "selecting(subject, number)")
  lib.raises(function() sel:selecting_process_down(a) end, "bad argument",
             "selecting_process_down(subject)")
  lib.raises(function() select({}, 0) end, "bad argument #1",
             "select(table)")
  lib.raises(function() select(sel, -5) end, "bad argument #2",
             "select negative timeout")
  -- Other handles are not selectors, whichever way the method is reached.
  lib.raises(function() select(a, 0) end, "arbor.Selector expected",
             "select(subject)")
  lib.raises(function() select(m, 0) end, "arbor.Selector expected",
             "select(monitor)")
  lib.raises(function() sel.selecting(a, a) end, "arbor.Selector expected",
             "selecting on a subject")
  lib.raises(function() sel.selecting_process_down(m, m) end,
             "arbor.Selector expected", "selecting_process_down on a monitor")
  -- Its metatable is the host's: getmetatable shows the type's name.
  lib.eq(getmetatable(sel), "arbor.Selector", "getmetatable(selector)")
  local p = setmetatable({}, { __name = "arbor.Selector",
                               __index = { selecting = sel.selecting } })
  lib.raises(function() select(p, 0) end, "arbor.Selector expected",
             "a table that looks like a selector")
  lib.no_leftovers()
end)

lib.test("select timeout", function()
  local a = process.new_subject()
  local sel = new_selector():selecting(a)
  local r = table.pack(select(sel, 20))
  lib.eq(r.n, 2, "results")
  lib.eq(r[1], nil, "value")
  lib.eq(r[2], "timeout", "error")
  lib.same({ select(sel, 0) }, { nil, "timeout" }, "timeout 0 polls")
  lib.same({ select(new_selector(), 0) }, { nil, "timeout" },
           "an empty selector")
  lib.same({ select(new_selector(), 10) }, { nil, "timeout" },
           "an empty selector with a timeout")
  lib.no_leftovers()
end)

lib.test("a blocked select wakes for any of its subjects, only them",
         function()
  local a, b, c = process.new_subject(), process.new_subject(),
                  process.new_subject()
  local _, m = spawn_monitored(function()
    send(c, "c first")
    process.sleep(5)
    send(b, "b")
  end)
  local sel = new_selector():selecting(a):selecting(b)
  lib.eq(select(sel), "b", "woke for b")
  lib.eq(receive(c, 0), "c first", "c keeps its message")
  down(m)
  lib.no_leftovers()
end)

lib.test("selecting_trapped_exits gives {pid=, reason=}", function()
  trapping(function()
    local sel = new_selector():selecting_trapped_exits()
    local p = process.spawn_link(function() error("crash", 0) end)
    local e = select(sel, 1000)
    lib.ok(e ~= nil, "exit message")
    lib.ok(e.pid == p, "pid")
    lib.eq(e.reason, "crash", "reason")
    -- A normal exit of a link arrives too.
    local q = process.spawn_link(function() end)
    e = select(sel, 1000)
    lib.ok(e.pid == q, "pid of the normal exit")
    lib.eq(e.reason, "normal", "normal reason")
    -- An exit signal without a link names its sender.
    local main = self()
    local x, mx = spawn_monitored(function() process.exit(main, "from x") end)
    e = select(sel, 1000)
    lib.ok(e.pid == x, "sender of an exit signal")
    lib.eq(e.reason, "from x", "its reason")
    lib.eq(down(mx).reason, "normal", "the sender ended normally")
    -- A map function gets the table.
    local mapped = new_selector():selecting_trapped_exits(function(ex)
      return { "mapped", ex.pid, ex.reason }
    end)
    local y = process.spawn_link(function() error({ code = 7 }) end)
    local got = select(mapped, 1000)
    lib.eq(got[1], "mapped", "mapped")
    lib.ok(got[2] == y, "mapped pid")
    lib.eq(got[3].code, 7, "mapped reason (a table)")
    lib.same({ select(sel, 0) }, { nil, "timeout" }, "no more exits")
  end)
  lib.no_leftovers()
end)

lib.test("a blocked select wakes for a trapped exit", function()
  trapping(function()
    local hand = process.new_subject()
    local p = process.spawn_link(function()
      local go = process.new_subject()
      send(hand, go)
      receive(go)
      process.sleep(5)
      error("later", 0)
    end)
    send(receive(hand, 1000), "go")
    local e = select(new_selector():selecting_trapped_exits(), 5000)
    lib.ok(e and e.pid == p, "exit from p")
    lib.eq(e and e.reason, "later", "reason")
  end)
  lib.no_leftovers()
end)

lib.test("selecting_process_down gives {monitor=, pid=, reason=}", function()
  local hand = process.new_subject()
  local p = spawn(function()
    local go = process.new_subject()
    send(hand, go)
    error(receive(go), 0)
  end)
  local go = receive(hand, 1000)
  local m = process.monitor(p)
  send(go, "down reason")
  local d = select(new_selector():selecting_process_down(m), 1000)
  lib.ok(d ~= nil, "DOWN")
  lib.ok(rawequal(d.monitor, m), "monitor is the same object")
  lib.ok(d.pid == p, "pid")
  lib.eq(d.reason, "down reason", "reason")
  -- With a map function, and only for its own monitor.
  local q1, m1 = spawn_monitored(function() end)
  local _, m2, s2 = spawn_monitored(function(own) receive(own) end)
  local sel = new_selector():selecting_process_down(m1, function(dd)
    return { "m1", dd.pid, dd.reason, dd.monitor }
  end)
  local got = select(sel, 1000)
  lib.eq(got[1], "m1", "mapped")
  lib.ok(got[2] == q1, "mapped pid")
  lib.eq(got[3], "normal", "mapped reason")
  lib.ok(rawequal(got[4], m1), "mapped monitor")
  lib.same({ select(sel, 10) }, { nil, "timeout" }, "m2 is not selected")
  send(s2, "stop")
  lib.eq(down(m2).reason, "normal", "m2")
  lib.no_leftovers()
end)

lib.test("messages, DOWNs and exits are taken oldest first", function()
  trapping(function()
    local a = process.new_subject()
    local hand = process.new_subject()
    -- w1 sends m1, ends (DOWN), w2 sends m2 and ends (trapped exit), then
    -- main sends m3.
    local w1 = spawn(function()
      local go = process.new_subject()
      send(hand, go)
      receive(go)
      send(a, "m1")
    end)
    local go1 = receive(hand, 1000)
    local mon = process.monitor(w1)
    local seq1 = process.monitor(w1)
    send(go1, true)
    down(seq1) -- w1 has sent m1 and ended
    local w2 = process.spawn_link(function() send(a, "m2") end)
    down(process.monitor(w2)) -- w2 has sent m2 and ended
    send(a, "m3")
    local sel = new_selector()
      :selecting(a)
      :selecting_process_down(mon, function(d) return "down " .. d.reason end)
      :selecting_trapped_exits(function(e) return "exit " .. e.reason end)
    local got = {}
    for i = 1, 5 do got[i] = select(sel, 0) end
    lib.same(got, { "m1", "down normal", "m2", "exit normal", "m3" },
             "oldest first")
  end)
  lib.no_leftovers()
end)

lib.test("re-adding a subject replaces its map function", function()
  local a = process.new_subject()
  local sel = new_selector()
    :selecting(a, function(m) return "first " .. m end)
    :selecting(a, function(m) return "second " .. m end)
  send(a, "x")
  send(a, "y")
  lib.eq(select(sel, 0), "second x", "replaced")
  lib.eq(select(sel, 0), "second y", "replaced, next message")
  lib.same({ select(sel, 0) }, { nil, "timeout" }, "each message once")
  sel:selecting(a)
  send(a, "z")
  lib.eq(select(sel, 0), "z", "replaced by no map function")
  lib.no_leftovers()
end)

lib.test("a selector over a subject of another process raises", function()
  local hand = process.new_subject()
  local p = spawn(function()
    local s = process.new_subject()
    send(hand, s)
    receive(s)
  end)
  local theirs = receive(hand, 1000)
  local mine = process.new_subject()
  send(mine, "mine")
  local sel = new_selector():selecting(mine):selecting(theirs)
  lib.raises(function() select(sel, 0) end, "another process",
             "select with another process's subject")
  lib.raises(function() select(sel) end, "another process",
             "select without timeout")
  lib.eq(receive(mine, 0), "mine", "own message untouched")
  local m = process.monitor(p)
  send(theirs, "stop")
  down(m)
  lib.no_leftovers()
end)

lib.test("a map function may raise; the message is consumed", function()
  local a = process.new_subject()
  local sel = new_selector():selecting(a, function(m)
    if m == "bad" then error("map failed", 0) end
    return m
  end)
  send(a, "bad")
  send(a, "good")
  lib.raises(function() select(sel, 0) end, "map failed", "map error")
  lib.eq(select(sel, 0), "good", "next message")
  lib.no_leftovers()
end)

-- The first entries live in the selector itself and the rest in an array
-- it makes when it needs one (lmbox.c): every position must behave alike.
lib.test("selectors with many entries: order, replacing, waking", function()
  local subs = {}
  local sel = new_selector()
  for i = 1, 7 do
    subs[i] = process.new_subject()
    sel:selecting(subs[i], function(m) return i .. ":" .. m end)
  end
  lib.eq(tostring(sel), "Selector<7 sources>", "seven entries")
  for i = 7, 1, -1 do send(subs[i], "m") end
  for i = 7, 1, -1 do
    lib.eq(select(sel, 0), i .. ":m", "oldest first, entry " .. i)
  end
  lib.same({ select(sel, 0) }, { nil, "timeout" }, "all taken")
  -- Replacing keeps the count and changes only that entry's map.
  sel:selecting(subs[6], function(m) return "six " .. m end)
  sel:selecting(subs[2])
  lib.eq(tostring(sel), "Selector<7 sources>", "still seven")
  send(subs[6], "a")
  send(subs[2], "b")
  send(subs[7], "c")
  lib.eq(select(sel, 0), "six a", "entry in the array replaced")
  lib.eq(select(sel, 0), "b", "inline entry replaced, no map")
  lib.eq(select(sel, 0), "7:c", "neighbour kept")
  -- A blocked select wakes for a source held in the array, and a DOWN
  -- and trapped exits mix with subjects there.
  local p, m = spawn_monitored(function()
    send(subs[5], "late")
  end)
  lib.eq(select(sel, 1000), "5:late", "woken by the fifth entry")
  sel:selecting_process_down(m)
  local d = select(sel, 1000)
  lib.eq(d.monitor, m, "DOWN's monitor")
  lib.eq(d.pid, p, "DOWN's pid")
  lib.eq(d.reason, "normal", "DOWN's reason")
  lib.eq(tostring(sel), "Selector<8 sources>", "eight entries")
  -- Re-adding the monitor replaces its entry; its one DOWN is gone.
  sel:selecting_process_down(m, function() error("not called", 0) end)
  lib.eq(tostring(sel), "Selector<8 sources>", "still eight")
  lib.same({ select(sel, 0) }, { nil, "timeout" }, "one DOWN only")
  lib.no_leftovers()
end)

lib.test("an empty selector times out and tells its size", function()
  local sel = new_selector()
  lib.eq(tostring(sel), "Selector<0 sources>", "no entries")
  lib.same({ select(sel, 0) }, { nil, "timeout" }, "nothing to take")
  lib.same({ select(sel, 5) }, { nil, "timeout" }, "waits out its timeout")
end)
