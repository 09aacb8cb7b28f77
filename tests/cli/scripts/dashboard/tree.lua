-- The tree the dashboard tests watch (tests/cli/test_dashboard*.sh):
-- deterministic, nothing crashes unless asked.  "victim" crashes when a
-- datagram reaches the UDP port it writes to $CRASH_PORT_FILE (a fresh
-- port after every restart, written atomically).  $DASH_CHILDREN > 0
-- adds that many idle workers under "many" (the cost measurement).
local process = require "process"
local supervisor = require "supervisor"
local net = require "net"
local fs = require "fs"

local function worker(body)
  return supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      local inbox = process.new_subject()
      process.send(ready, inbox)
      body(inbox)
    end)
    return process.receive(ready, 2000)
  end)
end

local function idle(inbox)
  while true do process.receive(inbox) end
end

local function victim()
  local udp = assert(net.udp { host = "127.0.0.1", port = 0 })
  local _, port = udp:address()
  local file = os.getenv("CRASH_PORT_FILE")
  if file then assert(fs.write(file, tostring(port), { atomic = true })) end
  local data = udp:receive()
  error("victim crashed on purpose: " .. tostring(data))
end

local many = tonumber(os.getenv("DASH_CHILDREN") or "0")

return supervisor.spec {
  name = "dash-test",
  strategy = "one_for_one",
  max_frequency = 100,
  frequency_period = 1,
  init = function(children)
    children = children
      :add(worker(idle):id("alpha"))
      :add(worker(idle):id("beta"))
      :add(supervisor.supervisor(supervisor.spec {
        name = "inner",
        strategy = "one_for_one",
        init = function(inner)
          return inner:add(worker(idle):id("gamma"))
                      :add(worker(idle):id("delta"))
        end,
      }):id("inner"))
      :add(worker(victim):id("victim"))
    if many > 0 then
      children = children:add(supervisor.supervisor(supervisor.spec {
        name = "many",
        strategy = "one_for_one",
        init = function(kids)
          for i = 1, many do kids = kids:add(worker(idle):id("w" .. i)) end
          return kids
        end,
      }):id("many"))
    end
    return children
  end,
}
