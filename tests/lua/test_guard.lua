-- test_guard: what user code cannot do to the host (host/bind/lguard.c):
-- misbehaving __tostring in every report path, Lua called back from C that
-- runs away, dead processes that would run on, debug.sethook.
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local core = require "arbor.core"

lib.quiet()
-- Runaways are cut after 200 ms here, so the cases stay quick.
local default_limit = core.set_runaway_limit(200)
lib.eq(default_limit, 5000, "default runaway limit")

local spawn, send, receive = process.spawn, process.send, process.receive

-- A process that counts ticks while others misbehave: if the host were
-- stalled it could not count.
local function start_ticker()
  local out = process.new_subject()
  local pid = spawn(function()
    local n = 0
    while true do
      process.sleep(5)
      n = n + 1
      send(out, n)
    end
  end)
  return pid, out
end

local function ticks_after(out, n)
  local last = 0
  while last < n do last = assert(receive(out, 5000), "ticker stopped") end
  return last
end

-- {=====================================================================
-- Misbehaving __tostring in reports
-- ======================================================================

local misbehaving = {
  raises = setmetatable({}, { __tostring = function() error("boom") end }),
  non_string = setmetatable({}, { __tostring = function() return {} end }),
  yields = setmetatable({}, { __tostring = function()
    process.sleep(1) -- a blocking call where nothing may yield
    return "never"
  end }),
  loops = setmetatable({}, { __tostring = function()
    while true do end
  end }),
  nested_loop = setmetatable({}, { __tostring = function()
    return tostring(setmetatable({}, { __tostring = function()
      while true do end
    end }))
  end }),
}

for name, value in pairs(misbehaving) do
  lib.test("a crash whose reason's __tostring " .. name
           .. " ends only that process", function()
    local ticker, ticks = start_ticker()
    core.quiet(false) -- the crash report is the path under test
    local _, m = lib.spawn_monitored(function() error(value) end)
    local down = lib.down(m, 5000)
    lib.quiet()
    lib.copy_of(down.reason, value, "the reason is a copy of the value")
    ticks_after(ticks, 3)
    process.kill(ticker)
    lib.no_leftovers()
  end)

  lib.test("core.describe of a value whose __tostring " .. name, function()
    local text = core.describe(value)
    lib.eq(type(text), "string", "a text")
    lib.eq(text, "(error object is a table value)", "the fallback")
  end)

  lib.test("a supervisor survives a child whose reason's __tostring "
           .. name, function()
    local started = process.new_subject()
    local sup = assert(supervisor.start_spec {
      strategy = "one_for_one", max_frequency = 5, frequency_period = 60,
      init = function(children)
        return children:add(supervisor.worker(function()
          local ready = process.new_subject()
          process.spawn_link(function()
            local inbox = process.new_subject()
            send(ready, inbox)
            send(started, inbox)
            receive(inbox)
            error(value)
          end)
          return receive(ready)
        end):id("w"))
      end,
    })
    local first = receive(started, 5000)
    send(first, "crash")
    local second = receive(started, 5000)
    lib.ok(second and second ~= first, "the child was restarted")
    local rows = supervisor.which_children(sup)
    lib.eq(rows[1].restarts, 1, "one restart")
    supervisor.stop(sup)
    lib.no_leftovers()
  end)
end

lib.test("describe: plain values, and tables without __tostring", function()
  lib.eq(core.describe("x"), "x", "string")
  lib.eq(core.describe(12), "12", "integer")
  lib.eq(core.describe(nil), "nil", "nil")
  lib.eq(core.describe(false), "false", "boolean")
  lib.eq(core.describe({}), "{}", "a table, by its contents")
  lib.eq(core.describe({ 1, "a" }), '{1, "a"}', "a table, by its contents")
  lib.eq(core.describe(setmetatable({}, { __tostring = function()
    return "fine"
  end })), "fine", "a good __tostring")
  lib.eq(core.describe(setmetatable({}, { __name = "Thing" })):match("^Thing: ")
         and true, true, "__name")
end)

-- }=====================================================================

