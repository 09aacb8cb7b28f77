-- test_supervisor_manage: which_children, count_children, terminate_child,
-- restart_child and stop, as a caller sees them.
local lib = require "testlib"
local suplib = require "suplib"
local process = require "process"
local supervisor = require "supervisor"
local core = require "arbor.core"

lib.quiet()

local worker, take, no_events = suplib.worker, suplib.take, suplib.no_events
local crash, column = suplib.crash, suplib.column

-- A tree of three workers with ids a, b, c (b transient) and a nested
-- tree with one worker x.
local function sample(ev, strategy, flags)
  flags = flags or {}
  return assert(supervisor.start_spec {
    strategy = strategy or "rest_for_one", argument = 0,
    max_frequency = flags.max_frequency or 10,
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")):id("a")
               :returning(function(n) return n + 1 end))
        :add(supervisor.worker(worker(ev, "b")):id("b"):restart("transient")
               :returning(function(n) return n + 1 end))
        :add(supervisor.supervisor(supervisor.spec {
          init = function(c) return c:add(supervisor.worker(worker(ev, "x"))) end,
        }):id("inner"))
        :add(supervisor.worker(worker(ev, "c")):id("c"))
    end,
  })
end

lib.test("which_children: start order, kind, status, restarts", function()
  local ev = process.new_subject()
  local before = core.now()
  local sup = sample(ev)
  local st = {}
  take(ev, 4, st)
  local list = supervisor.which_children(sup)
  lib.same(column(sup, "id"), { "a", "b", "inner", "c" }, "ids in start order")
  lib.same(column(sup, "kind"), { "worker", "worker", "supervisor", "worker" },
           "kinds")
  lib.same(column(sup, "status"),
           { "running", "running", "running", "running" }, "status")
  lib.same(column(sup, "restarts"), { 0, 0, 0, 0 }, "restarts")
  lib.ok(list[1].pid == st.a.pid and list[2].pid == st.b.pid
         and list[4].pid == st.c.pid, "pids")
  lib.ok(list[3].pid ~= st.x.pid and process.is_alive(list[3].pid),
         "the nested tree's own process")
  for i, c in ipairs(list) do
    lib.ok(c.started_at >= before and c.started_at <= core.now(),
           "started_at of child " .. i)
    lib.eq(c.last_reason, nil, "no last reason yet")
  end
  -- After a restart.
  crash(st.b, "boom")
  lib.same(take(ev, 5, st),
           { "stop c", "stop x", "start b", "start x", "start c" }, "restart")
  list = supervisor.which_children(sup)
  lib.same(column(sup, "restarts"), { 0, 1, 1, 1 }, "restarts")
  lib.eq(list[2].last_reason, "boom", "b's last reason")
  lib.eq(list[4].last_reason, "shutdown", "c's last reason")
  lib.ok(list[2].pid == st.b.pid, "b's new pid")
  -- A transient child ending normally stays stopped.
  crash(st.b, "normal")
  lib.same(column(sup, "status"),
           { "running", "stopped", "running", "running" }, "b stopped")
  lib.eq(supervisor.which_children(sup)[2].pid, nil, "no pid")
  supervisor.stop(sup)
  lib.same(take(ev, 3), { "stop c", "stop x", "stop a" }, "stop")
  lib.no_leftovers()
end)

lib.test("count_children", function()
  local ev = process.new_subject()
  local sup = sample(ev)
  local st = {}
  take(ev, 4, st)
  lib.same(supervisor.count_children(sup),
           { specs = 4, active = 4, workers = 3, supervisors = 1 }, "all up")
  crash(st.b, "normal")
  lib.same(supervisor.count_children(sup),
           { specs = 4, active = 3, workers = 3, supervisors = 1 },
           "a stopped child is a spec, not active")
  supervisor.terminate_child(sup, "inner")
  lib.same(supervisor.count_children(sup),
           { specs = 4, active = 2, workers = 3, supervisors = 1 },
           "a terminated supervisor child")
  supervisor.stop(sup)
  lib.no_leftovers()
end)

