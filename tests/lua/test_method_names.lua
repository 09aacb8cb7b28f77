-- test_method_names: a method's argument errors name the method however
-- it is called.  Lua names a C function from the call site; called as
-- p.signal(p, x) through pcall (or from a local) it has no name and says
-- '?'.  port:signal, port:write and socket:set_send_timeout name
-- themselves, counting arguments as Lua does (self is not counted in a
-- method call).  Real sockets on 127.0.0.1 and a real OS process.
local lib = require "testlib"
local net = require "net"
local port = require "port"

lib.quiet()

lib.test("socket:set_send_timeout names itself", function()
  local l = assert(net.listen{ host = "127.0.0.1", port = 0 })
  local _, p = l:address()
  local c = assert(net.connect{ host = "127.0.0.1", port = p })
  local ok, err = pcall(c.set_send_timeout, c, -5)
  lib.eq(ok, false, "raised")
  lib.ok(tostring(err):find("bad argument #2 to 'set_send_timeout' (send_timeout "
                            .. "must be a non-negative integer (ms) or nil)", 1, true),
         "as a function: " .. tostring(err))
  err = lib.raises(function() c:set_send_timeout("soon") end,
                   "bad argument #1 to 'set_send_timeout'")
  lib.ok(tostring(err):find("test_method_names%.lua:%d+:"), "at the caller's line: "
         .. tostring(err))
  lib.eq(c:set_send_timeout(100), true, "a good value still goes")
  lib.eq(c:set_send_timeout(nil), true, "nil: without limit")
  c:close()
  l:close()
end)

lib.test("port methods name themselves", function()
  local q = assert(port.spawn{ "cat" })
  local set = {
    { function() return pcall(q.signal, q, "NOPE") end, "bad argument #2 to 'signal'" },
    { function() return pcall(function() q:signal("NOPE") end) end,
      "bad argument #1 to 'signal'" },
    { function() return pcall(q.write, q, true) end, "bad argument #2 to 'write'" },
    { function() return pcall(function() q:write() end) end, "bad argument #1 to 'write'" },
  }
  for i, case in ipairs(set) do
    local ok, err = case[1]()
    lib.eq(ok, false, "case " .. i .. " raised")
    lib.ok(tostring(err):find(case[2], 1, true), "case " .. i .. ": " .. tostring(err))
  end
  q:signal("KILL")
end)

print("test_method_names: ok")
