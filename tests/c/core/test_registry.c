/*
** test_registry.c: cmocka tests for host/core/registry.c.
**
** Each test runs on a fresh node with a counting (and, on demand,
** failing) allocator; the teardown frees the node and checks that every
** byte allocated through the core came back.  Values registered are small
** integers; the release callback counts how often each one is released so
** tests can assert "released exactly once".  Every mutation is followed by
** arb_registry_check.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "counting_alloc.h"
#include "node.h"
#include "registry.h"

#define NREL 4096

static struct {
  arb_node_t *node;
  counting_alloc_t ca; /* support/counting_alloc.h, shared by core tests */
  int procs_ended;
  long released;
  int rel[NREL]; /* releases per value */
  int destroyed;
  arb_registry_t *destroyed_reg;
  arb_subject_t **subs; /* libc memory: every subject made, for teardown */
  size_t nsubs, capsubs;
} F;

static void on_proc_ended(void *ud, arb_proc_t *p) {
  (void)ud, (void)p;
  F.procs_ended++;
}

static void on_release(void *ud, intptr_t value) {
  (void)ud;
  F.released++;
  if (value >= 0 && value < NREL) F.rel[value]++;
}

static void on_destroyed(void *ud, arb_registry_t *reg) {
  (void)ud;
  F.destroyed++;
  F.destroyed_reg = reg;
}

static const arb_registry_ops_t reg_ops = {on_release, on_destroyed};

static int setup(void **state) {
  (void)state;
  memset(&F, 0, sizeof(F));
  counting_alloc_install(&F.ca);
  arb_node_ops_t ops = {NULL, NULL, on_proc_ended, NULL};
  F.node = arb_node_new(&ops, NULL);
  return F.node ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  counting_alloc_fail_after(&F.ca, -1);
  if (F.node) arb_node_free(F.node);
  for (size_t i = 0; i < F.nsubs; i++) arb_free(F.subs[i], sizeof(**F.subs));
  free(F.subs);
  counting_alloc_uninstall();
  assert_true(counting_alloc_clean(&F.ca));
  return 0;
}

static arb_proc_t *spawn(void) {
  arb_proc_t *p = arb_node_spawn(F.node);
  assert_non_null(p);
  return p;
}

/* Makes a subject owned by p; its memory is freed at teardown. */
static arb_subject_t *subject(arb_proc_t *p) {
  arb_subject_t *s = arb_calloc(1, sizeof(*s));
  assert_non_null(s);
  arb_subject_init(F.node, s, p);
  if (F.nsubs == F.capsubs) {
    F.capsubs = F.capsubs ? F.capsubs * 2 : 64;
    F.subs = realloc(F.subs, F.capsubs * sizeof(*F.subs));
    assert_non_null(F.subs);
  }
  F.subs[F.nsubs++] = s;
  return s;
}

/* Ends the live process pid with reason normal. */
static void end(arb_pid_t pid) {
  arb_proc_t *p = arb_node_lookup(F.node, pid);
  assert_non_null(p);
  arb_node_exit(F.node, p, &arb_reason_normal);
  assert_null(arb_node_lookup(F.node, pid));
}

static arb_registry_t *new_registry(arb_pid_t *pid) {
  arb_proc_t *p = spawn();
  if (pid) *pid = p->pid;
  arb_registry_t *reg = arb_registry_new(F.node, p, &reg_ops, NULL);
  assert_non_null(reg);
  assert_int_equal(arb_registry_check(reg), 0);
  return reg;
}

static int reg_in(arb_registry_t *reg, arb_registry_key_t key,
                  arb_subject_t *s, intptr_t value) {
  int rc = arb_registry_register(reg, &key, s, value);
  assert_int_equal(arb_registry_check(reg), 0);
  return rc;
}

/* Collects the values of key's members; checks count against the walk. */
static uint32_t values_of(arb_registry_t *reg, arb_registry_key_t key,
                          intptr_t *out, uint32_t max) {
  arb_registry_iter_t it;
  uint32_t n = arb_registry_members(reg, &key, &it), i = 0;
  intptr_t v;
  arb_subject_t *s;
  while (arb_registry_member_next(&it, &s, &v)) {
    assert_non_null(s);
    if (i < max) out[i] = v;
    i++;
  }
  assert_int_equal(i, n);
  assert_int_equal(arb_registry_count(reg, &key), n);
  return n;
}

static uint32_t count_of(arb_registry_t *reg, arb_registry_key_t key) {
  return arb_registry_count(reg, &key);
}

#define S(lit) arb_registry_key_str(lit, sizeof(lit) - 1)
#define I(n) arb_registry_key_int(n)