lib.test("terminate_child: the spec stays, stopped", function()
  local ev = process.new_subject()
  local sup = sample(ev, "one_for_one")
  local st = {}
  take(ev, 4, st)
  local m = process.monitor(st.a.pid)
  lib.eq(supervisor.terminate_child(sup, "a"), true, "result")
  lib.same(take(ev, 1), { "stop a" }, "a asked to shut down")
  local d = process.select(process.new_selector():selecting_process_down(m), 0)
  lib.ok(d ~= nil, "a dead when terminate_child returned")
  lib.eq(d.reason, "shutdown", "reason")
  local list = supervisor.which_children(sup)
  lib.same(column(sup, "id"), { "a", "b", "inner", "c" }, "spec kept")
  lib.eq(list[1].status, "stopped", "stopped")
  lib.eq(list[1].pid, nil, "no pid")
  lib.eq(list[1].last_reason, "shutdown", "last reason")
  lib.eq(list[1].restarts, 0, "not a restart")
  -- Terminating a stopped child again is fine (OTP: ok).
  lib.eq(supervisor.terminate_child(sup, "a"), true, "again")
  -- A nested tree stops as a whole.
  lib.eq(supervisor.terminate_child(sup, "inner"), true, "inner")
  lib.same(take(ev, 1), { "stop x" }, "the nested tree's child")
  no_events(ev, "nothing restarted")
  supervisor.stop(sup)
  lib.same(take(ev, 2), { "stop c", "stop b" }, "the rest")
  lib.no_leftovers()
end)

lib.test("terminate_child: a temporary child is dropped", function()
  local ev = process.new_subject()
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")):id("a"))
        :add(supervisor.worker(worker(ev, "t")):id("t"):restart("temporary"))
    end,
  })
  take(ev, 2)
  lib.eq(supervisor.terminate_child(sup, "t"), true, "result")
  lib.same(column(sup, "id"), { "a" }, "t dropped")
  local v, err = supervisor.terminate_child(sup, "t")
  lib.eq(v, nil, "t is gone")
  lib.eq(err.kind, "not_found", "kind")
  supervisor.stop(sup)
  lib.no_leftovers()
end)

lib.test("unknown ids give nil, not_found", function()
  local ev = process.new_subject()
  local sup = sample(ev)
  take(ev, 4)
  for _, id in ipairs { "nope", 7, 1 } do
    local v, err = supervisor.terminate_child(sup, id)
    lib.eq(v, nil, "terminate_child " .. tostring(id))
    lib.eq(err.kind, "not_found", "kind")
    lib.ok(tostring(err):find(tostring(id), 1, true), "names the id: "
           .. tostring(err))
    v, err = supervisor.restart_child(sup, id)
    lib.eq(v, nil, "restart_child " .. tostring(id))
    lib.eq(err.kind, "not_found", "kind")
  end
  -- Default ids are positions (integers).
  local s2 = assert(supervisor.start(function(children)
    return children:add(supervisor.worker(worker(ev, "p")))
  end))
  take(ev, 1)
  local v, err = supervisor.terminate_child(s2, "1")
  lib.eq(v, nil, "the string \"1\" is not the id 1")
  lib.eq(err.kind, "not_found", "kind")
  lib.eq(supervisor.terminate_child(s2, 1), true, "the position id")
  supervisor.stop(s2)
  supervisor.stop(sup)
  lib.no_leftovers()
end)

lib.test("restart_child: returns the new subject", function()
  local ev = process.new_subject()
  local sup = sample(ev, "one_for_one", { max_frequency = 0 })
  local st = {}
  take(ev, 4, st)
  local old = st.b.pid
  supervisor.terminate_child(sup, "b")
  take(ev, 1)
  local sub = supervisor.restart_child(sup, "b")
  take(ev, 1, st)
  lib.ok(process.subject_owner(sub) == st.b.pid and st.b.pid ~= old,
         "the new child's subject")
  lib.ok(sub == st.b.subject, "the subject the start function returned")
  lib.eq(st.b.arg, 1, "started with its threaded argument")
  local list = supervisor.which_children(sup)
  lib.eq(list[2].status, "running", "running")
  lib.ok(list[2].pid == st.b.pid, "pid")
  -- Manual restarts are not counted toward intensity (max_frequency 0).
  for _ = 1, 3 do
    supervisor.terminate_child(sup, "inner")
    take(ev, 1)
    lib.ok(supervisor.restart_child(sup, "inner"), "inner restarted")
    take(ev, 1)
  end
  lib.eq(process.is_alive(process.subject_owner(sup)), true, "alive")
  supervisor.stop(sup)
  lib.no_leftovers()
end)

