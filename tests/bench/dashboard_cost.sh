#!/usr/bin/env bash
# What the dashboard costs the host: CPU and memory of a host serving a
# tree of N idle children (tests/cli/scripts/dashboard/tree.lua with
# DASH_CHILDREN=N), measured over SECONDS from /proc/PID/stat (utime +
# stime) and /proc/PID/status (VmRSS), in three runs side by side:
#   plain   no --dashboard
#   served  --dashboard, no page open
#   open    --dashboard, one headless chromium page open on it
#
#   tests/bench/dashboard_cost.sh ARBOR [N=1000] [SECONDS=60]
set -eu
ARBOR=$1 N=${2:-1000} SECS=${3:-60}
here=$(cd "$(dirname "$0")" && pwd)
tree="$here/../cli/scripts/dashboard/tree.lua"
tmp=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp" 2>/dev/null' EXIT
export DASH_CHILDREN=$N
hz=$(getconf CLK_TCK)

start() { # name, args...
  local name=$1; shift
  "$ARBOR" run --control "$tmp/$name.sock" "$@" "$tree" \
    >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  eval "${name}_pid=$!"
}
start plain
start served --dashboard 0
start open --dashboard 0
for name in served open; do
  for _ in $(seq 100); do grep -q '^dashboard:' "$tmp/$name.out" && break; sleep 0.1; done
done
url=$(sed -n 's/^dashboard: //p' "$tmp/open.out")
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$tmp/profile" --remote-debugging-port=0 "$url" \
  >/dev/null 2>"$tmp/chromium.err" &
pids+=($!)
sleep 5 # every tree up and the page connected before the window starts

cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
declare -A c0
for name in plain served open; do eval "p=\$${name}_pid"; c0[$name]=$(cpu "$p"); done
sleep "$SECS"
printf '%-7s %10s %8s %10s\n' run "cpu (s)" "cpu %" "rss (KiB)"
for name in plain served open; do
  eval "p=\$${name}_pid"
  c1=$(cpu "$p")
  awk -v n="$name" -v d=$((c1 - c0[$name])) -v hz="$hz" -v s="$SECS" -v r="$(rss "$p")" \
    'BEGIN { printf "%-7s %10.2f %8.2f %10d\n", n, d / hz, 100 * d / hz / s, r }'
done
