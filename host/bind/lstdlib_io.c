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
** io.popen is replaced by one of the same contract that the host's
** reaper (host/rt/reaper.c) knows about.  The reaper reaps every child
** libuv does not own; a child of C's popen(3) reaped so before pclose
** waits for it made `close` fail with "No child processes" instead of
** giving the exit status.  This popen starts `/bin/sh -c prog` itself
** (posix_spawn, so its pid is known), asks the reaper to keep its hands
** off that pid, and its close waits for it and gives Lua's results
** (true | nil, "exit" | "signal", n).  The child starts with default
** signal dispositions and an empty mask (the host ignores SIGPIPE; a
** shell pipeline should not inherit that).
**
** os.execute and io.popen inside a process are lua/arbor/portio.lua's;
** this popen is what they fall back to outside one.
*/
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lport.h"
#include "reaper.h"

extern char **environ;

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

/* {======================================================================
** io.popen
** ======================================================================*/

/* Lua's file handle (its first field, so the io library sees an ordinary
** file) and the child to wait for. */
typedef struct popen_stream_s {
  luaL_Stream stream;
  pid_t pid;
} popen_stream_t;

/* The file's closef: closes the pipe, then waits for the child. */
static int popen_close(lua_State *L) {
  popen_stream_t *p = (popen_stream_t *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
  fclose(p->stream.f);
  int status = 0;
  pid_t got;
  do
    got = waitpid(p->pid, &status, 0);
  while (got == -1 && errno == EINTR);
  arb_reaper_unkeep(p->pid);
  if (got == -1) return luaL_execresult(L, -1); /* nil, message, errno */
  errno = 0;
  return luaL_execresult(L, status);
}

/* Starts /bin/sh -c prog with one end of a new pipe as its stdin (mode
** "w") or stdout ("r"); the other end (close-on-exec) in *fd.  0 or an
** errno. */
static int spawn_shell(const char *prog, int writing, pid_t *pid, int *fd) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return errno;
  int child_end = writing ? fds[0] : fds[1];
  int child_fd = writing ? STDIN_FILENO : STDOUT_FILENO;
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  int err = posix_spawn_file_actions_init(&fa);
  if (err == 0) {
    err = posix_spawnattr_init(&attr);
    if (err != 0) posix_spawn_file_actions_destroy(&fa);
  }
  if (err != 0) {
    close(fds[0]);
    close(fds[1]);
    return err;
  }
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  err = posix_spawn_file_actions_adddup2(&fa, child_end, child_fd);
  short spawn_flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
  if (err == 0) err = posix_spawnattr_setflags(&attr, spawn_flags);
  if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &all);
  if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
  char *argv[] = {"sh", "-c", (char *)prog, NULL};
  if (err == 0) err = posix_spawn(pid, "/bin/sh", &fa, &attr, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(child_end);
  if (err != 0) {
    close(writing ? fds[1] : fds[0]);
    return err;
  }
  *fd = writing ? fds[1] : fds[0];
  return 0;
}

/* io.popen(prog [, mode]): Lua's, but for who reaps the child. */
static int lpopen(lua_State *L) {
  const char *prog = luaL_checkstring(L, 1);
  const char *mode = luaL_optstring(L, 2, "r");
  popen_stream_t *p = lua_newuserdatauv(L, sizeof(*p), 0);
  p->stream.f = NULL;
  p->stream.closef = NULL; /* a closed file until it is complete */
  luaL_setmetatable(L, LUA_FILEHANDLE);
  luaL_argcheck(L, (mode[0] == 'r' || mode[0] == 'w') && mode[1] == '\0', 2,
                "invalid mode");
  int writing = mode[0] == 'w', fd = -1;
  int err = spawn_shell(prog, writing, &p->pid, &fd);
  /* No reaper scan runs between the spawn and the keep: both are on the
  ** loop thread, and the reaper runs from the loop's callbacks. */
  int keep_err = err == 0 ? arb_reaper_keep(p->pid) : 0;
  FILE *f = err == 0 && keep_err == 0 ? fdopen(fd, mode) : NULL;
  if (err == 0 && f == NULL) {
    /* Out of memory: the child goes, nobody waits for it later. */
    err = keep_err ? ENOMEM : errno;
    close(fd);
    kill(p->pid, SIGKILL);
    while (waitpid(p->pid, NULL, 0) == -1 && errno == EINTR) {}
    if (!keep_err) arb_reaper_unkeep(p->pid);
  }
  if (err != 0) {
    errno = err;
    return luaL_fileresult(L, 0, prog);
  }
  p->stream.f = f;
  p->stream.closef = popen_close;
  return 1;
}

/* }====================================================================== */

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
  lua_pushcfunction(L, lpopen);
  lua_setfield(L, -3, "popen");
  lua_insert(L, -2);
  lua_pushcfunction(L, mark);
  lua_call(L, 2, 0);
}
