-- test_links: links and exit signals, Erlang's rules end to end.
local lib = require "testlib"
local process = require "process"

local self, spawn, spawn_link = process.self, process.spawn, process.spawn_link
local send, receive = process.send, process.receive
local new_selector, select = process.new_selector, process.select
local spawn_monitored, down = lib.spawn_monitored, lib.down
local no_message = lib.no_message

-- A trapping process driven by commands.  Its exits go to `events` as
-- {"exit", pid, reason}; commands on its own subject:
--   {"link", pid}         -> link, report {"linked", boolean}
--   {"spawn_link", fn}    -> report {"spawned", pid}
--   {"trap", boolean}     -> set the flag, report {"trap"}
--   {"send", subject, v}  -> send v, report {"sent"}
--   "stop"                -> return
local function start_trapper()
  local events = process.new_subject()
  local p, m, own = spawn_monitored(function(own)
    process.trap_exits(true)
    send(events, { "ready" })
    local sel = new_selector()
      :selecting(own)
      :selecting_trapped_exits(function(e) return { "exit", e.pid, e.reason } end)
    while true do
      local msg = select(sel)
      if msg == "stop" then return end
      if msg[1] == "exit" then
        send(events, msg)
      elseif msg[1] == "link" then
        send(events, { "linked", process.link(msg[2]) })
      elseif msg[1] == "spawn_link" then
        send(events, { "spawned", spawn_link(msg[2]) })
      elseif msg[1] == "trap" then
        process.trap_exits(msg[2])
        send(events, { "trap" })
      elseif msg[1] == "send" then
        send(msg[2], msg[3])
        send(events, { "sent" })
      end
    end
  end)
  lib.eq(receive(events, 1000)[1], "ready", "trapper ready")
  return { pid = p, mon = m, cmd = own, events = events }
end

local function command(t, msg, expect)
  send(t.cmd, msg)
  local r = receive(t.events, 1000)
  lib.ok(r ~= nil, "reply to " .. tostring(msg[1]))
  lib.eq(r[1], expect, "reply kind")
  return r[2]
end

local function next_exit(t)
  local e = receive(t.events, 1000)
  lib.ok(e ~= nil, "an exit message reached the trapper")
  lib.eq(e[1], "exit", "event kind")
  return e[2], e[3]
end

local function stop_trapper(t)
  send(t.cmd, "stop")
  lib.eq(down(t.mon).reason, "normal", "trapper ended")
  no_message(t.events, "no more trapper events")
end

-- A process that sleeps until it is told to end, with a reason.
-- Returns pid, monitor, own subject; send it a reason to raise it (0 level).
local function start_sleeper()
  return spawn_monitored(function(own)
    local r = receive(own)
    if r ~= "normal" then error(r, 0) end
  end)
end

lib.test("a non-trapper ignores a normal exit from a link", function()
  local report = process.new_subject()
  local a, ma, own = spawn_monitored(function(own)
    local b = spawn_link(function() end)
    down(process.monitor(b))
    send(report, { "b gone", process.is_alive(self()) })
    receive(own)
  end)
  local r = receive(report, 1000)
  lib.same(r, { "b gone", true }, "A survived B's normal exit")
  lib.eq(process.is_alive(a), true, "A is alive")
  send(own, "stop")
  lib.eq(down(ma).reason, "normal", "A ends normally")
  lib.no_leftovers()
end)

lib.test("exit(pid, \"normal\") is ignored by a non-trapper", function()
  local echo = process.new_subject()
  local p, m, own = spawn_monitored(function(own)
    while true do send(echo, receive(own)) end
  end)
  process.exit(p, "normal")
  send(own, "ping")
  lib.eq(receive(echo, 1000), "ping", "still answers")
  lib.eq(process.is_alive(p), true, "alive")
  process.exit(p, "shutdown")
  lib.eq(down(m).reason, "shutdown", "shutdown kills it")
  lib.no_leftovers()
end)

