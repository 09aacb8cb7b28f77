#!/usr/bin/env bash
# The dashboard in a real browser: headless Chromium (Debian's chromium,
# which scripts/setup installs for this test) loads the page against a
# running tree and
#   1. --dump-dom: the rendered page lists every child;
#   2. the DevTools protocol (scripts/dashboard/cdp.lua): on the one open
#      page, the victim's restart count goes up after it is crashed on
#      purpose.
# Without chromium the test is skipped (exit 77, ctest's SKIP_RETURN_CODE).
set -u
ARBOR=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  echo "SKIP: chromium is not installed (apt-get install -y chromium, or scripts/setup)"
  exit 77
fi
cli_scratch
chrome_pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; [ -n "$chrome_pid" ] && kill -KILL "$chrome_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
tree="$here/scripts/dashboard/tree.lua"
export CRASH_PORT_FILE="$tmp/crash_port"
children="alpha beta inner inner/gamma inner/delta victim"
chrome_flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --disable-dev-shm-usage)

start_fifo run --dashboard 0 "$tree"
if ! wait_line "dashboard: http://127.0.0.1:*/#token=*"; then
  case_start "the host starts with --dashboard"
  fail "no dashboard line"
  report_case
  exit 1
fi
url=${last_line#dashboard: }
port=${url#http://127.0.0.1:}; port=${port%%/*}

case_start "--dump-dom: the rendered page lists every child"
deadline=$((SECONDS + 30))
missing=$children
while [ -n "$missing" ] && [ $SECONDS -lt $deadline ]; do
  profile=$(mktemp -d "$tmp/profile.XXXXXX")
  timeout 30 "$CHROMIUM" "${chrome_flags[@]}" --user-data-dir="$profile" \
    --timeout=3000 --dump-dom "$url" >"$tmp/dom.html" 2>>"$tmp/chromium.err"
  missing=
  for c in $children; do
    grep -q "data-path=\"$c\" data-status=\"running\" data-restarts=\"0\"" \
      "$tmp/dom.html" || missing="$missing $c"
  done
done
[ -z "$missing" ] || fail "not on the page:$missing"
grep -q '<title>arbor dashboard</title>' "$tmp/dom.html" || fail "no title"
report_case

case_start "DevTools: a crash on purpose raises the restart count on the open page"
profile=$(mktemp -d "$tmp/profile.XXXXXX")
"$CHROMIUM" "${chrome_flags[@]}" --user-data-dir="$profile" \
  --remote-debugging-port=0 "$url" 2>"$tmp/devtools.err" >/dev/null &
chrome_pid=$!
dt_port=
for _ in $(seq 200); do
  dt_port=$(sed -n 's|^DevTools listening on ws://127.0.0.1:\([0-9]*\)/.*|\1|p' "$tmp/devtools.err")
  [ -n "$dt_port" ] && break
  kill -0 "$chrome_pid" 2>/dev/null || break
  read -r -t 0.1 <> <(:) || true
done
if [ -z "$dt_port" ]; then
  fail "chromium did not open DevTools"
  sed 's/^/  | /' "$tmp/devtools.err"
else
  # shellcheck disable=SC2086
  "$ARBOR" "$here/scripts/dashboard/cdp.lua" "$dt_port" "$port" \
    "$CRASH_PORT_FILE" $children >"$tmp/cdp.out" 2>&1 || fail "cdp checks failed"
  sed 's/^/  | /' "$tmp/cdp.out"
fi
kill -TERM "$chrome_pid" 2>/dev/null
wait "$chrome_pid" 2>/dev/null
chrome_pid=
report_case

case_start "the host stops in order with the page open"
kill -TERM "$pid"
finish 10
[ "$rc" = 0 ] || fail "exit status $rc"
report_case
exit $failed
