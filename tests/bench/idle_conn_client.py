#!/usr/bin/env python3
# idle_conn_client.py PORT N: the client half of the idle-connection
# benchmark (idle_conn.lua, idle_conn.erl start it): opens N connections
# to 127.0.0.1:PORT, on each sends "hi\n" and reads the "hello\n" back,
# then holds them all open until the server closes one (it ends).  The
# same program for both servers, so only the server side differs.
import socket
import sys

port, n = int(sys.argv[1]), int(sys.argv[2])
conns = []
for _ in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"hi\n")
    got = b""
    while not got.endswith(b"\n"):
        chunk = c.recv(64)
        if not chunk:
            sys.exit(1)
        got += chunk
    conns.append(c)
conns[0].recv(1)  # returns when the server goes away
