-- main raises an error value whose __tostring raises.
error(setmetatable({}, { __tostring = function() error("tostring boom") end }))
