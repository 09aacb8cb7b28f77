#!/usr/bin/env bash
# tests/bench/supervisord.sh: arbor against Debian's supervisord (issue
# 15), the same N `sleep 100000` services on each (default 100):
#   arbor        tests/bench/services.lua: supervisor.command children
#   supervisord  one [program:sleepI] each, startsecs=0, autorestart,
#                output and logs off
#
#   tests/bench/supervisord.sh ARBOR [ROUNDS] [N] [KILLS]
#       (defaults 3 rounds, 100 services, 10 kills per round)
#
# tests/bench/supervisord.lua (run by ARBOR) starts each supervisor and
# measures it from outside through /proc: time to start all N, RSS and
# CPU time over 5 s of idle, and kill -9 of one child to its replacement
# running (median of KILLS).  Rounds alternate which side goes first.
# Prints the RESULT lines, then a table of medians over the rounds with
# min-max.  Installs supervisor with apt-get when it is missing and it
# can (root); without supervisord only arbor is measured.
set -euo pipefail
arbor=${1:?usage: supervisord.sh ARBOR [ROUNDS] [N] [KILLS]}
rounds=${2:-3}
n=${3:-100}
kills=${4:-10}
top="$(cd "$(dirname "$0")/../.." && pwd)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! command -v supervisord >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y supervisor >/dev/null 2>&1 || true
fi
sides=(arbor)
if command -v supervisord >/dev/null; then
  sides+=(supervisord)
  {
    echo "[supervisord]"
    echo "nodaemon=true"
    echo "user=$(id -un)"
    echo "logfile=/dev/null"
    echo "logfile_maxbytes=0"
    echo "loglevel=critical"
    echo "pidfile=$work/supervisord.pid"
    for i in $(seq "$n"); do
      echo "[program:sleep$i]"
      echo "command=sleep 100000"
      echo "startsecs=0"
      echo "autorestart=true"
      echo "stdout_logfile=NONE"
      echo "stderr_logfile=NONE"
    done
  } >"$work/supervisord.conf"
  echo "supervisord: $(supervisord --version)" >&2
else
  echo "supervisord is not installed (apt-get install supervisor): arbor only" >&2
fi

run_side() {
  case $1 in
    arbor) "$arbor" "$top/tests/bench/supervisord.lua" arbor "$n" "$kills" \
             "$arbor" run "$top/tests/bench/services.lua" "$n" ;;
    supervisord) "$arbor" "$top/tests/bench/supervisord.lua" supervisord "$n" \
                   "$kills" supervisord -n -c "$work/supervisord.conf" ;;
  esac
}

for r in $(seq "$rounds"); do
  order=("${sides[@]}")
  if ((r % 2 == 0)) && ((${#sides[@]} > 1)); then order=("${sides[1]}" "${sides[0]}"); fi
  for s in "${order[@]}"; do run_side "$s" | tee -a "$work/results"; done
done

echo
printf '%-14s %-12s %12s %18s\n' metric side median "min-max"
for key in start_ms rss_kb idle_cpu_ms restart_ms restart_ms_max; do
  for s in "${sides[@]}"; do
    vals=$(awk -v s="$s" -v k="$key" '$1 == "RESULT" && $2 == s && $3 == k {print $4}' \
             "$work/results" | sort -n)
    [ -n "$vals" ] || continue
    count=$(echo "$vals" | wc -l)
    median=$(echo "$vals" | sed -n "$(((count + 1) / 2))p")
    printf '%-14s %-12s %12s %18s\n' "$key" "$s" "$median" \
      "$(echo "$vals" | head -1)-$(echo "$vals" | tail -1)"
  done
done
