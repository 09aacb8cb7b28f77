/*
** lprocess.c: the process half of the `process` module: spawning, links,
** exit signals, monitors, sleeping and timers.  Subjects, receive and
** selectors are in lmbox.c.
**
** Each function checks its arguments, calls the core and, where the call
** could have ended the caller (a signal that came back through a link),
** finishes through larb_finish so a dead process never runs on.
*/
#include "larb.h"
#include "ldist.h"

static int64_t now(lua_State *L) { return arb_rt_now(larb_ctx(L)->rt); }

static lua_Integer check_ms(lua_State *L, int idx) {
  lua_Integer ms = luaL_checkinteger(L, idx);
  luaL_argcheck(L, ms >= 0, idx, "milliseconds must not be negative");
  return ms;
}

/* Spawns the function and arguments that fill the stack and leaves the
** new pid on top.  The pid's handle is made first (a raise there leaves
** nothing behind), so that no allocation is left to fail after the spawn;
** only if the spawn's own allocations ran code that spawned (a finalizer)
** does the pid differ, and then it is made afterwards, under protection. */
static arb_proc_t *spawn_pushing_pid(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  int nargs = lua_gettop(L) - 1;
  arb_pid_t next = arb_node_next_pid(ctx->node);
  if (next != ARB_PID_NONE) {
    larb_push_pid(L, next);
    lua_insert(L, 1);
  }
  arb_proc_t *p = larb_spawn(L, nargs);
  if (p->pid != next) larb_push_spawned(L, p);
  return p;
}

/* process.spawn(fn, ...) -> pid */
static int lprocess_spawn(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  larb_self(L);
  spawn_pushing_pid(L);
  return 1;
}

/* process.spawn_link(fn, ...) -> pid */
static int lprocess_spawn_link(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  arb_proc_t *self = larb_self(L);
  arb_proc_t *p = spawn_pushing_pid(L);
  if (arb_link(larb_ctx(L)->node, self, p->pid) != 0) {
    larb_unspawn(L, p); /* the child never runs unlinked */
    return luaL_error(L, "out of memory");
  }
  return 1;
}

/* process.self() -> pid */
static int lprocess_self(lua_State *L) {
  larb_push_pid(L, larb_self(L)->pid);
  return 1;
}

/* process.is_alive(pid) -> boolean */
static int lprocess_is_alive(lua_State *L) {
  arb_pid_t pid = larb_check_pid(L, 1);
  lua_pushboolean(L, arb_node_lookup(larb_ctx(L)->node, pid) != NULL);
  return 1;
}

/* process.link(pid) -> boolean (false if pid is not alive) */
static int lprocess_link(lua_State *L) {
  arb_pid_t pid = larb_check_pid(L, 1);
  int rc = arb_link(larb_ctx(L)->node, larb_self(L), pid);
  if (rc == ARB_ENOMEM) return luaL_error(L, "out of memory");
  lua_pushboolean(L, rc == 0);
  return 1;
}

/* process.unlink(pid) */
static int lprocess_unlink(lua_State *L) {
  arb_pid_t pid = larb_check_pid(L, 1);
  arb_unlink(larb_ctx(L)->node, larb_self(L), pid);
  return 0;
}

/* process.trap_exits(boolean) */
static int lprocess_trap_exits(lua_State *L) {
  luaL_checktype(L, 1, LUA_TBOOLEAN);
  arb_proc_t *p = larb_self(L);
  arb_proc_trap_exits(p, lua_toboolean(L, 1));
  return 0;
}

/* process.exit(pid, reason): sends an exit signal. */
static int lprocess_exit(lua_State *L) {
  arb_pid_t pid = larb_check_pid(L, 1);
  luaL_argexpected(L, !lua_isnoneornil(L, 2), 2, "exit reason");
  arb_proc_t *self = larb_self(L);
  larb_ctx_t *ctx = larb_ctx(L);
  arb_reason_t *r = larb_reason_from(L, 2);
  arb_signal_exit(ctx->node, self->pid, pid, r);
  arb_reason_release(ctx->node, r);
  return larb_finish(L, 0);
}

