-- services: the arbor side of the supervisord comparison
-- (tests/bench/supervisord.sh): N `sleep` services (default 100) as
-- supervisor.command children of one one_for_one tree, output discarded,
-- served until a signal.
--   arbor run tests/bench/services.lua [N]
local supervisor = require "supervisor"
local n = tonumber(arg[1]) or 100
return supervisor.spec{
  strategy = "one_for_one", max_frequency = 1000, frequency_period = 1,
  init = function(children)
    for i = 1, n do
      children = children:add(supervisor.command{ "sleep", "100000",
        output = "null" }:id("sleep" .. i))
    end
    return children
  end }