static void expect_values(arb_registry_t *reg, arb_registry_key_t key,
                          const intptr_t *want, uint32_t n) {
  intptr_t got[64];
  assert_int_equal(values_of(reg, key, got, 64), n);
  for (uint32_t i = 0; i < n; i++) assert_int_equal(got[i], want[i]);
}

/* {======================================================================
** Membership
** ======================================================================*/

static void test_registry_members_in_registration_order(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_subject_t *s[5];
  for (int i = 0; i < 5; i++) s[i] = subject(spawn());
  int order[5] = {3, 0, 4, 1, 2};
  for (int i = 0; i < 5; i++)
    assert_int_equal(reg_in(reg, S("g"), s[order[i]], order[i]),
                     ARB_REGISTRY_ADDED);
  intptr_t want[5] = {3, 0, 4, 1, 2};
  expect_values(reg, S("g"), want, 5);
  assert_int_equal(arb_registry_size(reg), 5);
  assert_int_equal(arb_registry_ngroups(reg), 1);
  assert_int_equal(F.released, 0);
}

static void test_registry_unknown_group_has_no_members(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_registry_iter_t it;
  arb_registry_key_t k = S("nobody");
  assert_int_equal(arb_registry_members(reg, &k, &it), 0);
  assert_int_equal(arb_registry_member_next(&it, NULL, NULL), 0);
  reg_in(reg, S("g"), subject(spawn()), 1);
  assert_int_equal(arb_registry_members(reg, &k, &it), 0);
  assert_int_equal(arb_registry_member_next(&it, NULL, NULL), 0);
  assert_int_equal(arb_registry_count(reg, &k), 0);
}

static void test_registry_duplicate_pair_stored_once(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_subject_t *a = subject(spawn()), *b = subject(spawn());
  assert_int_equal(reg_in(reg, S("g"), a, 1), ARB_REGISTRY_ADDED);
  assert_int_equal(reg_in(reg, S("g"), b, 2), ARB_REGISTRY_ADDED);
  assert_int_equal(reg_in(reg, S("g"), a, 3), ARB_REGISTRY_PRESENT);
  assert_int_equal(F.rel[3], 1); /* the duplicate's value, at once */
  assert_int_equal(F.released, 1);
  intptr_t want[2] = {1, 2};
  expect_values(reg, S("g"), want, 2);
  assert_int_equal(arb_registry_size(reg), 2);
}

static void test_registry_subject_in_many_groups(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_subject_t *a = subject(spawn());
  for (int i = 0; i < 10; i++)
    assert_int_equal(reg_in(reg, I(i), a, i), ARB_REGISTRY_ADDED);
  assert_int_equal(arb_registry_ngroups(reg), 10);
  assert_int_equal(arb_registry_size(reg), 10);
  for (int i = 0; i < 10; i++) {
    intptr_t want = i;
    expect_values(reg, I(i), &want, 1);
  }
}

static void test_registry_subjects_of_one_process_are_distinct(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_proc_t *p = spawn();
  arb_subject_t *a = subject(p), *b = subject(p);
  assert_int_equal(reg_in(reg, S("g"), a, 1), ARB_REGISTRY_ADDED);
  assert_int_equal(reg_in(reg, S("g"), b, 2), ARB_REGISTRY_ADDED);
  arb_registry_iter_t it;
  arb_registry_key_t k = S("g");
  arb_subject_t *got[2];
  assert_int_equal(arb_registry_members(reg, &k, &it), 2);
  assert_true(arb_registry_member_next(&it, &got[0], NULL));
  assert_true(arb_registry_member_next(&it, &got[1], NULL));
  assert_false(arb_registry_member_next(&it, NULL, NULL));
  assert_ptr_equal(got[0], a);
  assert_ptr_equal(got[1], b);
}

/* }====================================================================== */

/* {======================================================================
** Delisting on death
** ======================================================================*/

static void test_registry_owner_exit_delists_from_all_groups(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_proc_t *pa = spawn(), *pb = spawn(), *pc = spawn();
  arb_pid_t a = pa->pid;
  arb_subject_t *a1 = subject(pa), *a2 = subject(pa);
  arb_subject_t *b1 = subject(pb), *c1 = subject(pc);
  reg_in(reg, S("x"), b1, 10);
  reg_in(reg, S("x"), a1, 11);
  reg_in(reg, S("x"), c1, 12);
  reg_in(reg, S("x"), a2, 13);
  reg_in(reg, S("y"), a1, 20);
  reg_in(reg, S("y"), c1, 21);
  reg_in(reg, S("z"), a2, 30);
  reg_in(reg, S("z"), b1, 31);
  end(a);
  assert_int_equal(arb_registry_check(reg), 0);
  int gone[4] = {11, 13, 20, 30};
  for (int i = 0; i < 4; i++) assert_int_equal(F.rel[gone[i]], 1);
  assert_int_equal(F.released, 4);
  intptr_t x[2] = {10, 12}, y[1] = {21}, z[1] = {31};
  expect_values(reg, S("x"), x, 2);
  expect_values(reg, S("y"), y, 1);
  expect_values(reg, S("z"), z, 1);
  assert_int_equal(arb_registry_size(reg), 4);
}

