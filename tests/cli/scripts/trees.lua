-- main spawn_links three trapping workers; each prints "stopped N" when
-- its exit signal arrives and then returns.  main prints "ready" once all
-- three trap exits, then:
--   arg[1] == "block"  -> blocks forever (the shell sends a signal)
--   arg[1] == "return" -> returns
-- With arg[2] == "stubborn", a fourth worker traps and ignores the
-- shutdown (it prints "ignoring" and keeps running).
io.stdout:setvbuf("line")
local process = require "process"

local ready = process.new_subject()
local function worker(n)
  process.trap_exits(true)
  process.send(ready, n)
  local e = process.select(process.new_selector():selecting_trapped_exits())
  print("stopped " .. n .. " " .. tostring(e.reason))
end

local function stubborn()
  process.trap_exits(true)
  process.send(ready, "stubborn")
  local sel = process.new_selector():selecting_trapped_exits()
  while true do
    local e = process.select(sel)
    print("ignoring " .. tostring(e.reason))
  end
end

for n = 1, 3 do process.spawn_link(worker, n) end
if arg[2] == "stubborn" then process.spawn_link(stubborn) end
for _ = 1, arg[2] == "stubborn" and 4 or 3 do process.receive(ready) end
print("ready")
if arg[1] == "return" then
  print("main returns")
  return
end
process.sleep_forever()
