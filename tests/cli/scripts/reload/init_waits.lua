-- Returns a spec whose init waits forever for a message nobody sends.
local process = require "process"
local supervisor = require "supervisor"
return supervisor.spec {
  init = function(children)
    io.write("loading: init waits\n")
    io.flush()
    process.receive(process.new_subject())
    return children
  end,
}
