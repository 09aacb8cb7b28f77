-- without_dist: an arbor built without erl_interface says so when a
-- script asks for dist (registered only in such a build).
local ok, err = pcall(require, "dist")
assert(not ok, "require 'dist' must fail without erl_interface")
assert(tostring(err):find("built without Erlang distribution", 1, true), err)
assert(tostring(err):find("erlang-dev", 1, true), err)
print("ok 1 - require 'dist' explains that this build has no dist")
