-- services: one tree over an OS process and Lua processes.
--
--   arbor run examples/services/services.lua      (serves; Ctrl-C stops)
--   arbor status examples/services/services.lua   (from another shell)
--
-- The tree (one_for_one):
--   web      a supervisor holding "http", an OS process serving HTTP on
--            127.0.0.1:$SERVICES_PORT (default 8765): python3's
--            http.server when python3 is installed, else arbor's own
--            examples/http_hello.lua run by this same binary.  Started
--            with supervisor.command, ready when it prints that it serves.
--   health   a Lua worker that checks http over TCP (net) every second;
--            after 3 checks in a row without an answer it restarts http
--            through supervisor.terminate_child and restart_child on web,
--            whose subject it was handed by web's :returning.
--
-- Try `kill -STOP <os pid>` on the server (arbor status shows it): the
-- health worker notices and the server is replaced (stop signal first;
-- a stopped process cannot act on it, so SIGKILL follows after http's
-- 1000 ms shutdown time).  Edit the python flags and `arbor reload`:
-- only http restarts.
local supervisor = require "supervisor"
local process = require "process"
local net = require "net"
local logger = require "logger"

io.stdout:setvbuf("line")

local PORT = tonumber(os.getenv("SERVICES_PORT")) or 8765
local CHECK_EVERY_MS = tonumber(os.getenv("SERVICES_CHECK_MS")) or 1000
local TIMEOUT_MS, MISSES = 1000, 3
local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."

-- The HTTP server: python3's when there is one, else arbor's own.
local function http_command()
  local want = os.getenv("SERVICES_HTTP")
  local has_python = want ~= "arbor" and os.execute("command -v python3 >/dev/null 2>&1")
  if has_python then
    return supervisor.command{ "python3", "-m", "http.server", "--bind",
      "127.0.0.1", tostring(PORT), cwd = here,
      env = { PYTHONUNBUFFERED = "1" },
      ready = { line = "^Serving HTTP on" } }
  end
  return supervisor.command{ "/proc/self/exe", here .. "/../http_hello.lua",
    tostring(PORT), ready = { line = "^http_hello on" } }
end

-- One check: a request, and the status line of the answer.
local function answers()
  local s = net.connect{ host = "127.0.0.1", port = PORT, timeout = TIMEOUT_MS,
                         packet = "line" }
  if not s then return false end
  local ok = s:send("HEAD / HTTP/1.0\r\n\r\n")
  local status = ok and s:receive(TIMEOUT_MS)
  s:close()
  return status ~= nil and status:match("^HTTP/1%.%d %d+") ~= nil
end

local function health(web)
  local misses, was_up = 0, false
  while true do
    if answers() then
      if not was_up then print("health: http answering on port " .. PORT) end
      misses, was_up = 0, true
    else
      misses = misses + 1
      if misses >= MISSES then
        logger.warning{ msg = "http stopped answering; restarting it",
                        misses = misses }
        print("health: restarting http")
        supervisor.terminate_child(web, "http")
        local ok, err = supervisor.restart_child(web, "http")
        print(ok and "health: http restarted"
                 or "health: restart failed: " .. tostring(err))
        misses, was_up = 0, false
      end
    end
    process.sleep(CHECK_EVERY_MS)
  end
end

local web = supervisor.spec{
  strategy = "one_for_one", max_frequency = 5, frequency_period = 60,
  init = function(children)
    return children:add(http_command():id("http"):shutdown(1000))
  end }

return supervisor.spec{
  strategy = "one_for_one", max_frequency = 5, frequency_period = 60,
  init = function(children)
    return children
      :add(supervisor.supervisor(web):id("web")
             :returning(function(_, sub) return sub end))
      :add(supervisor.worker(function(web_sup)
             local ready = process.new_subject()
             process.spawn_link(function()
               process.send(ready, process.new_subject())
               health(web_sup)
             end)
             return process.receive(ready, 5000)
           end):id("health"))
  end }
