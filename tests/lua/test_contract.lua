-- test_contract: the host's one error type and its one reading of exit
-- reasons, as every module sees them (issue 10: one error contract).
local lib = require "testlib"
local process = require "process"
local chip = require "chip"
local actor = require "actor"
local core = require "arbor.core"

lib.quiet()

lib.test("classify: the one reading of exit reasons", function()
  local cases = {
    { "normal", "normal" }, { "shutdown", "shutdown" },
    { { shutdown = true }, "shutdown" }, { { shutdown = "yes" }, "abnormal" },
    { { shutdown = false }, "abnormal" }, { "kill", "abnormal" },
    { "killed", "abnormal" }, { "noproc", "abnormal" }, { "boom", "abnormal" },
    { 42, "abnormal" }, { false, "abnormal" },
  }
  for _, c in ipairs(cases) do
    lib.eq(core.classify(c[1]), c[2], "classify " .. core.describe(c[1]))
  end
  -- A metatable's __index is not read: only a raw shutdown = true counts.
  local sneaky = setmetatable({}, { __index = { shutdown = true } })
  lib.eq(core.classify(sneaky), "abnormal", "shutdown through __index")
  lib.raises(function() core.classify() end, "bad argument #1")
end)

lib.test("classify agrees with what links do", function()
  -- A linked non-trapper survives "normal" and {shutdown = true} only when
  -- the reason is normal; the trapper sees the reason itself.
  lib.trapping(function()
    for _, reason in ipairs { "normal", "shutdown", { shutdown = true } } do
      local pid = process.spawn_link(function() core.exit_self(reason) end)
      local e = lib.trapped_exit()
      lib.ok(e and e.pid == pid, "the exit arrived")
      lib.eq(core.classify(e.reason), core.classify(reason), "same class")
    end
  end)
  lib.no_leftovers()
end)

lib.test("every module's expected failure is one error type", function()
  local errors = {}
  -- chip: a name already held
  local r = assert(chip.start("contract-test"))
  local none, e1 = chip.start("contract-test")
  lib.eq(none, nil, "second start")
  lib.eq(e1.kind, "name_taken", "chip kind")
  errors[#errors + 1] = e1
  chip.stop(r)
  -- process.try_call: nobody answers
  local silent = process.spawn(function() process.receive(process.new_subject()) end)
  local inbox
  do
    local hand = process.new_subject()
    local p = process.spawn(function()
      local s = process.new_subject()
      process.send(hand, s)
      process.sleep_forever()
    end)
    inbox = process.receive(hand, 1000)
    local v, e2 = process.try_call(inbox, function(reply) return reply end, 10)
    lib.eq(v, nil, "try_call")
    lib.eq(e2.kind, "timeout", "try_call kind")
    errors[#errors + 1] = e2
    process.kill(p)
  end
  process.kill(silent)
  -- actor: init raises
  local a, e3 = actor.start_spec { init = function() error("no config", 0) end,
                                   loop = function(_, s) return actor.continue(s) end }
  lib.eq(a, nil, "actor")
  lib.eq(e3.kind, "init_failed", "actor kind")
  errors[#errors + 1] = e3
  -- made by hand through arbor.core.error
  local e4 = core.error { kind = "custom", message = "made here", path = "/x" }
  errors[#errors + 1] = e4
  local mt = getmetatable(e1)
  lib.ok(type(mt) == "table", "an error has a metatable")
  for i, e in ipairs(errors) do
    lib.ok(getmetatable(e) == mt, "error " .. i .. " has the one metatable")
    lib.eq(type(e.kind), "string", "error " .. i .. " kind")
    lib.eq(tostring(e), e.message, "error " .. i .. " tostring is its message")
    lib.ok(not tostring(e):find("\n"), "error " .. i .. " is one line")
  end
  lib.eq(e4.path, "/x", "extra fields stay")
  lib.eq(tostring(core.error { kind = "bare" }), "error: bare",
         "no message: the kind")
  lib.raises(function() core.error { message = "no kind" } end,
             "bad argument #1 to 'error'")
  lib.raises(function() core.error("text") end, "bad argument #1")
  lib.no_leftovers()
end)

lib.test("every userdata type has a one-line __tostring", function()
  local s = process.new_subject()
  local timer = process.send_after(s, 60000, "later")
  local sel = process.new_selector():selecting(s)
  local pid = process.spawn(function() process.sleep_forever() end)
  local mon = process.monitor(pid)
  local reg = assert(chip.start())
  local engine = require("arbor.core.sup").new("one_for_one", 3, 5000)
  local want = {
    { process.self(), "^<0%.%d+%.%d+>$" },
    { s, "^Subject<%d+ of <0%.%d+%.%d+>>$" },
    { timer, "^Timer<%d+>$" },
    { sel, "^Selector<1 sources>$" },
    { mon, "^Monitor<%d+ of <0%.%d+%.%d+>>$" },
    { reg, "^Subject<%d+ of <0%.%d+%.%d+>>$" },
    { engine, "^RestartEngine<0 children>$" },
  }
  for i, w in ipairs(want) do
    local text = tostring(w[1])
    lib.ok(text:match(w[2]), "value " .. i .. ": " .. text)
  end
  process.cancel_timer(timer)
  process.demonitor(mon)
  process.kill(pid)
  chip.stop(reg)
  lib.no_leftovers()
end)
