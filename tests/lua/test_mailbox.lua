-- test_mailbox: subjects, send and receive.
local lib = require "testlib"
local process = require "process"

local self, spawn = process.self, process.spawn
local send, receive = process.send, process.receive
local down = lib.down

-- Starts a process that makes a subject, hands it to main and then runs
-- body(subject) (default: wait for a "stop" on it).  Returns pid, subject
-- and a monitor on the process.
local function start_owner(body)
  local hand = process.new_subject()
  local p = spawn(function()
    local s, gate = process.new_subject(), process.new_subject()
    send(hand, { s, gate })
    receive(gate)
    if body then return body(s) end
    receive(s)
  end)
  local s, gate = table.unpack(receive(hand, 1000))
  local m = process.monitor(p)
  send(gate, true)
  return p, s, m
end

lib.test("new_subject and subject_owner", function()
  local s = process.new_subject()
  lib.ok(process.subject_owner(s) == self(), "main owns its subject")
  lib.ok(tostring(s):match("^Subject<"), "tostring: " .. tostring(s))
  local s2 = process.new_subject()
  lib.ok(s ~= s2, "two subjects differ")
  lib.ok(s == s, "a subject equals itself")
  local p, theirs, m = start_owner()
  lib.ok(process.subject_owner(theirs) == p, "owner of a child's subject")
  send(theirs, "stop")
  down(m)
  lib.ok(process.subject_owner(theirs) == p, "owner after the owner died")
  lib.raises(function() process.subject_owner("x") end, "bad argument #1",
             "subject_owner(string)")
  lib.no_leftovers()
end)

lib.test("a subject is one object: usable as a table key", function()
  local s = process.new_subject()
  local t = { [s] = "mine" }
  -- It travels to another process and back.
  local p, theirs, m = start_owner(function(own)
    local got = receive(own)
    send(got, got)
  end)
  send(theirs, s)
  local back = receive(s, 1000)
  lib.ok(rawequal(back, s), "the same userdata came back")
  lib.eq(t[back], "mine", "indexes the same entry")
  lib.eq(down(m).reason, "normal", "owner ended")
  lib.ok(p ~= nil, "pid")
  lib.no_leftovers()
end)

lib.test("send and receive are FIFO", function()
  local s = process.new_subject()
  for i = 1, 200 do send(s, i) end
  for i = 1, 200 do lib.eq(receive(s), i, "message " .. i) end
  lib.same({ receive(s, 0) }, { nil, "timeout" }, "empty after")
  lib.no_leftovers()
end)

lib.test("FIFO across processes: one sender's order is kept", function()
  local s = process.new_subject()
  local _, _, m = start_owner(function()
    for i = 1, 100 do send(s, i) end
  end)
  for i = 1, 100 do lib.eq(receive(s, 1000), i, "message " .. i) end
  down(m)
  lib.no_leftovers()
end)

lib.test("receive with a timeout gives nil, \"timeout\"", function()
  local s = process.new_subject()
  local r = table.pack(receive(s, 20))
  lib.eq(r.n, 2, "number of results")
  lib.eq(r[1], nil, "first result")
  lib.eq(r[2], "timeout", "second result")
  send(s, "x")
  local r2 = table.pack(receive(s, 20))
  lib.eq(r2.n, 1, "number of results with a message")
  lib.eq(r2[1], "x", "message")
  lib.no_leftovers()
end)

lib.test("timeout 0 polls", function()
  local s = process.new_subject()
  lib.same({ receive(s, 0) }, { nil, "timeout" }, "empty")
  send(s, "a")
  send(s, "b")
  lib.eq(receive(s, 0), "a", "first")
  lib.eq(receive(s, 0), "b", "second")
  lib.same({ receive(s, 0) }, { nil, "timeout" }, "empty again")
  lib.no_leftovers()
end)

lib.test("a blocked receive wakes for a later message", function()
  local s = process.new_subject()
  local _, _, m = start_owner(function()
    process.sleep(10)
    send(s, "late")
  end)
  lib.eq(receive(s), "late", "without timeout")
  down(m)
  local _, _, m2 = start_owner(function()
    process.sleep(10)
    send(s, "later")
  end)
  lib.eq(receive(s, 5000), "later", "with timeout")
  down(m2)
  lib.no_leftovers()
end)

