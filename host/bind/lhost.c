/*
** lhost.c: one arbor host: a Lua state, a node and a libuv runtime, wired
** together; the main process; crash reports; the ordered shutdown.
**
** Lifecycle.  The script's chunk runs as the main process.  When main
** ends by itself (returns or raises), its links are detached first and
** the trees it linked to are shut down newest first, each waited for, by
** a system process running the embedded arbor.shutdown module; then
** whatever is left is killed and the loop stops.  SIGINT and SIGTERM do
** the same with main itself shut down last.  Detaching first matters: a
** link would otherwise carry main's exit to every tree at once, oldest
** first, which is the wrong order.
**
** Lua's garbage collector may run finalizers at any allocation, and our
** finalizers touch core lists; so nothing here allocates Lua memory from
** inside a core callback.  Work that would (starting the shutdown after
** main was killed by a signal) is deferred to the end of the slice.
*/
#include <errno.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "larb.h"
#include "registry.h"

/* {======================================================================
** Lua memory accounting
** ======================================================================*/

static size_t lua_bytes = 0;

static void *counting_lua_alloc(void *ud, void *ptr, size_t osize,
                                size_t nsize) {
  (void)ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    lua_bytes -= osize;
    return NULL;
  }
  void *p = realloc(ptr, nsize);
  if (p) lua_bytes = lua_bytes - osize + nsize;
  return p;
}

static int host_memory(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lua_bytes);
  lua_pushinteger(L, (lua_Integer)arb_alloc_in_use());
  return 2;
}

/* }====================================================================== */

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
    arb_subject_send(ctx->node, &s->sub, larb_ref(L, -1));
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

static void spawn_shutdown(larb_ctx_t *ctx, lua_State *L,
                           const arb_pid_t *trees, int n);

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
  spawn_shutdown(ctx, ctx->L, trees, trees ? (int)n : 0);
  arb_free(trees, n * sizeof(*trees));
}

static int tolstring_protected(lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* Pushes onto L a one-line message for the error value on top of co,
** leaving that value untouched (it becomes the exit reason).  A
** __tostring that raises or returns a non-string cannot take the host
** down: the message falls back to the value's type. */
static const char *error_message(lua_State *L, lua_State *co) {
  int t = lua_type(co, -1);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
    lua_pushstring(L, lua_tostring(L, -1));
    lua_remove(L, -2);
    return lua_tostring(L, -1);
  }
  if (luaL_getmetafield(co, -1, "__tostring") != LUA_TNIL) {
    lua_pop(co, 1);
    lua_pushcfunction(L, tolstring_protected);
    lua_pushvalue(co, -1);
    lua_xmove(co, L, 1);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) return lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
  return lua_tostring(L, -1);
}

static void report_crash(larb_ctx_t *ctx, arb_proc_t *p, lua_State *co) {
  lua_State *L = ctx->L;
  /* A traceback costs more than the rest of a crash-restart cycle. */
  if (ctx->quiet && p->pid != ctx->main_pid) return;
  const char *msg = error_message(L, co);
  luaL_traceback(L, co, msg, 0);
  if (p->pid == ctx->main_pid) {
    fprintf(stderr, "arbor: %s\n", lua_tostring(L, -1));
  } else if (!ctx->quiet) {
    fprintf(stderr,
            "=CRASH REPORT==== process <0.%u.%u> crashed\n"
            "reason: %s\n",
            arb_pid_slot(p->pid), arb_pid_gen(p->pid), lua_tostring(L, -1));
  }
  fflush(stderr);
  lua_pop(L, 2);
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
  larb_push_reason(L, ctx->main_reason);
  fprintf(stderr, "arbor: main process exited: %s\n",
          luaL_tolstring(L, -1, NULL));
  fflush(stderr);
  lua_pop(L, 2);
  arb_reason_release(ctx->node, ctx->main_reason);
  ctx->main_reason = NULL;
}

