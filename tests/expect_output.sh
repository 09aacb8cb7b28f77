#!/usr/bin/env bash
# tests/expect_output.sh REGEX CMD [ARG...]: runs CMD and passes only if
# it exits 0 AND a line of what it printed (stdout and stderr) matches
# the extended regular expression REGEX.  ctest's PASS_REGULAR_EXPRESSION
# would ignore the exit status, so the example and benchmark tests use
# this instead.  On failure it says which check failed and shows the
# output.
set -u
regex=${1:?usage: expect_output.sh REGEX CMD [ARG...]}
shift
out=$("$@" 2>&1)
rc=$?
if [ $rc -ne 0 ]; then
  echo "FAIL: $* exited $rc"
  printf '%s\n' "$out" | tail -40
  exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq -- "$regex"; then
  echo "FAIL: no line of the output matches: $regex"
  printf '%s\n' "$out" | tail -40
  exit 1
fi
printf '%s\n' "$out" | grep -E -- "$regex" | head -3
exit 0
