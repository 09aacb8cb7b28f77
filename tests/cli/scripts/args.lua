-- Prints the arg table and the chunk's varargs, one per line.
print("arg[-1]=" .. tostring(arg[-1]))
print("arg[0]=" .. tostring(arg[0]))
print("arg[1]=" .. tostring(arg[1]))
print("arg[2]=" .. tostring(arg[2]))
print("arg[3]=" .. tostring(arg[3]))
print("#arg=" .. #arg)
print("n=" .. select("#", ...))
print("varargs=" .. table.concat({ ... }, ","))
