/*
** test_proc.c: proc.c: the process table (pids, generations, lookup), the
** run queue (FIFO, current, release), waiting and waking, timers through
** the node, the ops callbacks, exit hooks, the exit worklist and
** arb_node_free.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "node_fixture.h"

/* {======================================================================
** Process table
** ======================================================================*/

static void test_pid_is_slot_plus_generation(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  assert_int_equal(arb_pid_slot(a->pid), 0);
  assert_int_equal(arb_pid_slot(b->pid), 1);
  assert_int_equal(arb_pid_gen(a->pid), 1);
  assert_int_equal(arb_pid_gen(b->pid), 1);
  assert_true(a->pid != ARB_PID_NONE && b->pid != ARB_PID_NONE);
  assert_ptr_equal(arb_node_lookup(f->node, a->pid), a);
  assert_ptr_equal(arb_node_lookup(f->node, b->pid), b);
  assert_int_equal(a->state, ARB_PROC_RUNNABLE);
}

static void test_stale_pid_finds_nothing_after_slot_reuse(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_pid_t old = a->pid;
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
  assert_null(arb_node_lookup(f->node, old));
  arb_proc_t *b = spawn(f);
  assert_int_equal(arb_pid_slot(b->pid), arb_pid_slot(old));
  assert_int_equal(arb_pid_gen(b->pid), arb_pid_gen(old) + 1);
  assert_null(arb_node_lookup(f->node, old));
  assert_ptr_equal(arb_node_lookup(f->node, b->pid), b);
}

/* arb_node_next_pid says what the next spawn gives: a fresh slot, a freed
** slot's next generation (the most recently freed first), a slot whose
** spawn was taken back. */
static void test_next_pid_is_the_pid_the_next_spawn_gives(void **state) {
  fixture_t *f = *state;
  arb_pid_t next = arb_node_next_pid(f->node);
  arb_proc_t *a = spawn(f);
  assert_true(next != ARB_PID_NONE);
  assert_true(a->pid == next);
  next = arb_node_next_pid(f->node);
  arb_proc_t *b = spawn(f);
  assert_true(b->pid == next);
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
  next = arb_node_next_pid(f->node);
  assert_int_equal(arb_pid_slot(next), arb_pid_slot(a->pid));
  arb_proc_t *c = spawn(f);
  assert_true(c->pid == next);
  next = arb_node_next_pid(f->node);
  arb_proc_t *d = arb_node_spawn(f->node);
  assert_non_null(d);
  assert_true(d->pid == next);
  arb_node_spawn_abort(f->node, d);
  next = arb_node_next_pid(f->node);
  assert_true(next != d->pid); /* the taken-back pid went stale */
  arb_proc_t *e = spawn(f);
  assert_true(e->pid == next);
  /* Asking does not change anything. */
  assert_true(arb_node_next_pid(f->node) == arb_node_next_pid(f->node));
  assert_ptr_equal(arb_node_lookup(f->node, b->pid), b);
}

/* arb_pid_mix keys hash tables: different pids never share a key, and
** the generations of one slot (same low bits) spread over the low bits a
** power-of-two table hashes by. */
static void test_pid_mix_is_one_to_one_and_spreads_a_slots_generations(
    void **state) {
  (void)state;
  enum { GENS = 4096, BUCKETS = 1024 };
  static uint64_t keys[GENS * 2];
  static unsigned char used[BUCKETS];
  int distinct_buckets = 0;
  for (uint32_t gen = 1; gen <= GENS; gen++) {
    arb_pid_t a = ((uint64_t)gen << 32) | 7u;
    arb_pid_t b = ((uint64_t)gen << 32) | 8u;
    keys[(gen - 1) * 2] = arb_pid_mix(a);
    keys[(gen - 1) * 2 + 1] = arb_pid_mix(b);
    unsigned bucket = (unsigned)(arb_pid_mix(a) % BUCKETS);
    if (!used[bucket]) distinct_buckets++;
    used[bucket] = 1;
  }
  for (size_t i = 0; i < GENS * 2; i++)
    for (size_t j = i + 1; j < GENS * 2; j++)
      assert_true(keys[i] != keys[j]);
  /* 4096 keys thrown into 1024 buckets at random leave about 2% empty;
  ** the raw pids would all land in bucket 7. */
  assert_true(distinct_buckets > BUCKETS * 9 / 10);
  assert_true(arb_pid_mix(ARB_PID_NONE) == 0);
}

