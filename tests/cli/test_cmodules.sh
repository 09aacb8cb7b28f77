#!/usr/bin/env bash
# test_cmodules: Lua C modules load into arbor, as they do into lua5.4.
# A module built the way LuaRocks builds a C rock (cmodules/rockmod.c,
# compiled here with gcc against the Lua 5.4 headers, not linked to
# liblua) loads from the script's folder, from LUA_CPATH_5_4 and from
# LUA_CPATH; LUA_PATH_5_4 / LUA_PATH work the same for Lua modules, with
# ";;" standing for the default path, and the script's folder first.
# (Debian's lua-cjson, lua-lpeg, lua-socket: tests/lua/test_cmodules.lua.)
# Usage: bash test_cmodules.sh /path/to/arbor
set -u
ARBOR=${1:?usage: test_cmodules.sh /path/to/arbor}
case $ARBOR in /*) ;; *) ARBOR=$PWD/$ARBOR ;; esac
cd "$(dirname "$0")" || exit 1
. ./lib.sh

cli_scratch

# run ARGS...: runs arbor (10 s at most) with the environment as set by
# the caller; sets rc, out.
run() {
  timeout 10 "$ARBOR" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  rc=$?
  out=$(cat "$tmp/out")
}
case_end() { report_case; }
expect_rc() { [ "$rc" = "$1" ] || fail "exit status $rc, expected $1"; }
expect_out_line() {
  grep -qxF -- "$1" "$tmp/out" || fail "stdout lacks the line '$1'"
}

# The defaults, from a run with no LUA_* variables at all.
unset LUA_PATH LUA_PATH_5_4 LUA_CPATH LUA_CPATH_5_4
cat >"$tmp/paths.lua" <<'LUA'
print("path=" .. package.path)
print("cpath=" .. package.cpath)
LUA
run "$tmp/paths.lua"
default_path=$(sed -n "s|^path=$tmp/?.lua;$tmp/?/init.lua;||p" "$tmp/out")
default_cpath=$(sed -n "s|^cpath=$tmp/?.so;||p" "$tmp/out")

case_start "the script's folder comes first in package.path and package.cpath"
expect_rc 0
[ -n "$default_path" ] || fail "package.path does not begin with the script's folder"
[ -n "$default_cpath" ] || fail "package.cpath does not begin with the script's folder"
case $default_cpath in
  */usr/lib/x86_64-linux-gnu/lua/5.4/?.so*|*/usr/lib/lua/5.4/?.so*) ;;
  *) fail "the default cpath '$default_cpath' lacks Debian's module folder" ;;
esac
case_end

# A rock, built as LuaRocks builds one: shared, position independent,
# Lua's symbols left for the host to provide.
mkdir -p "$tmp/rocks"
gcc -shared -fPIC -O2 $(pkg-config --cflags lua5.4) -o "$tmp/rocks/rockmod.so" \
  cmodules/rockmod.c 2>"$tmp/gcc.err"
built=$?
cat >"$tmp/use_rock.lua" <<'LUA'
local process = require "process"
local rockmod = require "rockmod"
assert(rockmod.lua_version == "Lua 5.4", rockmod.lua_version)
print("join=" .. rockmod.join(", ", "a", 2, true))
local c = rockmod.counter(40)
c:next()
print("count=" .. c:next())
local t = {}
assert(rockmod.roundtrip(t) == t)
-- Used from another process, the answer sent back as a message.
local me = process.new_subject()
process.spawn(function() process.send(me, rockmod.join("-", "x", "y")) end)
print("from a process=" .. process.receive(me, 5000))
print("file=" .. package.searchpath("rockmod", package.cpath))
LUA

case_start "a C rock beside the script loads and works, in any process"
[ "$built" = 0 ] || fail "gcc could not build cmodules/rockmod.c: $(cat "$tmp/gcc.err")"
cp "$tmp/rocks/rockmod.so" "$tmp/rockmod.so"
run "$tmp/use_rock.lua"
expect_rc 0
expect_out_line "join=a, 2, true"
expect_out_line "count=42"
expect_out_line "from a process=x-y"
expect_out_line "file=$tmp/rockmod.so"
rm -f "$tmp/rockmod.so"
case_end

mkdir -p "$tmp/script"
cp "$tmp/use_rock.lua" "$tmp/script/use_rock.lua"

case_start "LUA_CPATH_5_4 is honoured, ';;' standing for the default cpath"
LUA_CPATH_5_4="$tmp/rocks/?.so;;" run "$tmp/script/use_rock.lua"
expect_rc 0
expect_out_line "count=42"
expect_out_line "file=$tmp/rocks/rockmod.so"
LUA_CPATH_5_4="$tmp/rocks/?.so;;" run "$tmp/paths.lua"
expect_out_line "cpath=$tmp/?.so;$tmp/rocks/?.so;$default_cpath"
case_end

case_start "LUA_CPATH is the fallback; LUA_CPATH_5_4 wins over it"
LUA_CPATH="$tmp/rocks/?.so" run "$tmp/script/use_rock.lua"
expect_rc 0
expect_out_line "file=$tmp/rocks/rockmod.so"
LUA_CPATH="$tmp/rocks/?.so" run "$tmp/paths.lua"
expect_out_line "cpath=$tmp/?.so;$tmp/rocks/?.so"
LUA_CPATH_5_4="$tmp/none/?.so" LUA_CPATH="$tmp/rocks/?.so" \
  run "$tmp/script/use_rock.lua"
[ "$rc" = 1 ] || fail "LUA_CPATH was used although LUA_CPATH_5_4 was set"
grep -qF "module 'rockmod' not found" "$tmp/err" \
  || fail "stderr lacks \"module 'rockmod' not found\""
case_end

case_start "LUA_PATH_5_4 and LUA_PATH are honoured after the script's folder"
mkdir -p "$tmp/lualib"
echo 'return "from lualib"' >"$tmp/lualib/libmod.lua"
cat >"$tmp/script/use_lib.lua" <<'LUA'
print("libmod=" .. require "libmod")
LUA
LUA_PATH_5_4="$tmp/lualib/?.lua;;" run "$tmp/script/use_lib.lua"
expect_rc 0
expect_out_line "libmod=from lualib"
LUA_PATH_5_4="$tmp/lualib/?.lua;;" run "$tmp/paths.lua"
expect_out_line "path=$tmp/?.lua;$tmp/?/init.lua;$tmp/lualib/?.lua;$default_path"
LUA_PATH="$tmp/lualib/?.lua" run "$tmp/script/use_lib.lua"
expect_out_line "libmod=from lualib"
# The script's folder shadows the environment's.
echo 'return "beside the script"' >"$tmp/script/libmod.lua"
LUA_PATH_5_4="$tmp/lualib/?.lua;;" run "$tmp/script/use_lib.lua"
expect_out_line "libmod=beside the script"
case_end

exit $failed