static void test_registry_group_vanishes_when_last_member_leaves(
    void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_proc_t *pa = spawn(), *pb = spawn();
  arb_pid_t a = pa->pid, b = pb->pid;
  arb_subject_t *a1 = subject(pa), *a2 = subject(pa), *b1 = subject(pb);
  size_t empty = arb_alloc_in_use();
  reg_in(reg, S("only-a"), a1, 1);
  reg_in(reg, S("both"), a2, 2);
  reg_in(reg, S("both"), b1, 3);
  size_t before = arb_alloc_in_use();
  end(a);
  assert_int_equal(arb_registry_check(reg), 0);
  assert_true(arb_alloc_in_use() < before);
  assert_int_equal(arb_registry_ngroups(reg), 1);
  arb_registry_iter_t it;
  arb_registry_key_t k;
  uint32_t count;
  assert_int_equal(arb_registry_groups(reg, &it), 1);
  assert_true(arb_registry_group_next(&it, &k, &count));
  assert_int_equal(k.kind, ARB_REGISTRY_KEY_STR);
  assert_string_equal(k.str, "both");
  assert_int_equal(count, 1);
  assert_false(arb_registry_group_next(&it, &k, &count));
  end(b);
  assert_int_equal(arb_registry_check(reg), 0);
  assert_int_equal(arb_registry_ngroups(reg), 0);
  assert_int_equal(arb_registry_groups(reg, &it), 0);
  assert_false(arb_registry_group_next(&it, NULL, NULL));
  assert_int_equal(arb_alloc_in_use(), empty); /* tables given back too */
  /* The group comes back empty-handed and works again. */
  reg_in(reg, S("only-a"), subject(spawn()), 4);
  intptr_t want = 4;
  expect_values(reg, S("only-a"), &want, 1);
}

static void test_registry_linked_deaths_delist_before_exit_returns(
    void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_proc_t *pa = spawn(), *pb = spawn(), *pc = spawn();
  arb_pid_t a = pa->pid, b = pb->pid, c = pc->pid;
  assert_int_equal(arb_link(F.node, pa, b), 0);
  reg_in(reg, S("g"), subject(pa), 1);
  reg_in(reg, S("g"), subject(pb), 2);
  reg_in(reg, S("g"), subject(pc), 3);
  arb_node_exit(F.node, pa, &arb_reason_shutdown);
  assert_null(arb_node_lookup(F.node, a));
  assert_null(arb_node_lookup(F.node, b));
  assert_int_equal(arb_registry_check(reg), 0);
  intptr_t want = 3;
  expect_values(reg, S("g"), &want, 1);
  (void)c;
}

static void test_registry_dead_owner_subject_stores_nothing(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_proc_t *p = spawn();
  arb_pid_t pid = p->pid;
  arb_subject_t *s = subject(p);
  end(pid);
  assert_null(s->owner_proc);
  assert_int_equal(reg_in(reg, S("g"), s, 7), ARB_REGISTRY_DEAD);
  assert_int_equal(F.rel[7], 1);
  assert_int_equal(arb_registry_size(reg), 0);
  assert_int_equal(arb_registry_ngroups(reg), 0);
}

/* An exit hook that registers its own process's subject while it ends. */
static struct {
  arb_exit_hook_t hook;
  arb_registry_t *reg;
  arb_subject_t *sub;
  int rc;
} late;

static void late_register(arb_node_t *node, arb_exit_hook_t *h,
                          arb_proc_t *p) {
  (void)node, (void)h, (void)p;
  arb_registry_key_t k = S("g");
  late.rc = arb_registry_register(late.reg, &k, late.sub, 5);
}

static void test_registry_ending_owner_subject_stores_nothing(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_proc_t *p = spawn();
  late.reg = reg;
  late.sub = subject(p);
  late.rc = 99;
  late.hook.fn = late_register;
  arb_node_hook_exit(p, &late.hook);
  end(p->pid);
  assert_int_equal(late.rc, ARB_REGISTRY_DEAD);
  assert_int_equal(F.rel[5], 1);
  assert_int_equal(arb_registry_size(reg), 0);
  assert_int_equal(arb_registry_check(reg), 0);
}

/* }====================================================================== */