/* Keeps a coroutine whose function has finished for a later spawn.  Called
** while it is still anchored in the procs table (so the collector cannot
** take it in between); resetting runs any pending to-be-closed variables,
** outside every core iteration. */
static void pool_thread(larb_ctx_t *ctx, lua_State *co) {
  if (ctx->npool >= LARB_POOL_MAX || lua_resetthread(co) != LUA_OK) return;
  lua_State *L = ctx->L;
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
  int status = lua_resume(co, ctx->L, nargs, &nres);
  ctx->current_co = NULL;
  if (status == LUA_YIELD) {
    lua_pop(co, nres);
  } else if (p->state != ARB_PROC_DEAD) {
    if (status == LUA_OK) {
      lua_pop(co, nres);
      pool_thread(ctx, co);
      end_process(ctx, p, &arb_reason_normal);
    } else {
      report_crash(ctx, p, co);
      if (p->pid == ctx->main_pid) ctx->exit_code = 1;
      arb_reason_t *r = larb_reason_from(co, -1);
      pool_thread(ctx, co);
      end_process(ctx, p, r);
      arb_reason_release(ctx->node, r);
    }
  }
  arb_node_release(ctx->node, p);
  if (ctx->shutting_down == -1) {
    ctx->shutting_down = 1;
    report_main_killed(ctx);
    spawn_shutdown(ctx, ctx->L, NULL, 0);
  }
}

/* The count hook: preempt the running process where Lua allows a yield.
** A user coroutine inside a process is yielded too, with a flag set: the
** coroutine.resume installed by lua/arbor/coroutine.lua sees the flag,
** yields its own coroutine the same way, and so on up to the process,
** which the scheduler puts at the back of the run queue; on the way back
** in, each level resumes the one below. */
static void preempt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  larb_ctx_t *ctx = larb_ctx(L);
  if (ctx->current_co == NULL || !lua_isyieldable(L)) return;
  if (L != ctx->current_co) ctx->inner_preempted = 1;
  lua_yield(L, 0);
}

/* arbor.core.take_preempted() -> boolean: was the coroutine that just
** yielded preempted (and not yielding by itself)?  Clears the flag. */
static int host_take_preempted(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  lua_pushboolean(L, ctx->inner_preempted);
  ctx->inner_preempted = 0;
  return 1;
}

/* arbor.core.preempt(): passes a preemption up one level (see above). */
static int host_preempt(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (!lua_isyieldable(L)) return 0;
  if (L != ctx->current_co) ctx->inner_preempted = 1;
  return lua_yield(L, 0);
}

/* }====================================================================== */

/* {======================================================================
** Ordered shutdown
** ======================================================================*/

/* Spawns the system process that shuts the trees down newest first, then
** halts.  With a live main, main goes last. */
static void spawn_shutdown(larb_ctx_t *ctx, lua_State *L,
                           const arb_pid_t *trees, int n) {
  lua_getglobal(L, "require");
  lua_pushliteral(L, "arbor.shutdown");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    fprintf(stderr, "arbor: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    ctx->exit_code = 1;
    ctx->halted = 1;
    arb_rt_stop(ctx->rt);
    return;
  }
  lua_createtable(L, n + 1, 0);
  int k = 1;
  if (ctx->main_pid) {
    larb_push_pid(L, ctx->main_pid);
    lua_rawseti(L, -2, k++);
  }
  for (int i = 0; i < n; i++) {
    larb_push_pid(L, trees[i]);
    lua_rawseti(L, -2, k++);
  }
  arb_proc_t *p = larb_spawn(L, 1);
  p->user_kind = LARB_SYSTEM;
}

/* Begins the ordered shutdown with main still alive (a signal, or
** `arbor stop`): main's trees newest first, then main. */
static void begin_shutdown(larb_ctx_t *ctx, lua_State *L) {
  ctx->shutting_down = 1;
  arb_proc_t *main = arb_node_lookup(ctx->node, ctx->main_pid);
  uint32_t n = main ? arb_links_of(main, NULL, 0) : 0;
  arb_pid_t *trees = n ? arb_malloc(n * sizeof(*trees)) : NULL;
  if (trees) {
    arb_links_of(main, trees, n);
    for (uint32_t i = 0; i < n; i++) arb_unlink(ctx->node, main, trees[i]);
  }
  spawn_shutdown(ctx, L, trees, trees ? (int)n : 0);
  arb_free(trees, n * sizeof(*trees));
}

/* Sends {cmd = cmd, dry_run = dry_run, conn = conn} to main's control
** subject.  Called from libuv callbacks, outside any core iteration. */
static int send_command(larb_ctx_t *ctx, const char *cmd, int dry_run,
                        uint64_t conn) {
  lua_State *L = ctx->L;
  if (ctx->control_ref == LUA_NOREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ctx->control_ref);
  larb_subject_t *s = lua_touserdata(L, -1);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, cmd);
  lua_setfield(L, -2, "cmd");
  lua_pushboolean(L, dry_run);
  lua_setfield(L, -2, "dry_run");
  if (conn) {
    lua_pushinteger(L, (lua_Integer)conn);
    lua_setfield(L, -2, "conn");
  }
  arb_subject_send(ctx->node, &s->sub, larb_ref(L, -1));
  lua_pop(L, 2);
  return 1;
}

