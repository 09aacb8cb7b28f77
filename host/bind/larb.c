/*
** larb.c: helpers every binding file uses: pids as interned userdata,
** references to Lua values held by the core, exit reasons, spawning.
*/
#include "larb.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h" /* arb_err_kind, arb_err_text: libuv codes */
#include "payload.h"

arb_proc_t *larb_self(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  /* Only the current process runs Lua, so L is its thread or a coroutine
  ** it made itself. */
  arb_proc_t *p = ctx->node ? arb_node_current(ctx->node) : NULL;
  if (p == NULL || ctx->current_co == NULL) {
    luaL_error(L, "not called from an arbor process");
    return NULL;
  }
  if (arb_proc_is_dead(p)) {
    /* Only reachable where a yield was impossible (a C boundary). */
    luaL_error(L, "the calling process has exited");
    return NULL;
  }
  return p;
}

int larb_yield(lua_State *L, lua_KContext kctx, lua_KFunction k) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (!lua_isyieldable(L)) {
    /* Lua called from C (a __tostring under tostring or a report's
    ** describe, a sort comparator) cannot block.  The caller has already
    ** set the process WAITING, with a wake timer: undo that before
    ** raising, or it runs on marked WAITING and a wake while it runs
    ** links it into the run queue it may already be in. */
    arb_proc_t *p = ctx->node ? arb_node_current(ctx->node) : NULL;
    if (p) arb_node_wait_cancel(ctx->node, p);
    if (L != ctx->current_co)
      return luaL_error(L, "cannot block here: not yieldable");
    return luaL_error(L, "attempt to yield across a C-call boundary");
  }
  /* A coroutine the process made: lua/arbor/coroutine.lua's resume
  ** passes the yield up to the process, and the resumption back down. */
  if (L != ctx->current_co) ctx->passing_up = L;
  return lua_yieldk(L, 0, kctx, k);
}

/* {======================================================================
** Pids: one userdata per pid while anyone holds it (a weak cache), so a
** pid works as a table key.  The cache is keyed by arb_pid_mix(pid), not
** the pid: see there why.
** ======================================================================*/

void larb_push_pid(lua_State *L, arb_pid_t pid) {
  larb_ctx_t *ctx = larb_ctx(L);
  lua_Integer key = (lua_Integer)arb_pid_mix(pid);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->pids_ref);
  if (lua_rawgeti(L, -1, key) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  arb_pid_t *ud = lua_newuserdatauv(L, sizeof(*ud), 0);
  *ud = pid;
  luaL_setmetatable(L, LARB_PID);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, key);
  lua_remove(L, -2);
}

/* The userdata at idx if its metatable is the one at address mt, else
** NULL: one pointer comparison instead of luaL_checkudata's lookup of the
** metatable by name. */
static void *test_type(lua_State *L, int idx, const void *mt) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  const void *actual = lua_topointer(L, -1);
  lua_pop(L, 1);
  return actual == mt ? p : NULL;
}

void larb_cache_metatables(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  luaL_getmetatable(L, LARB_SUBJECT);
  ctx->subject_mt = lua_topointer(L, -1);
  luaL_getmetatable(L, LARB_PID);
  ctx->pid_mt = lua_topointer(L, -1);
  luaL_getmetatable(L, LARB_MONITOR);
  ctx->monitor_mt = lua_topointer(L, -1);
  lua_pop(L, 3);
}

arb_pid_t larb_check_pid(lua_State *L, int idx) {
  arb_pid_t *p = test_type(L, idx, larb_ctx(L)->pid_mt);
  if (p == NULL) luaL_typeerror(L, idx, LARB_PID);
  return *p;
}

static int pid_tostring(lua_State *L) {
  arb_pid_t pid = larb_check_pid(L, 1);
  lua_pushfstring(L, "<0.%d.%d>", (int)arb_pid_slot(pid),
                  (int)arb_pid_gen(pid));
  return 1;
}

static int pid_eq(lua_State *L) {
  arb_pid_t *a = luaL_testudata(L, 1, LARB_PID);
  arb_pid_t *b = luaL_testudata(L, 2, LARB_PID);
  lua_pushboolean(L, a && b && *a == *b);
  return 1;
}

