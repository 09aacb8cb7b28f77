/*
** lguard.c: what keeps user Lua code from taking the host down from the
** places a yield cannot reach.
**
** It owns:
** - preemption by time: a process thread runs with no hook at all (Lua
**   then skips its per-instruction hook dispatch); a periodic signal
**   (host/rt/tick.c) that finds the same slice still running a whole
**   period later sets a count hook on the innermost running thread, and
**   that hook yields.  The innermost thread is tracked by the scheduler
**   and by arbor.core.resume, which lua/arbor/coroutine.lua's
**   coroutine.resume uses;
** - the runaway budget for Lua code that runs
**   where it cannot be preempted (called back from C: a table.sort
**   comparator, a string.gsub callback, a metamethod, __gc).  Such code
**   is ended, with its process, once it has run for the runaway limit,
**   or at once when SIGINT or SIGTERM is pending;
** - pcall, xpcall and the process side of coroutine.resume, which give
**   back an error as usual except when the process itself has ended
**   meanwhile (killed by the budget, or process.kill(self()) from inside
**   a C callback): then the error goes on up, so a dead process stops at
**   once instead of running on and sending after its DOWN;
** - debug.sethook and debug.gethook for processes: a user hook is
**   dispatched by the preemption hook, so setting one never switches
**   preemption off (and a pooled thread gets the plain hook back);
** - larb_tostring_safe: a value's text for reports, which never raises,
**   never yields and never hangs, whatever its __tostring does;
** - finalizers: Lua runs __gc with hooks off, so setmetatable wraps a Lua
**   __gc to run it where the runaway limit applies;
** - the host's own state out of Lua's reach: an arbor handle (a userdata
**   whose registered metatable is named "arbor.*" or "dist.*") shows
**   getmetatable its type name, not its metatable, since
**   `getmetatable(subject).__gc = nil` let the collector free a subject
**   the core still pointed to; and the debug library's doors to the same
**   state (getregistry, the metatables and user values of handles, the
**   upvalues of C functions, the locals of C frames) are shut.  See
**   docs/reference.md, "Preemption, and what stays uninterruptible".
**
** It depends on larb.h, the rt's signal flag and tick; nothing in the
** core.  Everything here runs on the host's one thread; the few fields
** the tick's signal handler reads or writes are volatile and written
** before the code that depends on them (the handler interrupts this
** thread, it never runs beside it).
*/
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "larb.h"
#include "tick.h"

/* What this file keeps, its own and not larb_ctx_t's (one host per
** process, as lservice.c's service state). */
static struct larb_guard_s {
  int hooks_ref;            /* weak table: thread -> user hook entry */
  int64_t slice_started;    /* ms: first unpreemptable hook of this slice */
  int64_t runaway_limit_ms; /* see LARB_RUNAWAY_LIMIT_MS */
  int describe_depth;       /* nested larb_tostring_safe calls */
  long describe_steps;      /* instructions the outermost one has run */
  int64_t gc_started;       /* ms: the running guarded finalizer began */
} guard = {LUA_NOREF, 0, LARB_RUNAWAY_LIMIT_MS, 0, 0, 0};

/* Shared with the tick's signal handler. */
static struct larb_slice_s {
  /* The innermost thread running process code now (the process's own,
  ** or a coroutine it resumed); NULL between slices. */
  lua_State *volatile running;
  /* The thread the tick hooked and nobody has unhooked yet, or NULL. */
  lua_State *volatile hooked;
  volatile sig_atomic_t seq;      /* slices begun, wrapping */
  volatile sig_atomic_t seen_seq; /* seq at the previous tick */
  volatile sig_atomic_t due;      /* a user-hooked thread must yield */
  /* lua_sethook walks the thread's whole call chain (to set each Lua
  ** frame's trap), so on a very deep stack hooking it costs more than a
  ** slice.  A thread whose hooking cost over a tenth of a period goes
  ** to "deep mode" instead: a count hook of LARB_BUDGET instructions
  ** that stays set (no walk per slice), until its stack is shallow
  ** again (see leave_deep_mode). */
  lua_State *volatile deep_pending;
} slice;

static void gc_hook(lua_State *L, lua_Debug *ar);
#define DESCRIBE_STEP 1000

/* Call levels below which a thread in deep mode goes back to the tick:
** walking this many frames costs a small part of a period. */
#define DEEP_LEAVE_LEVEL 2000