static void test_lookup_of_never_existing_pid_finds_nothing(void **state) {
  fixture_t *f = *state;
  assert_null(arb_node_lookup(f->node, ARB_PID_NONE));
  assert_null(arb_node_lookup(f->node, ((uint64_t)1 << 32) | 0));
  arb_proc_t *a = spawn(f);
  assert_null(arb_node_lookup(f->node, ARB_PID_NONE));
  assert_null(arb_node_lookup(f->node, a->pid + ((uint64_t)1 << 32)));
  assert_null(arb_node_lookup(f->node, ((uint64_t)1 << 32) | 5));
  assert_null(arb_node_lookup(f->node, ((uint64_t)1 << 32) | 0xffffffffu));
}

static void test_count_tracks_live_processes(void **state) {
  fixture_t *f = *state;
  assert_int_equal(arb_node_count(f->node), 0);
  arb_proc_t *a = spawn(f), *b = spawn(f);
  spawn(f);
  assert_int_equal(arb_node_count(f->node), 3);
  arb_node_exit(f->node, b, &arb_reason_normal);
  assert_int_equal(arb_node_count(f->node), 2);
  /* A current process that ended is not counted, even before release. */
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
  assert_int_equal(arb_node_count(f->node), 1);
  arb_node_release(f->node, a);
  CHECK(f);
  assert_int_equal(arb_node_count(f->node), 1);
}

static void test_table_grows_past_first_capacity(void **state) {
  fixture_t *f = *state;
  enum { N = 1000 };
  arb_pid_t pids[N];
  for (int i = 0; i < N; i++) pids[i] = spawn(f)->pid;
  assert_int_equal(arb_node_count(f->node), N);
  for (int i = 0; i < N; i++) {
    arb_proc_t *p = arb_node_lookup(f->node, pids[i]);
    assert_non_null(p);
    assert_int_equal(p->pid, pids[i]);
  }
  for (int i = 0; i < N; i += 2)
    arb_node_exit(f->node, arb_node_lookup(f->node, pids[i]),
                  &arb_reason_normal);
  CHECK(f);
  assert_int_equal(arb_node_count(f->node), N / 2);
}

static void test_spawn_out_of_memory_returns_null(void **state) {
  fixture_t *f = *state;
  /* The first table fails. */
  counting_alloc_fail_after(&f->ca, 0);
  assert_null(arb_node_spawn(f->node));
  counting_alloc_fail_after(&f->ca, -1);
  CHECK(f);
  assert_int_equal(arb_node_count(f->node), 0);
  arb_proc_t *p = spawn(f);
  /* The table has room; the struct fails. */
  counting_alloc_fail_after(&f->ca, 0);
  assert_null(arb_node_spawn(f->node));
  counting_alloc_fail_after(&f->ca, -1);
  CHECK(f);
  assert_int_equal(arb_node_count(f->node), 1);
  /* The table is full; growing it fails. */
  while (f->node->nslots < f->node->cap) spawn(f);
  counting_alloc_fail_after(&f->ca, 0);
  assert_null(arb_node_spawn(f->node));
  counting_alloc_fail_after(&f->ca, -1);
  CHECK(f);
  assert_int_equal(arb_node_count(f->node), f->node->cap);
  assert_true(f->ca.failures >= 3);
  assert_int_equal(f->ca.size_mismatches, 0);
  assert_ptr_equal(arb_node_lookup(f->node, p->pid), p);
  spawn(f);
}

/* Regression: growing the table must not leave one table resized and the
** other not (the old grow() realloc'ed slots, failed on gens and kept
** node->cap, so later frees passed the wrong size). */
static void test_spawn_oom_between_table_allocations_keeps_sizes_exact(
    void **state) {
  fixture_t *f = *state;
  counting_alloc_fail_after(&f->ca, 1); /* slots grows, gens fails */
  assert_null(arb_node_spawn(f->node));
  counting_alloc_fail_after(&f->ca, -1);
  CHECK(f);
  arb_proc_t *p = spawn(f);
  assert_ptr_equal(arb_node_lookup(f->node, p->pid), p);
  arb_node_free(f->node);
  f->node = NULL;
  assert_int_equal(f->ca.size_mismatches, 0);
  assert_int_equal(arb_alloc_in_use(), f->ca.baseline_in_use);
}

