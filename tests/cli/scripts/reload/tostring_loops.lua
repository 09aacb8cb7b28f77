-- Raises a value whose __tostring never returns.
error(setmetatable({}, { __tostring = function() while true do end end }))
