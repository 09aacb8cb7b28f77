-- stdin_queue.lua: two processes read lines from standard input at once;
-- a third, killed while it waits for input, does not hold the others up.
-- Prints what each one read, then "done".
local process = require "process"

local out = process.new_subject()
-- Waits in io.read until killed: it is first in the queue.
local victim = process.spawn(function()
  process.send(out, "victim waiting")
  io.read("l")
  process.send(out, "victim read")
end)
assert(process.receive(out) == "victim waiting")
local readers = {}
for _, name in ipairs {"a", "b"} do
  readers[#readers + 1] = process.spawn(function()
    local n = 0
    for line in io.lines() do
      n = n + 1
      process.send(out, name .. " " .. line)
    end
    process.send(out, name .. " eof after " .. n)
  end)
end
print("readers ready")
io.stdout:flush()
process.kill(victim)
local lines, eofs = {}, 0
while eofs < 2 do
  local m = process.receive(out)
  assert(m ~= "victim read", "the killed reader went on")
  if m:find(" eof after ") then eofs = eofs + 1 else lines[#lines + 1] = m:sub(3) end
end
table.sort(lines)
print("lines " .. table.concat(lines, ","))
print("done")