larb_subject_t *larb_test_subject(lua_State *L, int idx) {
  return test_type(L, idx, larb_ctx(L)->subject_mt);
}

/* Checking the metatable costs four API calls (~130 instructions, 17% of
** a message round trip); a subject checked in full before is known by
** its address (see subject_cache in larb.h). */
larb_subject_t *larb_check_subject(lua_State *L, int idx) {
  larb_ctx_t *ctx = larb_ctx(L);
  larb_subject_t *s = lua_touserdata(L, idx);
  if (s != NULL) {
    /* (A light userdata may hold any address: hits are full userdata.) */
    if (s == ctx->subject_cache[0] && lua_type(L, idx) == LUA_TUSERDATA)
      return s;
    if (s == ctx->subject_cache[1] && lua_type(L, idx) == LUA_TUSERDATA) {
      ctx->subject_cache[1] = ctx->subject_cache[0]; /* most recent first */
      ctx->subject_cache[0] = s;
      return s;
    }
    if (lua_getmetatable(L, idx)) {
      const void *mt = lua_topointer(L, -1);
      lua_pop(L, 1);
      if (mt == ctx->subject_mt) {
        if (!s->finalized) {
          ctx->subject_cache[1] = ctx->subject_cache[0];
          ctx->subject_cache[0] = s;
        }
        return s;
      }
    }
  }
  luaL_typeerror(L, idx, LARB_SUBJECT);
  return NULL;
}

void larb_forget_subject(larb_ctx_t *ctx, larb_subject_t *s) {
  s->finalized = 1;
  for (int i = 0; i < 2; i++)
    if (ctx->subject_cache[i] == s) ctx->subject_cache[i] = NULL;
}

larb_monitor_t *larb_check_monitor(lua_State *L, int idx) {
  larb_monitor_t *m = test_type(L, idx, larb_ctx(L)->monitor_mt);
  if (m == NULL) luaL_typeerror(L, idx, LARB_MONITOR);
  return m;
}

/* arbor.Error's __tostring: its message, one line; "error: kind" for an
** error made without one. */
static int error_tostring(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "message");
  if (!lua_isstring(L, -1)) {
    lua_getfield(L, 1, "kind");
    lua_pushfstring(L, "error: %s", luaL_optstring(L, -1, "unknown"));
  }
  return 1;
}

void larb_push_error_value(lua_State *L, const char *kind, const char *msg) {
  lua_createtable(L, 0, 2);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, LARB_ERROR);
}

int larb_push_error(lua_State *L, const char *kind, const char *msg) {
  lua_pushnil(L);
  larb_push_error_value(L, kind, msg);
  return 2;
}

/* Pushes the kind of rc: ours from err.h's map, libuv's as its POSIX
** name in lower case ("econnrefused", rt/fs.c's arb_err_kind). */
static void push_kind(lua_State *L, int rc) {
  char buf[32];
  const char *kind = arb_strkind(rc);
  lua_pushstring(L, kind ? kind : arb_err_kind(rc, buf));
}

int larb_fail(lua_State *L, int rc, const char *detail) {
  const char *msg = arb_err_is_ours(rc) ? arb_strerror(rc) : arb_err_text(rc);
  lua_pushnil(L);
  lua_createtable(L, 0, 3);
  push_kind(L, rc);
  lua_setfield(L, -2, "kind");
  if (detail)
    lua_pushfstring(L, "%s: %s", detail, msg);
  else
    lua_pushstring(L, msg);
  lua_setfield(L, -2, "message");
  luaL_setmetatable(L, LARB_ERROR);
  return 2;
}

int larb_fail_path(lua_State *L, int rc, const char *what, const char *path,
                   const char *to) {
  if (path && to)
    lua_pushfstring(L, "%s %s -> %s", what, path, to);
  else if (path)
    lua_pushfstring(L, "%s %s", what, path);
  else
    lua_pushstring(L, what);
  larb_fail(L, rc, lua_tostring(L, -1));
  if (path) {
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
  }
  if (path && to) {
    lua_pushstring(L, to);
    lua_setfield(L, -2, "to");
  }
  return 2;
}

