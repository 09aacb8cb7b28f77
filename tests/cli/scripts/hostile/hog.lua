-- A process that allocates without bound, beside a ticker; main reports
-- how the hog ended and that the ticker still ticks.
local process = require "process"
local ticks = process.new_subject()
local ticker = process.spawn(function()
  local n = 0
  while true do process.sleep(5); n = n + 1; process.send(ticks, n) end
end)
local hog = process.spawn(function()
  local t = {}
  for i = 1, math.huge do t[i] = string.rep("x", 100) .. i end
end)
local m = process.monitor(hog)
local down = process.select(process.new_selector():selecting_process_down(m))
print("hog ended: " .. tostring(down.reason))
local n = 0
while n < 3 do n = assert(process.receive(ticks, 5000), "ticker stopped") end
print("ticker alive")
process.kill(ticker)
