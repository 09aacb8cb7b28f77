# tests/cli/live_lib.sh: what the live-editing tests share (sourced after
# lib.sh by test_live.sh and test_reload_*.sh): a fresh folder per case,
# hosts served from a script with their own --control socket, the tree
# scripts they serve, and status/reload from the test's side.
#
# Callers set ARBOR (the binary) and cd to tests/cli first.  Workers print
# "start ID VALUE" when they start and "stop ID" when told to shut down;
# restarts are asserted through the pids that `arbor status` lists.  The
# host's stdout is read through a fifo (fd 3): the tests wait for lines,
# never for time.

root=$(mktemp -d /tmp/arblive.XXXXXX) || exit 1
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  rm -rf "$root"
}
trap cleanup EXIT
failed=0
count=0


# new_case NAME: a fresh folder $d with socket path $sock.
new_case() {
  name=$1
  case_failed=0
  d=$root/c$((count + 1))
  mkdir -p "$d"
  io=$d
  sock=$d/s.sock
  : >"$d/out"
  : >"$d/err"
}

case_end() {
  if [ -n "$pid" ]; then # a case that did not stop its host
    kill -KILL "$pid" 2>/dev/null
    finish 1
  fi
  if grep -q 'Sanitizer\|runtime error:' "$d/err"; then
    fail "the sanitizer reported an error"
  fi
  count=$((count + 1))
  if [ "$case_failed" = 0 ]; then
    echo "ok $count - $name"
  else
    echo "not ok $count - $name"
    echo "  --- host stdout:"; sed 's/^/  | /' "$d/out"
    echo "  --- host stderr:"; sed 's/^/  | /' "$d/err"
    if [ -f "$d/status.txt" ]; then
      echo "  --- last status:"; sed 's/^/  | /' "$d/status.txt"
    fi
    failed=1
  fi
}

# {=== the host

# start_host ARGS...: `arbor run ARGS...` through start_fifo (lib.sh).
start_host() {
  start_fifo run "$@"
}

