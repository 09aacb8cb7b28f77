/*
** lport.c: the `port` module: OS processes owned by arbor processes
** (host/rt/port.c does the libuv side, the framing and the process
** groups; host/rt/reaper.c the reaping).
**
**   port.spawn{"cmd", "arg", ... [, cwd =] [, env = {NAME = "v"}]
**              [, clear_env = true] [, stdin = "pipe"|"null"|"inherit"]
**              [, stdout = s] [, stderr = s | "stdout"]
**              [, packet = "line"|"raw"] [, owner_exit_signal = sig]
**              [, kill_after = ms] [, notify = true]} -> port | nil, err
**   port:os_pid(), port:write(data), port:close_stdin(),
**   port:signal(sig)
**   selector:selecting_port(port [, map_fn])
**   port.pattern_check(pattern) -> true | nil, message
**   port.pattern_find(s, pattern [, init [, budget]])
**     -> start, end, captures... | nil | false, "too costly"
**
** pattern_find is string.find for Lua patterns with a step budget
** (host/core/pattern.h), for supervisor.command's ready lines: a
** pattern that backtracks without end cannot freeze the host.
**
** Hostile arguments raise naming the field (and the index): a string
** with a NUL byte (argv, cwd, env, a signal name: C would cut it short),
** a non-boolean clear_env or notify.  Methods name themselves in their
** errors however they are called (p:signal(x), or p.signal(p, x) through
** pcall, where Lua alone would say '?').
**
** A port's output and exit arrive as messages on a subject the port
** keeps (its userdata's user value), owned by the port's owner:
** {port = p, stdout = text}, {port = p, stderr = text}, and last
** {port = p, exit = code} or {port = p, signal = "NAME"}; with notify,
** also {port = p, notify = "READY=1\n..."} for each datagram the command
** sends to $NOTIFY_SOCKET.  Until the exit
** has been delivered the userdata is anchored in the registry table
** "ports" (light userdata of the arb_port_t -> userdata), so the loop's
** callback finds it and the collector cannot take it.
**
** Only the owner may write, close stdin or select on a port; any process
** may read its OS pid or signal it.  A command does not inherit the
** host's NOTIFY_SOCKET, WATCHDOG_USEC or WATCHDOG_PID (systemd's messages
** are the host's to send); `notify = true` gives it a socket of its own.
*/
#include "lport.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h> /* access: which path a failed spawn misses */
#include "pattern.h"
#include "port.h"
#include "reaper.h"

#define LPORT_PORT "arbor.Port"
/* pattern_find's default step budget: about a millisecond or two. */
#define LPORT_PATTERN_BUDGET 200000

extern char **environ;

typedef struct lport_handle_s {
  arb_port_t *p;
} lport_handle_t;

/* {======================================================================
** Argument errors
** ======================================================================*/

/* Pushes s[0..len) with each NUL byte shown as \0, for messages. */
static const char *push_shown(lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '\0')
      luaL_addstring(&b, "\\0");
    else
      luaL_addchar(&b, s[i]);
  }
  luaL_pushresult(&b);
  return lua_tostring(L, -1);
}

/* Does the string at idx hold a NUL byte? */
static int has_nul(lua_State *L, int idx) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  return s != NULL && strlen(s) != len;
}

/* "bad argument #arg to 'name' (msg)": luaL_argerror's text, with the
** method's own name where Lua has none to give ('?' when it is called
** as p.signal(p, x) through pcall or a local); the self argument is not
** counted in a method call, as Lua does. */
static int method_argerror(lua_State *L, int arg, const char *name,
                           const char *msg) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) &&
      ar.namewhat != NULL && strcmp(ar.namewhat, "method") == 0)
    arg--;
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, name, msg);
}

/* }====================================================================== */

/* {======================================================================
** Signal names
** ======================================================================*/

static const struct {
  const char *name;
  int num;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},       {"QUIT", SIGQUIT},
    {"ILL", SIGILL},   {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},
    {"BUS", SIGBUS},   {"FPE", SIGFPE},       {"KILL", SIGKILL},
    {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},     {"USR2", SIGUSR2},
    {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},     {"TERM", SIGTERM},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},     {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},
    {"URG", SIGURG},   {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ},
    {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH},
    {"IO", SIGIO},     {"SYS", SIGSYS},       {NULL, 0}};

