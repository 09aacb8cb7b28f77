-- Raises a value with a well-behaved __tostring: its text is the message.
error(setmetatable({}, {
  __tostring = function() return "config error: no port given" end,
}))
