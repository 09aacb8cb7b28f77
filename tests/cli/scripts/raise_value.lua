-- main raises the string arg[1] (no position added).
error(arg[1], 0)