/* The name of signum without "SIG" ("SEGV"), or its number as text. */
static const char *signal_name(lua_State *L, int signum) {
  for (int i = 0; signals[i].name; i++)
    if (signals[i].num == signum) return lua_pushstring(L, signals[i].name);
  return lua_pushfstring(L, "%d", signum);
}

/* The signal at idx: a name ("TERM" or "SIGTERM") or a number 0..64.
** A bad one raises as argument argn of function fname. */
static int check_signal(lua_State *L, int idx, int argn, const char *fname,
                        const char *what) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TNUMBER) {
    lua_Integer n = lua_isinteger(L, idx) ? lua_tointeger(L, idx) : -1;
    if (n >= 0 && n <= 64) return (int)n;
  } else if (lua_type(L, idx) == LUA_TSTRING && !has_nul(L, idx)) {
    const char *s = lua_tostring(L, idx);
    if (strncmp(s, "SIG", 3) == 0) s += 3;
    for (int i = 0; signals[i].name; i++)
      if (strcmp(signals[i].name, s) == 0) return signals[i].num;
  }
  const char *got;
  if (lua_type(L, idx) == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    got = lua_pushfstring(L, "\"%s\"%s", push_shown(L, s, len),
                          has_nul(L, idx) ? " (a NUL byte in it)" : "");
  } else {
    got = luaL_typename(L, idx);
  }
  return method_argerror(
      L, argn, fname,
      lua_pushfstring(L, "%s must be a signal name (\"TERM\", \"KILL\", ...) "
                         "or number, got %s",
                      what, got));
}

/* }====================================================================== */

/* nil, err for `what` failing with rc (kind "enoent" and so on), naming
** the command or folder in err.path when one applies (path may be NULL). */
static int port_fail(lua_State *L, int rc, const char *what,
                     const char *path) {
  return larb_fail_path(L, rc, what, path, NULL);
}

static lport_handle_t *check_handle(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, LPORT_PORT);
}

static arb_port_t *check_port(lua_State *L, int idx) {
  lport_handle_t *h = check_handle(L, idx);
  return h->p;
}

static arb_port_t *check_owned(lua_State *L, int idx, const char *fname) {
  arb_port_t *p = check_port(L, idx);
  if (p->owner != larb_self(L)->pid)
    method_argerror(L, idx, fname, "port is owned by another process");
  return p;
}

/* {======================================================================
** Delivering output and the exit as messages
** ======================================================================*/

static const char PORTS_KEY = 'p';

static void push_ports(lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &PORTS_KEY) == LUA_TNIL) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PORTS_KEY);
  }
}

/* Stack: 1 the port userdata, 2 event, 3 data (light userdata), 4 len. */
static int deliver_unprotected(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  lport_handle_t *h = lua_touserdata(L, 1);
  arb_port_t *p = h->p;
  int event = (int)lua_tointeger(L, 2);
  const char *data = lua_touserdata(L, 3);
  size_t len = (size_t)lua_tointeger(L, 4);
  if (event == ARB_PORT_EV_EXIT) { /* the last message: unanchor */
    push_ports(L);
    lua_pushnil(L);
    lua_rawsetp(L, -2, p);
    lua_pop(L, 1);
  }
  lua_getiuservalue(L, 1, 1);
  larb_subject_t *sub = larb_test_subject(L, -1);
  if (sub == NULL || ctx->node == NULL || !arb_subject_owner_alive(&sub->sub))
    return 0;
  lua_createtable(L, 0, 2);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "port");
  if (event == ARB_PORT_EV_EXIT) {
    if (p->term_signal) {
      signal_name(L, p->term_signal);
      lua_setfield(L, -2, "signal");
    } else {
      lua_pushinteger(L, p->exit_status);
      lua_setfield(L, -2, "exit");
    }
  } else {
    lua_pushlstring(L, data ? data : "", len);
    lua_setfield(L, -2, event == ARB_PORT_EV_STDOUT   ? "stdout"
                        : event == ARB_PORT_EV_STDERR ? "stderr"
                                                      : "notify");
  }
  intptr_t ref = larb_ref_fresh(L, -1); /* a table made just now */
  arb_subject_send(ctx->node, &sub->sub, ref);
  return 0;
}

