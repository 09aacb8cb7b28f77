-- test_call: call and try_call.
local lib = require "testlib"
local process = require "process"

local self, spawn = process.self, process.spawn
local send, receive = process.send, process.receive
local new_selector, select = process.new_selector, process.select
local down = lib.down

-- A server: requests are {op, reply_to, arg}.
--   "double" -> reply arg * 2;  "owner" -> reply subject_owner(reply_to);
--   "ignore" -> no reply;       "die"   -> raise arg;
--   "slow"   -> sleep arg ms, reply "slow";  "value" -> reply arg;
--   "stop"   -> return.
-- Returns pid, subject, monitor.
local function start_server()
  local hand = process.new_subject()
  local p = spawn(function()
    local inbox = process.new_subject()
    send(hand, inbox)
    while true do
      local op, reply, arg = table.unpack(receive(inbox))
      if op == "double" then
        send(reply, arg * 2)
      elseif op == "owner" then
        send(reply, process.subject_owner(reply))
      elseif op == "die" then
        error(arg, 0)
      elseif op == "slow" then
        process.sleep(arg)
        send(reply, "slow")
      elseif op == "value" then
        send(reply, arg)
      elseif op == "stop" then
        return
      end
    end
  end)
  local inbox = receive(hand, 1000)
  return p, inbox, process.monitor(p)
end

local function stop_server(inbox, m)
  send(inbox, { "stop" })
  lib.eq(down(m).reason, "normal", "server ended")
end

local function req(op, arg)
  return function(reply) return { op, reply, arg } end
end

lib.test("call and try_call return the reply", function()
  local _, inbox, m = start_server()
  lib.eq(process.call(inbox, req("double", 21), 1000), 42, "call")
  local r = table.pack(process.try_call(inbox, req("double", 5), 1000))
  lib.eq(r.n, 1, "try_call returns one value on success")
  lib.eq(r[1], 10, "try_call")
  for i = 1, 50 do
    lib.eq(process.call(inbox, req("double", i), 1000), 2 * i, "call " .. i)
  end
  local t = {}
  lib.copy_of(process.call(inbox, req("value", t), 1000), t,
              "a table reply is a copy")
  lib.eq(process.call(inbox, req("value", false), 1000), false,
         "a false reply")
  stop_server(inbox, m)
  lib.no_leftovers()
end)

lib.test("the reply subject is fresh and owned by the caller", function()
  local _, inbox, m = start_server()
  local seen = {}
  local owner = process.call(inbox, function(reply)
    seen[1] = reply
    return { "owner", reply }
  end, 1000)
  lib.ok(owner == self(), "owned by the caller")
  process.call(inbox, function(reply)
    seen[2] = reply
    return { "owner", reply }
  end, 1000)
  lib.ok(seen[1] ~= seen[2], "a new subject per call")
  stop_server(inbox, m)
  lib.no_leftovers()
end)

