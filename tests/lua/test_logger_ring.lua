-- logger.keep_recent / logger.recent: the bounded ring of recent events
-- the dashboard reads (host/bind/llogger.c).
local t = require "testlib"
local logger = require "logger"
local process = require "process"
local supervisor = require "supervisor"

t.test("off until keep_recent: nothing kept", function()
  logger.info("before the ring")
  local events, last = logger.recent()
  t.eq(#events, 0)
  t.eq(last, 0)
end)

t.test("keeps the last n, oldest first, with seq, time, level, pid", function()
  logger.keep_recent(3)
  for i = 1, 5 do logger.warning("event %d", i) end
  local events, last = logger.recent()
  t.eq(#events, 3)
  t.eq(last, 5)
  t.eq(events[1].seq, 3)
  t.eq(events[1].text, "event 3")
  t.eq(events[3].text, "event 5")
  t.eq(events[3].level, "warning")
  t.eq(events[3].pid, tostring(process.self()))
  t.ok(math.type(events[1].time) == "integer" and events[1].time > 1.5e12)
  -- after: only newer ones
  local newer = logger.recent(4)
  t.eq(#newer, 1)
  t.eq(newer[1].text, "event 5")
  t.eq(#logger.recent(5), 0)
  t.eq(#logger.recent(-7), 3)
end)

t.test("events below the level are not kept", function()
  logger.keep_recent(10)
  local _, before = logger.recent()
  logger.debug("hidden")
  local events, last = logger.recent(before)
  t.eq(#events, 0)
  t.eq(last, before)
end)

t.test("fields and structured events, texts cut at 1 KiB", function()
  logger.keep_recent(10)
  local _, before = logger.recent()
  logger.info { msg = "structured", user = "ann", n = 3 }
  logger.info(string.rep("x", 5000))
  local events = logger.recent(before)
  t.eq(events[1].text, "structured n=3 user=ann")
  t.eq(#events[2].text, 1024)
end)

t.test("crash and supervisor reports carry kind and supervisor", function()
  logger.keep_recent(50)
  local _, before = logger.recent()
  local sup = assert(supervisor.start_spec {
    name = "ringsup", strategy = "one_for_one", max_frequency = 5,
    init = function(children)
      return children:add(supervisor.worker(function()
        local ready = process.new_subject()
        process.spawn_link(function()
          local inbox = process.new_subject()
          process.send(ready, inbox)
          local m = process.receive(inbox)
          if m == "crash" then error("ring test crash") end
        end)
        return process.receive(ready, 1000)
      end):id("w"))
    end })
  local w = supervisor.which_children(sup)[1]
  process.send(w.subject, "crash")
  local crash, report
  local deadline = require("arbor.core").now() + 5000
  while not (crash and report) and require("arbor.core").now() < deadline do
    for _, e in ipairs(logger.recent(before)) do
      if e.kind == "crash" then crash = e end
      if e.kind == "supervisor" then report = e end
    end
    if not (crash and report) then process.sleep(10) end
  end
  t.ok(crash, "a crash event")
  t.eq(crash.supervisor, "ringsup")
  t.ok(crash.text:find("(child w of ringsup): ", 1, true), crash.text)
  t.ok(crash.text:find("ring test crash", 1, true))
  t.ok(crash.text:find("stack traceback", 1, true), "the traceback follows")
  t.eq(crash.level, "error")
  t.ok(report, "a supervisor report")
  t.eq(report.supervisor, "ringsup")
  t.ok(report.text:find("SUPERVISOR REPORT", 1, true))
  supervisor.stop(sup)
end)

t.test("keep_recent(0) stops; bad sizes raise", function()
  logger.keep_recent(0)
  logger.info("not kept")
  t.eq(#logger.recent(), 0)
  t.raises(function() logger.keep_recent(-1) end, "0 to 10000")
  t.raises(function() logger.keep_recent(10001) end, "0 to 10000")
  t.raises(function() logger.keep_recent("x") end, "number expected")
end)