static int64_t monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts); /* async-signal-safe */
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* {======================================================================
** Clocks and the runaway check
** ======================================================================*/

static int64_t monotonic_ms(void) { return monotonic_ns() / 1000000; }

/* The tick (signal context): a slice that was already running at the
** previous tick has run a whole period, so its innermost thread gets a
** count hook that fires at its next instruction.  A thread with a user
** hook keeps it; the flag makes its dispatcher yield instead.  Returns 0
** (stop ticking) when it falls between slices: the next slice arms it
** again, so an idle host takes one tick after its last slice, no more. */
static int on_tick(void) {
  lua_State *L = slice.running;
  if (L == NULL) return 0;
  sig_atomic_t seq = slice.seq;
  if (seq != slice.seen_seq) {
    slice.seen_seq = seq;
    return 1;
  }
  if (slice.hooked == L) return 1;
  if (lua_gethook(L) != NULL) {
    slice.due = 1;
    return 1;
  }
  slice.hooked = L;
  int64_t t0 = monotonic_ns();
  lua_sethook(L, larb_preempt_hook, LUA_MASKCOUNT, 1);
  int64_t walk_ns = monotonic_ns() - t0;
  if (walk_ns * 10 > (int64_t)LARB_SLICE_US * 1000) slice.deep_pending = L;
  return 1;
}

/* Is L in deep mode: the plain LARB_BUDGET count hook, no user hook? */
static int in_deep_mode(lua_State *L) {
  return lua_gethook(L) == larb_preempt_hook &&
         lua_gethookmask(L) == LUA_MASKCOUNT &&
         lua_gethookcount(L) == LARB_BUDGET && L != slice.hooked;
}

/* A thread in deep mode whose stack is shallow again goes back to the
** tick (taking a hook off walks nothing). */
static void leave_deep_mode(lua_State *L) {
  lua_Debug ar;
  if (in_deep_mode(L) && !lua_getstack(L, DEEP_LEAVE_LEVEL, &ar))
    lua_sethook(L, NULL, 0, 0);
}

/* Takes the tick's hook off the thread it was set on. */
static void unhook_tick(void) {
  lua_State *L = slice.hooked;
  if (L == NULL) return;
  slice.hooked = NULL;
  lua_sethook(L, NULL, 0, 0);
}

void larb_guard_slice_begins(larb_ctx_t *ctx, lua_State *co) {
  (void)ctx;
  guard.slice_started = 0;
  slice.due = 0;
  slice.seq++;
  slice.running = co; /* before arming: the first tick sees a new slice */
  arb_tick_arm();
}

void larb_guard_slice_ends(larb_ctx_t *ctx, lua_State *co) {
  (void)ctx;
  slice.running = NULL;
  unhook_tick();
  if (lua_gethook(co) != NULL) leave_deep_mode(co);
}

/* arbor.core.resume(co, ...) -> up, then what coroutine.resume returns.
** up is true when co yielded for the scheduler (preempted, or blocked in
** a receive or sleep) rather than to its resumer: the resumer passes
** that on up (lua/arbor/coroutine.lua).  While co runs it is the thread
** the tick hooks. */
static int guard_resume(lua_State *L) {
  lua_State *co = lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "coroutine");
  int narg = lua_gettop(L) - 1;
  if (co == L) { /* lua_resume would leave its message on our own stack */
    lua_pushboolean(L, 0);
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume non-suspended coroutine");
    return 3;
  }
  if (lua_status(co) == LUA_OK && lua_gettop(co) == 0) {
    lua_pushboolean(L, 0);
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot resume dead coroutine");
    return 3;
  }
  if (!lua_checkstack(co, narg)) {
    lua_pushboolean(L, 0);
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "too many arguments to resume");
    return 3;
  }
  lua_xmove(L, co, narg);
  lua_State *outer = slice.running;
  if (outer != NULL) slice.running = co;
  /* Resumed by a finalizer outside any slice (at exit, say): no tick
  ** watches it, so it runs under the finalizer's own time limit. */
  int gc_watch = outer == NULL && guard.gc_started != 0 &&
                 lua_gethook(co) == NULL;
  if (gc_watch) lua_sethook(co, gc_hook, LUA_MASKCOUNT, DESCRIBE_STEP);
  larb_ctx_t *ctx = larb_ctx(L);
  ctx->passing_up = NULL;
  int nres;
  int status = lua_resume(co, L, narg, &nres);
  int up = status == LUA_YIELD && ctx->passing_up == co;
  ctx->passing_up = NULL;
  if (outer != NULL) {
    slice.running = outer;
    if (slice.hooked == co) unhook_tick();
    if (lua_gethook(co) != NULL) leave_deep_mode(co);
  }
  if (gc_watch) lua_sethook(co, NULL, 0, 0);
  if (status == LUA_OK || status == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 2)) {
      lua_pop(co, nres);
      lua_pushboolean(L, 0);
      lua_pushboolean(L, 0);
      lua_pushliteral(L, "too many results to resume");
      return 3;
    }
    lua_pushboolean(L, up);
    lua_pushboolean(L, 1);
    lua_xmove(co, L, nres);
    return nres + 2;
  }
  lua_pushboolean(L, 0);
  lua_pushboolean(L, 0);
  lua_xmove(co, L, 1);
  return 3;
}

