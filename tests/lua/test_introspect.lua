-- test_introspect: arbor.json (checked against an independent decoder,
-- Debian's lua-cjson, loaded as a C module) and arbor.introspect's
-- tables for live processes, read while they wait, queue and crash.
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local actor = require "actor"
local json = require "arbor.json"
local introspect = require "arbor.introspect"
local cjson = require "cjson"

lib.quiet()

-- {=== arbor.json

lib.test("encode: what cjson decodes back to the same values", function()
  local value = { name = "arbor", list = { 1, 2.5, -3, true, false },
                  nested = { deeper = { deepest = { "x" } } },
                  text = "quote \" backslash \\ newline \n tab \t nul \0 del \127 é",
                  big = math.maxinteger, small = math.mininteger }
  local back = cjson.decode(json.encode(value))
  lib.eq(back.name, "arbor")
  lib.eq(back.text, value.text, "escaped text")
  lib.eq(back.list[2], 2.5)
  lib.eq(back.list[4], true)
  lib.eq(back.nested.deeper.deepest[1], "x")
  lib.eq(json.encode(math.maxinteger), "9223372036854775807")
  lib.eq(json.encode(3.0), "3.0")
  lib.eq(json.encode(0.1), "0.10000000000000001")
end)

lib.test("encode: cycles, metatables, odd keys and values never raise", function()
  local t = { 1, 2 }
  t[3] = t
  lib.eq(json.encode(t), '[1,2,"(cycle)"]')
  local hostile = setmetatable({ a = 1 }, {
    __index = function() error("index ran") end,
    __pairs = function() error("pairs ran") end,
    __tostring = function() error("tostring ran") end,
    __len = function() error("len ran") end,
  })
  lib.eq(json.encode(hostile), '{"a":1}')
  local keyed = { [1.5] = "f", [true] = "b", [10] = "i", s = "s" }
  local back = cjson.decode(json.encode(keyed))
  lib.eq(back["1.5"], "f")
  lib.eq(back["10"], "i")
  lib.eq(back["true"], "b")
  lib.eq(json.encode({ [1] = "a", [3] = "c" }), '{"1":"a","3":"c"}')
  lib.eq(json.encode(0 / 0), "null")
  lib.eq(json.encode(math.huge), "null")
  lib.eq(json.encode({}), "{}")
  lib.eq(json.encode(json.array {}), "[]")
  lib.eq(json.encode(process.self()), '"' .. tostring(process.self()) .. '"')
  lib.ok(json.encode(print):match('^"builtin: ') or json.encode(print):match('^"function'),
         "a function is described")
  local deep = {}
  local cur = deep
  for _ = 1, 100 do cur.x = {}; cur = cur.x end
  lib.ok(json.encode(deep):find('"(too deep)"', 1, true), "depth limit")
end)

lib.test("encode: invalid UTF-8 becomes U+FFFD, and '</' cannot end a script", function()
  local text = json.encode("a\255b\192\128c</script>")
  lib.eq(text, '"a\u{FFFD}b\u{FFFD}\u{FFFD}c<\\/script>"')
  lib.ok(utf8.len(text), "the output is valid UTF-8")
  lib.eq(cjson.decode("[" .. text .. "]")[1], "a\u{FFFD}b\u{FFFD}\u{FFFD}c</script>")
end)

lib.test("decode: RFC 8259, and errors that say where", function()
  local v = json.decode(' {"a": [1, -2.5e1, "\\u00e9\\ud83d\\ude00", null, true]} ')
  lib.eq(v.a[1], 1)
  lib.eq(math.type(v.a[1]), "integer")
  lib.eq(v.a[2], -25.0)
  lib.eq(v.a[3], "é😀")
  lib.eq(v.a[4], json.null)
  local cases = {
    { "", "unexpected end at byte 1" },
    { "[1,]", "unexpected character at byte 4" },
    { '{"a" 1}', "expected ':' at byte 6" },
    { "01", "trailing characters at byte 2" },
    { '"\\x"', "bad escape at byte 2" },
    { '"\\ud800"', "lone surrogate" },
    { '"a\nb"', "control byte in string" },
    { "1.", "bad number at byte 1" },
    { "nul", "bad literal" },
    { string.rep("[", 600), "nesting too deep" },
  }
  for _, c in ipairs(cases) do
    local value, err = json.decode(c[1])
    lib.eq(value, nil, "decode " .. c[1]:sub(1, 10))
    lib.ok(err:find(c[2], 1, true), "error for " .. c[1]:sub(1, 10) .. ": " .. err)
  end
  lib.eq(select(2, json.decode(42)), "json: text expected, got number")
end)

-- }===

-- {=== arbor.introspect

local function find(pid)
  for _, p in ipairs(introspect.processes()) do
    if p.pid == tostring(pid) then return p end
  end
end

lib.test("processes: what each waits on, its mailbox and where it is", function()
  local inbox_of = process.new_subject()
  local receiver = process.spawn(function()
    local inbox = process.new_subject()
    process.send(inbox_of, inbox)
    process.receive(process.new_subject()) -- never the inbox
  end)
  local inbox = process.receive(inbox_of, 1000)
  for i = 1, 5 do process.send(inbox, i) end
  local sleeper = process.spawn(function() process.sleep(60000) end)
  local selector = process.spawn(function()
    process.trap_exits(true)
    local s = process.new_subject()
    process.select(process.new_selector():selecting(s):selecting_trapped_exits())
  end)
  local unanswered = process.new_subject() -- main's; main never answers
  local caller = process.spawn(function()
    process.call(unanswered, function(r) return r end)
  end)
  process.sleep(20)
  local r = find(receiver)
  lib.eq(r.state, "waiting")
  lib.eq(r.waiting, "receive")
  lib.eq(r.blocked_in, "process.receive")
  lib.eq(r.messages, 5)
  lib.eq(r.subject_messages, 5)
  lib.eq(r.subjects, 2)
  lib.eq(r.wait_sources, 1)
  lib.ok(r.memory > 0, "memory")
  lib.ok(r.current:match("test_introspect%.lua:%d+$"), "current: " .. tostring(r.current))
  local s = find(sleeper)
  lib.eq(s.waiting, "sleep")
  lib.ok(s.wakes_in > 50000 and s.wakes_in <= 60000, "wakes_in " .. s.wakes_in)
  local sel = find(selector)
  lib.eq(sel.waiting, "select")
  lib.eq(sel.wait_sources, 2)
  lib.eq(sel.trap_exit, true)
  lib.eq(find(caller).waiting, "call")
  local me = find(process.self())
  lib.eq(me.state, "running")
  lib.eq(me.main, true)
  lib.eq(me.name, "main")
  lib.eq(me.subject_messages, 1, "the call's request waits in main's subject")
  for _, pid in ipairs { receiver, sleeper, selector, caller } do
    process.kill(pid)
    lib.await_down(pid)
  end
  lib.eq(find(sleeper), nil, "an ended process is not listed")
  lib.no_leftovers()
end)

lib.test("processes(limit): the busiest first, and how many there are", function()
  local inbox_of = process.new_subject()
  local pids = {}
  for i = 1, 20 do
    pids[i] = process.spawn(function()
      local inbox = process.new_subject()
      process.send(inbox_of, inbox)
      process.receive(process.new_subject())
    end)
  end
  local inboxes = {}
  for i = 1, 20 do inboxes[i] = process.receive(inbox_of, 1000) end
  -- One gets 7 messages, another 3: they lead the listing.
  local seven = process.subject_owner(inboxes[11])
  local three = process.subject_owner(inboxes[4])
  for i = 1, 7 do process.send(inboxes[11], i) end
  for i = 1, 3 do process.send(inboxes[4], i) end
  local list, total = introspect.processes(2)
  lib.eq(#list, 2)
  lib.ok(total >= 21, "total " .. total)
  lib.eq(list[1].pid, tostring(seven))
  lib.eq(list[1].messages, 7)
  lib.eq(list[2].pid, tostring(three))
  local all, total2 = introspect.processes()
  lib.eq(#all, total2)
  local st = introspect.status { processes = true, limit = 5 }
  lib.eq(#st.processes, 5)
  lib.eq(st.processes_total, total2)
  lib.raises(function() introspect.processes(-1) end, "a count >= 0")
  for _, pid in ipairs(pids) do process.kill(pid) lib.await_down(pid) end
  lib.no_leftovers()
end)

lib.test("tree: children, restarts, last exit, nested trees", function()
  local sup = supervisor.start_spec(supervisor.spec {
    name = "t", strategy = "one_for_one", max_frequency = 10,
    init = function(children)
      return children
        :add(supervisor.worker(function()
          return actor.start(0, function(msg, n)
            if msg == "die" then error({ why = "asked" }) end
            return actor.continue(n + 1)
          end)
        end):id("a"))
        :add(supervisor.supervisor(function()
          return supervisor.start_spec(supervisor.spec { init = function(c)
            return c:add(supervisor.worker(function()
              return actor.start(0, function(_, n) return actor.continue(n) end)
            end):id("leaf"))
          end })
        end):id("inner"))
    end,
  })
  local a = supervisor.which_children(sup)[1]
  process.send(a.subject, "die")
  lib.await_down(a.pid)
  local t
  for _ = 1, 100 do
    t = introspect.tree(sup)
    if t.children[1].restarts == 1 and t.children[1].status == "running" then break end
    process.sleep(5)
  end
  lib.eq(t.pid, tostring(process.subject_owner(sup)))
  lib.eq(#t.children, 2)
  local c = t.children[1]
  lib.eq(c.id, "a")
  lib.eq(c.kind, "worker")
  lib.eq(c.restarts, 1)
  lib.ok(c.last_exit:find("asked", 1, true), "last_exit: " .. tostring(c.last_exit))
  lib.eq(c.start_failure, nil)
  local inner = t.children[2]
  lib.eq(inner.kind, "supervisor")
  lib.eq(inner.children[1].id, "leaf")
  lib.ok(inner.children[1].pid:match("^<%d+%.%d+%.%d+>$"), "leaf pid")
  -- The same tables encode as JSON that cjson reads.
  local back = cjson.decode(json.encode(introspect.status { processes = true }))
  lib.ok(back.host.processes >= 5, "host process count")
  lib.ok(#back.processes == back.host.processes, "one row per process")
  supervisor.stop(sup)
  lib.no_leftovers()
end)

lib.test("host: memory, uptime, script, and no service outside one", function()
  local core = require "arbor.core"
  local before = core.now() -- the host's clock: ms since it started
  local h = introspect.host()
  local after = core.now()
  lib.ok(h.memory.lua > 0 and h.memory.c > 0, "memory")
  lib.ok(h.uptime_ms >= before and h.uptime_ms <= after,
         "uptime " .. h.uptime_ms .. " is the host's, not the module's")
  lib.ok(h.script:match("test_introspect%.lua$"), "script " .. tostring(h.script))
  lib.eq(h.serving, false)
  lib.ok(h.now:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"), "now " .. h.now)
  lib.eq(introspect.tree(), nil, "no root tree outside a service")
  lib.raises(function() introspect.tree("nope") end, "supervisor's subject expected")
end)
