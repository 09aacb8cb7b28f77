-- main returns while unlinked processes still run (one sleeping forever,
-- one busy): the host stops them and exits 0.
local process = require "process"
process.spawn(function() process.sleep_forever() end)
process.spawn(function() while true do end end)
local s = process.new_subject()
process.spawn(function() process.receive(process.new_subject()) end)
process.send_after(s, 60000, "never")
print("main returns")
