/*
** lmbox.c: the mailbox half of the `process` module: subjects, send,
** receive and selectors.
**
** A selector is a userdata holding its entry count; each entry is three
** values: kind, source (subject or monitor userdata, or false for trapped
** exits) and mapping function (or false).  The first SEL_INLINE entries
** live in the userdata's own user values (2 onwards), so the common
** selectors (one source, or call's reply and DOWN) are one allocation; the
** rest go to a flat array in user value 1, made when a selector first
** needs it.  select compares the oldest sequence number of each source
** (O(entries)), takes that message and maps it.  Blocking marks the
** selected sources so that a send to any of them, and only to them, wakes
** the process.
**
** The functions here hold the selector's and the subject's metatables as
** upvalues 1 and 2: setting and checking them is then a pointer compare,
** not a registry lookup by name (a select or a new selector each did two).
*/
#include <stdint.h>

#include "larb.h"

enum { SEL_SUBJECT = 1, SEL_EXITS = 2, SEL_DOWN = 3 };

#define SELECTOR_MT lua_upvalueindex(1)
#define SUBJECT_MT lua_upvalueindex(2)

/* The value at idx if it is a userdata whose metatable is the upvalue mt,
** else NULL. */
static void *test_meta(lua_State *L, int idx, int mt) {
  void *p = lua_touserdata(L, idx);
  if (p == NULL || !lua_getmetatable(L, idx)) return NULL;
  int same = lua_rawequal(L, -1, mt);
  lua_pop(L, 1);
  return same ? p : NULL;
}

static int64_t now(lua_State *L) { return arb_rt_now(larb_ctx(L)->rt); }

/* Reads an optional timeout: -1 means forever. */
static int64_t opt_timeout(lua_State *L, int idx) {
  if (lua_isnoneornil(L, idx)) return -1;
  lua_Integer ms = luaL_checkinteger(L, idx);
  luaL_argcheck(L, ms >= 0, idx, "timeout must not be negative");
  return (int64_t)ms;
}

/* The deadline timeout ms from now, -1 for none; saturated, so a timeout
** of math.maxinteger waits (practically) forever instead of wrapping. */
static int64_t deadline_in(lua_State *L, int64_t ms) {
  if (ms < 0) return -1;
  int64_t t = now(L);
  return ms > INT64_MAX - t ? INT64_MAX : t + ms;
}

/* For a receive or select with a deadline (-1: none): sets *t to now and,
** if the deadline has passed, pushes nil, "timeout" and returns 1. */
static int expired(lua_State *L, int64_t deadline, int64_t *t) {
  *t = deadline >= 0 ? now(L) : 0;
  if (deadline < 0 || *t < deadline) return 0;
  lua_pushnil(L);
  lua_pushliteral(L, "timeout");
  return 1;
}

/* Blocks the caller (its sources already marked) until woken or the
** deadline, then continues in k. */
static int wait_until(lua_State *L, arb_proc_t *p, int64_t t,
                      int64_t deadline, lua_KFunction k) {
  if (arb_node_wait(larb_ctx(L)->node, p, t, deadline >= 0 ? deadline - t : -1))
    return luaL_error(L, "out of memory");
  return larb_yield(L, (lua_KContext)deadline, k);
}

/* {======================================================================
** Subjects
** ======================================================================*/

/* process.new_subject() -> subject owned by the caller */
static int lmbox_new_subject(lua_State *L) {
  arb_proc_t *p = larb_self(L);
  larb_subject_t *s = lua_newuserdatauv(L, sizeof(*s), 0);
  s->finalized = 0;
  lua_pushvalue(L, SUBJECT_MT);
  lua_setmetatable(L, -2);
  arb_subject_init(larb_ctx(L)->node, &s->sub, p);
  return 1;
}

/* process.subject_owner(subject) -> pid */
static int lmbox_subject_owner(lua_State *L) {
  larb_push_pid(L, arb_subject_owner(&larb_check_subject(L, 1)->sub));
  return 1;
}

/* process.send(subject, msg): never fails, never blocks. */
static int lmbox_send(lua_State *L) {
  larb_subject_t *s = larb_check_subject(L, 1);
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "message must not be nil");
  arb_proc_t *sender = arb_node_current(larb_ctx(L)->node);
  /* Code still running for a process that has ended (an xpcall handler or
  ** a __close during its unwinding) sends nothing after its DOWN. */
  if (sender && arb_proc_is_dead(sender))
    return luaL_error(L, "the calling process has exited");
  if (!arb_subject_owner_alive(&s->sub)) return 0; /* owner gone: dropped */
  arb_subject_send(larb_ctx(L)->node, &s->sub, larb_ref(L, 2));
  return 0;
}

