--[[
chip: a subject registry with groups, after Gleam's chip 1.x.

start, from, register, members, groups and stop are C (host/bind/lchip.c
over host/core/registry.c).  dispatch is here because the callback may
block: it runs in the caller, over a snapshot of the members taken when
it starts, in registration order.
]]
local core = require "arbor.core.chip"

local M = {}
for k, v in pairs(core) do M[k] = v end

local members = core.members

function M.dispatch(registry, group, fn)
  if type(fn) ~= "function" then
    error("bad argument #3 to 'dispatch' (function expected, got "
          .. type(fn) .. ")", 2)
  end
  for _, subject in ipairs(members(registry, group)) do fn(subject) end
end

return M
