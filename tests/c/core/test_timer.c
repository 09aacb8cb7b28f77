/*
** test_timer.c: timer.c alone: ordering, ties, cancel, stale ids, expiry,
** the heap invariant under random operations, growth and out-of-memory.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "counting_alloc.h"
#include "timer.h"

typedef struct fixture_s {
  counting_alloc_t ca;
  arb_timers_t t;
} fixture_t;

static int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  if (f == NULL) return -1;
  counting_alloc_install(&f->ca);
  arb_timers_init(&f->t);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fixture_t *f = *state;
  arb_timers_close(&f->t);
  counting_alloc_uninstall();
  int clean = counting_alloc_clean(&f->ca);
  size_t live = f->ca.live_bytes, bad = f->ca.size_mismatches;
  free(f);
  if (!clean) fail_msg("allocator not clean: %zu bytes live, %zu bad sizes",
                       live, bad);
  return 0;
}

#define CHECK(t) assert_int_equal(arb_timers_check(t), 0)

static arb_timer_id_t start(arb_timers_t *t, int64_t now, int64_t delay,
                            intptr_t payload) {
  arb_timer_id_t id = arb_timers_start(t, now, delay, 1, 7, payload);
  assert_true(id != 0);
  CHECK(t);
  return id;
}

/* Pops the next timer expired at now and returns its payload, or -1. */
static intptr_t pop(arb_timers_t *t, int64_t now) {
  arb_timer_t out;
  arb_timer_id_t id = arb_timers_pop_expired(t, now, &out);
  CHECK(t);
  return id ? out.payload : -1;
}

static void test_empty_timers_have_no_deadline(void **state) {
  fixture_t *f = *state;
  assert_int_equal(arb_timers_next(&f->t), -1);
  assert_int_equal(arb_timers_pending(&f->t), 0);
  assert_int_equal(arb_timers_pop_expired(&f->t, INT64_MAX, NULL), 0);
  CHECK(&f->t);
}

static void test_timers_fire_in_deadline_order(void **state) {
  fixture_t *f = *state;
  static const int64_t delays[] = {50, 10, 40, 20, 30, 0, 60};
  for (int i = 0; i < 7; i++) start(&f->t, 100, delays[i], delays[i]);
  assert_int_equal(arb_timers_pending(&f->t), 7);
  assert_int_equal(arb_timers_next(&f->t), 100);
  for (int64_t d = 0; d <= 60; d += 10) {
    assert_int_equal(pop(&f->t, 1000), d);
  }
  assert_int_equal(pop(&f->t, 1000), -1);
  assert_int_equal(arb_timers_pending(&f->t), 0);
}

static void test_timers_with_equal_deadlines_fire_in_start_order(void **state) {
  fixture_t *f = *state;
  /* Same deadline reached from different (now, delay) pairs. */
  for (int i = 0; i < 20; i++) start(&f->t, 100 + i, 100 - i, i);
  start(&f->t, 0, 150, 100); /* earlier deadline, started last */
  assert_int_equal(pop(&f->t, 200), 100);
  for (int i = 0; i < 20; i++) assert_int_equal(pop(&f->t, 200), i);
}

static void test_ties_keep_start_order_after_cancels(void **state) {
  fixture_t *f = *state;
  arb_timer_id_t ids[10];
  for (int i = 0; i < 10; i++) ids[i] = start(&f->t, 0, 5, i);
  for (int i = 0; i < 10; i += 3) {
    assert_int_equal(arb_timers_cancel(&f->t, ids[i], 0, NULL, NULL), 0);
    CHECK(&f->t);
  }
  for (int i = 0; i < 10; i++)
    if (i % 3) assert_int_equal(pop(&f->t, 5), i);
  assert_int_equal(pop(&f->t, 5), -1);
}