/* process.kill(pid): the untrappable "kill"; the victim ends "killed". */
static int lprocess_kill(lua_State *L) {
  arb_pid_t pid = larb_check_pid(L, 1);
  arb_proc_t *self = larb_self(L);
  arb_signal_exit(larb_ctx(L)->node, self->pid, pid, &arb_reason_kill);
  return larb_finish(L, 0);
}

/* {======================================================================
** Monitors
** ======================================================================*/

/* process.monitor(pid) -> monitor */
static int lprocess_monitor(lua_State *L) {
  arb_pid_t pid = larb_dist_monitor_target(L, 1); /* a BEAM pid too */
  arb_proc_t *self = larb_self(L);
  larb_monitor_t *m = lua_newuserdatauv(L, sizeof(*m), 0);
  lua_pushvalue(L, lua_upvalueindex(1)); /* the monitor metatable */
  lua_setmetatable(L, -2);
  arb_monitor_init(larb_ctx(L)->node, &m->mon, self, pid);
  return 1;
}

/* process.demonitor(monitor): also drops a DOWN already queued. */
static int lprocess_demonitor(lua_State *L) {
  larb_monitor_t *m = larb_check_monitor(L, 1);
  arb_monitor_fini(larb_ctx(L)->node, &m->mon);
  return 0;
}

static int monitor_gc(lua_State *L) {
  larb_monitor_t *m = lua_touserdata(L, 1);
  larb_ctx_t *ctx = larb_ctx(L);
  if (ctx->node) arb_monitor_fini(ctx->node, &m->mon);
  return 0;
}

static int monitor_tostring(lua_State *L) {
  larb_monitor_t *m = larb_check_monitor(L, 1);
  arb_pid_t target = arb_monitor_target(&m->mon);
  lua_pushfstring(L, "Monitor<%I of <0.%d.%d>>",
                  (lua_Integer)arb_monitor_id(&m->mon),
                  (int)arb_pid_slot(target), (int)arb_pid_gen(target));
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Sleeping and timers
** ======================================================================*/

static int sleep_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *p = larb_self(L);
  int timed_out = arb_proc_timed_out(p);
  arb_node_wait_done(ctx->node, p);
  if (timed_out) return 0;
  /* Woken early: wait out the rest (kctx is the deadline, or -1). */
  int64_t deadline = (int64_t)kctx, t = now(L);
  if (deadline >= 0 && t >= deadline) return 0;
  if (arb_node_wait(ctx->node, p, t, deadline < 0 ? -1 : deadline - t))
    return luaL_error(L, "out of memory");
  return larb_yield(L, kctx, sleep_k);
}

/* process.sleep(ms) */
static int lprocess_sleep(lua_State *L) {
  lua_Integer ms = check_ms(L, 1);
  arb_proc_t *p = larb_self(L);
  int64_t t = now(L);
  if (arb_node_wait(larb_ctx(L)->node, p, t, ms))
    return luaL_error(L, "out of memory");
  int64_t deadline = ms > INT64_MAX - t ? INT64_MAX : t + ms; /* no wrap */
  return larb_yield(L, (lua_KContext)deadline, sleep_k);
}

/* process.sleep_forever() */
int larb_sleep_forever(lua_State *L) {
  arb_proc_t *p = larb_self(L);
  arb_node_wait(larb_ctx(L)->node, p, now(L), -1);
  return larb_yield(L, (lua_KContext)-1, sleep_k);
}

/* timers[id] = entry: (id, entry) -> (); under protection in send_after,
** since growing the table may run out of memory. */
static int store_timer_entry(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, larb_ctx(L)->timers_ref);
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, lua_tointeger(L, 1));
  return 0;
}

