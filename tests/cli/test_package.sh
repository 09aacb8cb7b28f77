#!/usr/bin/env bash
# test_package: the Debian package CPack makes from this build (what
# scripts/package does for a Release build) holds the binary, the
# examples, the systemd unit and the man page (when docs/arbor.1
# exists), declares its library dependencies, and works from a scratch
# root it is unpacked into with `dpkg -x` (no root install): an example
# runs, and the live-editing example serves from there.
# Usage: bash test_package.sh /path/to/arbor   (in its build folder)
set -u
ARBOR=${1:?usage: test_package.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
src=$(cd ../.. && pwd)
build=$(dirname "$ARBOR")
. ./lib.sh

tmp=$(mktemp -d /tmp/arbpkg.XXXXXX) || exit 1
io=$tmp
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
failed=0
count=0
: >"$tmp/out"
: >"$tmp/err"
case_end() { report_case; }

case_start "cpack makes a .deb with the binary, examples, unit and man page"
if [ ! -f "$build/CPackConfig.cmake" ]; then
  fail "no CPackConfig.cmake beside $ARBOR"
elif ! (cd "$build" && cpack -G DEB -B "$tmp/pkg") >"$tmp/out" 2>"$tmp/err"; then
  fail "cpack failed"
fi
deb=$(ls "$tmp"/pkg/arbor_*.deb 2>/dev/null | head -1)
if [ -z "$deb" ]; then
  fail "no arbor_*.deb was made"
else
  dpkg-deb -c "$deb" | awk '{print $6}' >"$tmp/files"
  for f in ./usr/bin/arbor ./usr/lib/systemd/system/arbor@.service \
           ./usr/share/doc/arbor/examples/hello.lua \
           ./usr/share/doc/arbor/examples/live/tree.lua \
           ./usr/share/doc/arbor/examples/live/greeter.lua; do
    grep -qxF "$f" "$tmp/files" || fail "the package lacks $f"
  done
  if [ -f "$src/docs/arbor.1" ]; then
    grep -qxF ./usr/share/man/man1/arbor.1 "$tmp/files" \
      || fail "the package lacks the man page"
  fi
  depends=$(dpkg-deb -f "$deb" Depends)
  case $depends in *libuv1*) ;; *) fail "Depends '$depends' lacks libuv1" ;; esac
  if ldd "$ARBOR" | grep -q 'liblua5\.4'; then
    case $depends in *liblua5.4-0*) ;;
      *) fail "Depends '$depends' lacks liblua5.4-0 (Lua is linked shared)" ;;
    esac
  fi
fi
case_end

case_start "unpacked into a scratch root, it runs an example"
root=$tmp/root
if [ -n "$deb" ] && dpkg -x "$deb" "$root" 2>>"$tmp/err"; then
  timeout 10 "$root/usr/bin/arbor" "$root/usr/share/doc/arbor/examples/hello.lua" \
    package >"$tmp/out" 2>>"$tmp/err"
  rc=$?
  [ "$rc" = 0 ] || fail "hello.lua exited $rc"
  grep -qE '^hello, package \(from <0\.[0-9]+\.[0-9]+>\)$' "$tmp/out" \
    || fail "hello.lua did not greet"
  grep -qF 'ExecStart=/usr/bin/arbor run ' \
    "$root/usr/lib/systemd/system/arbor@.service" \
    || fail "the unit does not start /usr/bin/arbor"
else
  fail "dpkg -x failed"
fi
case_end

case_start "the installed live example serves, answers status and stops"
if [ -x "$root/usr/bin/arbor" ]; then
  sock=$tmp/ctl.sock
  "$root/usr/bin/arbor" run --control "$sock" \
    "$root/usr/share/doc/arbor/examples/live/tree.lua" \
    >>"$tmp/out" 2>>"$tmp/err" </dev/null &
  pid=$!
  answered=0
  for ((i = 0; i < 200; i++)); do # 10 s at most
    if "$root/usr/bin/arbor" status --control "$sock" >"$tmp/status" 2>&1; then
      answered=1
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  [ "$answered" = 1 ] || fail "the installed host did not answer status"
  grep -q 'registry' "$tmp/status" || fail "status lacks the registry child"
  "$root/usr/bin/arbor" stop --control "$sock" >/dev/null 2>>"$tmp/err" \
    || fail "arbor stop failed"
  timeout 10 tail --pid="$pid" -f /dev/null
  wait "$pid"
  rc=$?
  pid=
  [ "$rc" = 0 ] || fail "the host exited $rc after stop"
else
  fail "nothing installed"
fi
case_end

exit $failed