-- {=====================================================================
-- Runaways: Lua called back from C cannot be preempted, so it is bounded
-- ======================================================================

local runaways = {
  ["a table.sort comparator"] = function()
    table.sort({ 3, 2, 1 }, function() while true do end end)
  end,
  ["a string.gsub callback"] = function()
    string.gsub("abc", "%w", function() while true do end end)
  end,
  ["an __index metamethod called from C (table.unpack)"] = function()
    local t = setmetatable({}, { __index = function() while true do end end })
    return table.unpack(t, 1, 1)
  end,
  ["a __tostring called by tostring"] = function()
    return tostring(setmetatable({}, { __tostring = function()
      while true do end
    end }))
  end,
  ["a loop under pcall inside a comparator"] = function()
    table.sort({ 3, 2, 1 }, function()
      while true do pcall(function() while true do end end) end
    end)
  end,
  ["a comparator under pcall"] = function()
    pcall(table.sort, { 3, 2, 1 }, function() while true do end end)
  end,
  ["a comparator under xpcall"] = function()
    xpcall(table.sort, function(e) return e end, { 3, 2, 1 },
           function() while true do end end)
  end,
  ["a comparator inside a coroutine"] = function()
    coroutine.resume(coroutine.create(function()
      table.sort({ 3, 2, 1 }, function() while true do end end)
    end))
  end,
}

for name, body in pairs(runaways) do
  lib.test("a runaway in " .. name .. " ends its process, and only it",
           function()
    local ticker, ticks = start_ticker()
    local after = process.new_subject()
    local _, m = lib.spawn_monitored(function()
      body()
      send(after, "ran on") -- a dead process must not get here
    end)
    local down = lib.down(m, 5000)
    lib.ok(tostring(down.reason):match("^runaway"), "runaway reason, got "
           .. tostring(down.reason))
    lib.no_message(after)
    ticks_after(ticks, 3)
    process.kill(ticker)
    lib.no_leftovers()
  end)
end

lib.test("a __gc finalizer that loops is cut; its process goes on",
         function()
  local out = process.new_subject()
  local _, m = lib.spawn_monitored(function()
    local mt = { __gc = function() while true do end end }
    setmetatable({}, mt)
    collectgarbage()
    collectgarbage()
    send(out, "ran on")
  end)
  lib.eq(receive(out, 5000), "ran on", "the process went on")
  lib.eq(lib.down(m, 5000).reason, "normal", "and ended normally")
  local ran = false
  setmetatable({}, { __gc = function() ran = true end })
  collectgarbage()
  lib.eq(ran, true, "a well-behaved finalizer still runs")
end)

lib.test("a metamethod called from Lua code is preempted, not a runaway",
         function()
  local ticker, ticks = start_ticker()
  local p = spawn(function()
    local t = setmetatable({}, { __index = function() while true do end end })
    return t.x
  end)
  ticks_after(ticks, 60) -- 300 ms: past the runaway limit
  lib.eq(process.is_alive(p), true, "still running, preempted")
  process.kill(p)
  process.kill(ticker)
  lib.no_leftovers()
end)

lib.test("a long but yieldable loop is never a runaway", function()
  local done = process.new_subject()
  local _, m = lib.spawn_monitored(function()
    local t0 = core.now()
    local n = 0
    while core.now() - t0 < 400 do n = n + 1 end -- twice the limit
    send(done, n)
  end)
  lib.ok(receive(done, 5000) > 0, "it finished")
  lib.eq(lib.down(m, 5000).reason, "normal", "ended normally")
end)

-- }=====================================================================