lib.test("messages are isolated: a table is copied when it is sent", function()
  local s = process.new_subject()
  local t = { 1, 2, 3 }
  send(s, t)
  t[1] = 0 -- the sender's change after sending is never seen
  local got = lib.copy_of(receive(s), { 1, 2, 3 }, "a copy (same process)")
  got[2] = 0
  lib.eq(t[2], 2, "the receiver's change is not the sender's")
  -- Across processes: the child changes its table after sending it.
  local result = process.new_subject()
  local _, theirs, m = start_owner(function(own)
    local mine = { "child" }
    send(s, mine)
    mine[1] = "changed"
    local back = receive(own)
    send(result, { rawequal(back, mine), back[1] })
  end)
  local got2 = receive(s, 1000)
  lib.eq(got2[1], "child", "content as it was when sent")
  send(theirs, got2)
  local r = receive(result, 1000)
  lib.eq(r[1], false, "the child gets a copy back, not its own table")
  lib.eq(r[2], "child", "with the content sent")
  down(m)
  lib.no_leftovers()
end)

lib.test("isolation keeps shared sub-tables, cycles, metatables; handles "
         .. "travel as themselves", function()
  local s = process.new_subject()
  local shared = { "shared" }
  local mt = { __index = function() return "default" end }
  local f = function() end
  local t = setmetatable({ a = shared, b = shared, subject = s, fn = f,
                           pid = self(), nested = { deeper = { 1 } } }, mt)
  t.self = t
  t[shared] = "keyed by a table"
  send(s, t)
  local r = receive(s)
  lib.ok(not rawequal(r, t), "a copy")
  lib.ok(rawequal(r.a, r.b) and not rawequal(r.a, shared),
         "a shared sub-table is copied once")
  lib.ok(rawequal(r.self, r), "a cycle stays a cycle")
  lib.eq(getmetatable(r), mt, "the same metatable")
  lib.eq(r.missing, "default", "which works on the copy")
  lib.eq(r[r.a], "keyed by a table", "table keys are copied consistently")
  lib.ok(rawequal(r.subject, s) and rawequal(r.fn, f) and r.pid == self(),
         "handles and functions travel as themselves")
  lib.eq(r.nested.deeper[1], 1, "nested tables")
  -- Raw access only: a __pairs or __index on the message is never run.
  local ran = false
  local trap = setmetatable({ 1 }, { __pairs = function() ran = true end,
                                     __index = function() ran = true end })
  send(s, trap)
  lib.eq(receive(s)[1], 1, "copied")
  lib.eq(ran, false, "no metamethod ran while copying")
  -- Deep nesting costs no C stack.
  local deep = {}
  local cur = deep
  for _ = 1, 100000 do cur.n = {}; cur = cur.n end
  send(s, deep)
  local n, c = 0, receive(s)
  while c.n do n = n + 1; c = c.n end
  lib.eq(n, 100000, "100,000 levels")
end)

lib.test("any value but nil is a message", function()
  local s = process.new_subject()
  local f = function() end
  local co = coroutine.create(f)
  local values = { false, true, 0, -1.5, "", "str", f, co, self(), s,
                   math.huge }
  for _, v in ipairs(values) do send(s, v) end
  for i, v in ipairs(values) do
    local r = table.pack(receive(s, 0))
    lib.eq(r.n, 1, "one result for value " .. i)
    lib.ok(rawequal(r[1], v), "value " .. i .. ": " .. tostring(v))
  end
  lib.no_leftovers()
end)

lib.test("send to a dead owner is dropped silently", function()
  local _, theirs, m = start_owner()
  send(theirs, "stop")
  down(m)
  local r = table.pack(send(theirs, "into the void"))
  lib.eq(r.n, 0, "send returns nothing")
  send(theirs, { big = true })
  lib.no_leftovers()
end)

