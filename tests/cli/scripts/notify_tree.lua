-- A served tree with one command child that is ready by systemd's
-- protocol: $ARBOR_NOTIFY_SEND (tests/helpers/notify_send.c) sends a
-- STATUS= text and READY=1, then runs sleep.
local supervisor = require "supervisor"
local helper = assert(os.getenv("ARBOR_NOTIFY_SEND"), "ARBOR_NOTIFY_SEND")
return supervisor.spec{
  strategy = "one_for_one", max_frequency = 3, frequency_period = 5,
  init = function(children)
    return children:add(supervisor.command{ helper, "STATUS=serving 3 clients",
      "READY=1", "--", "sleep", "1000", ready = "notify" }:id("svc"))
  end }
