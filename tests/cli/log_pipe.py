#!/usr/bin/env python3
"""log_pipe.py: runs arbor with its stderr on a pipe and saves what came.

  log_pipe.py OUT [--nonblock] [--slow] [--term] -- ARBOR ARGS...

OUT gets every byte the host wrote to stderr; the exit status is printed
on stdout as "rc=N" (a signal as a negative N).  --nonblock makes the
host's end of the pipe O_NONBLOCK (as a parent program may leave it), so
the host's writes meet EAGAIN whenever the pipe is full; --slow reads in
small pieces with short pauses at first so that it is full (the check
does not depend on the pauses: any timing must give the same lines).
--term waits for "ready" on the host's stdout, then sends SIGTERM.
"""
import fcntl
import os
import signal
import subprocess
import sys
import threading
import time

args = sys.argv[1:]
out = args.pop(0)
sep = args.index("--")
flags, cmd = set(args[:sep]), args[sep + 1:]

r, w = os.pipe()
if "--nonblock" in flags:
    fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
host = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=w)
os.close(w)

chunks = []


def read_stderr():
    pieces = 0
    while True:
        data = os.read(r, 512 if "--slow" in flags else 65536)
        if not data:
            return
        chunks.append(data)
        pieces += 1
        if "--slow" in flags and pieces < 300:
            time.sleep(0.001)


reader = threading.Thread(target=read_stderr)
reader.start()
if "--term" in flags:
    line = host.stdout.readline()
    if line.strip() != b"ready":
        print("no ready line: %r" % line)
    host.send_signal(signal.SIGTERM)
host.stdout.read()
try:
    rc = host.wait(timeout=60)
except subprocess.TimeoutExpired:
    host.kill()
    rc = host.wait()
reader.join()
with open(out, "wb") as f:
    f.write(b"".join(chunks))
print("rc=%d" % rc)
