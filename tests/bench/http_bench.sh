#!/usr/bin/env bash
# tests/bench/http_bench.sh: the HTTP/1.1 keep-alive "hello" benchmark
# (issue 12), three servers driven by Debian's wrk at CONNS connections:
#   arbor    examples/http_hello.lua (a process per connection)
#   erlang   tests/bench/http_hello.erl (gen_tcp, active once, a process
#            per connection, +S 1)
#   node     tests/bench/http_hello.js (Node's http module)
#
#   tests/bench/http_bench.sh ARBOR [ROUNDS] [SECONDS] [CONNS]
#       (defaults 5 rounds of 5 s at 100 connections)
#
# Rounds are interleaved (round 1 on every server, then round 2...; the
# server that goes first rotates) and each measurement follows a 1 s
# warm-up on a fresh server.  wrk runs 2 threads.  Prints a RESULT line
# per measurement ("RESULT side http_rps value req/s", "RESULT side
# http_p99 value ms", "RESULT side http_cpu value us/req": the server's
# CPU time per request, which a busy shared machine disturbs far less
# than the rate) and then a table of the medians with min-max.
# A server that is missing (no erl, no node) is skipped and said so.
set -euo pipefail
arbor=${1:?usage: http_bench.sh ARBOR [ROUNDS] [SECONDS] [CONNS]}
rounds=${2:-5}
secs=${3:-5}
conns=${4:-100}
top="$(cd "$(dirname "$0")/../.." && pwd)"
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

command -v wrk >/dev/null || { echo "http_bench: wrk is not installed" >&2; exit 1; }
sides=(arbor)
if command -v erlc >/dev/null && erlc -o "$work" "$top/tests/bench/http_hello.erl" 2>/dev/null; then
  sides+=(erlang)
else
  echo "http_bench: no Erlang (erlang-nox): skipping its server" >&2
fi
if command -v node >/dev/null; then sides+=(node); else
  echo "http_bench: no node (nodejs): skipping its server" >&2
fi

cat >"$work/port.lua" <<'LUA'
local l = assert(require("net").listen {host = "127.0.0.1", port = 0})
print(select(2, l:address()))
l:close()
LUA

start() { # side -> sets server (pid) and port
  port=$("$arbor" "$work/port.lua")
  case $1 in
    arbor) "$arbor" "$top/examples/http_hello.lua" "$port" >/dev/null 2>"$work/err" & ;;
    erlang) erl -noshell +S 1 -pa "$work" -run http_hello main "$port" >/dev/null 2>"$work/err" & ;;
    node) node "$top/tests/bench/http_hello.js" "$port" >/dev/null 2>"$work/err" & ;;
  esac
  server=$!
  for _ in $(seq 200); do
    nc -z 127.0.0.1 "$port" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "http_bench: the $1 server did not start: $(cat "$work/err")" >&2
  return 1
}

stop() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; server=; }

# wrk's 99% latency in ms ("1.23ms", "850.00us", "1.02s").
p99_ms() {
  awk '$1 == "99%" { v = $2
         if (v ~ /us$/) { sub(/us$/, "", v); print v / 1000 }
         else if (v ~ /ms$/) { sub(/ms$/, "", v); print v + 0 }
         else if (v ~ /s$/) { sub(/s$/, "", v); print v * 1000 } }'
}

# The server's CPU time (user + system, all threads) in clock ticks: CPU
# per request says what wall-clock rates on a shared machine cannot.
hz=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

declare -A rps p99 cpu
for ((r = 1; r <= rounds; r++)); do
  n=${#sides[@]}
  for ((i = 0; i < n; i++)); do
    side=${sides[(i + r - 1) % n]}
    echo "http_bench: round $r/$rounds: $side" >&2
    start "$side" || exit 1
    wrk -t2 -c"$conns" -d1s "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    c0=$(cpu_ticks "$server")
    out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/")
    c1=$(cpu_ticks "$server")
    stop
    v=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
    l=$(p99_ms <<<"$out")
    errors=$(grep -E 'Non-2xx|Socket errors' <<<"$out" || true)
    [ -n "$errors" ] && echo "http_bench: $side: $errors" >&2
    u=$(awk -v a="$c0" -v b="$c1" -v hz="$hz" -v r="$v" -v s="$secs" \
          'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / (r * s) }')
    echo "RESULT $side http_rps $v req/s"
    echo "RESULT $side http_p99 $l ms"
    echo "RESULT $side http_cpu $u us/req"
    rps[$side]+="$v "
    p99[$side]+="$l "
    cpu[$side]+="$u "
  done
done

stats() { # values... -> "median (min-max)"
  printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    printf "%.6g (%.6g-%.6g)", m, v[1], v[NR] }'
}
echo
echo "HTTP/1.1 keep-alive hello, wrk -t2 -c$conns -d${secs}s, median (min-max) of $rounds interleaved rounds"
printf '| %-8s | %-32s | %-28s | %-28s |\n' server "requests/s" "p99 latency (ms)" \
  "server CPU per request (us)"
for side in "${sides[@]}"; do
  # shellcheck disable=SC2086
  printf '| %-8s | %-32s | %-28s | %-28s |\n' "$side" "$(stats ${rps[$side]})" \
    "$(stats ${p99[$side]})" "$(stats ${cpu[$side]})"
done
