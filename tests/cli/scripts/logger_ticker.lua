-- tests/cli/test_logger.sh: logs "tick N" until stopped, so a test can
-- move the log file away and see where the next ticks go.
local logger = require "logger"
local process = require "process"
print("ready")
io.stdout:flush()
local n = 0
while true do
  n = n + 1
  logger.info{ msg = "tick", n = n }
  process.sleep(10)
end
