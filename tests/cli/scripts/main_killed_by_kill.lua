-- Another process kills main.
local process = require "process"
local main = process.self()
process.spawn(function() process.kill(main) end)
process.sleep_forever()
