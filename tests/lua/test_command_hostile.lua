-- test_command_hostile: a ready pattern that backtracks without end
-- cannot freeze the host.  port.pattern_find (host/core/pattern.c) must
-- agree with string.find (found or not, start, end, captures) on
-- hand-picked and random patterns (fixed seed, printed); it must give up
-- on the attack ("a*" thirty times, then "b", against 200,000 'a's)
-- within its budget; and end to end, a command child printing such a
-- line leaves the host responsive (another process keeps exchanging
-- messages), its ready_timeout ends the start as usual, and SIGTERM
-- stops a host waiting on such a child promptly.
local lib = require "testlib"
local process = require "process"
local port = require "port"
local logger = require "logger"
local supervisor = require "supervisor"
local core = require "arbor.core"

lib.quiet()

local command = supervisor.command
local tree = require("suplib").tree
local find = port.pattern_find
local ATTACK = ("a*"):rep(30) .. "b"
local BIG = 1 << 30 -- a budget no case here comes near

-- Compares port.pattern_find with string.find on one case; returns false
-- and a description when they differ.
local function agree(s, pat, init)
  local lua = table.pack(pcall(string.find, s, pat, init))
  local ours = table.pack(pcall(find, s, pat, init, BIG))
  if not ours[1] then
    return false, "pattern_find raised: " .. tostring(ours[2])
  end
  if not lua[1] then
    -- Lua's depth limit; ours reports the same nesting as too costly.
    if tostring(lua[2]):find("pattern too complex", 1, true) then
      return ours[2] == false, "Lua: too complex; ours: " .. tostring(ours[2])
    end
    return false, "string.find raised on a pattern we accepted: " .. tostring(lua[2])
  end
  if lua.n ~= ours.n then return false, "result counts differ" end
  for i = 2, lua.n do
    if lua[i] ~= ours[i] then return false, "result " .. (i - 1) .. " differs" end
  end
  return true
end

local function show_case(s, pat, init)
  return string.format("string.find(%q, %q, %s)", s, pat, tostring(init))
end

local function strings_of(t)
  local out = {}
  for i = 1, #t do out[i] = tostring(t[i]) end
  return out
end

local function check_case(s, pat, init)
  local ok, why = agree(s, pat, init)
  if not ok then
    local lua = { pcall(string.find, s, pat, init) }
    local ours = { pcall(find, s, pat, init, BIG) }
    error(string.format("%s: %s; Lua gives %s, ours %s", show_case(s, pat, init),
      why, table.concat(strings_of(lua), ","), table.concat(strings_of(ours), ",")), 2)
  end
end