lib.test("restart_child: errors", function()
  local ev = process.new_subject()
  local fail = false
  local start = worker(ev, "f")
  local sup = assert(supervisor.start_spec {
    init = function(children)
      return children
        :add(supervisor.worker(worker(ev, "a")):id("a"))
        :add(supervisor.worker(function(arg)
          if fail then return nil, "refused" end
          return start(arg)
        end):id("f"))
    end,
  })
  take(ev, 2)
  local v, err = supervisor.restart_child(sup, "a")
  lib.eq(v, nil, "a running child")
  lib.eq(err.kind, "running", "kind")
  lib.ok(tostring(err):find("running", 1, true), "message: " .. tostring(err))
  supervisor.terminate_child(sup, "f")
  take(ev, 1)
  fail = true
  v, err = supervisor.restart_child(sup, "f")
  lib.eq(v, nil, "a failing start")
  lib.ok(type(err) == "table" and type(err.kind) == "string", "an error value")
  lib.ok(tostring(err):find("refused", 1, true), "gives the reason: "
         .. tostring(err))
  local list = supervisor.which_children(sup)
  lib.same(column(sup, "id"), { "a", "f" }, "the spec is kept")
  lib.eq(list[2].status, "stopped", "stopped")
  lib.eq(list[2].pid, nil, "no pid")
  fail = false
  lib.ok(supervisor.restart_child(sup, "f"), "works again")
  take(ev, 1)
  supervisor.stop(sup)
  lib.no_leftovers()
end)

-- OTP: terminate_child keeps the spec, and a sibling's restart that takes
-- in the stopped child (one_for_all, or rest_for_one after the crashed
-- one) starts it again; a stopped child before the crashed one stays
-- stopped under rest_for_one.
lib.test("terminated children are restarted by a sibling's restart, as in OTP",
         function()
  local function tree(ev, strategy)
    return assert(supervisor.start_spec {
      strategy = strategy, max_frequency = 10,
      init = function(children)
        return children
          :add(supervisor.worker(worker(ev, "a")):id("a"))
          :add(supervisor.worker(worker(ev, "b")):id("b"))
          :add(supervisor.worker(worker(ev, "c")):id("c"))
      end,
    })
  end
  for _, strategy in ipairs { "rest_for_one", "one_for_all" } do
    local ev = process.new_subject()
    local sup = tree(ev, strategy)
    local st = {}
    take(ev, 3, st)
    lib.eq(supervisor.terminate_child(sup, "b"), true, "terminated")
    lib.same(take(ev, 1), { "stop b" }, strategy .. ": b stopped")
    lib.same(column(sup, "status"), { "running", "stopped", "running" },
             strategy .. ": b stopped")
    crash(st.a, "boom")
    lib.same(take(ev, 4, st), { "stop c", "start a", "start b", "start c" },
             strategy .. ": b started again with the others")
    lib.same(column(sup, "status"), { "running", "running", "running" },
             strategy .. ": status")
    lib.same(column(sup, "restarts"), { 1, 1, 1 }, strategy .. ": restarts")
    no_events(ev)
    supervisor.stop(sup)
    take(ev, 3)
    lib.no_leftovers(strategy)
  end
  -- rest_for_one: a terminated child before the crashed one is outside
  -- the restart and stays stopped.
  local ev = process.new_subject()
  local sup = tree(ev, "rest_for_one")
  local st = {}
  take(ev, 3, st)
  supervisor.terminate_child(sup, "a")
  take(ev, 1)
  crash(st.b, "boom")
  lib.same(take(ev, 3, st), { "stop c", "start b", "start c" },
           "a left alone")
  lib.same(column(sup, "status"), { "stopped", "running", "running" },
           "status")
  no_events(ev)
  supervisor.stop(sup)
  take(ev, 2)
  lib.no_leftovers()
end)

lib.test("stop, and calls to a stopped supervisor", function()
  local ev = process.new_subject()
  local sup = sample(ev)
  take(ev, 4)
  local pid = process.subject_owner(sup)
  supervisor.stop(sup)
  lib.same(take(ev, 4), { "stop c", "stop x", "stop b", "stop a" }, "order")
  lib.eq(process.is_alive(pid), false, "gone")
  supervisor.stop(sup) -- a second stop returns at once
  lib.raises(function() supervisor.which_children(sup) end, "exited",
             "which_children on a stopped supervisor")
  lib.raises(function() supervisor.count_children(sup) end, "exited",
             "count_children on a stopped supervisor")
  lib.raises(function() supervisor.which_children(42) end, "supervisor",
             "not a supervisor")
  lib.raises(function() supervisor.stop("x") end, "supervisor",
             "stop of a non-supervisor")
  lib.no_leftovers()
end)