static void test_strerror_and_err_name_cover_every_code(void **state) {
  (void)state;
  assert_string_equal(arb_err_name(ARB_ENOPROC), "ENOPROC");
  assert_string_equal(arb_strerror(ARB_ENOPROC), "no such process");
  assert_string_equal(arb_err_name(ARB_ENOMEM), "ENOMEM");
  assert_string_equal(arb_err_name(ARB_ENOTFOUND), "ENOTFOUND");
  assert_string_equal(arb_err_name(12345), "EUNKNOWN");
  assert_string_equal(arb_strerror(12345), "unknown error");
}

/* }====================================================================== */

/* {======================================================================
** Run queue, current process, release
** ======================================================================*/

static void test_run_queue_is_fifo_in_spawn_order(void **state) {
  fixture_t *f = *state;
  arb_proc_t *p[5];
  for (int i = 0; i < 5; i++) p[i] = spawn(f);
  for (int i = 0; i < 5; i++) {
    arb_proc_t *q = arb_node_next(f->node);
    assert_ptr_equal(q, p[i]);
    assert_int_equal(q->state, ARB_PROC_RUNNING);
    assert_ptr_equal(f->node->current, q);
    CHECK(f);
    assert_int_equal(arb_node_wait(f->node, q, 0, -1), 0); /* park it */
    arb_node_release(f->node, q);
    CHECK(f);
  }
  assert_null(arb_node_next(f->node));
}

static void test_next_on_empty_run_queue_returns_null(void **state) {
  fixture_t *f = *state;
  assert_null(arb_node_next(f->node));
  assert_null(f->node->current);
}