-- {=====================================================================
-- Blocking where nothing may yield
-- ======================================================================

-- receive or sleep in Lua that C called (a __tostring under tostring or
-- core.describe, a sort comparator) cannot block: it raises, and the
-- process goes on as it was, running with no wake timer.  It used to go
-- on marked waiting, with its timer and the subject it tried to receive
-- on still armed; a message to that subject then linked it into the run
-- queue while it ran, and a second wake linked it in twice: the host
-- crashed (segfault) once the process had ended.

local function self_state()
  local info = core.proc_info(process.self())
  return info.state, info.wakes_in
end

local function blocking_tostring(block)
  return setmetatable({}, { __tostring = function()
    block()
    return "never"
  end })
end

local blocked_in_c = {
  ["process.sleep in a __tostring under core.describe"] = function()
    local text = core.describe(blocking_tostring(function()
      process.sleep(1000)
    end))
    lib.eq(text, "(error object is a table value)", "the fallback")
  end,
  ["process.receive in a __tostring under tostring"] = function()
    local inbox = process.new_subject()
    local ok, err = pcall(tostring, blocking_tostring(function()
      receive(inbox, 1000)
    end))
    lib.eq(ok, false, "tostring raised")
    lib.ok(tostring(err):match("C%-call boundary"), "why: " .. tostring(err))
    -- The subject it tried to receive on: a message must not wake it.
    send(inbox, "later")
    lib.eq(receive(inbox, 0), "later", "the message is there")
  end,
  ["process.receive in a sort comparator"] = function()
    local inbox = process.new_subject()
    lib.eq(pcall(table.sort, { 3, 2, 1 }, function(a, b)
      receive(inbox)
      return a < b
    end), false, "sort raised")
  end,
}

for how, block in pairs(blocked_in_c) do
  lib.test(how .. " raises; the process runs on, not waiting", function()
    local out = process.new_subject()
    local _, m = lib.spawn_monitored(function()
      block()
      send(out, { self_state() })
    end)
    local seen = receive(out, 5000)
    lib.eq(seen[1], "running", "state after the failed block")
    lib.eq(seen[2], nil, "no wake timer left")
    lib.eq(lib.down(m, 5000).reason, "normal", "ended normally")
    lib.no_leftovers()
  end)
end

lib.test("woken while it runs after a failed block, a process is queued "
         .. "once (the host survives)", function()
  local inbox
  local receives = blocking_tostring(function() receive(inbox, 1000) end)
  local function victim(done)
    local ready = process.new_subject()
    local other = process.new_subject()
    inbox = process.new_subject()
    spawn(function() -- takes the run-next slot below
      local s = process.new_subject()
      send(ready, s)
      receive(s)
    end)
    local third = receive(ready)
    spawn(function()
      local s = process.new_subject()
      send(ready, s)
      receive(s)
      send(third, "wake") -- into the run-next slot, so the next wake ...
      send(other, "hello") -- ... puts the victim on the run queue
    end)
    local second = receive(ready)
    pcall(tostring, receives) -- a receive on inbox that cannot block
    send(second, "go") -- second into the run-next slot
    send(inbox, "self") -- a wake of the victim while it runs
    receive(inbox)
    send(done, receive(other, 5000))
  end
  for _ = 1, 5 do
    local done = process.new_subject()
    local _, m = lib.spawn_monitored(function() victim(done) end)
    lib.eq(receive(done, 5000), "hello", "the victim got its message")
    lib.eq(lib.down(m, 5000).reason, "normal", "and ended normally")
    -- New processes reuse the ended one's slot while the run queue is
    -- walked: where it had been linked in twice, this crashed the host.
    local pids = {}
    for i = 1, 20 do pids[i] = spawn(function() end) end
    for i = 1, 20 do lib.await_down(pids[i]) end
  end
  lib.no_leftovers()
end)

-- }=====================================================================

-- {=====================================================================
-- Dead means dead
-- ======================================================================

local suicides = {
  kill = function() process.kill(process.self()) end,
  exit = function() process.exit(process.self(), "gone") end,
}

for how, die in pairs(suicides) do
  lib.test("process." .. how .. "(self()) inside a C callback under pcall "
           .. "stops it at once", function()
    local out = process.new_subject()
    local _, m = lib.spawn_monitored(function()
      pcall(table.sort, { 3, 2, 1 }, function(a, b)
        die()
        send(out, "inside")
        return a < b
      end)
      send(out, "after")
    end)
    local down = lib.down(m, 5000)
    lib.eq(down.reason, how == "kill" and "killed" or "gone", "reason")
    lib.no_message(out)
    lib.no_leftovers()
  end)
end

lib.test("an xpcall handler does not run for a process killed inside a "
         .. "C callback", function()
  local ran = false
  local _, m = lib.spawn_monitored(function()
    xpcall(function()
      table.sort({ 3, 2, 1 }, function(a, b)
        process.kill(process.self())
        return a < b
      end)
    end, function(e)
      ran = true
      -- Bounded, so a regression fails instead of hanging the test.
      local t0 = os.clock()
      while os.clock() - t0 < 2 do end
      return e
    end)
  end)
  lib.eq(lib.down(m, 5000).reason, "killed", "killed")
  lib.eq(ran, false, "the handler never ran")
end)

lib.test("code that still runs for a dead process sends nothing", function()
  local out = process.new_subject()
  local _, m = lib.spawn_monitored(function()
    xpcall(table.sort, function(e)
      send(out, "from the message handler") -- runs before the rethrow
      return e
    end, { 3, 2, 1 }, function()
      local guard <close> = setmetatable({}, { __close = function()
        send(out, "from __close")
      end })
      process.kill(process.self())
    end)
    send(out, "after")
  end)
  lib.eq(lib.down(m, 5000).reason, "killed", "killed")
  lib.no_message(out)
end)

-- }=====================================================================

