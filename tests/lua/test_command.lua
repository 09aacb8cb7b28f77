-- test_command: supervisor.command, OS processes as children of a tree:
-- readiness by line and by notify, ready timeout, exiting before ready,
-- exit status as the exit reason (restart types), shutdown by the stop
-- signal then SIGKILL, output to the log, the OS pid and STATUS= text
-- published for status, and live editing restarting only the changed
-- child.  (1,000 command children: test_command_many.lua.)
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local logger = require "logger"
local annotate = require "arbor.annotate"
local diff = require "arbor.diff"
local core = require "arbor.core"

lib.quiet()
local NOTIFY_SEND = os.getenv("ARBOR_NOTIFY_SEND")
local command = supervisor.command

local os_exists = lib.os_exists

local await = lib.await

local tree = require("suplib").tree

local function child(sup, id)
  for _, c in ipairs(supervisor.which_children(sup)) do
    if c.id == id then return c end
  end
end

local function os_pid_of(sup, id)
  local c = child(sup, id)
  local a = c and c.pid and annotate.get(c.pid)
  return a and a.os_pid
end

local function mktemp(suffix)
  local name = os.tmpname()
  os.remove(name)
  return name .. (suffix or "")
end

lib.test("ready by line: start returns once a line matches", function()
  logger.keep_recent(100)
  local _, before = logger.recent()
  local marker = mktemp()
  local sup = assert(tree{ command{ "sh", "-c",
      "echo warming; echo 'listening on 4242'; touch " .. marker .. "; exec sleep 1000",
      ready = { line = "^listening on %d+" } }:id("web") })
  -- The line came before start returned; the marker right after it.
  local pid = os_pid_of(sup, "web")
  lib.ok(math.type(pid) == "integer" and os_exists(pid), "OS pid published")
  await(function()
    local f = io.open(marker)
    if f then f:close() end
    return f ~= nil
  end, "command went on")
  os.remove(marker)
  -- Its lines went to the log, tagged with the stream and the OS pid.
  local seen = {}
  for _, e in ipairs(logger.recent(before)) do
    if e.text:find("os_pid=" .. pid, 1, true) then seen[#seen + 1] = e.text end
  end
  lib.ok(seen[1] and seen[1]:find("^warming") and seen[1]:find("stream=stdout"),
         "first line logged: " .. tostring(seen[1]))
  lib.ok(seen[2] and seen[2]:find("^listening on 4242"), "second line logged")
  lib.ok(seen[1]:find("child=web", 1, true), "tagged with the child's id")
  supervisor.stop(sup)
  await(function() return not os_exists(pid) end, "stopped with its tree")
end)

lib.test("ready by notify: READY=1, STATUS= published", function()
  lib.ok(NOTIFY_SEND, "ARBOR_NOTIFY_SEND names the helper")
  local sup = assert(tree{ command{ NOTIFY_SEND, "STATUS=warming up",
      "STATUS=serving 3 clients", "READY=1", "--", "sleep", "1000",
      ready = "notify" }:id("svc") })
  local c = child(sup, "svc")
  local a = annotate.get(c.pid)
  lib.eq(a.status_text, "serving 3 clients", "last STATUS=")
  lib.ok(os_exists(a.os_pid), "running")
  local pid = a.os_pid
  supervisor.stop(sup)
  await(function() return not os_exists(pid) end, "stopped")
  lib.eq(annotate.get(c.pid), nil, "facts gone with the child")
end)

lib.test("ready timeout and exiting before ready fail the start", function()
  local t0 = core.now()
  local sup, err = tree{ command{ "sleep", "1000", ready = { line = "never" },
                                  ready_timeout = 200 }:id("slow") }
  lib.eq(sup, nil, "start failed")
  lib.ok(tostring(err):find("not ready after 200 ms", 1, true),
         "timeout reason: " .. tostring(err))
  lib.ok(core.now() - t0 >= 200, "waited the timeout")
  local sup2, err2 = tree{ command{ "sh", "-c", "echo nope; exit 3",
                                    ready = "notify" }:id("quits") }
  lib.eq(sup2, nil, "start failed")
  lib.ok(tostring(err2):find("exited before it was ready (exit status 3)", 1, true),
         "exit reason: " .. tostring(err2))
  local sup3, err3 = tree{ command{ "arbor-test-no-such-command" }:id("missing") }
  lib.eq(sup3, nil, "missing command fails the start")
  lib.ok(tostring(err3):find("spawn arbor-test-no-such-command: no such file or directory",
                            1, true), tostring(err3))
  local why = err3.reason
  lib.eq(type(why) == "table" and why.kind, "enoent", "the reason: kind enoent")
  lib.eq(why.path, "arbor-test-no-such-command", "the reason names the command")
end)

lib.test("exit status is the exit reason; restart types apply", function()
  -- transient: exit 0 is normal (not restarted), exit 3 is restarted.
  local flag = mktemp()
  local script = "if [ -e " .. flag .. " ]; then exit 0; fi; touch " .. flag .. "; exit 3"
  local sup = assert(tree{ command{ "sh", "-c", script }:id("t"):restart("transient") })
  await(function()
    local c = child(sup, "t")
    return c and c.pid == nil
  end, "transient child ended normally after one restart")
  os.remove(flag)
  supervisor.stop(sup)
  -- The reason a supervisor sees, in its report: the reason's text.
  core.quiet(false) -- (reports are what is checked here)
  logger.keep_recent(200)
  local _, before = logger.recent()
  local probe = assert(tree{ command{ "sh", "-c", "kill -USR1 $$" }
                             :id("sig"):restart("temporary"),
                             command{ "sh", "-c", "exit 5" }
                             :id("st"):restart("temporary") })
  local texts
  await(function()
    texts = {}
    for _, e in ipairs(logger.recent(before)) do
      if e.kind == "supervisor" then texts[#texts + 1] = e.text end
    end
    local all = table.concat(texts, "\n")
    return all:find("killed by signal USR1", 1, true)
           and all:find("exit status 5", 1, true)
  end, "supervisor reports name the exit status and the signal")
  supervisor.stop(probe)
  lib.quiet()
  local r1 = require("arbor.command").reason_of{ signal = "USR1" }
  local r2 = require("arbor.command").reason_of{ exit = 5 }
  lib.eq(tostring(r1), "killed by signal USR1", "signal reason text")
  lib.eq(tostring(r2), "exit status 5", "status reason text")
  lib.eq(require("arbor.command").reason_of{ exit = 0 }, "normal", "0 is normal")
end)

lib.test("permanent command restarted after kill -9, new OS pid", function()
  local sup = assert(tree{ command{ "sleep", "1000" }:id("s") })
  local first = os_pid_of(sup, "s")
  os.execute("kill -9 " .. first)
  local second
  await(function()
    second = os_pid_of(sup, "s")
    return second and second ~= first
  end, "replacement running")
  lib.ok(os_exists(second), "replacement alive")
  await(function() return not os_exists(first) end, "old one reaped")
  supervisor.stop(sup)
  await(function() return not os_exists(second) end, "stopped")
end)

lib.test("shutdown: stop_signal first, then SIGKILL after the shutdown time", function()
  -- Leaves on SIGUSR1 (its stop signal), printing that it did.
  logger.keep_recent(200)
  local _, before = logger.recent()
  local sup = assert(tree{ command{ "sh", "-c",
      "trap 'echo got-usr1; exit 0' USR1; echo up; while :; do sleep 0.05; done",
      stop_signal = "USR1", ready = { line = "^up$" } }:id("polite") })
  local pid = os_pid_of(sup, "polite")
  supervisor.stop(sup)
  local said = false
  for _, e in ipairs(logger.recent(before)) do
    if e.text:find("^got%-usr1") then said = true end
  end
  lib.ok(said, "the stop signal reached it and it logged on the way out")
  await(function() return not os_exists(pid) end, "gone")
  -- Ignores SIGTERM: killed when the 200 ms shutdown time has passed.
  local t0 = core.now()
  local sup2 = assert(tree{ command{ "sh", "-c",
      "trap '' TERM; echo up; while :; do sleep 0.05; done",
      ready = { line = "^up$" } }:id("stubborn"):shutdown(200) })
  local pid2 = os_pid_of(sup2, "stubborn")
  supervisor.stop(sup2)
  await(function() return not os_exists(pid2) end, "killed after the shutdown time")
  lib.ok(core.now() - t0 >= 200, "waited the shutdown time first")
  -- brutal_kill: at once.
  local sup3 = assert(tree{ command{ "sh", "-c",
      "trap '' TERM; echo up; while :; do sleep 0.05; done",
      ready = { line = "^up$" } }:id("brutal"):shutdown("brutal_kill") })
  local pid3 = os_pid_of(sup3, "brutal")
  supervisor.stop(sup3)
  await(function() return not os_exists(pid3) end, "killed at once")
end)

lib.test("live editing compares the command by value", function()
  local function specs(flag)
    return { command{ "sleep", "1000" }:id("a"),
             command{ "sleep", flag }:id("b"),
             command{ "sleep", "1000", env = { X = "1" }, cwd = "/" }:id("c") }
  end
  local old, same, changed = specs("999"), specs("999"), specs("998")
  lib.ok(diff.equal(old[1].start, same[1].start), "same command, equal starts")
  lib.ok(diff.equal(old[3].start, same[3].start), "same env/cwd, equal starts")
  lib.ok(not diff.equal(old[2].start, changed[2].start), "one flag changed")
  lib.ok(diff.equal(old[1].start, changed[1].start), "the others unchanged")
  local env_changed = command{ "sleep", "1000", env = { X = "2" }, cwd = "/" }
  lib.ok(not diff.equal(old[3].start, env_changed.start), "env is compared")
  local cwd_changed = command{ "sleep", "1000", env = { X = "1" }, cwd = "/tmp" }
  lib.ok(not diff.equal(old[3].start, cwd_changed.start), "cwd is compared")
  lib.eq(old[2].command.argv[2], "999", "the command is plain data on the spec")
  -- Applied to a running tree: only b's OS process changes.
  local spec = require "arbor.spec"
  local function tree_of(children)
    return supervisor.spec{
      strategy = "one_for_one", max_frequency = 10, frequency_period = 10,
      init = function(c)
        for _, s in ipairs(children) do c = c:add(s) end
        return c
      end }
  end
  local old_tree = tree_of(old)
  local sup = assert(supervisor.start_spec(old_tree))
  local before = { a = os_pid_of(sup, "a"), b = os_pid_of(sup, "b"),
                   c = os_pid_of(sup, "c") }
  local edit = diff.tree(spec.resolve(old_tree), spec.resolve(tree_of(changed)))
  local ok, err = pcall(supervisor.apply, sup, edit, "")
  lib.ok(ok, "edit applied: " .. tostring(err))
  local after
  await(function()
    after = { a = os_pid_of(sup, "a"), b = os_pid_of(sup, "b"),
              c = os_pid_of(sup, "c") }
    return after.b and after.b ~= before.b
  end, "b restarted")
  lib.eq(after.a, before.a, "a kept its OS process")
  lib.eq(after.c, before.c, "c kept its OS process")
  await(function() return not os_exists(before.b) end, "old b stopped")
  supervisor.stop(sup)
end)

lib.test("bad specs are refused at the line that made them", function()
  lib.raises(function() command{} end, "needs the command")
  lib.raises(function() command{ "x", ready = "soon" } end, "ready must be")
  lib.raises(function() command{ "x", ready = { line = "[" } } end, "not a valid pattern")
  lib.raises(function() command{ "x", ready_timeout = -1 } end, "ready_timeout")
  lib.raises(function() command{ "x", stop_signal = "NOPE" } end, "stop_signal")
  lib.raises(function() command{ "x", output = "file" } end, "output must be")
  lib.raises(function() command{ "x", colour = "red" } end, "unknown field 'colour'")
  lib.raises(function() command{ "x", env = { ["A=B"] = "1" } } end, "env names")
  -- NUL bytes would cut a C string short: refused, naming the field.
  lib.raises(function() command{ "sh", "-c\0x" } end,
             "argument 2 of the command contains a NUL byte")
  lib.raises(function() command{ "s\0h" } end,
             "argument 1 of the command contains a NUL byte")
  lib.raises(function() command{ "sh", cwd = "/tmp\0/x" } end, "cwd contains a NUL byte")
  lib.raises(function() command{ "sh", env = { ["A\0B"] = "1" } } end,
             'NUL bytes, got "A\\0B"')
  lib.raises(function() command{ "sh", env = { A = "1\0" } } end,
             "env value of A contains a NUL byte")
  lib.raises(function() command{ "sh", stop_signal = "TERM\0KILL" } end,
             "stop_signal contains a NUL byte")
  -- Booleans are booleans; ready_timeout is a positive, sane integer.
  lib.raises(function() command{ "sh", clear_env = 1 } end,
             "clear_env must be a boolean, got number")
  lib.raises(function() command{ "sh", clear_env = "yes" } end,
             "clear_env must be a boolean, got string")
  for _, bad in ipairs { 0, -1, 0.5, 1000.5, 0 / 0, math.huge, -math.huge,
                         1 << 40, math.maxinteger, "100" } do
    lib.raises(function() command{ "sh", ready_timeout = bad } end,
               "ready_timeout must be a positive integer of ms",
               "ready_timeout = " .. tostring(bad))
  end
  lib.eq(command{ "sh", ready_timeout = 1 }.command.ready_timeout, 1, "1 ms is fine")
  -- The ready pattern is checked whole, up front (Lua would only find
  -- some of these mistakes when the matcher reached them).
  for pattern, says in pairs {
    ["ready["] = "missing ']'", ["(%d+"] = "unfinished capture",
    ["up)"] = "closes no capture", ["100%"] = "ends with '%'",
    ["%b("] = "missing arguments to '%b'", ["%fx"] = "missing '[' after '%f'",
    ["(a)%2"] = "invalid capture index %2", ["%q"] = "not a character class",
  } do
    local err = lib.raises(function() command{ "sh", ready = { line = pattern } } end,
                           "ready.line is not a valid pattern: ", pattern)
    lib.ok(tostring(err):find(says, 1, true), pattern .. ": " .. tostring(err))
  end
  lib.raises(function() command{ "sh", ready = { line = 4 } } end,
             "ready.line must be a Lua pattern (a string), got number")
  lib.raises(function() command{ "sh", ready = { lines = "x" } } end,
             'ready has an unknown field "lines"')
  -- The position is the caller's, also for checks made a level deeper.
  for _, bad in ipairs { { "x", output = "file" }, { "x", stop_signal = "NOPE" },
                         { "x", ready = { line = "[" } }, { "x", ready_timeout = 0 },
                         { "x\0" } } do
    local err = lib.raises(function() command(bad) end, "bad argument")
    lib.ok(tostring(err):find("^[^\n]*test_command%.lua:%d+: bad argument") ~= nil,
           "error at the caller's line: " .. tostring(err))
  end
end)

lib.no_leftovers("test_command")
print("test_command: ok")
