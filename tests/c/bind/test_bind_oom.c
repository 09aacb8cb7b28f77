/*
** test_bind_oom.c: out of memory at every step of the binding's creation
** calls that allocate, then commit (issue 10): process.send_after
** (host/bind/lprocess.c) and chip.start (host/bind/lchip.c).
**
** The fixture is the host's setup (lhost.c's pmain) cut down to what the
** two calls need: a real node, names table and rt loop, a lua_State with
** the binding's tables and the process and chip modules opened, and one
** caller process (spawned by larb_spawn) made the node's current process
** as the scheduler would; the calls run on that process's own thread.  The Lua allocator and the core allocator
** (counting_alloc.h) can each be told to fail after N more growths.
**
** For N = 0, 1, 2... until the call succeeds, with one allocator failing
** after N: the call fails cleanly (an error; no crash) and leaves nothing
** behind: no timer armed (no deadline, none fires), no process (live
** count unchanged), no timers/registries table entry, no registry name;
** the teardown then finds the core allocator clean, and ASan/LSan (the
** sanitizer build) any Lua or C leak.  Each N gets a fresh fixture.
** The run that succeeds checks that the call did commit (so the loop
** cannot pass by never reaching the end).
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <lualib.h>

#include "counting_alloc.h"
#include "larb.h"
#include "lhost.h"
#include "registry.h"

/* Enough for either call's every allocation; reaching it is a failure. */
enum { MAX_STEPS = 2000 };

/* {======================================================================
** A Lua allocator that fails after N growths
** ======================================================================*/

static long lua_fail_after = -1; /* -1: never; else growths still allowed */
static long lua_failures = 0;

static void *failing_lua_alloc(void *ud, void *ptr, size_t osize,
                               size_t nsize) {
  (void)ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (nsize > osize && lua_fail_after >= 0) {
    if (lua_fail_after == 0) {
      lua_failures++;
      return NULL;
    }
    lua_fail_after--;
  }
  return realloc(ptr, nsize);
}

/* }====================================================================== */

/* {======================================================================
** The fixture: node, loop, lua_State, one caller process
** ======================================================================*/

typedef struct fx_s {
  counting_alloc_t ca;
  larb_ctx_t ctx;
  arb_rt_t rt;
  lua_State *L;
  arb_proc_t *caller;
  lua_State *co; /* the caller's thread: the calls run on it */
  int base;      /* what its stack holds before a call (its body) */
} fx_t;

