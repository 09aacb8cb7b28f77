-- test_port: the port module: OS processes owned by arbor processes, each
-- leading its own process group; output framed in C and delivered as
-- messages, the exit last; stdin; signals to the group; the owner's end
-- stopping the group; close-on-exec.  Real OS processes throughout.
local lib = require "testlib"
local process = require "process"
local port = require "port"
local fs = require "fs"
local net = require "net"
local core = require "arbor.core"

lib.quiet()

-- Every message of p until its exit (inclusive), in order.
local function collect(p, timeout_ms)
  local sel = process.new_selector():selecting_port(p)
  local out = {}
  local deadline = core.now() + (timeout_ms or 10000)
  while true do
    local left = deadline - core.now()
    local m = left > 0 and process.select(sel, left) or nil
    lib.ok(m, "port messages before the deadline")
    lib.eq(m.port, p, "message names its port")
    out[#out + 1] = m
    if m.exit ~= nil or m.signal ~= nil then return out end
  end
end

-- The next message of p (fails after timeout_ms).
local function next_message(p, timeout_ms)
  local m = process.select(process.new_selector():selecting_port(p),
                           timeout_ms or 10000)
  lib.ok(m, "a port message before the deadline")
  return m
end

-- Is OS process pid running (present and not a zombie)?
local function os_alive(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if f == nil then return false end
  local stat = f:read("a")
  f:close()
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z"
end

-- Does /proc still list pid at all (a zombie counts)?
local os_exists = lib.os_exists

local await = lib.await

local function pgrp_of(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local stat = f:read("a")
  f:close()
  return tonumber(stat:match("^%d+ %b() %a %d+ (%d+)"))
end

lib.test("output in order, stderr apart, the exit status last", function()
  local p = assert(port.spawn{ "sh", "-c",
    "for i in 1 2 3; do echo out$i; done; echo err >&2; printf 'tail'; exit 7" })
  lib.ok(math.type(p:os_pid()) == "integer" and p:os_pid() > 0, "os_pid")
  local ms = collect(p)
  local stdout, stderr = {}, {}
  for i = 1, #ms - 1 do
    lib.ok(ms[i].exit == nil and ms[i].signal == nil, "exit only last")
    if ms[i].stdout then stdout[#stdout + 1] = ms[i].stdout end
    if ms[i].stderr then stderr[#stderr + 1] = ms[i].stderr end
  end
  lib.same(stdout, { "out1", "out2", "out3", "tail" }, "stdout lines")
  lib.same(stderr, { "err" }, "stderr lines")
  lib.eq(ms[#ms].exit, 7, "exit status")
end)

lib.test("stderr = \"stdout\" keeps one order; raw mode; \\r\\n", function()
  local p = assert(port.spawn{ "sh", "-c", "echo a; echo b >&2; printf 'c\\r\\n'",
                               stderr = "stdout" })
  local lines = {}
  for _, m in ipairs(collect(p)) do
    lib.eq(m.stderr, nil, "nothing on stderr")
    if m.stdout then lines[#lines + 1] = m.stdout end
  end
  lib.same(lines, { "a", "b", "c" }, "merged lines")
  local r = assert(port.spawn{ "printf", "x\\ny", packet = "raw" })
  local text = {}
  for _, m in ipairs(collect(r)) do text[#text + 1] = m.stdout end
  lib.eq(table.concat(text), "x\ny", "raw bytes")
end)

lib.test("stdin: lines in, end of file on close_stdin; 2 MiB through", function()
  local p = assert(port.spawn{ "cat" })
  lib.eq(p:write("hello\n"), true, "write")
  lib.eq(p:write("world\n"), true, "write")
  lib.eq(next_message(p).stdout, "hello", "echoed")
  p:close_stdin()
  local ms = collect(p)
  lib.eq(ms[1].stdout, "world", "second line")
  lib.eq(ms[#ms].exit, 0, "cat ends at end of file")
  local w, err = p:write("late")
  lib.eq(w, nil, "write after close")
  lib.eq(err.kind, "epipe", "kind")
  -- More than the 1 MiB queue: write waits for the child to drain it.
  local big = assert(port.spawn{ "wc", "-c" })
  local chunk = string.rep("z", 65536)
  for _ = 1, 32 do assert(big:write(chunk)) end
  big:close_stdin()
  local out = collect(big)
  lib.eq(tonumber(out[1].stdout), 32 * 65536, "every byte arrived")
end)

lib.test("env adds to the host's, clear_env starts empty; cwd", function()
  local dir = os.getenv("TMPDIR") or "/tmp"
  local p = assert(port.spawn{ "sh", "-c", 'echo "$ARBOR_T1"; echo "${HOME-unset}"; pwd',
                               env = { ARBOR_T1 = "one" }, cwd = "/" })
  local ms = collect(p)
  lib.eq(ms[1].stdout, "one", "env added")
  lib.eq(ms[2].stdout, os.getenv("HOME") or "unset", "host env kept")
  lib.eq(ms[3].stdout, "/", "cwd")
  local q = assert(port.spawn{ "/bin/sh", "-c", 'echo "${HOME-unset}:$ARBOR_T2"',
                               clear_env = true, env = { ARBOR_T2 = "two" },
                               cwd = dir })
  lib.eq(collect(q)[1].stdout, "unset:two", "cleared but for env")
  local bad, err = port.spawn{ "sh", "-c", "true", cwd = "/no/such/dir/arbor" }
  lib.eq(bad, nil, "missing cwd")
  lib.eq(err.kind, "enoent", "missing cwd kind")
  lib.eq(err.path, "/no/such/dir/arbor", "names the missing cwd, not the command")
  lib.eq(tostring(err),
         "spawn: working directory /no/such/dir/arbor: no such file or directory",
         "one line: what, the path, the cause")
end)

lib.test("a missing command is enoent; misuse raises", function()
  local p, err = port.spawn{ "arbor-test-no-such-command" }
  lib.eq(p, nil, "no port")
  lib.eq(err.kind, "enoent", "kind")
  lib.eq(err.path, "arbor-test-no-such-command", "err.path names it")
  lib.eq(tostring(err), "spawn arbor-test-no-such-command: no such file or directory",
         "one line: what, the command, the cause")
  lib.raises(function() port.spawn{} end, "needs the command")
  lib.raises(function() port.spawn{ "true", stdout = "bogus" } end, "stdout must be")
  lib.raises(function() port.spawn{ "true", packet = 4 } end, "packet must be")
  lib.raises(function() port.spawn{ "true", env = { 1 } } end, "env")
  local q = assert(port.spawn{ "sh", "-c", "exec cat" })
  lib.raises(function() q:signal("NOPE") end, "signal name")
  local other = process.new_subject()
  process.spawn(function()
    local ok, e = pcall(q.write, q, "x")
    process.send(other, ok and "wrote" or tostring(e))
  end)
  local said = process.receive(other, 5000)
  lib.ok(said and said:find("owned by another process", 1, true),
         "another process may not write: " .. tostring(said))
  q:close_stdin()
  lib.eq(collect(q)[1].exit, 0, "cat ended")
end)

lib.test("hostile arguments: NUL bytes, non-booleans, bad signals named", function()
  -- A NUL byte would cut the C string short: each is refused by name.
  lib.raises(function() port.spawn{ "sh", "-c", "true\0; rm -rf x" } end,
             "argument 3 of the command contains a NUL byte")
  lib.raises(function() port.spawn{ "s\0h" } end,
             "argument 1 of the command contains a NUL byte")
  lib.raises(function() port.spawn{ "true", cwd = "/\0tmp" } end,
             "cwd contains a NUL byte")
  lib.raises(function() port.spawn{ "true", env = { ["A\0B"] = "1" } } end,
             'env name "A\\0B" contains a NUL byte')
  lib.raises(function() port.spawn{ "true", env = { A = "x\0y" } } end,
             "env value of A contains a NUL byte")
  lib.raises(function() port.spawn{ "true", owner_exit_signal = "KILL\0" } end,
             "owner_exit_signal must be a signal name")
  -- os.execute and io.popen run on ports inside a process: the same.
  local err0 = lib.raises(function() os.execute("true\0; touch /tmp/x") end,
                          "bad argument #1 to 'execute' (command contains a NUL byte)")
  lib.ok(tostring(err0):find("test_port%.lua:%d+:"), "at the caller: " .. tostring(err0))
  lib.raises(function() io.popen("echo\0x") end,
             "bad argument #1 to 'popen' (command contains a NUL byte)")
  -- Flags are booleans, not whatever is truthy.
  for _, field in ipairs { "clear_env", "notify" } do
    for _, v in ipairs { 1, "yes", {} } do
      lib.raises(function() port.spawn{ "true", [field] = v } end,
                 field .. " must be a boolean, got " .. type(v))
    end
  end
  local q = assert(port.spawn{ "sh", "-c", "exec cat" })
  local err = lib.raises(function() q:signal("TERM\0") end,
                         'got "TERM\\0" (a NUL byte in it)')
  lib.ok(tostring(err):find("bad argument #1 to 'signal'", 1, true), "named: " .. tostring(err))
  -- Called as a plain function (Lua alone would name it '?').
  local ok, e = pcall(q.signal, q, "NOPE")
  lib.eq(ok, false, "raised")
  lib.ok(tostring(e):find("bad argument #2 to 'signal' (signal must be", 1, true),
         "named however called: " .. tostring(e))
  ok, e = pcall(q.write, q, {})
  lib.ok(not ok and tostring(e):find("bad argument #2 to 'write' (string expected, got table)",
                                     1, true), "write named: " .. tostring(e))
  err = lib.raises(function() q:write(nil) end, "bad argument #1 to 'write'")
  lib.eq(q:signal("KILL"), true, "a good signal still goes")
  lib.eq(collect(q)[1].signal, "KILL", "killed")
end)

lib.test("write after the command exited: nil, err of kind closed", function()
  -- stdin stays open (the command never closed it); the command is gone.
  local p = assert(port.spawn{ "sh", "-c", "exit 0" })
  lib.eq(collect(p)[1].exit, 0, "exited")
  local w, err = p:write("anyone there?\n")
  lib.eq(w, nil, "write fails")
  lib.eq(getmetatable(err).__name, "arbor.Error", "an arbor.Error")
  lib.eq(err.kind, "closed", "kind")
  lib.ok(tostring(err):find("the command has exited", 1, true), tostring(err))
  -- A command that exits with data still queued: the write waiting on
  -- the queue learns it too (no true for bytes nobody will read).
  local q = assert(port.spawn{ "sh", "-c", "read x; exit 0" })
  lib.eq(q:write("one line\n"), true, "read by the command")
  lib.eq(collect(q)[1].exit, 0, "exited")
  lib.eq(select(2, q:write("more\n")).kind, "closed", "closed after exit")
end)

lib.test("its own process group; signals reach the whole group", function()
  local p = assert(port.spawn{ "sh", "-c", "sleep 1000 & echo $!; wait" })
  lib.eq(pgrp_of(p:os_pid()), p:os_pid(), "leads its group")
  local grandchild = tonumber(next_message(p).stdout)
  lib.ok(grandchild and os_alive(grandchild), "grandchild runs")
  lib.eq(pgrp_of(grandchild), p:os_pid(), "grandchild in the group")
  lib.eq(p:signal("TERM"), true, "signal")
  local ms = collect(p)
  lib.eq(ms[#ms].signal, "TERM", "the leader died of SIGTERM")
  await(function() return not os_exists(grandchild) end,
        "grandchild ended and reaped (not left a zombie)")
  local again, err = p:signal("TERM")
  lib.eq(again, nil, "nothing left to signal")
  lib.eq(err.kind, "esrch", "kind")
  lib.eq(port.signals.KILL, 9, "port.signals")
end)

lib.test("the owner's end stops the group: TERM, then KILL", function()
  local told = process.new_subject()
  local function owner(cmd, extra)
    local pid = process.spawn(function()
      local opts = { "sh", "-c", cmd }
      for k, v in pairs(extra or {}) do opts[k] = v end
      local p = assert(port.spawn(opts))
      local line = next_message(p).stdout
      process.send(told, { p:os_pid(), tonumber(line) })
      process.receive(process.new_subject()) -- until killed
    end)
    local pids = process.receive(told, 10000)
    lib.ok(pids, "owner reported")
    return pid, pids[1], pids[2]
  end
  local pid, leader, grandchild = owner("sleep 1000 & echo $!; wait")
  lib.ok(os_alive(leader) and os_alive(grandchild), "running")
  process.kill(pid)
  await(function() return not os_exists(leader) and not os_exists(grandchild) end,
        "group stopped by SIGTERM when the owner was killed")
  -- A group that ignores SIGTERM gets SIGKILL kill_after ms later.
  local pid2, leader2, grandchild2 =
    owner("trap '' TERM; sleep 1000 & echo $!; wait", { kill_after = 100 })
  process.exit(pid2, "some reason")
  await(function() return not os_exists(leader2) and not os_exists(grandchild2) end,
        "group ignoring SIGTERM killed")
end)

lib.test("no zombie when a child double-forks (the host reaps it)", function()
  local p = assert(port.spawn{ "sh", "-c",
    "(sleep 0.2 </dev/null >/dev/null 2>&1 & echo $!) ; exit 0" })
  local ms = collect(p)
  local daemon = tonumber(ms[1].stdout)
  lib.ok(daemon, "daemon pid")
  lib.eq(ms[#ms].exit, 0, "parent exited")
  -- Its parent is gone, so it is the host's now (subreaper), not init's.
  local f = io.open("/proc/" .. daemon .. "/status")
  if f then
    local ppid = tonumber(f:read("a"):match("PPid:%s*(%d+)"))
    f:close()
    local self_stat = assert(io.open("/proc/self/stat")):read("a")
    local host = tonumber(self_stat:match("^(%d+)"))
    lib.ok(ppid == host or ppid == 0, "adopted by the host, got " .. tostring(ppid))
  end
  await(function() return not os_exists(daemon) end, "daemon ended and was reaped")
end)

lib.test("files and sockets the host opens are close-on-exec", function()
  local name = os.tmpname()
  local held = assert(io.open(name, "w"))
  local listener = assert(net.listen{ host = "127.0.0.1", port = 0 })
  -- Every descriptor above stderr has FD_CLOEXEC (0x80000 in fdinfo).
  for _, fd in ipairs(assert(fs.list("/proc/self/fd"))) do
    local n = tonumber(fd)
    local f = n and n > 2 and io.open("/proc/self/fdinfo/" .. fd)
    if f then
      local flags = tonumber(f:read("a"):match("flags:%s*(%d+)"), 8)
      f:close()
      lib.ok(flags & 0x80000 ~= 0, "fd " .. fd .. " is close-on-exec")
    end
  end
  -- And a child sees only its three streams (and ls's own directory).
  local p = assert(port.spawn{ "sh", "-c", "exec ls /proc/self/fd" })
  local fds = {}
  for _, m in ipairs(collect(p)) do
    if m.stdout then fds[#fds + 1] = tonumber(m.stdout) end
  end
  for _, fd in ipairs(fds) do lib.ok(fd <= 3, "child inherited fd " .. fd) end
  held:close()
  listener:close()
  os.remove(name)
end)

lib.test("messages only for the owner; tostring", function()
  local p = assert(port.spawn{ "true" })
  lib.ok(tostring(p):find("^Port<%d+ of <"), tostring(p))
  local got = process.new_subject()
  process.spawn(function()
    local ok, e = pcall(function() return process.new_selector():selecting_port(p) end)
    process.send(got, ok and "selected" or tostring(e))
  end)
  lib.ok(process.receive(got, 5000):find("owned by another process", 1, true),
         "only the owner selects")
  lib.eq(collect(p)[1].exit, 0, "true exits 0")
end)

lib.no_leftovers("test_port")
print("test_port: ok")
