-- main raises an error value with a __tostring.
error(setmetatable({}, { __tostring = function() return "custom error object" end }))