static void require_module(lua_State *L, const char *name) {
  lua_getglobal(L, "require");
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

/* pmain's steps, as far as the two calls need them. */
static int fx_setup_lua(lua_State *L) {
  fx_t *fx = lua_touserdata(L, 1);
  larb_ctx_t *ctx = &fx->ctx;
  lua_settop(L, 0);
  luaL_openlibs(L);
  larb_guard_init(L);
  larb_open_types(L);
  int *refs[] = {&ctx->values_ref, &ctx->procs_ref, &ctx->pids_ref,
                 &ctx->timers_ref, &ctx->registries_ref, &ctx->pool_ref};
  for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
    lua_newtable(L);
    if (refs[i] == &ctx->pids_ref) {
      lua_createtable(L, 0, 1);
      lua_pushliteral(L, "v");
      lua_setfield(L, -2, "__mode");
      lua_setmetatable(L, -2);
    }
    *refs[i] = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  larb_preload_modules(L);
  require_module(L, "process");
  lua_setglobal(L, "process");
  larb_cache_metatables(L);
  require_module(L, "chip");
  lua_setglobal(L, "chip");
  lua_pushliteral(L, "runaway");
  ctx->runaway_reason = larb_reason_from(L, -1);
  lua_pushliteral(L, "not enough memory");
  ctx->oom_reason = larb_reason_from(L, -1);
  lua_pop(L, 2);
  /* The caller: a process whose body never runs here. */
  luaL_loadstring(L, "return");
  fx->caller = larb_spawn(L, 0);
  return 0;
}

static fx_t *fx_new(void) {
  fx_t *fx = calloc(1, sizeof(*fx));
  assert_non_null(fx);
  counting_alloc_install(&fx->ca);
  lua_fail_after = -1;
  lua_failures = 0;
  fx->L = lua_newstate(failing_lua_alloc, NULL);
  assert_non_null(fx->L);
  larb_set_ctx(fx->L, &fx->ctx, 0); /* as lhost.c does */
  fx->ctx.L = fx->L;
  fx->ctx.node = arb_node_new(&larb_sched_node_ops, &fx->ctx);
  fx->ctx.names = arb_names_new();
  assert_non_null(fx->ctx.node);
  assert_non_null(fx->ctx.names);
  assert_int_equal(
      arb_rt_init(&fx->rt, fx->ctx.node, &larb_sched_rt_ops, &fx->ctx), 0);
  fx->ctx.rt = &fx->rt;
  lua_pushcfunction(fx->L, fx_setup_lua);
  lua_pushlightuserdata(fx->L, fx);
  if (lua_pcall(fx->L, 1, 0, 0) != LUA_OK)
    fail_msg("fixture setup: %s", lua_tostring(fx->L, -1));
  /* Run the caller as the scheduler does (lsched.c's host_resume). */
  assert_ptr_equal(arb_node_next(fx->ctx.node), fx->caller);
  fx->co = fx->caller->data;
  fx->base = lua_gettop(fx->co);
  fx->ctx.current_co = fx->co;
  return fx;
}

static void fx_free(fx_t *fx) {
  larb_ctx_t *ctx = &fx->ctx;
  lua_fail_after = -1;
  counting_alloc_fail_after(&fx->ca, -1);
  ctx->current_co = NULL;
  arb_node_release(ctx->node, fx->caller);
  arb_reason_release(ctx->node, ctx->runaway_reason);
  arb_reason_release(ctx->node, ctx->oom_reason);
  arb_node_free(ctx->node);
  ctx->node = NULL;
  arb_names_free(ctx->names);
  arb_rt_close(&fx->rt);
  lua_close(fx->L);
  free(ctx->free_refs);
  counting_alloc_uninstall();
  int clean = counting_alloc_clean(&fx->ca);
  size_t live = fx->ca.live_bytes, mism = fx->ca.size_mismatches;
  free(fx);
  if (!clean)
    fail_msg("core allocator not clean: %zu bytes live, %zu bad sizes", live,
             mism);
}

/* Number of entries in the registry table behind ref. */
static int table_entries(lua_State *L, int ref) {
  int n = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    n++;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return n;
}

/* What a call may leave behind, before it. */
typedef struct snap_s {
  uint32_t procs;
  int64_t deadline;
  int timers, registries;
} snap_t;

static snap_t snap(fx_t *fx) {
  snap_t s;
  s.procs = arb_node_count(fx->ctx.node);
  s.deadline = arb_node_next_deadline(fx->ctx.node);
  s.timers = table_entries(fx->L, fx->ctx.timers_ref);
  s.registries = table_entries(fx->L, fx->ctx.registries_ref);
  return s;
}

/* Which allocator fails. */
enum { FAIL_LUA, FAIL_CORE };

static void set_failing(fx_t *fx, int which, long n) {
  if (which == FAIL_LUA)
    lua_fail_after = n;
  else
    counting_alloc_fail_after(&fx->ca, n);
}

static long failures(fx_t *fx, int which) {
  return which == FAIL_LUA ? lua_failures : (long)fx->ca.failures;
}

/* Calls global table `mod`'s function `fn` with the arguments `args`
** pushes while the `which` allocator fails after n growths.  Returns the
** pcall status; leaves the results (or the error) on the stack. */
static int call_failing(fx_t *fx, int which, long n, const char *mod,
                        const char *fn, void (*args)(lua_State *L)) {
  lua_State *L = fx->co;
  lua_settop(L, fx->base);
  lua_getglobal(L, mod);
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  assert_int_equal(lua_type(L, -1), LUA_TFUNCTION);
  int top = lua_gettop(L);
  args(L);
  int nargs = lua_gettop(L) - top;
  lua_gc(L, LUA_GCCOLLECT); /* no collection debt decides the step */
  set_failing(fx, which, n);
  int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
  lua_fail_after = -1;
  counting_alloc_fail_after(&fx->ca, -1);
  return status;
}

/* The error a refused allocation raised names memory ("not enough
** memory" from Lua, "out of memory" from the binding). */
static void assert_memory_error(lua_State *L, int status) {
  assert_int_not_equal(status, LUA_OK);
  const char *msg = lua_tostring(L, -1);
  if (msg == NULL || strstr(msg, "memory") == NULL)
    fail_msg("not a memory error: %s", msg ? msg : "(not a string)");
}

/* }====================================================================== */

/* {======================================================================
** process.send_after
** ======================================================================*/

static void send_after_args(lua_State *L) {
  /* A subject of the caller's, a long delay, a table message. */
  lua_getglobal(L, "process");
  lua_getfield(L, -1, "new_subject");
  lua_remove(L, -2);
  lua_call(L, 0, 1);
  lua_pushinteger(L, 3600 * 1000);
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "tick");
  lua_setfield(L, -2, "kind");
  lua_pushinteger(L, 42);
  lua_setfield(L, -2, "n");
}

