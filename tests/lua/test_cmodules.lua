-- test_cmodules: Debian's Lua C modules (lua-cjson, lua-lpeg, lua-socket,
-- installed by scripts/setup) load into arbor and work inside its
-- processes.  Before arbor exported Lua's C API they failed with
-- "undefined symbol: lua_gettop".  (A rock built at test time, and the
-- LUA_PATH/LUA_CPATH variables: tests/cli/test_cmodules.sh.)
local lib = require "testlib"
local process = require "process"

local function load(name)
  local ok, mod = pcall(require, name)
  lib.ok(ok, "require '" .. name .. "' failed (scripts/setup installs "
             .. "its Debian package): " .. tostring(mod))
  return mod
end

lib.test("cjson encodes and decodes, in a process of its own", function()
  local cjson = load "cjson"
  local me = process.new_subject()
  local pid = process.spawn(function()
    local doc = cjson.decode('{"name":"arbor","tags":["lua","otp"],'
                             .. '"n":3,"ok":true,"none":null}')
    doc.n = doc.n + 1
    process.send(me, { doc = doc, text = cjson.encode({ 1, 2, { a = "b" } }) })
  end)
  local m = process.receive(me, 5000)
  lib.ok(m, "no answer from the cjson process " .. tostring(pid))
  lib.eq(m.doc.name, "arbor", "decoded name")
  lib.same(m.doc.tags, { "lua", "otp" }, "decoded array")
  lib.eq(m.doc.n, 4, "decoded number, incremented")
  lib.eq(m.doc.ok, true, "decoded boolean")
  lib.eq(m.doc.none, cjson.null, "decoded null")
  lib.eq(m.text, '[1,2,{"a":"b"}]', "encoded")
  local ok, err = pcall(cjson.decode, "{bad json")
  lib.ok(not ok and tostring(err):find("Expected object key string", 1, true),
         "a decode error is a Lua error: " .. tostring(err))
  lib.no_leftovers()
end)

lib.test("an lpeg grammar matches", function()
  local lpeg = load "lpeg"
  local digits = lpeg.R "09" ^ 1 / tonumber
  local list = lpeg.Ct(digits * ("," * digits) ^ 0) * -1
  lib.same(list:match "10,20,3", { 10, 20, 3 }, "lpeg list")
  lib.eq(list:match "10,,3", nil, "lpeg rejects a bad list")
  local re = load "re" -- lpeg's Lua half, from /usr/share/lua/5.4
  lib.eq(re.find("the arbor host", "'arbor'"), 5, "re.find")
end)

lib.test("luasocket talks TCP on 127.0.0.1", function()
  local socket = load "socket"
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  server:settimeout(5)
  local client = assert(socket.connect("127.0.0.1", port))
  local conn = assert(server:accept())
  conn:settimeout(5)
  client:settimeout(5)
  assert(client:send("ping\n"))
  lib.eq(conn:receive("*l"), "ping", "server got the line")
  assert(conn:send("pong\n"))
  lib.eq(client:receive("*l"), "pong", "client got the answer")
  client:close()
  conn:close()
  server:close()
end)
