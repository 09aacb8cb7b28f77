-- A process runs away inside a sort comparator with a runaway limit of
-- an hour: only the pending SIGTERM can end it.
local process = require "process"
require("arbor.core").set_runaway_limit(3600000)
process.spawn(function()
  table.sort({ 3, 2, 1 }, function()
    io.stdout:write("looping\n")
    io.stdout:flush()
    while true do end
  end)
end)
process.sleep_forever()