/* port.c's callback; runs the above under protection (only a memory
** error can happen: that piece of output is then lost). */
static void deliver(void *ud, arb_port_t *p, int event, const char *data,
                    size_t len) {
  larb_ctx_t *ctx = ud;
  lua_State *L = ctx->L;
  if (ctx->node == NULL) return;
  int top = lua_gettop(L);
  push_ports(L);
  if (lua_rawgetp(L, -1, p) == LUA_TUSERDATA) {
    lua_pushcfunction(L, deliver_unprotected);
    lua_insert(L, -2);
    lua_pushinteger(L, event);
    lua_pushlightuserdata(L, (void *)data);
    lua_pushinteger(L, (lua_Integer)len);
    lua_pcall(L, 4, 0, 0);
  }
  lua_settop(L, top);
}

/* }====================================================================== */

/* {======================================================================
** Spawning
** ======================================================================*/

static int io_mode(lua_State *L, const char *field, const char *dflt,
                   int is_stdin, int is_stderr) {
  lua_getfield(L, 1, field);
  const char *s = lua_isnil(L, -1) ? dflt
                  : lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                   : NULL;
  int mode = -1;
  if (s == NULL)
    mode = -1;
  else if (strcmp(s, is_stdin ? "pipe" : "message") == 0)
    mode = ARB_PORT_IO_PIPE;
  else if (strcmp(s, "inherit") == 0)
    mode = ARB_PORT_IO_INHERIT;
  else if (strcmp(s, "null") == 0)
    mode = ARB_PORT_IO_NULL;
  else if (is_stderr && strcmp(s, "stdout") == 0)
    mode = ARB_PORT_IO_STDOUT;
  if (mode < 0)
    luaL_argerror(L, 1,
                  lua_pushfstring(L, "%s must be %s, got %s", field,
                                  is_stdin ? "\"pipe\", \"null\" or \"inherit\""
                                  : is_stderr
                                      ? "\"message\", \"inherit\", \"null\" or "
                                        "\"stdout\""
                                      : "\"message\", \"inherit\" or \"null\"",
                                  s ? s : luaL_typename(L, -1)));
  lua_pop(L, 1);
  return mode;
}

/* The boolean option `field` of the table at 1 (absent: false). */
static int check_flag(lua_State *L, const char *field) {
  int t = lua_getfield(L, 1, field);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN)
    luaL_argerror(L, 1, lua_pushfstring(L, "%s must be a boolean, got %s",
                                        field, luaL_typename(L, -1)));
  int on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

/* Builds the child's environment in a userdata array (pushed; its
** strings are anchored in a table pushed below it). */
static char **build_env(lua_State *L) {
  lua_newtable(L); /* anchors */
  int anchors = lua_gettop(L);
  int clear = check_flag(L, "clear_env");
  lua_getfield(L, 1, "env");
  int env = lua_gettop(L);
  if (!lua_isnil(L, env) && !lua_istable(L, env))
    luaL_argerror(L, 1, "env must be a table of NAME = value strings");
  int added = 0;
  if (lua_istable(L, env)) {
    lua_pushnil(L);
    while (lua_next(L, env)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) == LUA_TTABLE ||
          (!lua_isstring(L, -1)))
        luaL_argerror(L, 1, "env must be a table of NAME = value strings");
      size_t klen;
      const char *k = lua_tolstring(L, -2, &klen);
      if (has_nul(L, -2))
        luaL_argerror(L, 1, lua_pushfstring(L, "env name \"%s\" contains a "
                                               "NUL byte",
                                            push_shown(L, k, klen)));
      if (*k == '\0' || strchr(k, '='))
        luaL_argerror(L, 1, lua_pushfstring(L, "env name '%s' is not valid", k));
      if (lua_type(L, -1) == LUA_TSTRING && has_nul(L, -1))
        luaL_argerror(L, 1, lua_pushfstring(L, "env value of %s contains a "
                                               "NUL byte", k));
      lua_pushfstring(L, "%s=%s", k, lua_tostring(L, -1));
      lua_rawseti(L, anchors, ++added);
      lua_pop(L, 1);
    }
  }
  size_t inherited = 0;
  if (!clear)
    for (char **e = environ; *e; e++) inherited++;
  char **out = lua_newuserdatauv(L, (inherited + (size_t)added + 1) *
                                        sizeof(char *), 0);
  size_t n = 0;
  for (int i = 1; i <= added; i++) {
    lua_rawgeti(L, anchors, i);
    out[n++] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  if (!clear) {
    for (char **e = environ; *e; e++) {
      /* The host's own systemd variables are not a command's to use. */
      if (strncmp(*e, "NOTIFY_SOCKET=", 14) == 0 ||
          strncmp(*e, "WATCHDOG_USEC=", 14) == 0 ||
          strncmp(*e, "WATCHDOG_PID=", 13) == 0)
        continue;
      const char *eq = strchr(*e, '=');
      size_t klen = eq ? (size_t)(eq - *e) : strlen(*e);
      int overridden = 0;
      for (int i = 0; i < added && !overridden; i++)
        overridden = strncmp(out[i], *e, klen) == 0 && out[i][klen] == '=';
      if (!overridden) out[n++] = *e;
    }
  }
  out[n] = NULL;
  lua_remove(L, env);
  return out;
}