static void test_release_of_running_process_requeues_it_at_the_back(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_release(f->node, a); /* preempted */
  CHECK(f);
  assert_int_equal(a->state, ARB_PROC_RUNNABLE);
  assert_null(f->node->current);
  assert_ptr_equal(arb_node_next(f->node), b);
  arb_node_release(f->node, b);
  assert_ptr_equal(arb_node_next(f->node), c);
  arb_node_release(f->node, c);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_release_of_waiting_process_leaves_it_blocked(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  assert_int_equal(arb_node_wait(f->node, a, 0, -1), 0);
  arb_node_release(f->node, a);
  CHECK(f);
  assert_int_equal(a->state, ARB_PROC_WAITING);
  assert_ptr_equal(arb_node_next(f->node), b);
  arb_node_release(f->node, b);
  assert_ptr_equal(arb_node_next(f->node), b); /* a is not runnable */
  arb_node_release(f->node, b);
  arb_node_wake(f->node, a);
  CHECK(f);
  assert_int_equal(a->state, ARB_PROC_RUNNABLE);
  assert_ptr_equal(arb_node_next(f->node), b);
  arb_node_release(f->node, b);
  assert_ptr_equal(arb_node_next(f->node), a); /* woken to the back */
  arb_node_wait_done(f->node, a);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_release_of_dead_process_frees_it(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_pid_t pid = a->pid;
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_exit(f->node, a, &arb_reason_shutdown);
  CHECK(f);
  /* Ended: observable at once, struct kept until release. */
  assert_int_equal(ended_count(f, pid, NULL, NULL), 1);
  assert_int_equal(a->state, ARB_PROC_DEAD);
  assert_null(arb_node_lookup(f->node, pid));
  assert_int_equal(f->node->nprocs, 1);
  arb_node_release(f->node, a);
  CHECK(f);
  assert_null(f->node->current);
  assert_int_equal(f->node->nprocs, 0);
  assert_int_equal(ended_count(f, pid, NULL, NULL), 1);
  arb_proc_t *b = spawn(f);
  assert_int_equal(arb_pid_slot(b->pid), arb_pid_slot(pid));
  assert_true(b->pid != pid);
}

static void test_wake_of_a_non_waiting_process_does_nothing(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_node_wake(f->node, a); /* runnable: must not be queued twice */
  CHECK(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_wake(f->node, a); /* running */
  CHECK(f);
  assert_int_equal(a->state, ARB_PROC_RUNNING);
  arb_node_release(f->node, a);
  assert_ptr_equal(arb_node_next(f->node), b);
  arb_node_release(f->node, b);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_exit_of_runnable_process_leaves_the_run_queue(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f);
  arb_node_exit(f->node, b, &arb_reason_normal);
  CHECK(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_release(f->node, a);
  assert_ptr_equal(arb_node_next(f->node), c);
  arb_node_release(f->node, c);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_release(f->node, a);
}

/* }====================================================================== */

/* {======================================================================
** Waiting and timers
** ======================================================================*/

static void test_wait_with_timeout_times_out_and_wakes(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  assert_int_equal(arb_node_wait(f->node, a, 100, 50), 0);
  arb_node_release(f->node, a);
  CHECK(f);
  assert_int_equal(arb_node_next_deadline(f->node), 150);
  assert_int_equal(arb_node_run_timers(f->node, 149), 0);
  assert_int_equal(a->state, ARB_PROC_WAITING);
  assert_false(a->flags & ARB_PROC_TIMED_OUT);
  assert_int_equal(arb_node_run_timers(f->node, 150), 1);
  CHECK(f);
  assert_int_equal(a->state, ARB_PROC_RUNNABLE);
  assert_true(a->flags & ARB_PROC_TIMED_OUT);
  assert_int_equal(a->wait_timer, 0);
  assert_int_equal(f->nfired, 0); /* wake timers are not the embedder's */
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_wait_done(f->node, a);
  assert_false(a->flags & ARB_PROC_TIMED_OUT);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_wait_with_zero_timeout_fires_on_next_run(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  assert_int_equal(arb_node_wait(f->node, a, 100, 0), 0);
  arb_node_release(f->node, a);
  assert_int_equal(arb_node_run_timers(f->node, 100), 1);
  assert_true(a->flags & ARB_PROC_TIMED_OUT);
  assert_int_equal(a->state, ARB_PROC_RUNNABLE);
  CHECK(f);
}

static void test_wait_without_timeout_starts_no_timer(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  assert_int_equal(arb_node_wait(f->node, a, 100, -1), 0);
  arb_node_release(f->node, a);
  assert_int_equal(a->wait_timer, 0);
  assert_int_equal(arb_node_next_deadline(f->node), -1);
  assert_int_equal(arb_node_run_timers(f->node, INT64_MAX), 0);
  assert_int_equal(a->state, ARB_PROC_WAITING);
  CHECK(f);
}

static void test_wait_done_cancels_the_wait_timer(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  assert_int_equal(arb_node_wait(f->node, a, 0, 100), 0);
  arb_node_release(f->node, a);
  arb_node_wake(f->node, a); /* as a message would */
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_wait_done(f->node, a);
  CHECK(f);
  assert_int_equal(a->wait_timer, 0);
  assert_int_equal(arb_timers_pending(&f->node->timers), 0);
  assert_int_equal(arb_node_next_deadline(f->node), -1);
  assert_int_equal(arb_node_run_timers(f->node, 1000), 0);
  assert_false(a->flags & ARB_PROC_TIMED_OUT);
  assert_int_equal(a->state, ARB_PROC_RUNNING);
  arb_node_release(f->node, a);
}

static void test_wait_timer_of_an_ended_process_is_cancelled(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  assert_int_equal(arb_node_wait(f->node, a, 0, 100), 0);
  arb_node_release(f->node, a);
  arb_node_exit(f->node, a, &arb_reason_killed);
  CHECK(f);
  assert_int_equal(arb_timers_pending(&f->node->timers), 0);
  assert_int_equal(arb_node_run_timers(f->node, 1000), 0);
}

static void test_wait_out_of_memory_returns_enomem_and_keeps_running(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  counting_alloc_fail_after(&f->ca, 0);
  assert_int_equal(arb_node_wait(f->node, a, 0, 100), ARB_ENOMEM);
  counting_alloc_fail_after(&f->ca, -1);
  assert_int_equal(a->state, ARB_PROC_RUNNING);
  assert_int_equal(a->wait_timer, 0);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_user_timers_go_to_timer_fired(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_timer_id_t t1 =
      arb_node_timer_start(f->node, 0, 20, ARB_TIMER_USER, a->pid, 11);
  arb_timer_id_t t2 =
      arb_node_timer_start(f->node, 0, 10, ARB_TIMER_USER + 1, a->pid, 22);
  assert_true(t1 && t2);
  assert_int_equal(arb_node_next_deadline(f->node), 10);
  assert_int_equal(arb_node_run_timers(f->node, 9), 0);
  assert_int_equal(arb_node_run_timers(f->node, 20), 2);
  CHECK(f);
  assert_int_equal(f->nfired, 2);
  assert_int_equal(f->fired[0].id, t2);
  assert_int_equal(f->fired[0].kind, ARB_TIMER_USER + 1);
  assert_int_equal(f->fired[0].pid, a->pid);
  assert_int_equal(f->fired[0].payload, 22);
  assert_int_equal(f->fired[1].id, t1);
  assert_int_equal(f->fired[1].payload, 11);
  assert_int_equal(arb_node_next_deadline(f->node), -1);
}

static void test_user_timer_cancel_returns_time_left(void **state) {
  fixture_t *f = *state;
  arb_timer_id_t t =
      arb_node_timer_start(f->node, 100, 50, ARB_TIMER_USER, 0, 5);
  int64_t left = -1;
  arb_timer_t out;
  assert_int_equal(arb_node_timer_cancel(f->node, t, 130, &left, &out), 0);
  assert_int_equal(left, 20);
  assert_int_equal(out.payload, 5);
  assert_int_equal(arb_node_timer_cancel(f->node, t, 130, &left, NULL),
                   ARB_ENOTFOUND);
  assert_int_equal(arb_node_run_timers(f->node, 1000), 0);
  assert_int_equal(f->nfired, 0);
  CHECK(f);
}

/* }====================================================================== */

/* {======================================================================
** Exits: callbacks, reasons, hooks, worklist, node free
** ======================================================================*/

static void test_proc_ended_called_once_with_the_reason(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_pid_t pid = a->pid;
  arb_node_exit(f->node, a, &arb_reason_shutdown);
  CHECK(f);
  int kind = -1;
  assert_int_equal(ended_count(f, pid, &kind, NULL), 1);
  assert_int_equal(kind, ARB_REASON_SHUTDOWN);
  arb_node_exit(f->node, a, &arb_reason_killed); /* already ended */
  CHECK(f);
  assert_int_equal(ended_count(f, pid, NULL, NULL), 1);
  assert_int_equal(f->nended, 1);
}

static void test_dynamic_reason_is_freed_when_the_last_ref_goes(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_pid_t pid = a->pid;
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  intptr_t id = r->payload;
  arb_node_exit(f->node, a, r);
  intptr_t payload = 0;
  assert_int_equal(ended_count(f, pid, NULL, &payload), 1);
  assert_int_equal(payload, id);
  assert_true(f->reason_live[id]); /* we still hold one reference */
  assert_int_equal(r->refs, 1);
  arb_reason_retain(r);
  arb_reason_release(f->node, r);
  assert_true(f->reason_live[id]);
  arb_reason_release(f->node, r);
  assert_false(f->reason_live[id]);
}

static void test_dead_current_drops_its_reason_before_release(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  intptr_t id = r->payload;
  arb_node_exit(f->node, a, r);
  arb_reason_release(f->node, r);
  assert_false(f->reason_live[id]); /* the node dropped its ref already */
  assert_null(a->reason);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_static_reasons_are_never_freed(void **state) {
  fixture_t *f = *state;
  arb_reason_t *r = arb_reason_retain(&arb_reason_killed);
  assert_int_equal(r->refs, 0);
  arb_reason_release(f->node, r);
  arb_reason_release(f->node, &arb_reason_normal);
  arb_reason_release(f->node, NULL);
  assert_int_equal(arb_reason_killed.refs, 0);
  assert_int_equal(arb_reason_killed.kind, ARB_REASON_KILLED);
}

static void test_reason_new_out_of_memory_returns_null(void **state) {
  fixture_t *f = *state;
  counting_alloc_fail_after(&f->ca, 0);
  assert_null(arb_reason_new(ARB_REASON_OTHER, 1));
  counting_alloc_fail_after(&f->ca, -1);
}

typedef struct hook_rec_s {
  arb_exit_hook_t hook;
  int calls;
  arb_pid_t seen;
  int reason_kind;
  int was_unlinked;
  int lookup_found;
  fixture_t *f;
} hook_rec_t;

static void hook_fn(arb_node_t *node, arb_exit_hook_t *h, arb_proc_t *p) {
  hook_rec_t *r = arb_container_of(h, hook_rec_t, hook);
  r->calls++;
  r->seen = p->pid;
  r->reason_kind = p->reason ? p->reason->kind : -1;
  r->was_unlinked = (h->node.next == &h->node);
  r->lookup_found = arb_node_lookup(node, p->pid) != NULL;
  /* Ending it again from a hook has no effect. */
  arb_node_exit(node, p, &arb_reason_kill);
  /* proc_ended has not run yet. */
  if (ended_count(r->f, p->pid, NULL, NULL) != 0) r->f->bad++;
}

static void test_exit_hooks_run_once_before_proc_ended(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_pid_t pid = a->pid;
  hook_rec_t h1 = {.f = f}, h2 = {.f = f}, h3 = {.f = f};
  h1.hook.fn = h2.hook.fn = h3.hook.fn = hook_fn;
  arb_node_hook_exit(a, &h1.hook);
  arb_node_hook_exit(a, &h2.hook);
  arb_node_hook_exit(a, &h3.hook);
  arb_node_unhook_exit(&h2.hook);
  arb_node_exit(f->node, a, &arb_reason_shutdown);
  CHECK(f);
  assert_int_equal(h1.calls, 1);
  assert_int_equal(h2.calls, 0);
  assert_int_equal(h3.calls, 1);
  assert_int_equal(h1.seen, pid);
  assert_int_equal(h1.reason_kind, ARB_REASON_SHUTDOWN);
  assert_true(h1.was_unlinked);
  assert_false(h1.lookup_found); /* an ending process is not alive */
  int kind;
  assert_int_equal(ended_count(f, pid, &kind, NULL), 1);
  assert_int_equal(kind, ARB_REASON_SHUTDOWN);
}

static void test_exit_requested_from_proc_ended_completes_before_return(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_pid_t pa = a->pid, pb = b->pid;
  f->kill_on_end[0] = pa;
  f->kill_on_end[1] = pb;
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
  assert_int_equal(ended_count(f, pa, NULL, NULL), 1);
  int kind;
  assert_int_equal(ended_count(f, pb, &kind, NULL), 1);
  assert_int_equal(kind, ARB_REASON_SHUTDOWN);
  assert_int_equal(arb_node_count(f->node), 0);
  assert_int_equal(f->node->draining, 0);
}

static void test_long_link_chain_ends_without_recursion(void **state) {
  fixture_t *f = *state;
  enum { N = 100000 };
  arb_proc_t *first = spawn(f), *prev = first;
  for (int i = 1; i < N; i++) {
    arb_proc_t *p = arb_node_spawn(f->node);
    assert_non_null(p);
    assert_int_equal(arb_link(f->node, prev, p->pid), 0);
    prev = p;
  }
  CHECK(f);
  assert_int_equal(arb_node_count(f->node), N);
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  intptr_t id = r->payload;
  arb_node_exit(f->node, first, r);
  arb_reason_release(f->node, r);
  CHECK(f);
  assert_int_equal(arb_node_count(f->node), 0);
  assert_int_equal(f->nended, N);
  for (size_t i = 0; i < f->nended; i++) {
    assert_int_equal(f->ended[i].kind, ARB_REASON_OTHER);
    assert_int_equal(f->ended[i].payload, id);
  }
  assert_false(f->reason_live[id]);
  assert_null(arb_node_next(f->node));
}

static void test_node_free_ends_every_remaining_process_killed(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f), *d = spawn(f);
  arb_pid_t pids[4] = {a->pid, b->pid, c->pid, d->pid};
  assert_ptr_equal(arb_node_next(f->node), a);
  assert_int_equal(arb_node_wait(f->node, a, 0, 100), 0);
  arb_node_release(f->node, a); /* a waits with a timer */
  assert_ptr_equal(arb_node_next(f->node), b); /* b is current */
  arb_node_exit(f->node, d, &arb_reason_normal);
  size_t before = f->nended;
  arb_node_free(f->node);
  f->node = NULL;
  assert_int_equal(f->nended - before, 3);
  for (int i = 0; i < 3; i++) {
    int kind = -1;
    assert_int_equal(ended_count(f, pids[i], &kind, NULL), 1);
    assert_int_equal(kind, ARB_REASON_KILLED);
  }
  assert_int_equal(ended_count(f, pids[3], NULL, NULL), 1);
}

static void test_node_free_frees_a_dead_current_process(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  spawn(f);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_exit(f->node, a, &arb_reason_normal);
  arb_node_free(f->node); /* a never released */
  f->node = NULL;
  assert_int_equal(f->nended, 2);
}

/* A callback that tries to spawn while the node is being freed (say, a
** supervisor restarting a child from proc_ended) is refused, so no
** process is left half-made behind the loop. */
static void test_node_free_refuses_spawns_while_freeing(void **state) {
  fixture_t *f = *state;
  spawn(f);
  spawn(f);
  f->spawn_on_end = 1;
  arb_node_free(f->node);
  f->node = NULL;
  assert_int_equal(f->spawn_on_end, 0);
  assert_int_equal(f->spawn_refused, 1);
  assert_int_equal(f->nended, 2);
}

static void test_node_new_out_of_memory_returns_null(void **state) {
  fixture_t *f = *state;
  counting_alloc_fail_after(&f->ca, 0);
  assert_null(arb_node_new(&test_ops, f));
  counting_alloc_fail_after(&f->ca, -1);
  arb_node_free(NULL);
}

/* }====================================================================== */

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_pid_is_slot_plus_generation),
      T(test_stale_pid_finds_nothing_after_slot_reuse),
      T(test_next_pid_is_the_pid_the_next_spawn_gives),
      T(test_pid_mix_is_one_to_one_and_spreads_a_slots_generations),
      T(test_lookup_of_never_existing_pid_finds_nothing),
      T(test_count_tracks_live_processes),
      T(test_table_grows_past_first_capacity),
      T(test_spawn_out_of_memory_returns_null),
      T(test_spawn_oom_between_table_allocations_keeps_sizes_exact),
      T(test_strerror_and_err_name_cover_every_code),
      T(test_run_queue_is_fifo_in_spawn_order),
      T(test_next_on_empty_run_queue_returns_null),
      T(test_release_of_running_process_requeues_it_at_the_back),
      T(test_release_of_waiting_process_leaves_it_blocked),
      T(test_release_of_dead_process_frees_it),
      T(test_wake_of_a_non_waiting_process_does_nothing),
      T(test_exit_of_runnable_process_leaves_the_run_queue),
      T(test_wait_with_timeout_times_out_and_wakes),
      T(test_wait_with_zero_timeout_fires_on_next_run),
      T(test_wait_without_timeout_starts_no_timer),
      T(test_wait_done_cancels_the_wait_timer),
      T(test_wait_timer_of_an_ended_process_is_cancelled),
      T(test_wait_out_of_memory_returns_enomem_and_keeps_running),
      T(test_user_timers_go_to_timer_fired),
      T(test_user_timer_cancel_returns_time_left),
      T(test_proc_ended_called_once_with_the_reason),
      T(test_dynamic_reason_is_freed_when_the_last_ref_goes),
      T(test_dead_current_drops_its_reason_before_release),
      T(test_static_reasons_are_never_freed),
      T(test_reason_new_out_of_memory_returns_null),
      T(test_exit_hooks_run_once_before_proc_ended),
      T(test_exit_requested_from_proc_ended_completes_before_return),
      T(test_long_link_chain_ends_without_recursion),
      T(test_node_free_ends_every_remaining_process_killed),
      T(test_node_free_frees_a_dead_current_process),
      T(test_node_free_refuses_spawns_while_freeing),
      T(test_node_new_out_of_memory_returns_null),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
