-- test_crash_traceback: the traceback of a crash report (ltraceback.c):
-- luaL_traceback's layout, every frame named from its call site, a deep
-- stack cut to its first 10 and last 11 levels.  The report is read from
-- a second arbor (the binary running this test) run on a small script.
local lib = require "testlib"

local arbor = arg[-1]
for i = -1, -10, -1 do
  if arg[i] == nil then break end
  arbor = arg[i]
end

local function crash_output(source)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  local pipe = assert(io.popen(string.format("'%s' run '%s' 2>&1", arbor,
                                             path)))
  local out = pipe:read("a")
  pipe:close()
  os.remove(path)
  return out, path
end

local SCRIPT = [[
local process = require "process"
local function deep(n)
  if n == 0 then error("boom") end
  return (deep(n - 1))
end
local M = {}
function M.go(n) deep(n) end
function worker_global(n) M.go(n) end
local pid = process.spawn(function() worker_global(%d) end)
local m = process.monitor(pid)
process.select(process.new_selector():selecting_process_down(m))
]]

local function frames(out)
  local tb = out:match("stack traceback:\n(.*)$")
  lib.ok(tb, "a traceback in: " .. out)
  local list = {}
  for line in tb:gmatch("\t([^\n]*)") do list[#list + 1] = line end
  return list
end

lib.test("each frame is named from its call site", function()
  local out, path = crash_output(SCRIPT:format(2))
  local name = path:match("[^/]*$")
  local f = frames(out)
  lib.eq(f[1], "[C]: in function 'error'", "the C function")
  lib.ok(f[2]:find(name .. ":3: in upvalue 'deep'", 1, true), f[2])
  lib.ok(f[3]:find(name .. ":4: in upvalue 'deep'", 1, true), f[3])
  lib.ok(f[5]:find(name .. ":7: in field 'go'", 1, true), f[5])
  lib.ok(f[6]:find(name .. ":8: in function 'worker_global'", 1, true), f[6])
  lib.ok(f[7]:find(name .. ":9: in function <", 1, true), f[7])
  lib.eq(#f, 7, "seven frames: " .. out)
end)

lib.test("a deep stack shows its first 10 and last 11 levels", function()
  -- error, 41 levels of deep, go, worker_global, the process function:
  -- 45 levels (0 to 44), 24 not shown; the line says 23, as
  -- luaL_traceback's does (last level - 21).
  local f = frames(crash_output(SCRIPT:format(40)))
  lib.eq(#f, 22, "21 frames and the skip line")
  lib.eq(f[11], "...\t(skipping 23 levels)", "the skip line")
  lib.ok(f[12]:find("in upvalue 'deep'", 1, true), f[12])
  lib.ok(f[22]:find("in function <", 1, true), f[22])
end)
