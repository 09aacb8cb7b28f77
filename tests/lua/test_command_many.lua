-- test_command_many: 1,000 supervisor.command children started (each
-- running, with its OS pid published) and stopped cleanly (every OS
-- process gone and reaped).  Apart from test_command because forking
-- 1,000 times takes seconds on a loaded machine.
local lib = require "testlib"
local process = require "process"
local supervisor = require "supervisor"
local annotate = require "arbor.annotate"
local core = require "arbor.core"

lib.quiet()
local command = supervisor.command

local function os_exists(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if f then f:close() end
  return f ~= nil
end

local function await(cond, what, ms)
  local deadline = core.now() + (ms or 30000)
  while not cond() do
    if core.now() > deadline then error("timed out waiting: " .. what, 2) end
    process.sleep(5)
  end
end

local function tree(children, opts)
  opts = opts or {}
  return supervisor.start_spec {
    strategy = opts.strategy or "one_for_one",
    max_frequency = opts.max_frequency or 10, frequency_period = 10,
    init = function(c)
      for _, s in ipairs(children) do c = c:add(s) end
      return c
    end }
end

lib.test("1,000 command children started and stopped cleanly", function()
  local children = {}
  for i = 1, 1000 do
    children[i] = command{ "sleep", "1000", output = "null" }:id("c" .. i)
  end
  local sup = assert(tree(children, { max_frequency = 1 }))
  local pids = {}
  for _, c in ipairs(supervisor.which_children(sup)) do
    local a = annotate.get(c.pid)
    pids[#pids + 1] = a and a.os_pid
  end
  lib.eq(#pids, 1000, "1,000 OS pids")
  for i = 1, 1000, 97 do lib.ok(os_exists(pids[i]), "child " .. i .. " runs") end
  supervisor.stop(sup)
  for _, pid in ipairs(pids) do
    await(function() return not os_exists(pid) end, "all stopped and reaped")
  end
end)

lib.no_leftovers("test_command_many")
print("test_command_many: ok")
