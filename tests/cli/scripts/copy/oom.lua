-- Sends under --max-memory that cannot fit their copy: the send raises
-- "not enough memory" in the sender (caught here), nothing arrives, the
-- receiver and the sender go on, and a small message still travels.
-- Two shapes: a flat array (the copy is one big table) and a list of
-- small tables (the copy fails part way, with bookkeeping tables alive).
local process = require "process"
local got = process.new_subject()
local receiver = process.spawn(function()
  local inbox = process.new_subject()
  process.send(got, inbox)
  while true do
    local m = process.receive(inbox)
    process.send(got, type(m) == "table" and m[1] or "?")
  end
end)
local inbox = process.receive(got, 5000)

local function try(name, make)
  local big = make()
  local ok, err = pcall(process.send, inbox, big)
  big = nil -- luacheck: ignore
  collectgarbage()
  print(name .. ": " .. (ok and "sent"
                         or tostring(err):match("not enough memory")
                         or tostring(err)))
  process.send(inbox, { name })
  print(name .. " then: " .. tostring(process.receive(got, 5000)))
end

try("flat", function()
  local t = {}
  for i = 1, 1000000 do t[i] = i end
  return t
end)
try("nested", function()
  local t = {}
  for i = 1, 200000 do t[i] = { i } end
  return t
end)
process.kill(receiver)
print("done")
