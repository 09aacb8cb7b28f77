/*
** test_create.c: allocate, then commit.  Every multi-step creation in the
** core either completes or leaves nothing behind: a spawn that runs out
** of memory makes no process; arb_node_spawn_abort takes a process back
** with what was attached to it (subjects, queued messages, exit hooks, a
** registry and its name) and no proc_ended callback; a link, a registry
** or a name that cannot be allocated changes nothing.  Each case runs on
** the counting allocator (support/counting_alloc.h, via node_fixture.h),
** whose teardown fails the test if anything is left allocated.
*/
#include "node_fixture.h"
#include "registry.h"

/* Counts the processes the node holds. */
static uint32_t procs(fixture_t *f) { return arb_node_count(f->node); }

static void test_spawn_out_of_memory_makes_no_process(void **state) {
  fixture_t *f = *state;
  /* A fresh node has no spare process struct: the first spawn allocates
  ** (the slot table, then the struct).  Fail each allocation in turn. */
  int refused = 0;
  arb_proc_t *p = NULL;
  for (long budget = 0; p == NULL; budget++) {
    assert_true(budget < 8);
    counting_alloc_fail_after(&f->ca, budget);
    p = arb_node_spawn(f->node);
    counting_alloc_fail_after(&f->ca, -1);
    CHECK(f);
    if (p == NULL) {
      refused++;
      assert_int_equal(procs(f), 0);
      assert_null(arb_node_next(f->node)); /* nothing runnable */
    }
  }
  assert_true(refused > 0);
  assert_int_equal(procs(f), 1);
  assert_non_null(arb_node_lookup(f->node, p->pid));
}

static void test_spawn_abort_leaves_nothing_and_tells_nobody(void **state) {
  fixture_t *f = *state;
  arb_proc_t *before = spawn(f);
  arb_pid_t before_pid = before->pid;
  arb_proc_t *p = spawn(f);
  arb_pid_t pid = p->pid;
  arb_subject_t *sub = &f->subs[0];
  arb_subject_init(f->node, sub, p);
  send_new(f, sub, 0); /* a queued message is dropped with the subject */
  size_t ended_before = f->nended;
  arb_node_spawn_abort(f->node, p);
  CHECK(f);
  assert_null(arb_node_lookup(f->node, pid));
  assert_null(arb_node_lookup_any(f->node, pid));
  assert_int_equal(f->nended, ended_before); /* no proc_ended */
  assert_null(sub->owner_proc);
  assert_int_equal(arb_subject_send(f->node, sub, payload_new(f)),
                   ARB_ENOPROC);
  /* The run queue holds only the process made before. */
  arb_proc_t *next = arb_node_next(f->node);
  assert_non_null(next);
  assert_int_equal(next->pid, before_pid);
  arb_node_release(f->node, next);
  arb_subject_fini(f->node, sub);
}

static void test_link_out_of_memory_changes_nothing(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_proc_t *b = spawn(f);
  counting_alloc_fail_after(&f->ca, 0);
  assert_int_equal(arb_link(f->node, a, b->pid), ARB_ENOMEM);
  counting_alloc_fail_after(&f->ca, -1);
  CHECK(f);
  assert_int_equal(arb_links_of(a, NULL, 0), 0);
  assert_int_equal(arb_links_of(b, NULL, 0), 0);
  /* What spawn_link does when the link fails: the child goes, unseen. */
  size_t ended_before = f->nended;
  arb_node_spawn_abort(f->node, b);
  assert_int_equal(f->nended, ended_before);
  assert_int_equal(procs(f), 1);
}

static int destroyed_calls;
static void reg_destroyed(void *ud, arb_registry_t *reg) {
  (void)ud, (void)reg;
  destroyed_calls++;
}
static void reg_release(void *ud, intptr_t v) { (void)ud, (void)v; }
static const arb_registry_ops_t reg_ops = {reg_release, reg_destroyed};

/* chip.start's steps, failing at each allocation in turn: the registry,
** then its name.  Whatever failed, taking the process back leaves the
** node, the names table and the allocator as they were. */
static void test_registry_and_name_fail_at_every_step(void **state) {
  fixture_t *f = *state;
  arb_names_t *names = arb_names_new();
  assert_non_null(names);
  int completed = 0;
  for (long budget = 0; !completed; budget++) {
    assert_true(budget < 32);
    destroyed_calls = 0;
    arb_proc_t *p = spawn(f);
    arb_pid_t pid = p->pid;
    counting_alloc_fail_after(&f->ca, budget);
    arb_registry_t *reg = arb_registry_new(f->node, p, &reg_ops, NULL);
    int rc = reg ? arb_names_take(names, reg, "sessions", 8) : ARB_ENOMEM;
    counting_alloc_fail_after(&f->ca, -1);
    if (reg == NULL || rc != 0) {
      assert_int_equal(rc, ARB_ENOMEM);
      arb_node_spawn_abort(f->node, p);
      CHECK(f);
      assert_int_equal(destroyed_calls, reg ? 1 : 0);
      assert_null(arb_names_lookup(names, "sessions", 8));
      assert_null(arb_node_lookup(f->node, pid));
      continue;
    }
    completed = 1;
    assert_true(arb_names_lookup(names, "sessions", 8) == reg);
    /* The name is the registry's until its process goes. */
    arb_node_spawn_abort(f->node, p);
    assert_int_equal(destroyed_calls, 1);
    assert_null(arb_names_lookup(names, "sessions", 8));
  }
  arb_names_free(names);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(
          test_spawn_out_of_memory_makes_no_process, setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_spawn_abort_leaves_nothing_and_tells_nobody, setup, teardown),
      cmocka_unit_test_setup_teardown(test_link_out_of_memory_changes_nothing,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(
          test_registry_and_name_fail_at_every_step, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
