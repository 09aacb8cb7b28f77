-- fifo_waits.lua FIFO: processes wait on a fifo nobody else opens (a
-- whole-file read, an open file's read, a write that waits for a
-- reader), a ticker shows the host goes on, then main returns: the host
-- must exit although those jobs never got their other end.
local process = require "process"
local fs = require "fs"

local fifo = assert(arg[1])
local out = process.new_subject()
process.spawn(function() process.send(out, "read"); fs.read(fifo) end)
process.spawn(function()
  local f = assert(fs.open(fifo, "r"))
  process.send(out, "open+read")
  f:read(10)
end)
for _ = 1, 2 do print("waiting: " .. process.receive(out)) end
for i = 1, 3 do
  process.sleep(5)
  print("tick " .. i)
end
io.stdout:flush()