static void test_pop_expired_only_when_deadline_is_not_after_now(void **state) {
  fixture_t *f = *state;
  start(&f->t, 100, 50, 1);
  assert_int_equal(pop(&f->t, 149), -1);
  assert_int_equal(arb_timers_pending(&f->t), 1);
  assert_int_equal(pop(&f->t, 150), 1); /* deadline == now fires */
  start(&f->t, 100, 50, 2);
  assert_int_equal(pop(&f->t, 151), 2); /* late fires too */
}

static void test_negative_delay_counts_as_zero(void **state) {
  fixture_t *f = *state;
  arb_timer_id_t id = start(&f->t, 100, -30, 1);
  const arb_timer_t *tm = arb_timers_get(&f->t, id);
  assert_non_null(tm);
  assert_int_equal(tm->deadline, 100);
  assert_int_equal(pop(&f->t, 99), -1);
  assert_int_equal(pop(&f->t, 100), 1);
}

static void test_pop_copies_the_timer_out(void **state) {
  fixture_t *f = *state;
  arb_timer_id_t id = arb_timers_start(&f->t, 10, 5, 9, 1234, 77);
  arb_timer_t out;
  memset(&out, 0, sizeof(out));
  assert_int_equal(arb_timers_pop_expired(&f->t, 15, &out), id);
  assert_int_equal(out.deadline, 15);
  assert_int_equal(out.kind, 9);
  assert_int_equal(out.pid, 1234);
  assert_int_equal(out.payload, 77);
  assert_null(arb_timers_get(&f->t, id));
}

static void test_cancel_returns_the_time_left(void **state) {
  fixture_t *f = *state;
  arb_timer_id_t a = start(&f->t, 100, 50, 1);
  arb_timer_id_t b = start(&f->t, 100, 10, 2);
  int64_t left = -1;
  arb_timer_t out;
  assert_int_equal(arb_timers_cancel(&f->t, a, 120, &left, &out), 0);
  CHECK(&f->t);
  assert_int_equal(left, 30);
  assert_int_equal(out.payload, 1);
  /* Overdue but not yet popped: at least 0 left. */
  assert_int_equal(arb_timers_cancel(&f->t, b, 500, &left, NULL), 0);
  assert_int_equal(left, 0);
  assert_int_equal(arb_timers_pending(&f->t), 0);
  assert_int_equal(arb_timers_next(&f->t), -1);
}

static void test_cancel_of_fired_or_cancelled_timer_is_not_found(void **state) {
  fixture_t *f = *state;
  arb_timer_id_t a = start(&f->t, 0, 10, 1);
  arb_timer_id_t b = start(&f->t, 0, 20, 2);
  assert_int_equal(pop(&f->t, 10), 1);
  int64_t left = 1234;
  assert_int_equal(arb_timers_cancel(&f->t, a, 10, &left, NULL),
                   ARB_ENOTFOUND);
  assert_int_equal(left, 1234); /* untouched */
  assert_int_equal(arb_timers_cancel(&f->t, b, 10, NULL, NULL), 0);
  assert_int_equal(arb_timers_cancel(&f->t, b, 10, NULL, NULL), ARB_ENOTFOUND);
  assert_int_equal(arb_timers_cancel(&f->t, 0, 10, NULL, NULL), ARB_ENOTFOUND);
  assert_int_equal(arb_timers_cancel(&f->t, ((uint64_t)1 << 32) | 999, 10,
                                     NULL, NULL),
                   ARB_ENOTFOUND);
  CHECK(&f->t);
}

static void test_stale_id_finds_nothing_after_slot_reuse(void **state) {
  fixture_t *f = *state;
  arb_timer_id_t a = start(&f->t, 0, 10, 1);
  assert_int_equal(arb_timers_cancel(&f->t, a, 0, NULL, NULL), 0);
  arb_timer_id_t b = start(&f->t, 0, 10, 2);
  /* Same slot, new generation. */
  assert_int_equal((uint32_t)a, (uint32_t)b);
  assert_true(a != b);
  assert_null(arb_timers_get(&f->t, a));
  assert_non_null(arb_timers_get(&f->t, b));
  assert_int_equal(arb_timers_cancel(&f->t, a, 0, NULL, NULL), ARB_ENOTFOUND);
  assert_int_equal(arb_timers_pending(&f->t), 1);
  /* The same through pop. */
  assert_int_equal(pop(&f->t, 10), 2);
  arb_timer_id_t c = start(&f->t, 0, 10, 3);
  assert_int_equal((uint32_t)c, (uint32_t)b);
  assert_int_equal(arb_timers_cancel(&f->t, b, 0, NULL, NULL), ARB_ENOTFOUND);
  assert_non_null(arb_timers_get(&f->t, c));
}

