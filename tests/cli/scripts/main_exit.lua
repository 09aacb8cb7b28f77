-- main ends itself with an exit signal whose reason is arg[1].
local process = require "process"
process.exit(process.self(), arg[1])
print("not reached")
