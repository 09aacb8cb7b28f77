-- Returns a spec whose init loops forever.
local supervisor = require "supervisor"
return supervisor.spec {
  init = function(children)
    io.write("loading: init loops\n")
    io.flush()
    while true do end
    return children
  end,
}
