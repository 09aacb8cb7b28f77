/*
** lstdin.c: io.read, io.lines, io.stdin:read and io.stdin:lines on
** standard input wait on the loop when called from a process, so only
** the caller waits and every other process runs.
**
** The wrappers replace the four functions in `io` and in the file
** handles' method table.  Each one checks whether it is reading the
** host's stdin handle from inside a process and stdin is a pipe, FIFO,
** terminal or socket (host/rt/stdin.c can poll it); if not (another file,
** host setup outside any process, stdin a regular file), it calls Lua's
** own function, so behaviour there is Lua's exactly.
**
** The formats are Lua 5.4's ("n", "l", "L", "a", a count; a leading '*'
** skipped) with the same results: each one is parsed from the bytes
** host/rt/stdin.c has buffered, and if they are not enough to decide
** (no newline yet, digits up to the buffer's end) the process asks for
** more and waits; the parse starts again when it runs, so nothing is
** taken from the buffer until a format is decided.  The results so far
** stay on the stack across the wait; the first format's index, the count
** and the kind of call travel in the continuation context.  One process
** reads at a time (the reader queue in stdin.h), from its first format
** to its last, so two readers never split a call's input between them.
**
** Knows the host's context (larb.h), never libuv directly.
*/
#include <ctype.h>
#include <errno.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "larb.h"
#include "lstdin.h"
#include "stdin.h"

static arb_stdin_t reader;
static int reader_state; /* 0 not tried yet, 1 watching, -1 Lua's own */

/* Registry key of the table of Lua's own functions:
** {read =, lines =, fread =, flines =}. */
static const char ORIGINALS = 'o';

#define MAXARGLINE 250 /* as Lua's io.lines */

enum { NEED = -1 };
enum { MODE_READ = 0, MODE_LINES = 1 };

/* The continuation context: first format's stack index (1 or 2), count
** of formats, kind of call. */
#define K_MAKE(first, n, mode) \
  ((lua_KContext)(((lua_KContext)(n) << 3) | ((mode) << 2) | (first)))
#define K_FIRST(k) ((int)((k)&3))
#define K_MODE(k) ((int)(((k) >> 2) & 1))
#define K_N(k) ((int)((k) >> 3))

static int is_stdin(lua_State *L, int idx) {
  luaL_Stream *s = luaL_testudata(L, idx, LUA_FILEHANDLE);
  return s != NULL && s->f == stdin && s->closef != NULL;
}

/* Called from a live process, with stdin something the loop can watch
** (opened on the first such call)? */
static int on_loop(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (ctx->node == NULL || ctx->rt == NULL || ctx->current_co == NULL ||
      arb_node_current(ctx->node) == NULL ||
      arb_proc_is_dead(arb_node_current(ctx->node)))
    return 0;
  if (reader_state == 0)
    reader_state =
        arb_stdin_open(&reader, &ctx->rt->loop, ctx->node) == 0 ? 1 : -1;
  return reader_state == 1;
}

