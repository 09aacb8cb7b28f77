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

local os_exists = lib.os_exists

-- 1,000 forks take seconds on a loaded machine: 30 s unless told.
local function await(cond, what, ms) lib.await(cond, what, ms or 30000) end

local tree = require("suplib").tree

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