static int receive_k(lua_State *L, int status, lua_KContext kctx);

/* Takes the oldest message of s, or arranges to wait for one. */
static int receive_step(lua_State *L, larb_subject_t *s, arb_proc_t *p,
                        int64_t deadline) {
  larb_ctx_t *ctx = larb_ctx(L);
  intptr_t payload;
  if (arb_subject_take(ctx->node, &s->sub, &payload) == 0) {
    larb_push_unref(L, payload);
    return 1;
  }
  int64_t t;
  if (expired(L, deadline, &t)) return 2;
  arb_subject_select(&s->sub, 1);
  return wait_until(L, p, t, deadline, receive_k);
}

static int receive_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  larb_subject_t *s = lua_touserdata(L, 1);
  arb_proc_t *p = larb_self(L);
  arb_subject_select(&s->sub, 0);
  arb_node_wait_done(larb_ctx(L)->node, p);
  return receive_step(L, s, p, (int64_t)kctx);
}

/* process.receive(subject [, timeout_ms]) -> msg | nil, "timeout" */
static int lmbox_receive(lua_State *L) {
  larb_subject_t *s = larb_check_subject(L, 1);
  int64_t timeout = opt_timeout(L, 2);
  arb_proc_t *p = larb_self(L);
  if (arb_subject_owner(&s->sub) != p->pid)
    return luaL_argerror(L, 1, "subject is owned by another process");
  lua_settop(L, 1);
  return receive_step(L, s, p, deadline_in(L, timeout));
}

static int subject_gc(lua_State *L) {
  larb_subject_t *s = lua_touserdata(L, 1);
  larb_ctx_t *ctx = larb_ctx(L);
  larb_forget_subject(ctx, s);
  if (ctx->node) arb_subject_fini(ctx->node, &s->sub);
  return 0;
}

static int subject_tostring(lua_State *L) {
  larb_subject_t *s = larb_check_subject(L, 1);
  arb_pid_t owner = arb_subject_owner(&s->sub);
  lua_pushfstring(L, "Subject<%I of <0.%d.%d>>",
                  (lua_Integer)arb_subject_id(&s->sub),
                  (int)arb_pid_slot(owner), (int)arb_pid_gen(owner));
  return 1;
}