/* {======================================================================
** Keys
** ======================================================================*/

static void test_registry_integer_and_equal_float_are_one_key(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_subject_t *a = subject(spawn()), *b = subject(spawn());
  assert_int_equal(reg_in(reg, I(1), a, 1), ARB_REGISTRY_ADDED);
  assert_int_equal(reg_in(reg, arb_registry_key_float(1.0), a, 2),
                   ARB_REGISTRY_PRESENT);
  assert_int_equal(reg_in(reg, arb_registry_key_float(1.0), b, 3),
                   ARB_REGISTRY_ADDED);
  intptr_t want[2] = {1, 3};
  expect_values(reg, I(1), want, 2);
  expect_values(reg, arb_registry_key_float(1.0), want, 2);
  /* -0.0 is 0; 1.5 and 2^63 stay floats; "1" is a string. */
  assert_int_equal(reg_in(reg, arb_registry_key_float(-0.0), a, 4),
                   ARB_REGISTRY_ADDED);
  assert_int_equal(count_of(reg, I(0)), 1);
  reg_in(reg, arb_registry_key_float(1.5), a, 5);
  reg_in(reg, arb_registry_key_float(0x1p63), a, 6);
  reg_in(reg, I(INT64_MAX), a, 7);
  reg_in(reg, I(INT64_MIN), a, 8);
  assert_int_equal(
      count_of(reg, arb_registry_key_float(-0x1p63)),
      1);
  reg_in(reg, S("1"), a, 9);
  assert_int_equal(arb_registry_ngroups(reg), 7);
  assert_int_equal(count_of(reg, I(1)), 2);
  assert_int_equal(count_of(reg, S("1")), 1);
  /* Groups come back normalised, oldest first. */
  arb_registry_iter_t it;
  arb_registry_key_t k;
  assert_int_equal(arb_registry_groups(reg, &it), 7);
  assert_true(arb_registry_group_next(&it, &k, NULL));
  assert_int_equal(k.kind, ARB_REGISTRY_KEY_INT);
  assert_int_equal(k.i, 1);
  assert_true(arb_registry_group_next(&it, &k, NULL));
  assert_int_equal(k.kind, ARB_REGISTRY_KEY_INT);
  assert_int_equal(k.i, 0);
  assert_true(arb_registry_group_next(&it, &k, NULL));
  assert_int_equal(k.kind, ARB_REGISTRY_KEY_FLOAT);
  assert_true(k.f == 1.5);
  assert_true(arb_registry_group_next(&it, &k, NULL));
  assert_int_equal(k.kind, ARB_REGISTRY_KEY_FLOAT);
  assert_true(k.f == 0x1p63);
}

static void test_registry_string_keys_are_copied_bytes(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_subject_t *a = subject(spawn());
  char buf[8] = {'a', '\0', 'b', 'c'};
  reg_in(reg, arb_registry_key_str(buf, 4), a, 1);
  reg_in(reg, arb_registry_key_str(buf, 1), a, 2);
  reg_in(reg, arb_registry_key_str("", 0), a, 3);
  reg_in(reg, arb_registry_key_str(NULL, 0), a, 4); /* the same empty key */
  assert_int_equal(F.rel[4], 1);
  memset(buf, 'z', sizeof(buf));
  intptr_t one = 1, two = 2, three = 3;
  expect_values(reg, arb_registry_key_str("a\0bc", 4), &one, 1);
  expect_values(reg, S("a"), &two, 1);
  expect_values(reg, S(""), &three, 1);
  assert_int_equal(count_of(reg, S("zzzz")),
                   0);
  arb_registry_iter_t it;
  arb_registry_key_t k;
  arb_registry_groups(reg, &it);
  assert_true(arb_registry_group_next(&it, &k, NULL));
  assert_int_equal(k.len, 4);
  assert_memory_equal(k.str, "a\0bc", 4);
}

static void test_registry_boolean_keys_differ_from_numbers(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_subject_t *a = subject(spawn());
  reg_in(reg, arb_registry_key_bool(1), a, 1);
  reg_in(reg, arb_registry_key_bool(0), a, 2);
  reg_in(reg, I(1), a, 3);
  reg_in(reg, I(0), a, 4);
  assert_int_equal(reg_in(reg, arb_registry_key_bool(5), a, 5),
                   ARB_REGISTRY_PRESENT);
  arb_registry_key_t odd = {ARB_REGISTRY_KEY_BOOL, 42, 0.0, NULL, 0};
  assert_int_equal(reg_in(reg, odd, a, 6), ARB_REGISTRY_PRESENT);
  assert_int_equal(arb_registry_ngroups(reg), 4);
  intptr_t t = 1, f = 2;
  expect_values(reg, arb_registry_key_bool(1), &t, 1);
  expect_values(reg, arb_registry_key_bool(0), &f, 1);
}

