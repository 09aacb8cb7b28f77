-- Writes far more than a pipe holds; the reader (head -1) leaves early.
-- Printing to a closed pipe must fail quietly, not end the host.
local process = require "process"
for i = 1, 100000 do print("line " .. i) end
process.sleep(1)
io.stderr:write("still running after the reader left\n")