/* A subject is one object for its whole life: equal only to itself. */
static int subject_eq(lua_State *L) {
  lua_pushboolean(L, lua_touserdata(L, 1) == lua_touserdata(L, 2));
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Selectors
** ======================================================================*/

/* Entries held in the selector's own user values; more go to the array. */
#define SEL_INLINE 2
enum { SEL_KIND = 0, SEL_SOURCE = 1, SEL_MAP = 2 };

typedef struct selector_s {
  lua_Integer n; /* entries */
} selector_t;

/* Pushes field f (SEL_KIND, SEL_SOURCE or SEL_MAP) of entry i (from 0) of
** the selector at sel; returns its type. */
static int entry_get(lua_State *L, int sel, lua_Integer i, int f) {
  if (i < SEL_INLINE) return lua_getiuservalue(L, sel, (int)(2 + i * 3 + f));
  lua_getiuservalue(L, sel, 1);
  int type = lua_rawgeti(L, -1, (i - SEL_INLINE) * 3 + f + 1);
  lua_remove(L, -2);
  return type;
}

/* Pops the value on top into field f of entry i of the selector at sel
** (whose array exists if i needs it). */
static void entry_set(lua_State *L, int sel, lua_Integer i, int f) {
  if (i < SEL_INLINE) {
    lua_setiuservalue(L, sel, (int)(2 + i * 3 + f));
    return;
  }
  lua_getiuservalue(L, sel, 1);
  lua_insert(L, -2);
  lua_rawseti(L, -2, (i - SEL_INLINE) * 3 + f + 1);
  lua_pop(L, 1);
}

static selector_t *check_selector(lua_State *L, int idx) {
  selector_t *sel = test_meta(L, idx, SELECTOR_MT);
  if (sel == NULL) luaL_typeerror(L, idx, LARB_SELECTOR);
  return sel;
}

/* process.new_selector() -> selector */
static int lmbox_new_selector(lua_State *L) {
  selector_t *sel = lua_newuserdatauv(L, sizeof(*sel), 1 + SEL_INLINE * 3);
  sel->n = 0;
  lua_pushvalue(L, SELECTOR_MT);
  lua_setmetatable(L, -2);
  return 1;
}

/* Adds (or, for a source already selected, replaces) an entry.  The
** selector is at 1; source at src (0: trapped exits); fn at fn_idx. */
static int add_entry(lua_State *L, int kind, int src, int fn_idx) {
  selector_t *sel = check_selector(L, 1);
  if (!lua_isnoneornil(L, fn_idx)) luaL_checktype(L, fn_idx, LUA_TFUNCTION);
  lua_settop(L, fn_idx);
  lua_Integer n = sel->n, at = n;
  for (lua_Integer i = 0; i < n; i++) {
    entry_get(L, 1, i, SEL_KIND);
    entry_get(L, 1, i, SEL_SOURCE);
    int same = lua_tointeger(L, -2) == kind &&
               (src ? lua_rawequal(L, -1, src) : 1);
    lua_pop(L, 2);
    if (same) {
      at = i;
      break;
    }
  }
  if (at >= SEL_INLINE && lua_getiuservalue(L, 1, 1) == LUA_TNIL) {
    lua_createtable(L, SEL_INLINE * 3, 0); /* may raise: nothing changed */
    lua_setiuservalue(L, 1, 1);
  }
  lua_settop(L, fn_idx);
  /* The map first: a new entry counts only once all three are written
  ** (growing the array may raise), a replaced one keeps kind and source. */
  if (lua_isnoneornil(L, fn_idx))
    lua_pushboolean(L, 0);
  else
    lua_pushvalue(L, fn_idx);
  entry_set(L, 1, at, SEL_MAP);
  if (src)
    lua_pushvalue(L, src);
  else
    lua_pushboolean(L, 0);
  entry_set(L, 1, at, SEL_SOURCE);
  lua_pushinteger(L, kind);
  entry_set(L, 1, at, SEL_KIND);
  if (at == n) sel->n = n + 1;
  lua_settop(L, 1);
  return 1;
}

/* selector:selecting(subject [, map_fn]) -> selector */
static int selector_selecting(lua_State *L) {
  larb_check_subject(L, 2);
  return add_entry(L, SEL_SUBJECT, 2, 3);
}

/* selector:selecting_trapped_exits([map_fn]) -> selector */
static int selector_selecting_trapped_exits(lua_State *L) {
  return add_entry(L, SEL_EXITS, 0, 2);
}

/* selector:selecting_process_down(monitor [, map_fn]) -> selector */
static int selector_selecting_process_down(lua_State *L) {
  larb_check_monitor(L, 2);
  return add_entry(L, SEL_DOWN, 2, 3);
}

/* Sequence number of the oldest message of the entry whose kind and
** source are at kind_idx and kind_idx + 1. */
static uint64_t entry_peek(lua_State *L, int kind, int src, arb_proc_t *p) {
  switch (kind) {
    case SEL_SUBJECT:
      return arb_subject_peek(&((larb_subject_t *)lua_touserdata(L, src))->sub);
    case SEL_EXITS:
      return arb_exits_peek(p);
    default:
      return arb_monitor_peek(&((larb_monitor_t *)lua_touserdata(L, src))->mon);
  }
}

/* Sets or clears the "selected" mark of every source of the selector at
** sel. */
static void mark_sources(lua_State *L, int sel, arb_proc_t *p, int on) {
  lua_Integer n = ((selector_t *)lua_touserdata(L, sel))->n;
  for (lua_Integer i = 0; i < n; i++) {
    entry_get(L, sel, i, SEL_KIND);
    entry_get(L, sel, i, SEL_SOURCE);
    int kind = (int)lua_tointeger(L, -2);
    if (kind == SEL_SUBJECT)
      arb_subject_select(&((larb_subject_t *)lua_touserdata(L, -1))->sub, on);
    else if (kind == SEL_DOWN)
      arb_monitor_select(&((larb_monitor_t *)lua_touserdata(L, -1))->mon, on);
    else if (on)
      arb_proc_select_exits(p);
    lua_pop(L, 2);
  }
}

/* Pushes the message of entry kind/src (taking it) as a Lua value. */
static void take_message(lua_State *L, int kind, int src, arb_proc_t *p) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (kind == SEL_SUBJECT) {
    intptr_t payload;
    arb_subject_take(ctx->node, &((larb_subject_t *)lua_touserdata(L, src))->sub,
                     &payload);
    larb_push_unref(L, payload);
    return;
  }
  arb_reason_t *reason;
  arb_pid_t pid;
  lua_createtable(L, 0, 3);
  if (kind == SEL_EXITS) {
    arb_exits_take(p, &pid, &reason);
  } else {
    larb_monitor_t *m = lua_touserdata(L, src);
    pid = arb_monitor_target(&m->mon);
    reason = arb_monitor_take(ctx->node, &m->mon);
    lua_pushvalue(L, src);
    lua_setfield(L, -2, "monitor");
  }
  larb_push_pid(L, pid);
  lua_setfield(L, -2, "pid");
  larb_push_reason(L, reason);
  lua_setfield(L, -2, "reason");
  arb_reason_release(ctx->node, reason);
}

