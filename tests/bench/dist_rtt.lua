-- dist_rtt: message round trips between arbor and an Erlang node on this
-- machine (tests/bench/dist_rtt.erl is the Erlang-to-Erlang half, against
-- the same echo node).
--
--   arbor tests/bench/dist_rtt.lua [N]    (default 100000)
--
-- Run from a folder holding dist_rtt.beam and bench.beam (scripts/bench
-- compiles them there): starts epmd and the echo node (erl -sname, a
-- cookie of its own), connects, then N sequential round trips of an
-- integer (latency) and N messages with WINDOW in flight (messages/s).
-- The echo node halts when this connection goes.
local process = require "process"
local dist = require "dist"
local core = require "arbor.core"

local n = math.tointeger(tonumber(arg[1])) or 100000
local WINDOW = 64
local id = tostring(os.time()) .. "_" .. tostring(math.random(1e9))
local cookie = "dist_rtt_" .. id

assert(os.execute("epmd -daemon"))
local me = assert(dist.start{ name = "dbench_" .. id, cookie = cookie })
local host = me:match("@(.*)$")
local peer = "decho_" .. id .. "@" .. host
assert(os.execute(string.format(
  "erl -sname decho_%s -setcookie %s -noshell -noinput -pa . " ..
  "-run dist_rtt echo_node %s >/dev/null 2>&1 &", id, cookie, me)))
assert(dist.connect(peer, 30000))

local echo = { "echo", peer }
local inbox = process.new_subject()
local send, receive, tuple = dist.send, process.receive, dist.tuple

local function roundtrips(k)
  for i = k, 1, -1 do
    send(echo, tuple(inbox, i))
    assert(receive(inbox, 10000) == i)
  end
end

-- The node is up before its `echo` is registered: probe until it
-- answers (a message to a name not yet there is dropped).
local deadline = core.now() + 30000
repeat
  send(echo, tuple(inbox, 0))
  local got = receive(inbox, 100)
  assert(core.now() < deadline, "the echo node did not answer")
until got == 0
while receive(inbox, 0) ~= nil do end -- late answers to earlier probes
roundtrips(1000) -- warm up
local t0 = core.now()
roundtrips(n)
local ms = core.now() - t0
print(string.format("RESULT dist_rtt %.3f us", ms * 1000 / n))

t0 = core.now()
local sent = math.min(n, WINDOW)
for i = 1, sent do send(echo, tuple(inbox, i)) end
for _ = 1, n do
  assert(receive(inbox, 10000))
  if sent < n then
    sent = sent + 1
    send(echo, tuple(inbox, sent))
  end
end
ms = core.now() - t0
print(string.format("RESULT dist_rate %.0f msg/s", n / (math.max(ms, 1) / 1000)))
dist.stop()
