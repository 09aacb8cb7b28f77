/*
** test_procinfo.c: the read-only accessors of host/core/procinfo.h, which
** `arbor status --processes` and arbor.introspect are built on: what a
** process has queued, what it waits on, its links and monitors, and the
** iteration over live processes.
*/
#include "node_fixture.h"
#include "procinfo.h"

static arb_proc_info_t info_of(fixture_t *f, arb_pid_t pid) {
  arb_proc_info_t in;
  memset(&in, 0xAB, sizeof(in)); /* everything must be written */
  assert_int_equal(arb_proc_info(f->node, pid, &in), 0);
  return in;
}

/* Makes p current and parks it WAITING at time now, with a timeout
** (-1: none). */
static void park_at(fixture_t *f, arb_proc_t *p, int64_t now, int64_t ms) {
  while (f->node->current != p) {
    arb_proc_t *q = arb_node_next(f->node);
    assert_non_null(q);
    if (q != p) arb_node_release(f->node, q);
  }
  assert_int_equal(arb_node_wait(f->node, p, now, ms), 0);
  arb_node_release(f->node, p);
  CHECK(f);
}

static void test_a_fresh_process_has_nothing(void **state) {
  fixture_t *f = *state;
  arb_proc_t *p = spawn(f);
  arb_proc_info_t in = info_of(f, p->pid);
  assert_int_equal(in.pid, p->pid);
  assert_int_equal(in.state, ARB_PROC_RUNNABLE);
  assert_int_equal(in.subjects + in.links + in.monitors + in.monitored_by, 0);
  assert_int_equal(in.queued + in.exits_queued + in.downs_queued, 0);
  assert_int_equal(in.selected_subjects + in.selected_monitors, 0);
  assert_int_equal(in.exits_selected + in.timer_armed + in.trap_exit, 0);
  assert_int_equal(in.wake_at, -1);
  assert_int_equal(in.bytes, sizeof(arb_proc_t));
}

static void test_an_ended_or_unknown_pid_is_enoproc(void **state) {
  fixture_t *f = *state;
  arb_proc_t *p = spawn(f);
  arb_pid_t pid = p->pid;
  arb_node_exit(f->node, p, &arb_reason_normal);
  arb_proc_info_t in;
  assert_int_equal(arb_proc_info(f->node, pid, &in), ARB_ENOPROC);
  assert_int_equal(arb_proc_info(f->node, ARB_PID_NONE, &in), ARB_ENOPROC);
  assert_int_equal(arb_proc_info(f->node, (arb_pid_t)99 << 32 | 7, &in),
                   ARB_ENOPROC);
}

static void test_messages_on_every_subject_are_counted(void **state) {
  fixture_t *f = *state;
  arb_proc_t *p = spawn(f);
  arb_subject_init(f->node, &f->subs[0], p);
  arb_subject_init(f->node, &f->subs[1], p);
  for (int i = 0; i < 3; i++) send_new(f, &f->subs[0], 0);
  send_new(f, &f->subs[1], 0);
  arb_proc_info_t in = info_of(f, p->pid);
  assert_int_equal(in.subjects, 2);
  assert_int_equal(in.queued, 4);
  assert_int_equal(in.bytes, sizeof(arb_proc_t) + 4 * sizeof(arb_msg_t));
  take_expect(f, &f->subs[0], 1);
  assert_int_equal(info_of(f, p->pid).queued, 3);
}

static void test_a_waiting_process_shows_what_it_selected(void **state) {
  fixture_t *f = *state;
  arb_proc_t *p = spawn(f);
  arb_subject_init(f->node, &f->subs[0], p);
  arb_subject_init(f->node, &f->subs[1], p);
  f->subs[1].selected = 1; /* as a receive on subs[1] marks it */
  p->flags |= ARB_PROC_EXITS_SELECTED;
  park_at(f, p, 1000, 250);
  arb_proc_info_t in = info_of(f, p->pid);
  assert_int_equal(in.state, ARB_PROC_WAITING);
  assert_int_equal(in.selected_subjects, 1);
  assert_int_equal(in.exits_selected, 1);
  assert_int_equal(in.timer_armed, 1);
  assert_int_equal(in.wake_at, 1250);
  /* Runnable again: nothing is "selected" any more. */
  send_new(f, &f->subs[1], 0);
  in = info_of(f, p->pid);
  assert_int_equal(in.state, ARB_PROC_RUNNABLE);
  assert_int_equal(in.selected_subjects + in.exits_selected, 0);
  assert_int_equal(in.wake_at, -1);
}

static void test_links_monitors_and_trapped_exits(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f);
  a->flags |= ARB_PROC_TRAP_EXIT;
  assert_int_equal(arb_link(f->node, a, b->pid), 0);
  arb_monitor_init(f->node, &f->mons[0], a, c->pid); /* a watches c */
  arb_monitor_init(f->node, &f->mons[1], b, a->pid); /* b watches a */
  arb_proc_info_t in = info_of(f, a->pid);
  assert_int_equal(in.trap_exit, 1);
  assert_int_equal(in.links, 1);
  assert_int_equal(in.monitors, 1);
  assert_int_equal(in.monitored_by, 1);
  assert_int_equal(in.downs_queued, 0);
  /* c ends: a's monitor fires and its DOWN waits; b ends: a traps it. */
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  arb_node_exit(f->node, c, r);
  arb_reason_release(f->node, r);
  arb_node_exit(f->node, b, &arb_reason_shutdown);
  CHECK(f);
  in = info_of(f, a->pid);
  assert_int_equal(in.downs_queued, 1);
  assert_int_equal(in.exits_queued, 1);
  assert_int_equal(in.links, 0);
  assert_int_equal(in.monitored_by, 0);
  assert_int_equal(in.bytes, sizeof(arb_proc_t) + sizeof(arb_exitmsg_t));
  arb_monitor_fini(f->node, &f->mons[0]);
  arb_monitor_fini(f->node, &f->mons[1]);
}

static void test_next_live_visits_each_live_process_once(void **state) {
  fixture_t *f = *state;
  arb_proc_t *p[5];
  for (int i = 0; i < 5; i++) p[i] = spawn(f);
  arb_pid_t gone = p[2]->pid;
  arb_node_exit(f->node, p[2], &arb_reason_normal);
  uint32_t cursor = 0;
  arb_pid_t pid, seen[8];
  int n = 0;
  while ((pid = arb_node_next_live(f->node, &cursor)) != ARB_PID_NONE) {
    assert_true(n < 8);
    seen[n++] = pid;
  }
  assert_int_equal(n, 4);
  for (int i = 0; i < n; i++) {
    assert_true(seen[i] != gone);
    assert_non_null(arb_node_lookup(f->node, seen[i]));
  }
  assert_int_equal(arb_node_next_live(f->node, &cursor), ARB_PID_NONE);
  assert_int_equal(arb_node_current_pid(f->node), ARB_PID_NONE);
  arb_proc_t *q = arb_node_next(f->node);
  assert_int_equal(arb_node_current_pid(f->node), q->pid);
  arb_node_release(f->node, q);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_a_fresh_process_has_nothing),
      T(test_an_ended_or_unknown_pid_is_enoproc),
      T(test_messages_on_every_subject_are_counted),
      T(test_a_waiting_process_shows_what_it_selected),
      T(test_links_monitors_and_trapped_exits),
      T(test_next_live_visits_each_live_process_once),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
