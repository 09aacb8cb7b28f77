-- Raises in the main process.
print("before the error")
local function inner() error("script boom") end
inner()
