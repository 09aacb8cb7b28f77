#!/usr/bin/env bash
# test_stdin: io.read and io.lines on standard input, inside a process,
# wait on the loop: a ticker keeps ticking while a reader waits on a
# fifo the test feeds; the results are the same as Lua's own reading of
# the same bytes (every format, numbers split across writes, a 100 kB
# line, end of file); stdin from a regular file keeps Lua's own reading;
# two readers share stdin line by line and a reader killed mid-wait does
# not hold them up.
# Usage: bash test_stdin.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_stdin.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch
case_end() { report_case; }

# The input: the first write stops inside a numeral ("0x" of 0x1F).
first='12 0x'
{
  printf '%s' "$first"
  printf '1F -3.5e2 rest of line one\nsecond line\n0x1p4 .5 - 7x\n'
  printf 'abcdefghij\nnan 42\nline a\nline b \n10 20\n30 40\n'
  head -c 100000 /dev/zero | tr '\0' 'x'
  printf '\n'
  head -c 300 /dev/zero | tr '\0' '7'
  printf '\ntail without newline'
} >"$tmp/input"

# start_stdin SCRIPT ARGS...: the host with stdin on the fifo $tmp/in,
# stdout on fd 3 (lib.sh's start_fifo, but stdin from our fifo); the
# test holds the writing end on fd 4.
start_stdin() {
  rm -f "$io/fifo" "$tmp/in" "$io/out" "$io/err"
  : >"$io/out"
  mkfifo "$io/fifo" "$tmp/in"
  "$ARBOR" "$@" >"$io/fifo" 2>>"$io/err" <"$tmp/in" &
  pid=$!
  exec 3<"$io/fifo" 4>"$tmp/in"
}

case_start "a ticker runs while a process waits on stdin; results are Lua's own"
start_stdin scripts/stdin_formats.lua "$tmp/input"
wait_line "reading"
# Nothing written yet: the host goes on (the reader only waits).
wait_line "tick 5"
printf '%s' "$first" >&4
wait_line "tick 10"
tail -c +$((${#first} + 1)) "$tmp/input" >&4
exec 4>&-
wait_line "match *" || true
[[ $last_line == "match 2"* ]] || fail "results: $last_line"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc"
grep -q MISMATCH "$io/out" && fail "a result differs from Lua's own"
case_end

case_start "stdin from a regular file keeps Lua's own reading"
rm -f "$io/fifo"; : >"$io/out"; : >"$io/err"
mkfifo "$io/fifo"
"$ARBOR" scripts/stdin_formats.lua "$tmp/input" >"$io/fifo" 2>>"$io/err" <"$tmp/input" &
pid=$!
exec 3<"$io/fifo"
wait_line "match *" || true
[[ $last_line == "match 2"* ]] || fail "results: $last_line"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc"
case_end

case_start "readers share stdin line by line; a killed reader holds nobody up"
start_stdin scripts/stdin_queue.lua
wait_line "readers ready"
printf 'one\ntwo\nthree\nfour\n' >&4
exec 4>&-
wait_line "lines *" || true
[ "$last_line" = "lines four,one,three,two" ] || fail "lines: $last_line"
wait_line "done"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc"
case_end

exit "$failed"
