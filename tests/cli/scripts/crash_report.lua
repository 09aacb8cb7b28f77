-- A non-main process crashes; main waits for its DOWN, prints the pid
-- and returns normally.
io.stdout:setvbuf("line")
local process = require "process"
local hand = process.new_subject()
local p = process.spawn(function()
  local gate = process.new_subject()
  process.send(hand, gate)
  process.receive(gate)
  local function deep_in_worker() error("worker boom") end
  deep_in_worker()
end)
local gate = process.receive(hand)
local m = process.monitor(p)
process.send(gate, true)
local d = process.select(process.new_selector():selecting_process_down(m), 5000)
print("pid=" .. tostring(p))
print("reason=" .. tostring(d and d.reason))