static void test_registry_rejects_nan_and_bad_keys(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_subject_t *a = subject(spawn());
  double nan = 0.0 / 0.0;
  assert_int_equal(reg_in(reg, arb_registry_key_float(nan), a, 1),
                   ARB_EINVAL);
  arb_registry_key_t bad = {77, 0, 0.0, NULL, 0};
  assert_int_equal(reg_in(reg, bad, a, 2), ARB_EINVAL);
  assert_int_equal(reg_in(reg, arb_registry_key_str(NULL, 3), a, 3),
                   ARB_EINVAL);
  assert_int_equal(F.released, 3);
  assert_int_equal(arb_registry_size(reg), 0);
  arb_registry_iter_t it;
  arb_registry_key_t k = arb_registry_key_float(nan);
  assert_int_equal(arb_registry_members(reg, &k, &it), 0);
  assert_false(arb_registry_member_next(&it, NULL, NULL));
}

/* }====================================================================== */

/* {======================================================================
** Registry lifetime
** ======================================================================*/

static void test_registry_process_end_frees_everything(void **state) {
  (void)state;
  arb_pid_t rpid;
  arb_registry_t *reg = new_registry(&rpid);
  assert_int_equal(arb_registry_pid(reg), rpid);
  arb_pid_t pids[4];
  for (int i = 0; i < 4; i++) {
    arb_proc_t *p = spawn();
    pids[i] = p->pid;
    reg_in(reg, I(i % 2), subject(p), i);
    reg_in(reg, S("all"), subject(p), 100 + i);
  }
  end(rpid);
  assert_int_equal(F.destroyed, 1);
  assert_ptr_equal(F.destroyed_reg, reg);
  assert_int_equal(F.released, 8);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(F.rel[i], 1);
    assert_int_equal(F.rel[100 + i], 1);
  }
  /* Hooks were detached: these exits must not touch the freed registry. */
  for (int i = 0; i < 4; i++) end(pids[i]);
  assert_int_equal(F.released, 8);
  assert_int_equal(F.destroyed, 1);
  assert_int_equal(arb_node_check(F.node), 0);
}

static void test_registry_explicit_destroy_detaches_hooks(void **state) {
  (void)state;
  arb_pid_t rpid;
  arb_registry_t *reg = new_registry(&rpid);
  arb_proc_t *p = spawn();
  arb_pid_t pid = p->pid;
  reg_in(reg, S("g"), subject(p), 1);
  reg_in(reg, S("h"), subject(p), 2);
  arb_registry_destroy(reg);
  assert_int_equal(F.destroyed, 1);
  assert_int_equal(F.released, 2);
  end(pid);
  end(rpid);
  assert_int_equal(F.destroyed, 1);
  assert_int_equal(F.released, 2);
}

static void test_registry_new_on_ended_process_fails(void **state) {
  (void)state;
  arb_proc_t *p = spawn();
  arb_pid_t pid = p->pid;
  end(pid);
  assert_null(arb_registry_new(F.node, p, &reg_ops, NULL));
  assert_null(arb_registry_new(F.node, NULL, &reg_ops, NULL));
}

static void test_registry_may_list_its_own_process(void **state) {
  (void)state;
  arb_pid_t rpid;
  arb_registry_t *reg = new_registry(&rpid);
  arb_proc_t *rp = arb_node_lookup(F.node, rpid);
  reg_in(reg, S("g"), subject(rp), 1);
  reg_in(reg, S("g"), subject(spawn()), 2);
  end(rpid);
  assert_int_equal(F.destroyed, 1);
  assert_int_equal(F.released, 2);
}

static void test_registry_own_entries_delisted_before_it_ends(void **state) {
  (void)state;
  /* rp owns registry b and subjects in a and b: b's own hook runs first
  ** and detaches b's owner hook; a's owner hook runs after b is gone. */
  arb_proc_t *rp = spawn();
  arb_pid_t rpid = rp->pid;
  arb_registry_t *a = new_registry(NULL);
  arb_registry_t *b = arb_registry_new(F.node, rp, &reg_ops, NULL);
  assert_non_null(b);
  reg_in(a, S("g"), subject(rp), 1);
  reg_in(b, S("g"), subject(rp), 2);
  end(rpid);
  assert_int_equal(F.destroyed, 1);
  assert_int_equal(F.rel[1], 1);
  assert_int_equal(F.rel[2], 1);
  assert_int_equal(arb_registry_size(a), 0);
  assert_int_equal(arb_registry_check(a), 0);
}

