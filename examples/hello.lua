-- hello.lua: the smallest arbor program.  Two processes: main spawns a
-- greeter, sends it a name and waits for the answer on its own subject.
local process = require "process"

local inbox = process.new_subject()

local greeter = process.spawn(function(reply_to)
  -- A subject belongs to the process that made it: this one is the
  -- greeter's, so only the greeter can receive from it.
  local requests = process.new_subject()
  process.send(reply_to, requests)
  local name = process.receive(requests)
  process.send(reply_to, "hello, " .. name .. " (from " ..
               tostring(process.self()) .. ")")
end, inbox)

local requests = process.receive(inbox, 1000)
process.send(requests, arg[1] or "world")
print(process.receive(inbox, 1000))
print("greeter still alive?", process.is_alive(greeter))
