/*
** lhost.c: the host's main, shaped like lua.c: a Lua state, a node and a
** libuv runtime wired together, the script run as the main process, and
** everything torn down.
**
** Setup runs as pmain under lua_pcall, so any error while setting up
** (a module that fails to load, running out of memory, a script that
** does not compile) is reported as "arbor: message" and the host exits
** with a status instead of panicking.  The loop itself runs after pmain
** returns: from then on errors belong to processes (lsched.c).
**
** Lifecycle.  The script's chunk runs as the main process (inside
** lua/arbor/main.lua).  When main ends by itself (returns or raises), its
** links are detached first and the ordered shutdown (lservice.c) stops
** the trees it started newest first; then whatever is left is killed and
** the loop stops.
**
** Must not depend on: which modules exist (lpreload.c) or how slices run
** (lsched.c).
*/
#include <errno.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lhost.h"
#include "lnet.h"
#include "lnotify.h"
#include "lport.h"
#include "lstdin.h"
#include "registry.h"

/* {======================================================================
** Lua memory accounting
** ======================================================================*/

static size_t lua_bytes = 0;
static size_t lua_limit = 0; /* --max-memory; 0: none */

size_t larb_lua_bytes(void) { return lua_bytes; }

size_t larb_lua_limit_swap(size_t limit) {
  size_t old = lua_limit;
  lua_limit = limit;
  return old;
}

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
** Setting up (pmain)
** ======================================================================*/

/* The host while it runs: the binding's context and the runtime, with
** what pmain got as far as setting up, for the teardown. */
typedef struct host_s {
  larb_ctx_t ctx;
  arb_rt_t rt;
  int rt_ready;   /* arb_rt_init succeeded */
  int log_ready;  /* larb_log_setup succeeded */
  int fail_code;  /* the exit status if the step under way fails */
} host_t;

/* "arbor: msg", what lua.c's l_message prints, through the one sink. */
static void host_message(const char *msg) {
  larb_log_host(LARB_LOG_ERROR, msg);
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

static void require(lua_State *L, const char *name, int nresults) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  lua_call(L, 1, nresults);
}

/* Sets the host up as far as the main process, which it spawns; any
** error is raised (host->fail_code says the status to exit with). */
static int pmain(lua_State *L) {
  host_t *host = lua_touserdata(L, 1);
  larb_ctx_t *ctx = &host->ctx;
  const larb_host_opts_t *opts = ctx->opts;
  lua_settop(L, 0);
  luaL_openlibs(L);
  larb_stdin_install(L); /* io.read/io.lines on stdin wait on the loop */
  larb_stdlib_io_install(L); /* files Lua opens are close-on-exec */
  larb_guard_init(L);
  larb_open_types(L);
  ctx->values_ref = new_table_ref(L, NULL);
  ctx->procs_ref = new_table_ref(L, NULL);
  ctx->pids_ref = new_table_ref(L, "v");
  ctx->timers_ref = new_table_ref(L, NULL);
  ctx->registries_ref = new_table_ref(L, NULL);
  ctx->pool_ref = new_table_ref(L, NULL);
  larb_preload_modules(L);
  /* Opening process creates the remaining metatables. */
  require(L, "process", 0);
  larb_cache_metatables(L);
  set_arg_table(L, opts);

  char log_err[600];
  host->fail_code = 2;
  if (larb_log_setup(opts->log_format, opts->log_level, opts->log_file,
                     log_err, sizeof(log_err)) != 0)
    return luaL_error(L, "%s", log_err);
  host->log_ready = 1;
  int status = luaL_loadfile(L, opts->script);
  if (status == LUA_ERRFILE)
    return luaL_error(L, "%s: cannot open script (%s)", opts->script,
                      strerror(errno));
  if (status != LUA_OK) return lua_error(L);
  host->fail_code = 1;

  ctx->node = arb_node_new(&larb_sched_node_ops, ctx);
  ctx->names = arb_names_new();
  if (ctx->node == NULL || ctx->names == NULL ||
      arb_rt_init(&host->rt, ctx->node, &larb_sched_rt_ops, ctx) != 0)
    return luaL_error(L, "cannot start the runtime");
  host->rt_ready = 1;
  ctx->rt = &host->rt;
  larb_port_init(ctx); /* subreaper; reaps every descendant */
  lua_pushliteral(L, "runaway: ran too long without yielding, inside a call "
                     "from C that cannot be preempted");
  ctx->runaway_reason = larb_reason_from(L, -1);
  lua_pushliteral(L, "not enough memory");
  ctx->oom_reason = larb_reason_from(L, -1);
  lua_pop(L, 2);
  require(L, "arbor.coroutine", 0);
  require(L, "arbor.portio", 0); /* os.execute, io.popen on ports */
  /* No hook on L, so none on the threads made from it: preemption is
  ** the tick's (lguard.c). */
  int tick_rc = larb_guard_start_tick();
  if (tick_rc != 0)
    return luaL_error(L, "cannot start the preemption tick: %s",
                      strerror(-tick_rc));

  /* main runs arbor.main(chunk, script, args...). */
  require(L, "arbor.main", 1);
  lua_insert(L, -2);
  lua_pushstring(L, opts->script);
  for (int i = 1; i < opts->argc; i++) lua_pushstring(L, opts->argv[i]);
  arb_proc_t *main = larb_spawn(L, opts->argc + 1);
  ctx->main_pid = main->pid;
  larb_log_set_main_pid(main->pid);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Running and tearing down
** ======================================================================*/

static void teardown(host_t *host, lua_State *L) {
  larb_ctx_t *ctx = &host->ctx;
  larb_guard_stop_tick();
  arb_reason_release(ctx->node, ctx->runaway_reason);
  arb_reason_release(ctx->node, ctx->oom_reason);
  larb_service_close();
  if (host->rt_ready) larb_port_close(ctx); /* no OS process left */
  larb_notify_close();
  larb_net_close();
  larb_stdin_close();
  arb_node_free(ctx->node);
  ctx->node = NULL;
  arb_names_free(ctx->names);
  if (host->rt_ready) arb_rt_close(&host->rt);
  lua_close(L);
  free(ctx->free_refs);
  if (host->log_ready) larb_log_close();
}

int larb_host_run(const larb_host_opts_t *opts) {
  host_t host;
  memset(&host, 0, sizeof(host));
  larb_ctx_t *ctx = &host.ctx;
  lua_State *L = lua_newstate(counting_lua_alloc, NULL);
  if (L == NULL) {
    host_message("cannot create a Lua state");
    return 1;
  }
  larb_set_ctx(L, ctx, 0);
  ctx->L = L;
  ctx->opts = opts;
  host.fail_code = 1;

  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, &host);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    host_message(msg ? msg : "(error object is not a string)");
    int code = host.fail_code;
    teardown(&host, L);
    return code;
  }

  lua_limit = opts->max_memory;
  arb_rt_run(&host.rt);
  lua_limit = 0;

  int code = ctx->exit_code;
  teardown(&host, L);
  return code;
}

/* }====================================================================== */