# wait_ready: the socket file appears and the host answers `status`
# (bounded: 100 x 0.05 s each).
wait_ready() {
  local i
  for ((i = 0; i < 100; i++)); do
    [ -S "$sock" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  for ((i = 0; i < 100; i++)); do
    "$ARBOR" status --control "$sock" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  fail "the host did not answer on $sock"
  return 1
}



# stop_host: `arbor stop`, then the host must exit 0.
stop_host() {
  local out
  out=$("$ARBOR" stop --control "$sock" 2>&1) || fail "arbor stop: $out"
  finish 5
  [ "$rc" = 0 ] || fail "the host exited $rc after arbor stop, expected 0"
}

# }===

# {=== the scripts

# The top of every tree script: w(id, value) is a worker spec.
PRELUDE='local process = require "process"
local supervisor = require "supervisor"

local function say(...)
  io.write(table.concat({ ... }, " "), "\n")
  io.flush()
end

local function w(id, v)
  return supervisor.worker(function()
    local ready = process.new_subject()
    process.spawn_link(function()
      process.trap_exits(true)
      local own = process.new_subject()
      say("start", id, tostring(v))
      process.send(ready, own)
      if v == "quit" then -- ends by itself, a little later
        process.receive(own, 50)
        return
      end
      process.select(process.new_selector()
        :selecting_trapped_exits(function(e) return e end))
      say("stop", id)
    end)
    return process.receive(ready, 2000)
  end):id(id)
end
'

# save FILE TEXT: writes TEXT to FILE the way editors do (a new file
# renamed over the old one).
save() {
  printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# tree STRATEGY CHAIN: the script's text; CHAIN is the :add(...) chain.
tree() {
  printf '%s\nreturn supervisor.spec {\n  name = "svc", strategy = "%s",\n  max_frequency = 3, frequency_period = 5,\n  init = function(children)\n    return children%s\n  end,\n}' \
    "$PRELUDE" "$1" "$2"
}

# abc B [STRATEGY]: children a, b (with value B) and c.
abc() {
  tree "${2:-rest_for_one}" ":add(w(\"a\", 1)):add(w(\"b\", $1)):add(w(\"c\", 1))"
}

# nested Y: a, n (one_for_one: x, m (one_for_one: y with value Y, z)), c.
nested() {
  tree rest_for_one ':add(w("a", 1))
      :add(supervisor.supervisor(supervisor.spec {
        name = "n", strategy = "one_for_one",
        init = function(c)
          return c:add(w("x", 1))
                  :add(supervisor.supervisor(supervisor.spec {
                    name = "m", strategy = "one_for_one",
                    init = function(c2)
                      return c2:add(w("y", '"$1"')):add(w("z", 1))
                    end }):id("m"))
        end }):id("n"))
      :add(w("c", 1))'
}

# }===

# {=== status and reload from the test's side

# snap FILE: `arbor status`, as "id pid" lines in $d/FILE (ids are unique
# across the test trees).
snap() {
  if ! "$ARBOR" status --control "$sock" >"$d/status.txt" 2>&1; then
    fail "arbor status failed: $(cat "$d/status.txt")"
    : >"$d/$1"
    return 1
  fi
  awk '{ for (i = 1; i < NF; i++)
           if ($i == "├─" || $i == "└─") { print $(i + 1), $(i + 2); break } }' \
    "$d/status.txt" >"$d/$1"
}

pid_in() { awk -v id="$2" '$1 == id { print $2 }' "$d/$1"; }

# same_pids IDS...: each id kept its pid from "before" to "after".
same_pids() {
  local id b a
  for id; do
    b=$(pid_in before "$id") a=$(pid_in after "$id")
    [ -n "$a" ] && [ "$a" = "$b" ] ||
      fail "$id: pid '$b' -> '$a', expected it unchanged"
  done
}

# new_pids IDS...: each id runs in a new process.
new_pids() {
  local id b a
  for id; do
    b=$(pid_in before "$id") a=$(pid_in after "$id")
    case $a in '<'*) ;; *) fail "$id: no pid after ('$a')"; continue ;; esac
    [ "$a" != "$b" ] || fail "$id: pid $a unchanged, expected a restart"
  done
}

# ids_are IDS...: the ids of the "after" status, in order.
ids_are() {
  local got
  got=$(awk '{ print $1 }' "$d/after" | tr '\n' ' ')
  [ "$got" = "$* " ] || fail "status lists '$got', expected '$* '"
}

# reload_ok LINE [--dry-run]: `arbor reload` exits 0 printing LINE, and the
# host prints it too.
reload_ok() {
  local out code
  out=$(timeout 20 "$ARBOR" reload ${2:+"$2"} --control "$sock" 2>"$d/cerr")
  code=$?
  [ "$code" = 0 ] || fail "arbor reload exited $code: $(cat "$d/cerr")"
  [ "$out" = "$1" ] || fail "arbor reload printed '$out', expected '$1'"
  # The host prints the same line on its stdout.
  [ "$code" = 0 ] && wait_line "$out" >/dev/null
}

# reload_fails PATTERN: `arbor reload` exits 1 with PATTERN (a glob) in
# its stderr.
reload_fails() {
  local out code
  out=$(timeout 20 "$ARBOR" reload --control "$sock" 2>&1)
  code=$?
  [ "$code" = 1 ] || fail "arbor reload exited $code, expected 1 ($out)"
  # shellcheck disable=SC2053
  [[ $out == $1 ]] || fail "arbor reload printed '$out', expected '$1'"
}

# serve TEXT [OPTIONS...]: writes $d/tree.lua and serves it.
serve() {
  save "$d/tree.lua" "$1"
  shift
  start_host "$@" --control "$sock" "$d/tree.lua"
  wait_ready
}

# }===
