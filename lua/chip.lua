--[[
chip: a subject registry with groups, after Gleam's chip 1.x.

start, from, register, members, groups and stop are C (host/bind/lchip.c
over host/core/registry.c); the host passes their table in as this
chunk's second argument.  dispatch is here because the callback may
block: it runs in the caller, over a snapshot of the members taken when
it starts, in registration order.
]]
local _, M = ...

local members = M.members

function M.dispatch(registry, group, fn)
  if type(fn) ~= "function" then
    error("bad argument #3 to 'dispatch' (function expected, got "
          .. type(fn) .. ")", 2)
  end
  local ok, list = pcall(members, registry, group)
  if not ok then
    -- Report it as dispatch's error, at the caller's line.
    local msg = tostring(list):gsub("^[^:]*:%d+: ", "")
    msg = msg:gsub("'chip%.members'", "'dispatch'")
             :gsub("'members'", "'dispatch'")
             :gsub("chip%.members", "chip.dispatch")
    error(msg, 2)
  end
  for _, subject in ipairs(list) do fn(subject) end
end

return M