lib.test("receive on a subject you don't own raises", function()
  local _, theirs, m = start_owner()
  local err = lib.raises(function() receive(theirs, 0) end,
                         "another process", "receive on a live owner's")
  lib.ok(tostring(err):find("receive", 1, true), "names receive: " ..
         tostring(err))
  lib.raises(function() receive(theirs) end, "another process",
             "without timeout")
  send(theirs, "stop")
  down(m)
  lib.raises(function() receive(theirs, 0) end, "another process",
             "receive on a dead owner's")
  lib.no_leftovers()
end)

lib.test("nil message raises", function()
  local s = process.new_subject()
  lib.raises(function() send(s, nil) end,
             "bad argument #2 to 'send' (message must not be nil)",
             "send(s, nil)")
  lib.raises(function() send(s) end,
             "bad argument #2 to 'send' (message must not be nil)",
             "send(s)")
  lib.same({ receive(s, 0) }, { nil, "timeout" }, "nothing was queued")
  lib.no_leftovers()
end)

lib.test("bad arguments raise", function()
  lib.raises(function() send("s", 1) end, "bad argument #1 to 'send'",
             "send(string)")
  lib.raises(function() receive({}, 0) end, "bad argument #1 to 'receive'",
             "receive(table)")
  local s = process.new_subject()
  lib.raises(function() receive(s, -1) end, "bad argument #2 to 'receive'",
             "negative timeout")
  lib.raises(function() receive(s, "soon") end,
             "bad argument #2 to 'receive'", "string timeout")
  lib.no_leftovers()
end)

lib.test("many subjects: receiving from one keeps the others' order",
         function()
  local subs = {}
  for i = 1, 5 do subs[i] = process.new_subject() end
  for round = 1, 10 do
    for i = 1, 5 do send(subs[i], i * 100 + round) end
  end
  for round = 1, 10 do
    lib.eq(receive(subs[3], 0), 300 + round, "subject 3, round " .. round)
  end
  lib.same({ receive(subs[3], 0) }, { nil, "timeout" }, "subject 3 empty")
  for round = 1, 5 do
    lib.eq(receive(subs[5], 0), 500 + round, "subject 5, round " .. round)
  end
  for _, i in ipairs { 1, 2, 4 } do
    for round = 1, 10 do
      lib.eq(receive(subs[i], 0), i * 100 + round,
             "subject " .. i .. ", round " .. round)
    end
  end
  for round = 6, 10 do
    lib.eq(receive(subs[5], 0), 500 + round, "subject 5, round " .. round)
  end
  lib.no_leftovers()
end)

lib.test("a message to another subject does not end a receive", function()
  local a, b = process.new_subject(), process.new_subject()
  local _, _, m = start_owner(function() send(b, "for b") end)
  lib.same({ receive(a, 30) }, { nil, "timeout" }, "receive on a")
  lib.eq(receive(b, 0), "for b", "b kept its message")
  down(m)
  lib.no_leftovers()
end)

lib.test("a process's subjects die with it; messages are dropped", function()
  local _, theirs, m = start_owner(function(own)
    receive(own) -- one message, then end with more queued
  end)
  for i = 1, 10 do send(theirs, { i }) end
  lib.eq(down(m).reason, "normal", "owner ended")
  send(theirs, "after")
  lib.no_leftovers()
end)

lib.test("every kind of value arrives as it was sent, at the edges of the inline encoding", function()
  -- Integers within 61 bits and booleans travel inside the message;
  -- everything else goes through the host's reference table.
  local s = process.new_subject()
  local values = { 0, -1, 1, -5, (1 << 60) - 1, -(1 << 60), 1 << 60,
                   -(1 << 60) - 1, math.maxinteger, math.mininteger, 1.5,
                   2.0, 2^53, true, false, "str", {} }
  for _, v in ipairs(values) do process.send(s, v) end
  for i, v in ipairs(values) do
    local got = process.receive(s, 0)
    if type(v) == "table" then got = lib.copy_of(got, v, "value " .. i) end
    lib.ok((type(v) == "table" or rawequal(got, v))
           and math.type(got) == math.type(v),
           "value " .. i .. " (" .. tostring(v) .. ") came back as "
           .. tostring(got))
  end
  lib.no_leftovers()
end)