-- {=====================================================================
-- debug.sethook inside a process
-- ======================================================================

lib.test("debug.sethook does not switch preemption off", function()
  local others_ran = false
  local flag = spawn(function()
    process.sleep(1)
    others_ran = true
  end)
  local result = process.new_subject()
  local events = 0
  local p = spawn(function()
    debug.sethook(function() events = events + 1 end, "l")
    -- Long enough that the other process's 1 ms sleep ends meanwhile, if
    -- preemption still works; bounded so a failure cannot hang the test.
    local t0 = core.now()
    while not others_ran and core.now() - t0 < 3000 do end
    debug.sethook()
    send(result, others_ran)
  end)
  lib.eq(receive(result, 10000), true, "another process ran meanwhile")
  lib.ok(events > 0, "the user's line hook ran")
  lib.await_down(p)
  lib.await_down(flag)
end)

lib.test("a user count hook runs at its own count, preemption at its", function()
  local result = process.new_subject()
  local p = spawn(function()
    local counts = 0
    debug.sethook(function(ev)
      if ev == "count" then counts = counts + 1 end
    end, "", 100)
    local fn, mask, count = debug.gethook()
    local x = 0
    for i = 1, 100000 do x = x + i end
    debug.sethook()
    send(result, { counts = counts, mask = mask, count = count,
                   is_fn = type(fn) == "function", x = x })
  end)
  local r = receive(result, 5000)
  lib.ok(r.counts > 1000, "count events: " .. r.counts)
  lib.eq(r.mask, "", "gethook mask")
  lib.eq(r.count, 100, "gethook count")
  lib.eq(r.is_fn, true, "gethook function")
  lib.await_down(p)
end)

lib.test("a pooled thread gets the plain hook back", function()
  -- Many processes end with a hook set; later processes reuse their
  -- threads and must still be preempted.
  for _ = 1, 50 do
    local p = spawn(function() debug.sethook(function() end, "l") end)
    lib.await_down(p)
  end
  local seen = process.new_subject()
  local busy = {}
  for i = 1, 50 do
    busy[i] = spawn(function()
      lib.eq(debug.gethook(), nil, "no user hook")
      send(seen, true)
      while true do end
    end)
  end
  for _ = 1, 50 do lib.eq(receive(seen, 5000), true, "each one started") end
  for i = 1, 50 do process.kill(busy[i]) end
  for i = 1, 50 do lib.await_down(busy[i]) end
  lib.no_leftovers()
end)

lib.test("a process's own thread cannot be resumed or closed by another", function()
  -- The thread travels in a message (by identity); the receiver must not
  -- be able to run or end the other process behind the scheduler's back.
  local got = process.new_subject()
  local victim = spawn(function()
    local parked = process.new_subject()
    send(got, { co = coroutine.running(), parked = parked })
    lib.eq(receive(parked, 5000), "go on", "the victim runs on normally")
    send(got, "victim done")
  end)
  local msg = receive(got, 5000)
  local co, parked = msg.co, msg.parked
  lib.eq(type(co), "thread", "the thread arrived")
  local ok, err = coroutine.resume(co)
  lib.eq(ok, false, "resume refused")
  lib.eq(type(err) == "string" and err:find("process's own thread", 1, true)
         ~= nil, true, "resume names why: " .. tostring(err))
  local cok, cerr = pcall(coroutine.close, co)
  lib.eq(cok, false, "close refused")
  lib.eq(tostring(cerr):find("cannot be closed", 1, true) ~= nil, true,
         "close names why: " .. tostring(cerr))
  local wrapped = coroutine.wrap(function() return "mine" end)
  lib.eq(wrapped(), "mine", "a process's own coroutines still work")
  send(parked, "go on")
  lib.eq(receive(got, 5000), "victim done", "the victim was untouched")
  lib.await_down(victim)
  lib.no_leftovers()
end)

-- }=====================================================================

