-- test_dashboard_hub: the dashboard hub's chart history keeps a series
-- only for supervisors seen within the chart's window (history_points
-- samples of history_every_ms): a host that makes supervisors under ever
-- new paths does not grow the hub without bound.
local lib = require "testlib"
local core = require "arbor.core"
local hub = require "arbor.dashboard.hub"
lib.quiet()

local function new_hub()
  return setmetatable({ config = { history_points = 4, history_every_ms = 1000 },
                        history = {}, history_order = {} }, hub.Hub)
end

lib.test("series of supervisors gone for the window are dropped", function()
  local h = new_hub()
  local now = core.now()
  h:series("root").seen_at = now
  h:series("root/old").seen_at = now - 4001 -- just past 4 x 1000 ms
  h:series("root/edge").seen_at = now - 3000
  h:series("root/crash_only") -- made now, never seen in a tree
  h:sample_history()
  lib.same(h.history_order, { "root", "root/edge", "root/crash_only" },
           "order after the first sample")
  lib.eq(h.history["root/old"], nil, "the stale series is gone")
  lib.eq(#h.history.root.points, 1, "the kept ones were sampled")
  -- 1,000 supervisors that came and went: none stays.
  for i = 1, 1000 do h:series("root/gone" .. i).seen_at = now - 10000 end
  h:sample_history()
  lib.eq(#h.history_order, 3, "series kept after 1,000 gone")
  local n = 0
  for _ in pairs(h.history) do n = n + 1 end
  lib.eq(n, 3, "history entries")
  lib.ok(h:history_json():find('"supervisor":"root"', 1, true), "json still built")
end)