static void test_get_returns_only_pending_timers(void **state) {
  fixture_t *f = *state;
  assert_null(arb_timers_get(&f->t, 0));
  assert_null(arb_timers_get(&f->t, ((uint64_t)1 << 32) | 0));
  arb_timer_id_t a = arb_timers_start(&f->t, 5, 5, 3, 42, 99);
  const arb_timer_t *tm = arb_timers_get(&f->t, a);
  assert_non_null(tm);
  assert_int_equal(tm->deadline, 10);
  assert_int_equal(tm->kind, 3);
  assert_int_equal(tm->pid, 42);
  assert_int_equal(tm->payload, 99);
}

static void test_huge_delay_does_not_wrap_into_the_past(void **state) {
  fixture_t *f = *state;
  /* now + delay overflows int64_t: the deadline should saturate, not wrap
  ** to a negative time that has "already expired". */
  arb_timer_id_t id = start(&f->t, 1000, INT64_MAX, 1);
  const arb_timer_t *tm = arb_timers_get(&f->t, id);
  assert_non_null(tm);
  assert_true(tm->deadline >= 1000);
  assert_int_equal(pop(&f->t, 2000), -1);
}

/* xorshift64*, seeded: the same sequence on every run. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

typedef struct model_s {
  arb_timer_id_t id;
  int64_t deadline;
  uint64_t order;
} model_t;

static void test_random_start_cancel_pop_keep_heap_and_order(void **state) {
  fixture_t *f = *state;
  enum { N = 600 };
  model_t live[N];
  int nlive = 0;
  uint64_t rng = 0x9e3779b97f4a7c15ull, order = 0;
  int64_t now = 0;
  for (int step = 0; step < 20000; step++) {
    uint64_t r = rng_next(&rng);
    int op = (int)(r % 10);
    if ((op < 5 && nlive < N) || nlive == 0) {
      int64_t delay = (int64_t)((r >> 8) % 200) - 10;
      model_t m;
      m.deadline = now + (delay < 0 ? 0 : delay);
      m.order = order;
      m.id = arb_timers_start(&f->t, now, delay, 0, 0, (intptr_t)order);
      order++;
      assert_true(m.id != 0);
      live[nlive++] = m;
    } else if (op < 8) {
      int k = (int)((r >> 8) % (uint64_t)nlive);
      int64_t left;
      arb_timer_t out;
      assert_int_equal(arb_timers_cancel(&f->t, live[k].id, now, &left, &out),
                       0);
      assert_int_equal(left, live[k].deadline > now ? live[k].deadline - now
                                                    : 0);
      assert_int_equal((uint64_t)out.payload, live[k].order);
      assert_int_equal(arb_timers_cancel(&f->t, live[k].id, now, NULL, NULL),
                       ARB_ENOTFOUND);
      live[k] = live[--nlive];
    } else {
      now += (int64_t)((r >> 8) % 40);
      arb_timer_t out;
      arb_timer_id_t id;
      while ((id = arb_timers_pop_expired(&f->t, now, &out)) != 0) {
        /* It must be the model's minimum by (deadline, start order). */
        int best = 0;
        for (int i = 1; i < nlive; i++)
          if (live[i].deadline < live[best].deadline ||
              (live[i].deadline == live[best].deadline &&
               live[i].order < live[best].order))
            best = i;
        assert_true(nlive > 0);
        assert_int_equal(id, live[best].id);
        assert_true(live[best].deadline <= now);
        live[best] = live[--nlive];
        CHECK(&f->t);
      }
      for (int i = 0; i < nlive; i++) assert_true(live[i].deadline > now);
    }
    CHECK(&f->t);
    assert_int_equal(arb_timers_pending(&f->t), (uint32_t)nlive);
  }
}

