-- test_supervisor_specs: specs are checked when they are declared, each
-- misuse a clear error naming the field and pointing at the caller's
-- file:line; specs are immutable values.
local lib = require "testlib"
local suplib = require "suplib"
local process = require "process"
local supervisor = require "supervisor"

lib.quiet()

local send, receive = process.send, process.receive
local worker, next_event = suplib.worker, suplib.next_event
local no_events, ids = suplib.no_events, suplib.ids

-- {=== Helpers
-- Checks that fn, written on a single line, raises an error that begins
-- with this file's name and that line and mentions every string given.
local function raises_here(fn, ...)
  local info = debug.getinfo(fn, "S")
  local ok, err = pcall(fn)
  if ok then error("expected an error from line " .. info.linedefined, 2) end
  local msg = tostring(err)
  local where = info.short_src .. ":" .. info.linedefined .. ":"
  if msg:sub(1, #where) ~= where then
    error(string.format("error %q does not point at %s", msg, where), 2)
  end
  for _, s in ipairs { ... } do
    if not msg:find(s, 1, true) then
      error(string.format("error %q does not mention %q", msg, s), 2)
    end
  end
  lib.ok(not msg:find("\n", 1, true), "one line: " .. msg)
  return msg
end

local function init_ok(children) return children end
-- }===

lib.test("child specs: each bad option is an error at the call", function()
  local spec = supervisor.worker(function() end)
  raises_here(function() supervisor.worker() end, "worker", "function")
  raises_here(function() supervisor.worker(42) end, "worker", "number")
  raises_here(function() supervisor.supervisor(42) end, "supervisor", "number")
  raises_here(function() supervisor.supervisor({}) end, "supervisor")
  raises_here(function() spec:restart("bogus") end, "restart", "bogus")
  raises_here(function() spec:restart() end, "restart")
  raises_here(function() spec:shutdown(-1) end, "shutdown", "-1")
  raises_here(function() spec:shutdown(1.5) end, "shutdown", "1.5")
  raises_here(function() spec:shutdown("forever") end, "shutdown", "forever")
  raises_here(function() spec:shutdown(1e300) end, "shutdown", "1e+300")
  raises_here(function() spec:shutdown(math.huge) end, "shutdown", "inf")
  raises_here(function() spec:shutdown(0 / 0) end, "shutdown", "nan")
  raises_here(function() spec:shutdown("5000") end, "shutdown", "\"5000\"")
  raises_here(function() spec:shutdown(math.mininteger) end, "shutdown", "must be an integer of ms from 0 to " .. math.maxinteger)
  raises_here(function() spec:id("") end, "id", "non-empty string")
  raises_here(function() spec:id(5) end, "id", "number")
  raises_here(function() spec:returning(42) end, "returning", "function")
  raises_here(function() supervisor.returning(spec, nil) end, "returning")
  raises_here(function() supervisor.returning({}, print) end, "returning")
  -- The good ones are accepted.
  spec:restart("temporary"):restart("transient"):shutdown(0)
    :shutdown("brutal_kill"):shutdown("infinity"):id("x")
    :returning(function() end)
  -- Any whole number of ms fits (a float with an integer value too).
  lib.eq(spec:shutdown(math.maxinteger).shutdown_spec, math.maxinteger,
         "math.maxinteger")
  lib.eq(math.type(spec:shutdown(5000.0).shutdown_spec), "integer", "5000.0")
  lib.no_leftovers()
end)

lib.test("tree specs: each bad field is an error at the call", function()
  raises_here(function() supervisor.start_spec(42) end, "start_spec", "table")
  raises_here(function() supervisor.start_spec() end, "start_spec", "table")
  raises_here(function() supervisor.start_spec {} end, "init")
  raises_here(function() supervisor.start(42) end, "init")
  raises_here(function() supervisor.start_spec { init = init_ok, strategy = "bogus" } end, "strategy", "bogus")
  raises_here(function() supervisor.start_spec { init = init_ok, max_frequency = -1 } end, "max_frequency", "-1")
  raises_here(function() supervisor.start_spec { init = init_ok, frequency_period = 0 } end, "frequency_period", "0")
  raises_here(function() supervisor.start_spec { init = init_ok, frequency_period = "5" } end, "frequency_period")
  raises_here(function() supervisor.start_spec { init = init_ok, strateggy = "one_for_one" } end, "unknown field", "strateggy")
  raises_here(function() supervisor.start_spec { init = init_ok, name = 7 } end, "name")
  raises_here(function() supervisor.start_spec { init = init_ok, [1] = 7 } end, "bad field [1] to 'start_spec' (unknown field)")
  lib.no_leftovers("nothing was started")
  -- Fractions of a second are a valid period.
  local sup = assert(supervisor.start_spec {
    init = init_ok, frequency_period = 0.25, max_frequency = 0, name = "t",
  })
  supervisor.stop(sup)
  lib.no_leftovers()
end)

-- Every number must fit the restart engine's limits (arbor.core.sup), so
-- nothing that passes can fail later inside a supervisor or a reload.
lib.test("numeric fields are range-checked against the engine's limits",
         function()
  local engine = require "arbor.core.sup"
  local maxi = engine.MAX_INTENSITY
  local range = "(must be an integer from 0 to " .. maxi .. ", got "
  local period = "(must be a number of seconds from 0.001 to "
                 .. engine.MAX_PERIOD_MS // 1000 .. ", got "
  -- Before, 2000000 crashed the new supervisor (and a non-trapping
  -- caller), 1 << 32 was truncated to 0 and math.huge failed inside.
  local msg = raises_here(function() supervisor.spec { init = init_ok, max_frequency = 2000000 } end, "bad field 'max_frequency' to 'spec' " .. range .. "2000000)")
  lib.ok(msg:find(tostring(maxi), 1, true), msg)
  raises_here(function() supervisor.start_spec { init = init_ok, max_frequency = 2000000 } end, "bad field 'max_frequency' to 'start_spec' " .. range)
  raises_here(function() supervisor.start_spec { init = init_ok, max_frequency = 1 << 32 } end, "max_frequency", tostring(1 << 32))
  raises_here(function() supervisor.start_spec { init = init_ok, max_frequency = maxi + 1 } end, "max_frequency", tostring(maxi + 1))
  raises_here(function() supervisor.start_spec { init = init_ok, max_frequency = math.maxinteger } end, "max_frequency")
  raises_here(function() supervisor.start_spec { init = init_ok, max_frequency = math.huge } end, "max_frequency", "inf")
  raises_here(function() supervisor.start_spec { init = init_ok, max_frequency = "5" } end, "max_frequency", "\"5\"")
  raises_here(function() supervisor.start_spec { init = init_ok, frequency_period = math.huge } end, "bad field 'frequency_period' to 'start_spec' " .. period .. "inf)")
  raises_here(function() supervisor.start_spec { init = init_ok, frequency_period = -math.huge } end, "frequency_period", "-inf")
  raises_here(function() supervisor.start_spec { init = init_ok, frequency_period = 0 / 0 } end, "frequency_period", "nan")
  raises_here(function() supervisor.start_spec { init = init_ok, frequency_period = 1e10 } end, "frequency_period", "10000000000.0")
  raises_here(function() supervisor.start_spec { init = init_ok, frequency_period = math.maxinteger } end, "frequency_period")
  raises_here(function() supervisor.start_spec { init = init_ok, frequency_period = 0.0004 } end, "frequency_period", "0.0004")
  raises_here(function() supervisor.spec { init = init_ok, frequency_period = 2e9 } end, "bad field 'frequency_period' to 'spec'")
  lib.no_leftovers("nothing was started")
  -- The limits themselves are accepted and the tree runs.
  for _, t in ipairs {
    { max_frequency = maxi, frequency_period = engine.MAX_PERIOD_MS // 1000 },
    { max_frequency = 0, frequency_period = 0.001 },
    { max_frequency = 3.0, frequency_period = 1e9 },
  } do
    t.init = init_ok
    local sup = assert(supervisor.start_spec(t))
    supervisor.stop(sup)
  end
  lib.eq(supervisor.spec { init = init_ok, max_frequency = 3.0 }.max_frequency,
         3, "a whole float is kept as an integer")
  lib.no_leftovers()
end)

-- `return supervisor.spec {...}` is a tail call, which loses the caller's
-- line: the error points at the tree's init instead, never at nothing.
lib.test("a spec error in a returned spec points into the script", function()
  local chunk = assert(load(table.concat({
    "local supervisor = require 'supervisor'",
    "return supervisor.spec {",
    "  max_frequency = 2000000,",
    "  init = function(c) return c end,",
    "}",
  }, "\n"), "=tree.lua"))
  local ok, err = pcall(chunk)
  lib.eq(ok, false, "raises")
  lib.eq(err, "tree.lua:4: bad field 'max_frequency' to 'spec' (must be an "
         .. "integer from 0 to 1048576, got 2000000)", "message")
  chunk = assert(load("return require('supervisor').start_spec { init = 5 }",
                      "=t2.lua"))
  ok, err = pcall(chunk)
  lib.eq(err, "bad field 'init' to 'start_spec' (function expected, got "
         .. "number)", "no init to point at: no position")
  lib.no_leftovers()
end)

-- Should flags outside the engine's limits reach it anyway, they are a
-- clean nil, err: never a truncation, never a crash of the supervisor.
lib.test("the engine's plan is walked in place: each report answers with "
         .. "the next step", function()
  local engine = require "arbor.core.sup"
  local e = assert(engine.new("rest_for_one", 1, 5000))
  local a, b = e:add("permanent", "worker"), e:add("permanent", "worker")
  lib.same({ e:step() }, { nil, "none", 0 }, "no plan yet")
  lib.same({ e:start() }, { "none", 0 }, "start's outcome")
  lib.same({ e:step() }, { "start", a }, "first step")
  lib.same({ e:step() }, { "start", a }, "reading moves nothing")
  lib.same({ e:step_done(a, 10) }, { "start", b }, "then b")
  lib.same({ e:step_done(b, 10) }, { nil, "none", 0 }, "done")
  -- b exits: one step; its start fails, and the retry takes its place.
  lib.same({ e:exit(b, "boom", 20) }, { "restart", b, "abnormal" },
           "exit: the reason is classified")
  local plan = e:plan()
  lib.eq(plan.outcome, "restart", "plan() outcome")
  lib.eq(plan.restarts, 1, "plan() restarts")
  lib.same({ plan[1].op, plan[1].key, plan[2] }, { "start", b, nil },
           "plan() steps")
  lib.same({ e:step() }, { "start", b }, "start b")
  lib.same({ e:start_failed(b, 21) }, { nil, "retry", b }, "retry")
  lib.eq(e:plan().outcome, "retry", "the current plan is the retry")
  -- The second restart in the period is one too many.
  lib.same({ e:retry(b, 22) }, { "give_up", b }, "give up")
  lib.same({ e:step() }, { "shutdown", a }, "shut the rest down")
  -- Reports out of turn and foreign selves raise.
  lib.ok(not pcall(e.step_done, e, b), "a report out of turn raises")
  lib.ok(not pcall(e.start_failed, e, a), "a failure of no start raises")
  lib.same({ e:step_done(a) }, { nil, "give_up", b }, "done")
  local ok, err = pcall(e.step, {})
  lib.ok(not ok and tostring(err):find("arbor.Sup expected", 1, true),
         tostring(err))
  ok, err = pcall(e.step, process.new_subject())
  lib.ok(not ok and tostring(err):find("arbor.Sup expected", 1, true),
         tostring(err))
end)

lib.test("adopt: the start handshake's checks on a start function's result",
         function()
  local adopt = require("arbor.core.sup").adopt
  local none, why = adopt(42)
  lib.eq(none, nil, "a number")
  lib.eq(why, "start function returned a number, expected a subject", why)
  none, why = adopt({})
  lib.eq(why, "start function returned a table, expected a subject", why)
  lib.eq(adopt(process.new_subject()), false, "our own subject")
  -- A live process's subject: its pid, linked to us.
  local hand = process.new_subject()
  local pid = process.spawn(function()
    local own = process.new_subject()
    send(hand, own)
    receive(own)
  end)
  local sub = receive(hand)
  process.trap_exits(true)
  lib.eq(adopt(sub), pid, "the owner's pid")
  send(sub, "go")
  local x = lib.trapped_exit()
  lib.ok(x and x.pid == pid and x.reason == "normal", "linked: its exit")
  -- A subject whose owner has exited: still started, as in OTP (the
  -- start returned it); the link's noproc exit, as Erlang's link/1
  -- gives a trapping caller, follows.
  lib.eq(adopt(sub), pid, "an exited owner is adopted")
  x = lib.trapped_exit()
  process.trap_exits(false)
  lib.ok(x and x.pid == pid and x.reason == "noproc", "noproc")
  lib.no_leftovers()
end)

lib.test("the engine rejects bad flags with nil, err, and a running tree "
         .. "keeps its old flags", function()
  local engine = require "arbor.core.sup"
  for _, f in ipairs {
    { "one_for_one", engine.MAX_INTENSITY + 1, 5000 },
    { "one_for_one", 1 << 32, 5000 },
    { "one_for_one", -1, 5000 },
    { "one_for_one", 1, 0 },
    { "one_for_one", 1, engine.MAX_PERIOD_MS + 1 },
    { "one_for_one", 1, math.maxinteger },
    { "one_for_one", 1.5, 5000 },
    { "one_for_one", "1", 5000 },
    { "one_for_one", 1, 0 / 0 },
    { "simple_one_for_one", 1, 5000 },
    { nil, 1, 5000 },
  } do
    local what = string.format("%s, %s, %s", f[1], f[2], f[3])
    local e, err, name = engine.new(f[1], f[2], f[3])
    lib.eq(e, nil, "new " .. what)
    lib.ok(tostring(err):find("invalid flags", 1, true), tostring(err))
    lib.eq(name, "EINVAL", "error name")
    local good = engine.new("rest_for_one", 1, 5000)
    local ok, err2 = good:set_flags(f[1], f[2], f[3])
    lib.eq(ok, nil, "set_flags " .. what)
    lib.ok(tostring(err2):find("invalid flags", 1, true), tostring(err2))
    lib.eq(good:set_flags("one_for_all", 2, 1000), true, "good flags")
  end
  -- A tree spec forged past validation fails its start cleanly, and the
  -- (non-trapping) caller lives on.
  local forged = setmetatable({ init = init_ok, max_frequency = 2000000,
                                frequency_period = 5,
                                strategy = "one_for_one" },
                              require("arbor.spec").TreeSpec)
  local none, err = supervisor.start_spec(forged)
  lib.eq(none, nil, "forged spec: no supervisor")
  lib.eq(err.kind, "init_failed", "forged spec: kind")
  lib.ok(tostring(err):find("invalid flags", 1, true), tostring(err))
  lib.no_leftovers("forged spec")
  -- A reload edit carrying such flags (it cannot pass validation, so it
  -- is forged here) leaves the tree running with its old flags.
  local ev = process.new_subject()
  process.trap_exits(true)
  local sup = assert(supervisor.start_spec {
    strategy = "one_for_one", max_frequency = 1, frequency_period = 3600,
    init = function(children)
      return children:add(supervisor.worker(worker(ev, "a")))
    end,
  })
  local st = {}
  local e = next_event(ev)
  st.pid, st.subject = e[3], e[5]
  local restarted = supervisor.apply(sup, {
    flags = { strategy = "one_for_all", max_frequency = 2000000,
              frequency_period = 5 },
    removed = {}, changed = {}, added = {}, nested = {}, ids = {},
  }, "")
  lib.same(restarted.restarted, {}, "nothing restarted")
  supervisor.apply(sup, {
    flags = { strategy = "one_for_all", max_frequency = 1.5,
              frequency_period = math.huge },
    removed = {}, changed = {}, added = {}, nested = {}, ids = {},
  }, "")
  lib.ok(process.is_alive(process.subject_owner(sup)), "the tree lives")
  -- Old flags: one restart passes, the second gives up.
  local m = process.monitor(st.pid)
  send(st.subject, { "exit", "boom" })
  process.select(process.new_selector():selecting_process_down(m))
  e = next_event(ev)
  lib.eq(e[1], "start", "restarted once")
  send(e[5], { "exit", "boom" })
  local x = lib.trapped_exit()
  process.trap_exits(false)
  lib.ok(x and x.pid == process.subject_owner(sup), "the tree's exit")
  lib.eq(x.reason, "shutdown", "max_frequency 1 still applied")
  lib.no_leftovers()
end)

lib.test("a duplicate id fails the start, naming the duplicate", function()
  local ev = process.new_subject()
  local line
  local sup, err = supervisor.start_spec {
    init = function(children)
      children:add(supervisor.worker(worker(ev, "a")):id("dup"))
      line = debug.getinfo(1, "l").currentline + 1
      children:add(supervisor.worker(worker(ev, "b")):id("dup"))
      return children
    end,
  }
  lib.eq(sup, nil, "no supervisor")
  lib.eq(err.kind, "init_failed", "kind")
  local msg = tostring(err)
  lib.ok(msg:find('duplicate child id "dup"', 1, true), "names it: " .. msg)
  lib.ok(msg:find("test_supervisor_specs.lua:" .. line .. ":", 1, true),
         "points at the add: " .. msg)
  no_events(ev, "nothing started")
  -- The usual chained form names it too.
  sup, err = supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")):id("x"))
        :add(supervisor.worker(worker(ev, "b")))
        :add(supervisor.worker(worker(ev, "c")):id("x"))
    end,
  }
  lib.eq(sup, nil, "no supervisor")
  lib.ok(tostring(err):find('duplicate child id "x"', 1, true),
         "names it: " .. tostring(err))
  no_events(ev, "nothing started")
  lib.no_leftovers()
end)

lib.test("add checks its arguments", function()
  local sup, err = supervisor.start_spec {
    init = function(children) return children:add(function() end) end,
  }
  lib.eq(sup, nil, "a function is not a spec")
  lib.ok(tostring(err):find("child spec expected", 1, true), tostring(err))
  sup, err = supervisor.start_spec {
    init = function(children)
      return supervisor.add({}, supervisor.worker(function() end))
    end,
  }
  lib.eq(sup, nil, "a plain table is not a children list")
  lib.ok(tostring(err):find("children list expected", 1, true),
         tostring(err))
  -- supervisor.add(children, spec) is the same as children:add(spec).
  local ev = process.new_subject()
  sup = assert(supervisor.start_spec {
    init = function(children)
      return supervisor.add(children, supervisor.worker(worker(ev, "a")))
    end,
  })
  lib.eq(next_event(ev)[2], "a", "started")
  supervisor.stop(sup)
  lib.no_leftovers()
end)

lib.test("specs are immutable: options return new specs", function()
  local ev = process.new_subject()
  local base = supervisor.worker(worker(ev, "base"))
  local named = base:id("named")
  local temporary = named:restart("temporary")
  local brutal = base:shutdown("brutal_kill")
  local plus = base:returning(function(n) return n + 100 end)
  lib.ok(named ~= base and temporary ~= named and plus ~= base, "new values")
  local sup = assert(supervisor.start_spec {
    argument = 1, strategy = "one_for_one", max_frequency = 10,
    init = function(children)
      return children
        :add(base)                                  -- id 1
        :add(named)                                 -- id "named"
        :add(supervisor.worker(worker(ev, "after_base")))
        :add(plus)                                  -- id 4, returns n + 100
        :add(supervisor.worker(worker(ev, "after_plus")))
        :add(brutal:id("brutal"))
    end,
  })
  local st = {}
  for _ = 1, 6 do
    local e = next_event(ev)
    st[#st + 1] = { name = e[2], pid = e[3], arg = e[4], subject = e[5] }
  end
  lib.same(ids(sup), { 1, "named", 3, 4, 5, "brutal" },
           "id did not change base")
  lib.eq(st[3].arg, 1, "returning did not change base")
  lib.eq(st[5].arg, 101, "the spec with returning")
  -- restart("temporary") did not change named: it is restarted.
  local m = process.monitor(st[2].pid)
  send(st[2].subject, { "exit", "boom" })
  process.select(process.new_selector():selecting_process_down(m))
  local e = next_event(ev)
  lib.same({ e[1], e[2] }, { "start", "base" }, "named was restarted")
  lib.same(ids(sup), { 1, "named", 3, 4, 5, "brutal" }, "still there")
  -- shutdown("brutal_kill") did not change base: base is asked, brutal not.
  supervisor.stop(sup)
  local stops = {}
  while true do
    local ev2 = receive(ev, 0)
    if ev2 == nil then break end
    stops[#stops + 1] = ev2[1]
  end
  lib.eq(#stops, 5, "five children asked to stop, brutal killed")
  lib.no_leftovers()
end)

lib.test("a tree spec is a value: copied when declared, started many times",
         function()
  local ev = process.new_subject()
  local t = {
    argument = "one",
    init = function(children)
      return children:add(supervisor.worker(worker(ev, "w")))
    end,
  }
  local value = supervisor.spec(t)
  t.argument = "two"
  local s1 = assert(supervisor.start_spec(value))
  local s2 = assert(supervisor.start_spec(value))
  lib.eq(next_event(ev)[4], "one", "first tree's argument")
  lib.eq(next_event(ev)[4], "one", "second tree's argument")
  lib.ok(process.subject_owner(s1) ~= process.subject_owner(s2),
         "two supervisors")
  supervisor.stop(s1)
  supervisor.stop(s2)
  lib.no_leftovers()
end)

-- supervisor.spec's errors point at its caller too (a tail call in M.spec
-- once dropped that frame).
lib.test("supervisor.spec: errors point at the caller too", function()
  raises_here(function() supervisor.spec("x") end, "spec", "table")
  raises_here(function() supervisor.spec { init = init_ok, strategy = "simple_one_for_one" } end, "strategy")
  raises_here(function() supervisor.spec { init = init_ok, max_frequency = 1.5 } end, "max_frequency")
  raises_here(function() supervisor.spec { init = init_ok, frequency_period = -5 } end, "frequency_period")
  raises_here(function() supervisor.spec { init = init_ok, intensity = 3 } end, "unknown field", "intensity")
  raises_here(function() supervisor.spec {} end, "init")
  lib.no_leftovers()
end)
