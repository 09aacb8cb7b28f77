-- Prints a TCP port on 127.0.0.1 that was free a moment ago.
local net = require "net"
local l = assert(net.listen{ host = "127.0.0.1", port = 0 })
print((select(2, l:address())))
l:close()
