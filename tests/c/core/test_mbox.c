/*
** test_mbox.c: mbox.c: subjects (one FIFO each), sequence numbers across
** subjects, sends to ended owners, dropping queued payloads, waking a
** waiting owner, the trapped-exit queue and message-node recycling.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "node_fixture.h"

/* Makes p the current process and parks it in WAITING (no timeout), and
** checks that it is WAITING. */
static void park(fixture_t *f, arb_proc_t *p) {
  fixture_park(f, p);
  assert_int_equal(p->state, ARB_PROC_WAITING);
}

/* Counts p's occurrences in the run queue. */
static int in_runq(const fixture_t *f, const arb_proc_t *p) {
  int n = 0;
  const arb_list_t *it;
  arb_list_each(it, &f->node->runq) {
    if (it == &p->runq) n++;
  }
  return n;
}

/* {======================================================================
** Subjects
** ======================================================================*/

static void test_subject_init_links_it_to_its_owner(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s1 = &f->subs[0], *s2 = &f->subs[1];
  arb_subject_init(f->node, s1, a);
  arb_subject_init(f->node, s2, a);
  assert_int_equal(s1->owner, a->pid);
  assert_ptr_equal(s1->owner_proc, a);
  assert_true(s1->id != 0 && s2->id != 0 && s1->id != s2->id);
  assert_int_equal(s1->len, 0);
  assert_int_equal(arb_subject_peek(s1), UINT64_MAX);
  assert_ptr_equal(a->subjects.next, &s1->owner_node);
  assert_ptr_equal(a->subjects.prev, &s2->owner_node);
  CHECK(f);
}

static void test_subject_delivers_in_fifo_order(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, a);
  intptr_t m[10];
  for (int i = 0; i < 10; i++) m[i] = send_new(f, s, 0);
  assert_int_equal(s->len, 10);
  for (int i = 0; i < 5; i++) take_expect(f, s, m[i]);
  intptr_t extra = send_new(f, s, 0);
  for (int i = 5; i < 10; i++) take_expect(f, s, m[i]);
  take_expect(f, s, extra);
  assert_int_equal(s->len, 0);
  assert_null(arb_subject_head(s));
  assert_null(s->tail);
  CHECK(f);
}

static void test_take_from_empty_subject_returns_enotfound(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, a);
  intptr_t got = 1234;
  assert_int_equal(arb_subject_take(f->node, s, &got), ARB_ENOTFOUND);
  assert_int_equal(got, 1234);
  intptr_t m = send_new(f, s, 0);
  take_expect(f, s, m);
  assert_int_equal(arb_subject_take(f->node, s, &got), ARB_ENOTFOUND);
  assert_int_equal(arb_subject_peek(s), UINT64_MAX);
}

static void test_peek_picks_the_oldest_across_subjects(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  enum { K = 4, N = 40 };
  for (int k = 0; k < K; k++) arb_subject_init(f->node, &f->subs[k], a);
  /* Interleave sends over the subjects in a scrambled order. */
  intptr_t order[N];
  uint64_t last_seq = 0;
  for (int i = 0; i < N; i++) {
    arb_subject_t *s = &f->subs[(i * 7 + i / 3) % K];
    order[i] = send_new(f, s, 0);
    assert_true(i == 0 || s->tail->seq > last_seq);
    last_seq = s->tail->seq;
  }
  /* Receiving "oldest of any" by peeking each head gives the send order. */
  for (int i = 0; i < N; i++) {
    int best = -1;
    uint64_t best_seq = UINT64_MAX;
    for (int k = 0; k < K; k++) {
      uint64_t seq = arb_subject_peek(&f->subs[k]);
      if (seq < best_seq) {
        best_seq = seq;
        best = k;
      }
    }
    assert_true(best >= 0);
    take_expect(f, &f->subs[best], order[i]);
  }
  for (int k = 0; k < K; k++)
    assert_int_equal(arb_subject_peek(&f->subs[k]), UINT64_MAX);
}

