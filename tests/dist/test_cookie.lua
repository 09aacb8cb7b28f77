-- test_cookie: where the cookie comes from, as erl reads it: the option,
-- else $ARBOR_COOKIE, else ~/.erlang.cookie (owner-only; made with a
-- random cookie when missing).  Each case runs a child arbor with its
-- own HOME and environment that connects to the peer.
package.path = "./?.lua;" .. package.path
local D = require "distlib"
local lib = D.lib
local test = lib.test

local arbor = assert(arg[-1], "the arbor binary (arg[-1])")
D.start() -- the peer is up before any child dials it
local work = assert(os.getenv("DIST_WORK"))
local n = 0

-- The child: start without a cookie option, connect, eval; its exit
-- status says how far it got (0 all, 3 start failed, 4 connect failed).
local child = work .. "/cookie_child.lua"
do
  local f = assert(io.open(child, "w"))
  f:write([[
local dist = require "dist"
local ok, err = dist.start{ name = os.getenv("CHILD_NAME") }
if not ok then io.stderr:write(tostring(err), "\n"); os.exit(3) end
local c, cerr = dist.connect(os.getenv("DIST_PEER"), 1000)
if not c then io.stderr:write(tostring(cerr), "\n"); os.exit(4) end
os.exit(0)
]])
  f:close()
end

-- Runs the child with HOME = a fresh folder (prepared by setup(dir))
-- and extra environment; returns its exit status and stderr.
local function run_child(setup, env)
  n = n + 1
  local home = string.format("%s/home%d", work, n)
  assert(os.execute("mkdir -p " .. home))
  if setup then setup(home) end
  local errf = home .. ".err"
  local cmd = string.format("env -u ARBOR_COOKIE HOME=%s CHILD_NAME=%s_c%d %s %s %s 2>%s",
                            home, D.name, n, env or "", arbor, child, errf)
  local _, _, code = os.execute(cmd)
  local f = io.open(errf)
  local text = f and f:read("a") or ""
  if f then f:close() end
  return code, text, home
end

local function write_cookie(home, text, mode)
  local f = assert(io.open(home .. "/.erlang.cookie", "w"))
  f:write(text)
  f:close()
  assert(os.execute(string.format("chmod %s %s/.erlang.cookie", mode, home)))
end

test("~/.erlang.cookie, owner-only, first line without its newline", function()
  local code, err = run_child(function(home)
    write_cookie(home, D.cookie .. "\n", "400")
  end)
  lib.eq(code, 0, "connected with the file's cookie: " .. err)
end)

test("$ARBOR_COOKIE comes before the file", function()
  local code, err = run_child(function(home)
    write_cookie(home, "WRONGWRONGWRONG\n", "400")
  end, "ARBOR_COOKIE=" .. D.cookie)
  lib.eq(code, 0, "connected with the environment's cookie: " .. err)
end)

test("a cookie file others can read is refused, naming it", function()
  local code, err = run_child(function(home)
    write_cookie(home, D.cookie, "644")
  end)
  lib.eq(code, 3, "start failed")
  lib.ok(err:find("must be accessible by owner only", 1, true), err)
  lib.ok(err:find(".erlang.cookie", 1, true), err)
end)

test("a missing cookie file is made as erl makes it", function()
  local code, err, home = run_child(nil)
  lib.eq(code, 4, "started, but the cookie differs from the peer's: " .. err)
  local f = assert(io.open(home .. "/.erlang.cookie"))
  local cookie = f:read("a")
  f:close()
  lib.ok(cookie:match("^[A-Z][A-Z][A-Z][A-Z][A-Z]" .. ("[A-Z]"):rep(15) .. "$"),
         "20 capital letters: " .. cookie)
  local p = io.popen("stat -c %a " .. home .. "/.erlang.cookie")
  local mode = p:read("l")
  p:close()
  lib.eq(mode, "400", "owner read only")
end)

require("dist").stop()