static void host_signal(void *ud, int signum) {
  larb_ctx_t *ctx = ud;
  if (signum == SIGHUP) {
    if (!ctx->shutting_down) send_command(ctx, "reload", 0, 0);
    return;
  }
  if (ctx->shutting_down) {
    /* A second signal: stop waiting for anyone. */
    ctx->halted = 1;
    arb_rt_stop(ctx->rt);
    return;
  }
  begin_shutdown(ctx, ctx->L);
}

static void on_control(void *ud, uint64_t conn, const char *line) {
  larb_ctx_t *ctx = ud;
  const char *cmd = line;
  int dry_run = 0;
  if (strcmp(line, "reload --dry-run") == 0) {
    cmd = "reload";
    dry_run = 1;
  }
  if (ctx->shutting_down || !send_command(ctx, cmd, dry_run, conn))
    arb_control_reply(ctx->control, conn, 1, "the host is shutting down");
}

static void on_watch(void *ud) {
  larb_ctx_t *ctx = ud;
  if (!ctx->shutting_down) send_command(ctx, "reload", 0, 0);
}

/* arbor.core.serve(subject): main serves a root tree.  Listens on the
** control socket, starts --watch, and routes SIGHUP to the subject. */
static int host_serve(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  larb_check_subject(L, 1);
  const larb_host_opts_t *o = ctx->opts;
  char path[512], err[600];
  if (o->control_path)
    snprintf(path, sizeof(path), "%s", o->control_path);
  else
    arb_control_default_path(o->script, path, sizeof(path));
  if (arb_control_listen(&ctx->control, &ctx->rt->loop, path, on_control,
                         ctx, err, sizeof(err)) != 0)
    return luaL_error(L, "%s", err);
  if (o->watch &&
      arb_watch_start(&ctx->watch, &ctx->rt->loop, o->script, 50, on_watch,
                      ctx) != 0)
    return luaL_error(L, "cannot watch %s", o->script);
  lua_pushvalue(L, 1);
  ctx->control_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* arbor.core.serving() -> were --watch or --control given? */
static int host_serving(lua_State *L) {
  const larb_host_opts_t *o = larb_ctx(L)->opts;
  lua_pushboolean(L, o->watch || o->control_path != NULL);
  return 1;
}

/* arbor.core.control_reply(conn, code, text) */
static int host_control_reply(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  lua_Integer conn = luaL_checkinteger(L, 1);
  int code = (int)luaL_checkinteger(L, 2);
  const char *text = luaL_checkstring(L, 3);
  if (ctx->control) arb_control_reply(ctx->control, (uint64_t)conn, code, text);
  return 0;
}

/* arbor.core.shutdown(): the ordered shutdown, as SIGTERM does it. */
static int host_shutdown(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (!ctx->shutting_down) begin_shutdown(ctx, L);
  return 0;
}

/* arbor.core.halt(): ends every process but the caller, newest first, and
** stops the host once the caller's slice ends. */
static int host_halt(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  arb_node_t *node = ctx->node;
  arb_proc_t *self = node->current;
  for (uint32_t i = node->nslots; i-- > 0;) {
    arb_proc_t *p = node->slots[i];
    if (p != self && p->state != ARB_PROC_FREE && p->state != ARB_PROC_DEAD)
      arb_node_exit(node, p, &arb_reason_killed);
  }
  ctx->halted = 1;
  arb_rt_stop(ctx->rt);
  return 0;
}

/* arbor.core.is_supervisor(pid) */
static int host_is_supervisor(lua_State *L) {
  arb_proc_t *p = arb_node_lookup(larb_ctx(L)->node, larb_check_pid(L, 1));
  lua_pushboolean(L, p && p->user_kind == LARB_SUPERVISOR);
  return 1;
}

/* arbor.core.set_kind("supervisor" | "worker") marks the caller. */
static int host_set_kind(lua_State *L) {
  static const char *const kinds[] = {"worker", "supervisor", NULL};
  arb_proc_t *p = larb_self(L);
  p->user_kind = (uint8_t)luaL_checkoption(L, 1, NULL, kinds);
  return 0;
}

/* arbor.core.quiet([flag]) -> flag: no crash or supervisor reports (for
** benchmarks); without an argument, only tells. */
static int host_quiet(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (!lua_isnone(L, 1)) ctx->quiet = lua_toboolean(L, 1);
  lua_pushboolean(L, ctx->quiet);
  return 1;
}

/* arbor.core.now() -> the node's monotonic clock in ms */
static int host_now(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)arb_rt_now(larb_ctx(L)->rt));
  return 1;
}

