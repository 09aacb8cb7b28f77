-- The logger: levels, structured fields, and how values are described
-- (tables with their contents, cycles, misbehaving __tostring, huge
-- values).  The output itself is checked by running a second arbor (the
-- binary running this test, arg[-1]) and reading what it wrote.
local lib = require "testlib"
local logger = require "logger"
local process = require "process"

local describe = logger.describe

-- {=====================================================================
-- Describing values
-- ======================================================================

lib.test("plain values are described as tostring would", function()
  lib.eq(describe("text"), "text", "a string, unquoted at the top")
  lib.eq(describe(12), "12", "integer")
  lib.eq(describe(1.5), "1.5", "float")
  lib.eq(describe(true), "true", "boolean")
  lib.eq(describe(nil), "nil", "nil")
  local self = process.self()
  lib.eq(describe(self), tostring(self), "a pid by its __tostring")
end)

lib.test("a table is shown with its contents, never as table: 0x", function()
  lib.eq(describe({}), "{}", "empty")
  lib.eq(describe({ 1, "two", false }), '{1, "two", false}', "a list")
  lib.eq(describe({ code = 7 }), "{code = 7}", "a record")
  lib.eq(describe({ [10] = "x" }), '{[10] = "x"}', "a non-list integer key")
  lib.eq(describe({ ["a b"] = 1 }), '{["a b"] = 1}', "a key that is no name")
  lib.eq(describe({ { "in" } }), '{{"in"}}', "nested")
  lib.eq(describe({ "a\nb\"c" }), '{"a\\nb\\"c"}', "strings escaped inside")
  local mixed = describe({ 1, 2, k = "v" })
  lib.eq(mixed, '{1, 2, k = "v"}', "list part first, then the rest")
  lib.ok(not describe({ {}, { {} } }):find("table: ", 1, true), "no addresses")
end)

lib.test("depth is limited", function()
  local deep = {}
  local t = deep
  for _ = 1, 20 do t.next = {}; t = t.next end
  local text = describe(deep)
  lib.ok(text:find("{...}", 1, true), "cut with {...}: " .. text)
  lib.ok(#text < 100, "short: " .. text)
end)

lib.test("cycles are marked, shared tables are shown twice", function()
  local c = { name = "c" }
  c.self = c
  local text = describe(c)
  lib.ok(text:find("self = <cycle>", 1, true), "cycle marked: " .. text)
  local shared = { 1 }
  lib.eq(describe({ shared, shared }), "{{1}, {1}}", "shared, not a cycle")
  local a, b = {}, {}
  a.b, b.a = b, a
  lib.eq(describe(a), "{b = {a = <cycle>}}", "a cycle of two")
end)

lib.test("huge values are truncated", function()
  local s = describe({ string.rep("x", 100000) })
  lib.ok(#s <= 4096, "bounded: " .. #s)
  lib.ok(s:sub(-14) == "...(truncated)", "says it was cut")
  local big = {}
  for i = 1, 100000 do big[i] = i end
  local t = describe(big)
  lib.ok(#t < 1000, "items are limited: " .. #t)
  lib.ok(t:find(", ...}", 1, true), "says more items follow")
  local long = describe(string.rep("y", 100000))
  lib.ok(#long <= 4096, "a huge string too: " .. #long)
end)

local bad_tostrings = {
  raises = function() error("no text for you") end,
  loops = function() while true do end end,
  ["returns a table"] = function() return {} end,
  yields = function() coroutine.yield() end,
}
for name, fn in pairs(bad_tostrings) do
  lib.test("a __tostring that " .. name .. " gives a fallback", function()
    local v = setmetatable({}, { __tostring = fn })
    lib.eq(describe(v), "(error object is a table value)", "the value")
    lib.eq(describe({ inner = v }),
           "{inner = (error object is a table value)}", "inside a table")
  end)
end

lib.test("a good __tostring is used, inside tables too", function()
  local v = setmetatable({}, { __tostring = function() return "Thing#1" end })
  lib.eq(describe({ v, k = v }), "{Thing#1, k = Thing#1}", "used")
end)

-- }=====================================================================

-- {=====================================================================
-- Levels
-- ======================================================================

lib.test("set_level: names the levels, gives the previous one", function()
  lib.eq(logger.level(), "info", "the default")
  lib.eq(logger.set_level("warning"), "info", "previous")
  lib.eq(logger.level(), "warning", "now")
  lib.eq(logger.set_level("info"), "warning", "back")
  lib.raises(function() logger.set_level("loud") end, "invalid option 'loud'",
             "an unknown level")
  lib.raises(function() logger.set_level() end, "bad argument #1",
             "no level")
end)

lib.test("a bad format is the caller's error", function()
  lib.raises(function() logger.info("%d", "x") end, "number expected",
             "string.format's check")
  lib.raises(function() logger.info() end, "bad argument #1", "nothing")
end)

-- }=====================================================================

-- {=====================================================================
-- What a host writes: a second arbor, its stderr read back
-- ======================================================================

local arbor = arg[-1]
for i = -2, -10, -1 do -- `arbor run SCRIPT`: the binary is the first
  if arg[i] == nil then break end
  arbor = arg[i]
end

local function run_script(source, options)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(source)
  f:close()
  local pipe = assert(io.popen(string.format("'%s' run %s '%s' 2>&1",
                                             arbor, options or "", path)))
  local out = pipe:read("a")
  pipe:close()
  os.remove(path)
  return out
end

local TIME = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ"
local PID = "<0%.%d+%.%d+>"

lib.test("text: one line per event: time, level, pid, message", function()
  local out = run_script([[
    local logger = require "logger"
    logger.debug("not shown at info")
    logger.info("hello %d %s", 42, "world")
    logger.set_level("debug")
    logger.debug("now shown")
    logger.set_level("error")
    logger.warning("filtered")
    logger.error("bad %s", "news")
  ]])
  lib.ok(out:match("^" .. TIME .. " info    " .. PID .. " hello 42 world\n"),
         "info line: " .. out)
  lib.ok(out:match("\n" .. TIME .. " debug   " .. PID .. " now shown\n"),
         "debug once enabled: " .. out)
  lib.ok(out:match("\n" .. TIME .. " error   " .. PID .. " bad news\n"),
         "error line: " .. out)
  lib.ok(not out:find("not shown", 1, true), "debug filtered at info")
  lib.ok(not out:find("filtered", 1, true), "warning filtered at error")
  local _, lines = out:gsub("\n", "")
  lib.eq(lines, 3, "three lines")
end)

lib.test("text: structured fields, sorted, tables with contents", function()
  local out = run_script([[
    local logger = require "logger"
    local c = {}
    c.me = c
    logger.notice{ msg = "user login", user = "ann", attempts = 3,
                   ok = true, where = { city = "Oslo" }, loop = c,
                   note = "two\nlines" }
  ]])
  lib.ok(out:match("^" .. TIME .. " notice  " .. PID .. ' user login '
                   .. 'attempts=3 loop="{me = <cycle>}" note="two\\nlines" '
                   .. 'ok=true user=ann where="{city = \\"Oslo\\"}"\n$'),
         "the line: " .. out)
end)

lib.test("a crash report shows a table reason's contents and the traceback",
         function()
  local out = run_script([[
    local process = require "process"
    local pid = process.spawn(function() error({ code = 7 }) end)
    local m = process.monitor(pid)
    process.select(process.new_selector():selecting_process_down(m))
  ]])
  lib.ok(out:match("^" .. TIME .. " error   " .. PID
                   .. " =CRASH REPORT==== process " .. PID .. " crashed\n"
                   .. "reason: {code = 7}\nstack traceback:\n"),
         "the report: " .. out)
  lib.ok(not out:find("table: 0x", 1, true), "no address")
end)

lib.test("an actor loop that returns nil is blamed on the loop's code",
         function()
  local out = run_script([[
    local process = require "process"
    local actor = require "actor"
    process.trap_exits(true)
    local s = actor.start(0, function(msg, state)
      return nil
    end)
    process.send(s, "hi")
    process.select(process.new_selector():selecting_trapped_exits(), 5000)
  ]])
  lib.ok(out:match("reason: [^\n]*:4 %(loop function%): actor loop "
                   .. "must return actor%.continue%(state%) or "
                   .. "actor%.stop%(reason%), got nil"),
         "names the loop's file and line: " .. out)
end)

lib.test("core.quiet(true) silences crash reports, not logger calls",
         function()
  local out = run_script([[
    local process = require "process"
    local logger = require "logger"
    require("arbor.core").quiet(true)
    local pid = process.spawn(function() error("quietly") end)
    local m = process.monitor(pid)
    process.select(process.new_selector():selecting_process_down(m))
    logger.info("still logged")
  ]])
  lib.ok(not out:find("CRASH REPORT", 1, true), "no crash report: " .. out)
  lib.ok(out:find(" still logged\n", 1, true), "the event: " .. out)
end)

-- }=====================================================================