/* The current process, if L runs its code and it has ended. */
static int self_has_ended(larb_ctx_t *ctx) {
  arb_proc_t *p = ctx->node ? arb_node_current(ctx->node) : NULL;
  return ctx->current_co != NULL && p != NULL && arb_proc_is_dead(p);
}

/* Ends the current process from code that cannot yield: reports it, puts
** it through its exit (links, monitors, the registry), then raises so the
** C function that called back into Lua unwinds.  The guarded pcall and
** coroutine.resume let that error through, so nothing catches it for
** good; the scheduler finds the process dead when its resume returns. */
static void end_runaway(lua_State *L, larb_ctx_t *ctx, const char *why) {
  arb_proc_t *p = arb_node_current(ctx->node);
  if (!arb_proc_is_dead(p)) {
    if (larb_log_wants_crash(p->pid == ctx->main_pid))
      larb_log_crash_text(p->pid, 0, "ended", why, NULL);
    arb_node_exit(ctx->node, p, ctx->runaway_reason);
  }
  luaL_error(L, "%s", why);
}

/* Called from the hook when the running code cannot yield. */
static void check_runaway(lua_State *L, larb_ctx_t *ctx) {
  if (self_has_ended(ctx)) {
    /* Dead already (the budget fired, or it killed itself from a C
    ** callback) and still running Lua: unwind again. */
    luaL_error(L, "the calling process has exited");
    return;
  }
  if (arb_rt_stop_requested()) {
    end_runaway(L, ctx,
                "runaway: SIGINT or SIGTERM arrived while it ran code that "
                "cannot be preempted");
    return;
  }
  int64_t t = monotonic_ms();
  if (guard.slice_started == 0) {
    guard.slice_started = t;
    return;
  }
  if (t - guard.slice_started >= guard.runaway_limit_ms) {
    char why[200];
    snprintf(why, sizeof(why),
             "runaway: ran %lld ms without yielding, inside a call from C "
             "that cannot be preempted (a sort comparator, a gsub callback, "
             "a metamethod or __gc)",
             (long long)(t - guard.slice_started));
    end_runaway(L, ctx, why);
  }
}

/* }====================================================================== */

/* {======================================================================
** The preemption hook, and user hooks set with debug.sethook
** ======================================================================*/

static const char *const hook_names[] = {"call", "return", "line", "count",
                                         "tail call"};

/* Preempts the running process if Lua allows a yield here; otherwise
** counts toward the runaway limit. */
static void preempt(lua_State *L, larb_ctx_t *ctx) {
  if (!lua_isyieldable(L)) {
    check_runaway(L, ctx);
    return;
  }
  if (L != ctx->current_co) ctx->passing_up = L;
  lua_yield(L, 0);
}

/* The user hook of thread L: pushes its entry table ({fn, mask, count,
** user_acc, preempt_acc}) or nothing and returns 0. */
static int push_user_hook(lua_State *L) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, guard.hooks_ref);
  lua_pushthread(L);
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 2);
    return 0;
  }
  lua_remove(L, -2);
  return 1;
}