/* arbor.core.report(text): a report block on stderr, unless quiet. */
static int host_report(lua_State *L) {
  const char *text = luaL_checkstring(L, 1);
  if (!larb_ctx(L)->quiet) {
    fputs(text, stderr);
    fflush(stderr);
  }
  return 0;
}

/* arbor.core.exit_self(reason): ends the caller with reason, trapping or
** not (Erlang's exit/1). */
static int host_exit(lua_State *L) {
  luaL_checkany(L, 1);
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *self = larb_self(L);
  arb_reason_t *r = larb_reason_from(L, 1);
  if (r->kind == ARB_REASON_KILL) r = &arb_reason_killed;
  arb_node_exit(ctx->node, self, r);
  arb_reason_release(ctx->node, r);
  return larb_finish(L, 0);
}

/* arbor.core.is_subject(value) -> boolean */
static int host_is_subject(lua_State *L) {
  lua_pushboolean(L, larb_test_subject(L, 1) != NULL);
  return 1;
}

/* Replaces the registry table at ref by a copy sized to its contents
** (same metatable).  C code reaches these tables only through their
** registry refs, so the swap is invisible to it. */
static void compact_table(lua_State *L, int ref) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_newtable(L);
  if (lua_getmetatable(L, -2)) lua_setmetatable(L, -2);
  lua_pushnil(L);
  while (lua_next(L, -3)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_rawseti(L, LUA_REGISTRYINDEX, ref);
  lua_pop(L, 1);
}

/* arbor.core.compact(): gives back the memory the host's own tables and
** the core's message pool kept from their busiest moment, then runs a
** full collection.  Memory accounting after it is exact. */
static int host_compact(lua_State *L) {
  larb_ctx_t *ctx = larb_ctx(L);
  const int refs[] = {ctx->values_ref, ctx->procs_ref, ctx->pids_ref,
                      ctx->timers_ref, ctx->registries_ref};
  for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
    compact_table(L, refs[i]);
  lua_newtable(L); /* the thread pool refills as processes end */
  lua_rawseti(L, LUA_REGISTRYINDEX, ctx->pool_ref);
  ctx->npool = 0;
  arb_node_trim(ctx->node);
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}

/* arbor.core.process_count() */
static int host_process_count(lua_State *L) {
  lua_pushinteger(L, arb_node_count(larb_ctx(L)->node));
  return 1;
}

static const luaL_Reg host_funcs[] = {
    {"halt", host_halt},
    {"is_supervisor", host_is_supervisor},
    {"set_kind", host_set_kind},
    {"quiet", host_quiet},
    {"memory", host_memory},
    {"process_count", host_process_count},
    {"now", host_now},
    {"compact", host_compact},
    {"exit_self", host_exit},
    {"take_preempted", host_take_preempted},
    {"serve", host_serve},
    {"serving", host_serving},
    {"control_reply", host_control_reply},
    {"shutdown", host_shutdown},
    {"preempt", host_preempt},
    {"is_subject", host_is_subject},
    {"report", host_report},
    {NULL, NULL}};

/* arbor.core: the host's own functions, for the modules in lua/. */
static int open_core(lua_State *L) {
  luaL_newlib(L, host_funcs);
  return 1;
}

/* }====================================================================== */

/* {======================================================================
** Setting up and running
** ======================================================================*/

/* Loads an embedded module.  For a module with C functions (process,
** chip) the chunk gets their table as its second argument and adds its
** Lua functions to it, so each public function has one home in
** package.loaded and errors name it as users call it. */
static int load_embedded(lua_State *L) {
  const larb_embedded_t *m = lua_touserdata(L, lua_upvalueindex(1));
  lua_CFunction open_c = lua_tocfunction(L, lua_upvalueindex(2));
  if (luaL_loadbuffer(L, (const char *)m->data, m->size, m->chunkname))
    return lua_error(L);
  lua_pushstring(L, m->name);
  if (open_c) {
    open_c(L);
    lua_call(L, 2, 1);
  } else {
    lua_call(L, 1, 1);
  }
  return 1;
}