static void test_take_from_one_subject_leaves_others_untouched(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s1 = &f->subs[0], *s2 = &f->subs[1];
  arb_subject_init(f->node, s1, a);
  arb_subject_init(f->node, s2, a);
  intptr_t x1 = send_new(f, s2, 0);
  intptr_t m1 = send_new(f, s1, 0);
  intptr_t x2 = send_new(f, s2, 0);
  intptr_t m2 = send_new(f, s1, 0);
  uint64_t peek2 = arb_subject_peek(s2);
  take_expect(f, s1, m1);
  take_expect(f, s1, m2);
  assert_int_equal(s2->len, 2);
  assert_int_equal(arb_subject_peek(s2), peek2);
  take_expect(f, s2, x1);
  take_expect(f, s2, x2);
}

static void test_subjects_of_different_owners_are_independent(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_subject_init(f->node, &f->subs[0], a);
  arb_subject_init(f->node, &f->subs[1], b);
  intptr_t ma = send_new(f, &f->subs[0], 0);
  intptr_t mb = send_new(f, &f->subs[1], 0);
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
  assert_false(f->payload_live[ma]); /* dropped with a */
  take_expect(f, &f->subs[1], mb);
}

static void test_send_to_subject_of_ended_owner_frees_payload(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, a);
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
  assert_null(s->owner_proc);
  size_t allocs = f->ca.live_allocs;
  intptr_t m = send_new(f, s, ARB_ENOPROC);
  assert_false(f->payload_live[m]); /* freed by the node */
  assert_int_equal(f->ca.live_allocs, allocs);
  assert_int_equal(s->len, 0);
  /* Also after the slot was reused by another process. */
  arb_proc_t *b = spawn(f);
  assert_int_equal(arb_pid_slot(b->pid), arb_pid_slot(s->owner));
  m = send_new(f, s, ARB_ENOPROC);
  assert_false(f->payload_live[m]);
  assert_true(arb_list_empty(&b->subjects));
  arb_subject_fini(f->node, s); /* harmless after the owner ended */
}

static void test_owner_ending_frees_queued_payloads(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s1 = &f->subs[0], *s2 = &f->subs[1];
  arb_subject_init(f->node, s1, a);
  arb_subject_init(f->node, s2, a);
  intptr_t m[6];
  for (int i = 0; i < 6; i++) m[i] = send_new(f, i % 2 ? s1 : s2, 0);
  arb_node_exit(f->node, a, &arb_reason_shutdown);
  CHECK(f);
  for (int i = 0; i < 6; i++) assert_false(f->payload_live[m[i]]);
  assert_int_equal(s1->len, 0);
  assert_null(arb_subject_head(s1));
  assert_null(s2->owner_proc);
  intptr_t got;
  assert_int_equal(arb_subject_take(f->node, s1, &got), ARB_ENOTFOUND);
}

static void test_owner_ending_while_current_frees_queued_payloads(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, a);
  intptr_t m = send_new(f, s, 0);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_exit(f->node, a, &arb_reason_normal);
  assert_false(f->payload_live[m]);
  send_new(f, s, ARB_ENOPROC); /* DEAD but not yet released */
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_subject_fini_drops_queued_payloads(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s1 = &f->subs[0], *s2 = &f->subs[1];
  arb_subject_init(f->node, s1, a);
  arb_subject_init(f->node, s2, a);
  intptr_t m1 = send_new(f, s1, 0), m2 = send_new(f, s1, 0);
  intptr_t keep = send_new(f, s2, 0);
  arb_subject_fini(f->node, s1);
  CHECK(f);
  assert_false(f->payload_live[m1]);
  assert_false(f->payload_live[m2]);
  assert_int_equal(s1->len, 0);
  assert_null(s1->owner_proc);
  assert_ptr_equal(a->subjects.next, &s2->owner_node);
  assert_ptr_equal(a->subjects.prev, &s2->owner_node);
  /* A send after fini is refused and consumed. */
  intptr_t late = send_new(f, s1, ARB_ENOPROC);
  assert_false(f->payload_live[late]);
  arb_subject_fini(f->node, s1); /* twice is harmless */
  take_expect(f, s2, keep);
  /* The owner ending later does not touch the finished subject. */
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
}

