/*
** lsched.c: the scheduler glue between the core and Lua: running a
** process's slice (lua_resume of its coroutine), ending it, its crash
** report and exit reason, the pool of finished threads, and the
** callbacks the node (values freed, process ended, timer fired) and the
** runtime (resume, signal) call.
**
** Lua's garbage collector may run finalizers at any allocation, and our
** finalizers touch core lists; so nothing here allocates Lua memory from
** inside a core callback.  Work that would (starting the shutdown after
** main was killed by a signal) is deferred to the end of the slice.
**
** Must not depend on: how the host is set up (lhost.c) or which modules
** exist (lpreload.c).
*/
#include <signal.h>
#include <stdlib.h>

#include "alloc.h"
#include "lhost.h"

/* {======================================================================
** Callbacks from the core
** ======================================================================*/

static void free_value(void *ud, intptr_t ref) {
  larb_ctx_t *ctx = ud;
  larb_unref(ctx->L, ref);
}

static void proc_ended(void *ud, arb_proc_t *p) {
  larb_ctx_t *ctx = ud;
  lua_State *L = ctx->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->procs_ref);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)arb_pid_slot(p->pid));
  lua_pop(L, 1);
  if (p->pid == ctx->main_pid) {
    ctx->main_pid = ARB_PID_NONE;
    if (!ctx->shutting_down) {
      /* Killed by a signal (main's own return or raise is handled in
      ** end_process, which detaches its links first). */
      if (p->reason->kind != ARB_REASON_NORMAL) ctx->exit_code = 1;
      ctx->main_reason = arb_reason_retain(p->reason);
      ctx->shutting_down = -1; /* start at the end of this slice */
    }
  }
}

static void timer_fired(void *ud, arb_timer_id_t id, const arb_timer_t *t) {
  larb_ctx_t *ctx = ud;
  lua_State *L = ctx->L;
  if (t->kind != LARB_TIMER_SEND) return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->timers_ref);
  if (lua_rawgeti(L, -1, (lua_Integer)id) == LUA_TTABLE) {
    lua_rawgeti(L, -1, 1);
    larb_subject_t *s = lua_touserdata(L, -1);
    lua_rawgeti(L, -2, 2);
    /* copied when send_after stored it; only the timer holds it */
    arb_subject_send(ctx->node, &s->sub, larb_ref_fresh(L, -1));
    lua_pop(L, 2);
  }
  lua_pop(L, 1);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)id);
  lua_pop(L, 1);
}

/* }====================================================================== */

/* {======================================================================
** Running processes
** ======================================================================*/

/* Ends p with reason.  For main, its links are detached first and the
** ordered shutdown of the trees it started begins. */
static void end_process(larb_ctx_t *ctx, arb_proc_t *p, arb_reason_t *reason) {
  if (p->pid != ctx->main_pid) {
    arb_node_exit(ctx->node, p, reason);
    return;
  }
  uint32_t n = arb_links_of(p, NULL, 0);
  arb_pid_t *trees = n ? arb_malloc(n * sizeof(*trees)) : NULL;
  if (trees) {
    arb_links_of(p, trees, n);
    for (uint32_t i = 0; i < n; i++) arb_unlink(ctx->node, p, trees[i]);
  }
  ctx->shutting_down = 1;
  if (!arb_reason_is_clean(reason)) ctx->exit_code = 1;
  arb_node_exit(ctx->node, p, reason);
  larb_spawn_shutdown(ctx, ctx->L, trees, trees ? (int)n : 0);
  arb_free(trees, n * sizeof(*trees));
}

/* Calls fn(ud, co) on L under protection, co being the coroutine of a
** process that just crashed (its error value on top).  Returns 1 if fn
** ran to the end; 0 if it raised, as running out of memory does. */
static int pcall_on_crashed(lua_State *L, lua_CFunction fn, void *ud,
                            lua_State *co) {
  int top = lua_gettop(L), ok = 0;
  if (lua_checkstack(co, 1)) {
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    ok = lua_pcall(L, 2, 0, 0) == LUA_OK;
  }
  lua_settop(L, top);
  return ok;
}

/* fn for pcall_on_crashed: the crash report of process ud, whose
** coroutine ended with the error value on its top (left there: it becomes
** the exit reason).  Describing the value or building the traceback may
** run out of memory, hence the protection. */
static int report_crash_unprotected(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *p = lua_touserdata(L, 1);
  lua_State *co = lua_tothread(L, 2);
  if (!lua_checkstack(co, 1)) return luaL_error(L, "not enough memory");
  lua_pushvalue(co, -1);
  lua_xmove(co, L, 1);
  larb_log_crash(L, p->pid, p->pid == ctx->main_pid, -1, co);
  return 0;
}