static lua_Integer entry_int(lua_State *L, int entry, int k) {
  lua_rawgeti(L, entry, k);
  lua_Integer v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

static void set_entry_int(lua_State *L, int entry, int k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_rawseti(L, entry, k);
}

enum { E_FN = 1, E_MASK, E_COUNT, E_USER_ACC, E_PREEMPT_ACC };

static void call_user_hook(lua_State *L, int entry, lua_Debug *ar) {
  lua_rawgeti(L, entry, E_FN);
  lua_pushstring(L, hook_names[ar->event]);
  if (ar->currentline >= 0)
    lua_pushinteger(L, ar->currentline);
  else
    lua_pushnil(L);
  lua_call(L, 2, 0);
}

/* Slow path: the thread has a user hook (or inherited a hooked mask from
** the thread that made it). */
static void hook_with_user(lua_State *L, larb_ctx_t *ctx, lua_Debug *ar) {
  if (!push_user_hook(L)) {
    if (ar->event == LUA_HOOKCOUNT && in_deep_mode(L)) {
      preempt(L, ctx); /* deep mode: every LARB_BUDGET instructions */
      return;
    }
    /* A coroutine made by a hooked thread inherits its C hook, not its
    ** Lua hook (stock Lua's hookf finds no entry either): no hook. */
    lua_sethook(L, NULL, 0, 0);
    if (slice.due) {
      slice.due = 0;
      preempt(L, ctx);
    }
    return;
  }
  int entry = lua_gettop(L);
  int period = lua_gethookcount(L);
  int mask = (int)entry_int(L, entry, E_MASK);
  if (ar->event != LUA_HOOKCOUNT) {
    if (ar->event == LUA_HOOKLINE) lua_getinfo(L, "l", ar);
    call_user_hook(L, entry, ar);
    lua_pop(L, 1);
    return;
  }
  int yield_now = 0;
  lua_Integer pre = entry_int(L, entry, E_PREEMPT_ACC) + period;
  if (pre >= LARB_BUDGET || slice.due) {
    pre = 0;
    slice.due = 0;
    yield_now = 1;
  }
  set_entry_int(L, entry, E_PREEMPT_ACC, pre);
  if (mask & LUA_MASKCOUNT) {
    lua_Integer count = entry_int(L, entry, E_COUNT);
    lua_Integer acc = entry_int(L, entry, E_USER_ACC) + period;
    if (acc >= count) {
      acc -= count;
      set_entry_int(L, entry, E_USER_ACC, acc);
      call_user_hook(L, entry, ar);
    } else {
      set_entry_int(L, entry, E_USER_ACC, acc);
    }
  }
  lua_pop(L, 1);
  if (yield_now) preempt(L, ctx);
}

/* The tick's hook fired on the thread it was set on. */
static void tick_preempt(lua_State *L, larb_ctx_t *ctx) {
  if (!lua_isyieldable(L)) {
    /* Code called back from C: it cannot yield, so it is timed against
    ** the runaway limit, looked at every LARB_BUDGET instructions. */
    lua_sethook(L, larb_preempt_hook, LUA_MASKCOUNT, LARB_BUDGET);
    check_runaway(L, ctx);
    return;
  }
  if (slice.deep_pending == L) {
    /* Hooking it cost over a tenth of a period: it keeps a count hook
    ** from now on (this sethook walks once more; leaving walks none). */
    slice.deep_pending = NULL;
    slice.hooked = NULL;
    lua_sethook(L, larb_preempt_hook, LUA_MASKCOUNT, LARB_BUDGET);
  } else {
    unhook_tick();
  }
  if (L != ctx->current_co) ctx->passing_up = L;
  lua_yield(L, 0);
}

void larb_preempt_hook(lua_State *L, lua_Debug *ar) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (ctx->current_co == NULL) return; /* the host's own calls */
  if (L == slice.hooked && ar->event == LUA_HOOKCOUNT) {
    tick_preempt(L, ctx);
    return;
  }
  hook_with_user(L, ctx, ar);
}

void larb_guard_reset_thread(larb_ctx_t *ctx, lua_State *co) {
  if (slice.hooked == co) slice.hooked = NULL;
  lua_sethook(co, NULL, 0, 0);
  lua_State *L = ctx->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, guard.hooks_ref);
  lua_pushthread(co);
  lua_xmove(co, L, 1);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

/* The thread argument of debug.sethook/gethook/getlocal/setlocal, or L.
** Another process's own thread (sent in a message, or pooled and now
** running a later process) is refused: hooks and locals there would
** reach into that process. */
static lua_State *hook_target(lua_State *L, int *arg) {
  if (lua_isthread(L, 1)) {
    *arg = 1;
    lua_State *L1 = lua_tothread(L, 1);
    if (L1 != L && L1 != larb_ctx(L)->current_co &&
        larb_is_process_thread(L1))
      luaL_argerror(L, 1, "another process's own thread (only the "
                          "scheduler runs it)");
    return L1;
  }
  *arg = 0;
  return L;
}

