-- skynet: a tree of N processes (N a power of 10) with 10 children per
-- node; each leaf sends its number, each inner node sums its children's
-- and sends that to its parent.  The figure is the time from the first
-- spawn until the root's sum (0 + 1 + ... + N-1, checked) arrives.  With
-- N = 1,000,000 that is 1,111,111 processes.  Same scheme in skynet.erl;
-- see https://github.com/atemerev/skynet for Go, LuaJIT and the others.
--
--   arbor tests/bench/skynet.lua [N]    (default 1000000)
local process = require "process"
local core = require "arbor.core"

local n = math.tointeger(tonumber(arg[1])) or 1000000
local p = 1
while p < n do p = p * 10 end
assert(n >= 1 and p == n, "N must be a power of 10")
local new_subject, send, receive, spawn =
  process.new_subject, process.send, process.receive, process.spawn

local function skynet(parent, num, size)
  if size == 1 then
    send(parent, num)
    return
  end
  local inbox = new_subject()
  local step = size // 10
  for i = 0, 9 do spawn(skynet, inbox, num + i * step, step) end
  local sum = 0
  for _ = 1, 10 do sum = sum + receive(inbox) end
  send(parent, sum)
end

local result = new_subject()
local t0 = core.now()
spawn(skynet, result, 0, n)
local sum = receive(result)
local ms = core.now() - t0
assert(sum == n * (n - 1) // 2, "wrong sum " .. tostring(sum))
print(string.format("RESULT skynet %.1f ms", ms))