static void send_after_oom(int which) {
  int failed = 0;
  for (long n = 0; n < MAX_STEPS; n++) {
    fx_t *fx = fx_new();
    snap_t before = snap(fx);
    assert_int_equal(before.deadline, -1);
    int status =
        call_failing(fx, which, n, "process", "send_after", send_after_args);
    lua_State *L = fx->co;
    if (failures(fx, which) == 0) {
      /* Nothing refused: the call must have committed. */
      if (status != LUA_OK)
        fail_msg("send_after failed without running out of memory: %s",
                 lua_tostring(L, -1));
      assert_int_equal(luaL_testudata(L, -1, LARB_TIMER) != NULL, 1);
      assert_int_not_equal(*(arb_timer_id_t *)lua_touserdata(L, -1), 0);
      snap_t after = snap(fx);
      assert_int_equal(after.timers, before.timers + 1);
      assert_true(after.deadline > 0);
      assert_true(failed > 0); /* the loop did cover failures */
      print_message("%s, %s allocator: %d failure points, success after %ld\n",
                    "send_after", which == FAIL_LUA ? "Lua" : "core", failed, n);
      fx_free(fx);
      return;
    }
    /* A refused allocation: a clean error, or a timer all the same if the
    ** emergency collection made room.  Either way nothing half-made. */
    lua_gc(L, LUA_GCCOLLECT); /* what the call dropped goes */
    snap_t after = snap(fx);
    assert_int_equal(after.procs, before.procs);
    if (status != LUA_OK) {
      failed++;
      assert_memory_error(L, status);
      assert_int_equal(after.deadline, -1);
      assert_int_equal(after.timers, before.timers);
      /* no timer armed, even far in the future */
      assert_int_equal(arb_node_run_timers(fx->ctx.node, INT64_MAX), 0);
    } else {
      assert_int_equal(after.timers, before.timers + 1);
      assert_true(after.deadline > 0);
    }
    fx_free(fx);
  }
  fail_msg("send_after never succeeded in %d steps", MAX_STEPS);
}

static void test_send_after_lua_oom(void **state) {
  (void)state;
  send_after_oom(FAIL_LUA);
}

static void test_send_after_core_oom(void **state) {
  (void)state;
  send_after_oom(FAIL_CORE);
}

/* }====================================================================== */

/* {======================================================================
** chip.start
** ======================================================================*/

static const char REG_NAME[] = "oom_registry";

static void chip_start_args(lua_State *L) {
  lua_pushstring(L, REG_NAME);
}

static void chip_start_oom(int which) {
  int failed = 0;
  for (long n = 0; n < MAX_STEPS; n++) {
    fx_t *fx = fx_new();
    snap_t before = snap(fx);
    int status = call_failing(fx, which, n, "chip", "start", chip_start_args);
    lua_State *L = fx->co;
    int ok = status == LUA_OK && lua_gettop(L) > fx->base &&
             !lua_isnil(L, fx->base + 1);
    if (failures(fx, which) == 0) {
      if (!ok)
        fail_msg("chip.start failed without running out of memory: %s",
                 luaL_tolstring(L, -1, NULL));
      snap_t after = snap(fx);
      assert_int_equal(after.procs, before.procs + 1);
      assert_int_equal(after.registries, before.registries + 1);
      assert_non_null(
          arb_names_lookup(fx->ctx.names, REG_NAME, sizeof(REG_NAME) - 1));
      assert_true(failed > 0);
      print_message("%s, %s allocator: %d failure points, success after %ld\n",
                    "chip.start", which == FAIL_LUA ? "Lua" : "core", failed, n);
      fx_free(fx);
      return;
    }
    /* The handle and anything else the call made go now, while the node
    ** lives: a half-made handle's __gc must be harmless. */
    if (!ok) assert_memory_error(L, status);
    lua_settop(L, fx->base);
    lua_gc(L, LUA_GCCOLLECT);
    snap_t after = snap(fx);
    if (!ok) {
      failed++;
      assert_int_equal(after.procs, before.procs);
      assert_int_equal(after.registries, before.registries);
      assert_null(
          arb_names_lookup(fx->ctx.names, REG_NAME, sizeof(REG_NAME) - 1));
      assert_int_equal(after.deadline, before.deadline);
    } else {
      assert_int_equal(after.procs, before.procs + 1);
      assert_non_null(
          arb_names_lookup(fx->ctx.names, REG_NAME, sizeof(REG_NAME) - 1));
    }
    fx_free(fx);
  }
  fail_msg("chip.start never succeeded in %d steps", MAX_STEPS);
}

static void test_chip_start_lua_oom(void **state) {
  (void)state;
  chip_start_oom(FAIL_LUA);
}

static void test_chip_start_core_oom(void **state) {
  (void)state;
  chip_start_oom(FAIL_CORE);
}

/* }====================================================================== */

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_send_after_lua_oom),
      cmocka_unit_test(test_send_after_core_oom),
      cmocka_unit_test(test_chip_start_lua_oom),
      cmocka_unit_test(test_chip_start_core_oom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
