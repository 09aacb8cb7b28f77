-- Raises, while it loads, a value whose __tostring raises too.
error(setmetatable({}, {
  __tostring = function() error("and __tostring fails as well") end,
}))