static void test_registry_node_free_ends_registry_and_members(void **state) {
  (void)state;
  /* arb_node_free ends the newest first: late_p (delisted from a and b),
  ** then b's process, a's process (releasing early's entry), early. */
  arb_proc_t *early = spawn();
  arb_registry_t *a = new_registry(NULL);
  reg_in(a, S("g"), subject(early), 1);
  arb_registry_t *b = new_registry(NULL);
  arb_proc_t *late_p = spawn();
  reg_in(b, S("g"), subject(late_p), 2);
  reg_in(a, S("g"), subject(late_p), 3);
  arb_node_free(F.node);
  F.node = NULL;
  assert_int_equal(F.destroyed, 2);
  assert_int_equal(F.released, 3);
}

/* }====================================================================== */

/* {======================================================================
** Change stamps
** ======================================================================*/

static uint64_t stamp_of(arb_registry_t *reg, arb_registry_key_t key) {
  return arb_registry_stamp(reg, &key);
}

static void test_registry_stamp_zero_for_unknown_and_invalid(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  assert_int_equal(stamp_of(reg, S("nobody")), 0);
  assert_int_equal(stamp_of(reg, arb_registry_key_float(0.0 / 0.0)), 0);
  arb_registry_key_t junk = {99, 0, 0.0, NULL, 0};
  assert_int_equal(stamp_of(reg, junk), 0);
  reg_in(reg, S("g"), subject(spawn()), 1);
  assert_true(stamp_of(reg, S("g")) != 0);
  assert_int_equal(stamp_of(reg, S("h")), 0);
  /* 2.0 is the group 2. */
  reg_in(reg, I(2), subject(spawn()), 2);
  assert_int_equal(stamp_of(reg, arb_registry_key_float(2.0)),
                   stamp_of(reg, I(2)));
}

static void test_registry_stamp_changes_only_with_members(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  arb_proc_t *pa = spawn(), *pb = spawn();
  arb_pid_t a = pa->pid;
  arb_subject_t *a1 = subject(pa), *b1 = subject(pb);
  reg_in(reg, S("x"), a1, 1);
  uint64_t x1 = stamp_of(reg, S("x"));
  /* Reading does not change it; other groups' changes do not either. */
  intptr_t v[1];
  values_of(reg, S("x"), v, 1);
  assert_int_equal(stamp_of(reg, S("x")), x1);
  reg_in(reg, S("y"), b1, 2);
  reg_in(reg, S("y"), a1, 3);
  assert_int_equal(stamp_of(reg, S("x")), x1);
  uint64_t y1 = stamp_of(reg, S("y"));
  assert_true(y1 != x1);
  /* A duplicate pair and a dead subject change nothing. */
  assert_int_equal(reg_in(reg, S("x"), a1, 4), ARB_REGISTRY_PRESENT);
  assert_int_equal(stamp_of(reg, S("x")), x1);
  /* A new member does. */
  assert_int_equal(reg_in(reg, S("x"), b1, 5), ARB_REGISTRY_ADDED);
  uint64_t x2 = stamp_of(reg, S("x"));
  assert_true(x2 != x1);
  /* A member's death changes every group it was in, and only those. */
  reg_in(reg, S("z"), b1, 6);
  uint64_t z1 = stamp_of(reg, S("z"));
  end(a);
  uint64_t x3 = stamp_of(reg, S("x")), y2 = stamp_of(reg, S("y"));
  assert_true(x3 != 0 && x3 != x2 && x3 != x1);
  assert_true(y2 != 0 && y2 != y1);
  assert_int_equal(stamp_of(reg, S("z")), z1);
  arb_proc_t *pc = spawn();
  assert_int_equal(reg_in(reg, S("z"), subject(pc), 7), ARB_REGISTRY_ADDED);
  end(pc->pid);
  assert_int_equal(reg_in(reg, S("z"), F.subs[F.nsubs - 1], 8),
                   ARB_REGISTRY_DEAD);
  uint64_t z2 = stamp_of(reg, S("z"));
  assert_true(z2 != z1);
  assert_int_equal(reg_in(reg, S("z"), F.subs[F.nsubs - 1], 9),
                   ARB_REGISTRY_DEAD);
  assert_int_equal(stamp_of(reg, S("z")), z2);
}

/* A group freed and made again never gets back a stamp it had: a cache
** keyed by (group, stamp) cannot mistake the new group for the old. */
static void test_registry_recreated_group_gets_a_new_stamp(void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  uint64_t seen[64];
  int nseen = 0;
  for (int round = 0; round < 16; round++) {
    arb_proc_t *p = spawn();
    reg_in(reg, S("again"), subject(p), round);
    uint64_t st = stamp_of(reg, S("again"));
    assert_true(st != 0);
    for (int i = 0; i < nseen; i++) assert_true(seen[i] != st);
    seen[nseen++] = st;
    end(p->pid); /* the group empties and is freed, tables too */
    assert_int_equal(stamp_of(reg, S("again")), 0);
    assert_int_equal(arb_registry_ngroups(reg), 0);
  }
}