static void test_send_out_of_memory_frees_payload_and_returns_enomem(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, a);
  counting_alloc_fail_after(&f->ca, 0);
  intptr_t m = send_new(f, s, ARB_ENOMEM);
  counting_alloc_fail_after(&f->ca, -1);
  assert_false(f->payload_live[m]);
  assert_int_equal(s->len, 0);
  assert_int_equal(arb_subject_peek(s), UINT64_MAX);
  intptr_t ok = send_new(f, s, 0);
  take_expect(f, s, ok);
}

static void test_message_nodes_are_recycled(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, a);
  intptr_t m[8];
  for (int i = 0; i < 8; i++) m[i] = send_new(f, s, 0);
  for (int i = 0; i < 8; i++) take_expect(f, s, m[i]);
  size_t allocs = f->ca.total_allocs;
  /* Pooled nodes serve later sends, even with allocation failing. */
  counting_alloc_fail_after(&f->ca, 0);
  for (int round = 0; round < 100; round++) {
    for (int i = 0; i < 8; i++) m[i] = send_new(f, s, 0);
    for (int i = 0; i < 8; i++) take_expect(f, s, m[i]);
  }
  counting_alloc_fail_after(&f->ca, -1);
  assert_int_equal(f->ca.total_allocs, allocs);
  assert_int_equal(f->ca.failures, 0);
}

/* }====================================================================== */

/* {======================================================================
** Waking the owner
** ======================================================================*/

static void test_send_to_selected_subject_wakes_waiting_owner(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, a);
  park(f, a);
  s->selected = 1;
  intptr_t m = send_new(f, s, 0);
  assert_int_equal(a->state, ARB_PROC_RUNNABLE);
  assert_int_equal(in_runq(f, a), 1);
  send_new(f, s, 0); /* already runnable: queued once only */
  assert_int_equal(in_runq(f, a), 1);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_wait_done(f->node, a);
  take_expect(f, s, m);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_send_to_unselected_subject_does_not_wake(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *sel = &f->subs[0], *other = &f->subs[1];
  arb_subject_init(f->node, sel, a);
  arb_subject_init(f->node, other, a);
  park(f, a);
  sel->selected = 1;
  intptr_t m = send_new(f, other, 0);
  assert_int_equal(a->state, ARB_PROC_WAITING);
  assert_int_equal(in_runq(f, a), 0);
  assert_null(arb_node_next(f->node));
  /* The message waits; the selected one then wakes it. */
  intptr_t n = send_new(f, sel, 0);
  assert_int_equal(a->state, ARB_PROC_RUNNABLE);
  assert_true(arb_subject_peek(other) < arb_subject_peek(sel));
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_wait_done(f->node, a);
  take_expect(f, sel, n);
  take_expect(f, other, m);
  arb_node_release(f->node, a);
}

static void test_send_to_selected_subject_of_running_owner_does_not_queue(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, a);
  assert_ptr_equal(arb_node_next(f->node), a);
  s->selected = 1;
  intptr_t m = send_new(f, s, 0); /* a sends to itself */
  assert_int_equal(a->state, ARB_PROC_RUNNING);
  assert_int_equal(in_runq(f, a), 0);
  take_expect(f, s, m);
  arb_node_release(f->node, a);
  CHECK(f);
}

/* {======================================================================
** The run-next slot: a send from the running process
** ======================================================================*/

/* Makes p current, runs nothing, and leaves it WAITING on sub. */
static void block_on(fixture_t *f, arb_proc_t *p, arb_subject_t *sub) {
  park(f, p);
  sub->selected = 1;
}