/* arbor.core.error(t) -> t: t ({kind = string, message = string, any
** other fields}) made an arbor.Error, the one error type every module
** returns; for the modules in lua/. */
int larb_lua_error_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, lua_getfield(L, 1, "kind") == LUA_TSTRING, 1,
                   "table with a string kind");
  lua_pop(L, 1);
  lua_settop(L, 1);
  luaL_setmetatable(L, LARB_ERROR);
  return 1;
}

void larb_createmeta(lua_State *L, const char *name, const luaL_Reg *meta,
                     const luaL_Reg *methods) {
  luaL_newmetatable(L, name);
  luaL_setfuncs(L, meta, 0);
  if (methods) {
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

static const luaL_Reg error_meta[] = {{"__tostring", error_tostring},
                                      {NULL, NULL}};
static const luaL_Reg pid_meta[] = {
    {"__tostring", pid_tostring}, {"__eq", pid_eq}, {NULL, NULL}};

void larb_open_types(lua_State *L) {
  larb_createmeta(L, LARB_ERROR, error_meta, NULL);
  larb_createmeta(L, LARB_PID, pid_meta, NULL);
}

/* }====================================================================== */

/* {======================================================================
** References held by the core
** ======================================================================*/

/*
** A payload is a tagged intptr_t.  Integers that fit in 61 bits and
** booleans travel inside it (low bits 01 and 10): sending them touches no
** table.  Anything else is a slot of the values table (low bits 00),
** recycled through a C stack: one table write to store a value and one to
** clear it, where luaL_ref keeps its free list inside the table and needs
** several.
*/
#define TAG_REF 0
#define TAG_INT 1
#define TAG_BOOL 2
/* 3 (ARB_PAYLOAD_TAG_BYTES) is a byte payload made outside Lua
** (core/payload.h): it becomes one Lua string when received. */
#define INLINE_MAX ((lua_Integer)1 << 60)

/* Isolation (larb_push_copy, the deep copy of messages): lcopy.c. */

/* Stores the value at idx (a copy of it, for a table, when copy is set)
** and returns its payload. */
static intptr_t store(lua_State *L, int idx, int copy) {
  int t = lua_type(L, idx);
  if (t == LUA_TBOOLEAN)
    return (intptr_t)((lua_toboolean(L, idx) << 2) | TAG_BOOL);
  if (t == LUA_TNUMBER && lua_isinteger(L, idx)) {
    lua_Integer v = lua_tointeger(L, idx);
    if (v >= -INLINE_MAX && v < INLINE_MAX)
      return (intptr_t)(((uintptr_t)v << 2) | TAG_INT);
  }
  larb_ctx_t *ctx = larb_ctx(L);
  idx = lua_absindex(L, idx);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->values_ref);
  if (copy)
    larb_push_copy(L, idx);
  else
    lua_pushvalue(L, idx);
  int ref = ctx->nfree ? ctx->free_refs[--ctx->nfree] : ++ctx->next_ref;
  lua_rawseti(L, -2, ref);
  lua_pop(L, 1);
  return (intptr_t)ref << 2;
}

intptr_t larb_ref(lua_State *L, int idx) { return store(L, idx, 1); }

intptr_t larb_ref_fresh(lua_State *L, int idx) { return store(L, idx, 0); }

/* Pushes an inline payload; returns 0 for a table slot. */
static int push_inline(lua_State *L, intptr_t payload) {
  switch (payload & 3) {
    case TAG_INT:
      /* >> of a negative value is arithmetic on every compiler we build
      ** with (implementation-defined, not undefined). */
      lua_pushinteger(L, (lua_Integer)(payload >> 2));
      return 1;
    case TAG_BOOL:
      lua_pushboolean(L, (int)(payload >> 2));
      return 1;
  }
  return 0;
}

void larb_push_ref(lua_State *L, intptr_t ref) {
  if (push_inline(L, ref)) return;
  if (arb_payload_is_bytes(ref)) {
    size_t len;
    const char *data = arb_bytes_data(ref, &len);
    lua_pushlstring(L, data, len);
    return;
  }
  larb_ctx_t *ctx = larb_ctx(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->values_ref);
  lua_rawgeti(L, -1, (lua_Integer)(ref >> 2));
  /* The value stays for other readers (a reason goes to every link and
  ** monitor): each gets a copy of its own. */
  if (lua_type(L, -1) == LUA_TTABLE) {
    larb_push_copy(L, -1);
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
}

/* Remembers slot as free.  If the stack cannot grow the slot is simply
** not reused (it holds nil, so nothing leaks but an integer). */
static void recycle(larb_ctx_t *ctx, int slot) {
  if (ctx->nfree == ctx->free_cap) {
    int ncap = ctx->free_cap ? ctx->free_cap * 2 : 1024;
    int *bigger = realloc(ctx->free_refs, (size_t)ncap * sizeof(int));
    if (bigger == NULL) return;
    ctx->free_refs = bigger;
    ctx->free_cap = ncap;
  }
  ctx->free_refs[ctx->nfree++] = slot;
}

void larb_unref(lua_State *L, intptr_t ref) {
  if (arb_payload_is_bytes(ref)) {
    arb_bytes_free(ref);
    return;
  }
  if ((ref & 3) != TAG_REF) return;
  larb_ctx_t *ctx = larb_ctx(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->values_ref);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)(ref >> 2));
  lua_pop(L, 1);
  recycle(ctx, (int)(ref >> 2));
}

