--[[
arbor.shutdown: the host's ordered shutdown, run as a system process.

Given the trees the main process linked to (oldest first; main itself
first when it is still alive), it shuts them down newest first, each one
fully before the next: exit "shutdown", then wait for it to end, without
limit for a supervisor (its own children's timeouts bound it) and up to
5000 ms for anything else, then kill.  What is left afterwards (processes
nobody linked) is killed by halt, newest first.
]]
local process = require "process"
local core = require "arbor.core"

local WORKER_SHUTDOWN_MS = 5000

local function stop(pid)
  if not process.is_alive(pid) then return end
  local mon = process.monitor(pid)
  local down = process.new_selector():selecting_process_down(mon)
  process.exit(pid, "shutdown")
  local timeout = not core.is_supervisor(pid) and WORKER_SHUTDOWN_MS or nil
  if process.select(down, timeout) == nil then
    process.kill(pid)
    process.select(down)
  end
end

return function(trees)
  require("arbor.notify").stopping("stopping") -- systemd: STOPPING=1
  for i = #trees, 1, -1 do stop(trees[i]) end
  core.halt()
end
