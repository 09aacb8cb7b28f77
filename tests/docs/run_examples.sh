#!/usr/bin/env bash
# run_examples.sh: every code example in the docs is run, so the docs
# cannot rot.
#
#   run_examples.sh ARBOR REPO
#
# Extracts each ```lua block from REPO/docs/*.md and REPO/README.md and,
# by the words after `lua` on its opening fence:
#   ```lua            a complete script: run with ARBOR, must exit 0
#                     (examples assert what they claim, so drift fails);
#   ```lua exit=N     a complete script that must exit N;
#   ```lua service    a script that returns a supervisor.spec: started as
#                     a host on a private control socket, then
#                     `arbor status` must answer and show its tree, and
#                     `arbor stop` must end it with exit 0;
#   ```lua fragment   an excerpt: only its syntax is checked (load()).
# Each block is written to a file padded with blank lines, so an error's
# file:line is the line in the .md.  It also checks that docs/arbor.1
# renders without warnings (when groff is installed) and that every
# option `arbor --help` prints is in the man page and the reference.
# Nothing here sleeps for luck: the service host is polled (every 50 ms,
# for at most 10 s) until it answers.
set -u
ARBOR=${1:?usage: run_examples.sh ARBOR REPO}
REPO=${2:?usage: run_examples.sh ARBOR REPO}
ARBOR=$(cd "$(dirname "$ARBOR")" && pwd)/$(basename "$ARBOR")
WORK=$(mktemp -d "${TMPDIR:-/tmp}/arbor-docs.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
failures=0 ran=0 checked=0 served=0

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# Writes the blocks of one markdown file as WORK/blocks/<name>.<line>.lua,
# with a line "<file> <mode> <line>" per block in WORK/index.
extract() {
  local md=$1 name
  name=$(basename "$md" .md)
  awk -v name="$name" -v dir="$WORK/blocks" -v idx="$WORK/index" '
    /^```lua([ \t].*)?$/ && !inblock {
      inblock = 1; start = NR + 1
      mode = $0; sub(/^```lua[ \t]*/, "", mode); if (mode == "") mode = "run"
      file = dir "/" name "." NR ".lua"
      for (i = 1; i < start; i++) print "" > file
      next
    }
    /^```[ \t]*$/ && inblock {
      inblock = 0; close(file)
      gsub(/ /, "_", mode)
      print file " " mode " " start >> idx
      next
    }
    inblock { print >> file }
    END { if (inblock) { print "unterminated ```lua block in " name > "/dev/stderr"; exit 1 } }
  ' "$md" || fail "$md: unterminated block"
}

mkdir -p "$WORK/blocks"
: > "$WORK/index"
for md in "$REPO"/docs/*.md "$REPO"/README.md; do extract "$md"; done

cat > "$WORK/syntax.lua" <<'LUA'
local path = arg[1]
local f = assert(io.open(path))
local text = f:read("a")
f:close()
local chunk, err = load(text, "@" .. path)
if not chunk then
  io.stderr:write(err, "\n")
  os.exit(1)
end
LUA

# A service block: start it, wait (with a deadline) until status answers
# with its tree, then stop it and expect exit 0.
serve() {
  local file=$1 sock out pid code i
  sock="$WORK/s.$RANDOM.sock"
  out="$WORK/serve.out"
  (cd "$WORK" && exec "$ARBOR" run --control "$sock" "$file") >"$out" 2>&1 &
  pid=$!
  for i in $(seq 1 200); do
    if "$ARBOR" status --control "$sock" --timeout 1 > "$WORK/status" 2>/dev/null; then
      break
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q '└─' "$WORK/status" 2>/dev/null; then
    fail "$file: the service never answered status with a tree"
    cat "$out" >&2
    kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    return
  fi
  "$ARBOR" stop --control "$sock" >/dev/null || fail "$file: stop failed"
  wait "$pid"; code=$?
  [ "$code" -eq 0 ] || { fail "$file: the service exited $code after stop"; cat "$out" >&2; }
}

while read -r file mode line; do
  md=$(basename "$file" | sed 's/\.[0-9]*\.lua$//')
  where="$md.md:$line"
  case "$mode" in
    fragment)
      checked=$((checked + 1))
      "$ARBOR" "$WORK/syntax.lua" "$file" || fail "$where: fragment does not parse"
      ;;
    service)
      served=$((served + 1))
      serve "$file"
      ;;
    run|exit=*)
      ran=$((ran + 1))
      want=0
      [ "$mode" = run ] || want=${mode#exit=}
      (cd "$WORK" && timeout 30 "$ARBOR" "$file") >"$WORK/out" 2>&1
      code=$?
      if [ "$code" -ne "$want" ]; then
        fail "$where: exited $code, expected $want"
        sed 's/^/    /' "$WORK/out" >&2
      fi
      ;;
    *) fail "$where: unknown block mode '$mode'" ;;
  esac
done < "$WORK/index"

# The man page renders without warnings.
if command -v groff >/dev/null; then
  warn=$(groff -man -Tutf8 -ww "$REPO/docs/arbor.1" 2>&1 >/dev/null)
  [ -z "$warn" ] || fail "docs/arbor.1: groff warns: $warn"
else
  echo "note: groff not installed, man page rendering not checked"
fi

# Every option the binary knows is documented in both places.
for opt in $("$ARBOR" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
  grep -q -- "${opt//-/\\\\-}\|$opt" "$REPO/docs/arbor.1" || fail "docs/arbor.1 does not mention $opt"
  grep -q -- "$opt" "$REPO/docs/reference.md" || fail "docs/reference.md does not mention $opt"
done
for cmd in run status reload stop; do
  grep -q "^\.SS.*$cmd\|^\.B.*$cmd\|\\\\fB$cmd" "$REPO/docs/arbor.1" || fail "docs/arbor.1 does not document '$cmd'"
done

total=$((ran + checked + served))
echo "docs: $ran scripts run, $served services served, $checked fragments parsed, $failures failures"
[ "$total" -gt 0 ] || fail "no examples found"
[ "$failures" -eq 0 ]