/* port.spawn{...} -> port | nil, err */
static int lport_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  arb_proc_t *self = larb_self(L);
  lua_Integer argc = (lua_Integer)lua_rawlen(L, 1);
  if (argc < 1)
    return luaL_argerror(L, 1, "needs the command: {\"cmd\", \"arg\", ...}");
  char **argv = lua_newuserdatauv(L, (size_t)(argc + 1) * sizeof(char *), 0);
  for (lua_Integer i = 1; i <= argc; i++) {
    if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
      return luaL_argerror(L, 1, lua_pushfstring(L, "argument %d of the "
                                                 "command must be a string",
                                                 (int)i));
    if (has_nul(L, -1))
      return luaL_argerror(L, 1, lua_pushfstring(L, "argument %d of the "
                                                 "command contains a NUL "
                                                 "byte",
                                                 (int)i));
    argv[i - 1] = (char *)lua_tostring(L, -1); /* anchored by the table */
    lua_pop(L, 1);
  }
  argv[argc] = NULL;
  if (argv[0][0] == '\0') return luaL_argerror(L, 1, "the command is empty");
  arb_port_opts_t o;
  memset(&o, 0, sizeof(o));
  o.file = argv[0];
  o.args = argv;
  lua_getfield(L, 1, "cwd");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
    return luaL_argerror(L, 1, "cwd must be a string");
  if (has_nul(L, -1))
    return luaL_argerror(L, 1, "cwd contains a NUL byte");
  o.cwd = lua_tostring(L, -1); /* anchored by the table */
  lua_pop(L, 1);
  o.stdin_mode = io_mode(L, "stdin", "pipe", 1, 0);
  o.stdout_mode = io_mode(L, "stdout", "message", 0, 0);
  o.stderr_mode = io_mode(L, "stderr", "message", 0, 1);
  lua_getfield(L, 1, "packet");
  const char *packet = lua_isnil(L, -1) ? "line"
                       : lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                        : "";
  if (strcmp(packet, "line") == 0)
    o.packet = ARB_PORT_LINE;
  else if (strcmp(packet, "raw") == 0)
    o.packet = ARB_PORT_RAW;
  else
    return luaL_argerror(L, 1, "packet must be \"line\" or \"raw\"");
  lua_pop(L, 1);
  lua_getfield(L, 1, "owner_exit_signal");
  o.owner_exit_signal = lua_isnil(L, -1) ? SIGTERM
                        : check_signal(L, -1, 1, "spawn", "owner_exit_signal");
  lua_pop(L, 1);
  lua_getfield(L, 1, "kill_after");
  o.kill_after_ms = -1;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 ||
        lua_tointeger(L, -1) > INT32_MAX)
      return luaL_argerror(L, 1, "kill_after must be a non-negative integer (ms)");
    o.kill_after_ms = (int)lua_tointeger(L, -1);
  }
  lua_pop(L, 1);
  o.notify = check_flag(L, "notify");
  o.env = build_env(L);

  larb_ctx_t *ctx = larb_ctx(L);
  lport_handle_t *h = lua_newuserdatauv(L, sizeof(*h), 1);
  int ud = lua_gettop(L);
  h->p = NULL;
  luaL_setmetatable(L, LPORT_PORT);
  /* The subject its messages arrive on, owned by the caller. */
  larb_subject_t *sub = lua_newuserdatauv(L, sizeof(*sub), 0);
  luaL_setmetatable(L, LARB_SUBJECT);
  arb_subject_init(ctx->node, &sub->sub, self);
  lua_setiuservalue(L, ud, 1);
  arb_port_t *p;
  int rc = arb_port_spawn(&ctx->rt->loop, ctx->node, self, &o, deliver, ctx,
                          &p);
  if (rc != 0) {
    /* uv_spawn says ENOENT for a missing cwd as for a missing command:
    ** name the one that is missing. */
    if (rc == UV_ENOENT && o.cwd && access(o.cwd, X_OK) != 0)
      return port_fail(L, rc, "spawn: working directory", o.cwd);
    return port_fail(L, rc, "spawn", argv[0]);
  }
  h->p = p;
  push_ports(L);
  lua_pushvalue(L, ud);
  lua_rawsetp(L, -2, p);
  lua_settop(L, ud);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Methods
