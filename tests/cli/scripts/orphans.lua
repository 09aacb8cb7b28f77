-- OS processes of every kind the host starts, then an exit path:
--   arg[1] == "block"  -> waits (the shell sends SIGTERM or SIGINT)
--   arg[1] == "return" -> main returns
--   arg[1] == "raise"  -> main raises
-- Prints "pid N" for every OS process it knows of, then "ready".  Kinds:
-- a port owned by a worker (its leader and a grandchild in the group), a
-- supervisor.command child (leader and grandchild), a daemon that left
-- every group (setsid) and whose parent exited (the host adopted it as
-- subreaper), and a command started by os.execute in a process.
io.stdout:setvbuf("line")
local process = require "process"
local port = require "port"
local supervisor = require "supervisor"
local fs = require "fs"

local function first_line(p)
  local m = process.select(process.new_selector():selecting_port(p), 10000)
  return (assert(m and m.stdout, "a line from the port"))
end

local told = process.new_subject()
process.spawn_link(function()
  local p = assert(port.spawn{ "sh", "-c", "sleep 1000 & echo $!; wait" })
  process.send(told, { p:os_pid(), tonumber(first_line(p)) })
  local d = assert(port.spawn{ "sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!" })
  process.send(told, { tonumber(first_line(d)) })
  process.receive(process.new_subject())
end)
for _ = 1, 2 do
  for _, pid in ipairs(process.receive(told, 10000)) do print("pid " .. pid) end
end

local marker = os.tmpname()
os.remove(marker)
local sup = assert(supervisor.start_spec{
  strategy = "one_for_one", max_frequency = 3, frequency_period = 5,
  init = function(c)
    return c:add(supervisor.command{ "sh", "-c",
      "sleep 1000 & echo \"child $!\"; echo \"leader $$\"; wait",
      ready = { line = "^leader" } }:id("cmd"))
  end })
local _ = sup
-- The command's lines went to the log; its pids are in the annotation and
-- its grandchild is found through /proc.
local annotate = require "arbor.annotate"
local leader = annotate.get(supervisor.which_children(sup)[1].pid).os_pid
print("pid " .. leader)
for _ = 1, 1000 do
  local kids = fs.read("/proc/" .. leader .. "/task/" .. leader .. "/children")
  local kid = kids and kids:match("%d+")
  if kid then print("pid " .. kid) break end
  process.sleep(5)
end

local exec_fifo = os.tmpname()
os.remove(exec_fifo)
assert(os.execute("mkfifo " .. exec_fifo))
process.spawn_link(function()
  os.execute("echo $$ > " .. exec_fifo .. "; exec sleep 1000")
end)
print("pid " .. assert(fs.read(exec_fifo)):match("%d+"))
os.remove(exec_fifo)
os.remove(marker)

print("ready")
if arg[1] == "raise" then error("main gives up") end
if arg[1] == "block" then process.receive(process.new_subject()) end