/* }====================================================================== */

/* {======================================================================
** Names
** ======================================================================*/

static void test_names_take_lookup_and_conflict(void **state) {
  (void)state;
  arb_names_t *names = arb_names_new();
  assert_non_null(names);
  arb_registry_t *a = new_registry(NULL), *b = new_registry(NULL);
  assert_null(arb_names_lookup(names, "sessions", 8));
  assert_int_equal(arb_names_take(names, a, "sessions", 8), 0);
  assert_ptr_equal(arb_names_lookup(names, "sessions", 8), a);
  assert_int_equal(arb_names_take(names, b, "sessions", 8), ARB_EEXIST);
  assert_int_equal(arb_names_take(names, a, "other", 5), ARB_EINVAL);
  assert_null(arb_names_lookup(names, "session", 7));
  assert_int_equal(arb_names_take(names, b, "session", 7), 0);
  assert_ptr_equal(arb_names_lookup(names, "session", 7), b);
  /* Many names grow the table. */
  for (int i = 0; i < 50; i++) {
    char nm[16];
    int len = snprintf(nm, sizeof(nm), "r%d", i);
    arb_registry_t *r = new_registry(NULL);
    assert_int_equal(arb_names_take(names, r, nm, (size_t)len), 0);
    assert_ptr_equal(arb_names_lookup(names, nm, (size_t)len), r);
  }
  assert_ptr_equal(arb_names_lookup(names, "sessions", 8), a);
  arb_names_free(names);
}

static void test_names_freed_when_registry_ends(void **state) {
  (void)state;
  arb_names_t *names = arb_names_new();
  arb_pid_t apid;
  arb_registry_t *a = new_registry(&apid);
  assert_int_equal(arb_names_take(names, a, "x", 1), 0);
  end(apid);
  assert_int_equal(F.destroyed, 1);
  assert_null(arb_names_lookup(names, "x", 1));
  arb_registry_t *b = new_registry(NULL);
  assert_int_equal(arb_names_take(names, b, "x", 1), 0);
  assert_ptr_equal(arb_names_lookup(names, "x", 1), b);
  arb_registry_destroy(b);
  assert_null(arb_names_lookup(names, "x", 1));
  arb_names_free(names);
}

static void test_names_free_leaves_registries_nameless(void **state) {
  (void)state;
  arb_names_t *names = arb_names_new();
  arb_pid_t apid;
  arb_registry_t *a = new_registry(&apid);
  assert_int_equal(arb_names_take(names, a, "x", 1), 0);
  arb_names_free(names);
  end(apid); /* must not touch the freed table */
  assert_int_equal(F.destroyed, 1);
}

/* }====================================================================== */

/* {======================================================================
** Scale
** ======================================================================*/

static void test_registry_100k_subjects_in_1000_groups(void **state) {
  (void)state;
  enum { N = 100000, G = 1000 };
  arb_registry_t *reg = new_registry(NULL);
  arb_pid_t *pids = malloc(N * sizeof(*pids));
  assert_non_null(pids);
  for (int i = 0; i < N; i++) {
    arb_proc_t *p = spawn();
    pids[i] = p->pid;
    arb_registry_key_t k = arb_registry_key_int(i % G);
    assert_int_equal(arb_registry_register(reg, &k, subject(p), NREL),
                     ARB_REGISTRY_ADDED);
  }
  assert_int_equal(arb_registry_check(reg), 0);
  assert_int_equal(arb_registry_size(reg), N);
  assert_int_equal(arb_registry_ngroups(reg), G);
  assert_int_equal(values_of(reg, I(7), NULL, 0), N / G);
  /* Every tenth process also joins a shared group. */
  for (int i = 0; i < N; i += 10) {
    arb_registry_key_t k = S("shared");
    arb_registry_register(reg, &k, F.subs[i], NREL);
  }
  assert_int_equal(arb_registry_check(reg), 0);
  /* A second registry with the same subjects, destroyed while they live:
  ** destroy must be linear and leave no hook behind. */
  arb_registry_t *other = new_registry(NULL);
  for (int i = 0; i < N; i++) {
    arb_registry_key_t k = arb_registry_key_int(i % G);
    arb_registry_register(other, &k, F.subs[i], NREL);
  }
  assert_int_equal(arb_registry_size(other), N);
  arb_registry_destroy(other);
  assert_int_equal(F.released, N);
  F.released = 0;
  for (int i = 0; i < N; i++) end(pids[i]);
  assert_int_equal(arb_registry_check(reg), 0);
  assert_int_equal(arb_registry_size(reg), 0);
  assert_int_equal(arb_registry_ngroups(reg), 0);
  assert_int_equal(F.released, N + N / 10);
  free(pids);
}

