#!/usr/bin/env bash
# tests/soak/paths.sh ARBOR: the memory gate run from copies of the soak
# script at folders whose paths differ in length (1, ~60 and ~200
# characters past a temporary root).  The path is part of the allocation
# history (chunk names, tracebacks), and a gate that passed only at one
# checkout path once hid a compaction bug; smaller workloads than
# soak/memory keep this quick.
set -euo pipefail
arbor=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
long=$(printf 'p%.0s' $(seq 1 60))
for dir in "$root/a" "$root/$long" "$root/$long/$long/$long/q"; do
  mkdir -p "$dir"
  cp "$here/soak.lua" "$dir/soak.lua"
  echo "== soak from a path of ${#dir} characters"
  (cd "$dir" && "$arbor" "$dir/soak.lua" 20000 100000)
  (cd / && "$arbor" "$dir/soak.lua" 20000 100000)
done
echo "ok: the memory gate is exact from every path"
