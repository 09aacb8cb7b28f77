/*
** lhost.c: one arbor host: a Lua state, a node and a libuv runtime, wired
** together; running process slices; the main process; crash reports.
**
** Lifecycle.  The script's chunk runs as the main process (inside
** lua/arbor/main.lua).  When main ends by itself (returns or raises), its
** links are detached first and the ordered shutdown (lservice.c) stops
** the trees it started newest first; then whatever is left is killed and
** the loop stops.
**
** Lua's garbage collector may run finalizers at any allocation, and our
** finalizers touch core lists; so nothing here allocates Lua memory from
** inside a core callback.  Work that would (starting the shutdown after
** main was killed by a signal) is deferred to the end of the slice.
*/
#include <errno.h>
#include <lualib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "larb.h"
#include "lfs.h"
#include "lnet.h"
#include "lnotify.h"
#include "registry.h"

/* {======================================================================
** Lua memory accounting
** ======================================================================*/

static size_t lua_bytes = 0;
static size_t lua_limit = 0; /* --max-memory; 0: none */

size_t larb_lua_bytes(void) { return lua_bytes; }

/* Counts the Lua heap and enforces --max-memory.  A refused growth makes
** Lua collect in an emergency and try again; if it still does not fit, the
** allocating code gets Lua's "not enough memory" error, which ends that
** process (unless it catches it) and never the host. */
static void *counting_lua_alloc(void *ud, void *ptr, size_t osize,
                                size_t nsize) {
  (void)ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    lua_bytes -= osize;
    return NULL;
  }
  if (lua_limit && nsize > osize && lua_bytes - osize + nsize > lua_limit)
    return NULL;
  void *p = realloc(ptr, nsize);
  if (p) lua_bytes = lua_bytes - osize + nsize;
  return p;
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

/* The crash report of p, whose coroutine co ended with the error value on
** its top (left there: it becomes the exit reason).  Runs under
** protection (report_crash): describing the value or building the
** traceback may run out of memory. */
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

/* fn for pcall_on_crashed: the crash report of process ud. */
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
  if (ctx->quiet && p->pid != ctx->main_pid) return;
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
** take it in between); resetting runs any pending to-be-closed variables,
** outside every core iteration. */
static void pool_thread(larb_ctx_t *ctx, lua_State *co) {
  if (ctx->npool >= LARB_POOL_MAX || lua_resetthread(co) != LUA_OK) return;
  lua_State *L = ctx->L;
  if (lua_gethookmask(co) != LUA_MASKCOUNT ||
      lua_gethookcount(co) != LARB_BUDGET)
    larb_guard_reset_thread(ctx, co);
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
  larb_guard_slice_begins(ctx);
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
      /* The report and the reason are the host's work: --max-memory,
      ** which the failed process may have exhausted, does not apply. */
      size_t limit = lua_limit;
      lua_limit = 0;
      report_crash(ctx, p, co);
      if (p->pid == ctx->main_pid) ctx->exit_code = 1;
      arb_reason_t *r = crash_reason(ctx, co);
      lua_limit = limit;
      pool_thread(ctx, co);
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

/* Modules written in C alone, preloaded under their names. */
static const luaL_Reg c_modules[] = {
    {"arbor.core", larb_open_core},     {"arbor.core.sup", luaopen_arbor_core_sup},
    {"arbor.notify", larb_open_notify}, {"logger", larb_open_logger},
    {"fs", larb_open_fs},               {"net", larb_open_net},
    {NULL, NULL}};

static void preload_modules(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  luaL_setfuncs(L, c_modules, 0);
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

/* SIGUSR1 reopens the log file (logrotate's convention); the others are
** the service's (lservice.c). */
static void host_signal(void *ud, int signum) {
  if (signum == SIGUSR1)
    larb_log_reopen();
  else
    larb_host_signal(ud, signum);
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
  larb_guard_init(L);
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

  char log_err[600];
  if (larb_log_setup(opts->log_format, opts->log_level, opts->log_file,
                     log_err, sizeof(log_err)) != 0) {
    fprintf(stderr, "arbor: %s\n", log_err);
    lua_close(L);
    return 2;
  }
  int status = luaL_loadfile(L, opts->script);
  if (status != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    if (status == LUA_ERRFILE)
      fprintf(stderr, "arbor: %s: cannot open script (%s)\n", opts->script,
              strerror(errno));
    else
      fprintf(stderr, "arbor: %s\n", msg);
    lua_close(L);
    larb_log_close();
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
    larb_log_close();
    return 1;
  }
  ctx.rt = &rt;
  lua_pushliteral(L, "runaway: ran too long without yielding, inside a call "
                     "from C that cannot be preempted");
  ctx.runaway_reason = larb_reason_from(L, -1);
  lua_pushliteral(L, "not enough memory");
  ctx.oom_reason = larb_reason_from(L, -1);
  lua_pop(L, 2);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "arbor.coroutine");
  lua_call(L, 1, 0);
  lua_sethook(L, larb_preempt_hook, LUA_MASKCOUNT, LARB_BUDGET);

  /* main runs arbor.main(chunk, script, args...). */
  lua_getglobal(L, "require");
  lua_pushliteral(L, "arbor.main");
  lua_call(L, 1, 1);
  lua_insert(L, -2);
  lua_pushstring(L, opts->script);
  for (int i = 1; i < opts->argc; i++) lua_pushstring(L, opts->argv[i]);
  arb_proc_t *main = larb_spawn(L, opts->argc + 1);
  ctx.main_pid = main->pid;
  larb_log_set_main_pid(main->pid);

  lua_limit = opts->max_memory;
  arb_rt_run(&rt);
  lua_limit = 0;

  int code = ctx.exit_code;
  arb_reason_release(ctx.node, ctx.runaway_reason);
  arb_reason_release(ctx.node, ctx.oom_reason);
  arb_control_close(ctx.control);
  arb_watch_close(ctx.watch);
  larb_notify_close();
  larb_net_close();
  arb_node_free(ctx.node);
  ctx.node = NULL;
  arb_names_free(ctx.names);
  arb_rt_close(&rt);
  lua_close(L);
  free(ctx.free_refs);
  larb_log_close();
  return code;
}

/* }====================================================================== */
