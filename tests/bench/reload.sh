#!/usr/bin/env bash
# tests/bench/reload.sh: how long `arbor reload` takes on a host serving N
# workers in one supervisor (tests/bench/reload_tree.lua), for N = 1000,
# 4000 and 20000 (or the sizes given).
#
#   tests/bench/reload.sh [--arbor PATH] [N ...]
#
# PATH defaults to build-release/arbor (scripts/setup release).  For each
# N it starts a host, then times, as wall time of the `arbor reload`
# command (client, socket and answer included):
#   unchanged     the same script again (twice: the first reload also
#                 works out the running tree's code once)
#   one changed   the middle child's code changed (one_for_one: it alone
#                 restarts)
#   half removed  every odd child removed
#   re-added      the odd ones back, plus N/20 new children between them
# and the host's start (until `arbor status` answers) and stop.  Times are
# in ms; one run each (re-run for spread).
set -euo pipefail
cd "$(dirname "$0")/../.."
ARBOR=build-release/arbor
if [ "${1:-}" = --arbor ]; then
  ARBOR=$2
  shift 2
fi
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
[ -x "$ARBOR" ] || { echo "reload.sh: no $ARBOR (scripts/setup release)" >&2; exit 2; }
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 4000 20000)

dir=$(mktemp -d /tmp/arbreload.XXXXXX)
host=
trap '[ -n "$host" ] && kill -KILL "$host" 2>/dev/null; rm -rf "$dir"' EXIT
cp tests/bench/reload_tree.lua "$dir/tree.lua"
sock=$dir/s.sock

now_ms() { local t=$EPOCHREALTIME; echo $(( ${t/./} / 1000 )); }

shape() {
  local fields="n = $n" kv
  for kv; do fields="$fields, ${kv%%=*} = ${kv#*=}"; done
  printf 'return { %s }\n' "$fields" >"$dir/reload_shape.lua.tmp"
  mv -f "$dir/reload_shape.lua.tmp" "$dir/reload_shape.lua"
}

# timed_reload: prints the ms one `arbor reload` took; fails on a failed
# reload.
timed_reload() {
  local t0 t1
  t0=$(now_ms)
  "$ARBOR" reload --control "$sock" >"$dir/answer" 2>&1 ||
    { echo "reload failed: $(cut -c1-200 "$dir/answer")" >&2; exit 1; }
  t1=$(now_ms)
  echo $((t1 - t0))
}

printf '%-7s %8s %10s %10s %12s %13s %10s %8s\n' N start unchanged \
  "again" "one changed" "half removed" "re-added" stop
for n in "${sizes[@]}"; do
  shape 'keep="all"' 'extra=0' 'changed=0'
  t0=$(now_ms)
  "$ARBOR" run --control "$sock" "$dir/tree.lua" >"$dir/out" 2>&1 &
  host=$!
  until "$ARBOR" status --control "$sock" >/dev/null 2>&1; do
    kill -0 "$host" 2>/dev/null || { cat "$dir/out" >&2; exit 1; }
    sleep 0.01
  done
  start=$(( $(now_ms) - t0 ))
  unchanged=$(timed_reload)
  again=$(timed_reload)
  shape 'keep="all"' 'extra=0' "changed=$((n / 2))" 'value="2"'
  changed=$(timed_reload)
  shape 'keep="even"' 'extra=0' "changed=$((n / 2))" 'value="2"'
  removed=$(timed_reload)
  shape 'keep="all"' "extra=$((n / 20))" "changed=$((n / 2))" 'value="2"'
  readded=$(timed_reload)
  t0=$(now_ms)
  "$ARBOR" stop --control "$sock" >/dev/null
  wait "$host"
  host=
  stop=$(( $(now_ms) - t0 ))
  printf '%-7s %8s %10s %10s %12s %13s %10s %8s\n' "$n" "$start" \
    "$unchanged" "$again" "$changed" "$removed" "$readded" "$stop"
done