/* Calls Lua's own function `name` with the whole stack as arguments. */
static int call_original(lua_State *L, const char *name) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &ORIGINALS);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* {======================================================================
** The formats, parsed from the buffer.  Each pushes its value and returns
** 1 (success) or 0 (failure, Lua's "fail"), or returns NEED (nothing
** pushed, nothing taken) when the buffer cannot decide yet.
** ======================================================================*/

static const char *data(void) { return reader.buf + reader.start; }
static int at_end(void) { return reader.eof || reader.err; }

static int read_line(lua_State *L, int chop) {
  const char *d = data();
  const char *nl = reader.len ? memchr(d, '\n', reader.len) : NULL;
  size_t n;
  if (nl) {
    n = (size_t)(nl - d) + 1;
    lua_pushlstring(L, d, chop ? n - 1 : n);
  } else {
    if (!at_end()) return NEED;
    n = reader.len;
    lua_pushlstring(L, d, n);
  }
  arb_stdin_consume(&reader, n);
  return nl != NULL || n > 0;
}

static int read_all(lua_State *L) {
  if (!at_end()) return NEED;
  lua_pushlstring(L, data(), reader.len);
  arb_stdin_consume(&reader, reader.len);
  return 1;
}

static int read_chars(lua_State *L, size_t n) {
  if (reader.len < n && !at_end()) return NEED;
  if (n > reader.len) n = reader.len;
  lua_pushlstring(L, data(), n);
  arb_stdin_consume(&reader, n);
  return n > 0;
}

static int test_eof(lua_State *L) {
  if (reader.len == 0 && !at_end()) return NEED;
  lua_pushliteral(L, "");
  return reader.len > 0;
}

/* A numeral as Lua's "n" reads one: spaces skipped, then the longest
** prefix that fits the numeral's shape (sign, "0x", digits, a decimal
** point, an exponent), at most 200 characters; the character after it
** stays unread.  Then it is converted, or the read fails. */
#define NUMERAL_MAX 200

typedef struct numeral_s {
  const char *d;
  size_t len, pos;
  int n, need;
  char text[NUMERAL_MAX + 1];
} numeral_t;

/* The character at pos, or EOF (and need set when more may come). */
static int peek(numeral_t *r) {
  if (r->pos < r->len) return (unsigned char)r->d[r->pos];
  if (!at_end()) r->need = 1;
  return EOF;
}

/* Takes the character at pos into the text; 0 once the text is full
** (the numeral is then invalid). */
static int take(numeral_t *r) {
  if (r->n >= NUMERAL_MAX) {
    r->text[0] = '\0';
    return 0;
  }
  r->text[r->n++] = r->d[r->pos++];
  return 1;
}

static int accept2(numeral_t *r, const char *set) {
  int c = peek(r);
  return c != EOF && (c == set[0] || c == set[1]) && take(r);
}

static int digits(numeral_t *r, int hex) {
  int count = 0, c;
  while ((c = peek(r)) != EOF && (hex ? isxdigit(c) : isdigit(c)) && take(r))
    count++;
  return count;
}

static int read_number(lua_State *L) {
  numeral_t r;
  r.d = data();
  r.len = reader.len;
  r.pos = 0;
  r.n = 0;
  r.need = 0;
  char point[2] = {localeconv()->decimal_point[0], '.'};
  int c, count = 0, hex = 0;
  while ((c = peek(&r)) != EOF && isspace(c)) r.pos++;
  accept2(&r, "-+");
  if (accept2(&r, "00")) {
    if (accept2(&r, "xX"))
      hex = 1;
    else
      count = 1;
  }
  count += digits(&r, hex);
  if (accept2(&r, point)) count += digits(&r, hex);
  if (count > 0 && accept2(&r, hex ? "pP" : "eE")) {
    accept2(&r, "-+");
    digits(&r, 0);
  }
  peek(&r); /* the look-ahead decides too: "12" may go on */
  if (r.need) return NEED;
  r.text[r.n] = '\0';
  arb_stdin_consume(&reader, r.pos);
  if (lua_stringtonumber(L, r.text) != 0) return 1;
  lua_pushnil(L);
  return 0;
}

/* The call ends: p leaves the queue; the next call reads again even
** after end of file (as after Lua's clearerr). */
static void leave(arb_proc_t *p) {
  arb_stdin_leave(&reader, p->pid);
  reader.eof = 0;
}

/* The format at stack index i.  A bad one raises when it is reached, as
** in Lua (a read that fails earlier never looks at it), after the caller
** has left the queue. */
static int read_format(lua_State *L, int i, arb_proc_t *p) {
  if (lua_type(L, i) == LUA_TNUMBER) {
    if (!lua_isinteger(L, i)) {
      leave(p);
      luaL_checkinteger(L, i);
    }
    size_t n = (size_t)lua_tointeger(L, i);
    return n == 0 ? test_eof(L) : read_chars(L, n);
  }
  const char *f = lua_type(L, i) == LUA_TSTRING ? lua_tostring(L, i) : NULL;
  if (f && *f == '*') f++;
  switch (f ? *f : 0) {
    case 'n': return read_number(L);
    case 'l': return read_line(L, 1);
    case 'L': return read_line(L, 0);
    case 'a': return read_all(L);
    default:
      leave(p);
      luaL_checkstring(L, i);
      return luaL_argerror(L, i, "invalid format");
  }
}

/* }====================================================================== */

/* {======================================================================
** Reading, waiting on the loop
** ======================================================================*/

static int read_step(lua_State *L, lua_KContext k);

static int read_k(lua_State *L, int status, lua_KContext k) {
  (void)status;
  arb_node_wait_done(larb_ctx(L)->node, larb_self(L));
  return read_step(L, k);
}

/* Waits until woken (more bytes, or our turn), then read_step again.  A
** caller that cannot yield (under a C call) waits blocking the host, as
** Lua's own read would; it can do so only as the head of the queue. */
static int wait_then_step(lua_State *L, lua_KContext k, int is_head) {
  if (!lua_isyieldable(L)) {
    if (!is_head)
      return luaL_error(L, "cannot wait for standard input here (another "
                           "process is reading it and this call cannot "
                           "yield)");
    arb_stdin_fill_now(&reader);
    return read_step(L, k);
  }
  larb_ctx_t *ctx = larb_ctx(L);
  if (arb_node_wait(ctx->node, larb_self(L), arb_rt_now(ctx->rt), -1))
    return luaL_error(L, "out of memory");
  return larb_yield(L, k, read_k);
}

/* What io.lines' iterator returns for the read's results (the nres
** values on top): them, if the first is not nil; else an error's
** message is raised, and end of file ends the loop. */
static int lines_result(lua_State *L, int nres) {
  if (lua_toboolean(L, -nres)) return nres;
  if (nres > 1) return luaL_error(L, "%s", lua_tostring(L, -nres + 1));
  return 0;
}

/* Stack: formats at first .. first + n - 1, then the results so far. */
static int read_step(lua_State *L, lua_KContext k) {
  int first = K_FIRST(k), n = K_N(k), mode = K_MODE(k);
  int top0 = first + n - 1; /* results start above this */
  arb_proc_t *p = larb_self(L);
  int head = arb_stdin_enter(&reader, p);
  if (head < 0) return luaL_error(L, "out of memory");
  if (!head) return wait_then_step(L, k, 0);
  int wanted = n > 0 ? n : 1, success = 1;
  while (success && lua_gettop(L) - top0 < wanted) {
    int i = first + (lua_gettop(L) - top0);
    int rc = n > 0 ? read_format(L, i, p) : read_line(L, 1);
    if (rc == NEED) {
      arb_stdin_want(&reader);
      return wait_then_step(L, k, 1);
    }
    success = rc;
  }
  leave(p);
  int err = reader.err;
  reader.err = 0;
  if (err) {
    lua_settop(L, top0);
    errno = -err;
    int nres = luaL_fileresult(L, 0, NULL);
    return mode == MODE_LINES ? lines_result(L, nres) : nres;
  }
  if (!success) {
    lua_pop(L, 1);
    lua_pushnil(L);
  }
  int nres = lua_gettop(L) - top0;
  return mode == MODE_LINES ? lines_result(L, nres) : nres;
}

/* Reads the formats from first to the top, on the loop. */
static int start_read(lua_State *L, int first, int mode) {
  int n = lua_gettop(L) - first + 1;
  luaL_checkstack(L, n + LUA_MINSTACK, "too many arguments");
  return read_step(L, K_MAKE(first, n, mode));
}

/* }====================================================================== */

/* {======================================================================
** The wrappers
** ======================================================================*/

/* Pushes the default input file. */
static void push_default_input(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, "_IO_input");
}

