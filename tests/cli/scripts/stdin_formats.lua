-- stdin_formats.lua INPUT: reads standard input from a process with every
-- form Lua has (io.read, io.stdin:read, io.lines, io.stdin:lines; "n",
-- "l", "L", "a", counts, 0) while a ticker process prints "tick N"; then
-- makes the same calls on INPUT (the same bytes) through Lua's own file
-- reading and compares the results one by one.  Prints "match N" or the
-- first difference (and exits 1).
local process = require "process"

-- Every value as its type and text: 12 and 12.0 differ, so do nil and "".
local function show(v)
  if type(v) == "number" then return math.type(v) .. " " .. tostring(v) end
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

-- The calls, run against src (read, lines: functions standing for
-- io.read/f:read and io.lines/f:lines; sread, slines: the method forms).
local function run(src)
  local out = {}
  local function rec(tag, ...)
    local parts = {tag}
    for i = 1, select("#", ...) do parts[#parts + 1] = show((select(i, ...))) end
    out[#out + 1] = table.concat(parts, " ")
  end
  rec("n n n l", src.read("n", "n", "n", "l"))
  rec("L", src.read("L"))
  rec("n n n", src.read("n", "n", "n"))
  rec("l", src.read("l"))
  rec("3 0 4", src.sread(3, 0, 4))
  rec("*l", src.sread("*l"))
  rec("n on nan", src.read("n"))
  rec("default", src.read())
  local k = 0
  for l in src.lines() do
    rec("lines", l)
    k = k + 1
    if k == 2 then break end
  end
  for x, y in src.lines("n", "n") do rec("lines n n", x, y) end
  for l in src.slines("L") do
    rec("slines L", #l, l:sub(1, 8), l:sub(-3))
    break
  end
  rec("n over 200", src.read("n"))
  rec("l", src.read("l"))
  rec("a", src.read("a"))
  rec("a again", src.read("a"))
  rec("l at end", src.read("l"))
  rec("0 at end", src.read(0))
  rec("n at end", src.read("n"))
  rec("5 at end", src.read(5))
  for l in src.lines() do rec("lines at end", l) end
  local ok, err = pcall(src.sread, "l", "x")
  rec("bad format", ok, tostring(err):match("invalid format"))
  return out
end

local inbox = process.new_subject()
local ticker = process.spawn(function()
  local ticks = process.new_subject()
  process.send(inbox, ticks)
  local i = 0
  while process.receive(ticks, 10) == nil do
    i = i + 1
    print("tick " .. i)
    io.stdout:flush()
  end
end)

local ticks = process.receive(inbox)
local results = process.new_subject()
process.spawn(function()
  print("reading")
  io.stdout:flush()
  local stdin = {
    read = io.read,
    sread = function(...) return io.stdin:read(...) end,
    lines = function(...) return io.lines(nil, ...) end,
    slines = function(...) return io.stdin:lines(...) end,
  }
  process.send(results, run(stdin))
end)
local got = process.receive(results)
process.send(ticks, "stop")
process.monitor(ticker)

local f = assert(io.open(arg[1], "rb"))
local expected = run {
  read = function(...) return f:read(...) end,
  sread = function(...) return f:read(...) end,
  lines = function(...) return f:lines(...) end,
  slines = function(...) return f:lines(...) end,
}
f:close()
for i = 1, math.max(#got, #expected) do
  if got[i] ~= expected[i] then
    print("MISMATCH at " .. i .. ": got " .. tostring(got[i]) ..
          " expected " .. tostring(expected[i]))
    os.exit(1)
  end
end
print("match " .. #got)