static void test_timers_grow_past_64(void **state) {
  fixture_t *f = *state;
  enum { N = 1000 };
  for (int i = 0; i < N; i++) start(&f->t, 0, (N - 1 - i) / 2, i);
  assert_int_equal(arb_timers_pending(&f->t), N);
  assert_true(f->t.cap >= N);
  int64_t prev_deadline = -1;
  intptr_t prev = -1;
  for (int i = 0; i < N; i++) {
    arb_timer_t out;
    assert_true(arb_timers_pop_expired(&f->t, N, &out) != 0);
    CHECK(&f->t);
    assert_true(out.deadline >= prev_deadline);
    if (out.deadline == prev_deadline) assert_true(out.payload > prev);
    prev_deadline = out.deadline;
    prev = out.payload;
  }
  assert_int_equal(arb_timers_pending(&f->t), 0);
}

static void test_first_start_out_of_memory_returns_zero(void **state) {
  fixture_t *f = *state;
  /* Both tables fail, then only the second one. */
  for (long n = 0; n < 2; n++) {
    counting_alloc_fail_after(&f->ca, n);
    assert_int_equal(arb_timers_start(&f->t, 0, 10, 0, 0, 1), 0);
    CHECK(&f->t);
    assert_int_equal(arb_timers_pending(&f->t), 0);
    assert_int_equal(arb_timers_next(&f->t), -1);
  }
  counting_alloc_fail_after(&f->ca, -1);
  start(&f->t, 0, 10, 1);
  assert_int_equal(pop(&f->t, 10), 1);
}

static void test_growth_out_of_memory_keeps_existing_timers(void **state) {
  fixture_t *f = *state;
  arb_timer_id_t ids[64];
  for (int i = 0; i < 64; i++) ids[i] = start(&f->t, 0, 64 - i, i);
  assert_int_equal(f->t.cap, 64);
  for (long n = 0; n < 2; n++) {
    counting_alloc_fail_after(&f->ca, n);
    assert_int_equal(arb_timers_start(&f->t, 0, 1, 0, 0, 999), 0);
    CHECK(&f->t);
    assert_int_equal(arb_timers_pending(&f->t), 64);
    assert_int_equal(f->t.cap, 64);
  }
  assert_true(f->ca.failures >= 2);
  counting_alloc_fail_after(&f->ca, -1);
  for (int i = 0; i < 64; i++) {
    const arb_timer_t *tm = arb_timers_get(&f->t, ids[i]);
    assert_non_null(tm);
    assert_int_equal(tm->payload, i);
  }
  start(&f->t, 0, 100, 64);
  for (int i = 63; i >= 0; i--) assert_int_equal(pop(&f->t, 1000), i);
  assert_int_equal(pop(&f->t, 1000), 64);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_empty_timers_have_no_deadline),
      T(test_timers_fire_in_deadline_order),
      T(test_timers_with_equal_deadlines_fire_in_start_order),
      T(test_ties_keep_start_order_after_cancels),
      T(test_pop_expired_only_when_deadline_is_not_after_now),
      T(test_negative_delay_counts_as_zero),
      T(test_pop_copies_the_timer_out),
      T(test_cancel_returns_the_time_left),
      T(test_cancel_of_fired_or_cancelled_timer_is_not_found),
      T(test_stale_id_finds_nothing_after_slot_reuse),
      T(test_get_returns_only_pending_timers),
      T(test_huge_delay_does_not_wrap_into_the_past),
      T(test_random_start_cancel_pop_keep_heap_and_order),
      T(test_timers_grow_past_64),
      T(test_first_start_out_of_memory_returns_zero),
      T(test_growth_out_of_memory_keeps_existing_timers),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