/* debug.sethook([thread,] hook, mask [, count]) as Lua's, except that the
** preemption hook stays: it dispatches the user's events itself. */
static int guard_sethook(lua_State *L) {
  int arg;
  lua_State *L1 = hook_target(L, &arg);
  int mask = 0;
  lua_Integer count = 0;
  int has_fn = !lua_isnoneornil(L, arg + 1);
  if (has_fn) {
    luaL_checktype(L, arg + 1, LUA_TFUNCTION);
    const char *smask = luaL_checkstring(L, arg + 2);
    count = luaL_optinteger(L, arg + 3, 0);
    luaL_argcheck(L, count >= 0, arg + 3, "count must not be negative");
    if (strchr(smask, 'c')) mask |= LUA_MASKCALL;
    if (strchr(smask, 'r')) mask |= LUA_MASKRET;
    if (strchr(smask, 'l')) mask |= LUA_MASKLINE;
    if (count > 0) mask |= LUA_MASKCOUNT;
  }
  /* The user's hook replaces the tick's (the dispatcher then yields on
  ** the tick's flag). */
  if (slice.hooked == L1) slice.hooked = NULL;
  lua_rawgeti(L, LUA_REGISTRYINDEX, guard.hooks_ref);
  lua_pushthread(L1);
  if (L1 != L) lua_xmove(L1, L, 1);
  if (mask == 0) {
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_sethook(L1, NULL, 0, 0);
    return 0;
  }
  lua_createtable(L, 5, 0);
  lua_pushvalue(L, arg + 1);
  lua_rawseti(L, -2, E_FN);
  lua_pushinteger(L, mask);
  lua_rawseti(L, -2, E_MASK);
  lua_pushinteger(L, count);
  lua_rawseti(L, -2, E_COUNT);
  lua_pushinteger(L, 0);
  lua_rawseti(L, -2, E_USER_ACC);
  lua_pushinteger(L, 0);
  lua_rawseti(L, -2, E_PREEMPT_ACC);
  lua_rawset(L, -3);
  int period = LARB_BUDGET;
  if (count > 0 && count < period) period = (int)count;
  lua_sethook(L1, larb_preempt_hook, mask | LUA_MASKCOUNT, period);
  return 0;
}

/* debug.gethook([thread]) -> hook, mask, count (the user's, as set). */
static int guard_gethook(lua_State *L) {
  int arg;
  lua_State *L1 = hook_target(L, &arg);
  lua_rawgeti(L, LUA_REGISTRYINDEX, guard.hooks_ref);
  lua_pushthread(L1);
  if (L1 != L) lua_xmove(L1, L, 1);
  if (lua_rawget(L, -2) != LUA_TTABLE) return 0;
  int entry = lua_gettop(L);
  int mask = (int)entry_int(L, entry, E_MASK);
  lua_rawgeti(L, entry, E_FN);
  char smask[4];
  int i = 0;
  if (mask & LUA_MASKCALL) smask[i++] = 'c';
  if (mask & LUA_MASKRET) smask[i++] = 'r';
  if (mask & LUA_MASKLINE) smask[i++] = 'l';
  smask[i] = '\0';
  lua_pushstring(L, smask);
  lua_rawgeti(L, entry, E_COUNT);
  return 3;
}

/* }====================================================================== */

/* {======================================================================
** pcall and xpcall that cannot swallow a process's end
** ======================================================================*/

static int finish_pcall(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    if (self_has_ended(larb_ctx(L))) return lua_error(L);
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

static int guard_pcall(lua_State *L) {
  luaL_checkany(L, 1);
  lua_pushboolean(L, 1);
  lua_insert(L, 1);
  int status = lua_pcallk(L, lua_gettop(L) - 2, LUA_MULTRET, 0, 0,
                          finish_pcall);
  return finish_pcall(L, status, 0);
}

/* xpcall's message handler, wrapped: a process that has ended runs none
** of its code, so the user's handler is skipped and the error passes
** through unchanged.  Without this a handler reached by the error of a
** process killed inside a C callback ran on (and could loop) after the
** process's end. */
static int guarded_msgh(lua_State *L) {
  if (self_has_ended(larb_ctx(L))) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int guard_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, guarded_msgh, 1);
  lua_replace(L, 2);
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int status = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_pcall);
  return finish_pcall(L, status, 2);
}

/* arbor.core.self_ended() -> has the calling process ended?  (For
** lua/arbor/coroutine.lua's resume, which must not hand a dead process's
** error back to its code either.) */
static int guard_self_ended(lua_State *L) {
  lua_pushboolean(L, self_has_ended(larb_ctx(L)));
  return 1;
}

/* arbor.core.is_process_thread(co) -> boolean: whether co is the thread
** a process runs on.  Only the scheduler may resume or close one: a
** process that got hold of another's thread (in a message, say) and
** resumed it would run that process's code as its own. */
static int guard_is_process_thread(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  lua_pushboolean(L, larb_is_process_thread(lua_tothread(L, 1)));
  return 1;
}

/* arbor.core.set_runaway_limit(ms) -> previous: how long code that cannot
** be preempted may run before its process is ended. */
static int guard_set_runaway_limit(lua_State *L) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  luaL_argcheck(L, ms > 0 && ms <= 24 * 3600 * 1000, 1,
                "must be from 1 to 86400000 ms");
  lua_pushinteger(L, guard.runaway_limit_ms);
  guard.runaway_limit_ms = ms;
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Describing values for reports
** ======================================================================*/

/* Instructions a __tostring may run while a report is written (and, as
** DESCRIBE_STEP above, how often its hook looks). */
#define DESCRIBE_BUDGET 1000000

static void describe_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  guard.describe_steps += DESCRIBE_STEP;
  if (guard.describe_steps >= DESCRIBE_BUDGET)
    luaL_error(L, "__tostring ran too long");
}