lib.test("try_call times out", function()
  local p, inbox, m = start_server()
  local r = table.pack(process.try_call(inbox, req("ignore"), 20))
  lib.eq(r.n, 2, "two results")
  lib.eq(r[1], nil, "no value")
  local err = r[2]
  lib.eq(err.kind, "timeout", "err.kind")
  local line = tostring(err)
  lib.ok(type(line) == "string" and #line > 0, "tostring gives text")
  lib.eq(line:find("\n", 1, true), nil, "one line: " .. line)
  lib.eq(process.is_alive(p), true, "server still alive")
  lib.eq(process.call(inbox, req("double", 1), 1000), 2,
         "the server still answers")
  stop_server(inbox, m)
  lib.no_leftovers()
end)

lib.test("a late reply does not answer the next call", function()
  local _, inbox, m = start_server()
  local v, err = process.try_call(inbox, req("slow", 40), 5)
  lib.eq(v, nil, "timed out")
  lib.eq(err.kind, "timeout", "kind")
  -- The server is still sleeping; the next call gets its own reply.
  lib.eq(process.call(inbox, req("double", 4), 1000), 8, "own reply")
  stop_server(inbox, m)
  lib.no_leftovers()
end)

lib.test("try_call: the callee dies", function()
  local p, inbox = start_server()
  local v, err = process.try_call(inbox, req("die", "callee crash"), 1000)
  lib.eq(v, nil, "no value")
  lib.eq(err.kind, "callee_down", "err.kind")
  lib.eq(err.reason, "callee crash", "err.reason")
  lib.eq(tostring(err):find("\n", 1, true), nil, "one line")
  lib.eq(process.is_alive(p), false, "the callee is dead")
  lib.eq(process.is_alive(self()), true, "the caller lives")
  -- A callee that is already dead: callee_down (noproc) at once.
  local v2, err2 = process.try_call(inbox, req("double", 1), 1000)
  lib.eq(v2, nil, "no value")
  lib.eq(err2.kind, "callee_down", "kind for a dead callee")
  lib.eq(err2.reason, "noproc", "reason for a dead callee")
  lib.no_leftovers()
end)

lib.test("try_call: the callee is killed while it works", function()
  local p, inbox = start_server()
  local hand = process.new_subject()
  local killer = spawn(function()
    local own = process.new_subject()
    send(hand, own)
    receive(own)
    process.kill(p)
  end)
  local kown = receive(hand, 1000)
  local mk = process.monitor(killer)
  local v, err = process.try_call(inbox, function(reply)
    send(kown, "go") -- the killer runs while the server sleeps
    return { "slow", reply, 200 }
  end, 5000)
  lib.eq(v, nil, "no value")
  lib.eq(err.kind, "callee_down", "kind")
  lib.eq(err.reason, "killed", "reason")
  down(mk)
  lib.no_leftovers()
end)

lib.test("call raises on error", function()
  local _, inbox, m = start_server()
  local ok, err = pcall(process.call, inbox, req("ignore"), 10)
  lib.eq(ok, false, "timeout raises")
  lib.eq(type(err), "table", "error value type")
  lib.eq(err.kind, "timeout", "timeout kind")
  stop_server(inbox, m)
  local _, inbox2 = start_server()
  local ok2, err2 = pcall(process.call, inbox2, req("die", "boom"), 1000)
  lib.eq(ok2, false, "callee death raises")
  lib.eq(err2.kind, "callee_down", "callee_down kind")
  lib.eq(err2.reason, "boom", "reason")
  lib.raises(function() process.call(inbox2, req("double", 1), 100) end,
             "", "call to a dead callee raises")
  lib.no_leftovers()
end)

lib.test("calling a subject you own raises", function()
  local mine = process.new_subject()
  lib.raises(function() process.call(mine, req("double", 1), 100) end,
             "owns", "call")
  lib.raises(function() process.try_call(mine, req("double", 1), 100) end,
             "owns", "try_call")
  lib.same({ receive(mine, 0) }, { nil, "timeout" }, "nothing was sent")
  lib.no_leftovers()
end)

lib.test("call checks its arguments", function()
  local _, inbox, m = start_server()
  lib.raises(function() process.call(inbox, "not a function", 100) end,
             "bad argument #2", "make_request")
  lib.raises(function() process.try_call(inbox, req("double", 1), -1) end,
             "bad argument #3", "negative timeout")
  lib.raises(function() process.try_call(inbox, req("double", 1), 1.5) end,
             "bad argument #3", "fractional timeout")
  lib.raises(function() process.call("x", req("double", 1), 100) end,
             "bad argument #1", "subject")
  stop_server(inbox, m)
  lib.no_leftovers()
end)

lib.test("a callee that dies after answering does not disturb the caller",
         function()
  local p, inbox = start_server()
  lib.eq(process.call(inbox, req("double", 2), 1000), 4, "reply")
  local m = process.monitor(p)
  send(inbox, { "die", nil, "later" })
  lib.eq(down(m).reason, "later", "callee ended")
  -- No stray DOWN or exit reaches main's later selects.
  local s = process.new_subject()
  send(s, "only")
  lib.eq(select(new_selector():selecting(s):selecting_trapped_exits(), 0),
         "only", "next message")
  lib.no_leftovers()
end)
