-- examples/dashboard/tree.lua: a small service to watch with the
-- dashboard.
--
--   arbor run --dashboard 8080 examples/dashboard/tree.lua
--
-- then open the URL it prints.  The tree: a web-ish front (two workers),
-- a nested "jobs" supervisor with a worker that crashes now and then,
-- a counter, and a "victim" that crashes on demand: when
-- $CRASH_PORT_FILE is set it listens on a UDP port on 127.0.0.1, writes
-- the port to that file, and crashes when any datagram arrives (the
-- browser test crashes it on purpose that way).
local process = require "process"
local supervisor = require "supervisor"
local logger = require "logger"
local net = require "net"
local fs = require "fs"

-- A worker whose process runs body(subject) (a subject it owns).
local function worker(body)
  return supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      local inbox = process.new_subject()
      process.send(ready, inbox)
      body(inbox)
    end)
    return process.receive(ready, 1000)
  end)
end

local function idle(inbox)
  while true do process.receive(inbox) end
end

local function counter(inbox)
  local n = 0
  while true do
    local msg = process.receive(inbox, 1000)
    n = n + 1
    if msg == nil and n % 30 == 0 then logger.info("counter at %d", n) end
  end
end

-- Crashes after a random while (2 to 20 s), as flaky things do.
local function flaky()
  process.sleep(math.random(2000, 20000))
  error("flaky: lost its connection (on purpose)")
end

local function victim(inbox)
  local port_file = os.getenv("CRASH_PORT_FILE")
  if not port_file then return idle(inbox) end
  local udp = assert(net.udp { host = "127.0.0.1", port = 0 })
  local _, port = udp:address()
  assert(fs.write(port_file, tostring(port), { atomic = true }))
  local data = udp:receive()
  error("victim: crashed on purpose by a datagram: " .. tostring(data))
end

return supervisor.spec {
  name = "shop",
  strategy = "one_for_one",
  max_frequency = 50,
  frequency_period = 10,
  init = function(children)
    return children
      :add(worker(idle):id("http"))
      :add(worker(idle):id("sessions"))
      :add(supervisor.supervisor(supervisor.spec {
        name = "jobs",
        strategy = "one_for_one",
        max_frequency = 50,
        frequency_period = 10,
        init = function(jobs)
          return jobs
            :add(worker(counter):id("counter"))
            :add(worker(function() flaky() end):id("mailer"))
            :add(worker(idle):id("billing"))
        end,
      }):id("jobs"))
      :add(worker(victim):id("victim"))
  end,
}