static int tolstring_checked(lua_State *L) {
  size_t len;
  const char *s = luaL_tolstring(L, 1, &len);
  (void)s;
  return 1;
}

const char *larb_tostring_safe(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  int t = lua_type(L, idx);
  if (t == LUA_TSTRING) {
    lua_pushvalue(L, idx);
    return lua_tostring(L, -1);
  }
  if (t == LUA_TNUMBER || t == LUA_TBOOLEAN || t == LUA_TNIL) {
    return luaL_tolstring(L, idx, NULL); /* no metamethods involved */
  }
  /* __tostring runs on a thread of its own, with a hook that bounds it:
  ** it cannot yield there, and if it loops it is stopped. */
  if (luaL_getmetafield(L, idx, "__tostring") != LUA_TNIL ||
      luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
    lua_pop(L, 1);
    lua_State *g = lua_newthread(L);
    lua_sethook(g, describe_hook, LUA_MASKCOUNT, DESCRIBE_STEP);
    int outer = guard.describe_depth++ == 0;
    if (outer) guard.describe_steps = 0;
    lua_pushcfunction(g, tolstring_checked);
    lua_pushvalue(L, idx);
    lua_xmove(L, g, 1);
    int status = lua_pcall(g, 1, 1, 0);
    guard.describe_depth--;
    if (status == LUA_OK && lua_type(g, -1) == LUA_TSTRING) {
      lua_xmove(g, L, 1);
      lua_remove(L, -2); /* the thread */
      return lua_tostring(L, -1);
    }
    lua_pop(L, 1); /* the thread */
    return lua_pushfstring(L, "(error object is a %s value)",
                           luaL_typename(L, idx));
  }
  if (t == LUA_TTABLE || t == LUA_TUSERDATA || t == LUA_TFUNCTION ||
      t == LUA_TTHREAD || t == LUA_TLIGHTUSERDATA)
    return luaL_tolstring(L, idx, NULL); /* "table: 0x...", no metamethod */
  return lua_pushfstring(L, "(error object is a %s value)",
                         luaL_typename(L, idx));
}

/* arbor.core.describe(value) -> text for reports: the logger's (tables
** with their contents, bounded; __tostring through larb_tostring_safe). */
static int guard_describe(lua_State *L) {
  luaL_checkany(L, 1);
  larb_log_describe(L, 1);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Finalizers
** ======================================================================*/

/* Lua runs __gc with hooks switched off on the collecting thread, so a
** finalizer that loops could never be preempted nor cut.  setmetatable
** therefore wraps a Lua __gc in guarded_gc, which runs it on a thread of
** its own (hooks work there) under the runaway limit; a finalizer cut
** short is like one that raised: Lua ignores its error.  The object's
** process is not at fault and goes on. */

static void gc_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (monotonic_ms() - guard.gc_started >= guard.runaway_limit_ms)
    luaL_error(L, "__gc ran too long");
}

static int guarded_gc(lua_State *L) {
  lua_State *g = lua_newthread(L);
  lua_sethook(g, gc_hook, LUA_MASKCOUNT, DESCRIBE_STEP);
  int64_t outer_started = guard.gc_started;
  guard.gc_started = monotonic_ms();
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_xmove(L, g, 2);
  int status = lua_pcall(g, 1, 0, 0);
  guard.gc_started = outer_started;
  if (status != LUA_OK) {
    lua_xmove(g, L, 1);
    return lua_error(L); /* a warning, as for any finalizer's error */
  }
  return 0;
}

