-- test_chip: the chip module (a subject registry with groups) end to end.
local lib = require "testlib"
local process = require "process"
local chip = require "chip"
local supervisor = require "supervisor"
local core = require "arbor.core"

local self, spawn, send, receive = process.self, process.spawn, process.send,
                                   process.receive
local new_selector, select = process.new_selector, process.select
local down = lib.down

-- {=====================================================================
-- Helpers
-- ======================================================================

-- A process owning n subjects; it waits for one command on its own
-- subject: "normal" returns, a function is called (its result returned),
-- anything else is raised.  The monitor is in place before it can end.
-- Returns { pid, mon, cmd, subs }.
local function spawn_owner(n)
  local hand = process.new_subject()
  local pid = spawn(function()
    local cmd = process.new_subject()
    local subs = {}
    for i = 1, n or 1 do subs[i] = process.new_subject() end
    send(hand, { cmd = cmd, subs = subs })
    local m = receive(cmd)
    if m == "normal" then return end
    if type(m) == "function" then return m() end
    error(m, 0)
  end)
  local r = receive(hand, 1000)
  lib.ok(r ~= nil, "owner ready")
  return { pid = pid, mon = process.monitor(pid), cmd = r.cmd, subs = r.subs }
end

local function end_owner(o, how)
  send(o.cmd, how or "normal")
  return down(o.mon).reason
end

-- A registry the caller is not linked to, so killing it in a test does
-- not take the test down.  Returns the registry and its pid.
local function new_registry(name)
  local reg, err = chip.start(name)
  lib.ok(reg ~= nil, "chip.start: " .. tostring(err))
  local pid = process.subject_owner(reg)
  process.unlink(pid)
  return reg, pid
end

local function stop_registry(reg)
  local m = process.monitor(process.subject_owner(reg))
  chip.stop(reg)
  lib.eq(down(m).reason, "normal", "registry stopped")
end

local function kill_registry(reg)
  local pid = process.subject_owner(reg)
  local m = process.monitor(pid)
  process.kill(pid)
  lib.eq(down(m).reason, "killed", "registry killed")
end

-- Subject lists compared element by element as the very same objects.
local function same_subjects(actual, expected, what)
  local function dump(t)
    local parts = {}
    for i, v in ipairs(t) do parts[i] = tostring(v) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  local ok = type(actual) == "table" and #actual == #expected
  if ok then
    for i = 1, #expected do
      if not rawequal(actual[i], expected[i]) then ok = false end
    end
  end
  if ok and next(actual) ~= nil then
    for k in pairs(actual) do
      if math.type(k) ~= "integer" or k < 1 or k > #expected then
        ok = false
      end
    end
  end
  if not ok then
    error(string.format("%s: expected %s, got %s", what or "members",
                        dump(expected),
                        type(actual) == "table" and dump(actual)
                          or tostring(actual)), 2)
  end
end

-- Groups compared as a set (keys of normalised groups).
local function same_groups(actual, expected, what)
  local seen = {}
  for _, g in ipairs(actual) do
    lib.ok(seen[g] == nil, (what or "groups") .. ": " .. tostring(g)
                           .. " listed once")
    seen[g] = true
  end
  local want = {}
  for _, g in ipairs(expected) do want[g] = true end
  for g in pairs(want) do
    lib.ok(seen[g], (what or "groups") .. ": " .. tostring(g) .. " listed")
  end
  for g in pairs(seen) do
    lib.ok(want[g], (what or "groups") .. ": " .. tostring(g)
                    .. " not expected")
  end
  lib.eq(#actual, #expected, (what or "groups") .. ": count")
end

-- }=====================================================================

-- {=====================================================================
-- start, from, names, links
-- ======================================================================

lib.test("chip.start() starts a registry process linked to the caller",
         function()
  -- A trapping helper starts the registry and forwards its exits.
  local events = process.new_subject()
  local helper = spawn(function()
    process.trap_exits(true)
    local reg = assert(chip.start())
    local cmd = process.new_subject()
    send(events, { reg = reg, cmd = cmd })
    local sel = new_selector()
      :selecting(cmd)
      :selecting_trapped_exits(function(e) return { exit = e } end)
    while true do
      local m = select(sel)
      if m == "stop" then return end
      if m.exit then send(events, m.exit) end
      if m.start then send(events, { reg = assert(chip.start()) }) end
    end
  end)
  local hm = process.monitor(helper)
  local r = receive(events, 1000)
  local reg, cmd = r.reg, r.cmd
  local rpid = process.subject_owner(reg)
  lib.ok(rpid ~= helper and rpid ~= self(), "the registry is its own process")
  lib.eq(process.is_alive(rpid), true, "registry alive")
  lib.eq(core.is_subject(reg), true, "a registry is a subject")
  -- Killing the registry: the linked, trapping starter gets the exit.
  local rm = process.monitor(rpid)
  process.kill(rpid)
  lib.eq(down(rm).reason, "killed", "registry killed")
  local e = receive(events, 1000)
  lib.ok(e ~= nil and e.pid == rpid, "the starter got the registry's exit")
  lib.eq(e.reason, "killed", "exit reason")
  -- chip.stop: the starter gets a "normal" exit from the registry.
  send(cmd, { start = true })
  local reg2 = receive(events, 1000).reg
  local r2pid = process.subject_owner(reg2)
  chip.stop(reg2)
  e = receive(events, 1000)
  lib.ok(e ~= nil and e.pid == r2pid, "exit from the stopped registry")
  lib.eq(e.reason, "normal", "stop is a normal exit")
  send(cmd, "stop")
  lib.eq(down(hm).reason, "normal", "helper ended")
  lib.no_leftovers()
end)

lib.test("a registry dies with the non-trapping process that started it",
         function()
  local hand = process.new_subject()
  local o = spawn_owner(0)
  send(o.cmd, function()
    local reg = assert(chip.start("dies_with_starter"))
    send(hand, reg)
    receive(process.new_subject())
  end)
  local reg = receive(hand, 1000)
  local rm = process.monitor(process.subject_owner(reg))
  lib.ok(rawequal(chip.from("dies_with_starter"), reg), "named")
  process.exit(o.pid, "boom")
  lib.eq(down(o.mon).reason, "boom", "starter")
  lib.eq(down(rm).reason, "boom", "the linked registry got the same reason")
  lib.eq(chip.from("dies_with_starter"), nil, "its name is free")
  lib.no_leftovers()
end)

lib.test("chip.start(name) and chip.from(name) give the same object",
         function()
  local reg = new_registry("alpha")
  lib.ok(rawequal(chip.from("alpha"), reg), "from gives the same object")
  lib.ok(rawequal(chip.from("alpha"), chip.from("alpha")), "every time")
  lib.eq(chip.from("beta"), nil, "an unknown name gives nil")
  lib.eq(chip.from(""), nil, "the empty name is unknown")
  -- Unnamed registries are not found by any name and may be many.
  local u1, u2 = new_registry(), new_registry()
  lib.ok(u1 ~= u2, "two unnamed registries are distinct")
  lib.ok(rawequal(chip.from("alpha"), reg), "still alpha")
  -- The registry found by name is the one that works.
  local s = process.new_subject()
  chip.register(chip.from("alpha"), "g", s)
  same_subjects(chip.members(reg, "g"), { s }, "registered through from")
  stop_registry(u1)
  stop_registry(u2)
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("a name held by a live registry gives nil, name_taken", function()
  local reg = new_registry("taken")
  local before = core.process_count()
  local r, err = chip.start("taken")
  lib.eq(r, nil, "no second registry")
  lib.ok(type(err) == "table", "err is a table")
  lib.eq(err.kind, "name_taken", "err.kind")
  local text = tostring(err)
  lib.ok(type(text) == "string" and #text > 0, "tostring(err) gives text")
  lib.ok(text:find("taken", 1, true), "the message names the name: " .. text)
  lib.ok(not text:find("\n", 1, true), "one line")
  lib.ok(not text:find("table: ", 1, true), "readable: " .. text)
  lib.eq(core.process_count(), before, "no process was started")
  lib.ok(rawequal(chip.from("taken"), reg), "the name still gives the first")
  -- Names are byte strings: an embedded NUL is part of the name.
  local nul = new_registry("taken\0x")
  lib.ok(rawequal(chip.from("taken\0x"), nul), "a name with a NUL")
  lib.eq(chip.from("taken\0y"), nil, "a different name after the NUL")
  lib.ok(rawequal(chip.from("taken"), reg), "the prefix is another name")
  stop_registry(nul)
  -- Another name is fine.
  local other = new_registry("taken2")
  lib.ok(other ~= reg, "a different name starts a registry")
  stop_registry(other)
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("the registry ignores a normal exit; its caller survives stop",
         function()
  -- Linked, non-trapping caller (main itself).
  local reg = assert(chip.start("linked"))
  local pid = process.subject_owner(reg)
  local s = process.new_subject()
  chip.register(reg, "g", s)
  process.exit(pid, "normal")        -- ignored: the registry does not trap
  lib.eq(process.is_alive(pid), true, "registry alive after exit normal")
  same_subjects(chip.members(reg, "g"), { s }, "and it still answers")
  local m = process.monitor(pid)
  chip.stop(reg)                     -- a normal exit: the caller lives on
  lib.eq(down(m).reason, "normal", "stopped")
  lib.eq(process.is_alive(self()), true, "the linked caller survived")
  lib.eq(chip.from("linked"), nil, "name freed")
  lib.no_leftovers()
end)

lib.test("a stopped registry frees its name, a killed one too", function()
  local reg = new_registry("reusable")
  stop_registry(reg)
  lib.eq(chip.from("reusable"), nil, "stopped: the name is free")
  local reg2 = new_registry("reusable")
  lib.ok(not rawequal(reg2, reg) and reg2 ~= reg, "a new registry")
  lib.ok(rawequal(chip.from("reusable"), reg2), "from gives the new one")
  kill_registry(reg2)
  lib.eq(chip.from("reusable"), nil, "killed: the name is free")
  local reg3 = new_registry("reusable")
  lib.ok(rawequal(chip.from("reusable"), reg3), "started a third time")
  -- An exit signal other than kill frees it too.
  local pid = process.subject_owner(reg3)
  local m = process.monitor(pid)
  process.exit(pid, "shutdown")
  lib.eq(down(m).reason, "shutdown", "registry shut down")
  lib.eq(chip.from("reusable"), nil, "shutdown: the name is free")
  lib.no_leftovers()
end)

-- }=====================================================================

-- {=====================================================================
-- register and members
-- ======================================================================

lib.test("groups: strings, integers, floats and booleans", function()
  local reg = new_registry()
  local o = spawn_owner(12)
  local s = o.subs
  chip.register(reg, "a", s[1])
  chip.register(reg, 1, s[2])
  chip.register(reg, 1.0, s[3])       -- the same group as 1
  chip.register(reg, "1", s[4])       -- not the same as 1
  chip.register(reg, true, s[5])
  chip.register(reg, false, s[6])
  chip.register(reg, 1.5, s[7])
  chip.register(reg, "a\0b", s[8])
  chip.register(reg, "a\0c", s[9])
  chip.register(reg, -0.0, s[10])     -- the same group as 0
  chip.register(reg, 0, s[11])
  chip.register(reg, "", s[12])
  same_subjects(chip.members(reg, 1), { s[2], s[3] }, "group 1")
  same_subjects(chip.members(reg, 1.0), { s[2], s[3] }, "group 1.0")
  same_subjects(chip.members(reg, "1"), { s[4] }, "group \"1\"")
  same_subjects(chip.members(reg, "a"), { s[1] }, "group a")
  same_subjects(chip.members(reg, true), { s[5] }, "group true")
  same_subjects(chip.members(reg, false), { s[6] }, "group false")
  same_subjects(chip.members(reg, 1.5), { s[7] }, "group 1.5")
  same_subjects(chip.members(reg, 3 / 2), { s[7] }, "group 3/2")
  same_subjects(chip.members(reg, "a\0b"), { s[8] }, "embedded NUL b")
  same_subjects(chip.members(reg, "a\0c"), { s[9] }, "embedded NUL c")
  same_subjects(chip.members(reg, "a\0"), {}, "a prefix is another group")
  same_subjects(chip.members(reg, 0), { s[10], s[11] }, "group 0")
  same_subjects(chip.members(reg, 0.0), { s[10], s[11] }, "group 0.0")
  same_subjects(chip.members(reg, ""), { s[12] }, "the empty string")
  same_subjects(chip.members(reg, 2), {}, "group 2")
  local groups = chip.groups(reg)
  same_groups(groups, { "a", 1, "1", true, false, 1.5, "a\0b", "a\0c", 0,
                        "" })
  for _, g in ipairs(groups) do
    if g == 1 or g == 0 then
      lib.eq(math.type(g), "integer", "an integral group comes back integer")
    end
  end
  -- Extreme numbers: -2^63 is math.mininteger; 2^63 is no integer.
  local o2 = spawn_owner(3)
  chip.register(reg, math.mininteger, o2.subs[1])
  chip.register(reg, -2.0 ^ 63, o2.subs[2])
  chip.register(reg, 2.0 ^ 63, o2.subs[3])
  same_subjects(chip.members(reg, math.mininteger),
                { o2.subs[1], o2.subs[2] }, "mininteger and -2^63")
  same_subjects(chip.members(reg, 2.0 ^ 63), { o2.subs[3] }, "2^63")
  same_subjects(chip.members(reg, math.maxinteger), {}, "maxinteger")
  -- 2^53 as a float is the integer 2^53; 2^53 + 1 is another group.
  local o3 = spawn_owner(2)
  chip.register(reg, 2.0 ^ 53, o3.subs[1])
  chip.register(reg, (1 << 53) + 1, o3.subs[2])
  same_subjects(chip.members(reg, 1 << 53), { o3.subs[1] }, "2^53")
  same_subjects(chip.members(reg, (1 << 53) + 1), { o3.subs[2] }, "2^53+1")
  same_subjects(chip.members(reg, math.huge), {}, "inf is unknown")
  chip.register(reg, math.huge, o3.subs[1])
  chip.register(reg, -math.huge, o3.subs[2])
  same_subjects(chip.members(reg, math.huge), { o3.subs[1] }, "inf")
  same_subjects(chip.members(reg, -math.huge), { o3.subs[2] }, "-inf")
  end_owner(o3)
  end_owner(o2)
  end_owner(o)
  same_groups(chip.groups(reg), {}, "all gone")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("a subject in many groups; the same pair twice is kept once",
         function()
  local reg = new_registry()
  local o = spawn_owner(2)
  local a, b = o.subs[1], o.subs[2]
  chip.register(reg, "x", a)
  chip.register(reg, "y", a)
  chip.register(reg, 3, a)
  chip.register(reg, "x", b)
  chip.register(reg, "x", a)   -- again: kept once, at its first place
  chip.register(reg, 3, a)
  chip.register(reg, 3.0, a)   -- 3.0 is group 3: still once
  same_subjects(chip.members(reg, "x"), { a, b }, "x")
  same_subjects(chip.members(reg, "y"), { a }, "y")
  same_subjects(chip.members(reg, 3), { a }, "3")
  same_groups(chip.groups(reg), { "x", "y", 3 })
  end_owner(o)
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("members are listed in registration order", function()
  local reg = new_registry()
  local o = spawn_owner(6)
  local s = o.subs
  local order = { 4, 2, 6, 1, 5, 3 }
  local expected = {}
  for i, k in ipairs(order) do
    chip.register(reg, "ordered", s[k])
    expected[i] = s[k]
  end
  same_subjects(chip.members(reg, "ordered"), expected, "order")
  -- Re-registering the first does not move it.
  chip.register(reg, "ordered", s[4])
  same_subjects(chip.members(reg, "ordered"), expected, "order after repeat")
  end_owner(o)
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("distinct subjects of one process are distinct members", function()
  local reg = new_registry()
  local s1, s2, s3 = process.new_subject(), process.new_subject(),
                     process.new_subject()
  chip.register(reg, "mine", s1)
  chip.register(reg, "mine", s2)
  chip.register(reg, "mine", s3)
  local ms = chip.members(reg, "mine")
  same_subjects(ms, { s1, s2, s3 }, "three members")
  -- Each member is the very subject: messages reach the right one.
  send(ms[2], "to two")
  lib.same({ receive(s1, 0) }, { nil, "timeout" }, "nothing for s1")
  lib.eq(receive(s2, 0), "to two", "s2 got it")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("a subject of any process may be registered, by anyone", function()
  local reg = new_registry()
  local target = spawn_owner(2)
  -- A third process registers target's subject and ends.
  local r = spawn_owner(0)
  local done = process.new_subject()
  send(r.cmd, function()
    chip.register(reg, "theirs", target.subs[1])
    send(done, "registered")
  end)
  lib.eq(receive(done, 1000), "registered", "helper registered")
  -- Visible at once to another process (register takes effect at once).
  same_subjects(chip.members(reg, "theirs"), { target.subs[1] },
                "registered by someone else")
  lib.eq(down(r.mon).reason, "normal", "the registering process ended")
  same_subjects(chip.members(reg, "theirs"), { target.subs[1] },
                "the registerer's end does not delist it")
  -- main registers a subject owned by target as well.
  chip.register(reg, "theirs", target.subs[2])
  same_subjects(chip.members(reg, "theirs"), target.subs, "both")
  -- The owner's end is what delists them.
  end_owner(target)
  same_subjects(chip.members(reg, "theirs"), {}, "delisted with the owner")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("unknown group gives {}; members takes an optional timeout",
         function()
  local reg = new_registry()
  same_subjects(chip.members(reg, "nobody"), {}, "unknown group")
  same_subjects(chip.members(reg, 42, 50), {}, "unknown group, timeout")
  same_subjects(chip.members(reg, false), {}, "unknown boolean group")
  local s = process.new_subject()
  chip.register(reg, "g", s)
  same_subjects(chip.members(reg, "g"), { s }, "default timeout")
  same_subjects(chip.members(reg, "g", 50), { s }, "explicit timeout")
  same_subjects(chip.members(reg, "g", 5000), { s }, "5000 ms")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("members lists are read-only: every way of writing raises",
         function()
  local reg = new_registry()
  local s1, s2 = process.new_subject(), process.new_subject()
  chip.register(reg, "g", s1)
  chip.register(reg, "g", s2)
  local ms = chip.members(reg, "g")
  local ro = "chip.members list is read-only"
  lib.raises(function() ms[1] = s2 end, ro, "overwrite a member")
  lib.raises(function() ms[1] = nil end, ro, "remove a member")
  lib.raises(function() ms[3] = s1 end, ro, "append")
  lib.raises(function() ms.extra = true end, ro, "a string key")
  lib.raises(function() table.insert(ms, s1) end, ro, "table.insert")
  lib.raises(function() table.insert(ms, 1, s1) end, ro, "insert at 1")
  lib.raises(function() table.remove(ms) end, ro, "table.remove")
  lib.raises(function() table.sort(ms, function(a, b)
    return tostring(a) > tostring(b) end) end, ro, "table.sort")
  lib.raises(function() setmetatable(ms, nil) end, "protected metatable",
             "setmetatable")
  lib.eq(getmetatable(ms), ro, "getmetatable names it")
  -- The empty list of an unknown group is read-only too.
  local none = chip.members(reg, "nobody")
  lib.raises(function() none[1] = s1 end, ro, "write to the empty list")
  lib.eq(#none, 0, "still empty")
  -- Nothing was changed by the attempts.
  same_subjects(chip.members(reg, "g"), { s1, s2 }, "the registry")
  same_subjects(ms, { s1, s2 }, "the list")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("members lists read like plain arrays", function()
  local reg = new_registry()
  local s = {}
  for i = 1, 5 do
    s[i] = process.new_subject()
    chip.register(reg, "r", s[i])
  end
  local ms = chip.members(reg, "r")
  lib.eq(type(ms), "table", "a table")
  lib.eq(#ms, 5, "#")
  lib.ok(ms[0] == nil and ms[6] == nil and ms.x == nil, "missing keys")
  for i = 1, 5 do lib.ok(rawequal(ms[i], s[i]), "ms[" .. i .. "]") end
  local n = 0
  for i, v in ipairs(ms) do
    n = n + 1
    lib.ok(i == n and rawequal(v, s[i]), "ipairs " .. i)
  end
  lib.eq(n, 5, "ipairs visits all")
  n = 0
  for k, v in pairs(ms) do
    n = n + 1
    lib.ok(k == n and rawequal(v, s[k]), "pairs " .. tostring(k))
  end
  lib.eq(n, 5, "pairs visits all")
  local u = table.pack(table.unpack(ms))
  lib.eq(u.n, 5, "table.unpack gives all")
  for i = 1, 5 do lib.ok(rawequal(u[i], s[i]), "unpacked " .. i) end
  lib.eq(table.pack(table.unpack(chip.members(reg, "none"))).n, 0,
         "unpack of an empty list")
  local copy = table.move(ms, 1, #ms, 1, {})
  copy[1] = nil -- a copy is an ordinary table
  lib.eq(#ms, 5, "the copy is separate")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("members returns the same list until the group changes", function()
  local reg = new_registry()
  local a, b = process.new_subject(), process.new_subject()
  chip.register(reg, "g", a)
  local first = chip.members(reg, "g")
  lib.ok(rawequal(first, chip.members(reg, "g")), "same table, unchanged")
  lib.ok(rawequal(first, chip.members(reg, "g", 50)), "with a timeout too")
  -- Registering the same pair again, or in another group, changes nothing.
  chip.register(reg, "g", a)
  chip.register(reg, "other", b)
  lib.ok(rawequal(first, chip.members(reg, "g")), "still the same")
  -- A new member: a new list; the old one still shows what it showed.
  chip.register(reg, "g", b)
  local second = chip.members(reg, "g")
  lib.ok(not rawequal(first, second), "a new table after register")
  same_subjects(second, { a, b }, "after register")
  same_subjects(first, { a }, "the old snapshot is unchanged")
  -- A member's death: a new list again.
  local o = spawn_owner(1)
  chip.register(reg, "g", o.subs[1])
  local third = chip.members(reg, "g")
  same_subjects(third, { a, b, o.subs[1] }, "with the owner's subject")
  end_owner(o)
  local fourth = chip.members(reg, "g")
  lib.ok(not rawequal(third, fourth), "a new table after delisting")
  same_subjects(fourth, { a, b }, "delisted")
  lib.ok(rawequal(fourth, chip.members(reg, "g")), "then stable again")
  -- 1 and 1.0 are one group, so one list.
  chip.register(reg, 1, a)
  lib.ok(rawequal(chip.members(reg, 1), chip.members(reg, 1.0)), "1 is 1.0")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("a group emptied and made again gets a fresh list", function()
  local reg = new_registry()
  local o1 = spawn_owner(1)
  chip.register(reg, "again", o1.subs[1])
  local old = chip.members(reg, "again")
  same_subjects(old, { o1.subs[1] }, "first life")
  end_owner(o1)
  same_subjects(chip.members(reg, "again"), {}, "emptied")
  local o2 = spawn_owner(1)
  chip.register(reg, "again", o2.subs[1])
  local new = chip.members(reg, "again")
  lib.ok(not rawequal(old, new), "not the old list")
  same_subjects(new, { o2.subs[1] }, "second life")
  -- Also when the group empties and comes back between two calls.
  end_owner(o2)
  local o3 = spawn_owner(1)
  chip.register(reg, "again", o3.subs[1])
  same_subjects(chip.members(reg, "again"), { o3.subs[1] }, "third life")
  end_owner(o3)
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("the members cache stays bounded by the live groups", function()
  local reg = new_registry()
  -- 2,000 short-lived groups, each listed once while it lives.
  for i = 1, 2000 do
    local o = spawn_owner(1)
    chip.register(reg, "tmp" .. i, o.subs[1])
    lib.eq(#chip.members(reg, "tmp" .. i), 1, "tmp" .. i)
    end_owner(o)
  end
  collectgarbage()
  collectgarbage()
  local before = collectgarbage("count")
  for i = 2001, 4000 do
    local o = spawn_owner(1)
    chip.register(reg, "tmp" .. i, o.subs[1])
    lib.eq(#chip.members(reg, "tmp" .. i), 1, "tmp" .. i)
    end_owner(o)
  end
  collectgarbage()
  collectgarbage()
  -- Another 2,000 groups have come and gone: the heap has not grown by
  -- their lists (each is several hundred bytes; allow 64 KiB of noise).
  lib.ok(collectgarbage("count") - before < 64,
         string.format("heap grew by %.1f KiB",
                       collectgarbage("count") - before))
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("a subject whose owner already ended is not kept", function()
  local reg = new_registry()
  local o = spawn_owner(1)
  end_owner(o)
  chip.register(reg, "late", o.subs[1])
  same_subjects(chip.members(reg, "late"), {}, "not listed")
  same_groups(chip.groups(reg), {}, "no group")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("registered subjects are kept alive by the registry", function()
  local reg = new_registry()
  for _ = 1, 3 do chip.register(reg, "kept", process.new_subject()) end
  collectgarbage()
  collectgarbage()
  local ms = chip.members(reg, "kept")
  lib.eq(#ms, 3, "three members after a full collection")
  for i, s in ipairs(ms) do
    lib.eq(process.subject_owner(s), self(), "member " .. i .. " owner")
    send(s, i)
    lib.eq(receive(s, 0), i, "member " .. i .. " still works")
  end
  stop_registry(reg)
  collectgarbage()
  lib.no_leftovers()
end)

-- }=====================================================================

-- {=====================================================================
-- Delisting
-- ======================================================================

-- Registers the subjects of a victim and of a survivor in three groups,
-- ends the victim with `finish`, and checks right after its DOWN.
local function delisting_case(finish, expected_reason)
  local reg = new_registry()
  local victim, survivor = spawn_owner(3), spawn_owner(2)
  local v, s = victim.subs, survivor.subs
  chip.register(reg, "a", v[1])
  chip.register(reg, "a", s[1])
  chip.register(reg, "a", v[2])
  chip.register(reg, "b", v[1])
  chip.register(reg, "b", v[3])
  chip.register(reg, 7, v[3])
  chip.register(reg, 7, s[2])
  chip.register(reg, "only_victim", v[2])
  same_subjects(chip.members(reg, "a"), { v[1], s[1], v[2] }, "a before")
  finish(victim)
  lib.eq(down(victim.mon).reason, expected_reason, "victim's reason")
  -- No polling: the DOWN was observed, so the registry has let go.
  same_subjects(chip.members(reg, "a"), { s[1] }, "a after")
  same_subjects(chip.members(reg, "b"), {}, "b after")
  same_subjects(chip.members(reg, 7), { s[2] }, "7 after")
  same_subjects(chip.members(reg, "only_victim"), {}, "only_victim after")
  same_groups(chip.groups(reg), { "a", 7 }, "groups after")
  end_owner(survivor)
  same_groups(chip.groups(reg), {}, "groups at the end")
  stop_registry(reg)
  lib.no_leftovers()
end

lib.test("a killed process is delisted before its DOWN", function()
  delisting_case(function(o) process.kill(o.pid) end, "killed")
end)

lib.test("a process ended by an exit signal is delisted before its DOWN",
         function()
  delisting_case(function(o) process.exit(o.pid, "shutdown") end, "shutdown")
end)

lib.test("a process ending normally is delisted before its DOWN", function()
  delisting_case(function(o) send(o.cmd, "normal") end, "normal")
end)

lib.test("a crashed process is delisted before its DOWN", function()
  delisting_case(function(o) send(o.cmd, "crash!") end, "crash!")
end)

lib.test("delisting happens before any other process runs", function()
  -- The victim's last act is a send; the next process to run must
  -- already see it delisted, before any DOWN is looked at.
  local reg = new_registry()
  local bye = process.new_subject()
  local victim = spawn_owner(2)
  chip.register(reg, "v", victim.subs[1])
  chip.register(reg, "w", victim.subs[2])
  send(victim.cmd, function() send(bye, "bye") end)
  lib.eq(receive(bye, 1000), "bye", "last words")
  same_subjects(chip.members(reg, "v"), {}, "v, without waiting")
  same_subjects(chip.members(reg, "w"), {}, "w, without waiting")
  same_groups(chip.groups(reg), {}, "no groups")
  -- The same seen from a third process that never monitors anything.
  local victim2 = spawn_owner(1)
  chip.register(reg, "v", victim2.subs[1])
  local seen = process.new_subject()
  local watcher = spawn_owner(0)
  send(watcher.cmd, function()
    local own = process.new_subject()
    send(bye, own)
    receive(own)                       -- "go": victim2 has just ended
    send(seen, #chip.members(reg, "v"))
  end)
  local go = receive(bye, 1000)
  send(victim2.cmd, function() send(go, "go") end)
  lib.eq(receive(seen, 1000), 0, "the watcher saw no member")
  lib.eq(down(victim2.mon).reason, "normal", "victim2")
  lib.eq(down(watcher.mon).reason, "normal", "watcher")
  lib.eq(down(victim.mon).reason, "normal", "victim")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("delisting removes only the dead process's subjects, in order",
         function()
  local reg = new_registry()
  local A, B, C = spawn_owner(3), spawn_owner(3), spawn_owner(2)
  local a, b, c = A.subs, B.subs, C.subs
  local seq = { a[1], b[1], a[2], c[1], b[2], a[3], b[3], c[2] }
  for _, s in ipairs(seq) do chip.register(reg, "mix", s) end
  chip.register(reg, "other", b[3])
  chip.register(reg, "other", c[2])
  chip.register(reg, "other", a[1])
  chip.register(reg, "other", b[1])
  same_subjects(chip.members(reg, "mix"), seq, "mix before")
  process.kill(B.pid)
  lib.eq(down(B.mon).reason, "killed", "B killed")
  same_subjects(chip.members(reg, "mix"), { a[1], a[2], c[1], a[3], c[2] },
                "mix without B")
  same_subjects(chip.members(reg, "other"), { c[2], a[1] }, "other without B")
  -- Registering after a delisting appends at the end.
  local late = process.new_subject()
  chip.register(reg, "mix", late)
  same_subjects(chip.members(reg, "mix"),
                { a[1], a[2], c[1], a[3], c[2], late }, "appended")
  end_owner(A)
  same_subjects(chip.members(reg, "mix"), { c[1], c[2], late }, "without A")
  same_subjects(chip.members(reg, "other"), { c[2] }, "other without A")
  end_owner(C, "bye")
  same_subjects(chip.members(reg, "mix"), { late }, "only main's")
  same_groups(chip.groups(reg), { "mix" })
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("one owner's death delists it from every registry", function()
  local r1, r2 = new_registry(), new_registry()
  local o, keep = spawn_owner(1), process.new_subject()
  chip.register(r1, "g", o.subs[1])
  chip.register(r2, "g", o.subs[1])
  chip.register(r2, "g", keep)
  end_owner(o)
  same_subjects(chip.members(r1, "g"), {}, "r1")
  same_subjects(chip.members(r2, "g"), { keep }, "r2")
  stop_registry(r1)
  stop_registry(r2)
  lib.no_leftovers()
end)

lib.test("a registry may list registries, itself included", function()
  local r1, r2 = new_registry(), new_registry()
  chip.register(r1, "registries", r2)
  chip.register(r1, "registries", r1)
  same_subjects(chip.members(r1, "registries"), { r2, r1 }, "both listed")
  stop_registry(r2)
  same_subjects(chip.members(r1, "registries"), { r1 },
                "a stopped registry is delisted")
  stop_registry(r1)
  lib.raises(function() chip.members(r1, "registries") end, "not running")
  lib.no_leftovers()
end)

-- }=====================================================================

-- {=====================================================================
-- Registry life: supervision, death, stop
-- ======================================================================

lib.test("a registry restarted under a supervisor starts empty", function()
  local sup = assert(supervisor.start_spec {
    max_frequency = 5,
    frequency_period = 1,
    strategy = "one_for_one",
    init = function(children)
      return children:add(supervisor.worker(function()
        return chip.start("supervised")
      end):id("registry"))
    end,
  })
  local reg = chip.from("supervised")
  lib.ok(reg ~= nil, "the supervised registry is named")
  local kids = supervisor.which_children(sup)
  local old = process.subject_owner(reg)
  lib.ok(kids[1].pid == old, "the child is the registry process")
  local o = spawn_owner(2)
  chip.register(reg, "g", o.subs[1])
  chip.register(reg, 5, o.subs[2])
  same_subjects(chip.members(reg, "g"), { o.subs[1] }, "before")
  process.kill(old)
  -- The supervisor handles the exit before this request.
  kids = supervisor.which_children(sup)
  lib.eq(kids[1].status, "running", "restarted")
  lib.eq(kids[1].restarts, 1, "one restart")
  lib.ok(kids[1].pid ~= old, "a new registry process")
  local new = chip.from("supervised")
  lib.ok(new ~= nil and not rawequal(new, reg), "from gives the new registry")
  lib.ok(process.subject_owner(new) == kids[1].pid, "owned by the new child")
  same_subjects(chip.members(new, "g"), {}, "no members in g")
  same_subjects(chip.members(new, 5), {}, "no members in 5")
  same_groups(chip.groups(new), {}, "no groups")
  lib.raises(function() chip.members(reg, "g") end, "not running",
             "the old handle")
  lib.eq(process.is_alive(o.pid), true, "the member process lives on")
  end_owner(o)
  supervisor.stop(sup)
  lib.eq(chip.from("supervised"), nil, "the name is free after stop")
  lib.no_leftovers()
end)

lib.test("a registry's death does not harm registered processes", function()
  local reg = new_registry()
  -- A trapping member: it must not even get an exit message.
  local report = process.new_subject()
  local trapper = spawn_owner(1)
  send(trapper.cmd, function()
    process.trap_exits(true)
    local own = process.new_subject()
    send(report, own)
    receive(own)
    local e = select(new_selector():selecting_trapped_exits(), 0)
    send(report, e == nil and "no exit" or ("exit: " .. tostring(e.reason)))
  end)
  local trapper_cmd = receive(report, 1000)
  local plain = spawn_owner(2)
  chip.register(reg, "m", trapper.subs[1])
  chip.register(reg, "m", plain.subs[1])
  chip.register(reg, "n", plain.subs[2])
  chip.register(reg, "m", process.new_subject())   -- main's own
  kill_registry(reg)
  lib.eq(process.is_alive(plain.pid), true, "non-trapping member alive")
  lib.eq(process.is_alive(trapper.pid), true, "trapping member alive")
  send(trapper_cmd, "check")
  lib.eq(receive(report, 1000), "no exit", "no exit signal reached a member")
  lib.eq(down(trapper.mon).reason, "normal", "trapper ended")
  lib.eq(end_owner(plain), "normal", "the plain member still works")
  lib.no_leftovers()
end)

lib.test("chip.stop: the registry exits normal and then refuses members",
         function()
  local reg, pid = new_registry("stoppable")
  local s = process.new_subject()
  chip.register(reg, "g", s)
  local m = process.monitor(pid)
  chip.stop(reg)
  lib.eq(down(m).reason, "normal", "the registry process exits normal")
  lib.eq(process.is_alive(pid), false, "dead")
  local err = lib.raises(function() chip.members(reg, "g") end, "not running",
                         "members")
  lib.ok(tostring(err):find("members", 1, true), "the error names members")
  lib.raises(function() chip.members(reg, "g", 50) end, "not running",
             "members with a timeout")
  lib.raises(function() chip.groups(reg) end, "not running", "groups")
  lib.raises(function() chip.dispatch(reg, "g", function() end) end,
             "not running", "dispatch")
  -- register on a dead registry is silently dropped (a cast).
  local ok, e = pcall(chip.register, reg, "g", s)
  lib.ok(ok, "register on a dead registry does not raise: " .. tostring(e))
  lib.eq(table.pack(chip.register(reg, "g", s)).n, 0, "returns nothing")
  -- Stopping again is harmless.
  ok, e = pcall(chip.stop, reg)
  lib.ok(ok, "a second stop does not raise: " .. tostring(e))
  -- A killed registry behaves the same.
  local reg2 = new_registry()
  kill_registry(reg2)
  lib.raises(function() chip.members(reg2, 1) end, "not running",
             "killed: members")
  chip.register(reg2, 1, s)
  lib.no_leftovers()
end)

-- }=====================================================================

-- {=====================================================================
-- Bad input
-- ======================================================================

lib.test("bad arguments raise clear errors", function()
  local reg = new_registry()
  local s = process.new_subject()
  -- Groups.
  for _, bad in ipairs { {}, function() end, 0 / 0 } do
    lib.raises(function() chip.register(reg, bad, s) end, "bad argument #2",
               "register with a " .. type(bad) .. " group")
    lib.raises(function() chip.members(reg, bad) end, "bad argument #2",
               "members with a " .. type(bad) .. " group")
  end
  lib.raises(function() chip.register(reg, nil, s) end, "bad argument #2",
             "register with a nil group")
  lib.raises(function() chip.members(reg, nil) end, "bad argument #2",
             "members with a nil group")
  lib.raises(function() chip.register(reg, self(), s) end, "bad argument #2",
             "a pid as group")
  -- Subjects.
  for _, bad in ipairs { 42, "s", {}, self() } do
    lib.raises(function() chip.register(reg, "g", bad) end, "bad argument #3",
               "register of a " .. type(bad))
  end
  lib.raises(function() chip.register(reg, "g") end, "bad argument #3",
             "register of nil")
  -- Registries.
  for _, bad in ipairs { s, 42, "reg", {}, self() } do
    local what = tostring(bad)
    lib.raises(function() chip.register(bad, "g", s) end, "bad argument #1",
               "register into " .. what)
    lib.raises(function() chip.members(bad, "g") end, "bad argument #1",
               "members of " .. what)
    lib.raises(function() chip.groups(bad) end, "bad argument #1",
               "groups of " .. what)
    lib.raises(function() chip.stop(bad) end, "bad argument #1",
               "stop of " .. what)
    lib.raises(function() chip.dispatch(bad, "g", function() end) end,
               "bad argument #1", "dispatch over " .. what)
  end
  lib.raises(function() chip.members(nil, "g") end, "bad argument #1",
             "members of nil")
  lib.raises(function() chip.start({}) end, "bad argument #1", "table name")
  lib.raises(function() chip.from(nil) end, "bad argument #1", "from(nil)")
  lib.eq(process.is_alive(process.subject_owner(s)), true, "main alive")
  -- Nothing was stored by the failed calls.
  same_groups(chip.groups(reg), {}, "no groups after bad calls")
  -- Bad input to a dead registry still raises: it is not a dropped cast.
  stop_registry(reg)
  lib.raises(function() chip.register(reg, {}, s) end, "bad argument #2",
             "bad group, dead registry")
  lib.raises(function() chip.register(reg, "g", 1) end, "bad argument #3",
             "bad subject, dead registry")
  lib.no_leftovers()
end)

-- }=====================================================================

-- {=====================================================================
-- dispatch and groups
-- ======================================================================

lib.test("dispatch calls fn once per member in registration order",
         function()
  local reg = new_registry()
  local s = {}
  for i = 1, 4 do s[i] = process.new_subject() end
  for _, k in ipairs { 3, 1, 4, 2 } do chip.register(reg, "d", s[k]) end
  chip.register(reg, "d", s[3])    -- twice: still one call
  local seen = {}
  chip.dispatch(reg, "d", function(subject)
    seen[#seen + 1] = subject
    send(subject, "hello " .. #seen)
  end)
  same_subjects(seen, { s[3], s[1], s[4], s[2] }, "dispatch order")
  lib.eq(receive(s[3], 0), "hello 1", "first")
  lib.eq(receive(s[1], 0), "hello 2", "second")
  lib.eq(receive(s[4], 0), "hello 3", "third")
  lib.eq(receive(s[2], 0), "hello 4", "fourth")
  lib.same({ receive(s[3], 0) }, { nil, "timeout" }, "one call each")
  -- An unknown group calls nothing.
  local c = lib.counter()
  chip.dispatch(reg, "nobody", function(x) c(x) end)
  lib.expect_count(c, 0, "unknown group")
  -- fn may block: a call to another process per member.
  local echo = spawn_owner(1)
  local inbox = echo.subs[1]
  send(echo.cmd, function()
    while true do
      local m = receive(inbox)
      if m == "stop" then return end
      send(m.reply, m.n)
    end
  end)
  local answers = {}
  chip.dispatch(reg, "d", function(subject)
    answers[#answers + 1] = process.call(inbox, function(reply)
      return { reply = reply, n = #answers + 1 }
    end, 1000)
  end)
  lib.same(answers, { 1, 2, 3, 4 }, "blocking fn")
  send(inbox, "stop")
  lib.eq(down(echo.mon).reason, "normal", "echo ended")
  -- Registrations made by fn are not visited in the same dispatch.
  local added = {}
  chip.dispatch(reg, "d", function()
    local n = process.new_subject()
    added[#added + 1] = n
    chip.register(reg, "d", n)
  end)
  lib.eq(#added, 4, "one call per member at the start")
  lib.eq(#chip.members(reg, "d"), 8, "the new ones are registered")
  -- Bad fn.
  for _, bad in ipairs { "f", 1, {} } do
    lib.raises(function() chip.dispatch(reg, "d", bad) end, "bad argument #3",
               "dispatch with a " .. type(bad))
  end
  lib.raises(function() chip.dispatch(reg, "d") end, "bad argument #3",
             "dispatch without fn")
  lib.raises(function() chip.dispatch(reg, {}, function() end) end,
             "bad argument #2", "dispatch with a table group")
  -- An error in fn reaches the caller.
  lib.raises(function()
    chip.dispatch(reg, "d", function() error("inside fn") end)
  end, "inside fn", "fn raising")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("dispatch skips nobody and sends reach member processes",
         function()
  local reg = new_registry()
  local got = process.new_subject()
  local owners = {}
  for i = 1, 3 do
    owners[i] = spawn_owner(1)
    local o = owners[i]
    send(o.cmd, function() send(got, { i, receive(o.subs[1]) }) end)
    chip.register(reg, "pub", o.subs[1])
  end
  chip.dispatch(reg, "pub", function(subject) send(subject, "news") end)
  local heard = {}
  for _ = 1, 3 do
    local m = receive(got, 1000)
    lib.ok(m ~= nil, "a member answered")
    heard[m[1]] = m[2]
  end
  lib.same(heard, { "news", "news", "news" }, "every member got it")
  for i = 1, 3 do down(owners[i].mon) end
  same_subjects(chip.members(reg, "pub"), {}, "all delisted")
  stop_registry(reg)
  lib.no_leftovers()
end)

lib.test("groups lists exactly the groups with members", function()
  local reg = new_registry()
  same_groups(chip.groups(reg), {}, "empty registry")
  local lone, pair1, pair2 = spawn_owner(1), spawn_owner(1), spawn_owner(1)
  chip.register(reg, "lonely", lone.subs[1])
  chip.register(reg, 2, pair1.subs[1])
  chip.register(reg, 2, pair2.subs[1])
  chip.register(reg, true, pair1.subs[1])
  same_groups(chip.groups(reg), { "lonely", 2, true }, "three groups")
  end_owner(lone)
  same_groups(chip.groups(reg), { 2, true }, "lonely's only member died")
  end_owner(pair1, "crash")
  same_groups(chip.groups(reg), { 2 }, "2 still has a member")
  same_subjects(chip.members(reg, 2), { pair2.subs[1] }, "2's member")
  process.kill(pair2.pid)
  down(pair2.mon)
  same_groups(chip.groups(reg), {}, "no group left")
  -- A group comes back when registered again.
  chip.register(reg, "lonely", process.new_subject())
  same_groups(chip.groups(reg), { "lonely" }, "back again")
  stop_registry(reg)
  lib.no_leftovers()
end)

-- }=====================================================================

-- Kept last: it fails against the current lua/chip.lua (see the report),
-- and a failing case stops the file.
lib.test("dispatch's errors name dispatch and the caller's line", function()
  local reg = new_registry()
  local function where_and_what(fn)
    local ok, err = pcall(fn)
    lib.ok(not ok, "raised")
    return tostring(err)
  end
  local line = debug.getinfo(1, "l").currentline + 1
  local e1 = where_and_what(function() chip.dispatch(42, "g", print) end)
  lib.ok(e1:find("bad argument #1 to 'dispatch'", 1, true),
         "a bad registry names dispatch: " .. e1)
  lib.ok(e1:find("test_chip.lua:" .. line, 1, true),
         "and points at the caller: " .. e1)
  local e2 = where_and_what(function() chip.dispatch(reg, {}, print) end)
  lib.ok(e2:find("bad argument #2 to 'dispatch'", 1, true),
         "a bad group names dispatch: " .. e2)
  stop_registry(reg)
  local e3 = where_and_what(function() chip.dispatch(reg, "g", print) end)
  lib.ok(e3:find("dispatch", 1, true) and e3:find("not running", 1, true),
         "a stopped registry names dispatch: " .. e3)
  lib.no_leftovers()
end)