static void preload_modules(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushcfunction(L, open_core);
  lua_setfield(L, -2, "arbor.core");
  lua_pushcfunction(L, luaopen_arbor_core_sup);
  lua_setfield(L, -2, "arbor.core.sup");
  for (const larb_embedded_t *m = larb_embedded; m->name; m++) {
    lua_pushlightuserdata(L, (void *)m);
    if (strcmp(m->name, "process") == 0)
      lua_pushcfunction(L, larb_open_process);
    else if (strcmp(m->name, "chip") == 0)
      lua_pushcfunction(L, larb_open_chip);
    else
      lua_pushnil(L);
    lua_pushcclosure(L, load_embedded, 2);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
}

static int new_table_ref(lua_State *L, const char *mode) {
  lua_newtable(L);
  if (mode) {
    lua_createtable(L, 0, 1);
    lua_pushstring(L, mode);
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
  }
  return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void set_arg_table(lua_State *L, const larb_host_opts_t *o) {
  lua_createtable(L, o->argc, o->prefix_argc + 1);
  for (int i = 0; i < o->prefix_argc; i++) {
    lua_pushstring(L, o->prefix_argv[i]);
    lua_rawseti(L, -2, i - o->prefix_argc);
  }
  for (int i = 0; i < o->argc; i++) {
    lua_pushstring(L, o->argv[i]);
    lua_rawseti(L, -2, i);
  }
  lua_setglobal(L, "arg");
}

int larb_host_run(const larb_host_opts_t *opts) {
  larb_ctx_t ctx;
  arb_rt_t rt;
  memset(&ctx, 0, sizeof(ctx));
  lua_State *L = lua_newstate(counting_lua_alloc, NULL);
  if (L == NULL) {
    fprintf(stderr, "arbor: cannot create a Lua state\n");
    return 1;
  }
  *(larb_ctx_t **)lua_getextraspace(L) = &ctx;
  ctx.L = L;
  ctx.opts = opts;
  ctx.control_ref = LUA_NOREF;
  luaL_openlibs(L);
  larb_open_types(L);
  ctx.values_ref = new_table_ref(L, NULL);
  ctx.procs_ref = new_table_ref(L, NULL);
  ctx.pids_ref = new_table_ref(L, "v");
  ctx.timers_ref = new_table_ref(L, NULL);
  ctx.registries_ref = new_table_ref(L, NULL);
  ctx.pool_ref = new_table_ref(L, NULL);
  preload_modules(L);
  /* Opening process creates the remaining metatables. */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "process");
  lua_call(L, 1, 0);
  larb_cache_metatables(L);
  set_arg_table(L, opts);

  int status = luaL_loadfile(L, opts->script);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (status == LUA_ERRFILE)
      fprintf(stderr, "arbor: %s: cannot open script (%s)\n", opts->script,
              strerror(errno));
    else
      fprintf(stderr, "arbor: %s\n", msg);
    lua_close(L);
    return 2;
  }

  static const arb_node_ops_t node_ops = {free_value, free_value, proc_ended,
                                          timer_fired};
  static const arb_rt_ops_t rt_ops = {host_resume, host_signal};
  ctx.node = arb_node_new(&node_ops, &ctx);
  ctx.names = arb_names_new();
  if (ctx.node == NULL || ctx.names == NULL || arb_rt_init(&rt, ctx.node, &rt_ops, &ctx) != 0) {
    fprintf(stderr, "arbor: cannot start the runtime\n");
    arb_node_free(ctx.node);
    arb_names_free(ctx.names);
    lua_close(L);
    return 1;
  }
  ctx.rt = &rt;
  lua_getglobal(L, "require");
  lua_pushliteral(L, "arbor.coroutine");
  lua_call(L, 1, 0);
  if (!getenv("ARBOR_NOHOOK")) lua_sethook(L, preempt_hook, LUA_MASKCOUNT, LARB_BUDGET);

  /* main runs arbor.main(chunk, script, args...). */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "arbor.main");
  lua_call(L, 1, 1);
  lua_insert(L, -2);
  lua_pushstring(L, opts->script);
  for (int i = 1; i < opts->argc; i++) lua_pushstring(L, opts->argv[i]);
  arb_proc_t *main = larb_spawn(L, opts->argc + 1);
  ctx.main_pid = main->pid;

  arb_rt_run(&rt);

  int code = ctx.exit_code;
  arb_control_close(ctx.control);
  arb_watch_close(ctx.watch);
  arb_node_free(ctx.node);
  ctx.node = NULL;
  arb_names_free(ctx.names);
  arb_rt_close(&rt);
  lua_close(L);
  free(ctx.free_refs);
  return code;
}

/* }====================================================================== */
