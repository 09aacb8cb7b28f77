/*
** test_err.c: the one error map (host/core/err.h): every code has a
** distinct value, name and message, stays out of libuv's range, and the
** kinds the Lua API contract promises are the ones the map gives.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"

typedef struct row_s {
  int code;
  const char *name, *kind, *msg;
} row_t;

static const row_t rows[] = {
#define XX(name, code, kind, msg) {code, #name, kind, msg},
    ARB_ERRNO_MAP(XX)
#undef XX
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static void test_err_codes_are_distinct_and_out_of_libuv_range(void **state) {
  (void)state;
  for (size_t i = 0; i < NROWS; i++) {
    assert_true(rows[i].code <= -30000);
    assert_true(arb_err_is_ours(rows[i].code));
    for (size_t j = i + 1; j < NROWS; j++) {
      assert_int_not_equal(rows[i].code, rows[j].code);
      assert_string_not_equal(rows[i].name, rows[j].name);
      assert_string_not_equal(rows[i].kind, rows[j].kind);
    }
  }
}

static void test_err_lookups_agree_with_the_map(void **state) {
  (void)state;
  for (size_t i = 0; i < NROWS; i++) {
    assert_string_equal(arb_err_name(rows[i].code), rows[i].name);
    assert_string_equal(arb_strkind(rows[i].code), rows[i].kind);
    assert_string_equal(arb_strerror(rows[i].code), rows[i].msg);
  }
}

static void test_err_contract_kinds(void **state) {
  (void)state;
  assert_string_equal(arb_strkind(ARB_ENOPROC), "noproc");
  assert_string_equal(arb_strkind(ARB_EEXIST), "name_taken");
  assert_string_equal(arb_strkind(ARB_ENOTFOUND), "not_found");
  assert_string_equal(arb_strkind(ARB_ERUNNING), "running");
  assert_string_equal(arb_strkind(ARB_ENOMEM), "enomem");
  assert_string_equal(arb_strerror(ARB_ENOMEM), "out of memory");
}

static void test_err_unknown_and_success(void **state) {
  (void)state;
  assert_false(arb_err_is_ours(0));
  assert_false(arb_err_is_ours(-2)); /* ENOENT as libuv gives it */
  assert_null(arb_strkind(-2));
  assert_string_equal(arb_err_name(0), "OK");
  assert_string_equal(arb_err_name(-2), "EUNKNOWN");
  assert_string_equal(arb_strerror(0), "success");
  assert_string_equal(arb_strerror(-29999), "unknown error");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_err_codes_are_distinct_and_out_of_libuv_range),
      cmocka_unit_test(test_err_lookups_agree_with_the_map),
      cmocka_unit_test(test_err_contract_kinds),
      cmocka_unit_test(test_err_unknown_and_success),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