/* setmetatable(t, mt) as Lua's, wrapping mt.__gc if it is a Lua function
** (see above). */
static int guard_setmetatable(lua_State *L) {
  if (lua_type(L, 2) == LUA_TTABLE) {
    lua_pushliteral(L, "__gc");
    if (lua_rawget(L, 2) == LUA_TFUNCTION && !lua_iscfunction(L, -1)) {
      lua_pushcclosure(L, guarded_gc, 1);
      lua_pushliteral(L, "__gc");
      lua_insert(L, -2);
      lua_rawset(L, 2);
    } else {
      lua_pop(L, 1);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Metatables and the debug library
** ======================================================================*/

/* Is the value at idx one of arbor's userdata: its metatable is the one
** registered under the metatable's own __name (luaL_newmetatable), and
** that name is arbor's ("arbor." or "dist.")?  Such a metatable holds the
** __gc that frees what C still points to.  (Other C modules' types are
** left as Lua leaves them: lpeg's re extends its pattern metatable.)
** Pushes the name and returns 1, or pushes nothing and returns 0. */
static int is_arbor_type_name(const char *name) {
  return strncmp(name, "arbor.", 6) == 0 || strncmp(name, "dist.", 5) == 0;
}

static int push_c_type_name(lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
    return 0;
  lua_pushliteral(L, "__name");
  if (lua_rawget(L, -2) != LUA_TSTRING) {
    lua_pop(L, 2);
    return 0;
  }
  lua_pushvalue(L, -1);
  lua_rawget(L, LUA_REGISTRYINDEX); /* mt, name, registered */
  int registered = lua_rawequal(L, -1, -3) &&
                   is_arbor_type_name(lua_tostring(L, -2));
  lua_pop(L, 1);
  lua_remove(L, -2); /* name */
  if (!registered) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* getmetatable and debug.getmetatable: a C userdata's type name in
** place of its metatable (as a __metatable field would give); anything
** else as Lua's (the original is upvalue 1). */
static int guard_getmetatable(lua_State *L) {
  luaL_checkany(L, 1);
  if (push_c_type_name(L, 1)) return 1;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushvalue(L, 1);
  lua_call(L, 1, 1);
  return 1;
}

static int guard_debug_setmetatable(lua_State *L) {
  if (push_c_type_name(L, 1))
    return luaL_error(L, "cannot change the metatable of this %s: the host "
                         "relies on it", lua_tostring(L, -1));
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

static int guard_getregistry(lua_State *L) {
  return luaL_error(L, "debug.getregistry is not available in arbor: the "
                       "registry holds the host's own state");
}

/* debug.getuservalue / setuservalue: refused for C userdata, whose user
** values C code reads back without checking them. */
static int guard_uservalue(lua_State *L) {
  if (push_c_type_name(L, 1))
    return luaL_error(L, "the user values of this %s are the host's",
                      lua_tostring(L, -1));
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* debug.getupvalue / setupvalue: a C function's upvalues (a metatable, a
** state table) are the host's, so a C function shows none: nothing is
** returned, as for an index past the last upvalue. */
static int guard_upvalue(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  if (lua_iscfunction(L, 1)) return 0;
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

/* debug.getlocal([thread,] f|level, n) and debug.setlocal([thread,]
** level, n, value), as Lua's, except that a C function's frame shows no
** locals: its stack slots are values its C code reads back unchecked
** (a selector under select's map function, say).  Written here rather
** than wrapped because a wrapper's own frame would shift the levels. */
static int guard_getlocal(lua_State *L) {
  int arg;
  lua_State *L1 = hook_target(L, &arg);
  int nvar = (int)luaL_checkinteger(L, arg + 2);
  if (lua_type(L, arg + 1) == LUA_TFUNCTION) {
    lua_pushvalue(L, arg + 1); /* a function's parameter names */
    lua_pushstring(L, lua_getlocal(L, NULL, nvar));
    return 1;
  }
  int level = (int)luaL_checkinteger(L, arg + 1);
  lua_Debug ar;
  if (!lua_getstack(L1, level, &ar))
    return luaL_argerror(L, arg + 1, "level out of range");
  if (!lua_getinfo(L1, "S", &ar) || strcmp(ar.what, "C") == 0) return 0;
  luaL_checkstack(L, 2, "too many arguments");
  const char *name = lua_getlocal(L1, &ar, nvar);
  if (name == NULL) {
    lua_pushnil(L);
    return 1;
  }
  lua_xmove(L1, L, 1);
  lua_pushstring(L, name);
  lua_rotate(L, -2, 1);
  return 2;
}

static int guard_setlocal(lua_State *L) {
  int arg;
  lua_State *L1 = hook_target(L, &arg);
  int level = (int)luaL_checkinteger(L, arg + 1);
  int nvar = (int)luaL_checkinteger(L, arg + 2);
  luaL_checkany(L, arg + 3);
  lua_Debug ar;
  if (!lua_getstack(L1, level, &ar))
    return luaL_argerror(L, arg + 1, "level out of range");
  if (!lua_getinfo(L1, "S", &ar) || strcmp(ar.what, "C") == 0) {
    lua_pushnil(L);
    return 1;
  }
  lua_settop(L, arg + 3);
  if (L1 != L) {
    luaL_checkstack(L1, 1, "too many arguments");
    lua_xmove(L, L1, 1);
  }
  const char *name = lua_setlocal(L1, &ar, nvar);
  if (name == NULL) lua_pop(L1, 1); /* not set: drop the value */
  lua_pushstring(L, name);
  return 1;
}

/* arbor.core.type_methods() -> {type name = {method name = function}}:
** the methods of arbor's userdata types (what a handle's methods are
** anyway; no metamethod), copied, for arbor.introspect to tell what a
** process waits on.  Copies, so the metatables themselves stay out of
** reach. */
static void copy_functions(lua_State *L, int from, int to) {
  from = lua_absindex(L, from);
  to = lua_absindex(L, to);
  lua_pushnil(L);
  while (lua_next(L, from)) {
    /* Metamethods stay out: __gc and __close free what C points to and
    ** trust their argument to be of their type. */
    if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TFUNCTION &&
        strncmp(lua_tostring(L, -2), "__", 2) != 0) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, to);
    } else {
      lua_pop(L, 1);
    }
  }
}

static int guard_type_methods(lua_State *L) {
  lua_newtable(L);
  int result = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, LUA_REGISTRYINDEX)) {
    int mt = lua_gettop(L);
    if (lua_type(L, mt - 1) == LUA_TSTRING && lua_type(L, mt) == LUA_TTABLE &&
        is_arbor_type_name(lua_tostring(L, mt - 1))) {
      lua_newtable(L);
      int methods = lua_gettop(L);
      copy_functions(L, mt, methods);
      lua_pushliteral(L, "__index");
      if (lua_rawget(L, mt) == LUA_TTABLE) copy_functions(L, -1, methods);
      lua_pop(L, 1);
      lua_pushvalue(L, mt - 1);
      lua_insert(L, -2);
      lua_rawset(L, result);
    }
    lua_pop(L, 1);
  }
  return 1;
}

/* Replaces t[name] (t at -1) with fn closed over the original. */
static void wrap_field(lua_State *L, const char *name, lua_CFunction fn) {
  lua_getfield(L, -1, name);
  lua_pushcclosure(L, fn, 1);
  lua_setfield(L, -2, name);
}

static void guard_debug_library(lua_State *L) {
  lua_getglobal(L, "getmetatable");
  lua_pushcclosure(L, guard_getmetatable, 1);
  lua_setglobal(L, "getmetatable");
  lua_getglobal(L, "debug");
  if (lua_istable(L, -1)) {
    wrap_field(L, "getmetatable", guard_getmetatable);
    wrap_field(L, "setmetatable", guard_debug_setmetatable);
    wrap_field(L, "getuservalue", guard_uservalue);
    wrap_field(L, "setuservalue", guard_uservalue);
    wrap_field(L, "getupvalue", guard_upvalue);
    wrap_field(L, "setupvalue", guard_upvalue);
    lua_pushcfunction(L, guard_getregistry);
    lua_setfield(L, -2, "getregistry");
    lua_pushcfunction(L, guard_getlocal);
    lua_setfield(L, -2, "getlocal");
    lua_pushcfunction(L, guard_setlocal);
    lua_setfield(L, -2, "setlocal");
  }
  lua_pop(L, 1);
}

/* }====================================================================== */

static const luaL_Reg guard_core_funcs[] = {
    {"self_ended", guard_self_ended},
    {"resume", guard_resume},
    {"type_methods", guard_type_methods},
    {"is_process_thread", guard_is_process_thread},
    {"set_runaway_limit", guard_set_runaway_limit},
    {"describe", guard_describe},
    {NULL, NULL}};

void larb_guard_open_core(lua_State *L) { luaL_setfuncs(L, guard_core_funcs, 0); }

int larb_guard_start_tick(void) {
  return arb_tick_init(LARB_SLICE_US, on_tick);
}

void larb_guard_stop_tick(void) {
  arb_tick_close();
  slice.running = NULL;
  slice.deep_pending = NULL;
  slice.hooked = NULL;
}

/* arbor.core.preempt() met code that cannot yield (a coroutine resumed
** from a sort comparator, an xpcall handler, a finalizer was preempted):
** the level above counts toward the runaway limit, as a hook there
** would, or it resumes the coroutine for ever. */
void larb_guard_cannot_yield(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (ctx->current_co != NULL) check_runaway(L, ctx);
}

void larb_guard_init(lua_State *L) {
  guard.runaway_limit_ms = LARB_RUNAWAY_LIMIT_MS;
  lua_newtable(L); /* thread -> user hook entry; weak keys */
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  guard.hooks_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushcfunction(L, guard_pcall);
  lua_setglobal(L, "pcall");
  lua_pushcfunction(L, guard_xpcall);
  lua_setglobal(L, "xpcall");
  lua_getglobal(L, "setmetatable");
  lua_pushcclosure(L, guard_setmetatable, 1);
  lua_setglobal(L, "setmetatable");
  lua_getglobal(L, "debug");
  if (lua_istable(L, -1)) {
    lua_pushcfunction(L, guard_sethook);
    lua_setfield(L, -2, "sethook");
    lua_pushcfunction(L, guard_gethook);
    lua_setfield(L, -2, "gethook");
  }
  lua_pop(L, 1);
  guard_debug_library(L);
}