lib.test("exit(self(), \"normal\") ends the caller", function()
  local report = process.new_subject()
  local _, m = spawn_monitored(function()
    process.exit(self(), "normal")
    send(report, "still running")
  end)
  lib.eq(down(m).reason, "normal", "reason")
  no_message(report, "nothing ran after exit(self(), normal)")
  -- The same inside pcall: the process still ends.
  local _, m2 = spawn_monitored(function()
    pcall(process.exit, self(), "normal")
    send(report, "still running after pcall")
  end)
  lib.eq(down(m2).reason, "normal", "reason (pcall)")
  no_message(report, "nothing ran after exit inside pcall")
  lib.no_leftovers()
end)

lib.test("exit(self(), reason) ends the caller with that reason", function()
  local report = process.new_subject()
  local _, m = spawn_monitored(function()
    process.exit(self(), "my reason")
    send(report, "still running")
  end)
  lib.eq(down(m).reason, "my reason", "reason")
  no_message(report)
  lib.no_leftovers()
end)

lib.test("kill is untrappable and the victim's reason is killed", function()
  local t = start_trapper()
  process.kill(t.pid)
  lib.eq(down(t.mon).reason, "killed", "kill")
  local t2 = start_trapper()
  process.exit(t2.pid, "kill")
  lib.eq(down(t2.mon).reason, "killed", "exit(pid, \"kill\")")
  local p3, m3 = start_sleeper()
  process.kill(p3)
  lib.eq(down(m3).reason, "killed", "a non-trapper")
  lib.no_leftovers()
end)

lib.test("a killed process's links get \"killed\": trappable", function()
  local t = start_trapper()
  local victim, mv = start_sleeper()
  lib.eq(command(t, { "link", victim }, "linked"), true, "trapper linked")
  -- A non-trapper linked to the victim as well.
  local report = process.new_subject()
  local _, mb = spawn_monitored(function(own)
    send(report, process.link(victim))
    receive(own)
  end)
  lib.eq(receive(report, 1000), true, "bystander linked")
  process.kill(victim)
  lib.eq(down(mv).reason, "killed", "victim")
  local from, reason = next_exit(t)
  lib.ok(from == victim, "exit from the victim")
  lib.eq(reason, "killed", "the trapper got \"killed\" as a message")
  lib.eq(down(mb).reason, "killed", "the non-trapper died with killed")
  lib.eq(process.is_alive(t.pid), true, "the trapper lives")
  stop_trapper(t)
  lib.no_leftovers()
end)

lib.test("exit(pid, \"killed\") is an ordinary, trappable signal", function()
  local t = start_trapper()
  process.exit(t.pid, "killed")
  local from, reason = next_exit(t)
  lib.ok(from == self(), "from main")
  lib.eq(reason, "killed", "reason")
  stop_trapper(t)
  local p, m = start_sleeper()
  process.exit(p, "killed")
  lib.eq(down(m).reason, "killed", "a non-trapper dies")
  lib.no_leftovers()
end)

lib.test("a trapper gets {pid, reason} messages", function()
  local t = start_trapper()
  -- A linked process that crashes.
  local crasher = command(t, { "spawn_link", function() error("boom", 0) end },
                          "spawned")
  local from, reason = next_exit(t)
  lib.ok(from == crasher, "pid of the crasher")
  lib.eq(reason, "boom", "crash reason")
  -- A linked process that returns.
  local returner = command(t, { "spawn_link", function() end }, "spawned")
  from, reason = next_exit(t)
  lib.ok(from == returner, "pid of the returner")
  lib.eq(reason, "normal", "normal reason")
  -- Exit signals without a link, from main.
  process.exit(t.pid, "custom")
  from, reason = next_exit(t)
  lib.ok(from == self(), "sender of exit/2")
  lib.eq(reason, "custom", "custom reason")
  process.exit(t.pid, "normal")
  from, reason = next_exit(t)
  lib.ok(from == self(), "sender of exit(pid, normal)")
  lib.eq(reason, "normal", "normal signal as a message")
  process.exit(t.pid, "shutdown")
  from, reason = next_exit(t)
  lib.eq(reason, "shutdown", "shutdown as a message")
  lib.eq(process.is_alive(t.pid), true, "the trapper survived all of them")
  stop_trapper(t)
  lib.no_leftovers()
end)