/* io.read(...) */
static int lio_read(lua_State *L) {
  push_default_input(L);
  int mine = is_stdin(L, -1) && on_loop(L);
  lua_pop(L, 1);
  return mine ? start_read(L, 1, MODE_READ) : call_original(L, "read");
}

/* file:read(...) */
static int lfile_read(lua_State *L) {
  return is_stdin(L, 1) && on_loop(L) ? start_read(L, 2, MODE_READ)
                                      : call_original(L, "fread");
}

/* The iterator of io.lines() and io.stdin:lines(...) over stdin:
** upvalues: the file, the count of formats, the formats. */
static int lines_iter(lua_State *L) {
  int n = (int)lua_tointeger(L, lua_upvalueindex(2));
  lua_settop(L, 0);
  luaL_checkstack(L, n + LUA_MINSTACK, "too many arguments");
  lua_pushvalue(L, lua_upvalueindex(1));
  for (int i = 1; i <= n; i++) lua_pushvalue(L, lua_upvalueindex(2 + i));
  if (is_stdin(L, 1) && on_loop(L)) return start_read(L, 2, MODE_LINES);
  return lines_result(L, call_original(L, "fread"));
}

/* The iterator over the file at 1 with the formats above it. */
static int push_lines_iter(lua_State *L) {
  int n = lua_gettop(L) - 1;
  luaL_argcheck(L, n <= MAXARGLINE, MAXARGLINE + 2, "too many arguments");
  lua_pushinteger(L, n);
  lua_insert(L, 2);
  lua_pushcclosure(L, lines_iter, n + 2);
  return 1;
}

/* io.lines([filename, ...]) */
static int lio_lines(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    if (lua_isnone(L, 1)) lua_pushnil(L); /* io.lines(): at least one */
    push_default_input(L);
    if (is_stdin(L, -1)) {
      lua_replace(L, 1);
      return push_lines_iter(L);
    }
    lua_pop(L, 1);
  }
  return call_original(L, "lines");
}

/* file:lines(...) */
static int lfile_lines(lua_State *L) {
  if (is_stdin(L, 1)) return push_lines_iter(L);
  return call_original(L, "flines");
}

/* }====================================================================== */

/* Keeps Lua's own function t[name] as originals[key] and puts fn there. */
static void wrap(lua_State *L, int t, const char *name, int originals,
                 const char *key, lua_CFunction fn) {
  lua_getfield(L, t, name);
  lua_setfield(L, originals, key);
  lua_pushcfunction(L, fn);
  lua_setfield(L, t, name);
}

void larb_stdin_install(lua_State *L) {
  int top = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "io") == LUA_TTABLE &&
      luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE &&
      lua_getfield(L, -1, "__index") == LUA_TTABLE) {
    int io = top + 2, methods = top + 4;
    lua_newtable(L);
    int originals = lua_gettop(L);
    wrap(L, io, "read", originals, "read", lio_read);
    wrap(L, io, "lines", originals, "lines", lio_lines);
    wrap(L, methods, "read", originals, "fread", lfile_read);
    wrap(L, methods, "lines", originals, "flines", lfile_lines);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ORIGINALS);
  }
  lua_settop(L, top);
}

void larb_stdin_close(void) {
  if (reader_state == 1) arb_stdin_close(&reader);
  reader_state = 0;
}
