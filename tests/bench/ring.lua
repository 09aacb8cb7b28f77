-- ring: P processes in a ring pass one message (an integer) R times
-- around: P * R hops.  Each process forwards what it gets to the next;
-- the first decrements the count on each lap and tells the bench process
-- when it reaches zero.  Building the ring is not timed.  Same in ring.erl
-- (there a process knows the next one's pid; here the next one's subject).
--
--   arbor tests/bench/ring.lua [P [R]]    (default 10000 1000)
local process = require "process"
local core = require "arbor.core"

local size = math.tointeger(tonumber(arg[1])) or 10000
local rounds = math.tointeger(tonumber(arg[2])) or 1000
local new_subject, send, receive, spawn =
  process.new_subject, process.send, process.receive, process.spawn

-- Every process but the first: forward everything.
local function node(hand, next)
  local inbox = new_subject()
  send(hand, inbox)
  while true do send(next, receive(inbox)) end
end

-- The first process: it learns its successor after the ring is built.
local function first(hand, done)
  local inbox = new_subject()
  send(hand, inbox)
  local next = receive(inbox)
  while true do
    local k = receive(inbox)
    if k == 0 then send(done, true) return end
    send(next, k - 1)
  end
end

local hand, done = new_subject(), new_subject()
spawn(first, hand, done)
local head = receive(hand)
local next = head
for _ = 2, size do
  spawn(node, hand, next)
  next = receive(hand)
end
send(head, next) -- close the ring: head -> next -> ... -> head

local t0 = core.now()
send(head, rounds)
receive(done)
local ms = core.now() - t0
local hops = size * rounds
print(string.format("RESULT ring %.1f ms", ms))
print(string.format("RESULT ring_rate %.0f msgs/s", hops / (ms / 1000)))
