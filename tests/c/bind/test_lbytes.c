/*
** test_lbytes.c: the binding's side of byte payloads (host/bind/larb.c
** over host/core/payload.h), on a real lua_State with no host around it:
** a byte payload received becomes one Lua string with the same bytes and
** is freed; one dropped undelivered is freed; one read without being
** taken stays; and when making the string runs out of Lua memory the
** error goes on and the buffer is freed all the same.  The core's
** allocator is the counting one, so a leaked buffer fails the teardown.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counting_alloc.h"
#include "larb.h"
#include "payload.h"

static counting_alloc_t ca;
static size_t lua_budget = SIZE_MAX; /* bytes Lua may still grow by */

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (ptr == NULL) osize = 0;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (nsize > osize) {
    if (nsize - osize > lua_budget) return NULL;
    if (lua_budget != SIZE_MAX) lua_budget -= nsize - osize;
  }
  return realloc(ptr, nsize);
}

static int setup(void **state) {
  counting_alloc_install(&ca);
  lua_budget = SIZE_MAX;
  lua_State *L = lua_newstate(lua_alloc, NULL);
  if (L == NULL) return -1;
  *state = L;
  return 0;
}

static int teardown(void **state) {
  lua_close(*state);
  counting_alloc_uninstall();
  assert_true(counting_alloc_clean(&ca));
  return 0;
}

static void test_received_bytes_become_one_string(void **state) {
  lua_State *L = *state;
  static const char data[] = "line one\n\0binary";
  intptr_t p = arb_bytes_new(data, sizeof(data) - 1);
  assert_int_not_equal(p, 0);
  larb_push_unref(L, p); /* takes it */
  size_t len;
  const char *s = lua_tolstring(L, -1, &len);
  assert_int_equal(lua_type(L, -1), LUA_TSTRING);
  assert_int_equal(len, sizeof(data) - 1);
  assert_memory_equal(s, data, len);
  assert_int_equal(ca.live_allocs, 0); /* the buffer is gone */
  lua_pop(L, 1);
}

static void test_read_without_taking_keeps_the_buffer(void **state) {
  lua_State *L = *state;
  intptr_t p = arb_bytes_new("kept", 4);
  larb_push_ref(L, p);
  assert_string_equal(lua_tostring(L, -1), "kept");
  assert_int_equal(ca.live_allocs, 1);
  larb_unref(L, p); /* dropped undelivered: freed */
  assert_int_equal(ca.live_allocs, 0);
  lua_pop(L, 1);
}

/* (payload) -> string, so the raise of a failed push can be caught. */
static int push_taken(lua_State *L) {
  larb_push_unref(L, (intptr_t)lua_touserdata(L, 1));
  return 1;
}

static void test_out_of_lua_memory_still_frees_the_buffer(void **state) {
  lua_State *L = *state;
  size_t big = 1 << 16;
  char *data = calloc(1, big);
  assert_non_null(data);
  intptr_t p = arb_bytes_new(data, big);
  free(data);
  assert_int_not_equal(p, 0);
  lua_pushcfunction(L, push_taken);
  lua_pushlightuserdata(L, (void *)p);
  lua_budget = 1024; /* too little for the string */
  int status = lua_pcall(L, 1, 1, 0);
  lua_budget = SIZE_MAX;
  assert_int_equal(status, LUA_ERRMEM);
  assert_int_equal(ca.live_allocs, 0);
  lua_pop(L, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_received_bytes_become_one_string,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_read_without_taking_keeps_the_buffer, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_out_of_lua_memory_still_frees_the_buffer, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
