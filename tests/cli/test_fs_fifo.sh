#!/usr/bin/env bash
# test_fs_fifo: file jobs that wait on a FIFO whose other end never
# comes (fs.read, an open file's read, fs.write waiting for a reader) do
# not keep the host from exiting when main returns, nor from stopping on
# SIGTERM.
# Usage: bash test_fs_fifo.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_fs_fifo.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch
case_end() { report_case; }
mkfifo "$tmp/never"

case_start "main returns while jobs wait on a fifo: the host exits 0"
: >"$io/out"; : >"$io/err"
start_fifo scripts/fifo_waits.lua "$tmp/never"
wait_line "tick 3"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc (124: it hung)"
case_end

case_start "a write waiting for a fifo's reader: SIGTERM still stops the host"
: >"$io/out"; : >"$io/err"
cat >"$tmp/writer.lua" <<'LUA'
local fs = require "fs"
local process = require "process"
local done = process.new_subject()
process.spawn(function() process.send(done, {fs.write(arg[1], "x")}) end)
print("writing")
io.stdout:flush()
process.receive(done)
LUA
start_fifo "$tmp/writer.lua" "$tmp/never"
wait_line "writing"
kill -TERM "$pid"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc (124: it hung)"
case_end

exit "$failed"