static void test_send_from_running_process_wakes_receiver_next(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f), *d = spawn(f);
  arb_subject_t *sb = &f->subs[0], *sc = &f->subs[1];
  arb_subject_init(f->node, sb, b);
  arb_subject_init(f->node, sc, c);
  block_on(f, b, sb);
  block_on(f, c, sc);
  /* d and a are queued; d runs and sends to b, then to c. */
  assert_ptr_equal(arb_node_next(f->node), d);
  intptr_t m = send_new(f, sb, 0);
  assert_ptr_equal(f->node->runnext, b);
  assert_int_equal(in_runq(f, b), 0);
  intptr_t n = send_new(f, sc, 0);
  assert_ptr_equal(f->node->runnext, b); /* the slot is taken: c queues */
  assert_int_equal(in_runq(f, c), 1);
  arb_node_release(f->node, d); /* preempted: to the back */
  CHECK(f);
  /* b first, then the queue in order: a, c, d. */
  assert_ptr_equal(arb_node_next(f->node), b);
  arb_node_wait_done(f->node, b);
  take_expect(f, sb, m);
  arb_node_release(f->node, b);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_release(f->node, a);
  assert_ptr_equal(arb_node_next(f->node), c);
  arb_node_wait_done(f->node, c);
  take_expect(f, sc, n);
  arb_node_release(f->node, c);
  assert_ptr_equal(arb_node_next(f->node), d);
  arb_node_release(f->node, d);
  CHECK(f);
}

static void test_send_outside_any_process_wakes_to_the_back(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_subject_t *sa = &f->subs[0];
  arb_subject_init(f->node, sa, a);
  block_on(f, a, sa);
  /* No current process (a timer's or a callback's send): plain FIFO. */
  assert_null(f->node->current);
  intptr_t m = send_new(f, sa, 0);
  assert_null(f->node->runnext);
  assert_ptr_equal(arb_node_next(f->node), b);
  arb_node_release(f->node, b);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_wait_done(f->node, a);
  take_expect(f, sa, m);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_receiver_in_run_next_slot_ending_leaves_the_slot(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_subject_t *sb = &f->subs[0];
  arb_subject_init(f->node, sb, b);
  block_on(f, b, sb);
  assert_ptr_equal(arb_node_next(f->node), a);
  send_new(f, sb, 0);
  assert_ptr_equal(f->node->runnext, b);
  arb_node_exit(f->node, b, &arb_reason_kill); /* queued payload freed */
  assert_null(f->node->runnext);
  CHECK(f);
  arb_node_release(f->node, a);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_release(f->node, a);
  CHECK(f);
}

/* A ping-pong pair (each wakes the other by a send, then blocks) and two
** busy processes that are always runnable: the pair cannot starve them.
** Over many dispatches each busy process runs at least once per
** ARB_RUNNEXT_BUDGET + 3 dispatches and never waits more than
** ARB_RUNNEXT_BUDGET + 2 (the pair's streak, the other busy process, and
** the pair member the budget sent to the queue), within node.h's bound. */
static void test_ping_pong_pair_cannot_starve_others(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f), *d = spawn(f);
  arb_subject_t *sa = &f->subs[0], *sb = &f->subs[1];
  arb_subject_init(f->node, sa, a);
  arb_subject_init(f->node, sb, b);
  block_on(f, b, sb);
  int runs[4] = {0, 0, 0, 0}, since[4] = {0, 0, 0, 0}, worst[4] = {0};
  arb_proc_t *procs[4] = {a, b, c, d};
  const int dispatches = 3000; /* payloads: fewer than MAXP */
  for (int i = 0; i < dispatches; i++) {
    arb_proc_t *p = arb_node_next(f->node);
    assert_non_null(p);
    for (int k = 0; k < 4; k++) {
      if (procs[k] == p) {
        runs[k]++;
        since[k] = 0;
      } else if (++since[k] > worst[k]) {
        worst[k] = since[k];
      }
    }
    if (p == a || p == b) {
      arb_subject_t *mine = p == a ? sa : sb, *other = p == a ? sb : sa;
      intptr_t got;
      arb_node_wait_done(f->node, p);
      if (arb_subject_take(f->node, mine, &got) == 0) payload_taken(f, got);
      send_new(f, other, 0); /* wakes the other into the slot */
      mine->selected = 1;
      arb_node_wait(f->node, p, 0, -1); /* and blocks */
      other->selected = 1;
    }
    arb_node_release(f->node, p); /* c and d: preempted, to the back */
  }
  CHECK(f);
  /* With 2 others queued, the pair takes at most BUDGET dispatches in a
  ** row, so c and d each wait at most BUDGET + 2 dispatches (the pair's
  ** streak, then the other busy one, then its own turn). */
  assert_true(worst[2] <= ARB_RUNNEXT_BUDGET + 2);
  assert_true(worst[3] <= ARB_RUNNEXT_BUDGET + 2);
  assert_true(runs[2] >= dispatches / (ARB_RUNNEXT_BUDGET + 3));
  assert_true(runs[3] >= dispatches / (ARB_RUNNEXT_BUDGET + 3));
  /* And the pair does get the slot: most dispatches are its. */
  assert_true(runs[0] + runs[1] > dispatches / 2);
  /* Drain what the pair left queued. */
  intptr_t got;
  while (arb_subject_take(f->node, sa, &got) == 0) payload_taken(f, got);
  while (arb_subject_take(f->node, sb, &got) == 0) payload_taken(f, got);
}

