/*
** lstdlib_io.c: Lua's own io library, made close-on-exec.
**
** Lua opens files with fopen, which cannot ask for O_CLOEXEC portably, so
** a file a script opened would be inherited by every OS process the host
** starts.  Each io function that opens a file (io.open, io.lines with a
** name, io.input and io.output with a name, io.tmpfile) is wrapped here:
** the original runs, then each file it returned is set FD_CLOEXEC.  (The
** port layer also marks every descriptor above stderr close-on-exec before
** each spawn, for descriptors C modules open; this makes Lua's files safe
** for Lua's own os.execute and io.popen too.)
**
** os.execute and io.popen inside a process are lua/arbor/portio.lua's.
*/
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>

#include "lport.h"

/* Marks every file among the results from first to top close-on-exec. */
static void cloexec_results(lua_State *L, int first) {
  for (int i = first; i <= lua_gettop(L); i++) {
    luaL_Stream *s = luaL_testudata(L, i, LUA_FILEHANDLE);
    if (s == NULL || s->f == NULL || s->closef == NULL) continue;
    int fd = fileno(s->f);
    if (fd < 0) continue;
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC))
      fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
}

/* mark(...) -> ...: marks the files among its arguments, returns them all. */
static int mark(lua_State *L) {
  cloexec_results(L, 1);
  return lua_gettop(L);
}

/* The wrappers are Lua functions calling each original by its own name
** (a local named like the field), so an error the original raises reads
** as it always did ("bad argument #1 to 'open' ..."). */
static const char wrap_chunk[] =
    "local io, mark = ...\n"
    "local open, lines, input, output, tmpfile =\n"
    "  io.open, io.lines, io.input, io.output, io.tmpfile\n"
    "io.open = function(...) return mark(open(...)) end\n"
    "io.lines = function(...) return mark(lines(...)) end\n"
    "io.input = function(...) return mark(input(...)) end\n"
    "io.output = function(...) return mark(output(...)) end\n"
    "io.tmpfile = function(...) return mark(tmpfile(...)) end\n";

void larb_stdlib_io_install(lua_State *L) {
  if (lua_getglobal(L, "io") != LUA_TTABLE ||
      luaL_loadbuffer(L, wrap_chunk, sizeof(wrap_chunk) - 1, "=arbor.io") !=
          LUA_OK) {
    lua_pop(L, 2);
    return;
  }
  lua_insert(L, -2);
  lua_pushcfunction(L, mark);
  lua_call(L, 2, 0);
}
