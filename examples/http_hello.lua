-- http_hello: a small HTTP/1.1 keep-alive server answering "hello" to
-- every request, one process per connection (the benchmark's arbor side).
--
--   arbor examples/http_hello.lua PORT     serve on 127.0.0.1:PORT forever
--   arbor examples/http_hello.lua          self-check: serve on a free
--                                          port, make keep-alive requests
--                                          from 20 client processes, exit
--
-- Requests are read in "line" packet mode (the framing is done in C):
-- the request line, then headers up to the empty line.  Request bodies
-- are not read (GET and HEAD are what it serves).  "Connection: close"
-- (or HTTP/1.0 without keep-alive) ends the connection after the answer.
local net = require "net"
local process = require "process"

local BODY = "hello"
local RESPONSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                 "Content-Length: " .. #BODY .. "\r\n\r\n" .. BODY
local RESPONSE_CLOSE = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" ..
                       "Content-Length: " .. #BODY ..
                       "\r\nConnection: close\r\n\r\n" .. BODY

-- One connection: answers requests until the client closes or asks to.
local function session(s)
  -- The acceptor gives us the socket right after spawning us, and may be
  -- preempted in between: wait until it is ours (or the acceptor gone).
  while s:owner() ~= process.self() do
    local owner = s:owner() -- nil once closed
    if not (owner and process.is_alive(owner)) then return end
    process.sleep(0)
  end
  while true do
    local request = s:receive()
    if not request then break end
    local keep = not request:find("HTTP/1.0", 1, true)
    while true do
      local header = s:receive()
      if not header then return s:close() end
      if header == "" then break end
      -- Only a header that may be Connection is parsed (a byte compare
      -- first: a pattern match on every header line costs more).
      local first = header:byte(1)
      local name, value
      if first == 67 or first == 99 then -- "C" or "c"
        name, value = header:match("^([^:]+):%s*(.-)%s*$")
      end
      if name and name:lower() == "connection" then
        value = value:lower()
        if value == "close" then keep = false end
        if value == "keep-alive" then keep = true end
      end
    end
    if not s:send(keep and RESPONSE or RESPONSE_CLOSE) or not keep then break end
  end
  s:close()
end

-- Accepts forever, handing each connection to a process of its own.
local function serve(listener)
  while listener:owner() ~= process.self() do -- given right after spawn
    local owner = listener:owner() -- nil once closed
    if not (owner and process.is_alive(owner)) then return end
    process.sleep(0)
  end
  while true do
    local s = net.accept(listener)
    if s then
      local pid = process.spawn(session, s)
      s:give_to(pid)
    end
  end
end

local port = tonumber(arg[1])
local listener = assert(net.listen {host = "127.0.0.1", port = port or 0,
                                    backlog = 1024, packet = "line"})
if port then
  print(string.format("http_hello on http://127.0.0.1:%d/", select(2, listener:address())))
  return serve(listener)
end

-- Self-check: the server runs in a process of its own (it is given the
-- listener); clients make keep-alive requests and check every answer.
local _, free_port = listener:address()
local server = process.spawn(serve, listener)
listener:give_to(server)
local results = process.new_subject()
local clients, requests = 20, 50
for _ = 1, clients do
  process.spawn(function()
    -- Raw bytes on the client side: a whole answer is collected, then
    -- compared with the one expected.
    local c = assert(net.connect {host = "127.0.0.1", port = free_port})
    local ok, pending = 0, ""
    for i = 1, requests do
      local last = i == requests
      local expected = last and RESPONSE_CLOSE or RESPONSE
      assert(c:send("GET / HTTP/1.1\r\nHost: x\r\n" ..
                    (last and "Connection: close\r\n" or "") .. "\r\n"))
      while #pending < #expected do pending = pending .. assert(c:receive(5000)) end
      ok = ok + (pending:sub(1, #expected) == expected and 1 or 0)
      pending = pending:sub(#expected + 1)
    end
    assert(c:receive(5000) == nil, "the server closed after Connection: close")
    c:close()
    process.send(results, ok)
  end)
end
local total = 0
for _ = 1, clients do total = total + assert(process.receive(results, 10000)) end
assert(total == clients * requests, "every request answered: " .. total)
print(string.format("http_hello: %d keep-alive requests answered", total))
process.kill(server)
