-- chat_clients.lua PORT: drives examples/chat/server.lua over real
-- sockets: two clients in a room see each other's lines, a third in
-- another room hears none of them; one session crashed on request drops
-- that connection only (the room forgets it, the others go on).  Prints
-- "chat ok", or raises naming what differed.
local net = require "net"

local port = assert(tonumber(arg[1]), "usage: chat_clients.lua PORT")

local function expect(c, want, what)
  local got, err = c:receive(5000)
  if got ~= want then
    error(string.format("%s: expected %q, got %s (%s)", what, want,
                        tostring(got), tostring(err)), 2)
  end
end

local function join(room, name)
  local c = assert(net.connect {host = "127.0.0.1", port = port, packet = "line"})
  expect(c, "welcome to arbor chat; room?", name .. ": greeting")
  assert(c:send(room .. "\n"))
  expect(c, "name?", name .. ": asked for a name")
  assert(c:send(name .. "\n"))
  return c, assert(c:receive(5000))
end

local ann, hello = join("lobby", "ann")
assert(hello == "you are ann in room lobby, with 0 other(s)", hello)
local bob
bob, hello = join("lobby", "bob")
assert(hello == "you are bob in room lobby, with 1 other(s)", hello)
expect(ann, "[lobby] bob: (joined)", "ann sees bob join")
local cat
cat, hello = join("attic", "cat")
assert(hello == "you are cat in room attic, with 0 other(s)", hello)

assert(ann:send("hello bob\n"))
expect(bob, "[lobby] ann: hello bob", "bob hears ann")
assert(bob:send("hello ann\n"))
expect(ann, "[lobby] bob: hello ann", "ann hears bob")
-- cat's next line answers its own /who: nothing from the lobby came first.
assert(cat:send("/who\n"))
expect(cat, "1 in attic", "cat heard nothing from the lobby")

-- bob's session fails: his connection drops, nobody else's.
assert(bob:send("/crash\n"))
local got, err = bob:receive(5000)
assert(got == nil and err.kind == "closed",
       "bob's connection closed: " .. tostring(got) .. " " .. tostring(err))
local dan
dan, hello = join("lobby", "dan")
assert(hello == "you are dan in room lobby, with 1 other(s)",
       "the room forgot the crashed session: " .. hello)
expect(ann, "[lobby] dan: (joined)", "ann still connected")
assert(ann:send("still here\n"))
expect(dan, "[lobby] ann: still here", "dan hears ann")
assert(cat:send("/who\n"))
expect(cat, "1 in attic", "cat still connected")
-- Leaving: the others hear it, and /quit closes the connection.
assert(ann:send("/quit\n"))
expect(dan, "[lobby] ann: (left)", "dan hears ann leave")
for _, c in ipairs {ann, cat, dan} do
  if c ~= ann then assert(c:send("/quit\n")) end
  local line, e = c:receive(5000)
  assert(line == nil and e.kind == "closed",
         "quit closes the connection: " .. tostring(line) .. " " .. tostring(e))
  c:close()
end
print("chat ok")