static int select_k(lua_State *L, int status, lua_KContext kctx);

static int return_mapped(lua_State *L, int status, lua_KContext kctx) {
  (void)L;
  (void)status;
  (void)kctx;
  return 1;
}

/* Stack: 1 selector.  Takes the oldest matching message or waits for one
** until deadline (-1: forever). */
static int select_step(lua_State *L, arb_proc_t *p, int64_t deadline) {
  lua_Integer n = ((selector_t *)lua_touserdata(L, 1))->n, best = -1;
  uint64_t best_seq = UINT64_MAX;
  for (lua_Integer i = 0; i < n; i++) {
    entry_get(L, 1, i, SEL_KIND);
    entry_get(L, 1, i, SEL_SOURCE);
    int kind = (int)lua_tointeger(L, -2);
    if (kind != SEL_EXITS && ((kind == SEL_SUBJECT &&
         arb_subject_owner(&((larb_subject_t *)lua_touserdata(L, -1))->sub) !=
             p->pid) ||
        (kind == SEL_DOWN &&
         arb_monitor_owner(&((larb_monitor_t *)lua_touserdata(L, -1))->mon) !=
             p->pid)))
      return luaL_argerror(L, 1, kind == SEL_SUBJECT
                                     ? "selects a subject of another process"
                                     : "selects a monitor of another process");
    uint64_t seq = entry_peek(L, kind, lua_gettop(L), p);
    lua_pop(L, 2);
    if (seq < best_seq) {
      best_seq = seq;
      best = i;
    }
  }
  if (best >= 0) {
    entry_get(L, 1, best, SEL_MAP);    /* 2: map fn or false */
    entry_get(L, 1, best, SEL_KIND);   /* 3 */
    entry_get(L, 1, best, SEL_SOURCE); /* 4 */
    take_message(L, (int)lua_tointeger(L, 3), 4, p);
    lua_replace(L, 3);
    lua_settop(L, 3);
    if (!lua_toboolean(L, 2)) return 1;
    lua_callk(L, 1, 1, 0, return_mapped);
    return 1;
  }
  int64_t t;
  if (expired(L, deadline, &t)) return 2;
  mark_sources(L, 1, p, 1);
  return wait_until(L, p, t, deadline, select_k);
}

static int select_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_proc_t *p = larb_self(L);
  mark_sources(L, 1, p, 0);
  arb_node_wait_done(larb_ctx(L)->node, p);
  return select_step(L, p, (int64_t)kctx);
}

/* process.select(selector [, timeout_ms]) -> value | nil, "timeout" */
static int lmbox_select(lua_State *L) {
  check_selector(L, 1);
  int64_t timeout = opt_timeout(L, 2);
  arb_proc_t *p = larb_self(L);
  lua_settop(L, 1);
  return select_step(L, p, deadline_in(L, timeout));
}

/* }====================================================================== */

static const luaL_Reg mbox_funcs[] = {
    {"new_subject", lmbox_new_subject},
    {"subject_owner", lmbox_subject_owner},
    {"send", lmbox_send},
    {"receive", lmbox_receive},
    {"new_selector", lmbox_new_selector},
    {"select", lmbox_select},
    {NULL, NULL}};

static const luaL_Reg selector_methods[] = {
    {"selecting", selector_selecting},
    {"selecting_trapped_exits", selector_selecting_trapped_exits},
    {"selecting_process_down", selector_selecting_process_down},
    {NULL, NULL}};

/* Selector<n sources> */
static int selector_tostring(lua_State *L) {
  selector_t *sel = luaL_checkudata(L, 1, LARB_SELECTOR);
  lua_pushfstring(L, "Selector<%I sources>", sel->n);
  return 1;
}

static const luaL_Reg subject_meta[] = {{"__gc", subject_gc},
                                        {"__tostring", subject_tostring},
                                        {"__eq", subject_eq},
                                        {NULL, NULL}};
static const luaL_Reg selector_meta[] = {{"__tostring", selector_tostring},
                                         {NULL, NULL}};

void larb_open_mbox(lua_State *L) {
  larb_createmeta(L, LARB_SUBJECT, subject_meta, NULL);
  larb_createmeta(L, LARB_SELECTOR, selector_meta, NULL);
  luaL_getmetatable(L, LARB_SELECTOR);
  luaL_getmetatable(L, LARB_SUBJECT);
  /* The methods see the metatables as upvalues too (selector:selecting
  ** checks its selector). */
  lua_newtable(L);
  lua_pushvalue(L, -3);
  lua_pushvalue(L, -3);
  luaL_setfuncs(L, selector_methods, 2);
  lua_setfield(L, -3, "__index");
  luaL_setfuncs(L, mbox_funcs, 2);
}