/* (bytes payload) -> string; under protection in push_bytes. */
static int push_bytes_unprotected(lua_State *L) {
  size_t len;
  const char *data = arb_bytes_data((intptr_t)lua_touserdata(L, 1), &len);
  lua_pushlstring(L, data, len);
  return 1;
}

/* Pushes a byte payload as a string and frees it, also when making the
** string runs out of memory (then the error goes on). */
static void push_bytes(lua_State *L, intptr_t payload) {
  if (!lua_checkstack(L, 3)) {
    arb_bytes_free(payload);
    luaL_error(L, "not enough memory");
  }
  lua_pushcfunction(L, push_bytes_unprotected);
  lua_pushlightuserdata(L, (void *)payload);
  int status = lua_pcall(L, 1, 1, 0);
  arb_bytes_free(payload);
  if (status != LUA_OK) lua_error(L);
}

void larb_push_unref(lua_State *L, intptr_t ref) {
  if (push_inline(L, ref)) return;
  if (arb_payload_is_bytes(ref)) {
    push_bytes(L, ref);
    return;
  }
  larb_ctx_t *ctx = larb_ctx(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->values_ref);
  lua_rawgeti(L, -1, (lua_Integer)(ref >> 2));
  lua_pushnil(L);
  lua_rawseti(L, -3, (lua_Integer)(ref >> 2));
  lua_remove(L, -2);
  recycle(ctx, (int)(ref >> 2));
}

/* The built-in reason a Lua value names, or NULL for any other value. */
static arb_reason_t *builtin_reason(lua_State *L, int idx) {
  if (lua_type(L, idx) != LUA_TSTRING) return NULL;
  const char *s = lua_tostring(L, idx);
  if (strcmp(s, "normal") == 0) return &arb_reason_normal;
  if (strcmp(s, "shutdown") == 0) return &arb_reason_shutdown;
  if (strcmp(s, "kill") == 0) return &arb_reason_kill;
  if (strcmp(s, "killed") == 0) return &arb_reason_killed;
  if (strcmp(s, "noproc") == 0) return &arb_reason_noproc;
  return NULL;
}

int larb_reason_kind(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  arb_reason_t *builtin = builtin_reason(L, idx);
  if (builtin) return builtin->kind;
  int kind = ARB_REASON_OTHER;
  if (lua_type(L, idx) == LUA_TTABLE) {
    lua_pushliteral(L, "shutdown");
    if (lua_rawget(L, idx) == LUA_TBOOLEAN && lua_toboolean(L, -1))
      kind = ARB_REASON_SHUTDOWN;
    lua_pop(L, 1);
  }
  return kind;
}

