-- main is linked to a worker that crashes: main ends with its reason.
local process = require "process"
process.spawn_link(function() error("linked worker boom", 0) end)
process.sleep_forever()
