-- Kills the process that loads it.
local process = require "process"
process.kill(process.self())