/* }====================================================================== */

/* {======================================================================
** Trapped exits
** ======================================================================*/

static void test_trapped_exits_queue_in_arrival_order(void **state) {
  fixture_t *f = *state;
  arb_proc_t *t = spawn(f);
  t->flags |= ARB_PROC_TRAP_EXIT;
  arb_proc_t *p[3];
  arb_pid_t pids[3];
  for (int i = 0; i < 3; i++) {
    p[i] = spawn(f);
    pids[i] = p[i]->pid;
    assert_int_equal(arb_link(f->node, t, pids[i]), 0);
  }
  arb_reason_t *crash = reason_new(f, ARB_REASON_OTHER);
  intptr_t crash_id = crash->payload;
  arb_node_exit(f->node, p[2], &arb_reason_shutdown);
  arb_node_exit(f->node, p[0], crash);
  arb_node_exit(f->node, p[1], &arb_reason_normal);
  arb_reason_release(f->node, crash);
  CHECK(f);
  assert_true(f->reason_live[crash_id]); /* held by the queued exit */
  assert_ptr_equal(arb_node_lookup(f->node, t->pid), t);
  const arb_pid_t want_from[3] = {pids[2], pids[0], pids[1]};
  const int want_kind[3] = {ARB_REASON_SHUTDOWN, ARB_REASON_OTHER,
                            ARB_REASON_NORMAL};
  uint64_t last = 0;
  for (int i = 0; i < 3; i++) {
    uint64_t seq = arb_exits_peek(t);
    assert_true(seq != UINT64_MAX);
    assert_true(i == 0 || seq > last);
    last = seq;
    arb_pid_t from = 0;
    arb_reason_t *r = NULL;
    assert_int_equal(arb_exits_take(t, &from, &r), 0);
    assert_int_equal(from, want_from[i]);
    assert_int_equal(r->kind, want_kind[i]);
    arb_reason_release(f->node, r);
  }
  assert_false(f->reason_live[crash_id]);
  assert_int_equal(arb_exits_peek(t), UINT64_MAX);
  CHECK(f);
}

static void test_exits_take_on_empty_queue_returns_enotfound(void **state) {
  fixture_t *f = *state;
  arb_proc_t *t = spawn(f);
  arb_pid_t from = 77;
  arb_reason_t *r = (arb_reason_t *)&from;
  assert_int_equal(arb_exits_take(t, &from, &r), ARB_ENOTFOUND);
  assert_int_equal(from, 77);
  assert_int_equal(arb_exits_peek(t), UINT64_MAX);
}

static void test_trapped_exits_and_messages_share_one_sequence(void **state) {
  fixture_t *f = *state;
  arb_proc_t *t = spawn(f), *p = spawn(f);
  t->flags |= ARB_PROC_TRAP_EXIT;
  arb_subject_t *s = &f->subs[0];
  arb_subject_init(f->node, s, t);
  assert_int_equal(arb_link(f->node, t, p->pid), 0);
  intptr_t m1 = send_new(f, s, 0);
  assert_int_equal(arb_signal_exit(f->node, p->pid, t->pid,
                                   &arb_reason_shutdown),
                   0);
  intptr_t m2 = send_new(f, s, 0);
  assert_true(arb_subject_peek(s) < arb_exits_peek(t));
  take_expect(f, s, m1);
  assert_true(arb_exits_peek(t) < arb_subject_peek(s));
  arb_pid_t from;
  arb_reason_t *r;
  assert_int_equal(arb_exits_take(t, &from, &r), 0);
  assert_int_equal(from, p->pid);
  assert_ptr_equal(r, &arb_reason_shutdown);
  take_expect(f, s, m2);
}