lib.test("a trapper that stops trapping dies from links again", function()
  local t = start_trapper()
  local victim, mv, vown = start_sleeper()
  command(t, { "link", victim }, "linked")
  command(t, { "trap", false }, "trap")
  send(vown, "victim crash")
  lib.eq(down(mv).reason, "victim crash", "victim")
  lib.eq(down(t.mon).reason, "victim crash", "the former trapper")
  no_message(t.events)
  lib.no_leftovers()
end)

lib.test("other reasons propagate along a chain of links", function()
  for _, how in ipairs { "crash", "exit" } do
    local report = process.new_subject()
    -- main spawns A; A spawn_links B; B spawn_links C.
    local a = spawn(function()
      spawn_link(function()
        spawn_link(function()
          local own = process.new_subject()
          send(report, { "C", self(), own })
          local r = receive(own)
          error(r, 0)
        end)
        send(report, { "B", self() })
        process.sleep_forever()
      end)
      send(report, { "A", self() })
      process.sleep_forever()
    end)
    local pids, c_own = {}, nil
    for _ = 1, 3 do
      local r = receive(report, 1000)
      pids[r[1]] = r[2]
      c_own = c_own or r[3]
    end
    lib.ok(pids.A == a, "A's pid")
    local mons = {}
    for _, k in ipairs { "A", "B", "C" } do
      mons[k] = process.monitor(pids[k])
    end
    if how == "crash" then
      send(c_own, "boom")
    else
      process.exit(pids.C, "shutdown")
    end
    local expect = how == "crash" and "boom" or "shutdown"
    for _, k in ipairs { "C", "B", "A" } do
      lib.eq(down(mons[k]).reason, expect, how .. ": " .. k .. "'s reason")
    end
    lib.no_leftovers(how)
  end
end)

lib.test("a trapper stops the propagation", function()
  local t = start_trapper()
  local report = process.new_subject()
  local b = command(t, { "spawn_link", function()
    spawn_link(function()
      local own = process.new_subject()
      send(report, { self(), own })
      error(receive(own), 0)
    end)
    process.sleep_forever()
  end }, "spawned")
  local c, c_own = table.unpack(receive(report, 1000))
  local mb, mc = process.monitor(b), process.monitor(c)
  send(c_own, "deep crash")
  lib.eq(down(mc).reason, "deep crash", "C")
  lib.eq(down(mb).reason, "deep crash", "B")
  local from, reason = next_exit(t)
  lib.ok(from == b, "the trapper hears from B")
  lib.eq(reason, "deep crash", "with C's reason")
  lib.eq(process.is_alive(t.pid), true, "the trapper lives")
  stop_trapper(t)
  lib.no_leftovers()
end)

lib.test("link returns false for a dead pid", function()
  local dead, m = start_sleeper()
  process.kill(dead)
  down(m)
  lib.eq(process.link(dead), false, "link(dead) from main")
  lib.eq(process.is_alive(self()), true, "main lives on")
  local report = process.new_subject()
  local _, ma = spawn_monitored(function()
    send(report, process.link(dead))
  end)
  lib.eq(receive(report, 1000), false, "link(dead) from a non-trapper")
  lib.eq(down(ma).reason, "normal", "the non-trapper was not killed")
  local live, ml, lown = start_sleeper()
  lib.eq(process.link(live), true, "link(live)")
  process.unlink(live)
  lib.eq(process.link(self()), true, "link(self()) is a no-op")
  send(lown, "normal")
  down(ml)
  lib.raises(function() process.link("x") end, "bad argument #1", "link(x)")
  lib.no_leftovers()
end)

