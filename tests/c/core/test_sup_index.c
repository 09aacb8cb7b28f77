/*
** test_sup_index.c: cmocka tests for the restart engine's index of
** children by key (host/core/sup.c), against a plain model.
**
** A fixed-seed random walk inserts children at random positions, deletes
** random ones and runs start/stop plans, thousands of steps over a few
** hundred to a few thousand children, so the index grows, fills with
** holes and is compacted many times, and insert walks start from every
** place they can.  After each step: the engine's start order is the
** model's, every live key is found (arb_sup_update succeeds), every
** deleted key is not (ARB_SUP_ENOTFOUND), and arb_sup_check passes.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sup.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint32_t next_random(uint32_t below) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return (uint32_t)(rng % below);
}

typedef struct {
  uint32_t *keys; /* the start order */
  size_t n, cap;
  uint32_t *gone; /* deleted keys */
  size_t ngone, gone_cap;
} model_t;

static void push_gone(model_t *m, uint32_t key) {
  if (m->ngone == m->gone_cap) {
    m->gone_cap = m->gone_cap ? 2 * m->gone_cap : 64;
    m->gone = realloc(m->gone, m->gone_cap * sizeof(*m->gone));
    assert_non_null(m->gone);
  }
  m->gone[m->ngone++] = key;
}

static const arb_sup_spec_t worker = {ARB_SUP_PERMANENT, ARB_SUP_WORKER, 0, {0, 0, 0}};

static void insert_at(arb_sup_t *s, model_t *m, size_t pos) {
  uint32_t key = 0;
  assert_int_equal(arb_sup_insert(s, pos, &worker, &key), 0);
  if (m->n == m->cap) {
    m->cap = m->cap ? 2 * m->cap : 64;
    m->keys = realloc(m->keys, m->cap * sizeof(*m->keys));
    assert_non_null(m->keys);
  }
  memmove(&m->keys[pos + 1], &m->keys[pos], (m->n - pos) * sizeof(*m->keys));
  m->keys[pos] = key;
  m->n++;
}

static void delete_at(arb_sup_t *s, model_t *m, size_t pos) {
  uint32_t key = m->keys[pos];
  assert_int_equal(arb_sup_delete(s, key), 0);
  memmove(&m->keys[pos], &m->keys[pos + 1], (m->n - pos - 1) * sizeof(*m->keys));
  m->n--;
  push_gone(m, key);
}

/* Runs plan to the end, reporting every step done. */
static void run(arb_sup_t *s, const arb_sup_plan_t *plan) {
  for (size_t i = 0; i < plan->nsteps; i++)
    assert_int_equal(arb_sup_step_done(s, plan->steps[i].key), 0);
}

static void check_against(arb_sup_t *s, const model_t *m) {
  assert_int_equal(arb_sup_check(s), 0);
  arb_sup_info_t *info = malloc((m->n + 1) * sizeof(*info));
  assert_non_null(info);
  assert_int_equal(arb_sup_which_children(s, info, m->n + 1), m->n);
  for (size_t i = 0; i < m->n; i++) assert_int_equal(info[i].key, m->keys[i]);
  free(info);
  /* Lookups by key go through the index. */
  for (int i = 0; i < 8 && m->n > 0; i++)
    assert_int_equal(arb_sup_update(s, m->keys[next_random((uint32_t)m->n)],
                                    &worker),
                     0);
  for (int i = 0; i < 8 && m->ngone > 0; i++)
    assert_int_equal(arb_sup_update(s, m->gone[next_random((uint32_t)m->ngone)],
                                    &worker),
                     ARB_SUP_ENOTFOUND);
}

/* arb_sup_check costs O(n^2) (it looks for duplicate keys): the large
** tree is checked less often. */
static void random_walk(size_t grow_to, int steps, int check_every) {
  const arb_sup_flags_t flags = {ARB_SUP_ONE_FOR_ONE, 3, 5000};
  arb_sup_t *s = NULL;
  model_t m;
  memset(&m, 0, sizeof(m));
  assert_int_equal(arb_sup_new(&s, &flags), 0);
  for (int step = 0; step < steps; step++) {
    uint32_t dice = next_random(100);
    if (m.n > 0 && dice < 3) {
      /* Start everything, then stop it: plans look each child up. */
      const arb_sup_plan_t *plan;
      assert_int_equal(arb_sup_start(s, &plan), 0);
      run(s, plan);
      assert_int_equal(arb_sup_stop(s, &plan), 0);
      run(s, plan);
    } else if (m.n < grow_to && dice < 50) {
      insert_at(s, &m, next_random((uint32_t)m.n + 1));
    } else if (m.n < grow_to && dice < 55) {
      /* A reload's additions: ascending positions among the others. */
      size_t pos = next_random((uint32_t)m.n + 1);
      for (int k = 0; k < 20 && pos <= m.n; k++) {
        insert_at(s, &m, pos);
        pos += 1 + next_random(4);
      }
    } else if (m.n > 0) {
      delete_at(s, &m, next_random((uint32_t)m.n));
    } else {
      insert_at(s, &m, 0);
    }
    if (step % check_every == 0 || step == steps - 1) check_against(s, &m);
  }
  arb_sup_free(s);
  free(m.keys);
  free(m.gone);
}

static void small_tree(void **state) {
  (void)state;
  random_walk(40, 4000, 1);
}

static void large_tree(void **state) {
  (void)state;
  random_walk(3000, 12000, 400);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(small_tree),
      cmocka_unit_test(large_tree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
