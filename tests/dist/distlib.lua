--[[
distlib: what the dist tests share (tests/dist/run.sh starts the peer).

distlib.start() starts arbor's node with the name and cookie run.sh
chose and connects to the peer, retrying (until a deadline) while the
peer is still coming up: the only wait here, and it ends on the
connection, never on a timer.  distlib.eval(code [, timeout_ms]) runs
Erlang expressions on the peer (tests/dist/dist_peer.erl), with the
bindings ReplyTo and Arbor, and returns their value, or raises with the
peer's error.
]]
package.path = "../lua/?.lua;" .. package.path
local lib = require "testlib"
local process = require "process"
local dist = require "dist"

local M = { lib = lib }
M.peer = assert(os.getenv("DIST_PEER"), "run me with tests/dist/run.sh")
M.cookie = os.getenv("DIST_COOKIE")
M.name = os.getenv("DIST_NAME")
M.os_pid = os.getenv("DIST_PEER_OS_PID")

local A = setmetatable({}, { __index = function(t, k)
  local a = dist.atom(k); rawset(t, k, a); return a end })
M.A = A

-- Waits for the peer: connects until it answers an eval (its `peer`
-- process is registered only after pg has started).
function M.start()
  local me = assert(dist.start{ name = M.name, cookie = M.cookie })
  -- dist.connect retries until its timeout while the peer registers
  -- with epmd; then the eval waits for its `peer` process
  local ok, err = dist.connect(M.peer, 20000)
  if not ok then
    error("the peer " .. M.peer .. " did not come up: " .. tostring(err))
  end
  for _ = 1, 10 do
    if M.try_eval("ok.", 2000) ~= nil then return me end
  end
  error("the peer did not answer")
end

-- Evaluates code on the peer; returns ok, value or false, error text.
function M.try_eval(code, timeout_ms)
  local reply = process.new_subject()
  dist.send({ "peer", M.peer }, dist.tuple(A.eval, reply, code))
  local r = process.receive(reply, timeout_ms or 10000)
  if r == nil then return nil, "timeout" end
  if r[1] == A.ok then return true, r[2] end
  return false, tostring(r[2]) .. ":" .. M.show(r[3])
end

-- Starts an evaluation without waiting; returns the subject its
-- messages (and then its result) arrive on.
function M.eval_async(code)
  local reply = process.new_subject()
  dist.send({ "peer", M.peer }, dist.tuple(A.eval, reply, code))
  return reply
end

-- The next message on reply (raises after timeout_ms).
function M.await(reply, timeout_ms, what)
  local r = process.receive(reply, timeout_ms or 10000)
  if r == nil then error((what or "message") .. " did not arrive", 2) end
  return r
end

-- Round trip through the peer's echo: returns the term as it came back
-- and Erlang's own term_to_binary of it.
function M.echo(v)
  local reply = process.new_subject()
  dist.send({ "echo", M.peer }, dist.tuple(reply, v))
  local r = process.receive(reply, 10000)
  if r == nil then error("echo did not answer", 2) end
  return r[1], r[2]
end

function M.eval(code, timeout_ms)
  local ok, v = M.try_eval(code, timeout_ms)
  if ok == nil then error("eval timed out: " .. code, 2) end
  if not ok then error("eval failed: " .. code .. " -> " .. v, 2) end
  return v
end

-- A readable text of a decoded term (for messages).
function M.show(v, depth)
  depth = depth or 0
  if depth > 8 then return "..." end
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for i = 1, #v do parts[i] = M.show(v[i], depth + 1) end
  if dist.is_tuple(v) then return "{" .. table.concat(parts, ", ") .. "}" end
  if getmetatable(v) == dist.Map or #v == 0 and next(v) then
    for k, x in pairs(v) do
      parts[#parts + 1] = M.show(k, depth + 1) .. " => " .. M.show(x, depth + 1)
    end
    return "#{" .. table.concat(parts, ", ") .. "}"
  end
  return "[" .. table.concat(parts, ", ") .. "]"
end

-- Deep equality of decoded terms (tuples, lists, maps, atoms, pids).
function M.same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    if math.type(a) ~= math.type(b) then return false end
    return a == b
  end
  if dist.is_tuple(a) ~= dist.is_tuple(b) then return false end
  for k, v in pairs(a) do if not M.same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

function M.check_same(actual, expected, what)
  if not M.same(actual, expected) then
    error(string.format("%s: expected %s, got %s", what or "term",
                        M.show(expected), M.show(actual)), 2)
  end
end

return M