/* }====================================================================== */

/* {======================================================================
** Out of memory
** ======================================================================*/

static void test_registry_register_oom_leaves_registry_unchanged(
    void **state) {
  (void)state;
  arb_registry_t *reg = new_registry(NULL);
  /* Enough entries that the next new group, owner and entry each need a
  ** table to grow: 8 groups, 8 owners, 8 entries fill their tables. */
  for (int i = 0; i < 8; i++) reg_in(reg, I(i), subject(spawn()), i);
  arb_proc_t *p = spawn();
  arb_subject_t *s = subject(p);
  int failures = 0;
  for (long n = 0;; n++) {
    size_t size = arb_registry_size(reg);
    long released = F.released;
    counting_alloc_fail_after(&F.ca, n);
    int rc = reg_in(reg, S("new"), s, 100);
    counting_alloc_fail_after(&F.ca, -1);
    if (rc == ARB_REGISTRY_ADDED) break;
    assert_int_equal(rc, ARB_ENOMEM);
    assert_int_equal(F.released, released + 1);
    assert_int_equal(arb_registry_size(reg), size);
    assert_int_equal(count_of(reg, S("new")),
                     0);
    failures++;
  }
  assert_true(failures >= 3);
  assert_int_equal(F.rel[100], failures);
  intptr_t want = 100;
  expect_values(reg, S("new"), &want, 1);
  /* The process's end must delist the one entry that was stored. */
  end(p->pid);
  assert_int_equal(arb_registry_check(reg), 0);
  assert_int_equal(arb_registry_size(reg), 8);
  assert_int_equal(F.rel[100], failures + 1);
}

static void test_registry_new_and_names_oom(void **state) {
  (void)state;
  arb_proc_t *p = spawn();
  counting_alloc_fail_after(&F.ca, 0);
  assert_null(arb_registry_new(F.node, p, &reg_ops, NULL));
  assert_null(arb_names_new());
  counting_alloc_fail_after(&F.ca, -1);
  arb_names_t *names = arb_names_new();
  arb_registry_t *reg = arb_registry_new(F.node, p, &reg_ops, NULL);
  assert_non_null(reg);
  for (long n = 0;; n++) {
    counting_alloc_fail_after(&F.ca, n);
    int rc = arb_names_take(names, reg, "x", 1);
    counting_alloc_fail_after(&F.ca, -1);
    if (rc == 0) break;
    assert_int_equal(rc, ARB_ENOMEM);
    assert_null(arb_names_lookup(names, "x", 1));
  }
  assert_ptr_equal(arb_names_lookup(names, "x", 1), reg);
  arb_registry_destroy(reg);
  arb_names_free(names);
}

/* }====================================================================== */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_registry_members_in_registration_order),
      T(test_registry_unknown_group_has_no_members),
      T(test_registry_duplicate_pair_stored_once),
      T(test_registry_subject_in_many_groups),
      T(test_registry_subjects_of_one_process_are_distinct),
      T(test_registry_owner_exit_delists_from_all_groups),
      T(test_registry_group_vanishes_when_last_member_leaves),
      T(test_registry_linked_deaths_delist_before_exit_returns),
      T(test_registry_dead_owner_subject_stores_nothing),
      T(test_registry_ending_owner_subject_stores_nothing),
      T(test_registry_integer_and_equal_float_are_one_key),
      T(test_registry_string_keys_are_copied_bytes),
      T(test_registry_boolean_keys_differ_from_numbers),
      T(test_registry_rejects_nan_and_bad_keys),
      T(test_registry_process_end_frees_everything),
      T(test_registry_explicit_destroy_detaches_hooks),
      T(test_registry_new_on_ended_process_fails),
      T(test_registry_may_list_its_own_process),
      T(test_registry_own_entries_delisted_before_it_ends),
      T(test_registry_node_free_ends_registry_and_members),
      T(test_registry_stamp_zero_for_unknown_and_invalid),
      T(test_registry_stamp_changes_only_with_members),
      T(test_registry_recreated_group_gets_a_new_stamp),
      T(test_names_take_lookup_and_conflict),
      T(test_names_freed_when_registry_ends),
      T(test_names_free_leaves_registries_nameless),
      T(test_registry_100k_subjects_in_1000_groups),
      T(test_registry_register_oom_leaves_registry_unchanged),
      T(test_registry_new_and_names_oom),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
