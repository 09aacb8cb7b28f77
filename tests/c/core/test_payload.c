/*
** test_payload.c: byte payloads (host/core/payload.h): a copy of the
** bytes with a NUL after them, the reserved tag, exact accounting on the
** counting allocator, out of memory giving 0 with nothing allocated, and
** a byte payload dropped undelivered by a subject reaching free_payload.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "counting_alloc.h"
#include "node.h"
#include "payload.h"

static counting_alloc_t ca;

static int setup(void **state) {
  (void)state;
  counting_alloc_install(&ca);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  counting_alloc_uninstall();
  assert_true(counting_alloc_clean(&ca));
  return 0;
}

static void test_bytes_copy_and_tag(void **state) {
  (void)state;
  char line[] = "a line\n\0with a NUL";
  intptr_t p = arb_bytes_new(line, sizeof(line) - 1);
  assert_int_not_equal(p, 0);
  assert_true(arb_payload_is_bytes(p));
  line[0] = 'X'; /* a copy: the sender's buffer can change */
  size_t len = 0;
  const char *data = arb_bytes_data(p, &len);
  assert_int_equal(len, sizeof(line) - 1);
  assert_memory_equal(data, "a line\n\0with a NUL", len);
  assert_int_equal(data[len], '\0');
  assert_int_equal(ca.live_allocs, 1);
  arb_bytes_free(p);
}

static void test_bytes_empty(void **state) {
  (void)state;
  intptr_t p = arb_bytes_new(NULL, 0);
  assert_true(arb_payload_is_bytes(p));
  size_t len = 99;
  assert_string_equal(arb_bytes_data(p, &len), "");
  assert_int_equal(len, 0);
  arb_bytes_free(p);
}

static void test_bytes_out_of_memory(void **state) {
  (void)state;
  counting_alloc_fail_after(&ca, 0);
  assert_int_equal(arb_bytes_new("x", 1), 0);
  counting_alloc_fail_after(&ca, -1);
  assert_int_equal(ca.live_allocs, 0);
  assert_int_equal(ca.failures, 1);
}

static void test_other_tags_are_not_bytes(void **state) {
  (void)state;
  for (intptr_t v = 0; v < 64; v++)
    assert_int_equal(arb_payload_is_bytes(v), (v & 3) == 3);
}

/* The embedder's free_payload: routes byte payloads to arb_bytes_free. */
static int freed;
static void free_payload(void *ud, intptr_t payload) {
  (void)ud;
  if (arb_payload_is_bytes(payload)) {
    arb_bytes_free(payload);
    freed++;
  }
}

static void test_undelivered_bytes_are_freed(void **state) {
  (void)state;
  static const arb_node_ops_t ops = {free_payload, NULL, NULL, NULL};
  arb_node_t *node = arb_node_new(&ops, NULL);
  assert_non_null(node);
  arb_proc_t *p = arb_node_spawn(node);
  assert_non_null(p);
  arb_subject_t sub;
  arb_subject_init(node, &sub, p);
  freed = 0;
  assert_int_equal(arb_subject_send(node, &sub, arb_bytes_new("one", 3)), 0);
  assert_int_equal(arb_subject_send(node, &sub, arb_bytes_new("two", 3)), 0);
  intptr_t got;
  assert_int_equal(arb_subject_take(node, &sub, &got), 0);
  size_t len;
  assert_memory_equal(arb_bytes_data(got, &len), "one", 3);
  arb_bytes_free(got);
  arb_node_exit(node, p, &arb_reason_normal); /* "two" is dropped */
  assert_int_equal(freed, 1);
  /* To an ended owner: consumed and freed at once. */
  assert_int_equal(arb_subject_send(node, &sub, arb_bytes_new("late", 4)),
                   ARB_ENOPROC);
  assert_int_equal(freed, 2);
  arb_subject_fini(node, &sub);
  arb_node_free(node);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_bytes_copy_and_tag, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bytes_empty, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bytes_out_of_memory, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_other_tags_are_not_bytes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_undelivered_bytes_are_freed, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
