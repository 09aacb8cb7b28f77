-- A burst of log events, then the host ends one way or another, with the
-- burst still in the log's buffer when it does (all in one slice):
--   arbor log_burst.lua MODE [N]
-- MODE: return (main returns), raise (main raises), exit (os.exit(3)),
-- oom (main runs out of --max-memory), term (prints "ready" on stdout
-- and waits for SIGTERM), crash_exit (a process crashes; main sees its
-- DOWN and calls os.exit(0) in the same slice as the crash report).
-- Each event is "burst <i>" with i from 1 to N (10000).
io.stdout:setvbuf("line")
local process = require "process"
local logger = require "logger"
local mode = arg[1]
local n = math.tointeger(tonumber(arg[2])) or 10000

if mode == "crash_exit" then
  local hand = process.new_subject()
  local p = process.spawn(function()
    local gate = process.new_subject()
    process.send(hand, gate)
    process.receive(gate)
    error("worker boom before exit")
  end)
  local gate = process.receive(hand)
  local m = process.monitor(p)
  process.send(gate, true)
  process.select(process.new_selector():selecting_process_down(m), 5000)
  for i = 1, n do logger.info("burst %d", i) end
  os.exit(0)
end

for i = 1, n do logger.info("burst %d", i) end
if mode == "return" then
  return
elseif mode == "raise" then
  error("raised after the burst")
elseif mode == "exit" then
  os.exit(3)
elseif mode == "oom" then
  local t = {}
  for i = 1, math.maxinteger do t[i] = string.rep("x", 64) .. i end
elseif mode == "term" then
  print("ready")
  process.receive(process.new_subject())
else
  error("unknown mode " .. tostring(mode))
end