/* Timer<id> */
static int timer_tostring(lua_State *L) {
  arb_timer_id_t id = *(arb_timer_id_t *)luaL_checkudata(L, 1, LARB_TIMER);
  lua_pushfstring(L, "Timer<%I>", (lua_Integer)id);
  return 1;
}

/* process.send_after(subject, ms, msg) -> timer */
static int lprocess_send_after(lua_State *L) {
  larb_check_subject(L, 1);
  lua_Integer ms = check_ms(L, 2);
  luaL_argcheck(L, !lua_isnoneornil(L, 3), 3, "message must not be nil");
  larb_self(L);
  larb_ctx_t *ctx = larb_ctx(L);
  lua_settop(L, 3);
  /* Allocate, then commit: the entry and the handle first (a raise
  ** leaves nothing), then the timer, then the entry in the timers table
  ** under protection (undone by cancelling the timer). */
  lua_createtable(L, 2, 0);             /* 4: {subject, message} */
  lua_pushvalue(L, 1);
  lua_rawseti(L, 4, 1);
  larb_push_copy(L, 3); /* isolated from the sender's later changes */
  lua_rawseti(L, 4, 2);
  arb_timer_id_t *ud = lua_newuserdatauv(L, sizeof(*ud), 0); /* 5 */
  *ud = 0;
  luaL_setmetatable(L, LARB_TIMER);
  luaL_checkstack(L, 3, NULL);
  arb_timer_id_t id =
      arb_node_timer_start(ctx->node, now(L), ms, LARB_TIMER_SEND, 0, 0);
  if (id == 0) return luaL_error(L, "out of memory");
  lua_pushcfunction(L, store_timer_entry);
  lua_pushinteger(L, (lua_Integer)id);
  lua_pushvalue(L, 4);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    arb_node_timer_cancel(ctx->node, id, now(L), NULL, NULL);
    return lua_error(L);
  }
  *ud = id;
  return 1;
}

/* process.cancel_timer(timer) -> ms_left | false */
static int lprocess_cancel_timer(lua_State *L) {
  arb_timer_id_t id = *(arb_timer_id_t *)luaL_checkudata(L, 1, LARB_TIMER);
  larb_ctx_t *ctx = larb_ctx(L);
  int64_t left;
  if (arb_node_timer_cancel(ctx->node, id, now(L), &left, NULL) != 0) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->timers_ref);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)id);
  lua_pop(L, 1);
  lua_pushinteger(L, (lua_Integer)left);
  return 1;
}

/* }====================================================================== */

static const luaL_Reg process_funcs[] = {
    {"spawn", lprocess_spawn},
    {"spawn_link", lprocess_spawn_link},
    {"self", lprocess_self},
    {"is_alive", lprocess_is_alive},
    {"link", lprocess_link},
    {"unlink", lprocess_unlink},
    {"trap_exits", lprocess_trap_exits},
    {"exit", lprocess_exit},
    {"kill", lprocess_kill},
    {"monitor", lprocess_monitor},
    {"demonitor", lprocess_demonitor},
    {"sleep", lprocess_sleep},
    {"sleep_forever", larb_sleep_forever},
    {"send_after", lprocess_send_after},
    {"cancel_timer", lprocess_cancel_timer},
    {NULL, NULL}};

static const luaL_Reg monitor_meta[] = {{"__gc", monitor_gc},
                                        {"__tostring", monitor_tostring},
                                        {NULL, NULL}};
static const luaL_Reg timer_meta[] = {{"__tostring", timer_tostring},
                                      {NULL, NULL}};

int larb_open_process(lua_State *L) {
  larb_createmeta(L, LARB_MONITOR, monitor_meta, NULL);
  larb_createmeta(L, LARB_TIMER, timer_meta, NULL);
  /* The functions hold the monitor metatable as upvalue 1: monitor sets
  ** it without looking it up by name. */
  luaL_newlibtable(L, process_funcs);
  luaL_getmetatable(L, LARB_MONITOR);
  luaL_setfuncs(L, process_funcs, 1);
  larb_open_mbox(L);
  return 1;
}
