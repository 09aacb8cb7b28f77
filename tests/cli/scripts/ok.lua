-- Returns normally after printing a line.
print("hello from ok.lua")