static void test_ended_owner_releases_queued_exit_reasons(void **state) {
  fixture_t *f = *state;
  arb_proc_t *t = spawn(f), *p = spawn(f), *q = spawn(f);
  t->flags |= ARB_PROC_TRAP_EXIT;
  assert_int_equal(arb_link(f->node, t, p->pid), 0);
  assert_int_equal(arb_link(f->node, t, q->pid), 0);
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  intptr_t id = r->payload;
  arb_node_exit(f->node, p, r);
  arb_node_exit(f->node, q, r);
  arb_reason_release(f->node, r);
  assert_int_equal(r->refs, 2); /* one per queued exit */
  arb_pid_t tp = t->pid;
  arb_node_exit(f->node, t, &arb_reason_normal);
  CHECK(f);
  assert_false(f->reason_live[id]);
  assert_int_equal(ended_count(f, tp, NULL, NULL), 1);
}

static void test_trapped_exit_wakes_owner_waiting_on_exits(void **state) {
  fixture_t *f = *state;
  arb_proc_t *t = spawn(f), *p = spawn(f), *q = spawn(f);
  t->flags |= ARB_PROC_TRAP_EXIT;
  assert_int_equal(arb_link(f->node, t, p->pid), 0);
  assert_int_equal(arb_link(f->node, t, q->pid), 0);
  park(f, t);
  /* Not selecting exits: stays blocked. */
  arb_node_exit(f->node, p, &arb_reason_shutdown);
  assert_int_equal(t->state, ARB_PROC_WAITING);
  t->flags |= ARB_PROC_EXITS_SELECTED;
  arb_node_exit(f->node, q, &arb_reason_normal);
  assert_int_equal(t->state, ARB_PROC_RUNNABLE);
  CHECK(f);
  while (arb_node_next(f->node) != t) {
  }
  arb_node_wait_done(f->node, t);
  assert_false(t->flags & ARB_PROC_EXITS_SELECTED);
  arb_pid_t from;
  arb_reason_t *r;
  assert_int_equal(arb_exits_take(t, &from, &r), 0);
  assert_ptr_equal(r, &arb_reason_shutdown);
  assert_int_equal(arb_exits_take(t, &from, &r), 0);
  assert_ptr_equal(r, &arb_reason_normal);
  arb_node_release(f->node, t);
  CHECK(f);
}

/* }====================================================================== */

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_subject_init_links_it_to_its_owner),
      T(test_subject_delivers_in_fifo_order),
      T(test_take_from_empty_subject_returns_enotfound),
      T(test_peek_picks_the_oldest_across_subjects),
      T(test_take_from_one_subject_leaves_others_untouched),
      T(test_subjects_of_different_owners_are_independent),
      T(test_send_to_subject_of_ended_owner_frees_payload),
      T(test_owner_ending_frees_queued_payloads),
      T(test_owner_ending_while_current_frees_queued_payloads),
      T(test_subject_fini_drops_queued_payloads),
      T(test_send_out_of_memory_frees_payload_and_returns_enomem),
      T(test_message_nodes_are_recycled),
      T(test_send_to_selected_subject_wakes_waiting_owner),
      T(test_send_to_unselected_subject_does_not_wake),
      T(test_send_to_selected_subject_of_running_owner_does_not_queue),
      T(test_send_from_running_process_wakes_receiver_next),
      T(test_send_outside_any_process_wakes_to_the_back),
      T(test_receiver_in_run_next_slot_ending_leaves_the_slot),
      T(test_ping_pong_pair_cannot_starve_others),
      T(test_trapped_exits_queue_in_arrival_order),
      T(test_exits_take_on_empty_queue_returns_enotfound),
      T(test_trapped_exits_and_messages_share_one_sequence),
      T(test_ended_owner_releases_queued_exit_reasons),
      T(test_trapped_exit_wakes_owner_waiting_on_exits),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
