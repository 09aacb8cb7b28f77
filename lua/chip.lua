--[[
chip: a subject registry with groups, after Gleam's chip 1.x.

Every function is C (host/bind/lchip.c over host/core/registry.c),
dispatch included: it calls fn in the caller (fn may block) over a
snapshot of the members taken when it starts, in registration order, and
its errors name it as users call it.  The host passes the table in as
this chunk's second argument.
]]
local _, M = ...

return M
