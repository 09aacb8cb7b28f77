#!/usr/bin/env bash
# test_copy_oom: message copies that do not fit under --max-memory.  The
# copy is made at send time (host/bind/lcopy.c), so running out of memory
# half way must raise "not enough memory" in the sender, where pcall can
# catch it; nothing reaches the receiver, both processes go on, and the
# next small message travels.  Under ASan (the sanitize build) the
# abandoned half-made copy and its bookkeeping must not leak.
# Usage: bash test_copy_oom.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_copy_oom.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch

case_start "a copy too big for --max-memory fails in the sender; the host goes on"
# 28M holds each original (a 1,000,000-element array: 16 MiB; 200,000
# one-element tables: about 18 MiB) but not a second copy of it.
timeout 30 "$ARBOR" --max-memory 28M scripts/copy/oom.lua \
  >"$io/out" 2>"$io/err" </dev/null
rc=$?
[ "$rc" = 0 ] || fail "exit $rc, expected 0"
for shape in flat nested; do
  grep -qx "$shape: not enough memory" "$io/out" || fail "$shape: no memory error"
  grep -qx "$shape then: $shape" "$io/out" || fail "$shape: the next message"
done
grep -qx "done" "$io/out" || fail "not to the end"
report_case

[ "$failed" = 0 ] && echo "all $count cases passed"
exit "$failed"