** ======================================================================*/

static int port_os_pid(lua_State *L) {
  lua_pushinteger(L, check_port(L, 1)->os_pid);
  return 1;
}

static int write_k(lua_State *L, int status, lua_KContext kctx);

/* Waits while more than ARB_PORT_WRITE_HIGH bytes are queued. */
static int write_drain(lua_State *L, arb_port_t *p) {
  if (p->queued <= ARB_PORT_WRITE_HIGH || p->exited) {
    if (p->write_err) return port_fail(L, p->write_err, "write", NULL);
    lua_pushboolean(L, 1);
    return 1;
  }
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *self = larb_self(L);
  p->write_waiter = self->pid;
  if (arb_node_wait(ctx->node, self, arb_rt_now(ctx->rt), -1))
    return luaL_error(L, "out of memory");
  return larb_yield(L, 0, write_k);
}

static int write_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  (void)kctx;
  arb_port_t *p = check_port(L, 1);
  p->write_waiter = ARB_PID_NONE;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return write_drain(L, p);
}

/* port:write(data) -> true | nil, err: queued on stdin; waits while more
** than 1 MiB is queued. */
static int port_write(lua_State *L) {
  arb_port_t *p = check_owned(L, 1, "write");
  size_t len;
  const char *data = lua_tolstring(L, 2, &len);
  if (data == NULL)
    return method_argerror(L, 2, "write",
                           lua_pushfstring(L, "string expected, got %s",
                                           luaL_typename(L, 2)));
  lua_settop(L, 1);
  /* Its stdin pipe may still be open, but nobody is left to read it
  ** (once the owner closed stdin, writing is "epipe" as before). */
  if (p->exited && p->in_open)
    return larb_fail(L, UV_EOF, "write (the command has exited)");
  int rc = arb_port_write(p, data, len);
  if (rc != 0) return port_fail(L, rc, "write", NULL);
  return write_drain(L, p);
}

/* port:close_output() -> true: stops reading stdout and stderr (what is
** framed so far is delivered); the child then gets EPIPE (SIGPIPE) when it
** writes more, as with a pipe whose reader went away.  An extension, for
** io.popen's close. */
static int port_close_output(lua_State *L) {
  arb_port_close_output(check_owned(L, 1, "close_output"));
  lua_pushboolean(L, 1);
  return 1;
}

static int port_close_stdin(lua_State *L) {
  arb_port_close_stdin(check_owned(L, 1, "close_stdin"));
  lua_pushboolean(L, 1);
  return 1;
}

/* port:signal(sig) -> true | nil, err: to the whole group. */
static int port_signal(lua_State *L) {
  arb_port_t *p = check_port(L, 1);
  int signum = check_signal(L, 2, 2, "signal", "signal");
  int rc = arb_port_signal(p, signum);
  if (rc != 0) return port_fail(L, rc, "signal", NULL);
  lua_pushboolean(L, 1);
  return 1;
}

/* selector:selecting_port(port [, map_fn]) -> selector */
static int selector_selecting_port(lua_State *L) {
  luaL_checkudata(L, 1, LARB_SELECTOR);
  check_owned(L, 2, "selecting_port");
  lua_settop(L, 3);
  lua_getfield(L, 1, "selecting");
  lua_pushvalue(L, 1);
  lua_getiuservalue(L, 2, 1);
  lua_pushvalue(L, 3);
  lua_call(L, 3, 1);
  return 1;
}

static int port_gc(lua_State *L) {
  lport_handle_t *h = lua_touserdata(L, 1);
  if (h->p) arb_port_release(h->p);
  h->p = NULL;
  return 0;
}