-- Erlang: link/1 to a process that is gone sends the caller an exit
-- signal with reason noproc; a trapper gets {pid = dead, reason =
-- "noproc"}.  process.link still returns false.
lib.test("a trapper linking to a dead pid gets a noproc exit", function()
  local dead, m = start_sleeper()
  process.kill(dead)
  down(m)
  local t = start_trapper()
  lib.eq(command(t, { "link", dead }, "linked"), false, "link returns false")
  local from, reason = next_exit(t)
  lib.ok(from == dead, "the exit names the dead pid")
  lib.eq(reason, "noproc", "reason")
  no_message(t.events, "one exit per failed link")
  -- A live link sends nothing; it is a real link.
  local live, ml, lown = start_sleeper()
  lib.eq(command(t, { "link", live }, "linked"), true, "link(live)")
  no_message(t.events, "no exit for a live link")
  send(lown, "boom")
  down(ml)
  from, reason = next_exit(t)
  lib.ok(from == live and reason == "boom", "the live link works")
  -- In the main process too: a trapped exit arrives, nothing dies.
  lib.trapping(function()
    lib.eq(process.link(dead), false, "link(dead) while trapping")
    local e = lib.trapped_exit(1000)
    lib.ok(e ~= nil and e.pid == dead, "main got the exit")
    lib.eq(e.reason, "noproc", "main: reason")
  end)
  stop_trapper(t)
  lib.no_leftovers()
end)

lib.test("unlink removes the link", function()
  local report = process.new_subject()
  local victim, mv, vown = start_sleeper()
  local a, ma, aown = spawn_monitored(function(own)
    process.link(victim)
    process.unlink(victim)
    send(report, "unlinked")
    receive(own)
  end)
  lib.eq(receive(report, 1000), "unlinked", "A unlinked")
  send(vown, "victim crash")
  lib.eq(down(mv).reason, "victim crash", "victim")
  lib.eq(process.is_alive(a), true, "A survived")
  send(aown, "stop")
  lib.eq(down(ma).reason, "normal", "A")
  lib.no_leftovers()
end)

lib.test("unlink from the other side removes the link", function()
  local report = process.new_subject()
  -- A links to B; B unlinks A; A crashes; B lives.
  local b, mb, bown = spawn_monitored(function(own)
    local a = receive(own)
    process.unlink(a)
    send(report, "b unlinked")
    receive(own)
  end)
  local a, ma, aown = spawn_monitored(function(own)
    process.link(b)
    send(report, "a linked")
    error(receive(own), 0)
  end)
  lib.eq(receive(report, 1000), "a linked", "A linked")
  send(bown, a)
  lib.eq(receive(report, 1000), "b unlinked", "B unlinked")
  send(aown, "a crash")
  lib.eq(down(ma).reason, "a crash", "A")
  lib.eq(process.is_alive(b), true, "B survived")
  send(bown, "stop")
  lib.eq(down(mb).reason, "normal", "B")
  lib.no_leftovers()
end)

lib.test("links are idempotent: one unlink removes a double link", function()
  local report = process.new_subject()
  local victim, mv, vown = start_sleeper()
  local a, ma, aown = spawn_monitored(function(own)
    lib.eq(process.link(victim), true, "first link")
    lib.eq(process.link(victim), true, "second link")
    process.unlink(victim)
    send(report, "done")
    receive(own)
  end)
  lib.eq(receive(report, 1000), "done", "A linked twice, unlinked once")
  send(vown, "victim crash")
  lib.eq(down(mv).reason, "victim crash", "victim")
  lib.eq(process.is_alive(a), true, "A survived")
  send(aown, "stop")
  lib.eq(down(ma).reason, "normal", "A")
  lib.no_leftovers()
end)

lib.test("links are bidirectional", function()
  for _, who in ipairs { "linker", "linked" } do
    local report = process.new_subject()
    local b, mb, bown = start_sleeper()
    local a, ma, aown = spawn_monitored(function(own)
      process.link(b)
      send(report, "linked")
      local r = receive(own)
      error(r, 0)
    end)
    lib.eq(receive(report, 1000), "linked", who)
    if who == "linker" then
      send(aown, "a crash")
      lib.eq(down(ma).reason, "a crash", "A")
      lib.eq(down(mb).reason, "a crash", "B dies from A's crash")
    else
      send(bown, "b crash")
      lib.eq(down(mb).reason, "b crash", "B")
      lib.eq(down(ma).reason, "b crash", "A dies from B's crash")
    end
    lib.ok(a ~= b, "two processes")
    lib.no_leftovers(who)
  end
end)