lib.test("hand-picked patterns agree with string.find", function()
  local subjects = { "", "a", "aaab", "hello world", "  key = value ",
    "f(a(b)c) d", "THE (quick) fox", "say \"hi\" and 'bye'", "0x1F, 42!",
    "a.b-c[d]e^f$g%h", "tab\there\nnl", "ab\0cd", "listening on 127.0.0.1:8080",
    "]]^^--", "aAbB09_ \1\127\255" }
  local patterns = { "", "a", "^a", "a$", "^$", "$", "^", ".", "..", ".-", ".*",
    "a*", "a+", "a-", "a?", "a-b", "a*b", "^a*$", "[ab]+", "[^ab]+", "[a-c]",
    "[%a_][%w_]*", "[]]", "[^]]", "[a-]", "[-a]", "[%]]", "[%-]", "%a+", "%A+",
    "%c", "%C+", "%d+", "%D", "%g+", "%G", "%l+", "%L", "%p", "%P+", "%s+",
    "%S+", "%u+", "%U", "%w+", "%W+", "%x+", "%X", "%.", "%%", "%$", "%^",
    "%(", "(%a+)", "()", "()a()", "(a)(b)", "((a)b)", "(a*(.)%w(%s*))",
    "%b()", "%b[]", "%bxy", "%f[%a]%a+", "%f[%A]", "%f[%w]%w+%f[%W]",
    "([\"'])(.-)%1", "(a)%1", "(.)%1", "^(%s*)(.-)(%s*)$", "(%w+)%s*=%s*(%w+)",
    "on (%d+%.%d+%.%d+%.%d+):(%d+)$", "a^", "$a", "^^a", "a$$", "x*$",
    "%z", "[%z]", "[\0-\31]", "\0", "[\128-\255]+", "%x%x", "[%x-]",
    ".-%s", ".*%s", "-", "*", "+", "?", "a**", "a*?", "a+-", "[a-c-e]" }
  local n = 0
  for _, pat in ipairs(patterns) do
    if port.pattern_check(pat) then
      for _, s in ipairs(subjects) do
        for _, init in ipairs { 1, 2, -3, #s + 1, #s + 2, -100, 0 } do
          check_case(s, pat, init)
          n = n + 1
        end
      end
    end
  end
  lib.ok(n > 5000, "cases compared: " .. n)
end)

-- A random pattern: items drawn from the grammar of section 6.4.1.
local SINGLES = { "a", "b", "c", " ", ".", "%a", "%d", "%s", "%w", "%p", "%l",
  "%u", "%x", "%c", "%g", "%A", "%S", "%W", "[ab]", "[^a]", "[a-c]", "[%d_]",
  "[^%s]", "[]a]", "%.", "%%", "(", "(", ")", "^", "$", "-", "]" }
local QUANTIFIERS = { "", "", "", "*", "+", "-", "?" }
local EXTRAS = { "%b()", "%bab", "%f[%a]", "%f[^a]", "()", "%1", "%2" }

local function random_pattern(rnd)
  local parts = {}
  if rnd(4) == 1 then parts[1] = "^" end
  for _ = 1, rnd(6) do
    if rnd(6) == 1 then
      parts[#parts + 1] = EXTRAS[rnd(#EXTRAS)]
    else
      parts[#parts + 1] = SINGLES[rnd(#SINGLES)] .. QUANTIFIERS[rnd(#QUANTIFIERS)]
    end
  end
  if rnd(4) == 1 then parts[#parts + 1] = "$" end
  return table.concat(parts)
end

local ALPHABET = { "a", "a", "b", "c", " ", "1", "_", "(", ")", ".", "A", "\0", "]" }

local function random_subject(rnd)
  local t = {}
  for i = 1, rnd(13) - 1 do t[i] = ALPHABET[rnd(#ALPHABET)] end
  return table.concat(t)
end

lib.test("random patterns agree with string.find", function()
  local seed = tonumber(os.getenv("ARBOR_PATTERN_SEED")) or 20261130
  print("# pattern seed " .. seed)
  math.randomseed(seed)
  local rnd = math.random
  local compared, rejected, matched = 0, 0, 0
  for _ = 1, 4000 do
    local pat = random_pattern(rnd)
    if port.pattern_check(pat) then
      for _ = 1, 6 do
        local s = random_subject(rnd)
        local init = rnd(4) == 1 and rnd(#s + 2) - 1 or 1
        check_case(s, pat, init)
        compared = compared + 1
        if string.find(s, pat, init) then matched = matched + 1 end
      end
    else
      rejected = rejected + 1
      -- Whatever we refuse up front is a pattern Lua would refuse too,
      -- or one whose meaning the manual leaves undefined.
    end
  end
  print(string.format("# %d cases compared (%d matched), %d patterns refused",
                      compared, matched, rejected))
  lib.ok(compared > 10000 and matched > 1000 and compared - matched > 1000,
         "both outcomes well covered")
end)

lib.test("the attack pattern gives up within the budget", function()
  local line = ("a"):rep(200000)
  lib.same({ find(line, ATTACK) }, { false, "too costly" }, "too costly")
  lib.same({ find(line:sub(1, 4096), ATTACK) }, { false, "too costly" },
           "too costly at the ready cap")
  lib.same({ find(("a"):rep(20) .. "b", ATTACK) }, { 1, 21 },
           "the same pattern where it can match cheaply")
  lib.same({ find(line, "a", 1, 5) }, { 1, 1 }, "a cheap match fits a tiny budget")
  lib.same({ find(line, "b", 1, 5) }, { false, "too costly" }, "a scan does not")
  lib.raises(function() find("x", "[x") end, "malformed pattern: missing ']'")
  lib.raises(function() find("x", "x", 1, 0) end, "budget must be")
  lib.eq(select(2, port.pattern_check("(x")), "unfinished capture (opened at byte 1)",
         "check's message")
  lib.eq(require("arbor.command").READY_LINE_MAX, 4096, "the ready cap")
end)

-- The shell text of a command printing `lines` lines of 200,000 'a's,
-- then writing its pid to marker and sleeping.
local function hog(lines, marker)
  return string.format("for i in $(seq %d); do head -c 200000 /dev/zero | tr '\\0' a; "
    .. "echo; done; echo $$ > %s; exec sleep 1000", lines, marker)
end

lib.test("a costly ready pattern: the host stays responsive, the timeout ends the start",
         function()
  logger.keep_recent(200)
  local _, before = logger.recent()
  local marker = os.tmpname()
  os.remove(marker)
  -- An echo process and a pinger: round trips go on while the start waits.
  local inbox = process.new_subject()
  local echo = process.spawn_link(function()
    local me = process.new_subject()
    process.send(inbox, me)
    while true do
      local m = process.receive(me)
      process.send(m.reply, m.n)
    end
  end)
  local echo_subject = process.receive(inbox, 5000)
  lib.ok(echo_subject, "echo ready")
  local result = process.new_subject()
  process.spawn(function()
    local sup, err = tree{ command{ "sh", "-c", hog(3, marker),
      ready = { line = ATTACK }, ready_timeout = 1500, output = "null" }:id("hog") }
    process.send(result, { sup = sup, err = err })
  end)
  local reply = process.new_subject()
  local trips, r = 0, nil
  while true do
    r = process.receive(result, 0)
    if r then break end
    process.send(echo_subject, { reply = reply, n = trips })
    lib.eq(process.receive(reply, 5000), trips, "echoed while the start waits")
    trips = trips + 1
    process.sleep(10)
  end
  lib.eq(r.sup, nil, "the start failed")
  local err = tostring(r.err)
  lib.ok(err:find("not ready after 1500 ms", 1, true), "timeout: " .. err)
  lib.ok(err:find("3 lines were too costly to match", 1, true), "says why: " .. err)
  lib.ok(trips >= 10, "round trips went on during the start: " .. trips)
  -- All three lines were read (and judged) before the timeout.
  local mf = io.open(marker)
  local pid = mf and tonumber(mf:read("l"))
  if mf then mf:close() end
  lib.ok(pid, "the command got past its lines")
  os.remove(marker)
  lib.await(function() return not lib.os_exists(pid) end, "the command was killed")
  local warnings = 0
  for _, e in ipairs(logger.recent(before)) do
    if e.text:find("too costly to match", 1, true) then
      warnings = warnings + 1
      lib.ok(e.text:find(string.format("%q", ATTACK), 1, true), "names the pattern")
      lib.ok(e.text:find("200000 bytes", 1, true), "and the line's length")
    end
  end
  lib.eq(warnings, 1, "one warning for the child, not one per line")
  process.unlink(echo)
  process.exit(echo, "kill")
end)

lib.test("a costly line, then a matching one: ready, warning names the id", function()
  logger.keep_recent(200)
  local _, before = logger.recent()
  local sup = assert(tree{ command{ "sh", "-c",
      "head -c 200000 /dev/zero | tr '\\0' a; echo; echo 'aaab'; exec sleep 1000",
      ready = { line = ATTACK }, output = "null" }:id("patient") })
  local found
  lib.await(function()
    for _, e in ipairs(logger.recent(before)) do
      if e.text:find("too costly to match", 1, true) then found = e.text end
    end
    return found
  end, "the warning")
  lib.ok(found:find("child=patient", 1, true), "the child's id: " .. found)
  supervisor.stop(sup)
end)

-- The host itself, waiting on such a child, stops on SIGTERM.  (Its
-- ordered shutdown waits for a tree still starting, so the host ends once
-- that start has failed: after the child's ready_timeout, 3000 ms here.
-- Before the bounded matcher it never ended: the loop was stuck in C.)
lib.test("SIGTERM stops a host whose command child prints costly lines", function()
  local script = os.tmpname()
  local marker = os.tmpname()
  os.remove(marker)
  local f = assert(io.open(script, "w"))
  f:write([[
local process = require "process"
local supervisor = require "supervisor"
process.spawn(function()
  for n = 1, math.huge do
    io.write("alive ", n, "\n")
    io.flush()
    process.sleep(20)
  end
end)
supervisor.start_spec{ strategy = "one_for_one", init = function(c)
  return c:add(supervisor.command{ "sh", "-c", arg[2], ready = { line = arg[1] },
                                   ready_timeout = 3000, output = "null" })
end }
]])
  f:close()
  local host = assert(port.spawn{ arg[-1], script, ATTACK, hog(5, marker),
                                  stderr = "null" })
  local sel = process.new_selector():selecting_port(host)
  local deadline = core.now() + 20000
  local pid, alive_after, term_at, exit_msg = nil, 0, nil, nil
  while true do
    -- Until SIGTERM: heartbeats; after it, the exit within the child's
    -- ready_timeout and a margin.
    local left = (term_at and math.min(deadline, term_at + 13000) or deadline) - core.now()
    local m = left > 0 and process.select(sel, left) or nil
    lib.ok(m, "the host answered before the deadline")
    if m.exit ~= nil or m.signal ~= nil then
      exit_msg = m
      break
    end
    if m.stdout and m.stdout:find("^alive") and not term_at then
      local mf = io.open(marker)
      if mf then
        pid = pid or tonumber(mf:read("l"))
        mf:close()
      end
      -- Heartbeats after all the costly lines were printed: the host
      -- is still turning.
      if pid then alive_after = alive_after + 1 end
      if alive_after >= 3 then
        term_at = core.now()
        lib.eq(host:signal("TERM"), true, "SIGTERM sent")
      end
    end
  end
  lib.ok(term_at, "heartbeats went on after the costly lines: " .. alive_after)
  print(string.format("# host ended %d ms after SIGTERM", core.now() - term_at))
  lib.ok(exit_msg.exit ~= nil or exit_msg.signal == "TERM", "the host ended")
  lib.await(function() return not lib.os_exists(pid) end, "and its command with it")
  os.remove(script)
  os.remove(marker)
end)

lib.no_leftovers("test_command_hostile")
print("test_command_hostile: ok")