static int port_tostring(lua_State *L) {
  arb_port_t *p = check_port(L, 1);
  if (p == NULL) {
    lua_pushliteral(L, "Port<not started>");
    return 1;
  }
  lua_pushfstring(L, "Port<%d of <0.%d.%d>%s>", (int)p->os_pid,
                  (int)arb_pid_slot(p->owner), (int)arb_pid_gen(p->owner),
                  p->exit_delivered ? ", exited" : "");
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Bounded pattern matching
** ======================================================================*/

/* port.pattern_check(pattern) -> true | nil, message */
static int lport_pattern_check(lua_State *L) {
  size_t plen;
  const char *pat = luaL_checklstring(L, 1, &plen);
  char err[256];
  if (arb_pattern_check(pat, plen, err, sizeof(err)) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, err);
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* port.pattern_find(s, pattern [, init [, budget]]) -> as string.find,
** or false, "too costly" when the budget of steps ran out. */
static int lport_pattern_find(lua_State *L) {
  size_t slen, plen;
  const char *s = luaL_checklstring(L, 1, &slen);
  const char *pat = luaL_checklstring(L, 2, &plen);
  lua_Integer init = luaL_optinteger(L, 3, 1);
  lua_Integer budget = luaL_optinteger(L, 4, LPORT_PATTERN_BUDGET);
  luaL_argcheck(L, budget > 0 && budget <= INT32_MAX, 4,
                "budget must be a positive number of steps");
  char err[256];
  if (arb_pattern_check(pat, plen, err, sizeof(err)) != 0)
    return luaL_argerror(L, 2, lua_pushfstring(L, "malformed pattern: %s", err));
  if (init < 0) init = init < -(lua_Integer)slen ? 1 : (lua_Integer)slen + init + 1;
  if (init == 0) init = 1;
  if (init > (lua_Integer)slen + 1) {
    luaL_pushfail(L);
    return 1;
  }
  arb_pat_result_t r;
  int rc = arb_pattern_find(s, slen, pat, plen, (size_t)(init - 1),
                            (long)budget, &r);
  if (rc == ARB_PAT_NOMATCH) {
    luaL_pushfail(L);
    return 1;
  }
  if (rc == ARB_PAT_TOO_COSTLY) {
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too costly");
    return 2;
  }
  luaL_checkstack(L, 2 + r.ncaptures, "too many captures");
  lua_pushinteger(L, (lua_Integer)r.start + 1);
  lua_pushinteger(L, (lua_Integer)r.end);
  for (int i = 0; i < r.ncaptures; i++) {
    if (r.captures[i].is_position)
      lua_pushinteger(L, (lua_Integer)r.captures[i].start + 1);
    else
      lua_pushlstring(L, s + r.captures[i].start, r.captures[i].len);
  }
  return 2 + r.ncaptures;
}

/* }====================================================================== */

static const luaL_Reg port_funcs[] = {{"spawn", lport_spawn},
                                      {"pattern_check", lport_pattern_check},
                                      {"pattern_find", lport_pattern_find},
                                      {NULL, NULL}};

static const luaL_Reg port_methods[] = {{"os_pid", port_os_pid},
                                        {"write", port_write},
                                        {"close_stdin", port_close_stdin},
                                        {"close_output", port_close_output},
                                        {"signal", port_signal},
                                        {NULL, NULL}};

int larb_open_port(lua_State *L) {
  if (luaL_newmetatable(L, LPORT_PORT)) {
    lua_newtable(L);
    luaL_setfuncs(L, port_methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, port_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, port_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  int top = lua_gettop(L);
  if (luaL_getmetatable(L, LARB_SELECTOR) == LUA_TTABLE &&
      lua_getfield(L, -1, "__index") == LUA_TTABLE) {
    lua_pushcfunction(L, selector_selecting_port);
    lua_setfield(L, -2, "selecting_port");
  }
  lua_settop(L, top);
  luaL_newlib(L, port_funcs);
  /* port.signals: name -> number, for what reports a signal by name. */
  lua_createtable(L, 0, (int)(sizeof(signals) / sizeof(signals[0])));
  for (int i = 0; signals[i].name; i++) {
    lua_pushinteger(L, signals[i].num);
    lua_setfield(L, -2, signals[i].name);
  }
  lua_setfield(L, -2, "signals");
  return 1;
}

void larb_port_init(larb_ctx_t *ctx) {
  arb_reaper_init(&ctx->rt->loop, arb_port_owns);
}

void larb_port_close(larb_ctx_t *ctx) {
  arb_port_end_all(&ctx->rt->loop, ARB_PORT_KILL_AFTER_MS);
  arb_reaper_close();
}