static void report_crash(larb_ctx_t *ctx, arb_proc_t *p, lua_State *co) {
  /* A traceback costs more than the rest of a crash-restart cycle. */
  if (!larb_log_wants_crash(p->pid == ctx->main_pid)) return;
  if (!pcall_on_crashed(ctx->L, report_crash_unprotected, p, co)) {
    /* Out of memory: the report without the value's text. */
    larb_log_crash_text(p->pid, p->pid == ctx->main_pid, "crashed",
                        "(error could not be described: not enough memory)",
                        NULL);
  }
}

/* fn for pcall_on_crashed: stores in *ud the reason made from the error. */
static int reason_from_unprotected(lua_State *L) {
  arb_reason_t **out = lua_touserdata(L, 1);
  *out = larb_reason_from(lua_tothread(L, 2), -1);
  return 0;
}

/* The exit reason made from the error value on co's top; out of memory,
** a prepared "not enough memory" reason. */
static arb_reason_t *crash_reason(larb_ctx_t *ctx, lua_State *co) {
  arb_reason_t *r = NULL;
  if (!pcall_on_crashed(ctx->L, reason_from_unprotected, &r, co))
    r = arb_reason_retain(ctx->oom_reason);
  return r;
}

static int describe_reason_unprotected(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  larb_push_reason(L, ctx->main_reason);
  larb_log_main_exit(L, ctx->main_pid, -1);
  return 0;
}

/* Main was ended by an exit signal (a linked process failed, or a
** supervisor it started gave up). */
static void report_main_killed(larb_ctx_t *ctx) {
  lua_State *L = ctx->L;
  if (ctx->main_reason->kind == ARB_REASON_NORMAL) {
    arb_reason_release(ctx->node, ctx->main_reason);
    ctx->main_reason = NULL;
    return;
  }
  int top = lua_gettop(L);
  lua_pushcfunction(L, describe_reason_unprotected);
  if (lua_pcall(L, 0, 0, 0) != LUA_OK)
    larb_log_main_exit_text(ARB_PID_NONE, "(reason could not be described: "
                                          "not enough memory)");
  lua_settop(L, top);
  arb_reason_release(ctx->node, ctx->main_reason);
  ctx->main_reason = NULL;
}

/* Keeps a coroutine whose function has finished for a later spawn.  Called
** while it is still anchored in the procs table (so the collector cannot
** take it in between).  A function that returned (returned != 0) closed
** everything it had and left the thread at its base, ready for the next
** function (lua_resume starts one pushed there), so only a crashed one is
** reset: that runs its pending to-be-closed variables, outside every core
** iteration.  The reset also shrinks the stack, which the collector does
** for the others; it cost an eighth of a spawn+exit. */
static void pool_thread(larb_ctx_t *ctx, lua_State *co, int returned) {
  if (ctx->npool >= LARB_POOL_MAX) return;
  if (!returned && lua_resetthread(co) != LUA_OK) return;
  lua_State *L = ctx->L;
  if (lua_gethook(co) != NULL) larb_guard_reset_thread(ctx, co);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->pool_ref);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_rawseti(L, -2, ++ctx->npool);
  lua_pop(L, 1);
}

static void host_resume(void *ud, arb_proc_t *p) {
  larb_ctx_t *ctx = ud;
  lua_State *co = p->data;
  int nargs = 0, nres = 0;
  if (!(p->user_flags & LARB_STARTED)) {
    p->user_flags |= LARB_STARTED;
    nargs = lua_gettop(co) - 1;
  }
  ctx->current_co = co;
  larb_guard_slice_begins(ctx, co);
  int status = lua_resume(co, ctx->L, nargs, &nres);
  larb_guard_slice_ends(ctx, co);
  ctx->current_co = NULL;
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
  } else if (!arb_proc_is_dead(p)) {
    if (status == LUA_OK) {
      lua_pop(co, nres);
      pool_thread(ctx, co, 1);
      end_process(ctx, p, &arb_reason_normal);
    } else {
      /* The report and the reason are the host's work: --max-memory,
      ** which the failed process may have exhausted, does not apply. */
      size_t limit = larb_lua_limit_swap(0);
      report_crash(ctx, p, co);
      if (p->pid == ctx->main_pid) ctx->exit_code = 1;
      arb_reason_t *r = crash_reason(ctx, co);
      larb_lua_limit_swap(limit);
      pool_thread(ctx, co, 0);
      end_process(ctx, p, r);
      arb_reason_release(ctx->node, r);
    }
  }
  arb_node_release(ctx->node, p);
  if (ctx->shutting_down == -1) {
    ctx->shutting_down = 1;
    report_main_killed(ctx);
    larb_spawn_shutdown(ctx, ctx->L, NULL, 0);
  }
}

/* }====================================================================== */

/* SIGUSR1 reopens the log file (logrotate's convention); the others are
** the service's (lservice.c). */
static void host_signal(void *ud, int signum) {
  if (signum == SIGUSR1)
    larb_log_reopen();
  else
    larb_host_signal(ud, signum);
}

const arb_node_ops_t larb_sched_node_ops = {free_value, free_value,
                                            proc_ended, timer_fired};
const arb_rt_ops_t larb_sched_rt_ops = {host_resume, host_signal};
