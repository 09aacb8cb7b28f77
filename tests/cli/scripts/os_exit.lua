-- os.exit inside a process ends the host in order:
--   arbor os_exit.lua WHO CODE DIR
-- WHO: "worker" (an unlinked process calls it), "main", "child" (a
-- child of the tree calls it), "sorted" (a worker calls it inside a
-- table.sort comparator: it cannot wait, Lua's own os.exit runs).
-- CODE: an integer, "true", "false" or "none".  Starts a tree of a command
-- child (a shell that writes DIR/cmd_term on SIGTERM, then exits) and a
-- worker that traps exits and writes DIR/worker_stopped with the reason
-- it was stopped with; prints "pid N" (the command's) and "ready", logs
-- "before exit", then calls os.exit(CODE).
io.stdout:setvbuf("line")
local process = require "process"
local supervisor = require "supervisor"
local logger = require "logger"
local fs = require "fs"
local who, code_text, dir = arg[1], arg[2], arg[3]
local code = ({ ["true"] = true, ["false"] = false })[code_text]
if code == nil and code_text ~= "none" then code = math.tointeger(code_text) end

local function call_exit()
  logger.info("before exit")
  if code_text == "none" then os.exit() end
  os.exit(code)
end

local child_go = process.new_subject()
local sup = assert(supervisor.start_spec{ init = function(c)
  return c
    :add(supervisor.command{ "sh", "-c",
      "trap 'echo term > " .. dir .. "/cmd_term; exit 0' TERM; "
      .. "echo \"leader $$\"; while :; do sleep 1 & wait $!; done",
      ready = { line = "^leader" } }:id("cmd"))
    :add(supervisor.worker(function()
      local hand = process.new_subject()
      process.spawn_link(function()
        process.trap_exits(true)
        local go = process.new_subject()
        process.send(hand, go)
        process.send(child_go, go)
        local m = process.select(process.new_selector()
          :selecting_trapped_exits()
          :selecting(go, function() return "go" end))
        if m == "go" then call_exit() end
        assert(fs.write(dir .. "/worker_stopped", tostring(m.reason)))
      end)
      return process.receive(hand, 5000)
    end):id("worker"))
end })
local go = process.receive(child_go, 5000)
local annotate = require "arbor.annotate"
print("pid " .. annotate.get(supervisor.which_children(sup)[1].pid).os_pid)
print("ready")

if who == "main" then
  call_exit()
elseif who == "child" then
  process.send(go, true)
elseif who == "worker" then
  process.spawn(call_exit)
elseif who == "sorted" then
  process.spawn(function()
    table.sort({ 1, 2 }, function(a, b) call_exit() return a < b end)
  end)
end
process.receive(process.new_subject())
