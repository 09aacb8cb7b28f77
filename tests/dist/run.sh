#!/usr/bin/env bash
# run.sh: runs one dist test against a real Erlang node on this machine.
#
#   run.sh ARBOR TEST.lua
#
# Starts epmd (if it is not running), compiles tests/dist/dist_peer.erl
# into a scratch folder and starts it as a fresh `erl -sname` node with
# a cookie of its own, then runs TEST.lua with arbor, telling it (in the
# environment) the peer's node name, the cookie, a node name for arbor
# and the peer's OS pid.  Names carry this run's pid, so concurrent runs
# never share a node.  Exits 77 (ctest's skip) when `erl` is missing.
# The test itself synchronises with the peer on messages; this script
# never sleeps: it only waits for the test and then stops the peer.
set -u
ARBOR=${1:?usage: run.sh ARBOR TEST.lua}
TEST=${2:?usage: run.sh ARBOR TEST.lua}
HERE=$(cd "$(dirname "$0")" && pwd)
if ! command -v erl >/dev/null || ! command -v erlc >/dev/null; then
  echo "SKIP: erl/erlc not installed (apt-get install erlang-nox)"
  exit 77
fi
epmd -daemon || { echo "FAIL: cannot start epmd" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/arbor-dist.XXXXXX")
peer_pid=
cleanup() {
  [ -n "$peer_pid" ] && kill -9 "$peer_pid" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap "exit 143" TERM INT
erlc -o "$WORK" "$HERE/dist_peer.erl" || { echo "FAIL: erlc" >&2; exit 1; }
id="$$_${RANDOM}"
host=$(hostname -s 2>/dev/null || hostname)
host=${host%%.*}
# Short node names (-sname) are reached through this host name: where it
# does not resolve, no Erlang node on this machine can be reached either.
if ! getent hosts "$host" >/dev/null; then
  echo "SKIP: the host name '$host' does not resolve (add it to /etc/hosts); erl -sname nodes cannot be reached"
  exit 77
fi
cookie="arbor_test_cookie_$id"
# Started from a subshell, so it is not one of this shell's jobs (a
# test may SIGKILL it; no job notice then).
( erl -sname "dpeer_$id" -setcookie "$cookie" -noshell -noinput \
      -pa "$WORK" -s dist_peer start >"$WORK/peer.log" 2>&1 &
  echo $! >"$WORK/peer.pid" )
peer_pid=$(cat "$WORK/peer.pid")
DIST_PEER="dpeer_$id@$host" DIST_NAME="darbor_$id" DIST_COOKIE="$cookie" \
DIST_PEER_OS_PID="$peer_pid" DIST_WORK="$WORK" \
  "$ARBOR" "$TEST"
rc=$?
if [ $rc -ne 0 ]; then
  echo "--- peer log ($WORK/peer.log):" >&2
  cat "$WORK/peer.log" >&2
fi
exit $rc
