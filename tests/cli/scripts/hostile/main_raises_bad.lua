-- Main itself raises a value whose __tostring loops forever.
error(setmetatable({}, { __tostring = function() while true do end end }))
