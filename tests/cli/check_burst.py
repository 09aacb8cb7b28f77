#!/usr/bin/env python3
"""check_burst.py: checks a log written by scripts/log_burst.lua.

  check_burst.py FILE N [AFTER] [BEFORE]

Every text line "... info <pid> burst I" must be there for I = 1..N, each
once and in order, with times that never go back.  AFTER: a text that
must appear after the last burst line (main's error, its exit line);
BEFORE: one that must appear before the first (a crash report made
earlier).  Exits 1 with the reason.
"""
import datetime
import re
import sys

path, n = sys.argv[1], int(sys.argv[2])
after = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
before = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
text = open(path, "rb").read().decode("utf-8", "replace")
lines = text.split("\n")
burst = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z "
                   r"info +<0\.\d+\.\d+> burst (\d+)$")
seen = [(i, int(m.group(2)), m.group(1)) for i, l in enumerate(lines)
        for m in [burst.match(l)] if m]
got = [v for _, v, _ in seen]
if got != list(range(1, n + 1)):
    missing = sorted(set(range(1, n + 1)) - set(got))
    first_bad = next((k for k, v in enumerate(got) if v != k + 1), len(got))
    sys.exit("  %s: %d burst lines, %d missing (first %s), first out of "
             "place at %d" % (path, len(got), len(missing), missing[:3],
                             first_bad))
if text and not text.endswith("\n"):
    sys.exit("  %s: the last line is cut: %r" % (path, lines[-1][-80:]))
# The time text is cached per millisecond (llogger.c): each must still be
# a real time, now, and never go back within the burst.
times = [datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%f")
         for _, _, t in seen]
if any(b < a for a, b in zip(times, times[1:])):
    sys.exit("  %s: a burst line's time goes back" % path)
if abs((datetime.datetime.utcnow() - times[-1]).total_seconds()) > 120:
    sys.exit("  %s: time %s is not now, in UTC" % (path, seen[-1][2]))
first, last = seen[0][0], seen[-1][0]
if after and not any(after in l for l in lines[last + 1:]):
    sys.exit("  %s: %r is not after the last burst line" % (path, after))
if before and not any(before in l for l in lines[:first]):
    sys.exit("  %s: %r is not before the first burst line" % (path, before))
