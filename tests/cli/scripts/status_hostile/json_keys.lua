-- Prints arbor.json's text of tables whose number keys and string keys
-- have the same text (tests/cli/test_status_hostile.sh checks that no
-- object names a key twice).
local json = require "arbor.json"
local t = { "int1", "int2", ["1"] = "str1", ["2"] = "str2", x = true }
print(json.encode(t))
local u = { [1.5] = "float", ["1.5"] = "str", ["1.5#2"] = "taken" }
print(json.encode(u))