-- {=====================================================================
-- The host's state out of reach: metatables and the debug library
-- ======================================================================

lib.test("getmetatable shows an arbor handle's type name, not its metatable",
         function()
  -- With the metatable in hand, `mt.__gc = nil` let the collector free a
  -- subject the core still pointed to (ASan: heap-use-after-free).
  local s = process.new_subject()
  lib.eq(getmetatable(s), "arbor.Subject", "getmetatable(subject)")
  lib.eq(debug.getmetatable(s), "arbor.Subject", "debug.getmetatable")
  lib.eq(getmetatable(process.self()), "arbor.Pid", "a pid")
  lib.eq(getmetatable(process.monitor(process.self())), "arbor.Monitor",
         "a monitor")
  lib.ok(type(getmetatable("")) == "table", "strings' metatable as Lua's")
  local t = setmetatable({}, { __metatable = "mine" })
  lib.eq(getmetatable(t), "mine", "__metatable honoured as Lua does")
  lib.eq(getmetatable(io.stdout) ~= nil, true, "other C types as Lua's")
  local ok, err = pcall(debug.setmetatable, s, {})
  lib.eq(ok, false, "debug.setmetatable refused")
  lib.ok(tostring(err):find("cannot change the metatable of this "
                            .. "arbor.Subject", 1, true), "says why: " ..
         tostring(err))
  -- Subjects with queued messages, dropped and collected: nothing freed
  -- twice or read after it is freed (the sanitizer build checks).
  for i = 1, 50 do
    local x = process.new_subject()
    send(x, { i })
    pcall(debug.setmetatable, x, {})
  end
  collectgarbage()
  collectgarbage()
  local p = spawn(function() process.sleep(1) end)
  lib.await_down(p)
  lib.no_leftovers()
end)

lib.test("a subject checked once and freed is not taken for another handle",
         function()
  -- larb_check_subject remembers the last subjects it checked by address;
  -- a finalized subject must leave that memory, or a handle allocated at
  -- the same address afterwards would pass as a subject.
  for round = 1, 20 do
    do
      local a, b = process.new_subject(), process.new_subject()
      send(a, round)
      send(b, round)
      lib.eq(core.cached_subjects(), 2, "both remembered")
    end
    collectgarbage()
    collectgarbage()
    lib.eq(core.cached_subjects(), 0, "forgotten once collected")
    for _ = 1, 50 do
      local other = process.monitor(process.self())
      lib.raises(function() send(other, 1) end, "arbor.Subject expected",
                 "a monitor sent to")
      process.demonitor(other)
      local r = process.new_selector()
      lib.raises(function() process.receive(r, 0) end,
                 "arbor.Subject expected", "a selector received from")
    end
  end
  lib.no_leftovers()
end)

lib.test("the debug library's doors to the host's state are shut",
         function()
  local ok, err = pcall(debug.getregistry)
  lib.eq(ok, false, "debug.getregistry refused")
  lib.ok(tostring(err):find("not available in arbor", 1, true),
         "says why: " .. tostring(err))
  local sel = process.new_selector():selecting(process.new_subject())
  lib.raises(function() debug.getuservalue(sel, 1) end,
             "the user values of this arbor.Selector are the host's",
             "getuservalue")
  lib.raises(function() debug.setuservalue(sel, {}, 1) end,
             "the user values of this arbor.Selector are the host's",
             "setuservalue")
  -- C functions show no upvalues; Lua functions do, as in Lua.
  lib.same({ debug.getupvalue(process.new_subject, 1) }, {},
           "a C function's upvalue")
  lib.same({ debug.setupvalue(process.new_subject, 1, {}) }, {},
           "setting one sets nothing")
  local up = 42
  local function f() return up end
  lib.same({ debug.getupvalue(f, 1) }, { "up", 42 }, "a Lua upvalue")
  lib.eq(debug.setupvalue(f, 1, 43), "up", "set")
  lib.eq(f(), 43, "and seen")
  lib.no_leftovers()
end)

lib.test("type_methods gives methods, never a metamethod", function()
  -- A __gc handed out let `type_methods()["arbor.Subject"].__gc({})`
  -- crash the host (it trusts its argument's type).
  for name, methods in pairs(core.type_methods()) do
    for key in pairs(methods) do
      lib.ok(not key:find("^__"), name .. "." .. key .. " is not a metamethod")
    end
  end
  lib.ok(core.type_methods()["arbor.Selector"].selecting ~= nil,
         "methods are there")
  lib.no_leftovers()
end)

lib.test("another process's thread is refused by debug's thread functions",
         function()
  local got = process.new_subject()
  local victim = spawn(function()
    local secret = "mine"
    send(got, coroutine.running())
    process.receive(process.new_subject(), 5000)
    return secret
  end)
  local th = receive(got, 5000)
  for name, call in pairs {
    getlocal = function() return debug.getlocal(th, 1, 1) end,
    setlocal = function() return debug.setlocal(th, 1, 1, "x") end,
    sethook = function() return debug.sethook(th, print, "l") end,
    gethook = function() return debug.gethook(th) end,
  } do
    lib.raises(call, "another process's own thread", name)
  end
  process.kill(victim)
  lib.await_down(victim)
  -- A process's own coroutines stay open to it.
  local co = coroutine.create(function(a) coroutine.yield(a) end)
  coroutine.resume(co, 1)
  lib.same({ debug.getlocal(co, 1, 1) }, { "a", 1 }, "its own coroutine")
  lib.no_leftovers()
end)

lib.test("a finalizer at exit resuming a looping coroutine is bounded",
         function()
  -- At exit no slice runs, so no tick watches a coroutine a finalizer
  -- resumes: the host spun for ever.  Now the finalizer's time limit
  -- applies to it, and the host exits.
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write([[
    require("arbor.core").set_runaway_limit(200)
    local co = coroutine.create(function() while true do end end)
    KEEP = setmetatable({}, { __gc = function() coroutine.resume(co) end })
  ]])
  f:close()
  local pipe = assert(io.popen(string.format(
    "timeout -s KILL 60 '%s' run '%s' 2>&1; echo \"rc=$?\"", arg[-1], path)))
  local out = pipe:read("a")
  pipe:close()
  os.remove(path)
  lib.ok(out:find("rc=0", 1, true), "the host exited by itself: " .. out)
end)

lib.test("debug.getlocal and setlocal see Lua frames, not C ones", function()
  local function probe()
    local here = "value"
    return { debug.getlocal(1, 1) }, debug.setlocal(1, 1, "changed"), here
  end
  local got, set_name, after = probe()
  lib.same(got, { "here", "value" }, "getlocal of a Lua frame")
  lib.eq(set_name, "here", "setlocal of a Lua frame")
  lib.eq(after, "changed", "the local changed")
  lib.same({ debug.getlocal(print, 1) }, { nil }, "a C function's parameter")
  lib.eq(debug.getlocal(math.floor, 1), nil, "no names for C parameters")
  lib.same({ debug.getlocal(2, 1) }, {}, "xpcall's C frame shows nothing")
  -- A map function run by select reaching into select's own C frame:
  -- the slots its C code reads back stay untouched.
  local s = process.new_subject()
  send(s, "m")
  local probed = 0
  local sel = process.new_selector():selecting(s, function(m)
    for level = 1, 6 do
      local info = debug.getinfo(level, "S")
      if info and info.what == "C" then
        probed = probed + 1
        lib.eq(debug.setlocal(level, 1, "not a selector"), nil,
               "setlocal at C level " .. level)
        lib.same({ debug.getlocal(level, 1) }, {},
                 "getlocal at C level " .. level)
      end
    end
    return m
  end)
  lib.eq(process.select(sel, 1000), "m", "select went on")
  lib.ok(probed >= 1, "select's C frame was reached")
  local co = coroutine.create(function(a) coroutine.yield(a) end)
  coroutine.resume(co, "arg")
  lib.same({ debug.getlocal(co, 1, 1) }, { "a", "arg" },
           "a suspended coroutine's Lua frame")
  lib.no_leftovers()
end)

-- }=====================================================================

core.set_runaway_limit(default_limit)
