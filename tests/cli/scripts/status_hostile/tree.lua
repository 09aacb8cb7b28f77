-- The tree tests/cli/test_status_hostile.sh reads: a child whose id is
-- 120 bytes long and holds an escape sequence and a newline, and a child
-- "liar" (the test ends it with a reason that holds escape sequences and
-- a newline, through arbor eval).
local process = require "process"
local supervisor = require "supervisor"

local function worker()
  return supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      local inbox = process.new_subject()
      process.send(ready, inbox)
      process.receive(inbox)
    end)
    return process.receive(ready, 2000)
  end)
end

return supervisor.spec {
  name = "hostile",
  strategy = "one_for_one",
  init = function(children)
    return children
      :add(worker():id(string.rep("x", 120) .. "\27[31m\nred"))
      :add(worker():id("liar"))
  end,
}
