-- test_popen_reaper: Lua's own io.popen (outside a process, or under a
-- call from C that cannot yield) keeps its child from the host's reaper,
-- so close gives the exit status, as Lua's io.popen does, even when the
-- reaper has run between the child's end and the close.
local lib = require "testlib"
local process = require "process"
io.stdout:setvbuf("line")

-- The state letter of OS process pid ("Z" for a zombie), nil once gone.
local function os_state(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local text = f:read("a")
  f:close()
  return text:match("%) (%a)")
end

-- Lua's own io.popen: the table.sort comparator is a call from C that
-- cannot yield, so portio hands the call to the stdlib's popen.
local function lua_popen(cmd, mode)
  local f
  table.sort({ 1, 2 }, function(a, b)
    if not f then f = assert(io.popen(cmd, mode)) end
    return a < b
  end)
  return f
end

-- Runs a port to its end: its exit callback runs the reaper's scan.
local function reaper_runs()
  lib.eq(os.execute("exit 0"), true, "a port ran")
end

lib.test("io.popen('exit 3'):close() after the reaper ran: nil, 'exit', 3",
         function()
  local f = lua_popen("echo $$; exit 3")
  local pid = assert(tonumber(f:read("l")), "the shell's pid")
  lib.await(function()
    local state = os_state(pid)
    return state == "Z" or state == nil -- (nil: reaped by someone else)
  end, "the shell to end")
  reaper_runs()
  lib.eq(os_state(pid), "Z", "a zombie, left for close")
  lib.same({ f:close() }, { nil, "exit", 3 }, "Lua's results")
  lib.eq(os_state(pid), nil, "close reaped it")
end)

lib.test("a kept zombie does not keep the reaper from the others", function()
  local kept = lua_popen("echo $$; exit 0")
  local kept_pid = assert(tonumber(kept:read("l")))
  lib.await(function() return os_state(kept_pid) == "Z" end, "a zombie")
  -- A child nobody waits for (a grandchild left by a shell that exited,
  -- adopted by the host as subreaper) ends after the kept one.
  local stray = lua_popen("sh -c 'echo $$; exec sleep 0.2' &")
  local stray_pid = assert(tonumber(stray:read("l")))
  lib.same({ stray:close() }, { true, "exit", 0 }, "the shell ended")
  lib.await(function() return os_state(stray_pid) == nil end,
            "the stray to be reaped", 5000)
  lib.eq(os_state(kept_pid), "Z", "the kept one is still there")
  lib.same({ kept:close() }, { true, "exit", 0 }, "kept: its status")
end)

lib.test("a signal and write mode, as Lua gives them", function()
  local f = lua_popen("kill -TERM $$")
  lib.eq(f:read("a"), "", "no output")
  reaper_runs()
  lib.same({ f:close() }, { nil, "signal", 15 }, "killed by TERM")
  local path = os.tmpname()
  local w = lua_popen("cat > '" .. path .. "'", "w")
  w:write("through the pipe")
  lib.same({ w:close() }, { true, "exit", 0 }, "write mode")
  local got = io.open(path):read("a")
  os.remove(path)
  lib.eq(got, "through the pipe", "the child read it")
  lib.raises(function() io.popen("true", "rw") end, "invalid mode", "mode")
  local t = lua_popen("true")
  lib.eq(io.type(t), "file", "io.type knows it")
  t:close()
end)

lib.test("a popen never closed does not hold the host's exit", function()
  -- The host's end stops every child it has and waits up to 5 s for
  -- them; an ended child kept for its close is not waited for (its
  -- close, at the state's closing, reaps it).  Never near 5 s when right.
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write([[
    table.sort({1, 2}, function(a, b)
      if not never_closed then never_closed = io.popen("exit 4") end
      return a < b
    end)
    os.execute("exit 0") -- a port: its exit callback runs the reaper
  ]])
  f:close()
  local start = require("arbor.core").now()
  local ok, how, code = os.execute(string.format("'%s' '%s'", arg[-1], path))
  local took = require("arbor.core").now() - start
  os.remove(path)
  lib.same({ ok, how, code }, { true, "exit", 0 }, "the host exited 0")
  lib.ok(took < 4000, "exited without the 5 s wait: " .. took .. " ms")
end)

lib.test("the child starts with SIGPIPE at its default", function()
  local f = lua_popen("grep SigIgn /proc/self/status")
  local line = f:read("l")
  f:close()
  local mask = tonumber(line:match("%x+$"), 16)
  lib.eq(mask & (1 << 12), 0, "SIGPIPE (13) not ignored: " .. line)
end)
