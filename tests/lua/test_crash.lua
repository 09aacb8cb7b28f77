-- test_crash: a Lua error ends only the process that raised it.  (The
-- crash report on stderr is checked by tests/cli/test_cli.sh.)
local lib = require "testlib"
-- A host that aborts loses buffered output; keep the ok lines.
io.stdout:setvbuf("line")
local process = require "process"

local self, spawn = process.self, process.spawn
local send, receive = process.send, process.receive
local new_selector, select = process.new_selector, process.select
local down = lib.down

-- Runs fn in a new process once main has monitored it; returns the reason
-- it ended with.
local function run(fn)
  local _, m = lib.spawn_monitored(function() return fn() end)
  -- Generous: a stack overflow's unwinding is slow under ASan on a
  -- loaded machine, and a passing case never waits this long.
  return down(m, 10000).reason
end

-- An echo process, to show that bystanders are unaffected.
local function start_echo()
  local hand = process.new_subject()
  local p = spawn(function()
    local own = process.new_subject()
    send(hand, own)
    while true do
      local msg = receive(own)
      if msg == "stop" then return end
      send(hand, msg)
    end
  end)
  local own = receive(hand, 1000)
  return {
    pid = p, mon = process.monitor(p),
    ping = function(v)
      send(own, v)
      return receive(hand, 1000)
    end,
    stop = function()
      send(own, "stop")
    end,
  }
end

lib.test("a Lua error ends only that process", function()
  local echo = start_echo()
  local r = run(function() error("plain crash", 0) end)
  lib.eq(r, "plain crash", "reason")
  lib.eq(echo.ping("still there"), "still there", "a bystander answers")
  lib.eq(process.is_alive(self()), true, "main lives")
  echo.stop()
  lib.eq(down(echo.mon).reason, "normal", "bystander")
  lib.no_leftovers()
end)

lib.test("runtime errors carry Lua's message", function()
  local r = run(function() local t = nil; return t.field end)
  lib.ok(type(r) == "string" and r:find("attempt to index a nil value", 1,
                                         true), "index nil: " .. tostring(r))
  r = run(function() return 1 + {} end)
  lib.ok(type(r) == "string" and r:find("attempt to perform arithmetic", 1,
                                         true), "arith: " .. tostring(r))
  r = run(function() local function f() return 1 + f() end return f() end)
  lib.ok(type(r) == "string" and r:find("stack overflow", 1, true),
         "stack overflow: " .. tostring(r))
  lib.no_leftovers()
end)

lib.test("a crash with queued messages, timers, monitors and subjects",
         function()
  local echo = start_echo()
  local r = run(function()
    local s = process.new_subject()
    for i = 1, 100 do send(s, { i }) end
    for _ = 1, 10 do process.send_after(s, 1, "timer") end
    process.send_after(s, 100000, "far")
    for _ = 1, 10 do process.monitor(echo.pid) end
    local sel = new_selector():selecting(s)
    select(sel, 0)
    error({ "table crash" })
  end)
  lib.eq(type(r), "table", "reason type")
  lib.eq(r[1], "table crash", "reason")
  lib.eq(echo.ping(1), 1, "bystander")
  echo.stop()
  down(echo.mon)
  lib.no_leftovers()
end)

lib.test("an error value with __tostring", function()
  local e = setmetatable({ code = 3 }, {
    __tostring = function(self) return "E" .. self.code end,
  })
  local r = lib.copy_of(run(function() error(e) end), e, "a copy of the object")
  lib.eq(tostring(r), "E3", "its __tostring works on the copy")
  lib.no_leftovers()
end)

lib.test("error() with no value ends only that process", function()
  local echo = start_echo()
  run(function() error() end)
  lib.eq(echo.ping("x"), "x", "bystander")
  echo.stop()
  down(echo.mon)
  lib.no_leftovers()
end)

lib.test("a crash inside a caught pcall is not a crash", function()
  local r = run(function()
    local ok, err = pcall(error, "caught", 0)
    if ok or err ~= "caught" then error("pcall misbehaved", 0) end
  end)
  lib.eq(r, "normal", "the process ends normally")
  lib.no_leftovers()
end)

lib.test("an error in a map function crashes the selecting process",
         function()
  local r = run(function()
    local s = process.new_subject()
    send(s, 1)
    select(new_selector():selecting(s, function() error("in map", 0) end))
  end)
  lib.eq(r, "in map", "reason")
  lib.no_leftovers()
end)

lib.test("many crashes in a row", function()
  local echo = start_echo()
  for i = 1, 30 do
    lib.eq(run(function() error(i, 0) end) ~= "normal", true, "crash " .. i)
  end
  lib.eq(echo.ping("ok"), "ok", "bystander")
  echo.stop()
  down(echo.mon)
  lib.no_leftovers()
end)

lib.test("an error value whose __tostring raises ends only that process",
         function()
  local echo = start_echo()
  local e = setmetatable({}, { __tostring = function() error("tostring") end })
  lib.copy_of(run(function() error(e) end), e, "a copy of the object")
  local e2 = setmetatable({}, { __tostring = function() return 42 end })
  lib.copy_of(run(function() error(e2) end), e2, "__tostring non-string")
  lib.eq(echo.ping("x"), "x", "bystander")
  echo.stop()
  down(echo.mon)
  lib.no_leftovers()
end)

lib.test("error(nil): the reason stays nil, the report says what it was",
         function()
  lib.eq(run(function() error(nil) end), nil, "the reason value")
  -- The report itself, from a second host (this binary) run on a script.
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write([[
    local process = require "process"
    for _, fn in ipairs { function() error(nil) end, function() error() end } do
      local m = process.monitor(process.spawn(fn))
      process.select(process.new_selector():selecting_process_down(m))
    end
  ]])
  f:close()
  local pipe = assert(io.popen(string.format("'%s' run '%s' 2>&1", arg[-1],
                                             path)))
  local out = pipe:read("a")
  pipe:close()
  os.remove(path)
  local _, n = out:gsub("\nreason: nil %(error object is a nil value%)\n", "")
  lib.eq(n, 2, "both reports name a nil error value: " .. out)
  lib.ok(not out:find("\nreason: nil\n", 1, true), "no bare nil: " .. out)
end)