/* arbor.core.classify(reason) -> "normal" | "shutdown" | "abnormal": the
** one reading of exit reasons (a table with shutdown = true is a
** shutdown), for supervisor.lua and main.lua. */
int larb_lua_classify(lua_State *L) {
  luaL_checkany(L, 1);
  switch (larb_reason_kind(L, 1)) {
    case ARB_REASON_NORMAL:
      lua_pushliteral(L, "normal");
      break;
    case ARB_REASON_SHUTDOWN:
      lua_pushliteral(L, "shutdown");
      break;
    default:
      lua_pushliteral(L, "abnormal");
  }
  return 1;
}

arb_reason_t *larb_reason_from(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  arb_reason_t *builtin = builtin_reason(L, idx);
  if (builtin) return builtin;
  int kind = larb_reason_kind(L, idx);
  arb_reason_t *r = arb_reason_new(kind, 0);
  if (r == NULL) {
    luaL_error(L, "out of memory");
    return NULL;
  }
  r->payload = larb_ref(L, idx);
  return r;
}

void larb_push_reason(lua_State *L, const arb_reason_t *r) {
  if (r->payload) {
    larb_push_ref(L, r->payload);
    return;
  }
  static const char *const names[] = {"normal", "shutdown", "kill",
                                      "killed", "noproc", "error"};
  lua_pushstring(L, names[r->kind]);
}

/* }====================================================================== */

int larb_finish(lua_State *L, int nresults) {
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *p = arb_node_current(ctx->node);
  if (p && arb_proc_is_dead(p)) return larb_yield(L, 0, NULL);
  return nresults;
}

/* Pushes a thread for a new process: a pooled one, or a new one (which
** may raise: nothing has been made yet). */
static lua_State *push_thread(lua_State *L, larb_ctx_t *ctx) {
  if (ctx->npool == 0) {
    lua_State *co = lua_newthread(L);
    larb_set_ctx(co, ctx, 1); /* pooled threads keep the mark */
    return co;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->pool_ref);
  lua_rawgeti(L, -1, ctx->npool);
  lua_State *co = lua_tothread(L, -1);
  lua_pushnil(L);
  lua_rawseti(L, -3, ctx->npool--);
  lua_remove(L, -2);
  return co;
}

/* procs[slot] = thread: (thread, slot) -> (); run under protection, since
** growing the table may run out of memory. */
static int store_thread(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->procs_ref);
  lua_pushvalue(L, 1);
  lua_rawseti(L, -2, lua_tointeger(L, 2));
  return 0;
}

void larb_unspawn(lua_State *L, arb_proc_t *p) {
  arb_node_spawn_abort(larb_ctx(L)->node, p);
}

/* (pid) -> pid userdata; under protection in larb_push_spawned. */
static int push_pid_unprotected(lua_State *L) {
  larb_push_pid(L, (arb_pid_t)lua_tointeger(L, 1));
  return 1;
}

void larb_push_spawned(lua_State *L, arb_proc_t *p) {
  lua_pushcfunction(L, push_pid_unprotected);
  lua_pushinteger(L, (lua_Integer)p->pid);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    arb_node_spawn_abort(larb_ctx(L)->node, p);
    lua_error(L);
  }
}

/* Allocate, then commit: the thread and its stack space first (a raise
** there leaves nothing), then the process, then the thread's place in the
** procs table under protection; if that fails the process is taken back
** before the error goes on. */
arb_proc_t *larb_spawn(lua_State *L, int nargs) {
  larb_ctx_t *ctx = larb_ctx(L);
  lua_State *co = push_thread(L, ctx);
  if (!lua_checkstack(co, nargs + 1) || !lua_checkstack(L, 4))
    luaL_error(L, "out of memory");
  arb_proc_t *p = arb_node_spawn(ctx->node);
  if (p == NULL) luaL_error(L, "out of memory");
  lua_pushcfunction(L, store_thread);
  lua_pushvalue(L, -2);
  lua_pushinteger(L, (lua_Integer)arb_pid_slot(p->pid));
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    arb_node_spawn_abort(ctx->node, p);
    lua_error(L);
  }
  lua_pop(L, 1); /* the thread: procs anchors it now */
  lua_xmove(L, co, nargs + 1);
  p->data = co;
  return p;
}