lib.test("a crash's reason is the raised value, a table included", function()
  local t = start_trapper()
  local report = process.new_subject()
  local hand = process.new_subject()
  local crasher = command(t, { "spawn_link", function()
    local own = process.new_subject()
    local value = { code = 42 }
    send(hand, { own, value })
    receive(own)
    error(value)
  end }, "spawned")
  local cown, value = table.unpack(receive(hand, 1000))
  -- A non-trapping process linked to the crasher, and a monitor.
  local _, mb = spawn_monitored(function(own)
    send(report, process.link(crasher))
    receive(own)
  end)
  lib.eq(receive(report, 1000), true, "bystander linked")
  local mc = process.monitor(crasher)
  send(cown, "go")
  local d = down(mc)
  lib.copy_of(d.reason, value, "DOWN reason is a copy of the raised table")
  local from, reason = next_exit(t)
  lib.ok(from == crasher, "exit from the crasher")
  lib.copy_of(reason, value, "trapped exit reason is a copy of the raised table")
  lib.copy_of(down(mb).reason, value,
              "a linked non-trapper dies with a copy of the table")
  -- A string raised with a position keeps it.
  local _, ms = spawn_monitored(function() error("with position") end)
  local r = down(ms).reason
  lib.ok(type(r) == "string" and r:match("test_links%.lua:%d+: with position$"),
         "string reason with position: " .. tostring(r))
  stop_trapper(t)
  lib.no_leftovers()
end)

lib.test("a crash's reason keeps the raised value's type", function()
  for _, v in ipairs { "plain", true, 42, 1.5 } do
    local _, mv = spawn_monitored(function() error(v, 0) end)
    local r = down(mv).reason
    lib.eq(math.type(r) or type(r), math.type(v) or type(v),
           "type of the reason for error(" .. tostring(v) .. ")")
    lib.eq(r, v, "raised " .. tostring(v))
  end
  lib.no_leftovers()
end)

lib.test("exit(pid, reason) kills a non-trapper with that reason", function()
  local p, m = start_sleeper()
  local reason = { why = "table reason" }
  process.exit(p, reason)
  lib.copy_of(down(m).reason, reason, "a copy of the table")
  local p2, m2 = start_sleeper()
  process.exit(p2, "shutdown")
  lib.eq(down(m2).reason, "shutdown", "shutdown")
  -- A signal to a dead pid is ignored.
  local r = table.pack(process.exit(p2, "late"))
  lib.eq(r.n, 0, "exit returns nothing")
  process.kill(p2)
  lib.raises(function() process.exit("x", "r") end, "bad argument #1",
             "exit(string)")
  lib.raises(function() process.exit(p2) end, "bad argument #2",
             "exit without a reason")
  lib.no_leftovers()
end)

lib.test("a message sent before an exit arrives before the exit", function()
  local inbox = process.new_subject()
  process.trap_exits(true)
  local ok, err = pcall(function()
    local sender = spawn_link(function()
      for i = 1, 3 do send(inbox, i) end
      error("after the messages", 0)
    end)
    local sel = new_selector()
      :selecting(inbox)
      :selecting_trapped_exits(function(e) return e end)
    local got = {}
    for i = 1, 4 do got[i] = select(sel, 1000) end
    lib.same({ got[1], got[2], got[3] }, { 1, 2, 3 }, "messages first")
    lib.ok(type(got[4]) == "table" and got[4].pid == sender, "then the exit")
    lib.eq(got[4].reason, "after the messages", "exit reason")
  end)
  process.trap_exits(false)
  if not ok then error(err, 0) end
  lib.no_leftovers()
end)
