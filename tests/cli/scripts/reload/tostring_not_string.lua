-- Raises a value whose __tostring returns a table, not a string.
error(setmetatable({}, { __tostring = function() return {} end }))
