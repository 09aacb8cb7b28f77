/*
** test_sup.c: cmocka tests for the restart engine (host/core/sup.c).
**
** Most tests are rows of two tables.  The exit matrix covers every
** strategy x restart type x exit class on four children; the scenarios
** replay a sequence of events (exits, retries, management calls, live
** edits) through a fake executor that reports every step, failing one
** chosen START, and compare each plan and the children's states with the
** expected strings.  Every row becomes its own cmocka test.  A counting,
** failing allocator checks out-of-memory paths and that nothing leaks.
**
** Plan strings: "<outcome>[ key][ restarts/max]:" then the steps, e.g.
** "restart 2 1/3: shut3 start2 start3".  State strings: one entry per
** child in start order, key then R (running), W (restarting) or S
** (stopped), then "+n" if it was restarted n times, e.g. "1R 2R+1 3S".
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "counting_alloc.h"
#include "sup.h"

/* {====== The counting, failing allocator (support/counting_alloc.h) */

static counting_alloc_t ca;
#define fail_after_set(n) counting_alloc_fail_after(&ca, (n))

/* Supervisors made by make(), freed by release() or, when a test fails
** half-way, by teardown, so one failure does not leak into the next test. */
static arb_sup_t *live[8];

static void release(arb_sup_t *s) {
  for (size_t i = 0; i < 8; i++)
    if (live[i] == s) live[i] = NULL;
  arb_sup_free(s);
}

static int setup(void **state) {
  (void)state;
  if (arb_alloc_in_use() != 0) return -1;
  counting_alloc_install(&ca);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (size_t i = 0; i < 8; i++) release(live[i]);
  counting_alloc_uninstall();
  assert_true(counting_alloc_clean(&ca));
  return 0;
}

/* }====== */

/* {====== Helpers: rendering and a fake executor */

enum { RFO = ARB_SUP_REST_FOR_ONE, OFO = ARB_SUP_ONE_FOR_ONE,
       OFA = ARB_SUP_ONE_FOR_ALL };
enum { NRM = ARB_EXIT_NORMAL, SHT = ARB_EXIT_SHUTDOWN,
       ABN = ARB_EXIT_ABNORMAL };

static const char *render_plan(const arb_sup_plan_t *p) {
  static char buf[512];
  static const char *outcome[] = {"none", "restart", "retry", "give_up",
                                  "fail", "wait"};
  static const char *op[] = {"shut", "start", "drop"};
  int n = snprintf(buf, sizeof(buf), "%s", outcome[p->outcome]);
  if (p->key) n += snprintf(buf + n, sizeof(buf) - n, " %u", p->key);
  if (p->restarts)
    n += snprintf(buf + n, sizeof(buf) - n, " %d/%d", p->restarts,
                  p->max_restarts);
  if (p->outcome == ARB_SUP_WAIT)
    n += snprintf(buf + n, sizeof(buf) - n, " %lldms@%lld",
                  (long long)p->delay_ms, (long long)p->due_ms);
  n += snprintf(buf + n, sizeof(buf) - n, ":");
  for (size_t i = 0; i < p->nsteps; i++)
    n += snprintf(buf + n, sizeof(buf) - n, " %s%u", op[p->steps[i].op],
                  p->steps[i].key);
  return buf;
}

static const char *render_state(const arb_sup_t *s) {
  static char buf[512];
  static const char status[] = "RWS";
  arb_sup_info_t info[16];
  size_t count = arb_sup_which_children(s, info, 16);
  int n = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < count && i < 16; i++) {
    n += snprintf(buf + n, sizeof(buf) - n, "%s%u%c", i ? " " : "",
                  info[i].key, status[info[i].status]);
    if (info[i].restarts)
      n += snprintf(buf + n, sizeof(buf) - n, "+%u", info[i].restarts);
  }
  return buf;
}

/* Carries out plan p as an executor would: every step is reported, and
** the START of child `fail` (0: none) fails, in which case the plan that
** start_failed returns is checked against `then` and carried out too. */
static void execute(arb_sup_t *s, const arb_sup_plan_t *p, uint32_t fail,
                    const char *then) {
  int failed = 0;
  for (size_t i = 0; i < p->nsteps; i++) {
    arb_sup_step_t st = p->steps[i];
    if (st.op == ARB_SUP_START && st.key == fail && !failed) {
      const arb_sup_plan_t *np = NULL;
      assert_int_equal(arb_sup_start_failed(s, st.key, &np), 0);
      assert_int_equal(arb_sup_check(s), 0);
      assert_string_equal(render_plan(np), then ? then : "(no failure)");
      failed = 1;
      p = np;
      i = (size_t)-1; /* carry out the new plan from its first step */
      continue;
    }
    assert_int_equal(arb_sup_step_done(s, st.key), 0);
    assert_int_equal(arb_sup_check(s), 0);
  }
  assert_int_equal(failed, fail != 0); /* the chosen START was reached */
}

/* Makes a supervisor whose children follow `types`: p permanent, t
** transient, x temporary; upper case for a supervisor child.  Child i
** (1-based) gets key i and user value 100 + i. */
static arb_sup_t *make(int strategy, int max, int64_t period,
                       const char *types) {
  arb_sup_flags_t fl = {strategy, max, period};
  arb_sup_t *s = NULL;
  assert_int_equal(arb_sup_new(&s, &fl), 0);
  for (size_t i = 0; types[i]; i++) {
    char c = types[i];
    arb_sup_spec_t sp;
    uint32_t key = 0;
    memset(&sp, 0, sizeof(sp));
    sp.restart = (c == 'p' || c == 'P') ? ARB_SUP_PERMANENT
                 : (c == 't' || c == 'T') ? ARB_SUP_TRANSIENT
                                          : ARB_SUP_TEMPORARY;
    sp.kind = (c >= 'A' && c <= 'Z') ? ARB_SUP_SUPERVISOR : ARB_SUP_WORKER;
    sp.user = 101 + i;
    assert_int_equal(arb_sup_add(s, &sp, &key), 0);
    assert_int_equal(key, i + 1);
  }
  assert_int_equal(arb_sup_check(s), 0);
  for (size_t i = 0; i < 8; i++) {
    if (!live[i]) {
      live[i] = s;
      break;
    }
  }
  return s;
}

/* make() followed by a successful initial start. */
static arb_sup_t *make_started(int strategy, int max, int64_t period,
                               const char *types) {
  arb_sup_t *s = make(strategy, max, period, types);
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_start(s, &p), 0);
  execute(s, p, 0, NULL);
  return s;
}

/* }====== */

/* {====== The exit matrix: strategy x restart type x exit class
** Four permanent children except child 2, which has the row's type; child
** 2 exits at time 0 with the row's class (max 3 restarts in 5 s). */

typedef struct {
  int strategy, restart, cls;
  const char *plan, *state;
} matrix_row_t;

#define RFO_RESTART "restart 2 1/3: shut4 shut3 start2 start3 start4"
#define OFO_RESTART "restart 2 1/3: start2"
#define OFA_RESTART "restart 2 1/3: shut4 shut3 shut1 start1 start2 " \
                    "start3 start4"
#define RFO_AFTER "1R 2R+1 3R+1 4R+1"
#define OFO_AFTER "1R 2R+1 3R 4R"
#define OFA_AFTER "1R+1 2R+1 3R+1 4R+1"
#define KEPT "none 2:", "1R 2S 3R 4R"
#define DROPPED "none 2: drop2", "1R 3R 4R"

static const matrix_row_t matrix[] = {
  {RFO, ARB_SUP_PERMANENT, NRM, RFO_RESTART, RFO_AFTER},
  {RFO, ARB_SUP_PERMANENT, SHT, RFO_RESTART, RFO_AFTER},
  {RFO, ARB_SUP_PERMANENT, ABN, RFO_RESTART, RFO_AFTER},
  {RFO, ARB_SUP_TRANSIENT, NRM, KEPT},
  {RFO, ARB_SUP_TRANSIENT, SHT, KEPT},
  {RFO, ARB_SUP_TRANSIENT, ABN, RFO_RESTART, RFO_AFTER},
  {RFO, ARB_SUP_TEMPORARY, NRM, DROPPED},
  {RFO, ARB_SUP_TEMPORARY, SHT, DROPPED},
  {RFO, ARB_SUP_TEMPORARY, ABN, DROPPED},
  {OFO, ARB_SUP_PERMANENT, NRM, OFO_RESTART, OFO_AFTER},
  {OFO, ARB_SUP_PERMANENT, SHT, OFO_RESTART, OFO_AFTER},
  {OFO, ARB_SUP_PERMANENT, ABN, OFO_RESTART, OFO_AFTER},
  {OFO, ARB_SUP_TRANSIENT, NRM, KEPT},
  {OFO, ARB_SUP_TRANSIENT, SHT, KEPT},
  {OFO, ARB_SUP_TRANSIENT, ABN, OFO_RESTART, OFO_AFTER},
  {OFO, ARB_SUP_TEMPORARY, NRM, DROPPED},
  {OFO, ARB_SUP_TEMPORARY, SHT, DROPPED},
  {OFO, ARB_SUP_TEMPORARY, ABN, DROPPED},
  {OFA, ARB_SUP_PERMANENT, NRM, OFA_RESTART, OFA_AFTER},
  {OFA, ARB_SUP_PERMANENT, SHT, OFA_RESTART, OFA_AFTER},
  {OFA, ARB_SUP_PERMANENT, ABN, OFA_RESTART, OFA_AFTER},
  {OFA, ARB_SUP_TRANSIENT, NRM, KEPT},
  {OFA, ARB_SUP_TRANSIENT, SHT, KEPT},
  {OFA, ARB_SUP_TRANSIENT, ABN, OFA_RESTART, OFA_AFTER},
  {OFA, ARB_SUP_TEMPORARY, NRM, DROPPED},
  {OFA, ARB_SUP_TEMPORARY, SHT, DROPPED},
  {OFA, ARB_SUP_TEMPORARY, ABN, DROPPED},
};

#define NMATRIX (sizeof(matrix) / sizeof(matrix[0]))

static void run_matrix_row(void **state) {
  const matrix_row_t *row = *state;
  static const char types[] = {'p', 't', 'x'};
  char spec[] = "pppp";
  spec[1] = types[row->restart];
  arb_sup_t *s = make_started(row->strategy, 3, 5000, spec);
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_exit(s, 2, row->cls, 0, &p), 0);
  assert_int_equal(arb_sup_check(s), 0);
  assert_string_equal(render_plan(p), row->plan);
  execute(s, p, 0, NULL);
  assert_string_equal(render_state(s), row->state);
  release(s);
}

/* }====== */

/* {====== Scenarios: event sequences through the fake executor */

enum { EV_END, EV_START, EV_EXIT, EV_RETRY, EV_TERM, EV_RESTART,
       EV_DELETE, EV_CHANGED, EV_REMOVE, EV_STOP, EV_STRATEGY };

typedef struct {
  int op;
  uint32_t key;   /* the child; the strategy for EV_STRATEGY */
  int cls;        /* exit class */
  int64_t now;
  uint32_t fail;  /* the START of this child fails once (0: none) */
  int rc;         /* expected return code; plan/state unchecked if not 0 */
  const char *plan, *then, *state;
} ev_t;

typedef struct {
  const char *name;
  int strategy, max;
  int64_t period;
  const char *types;
  ev_t ev[10]; /* an initial start is implied unless ev[0] is EV_START */
} scenario_t;

#define START(pl, st) {EV_START, 0, 0, 0, 0, 0, pl, NULL, st}
#define STARTF(f, pl, th, st) {EV_START, 0, 0, 0, f, 0, pl, th, st}
#define EXIT(k, c, t, pl, st) {EV_EXIT, k, c, t, 0, 0, pl, NULL, st}
#define EXITF(k, c, t, f, pl, th, st) {EV_EXIT, k, c, t, f, 0, pl, th, st}
#define RETRY(k, t, pl, st) {EV_RETRY, k, 0, t, 0, 0, pl, NULL, st}
#define RETRYF(k, t, f, pl, th, st) {EV_RETRY, k, 0, t, f, 0, pl, th, st}
#define TERM(k, pl, st) {EV_TERM, k, 0, 0, 0, 0, pl, NULL, st}
#define RESTART(k, pl, st) {EV_RESTART, k, 0, 0, 0, 0, pl, NULL, st}
#define RESTARTF(k, pl, th, st) {EV_RESTART, k, 0, 0, k, 0, pl, th, st}
#define DELETE(k, st) {EV_DELETE, k, 0, 0, 0, 0, NULL, NULL, st}
#define CHANGED(k, pl, st) {EV_CHANGED, k, 0, 0, 0, 0, pl, NULL, st}
#define CHANGEDF(k, f, pl, th, st) {EV_CHANGED, k, 0, 0, f, 0, pl, th, st}
#define REMOVE(k, pl, st) {EV_REMOVE, k, 0, 0, 0, 0, pl, NULL, st}
#define STOP(pl, st) {EV_STOP, 0, 0, 0, 0, 0, pl, NULL, st}
#define STRATEGY(x) {EV_STRATEGY, x, 0, 0, 0, 0, NULL, NULL, NULL}
#define ERR(op, k, rc) {op, k, ABN, 0, 0, rc, NULL, NULL, NULL}

static const scenario_t scenarios[] = {
  /* gleam_otp's supervisor_test and OTP's order_of_children. */
  {"gleam_rest_for_one_exit_of_2_restarts_2_3_and_exit_of_1_restarts_all",
   RFO, 10, 5000, "ppp", {
     EXIT(2, ABN, 0, "restart 2 1/10: shut3 start2 start3", "1R 2R+1 3R+1"),
     EXIT(1, ABN, 1, "restart 1 2/10: shut3 shut2 start1 start2 start3",
          "1R+1 2R+2 3R+2")}},
  {"otp_order_of_children_starts_in_order_and_shuts_down_in_reverse",
   RFO, 3, 5000, "ppppp", {
     START("none: start1 start2 start3 start4 start5",
           "1R 2R 3R 4R 5R"),
     EXIT(3, ABN, 0, "restart 3 1/3: shut5 shut4 start3 start4 start5",
          "1R 2R 3R+1 4R+1 5R+1"),
     STOP("none: shut5 shut4 shut3 shut2 shut1", "1S 2S 3S+1 4S+1 5S+1")}},

  /* Bystanders: temporary ones dropped, transient ones restarted anyway,
  ** stopped ones in the strategy's range started again (OTP's
  ** start_children starts every child that kept its spec). */
  {"rest_for_one_drops_temporary_bystanders",
   RFO, 3, 5000, "ppxp", {
     EXIT(2, ABN, 0, "restart 2 1/3: shut4 shut3 drop3 start2 start4",
          "1R 2R+1 4R+1")}},
  {"one_for_all_drops_temporary_bystanders_on_both_sides",
   OFA, 3, 5000, "xpxp", {
     EXIT(2, SHT, 0,
          "restart 2 1/3: shut4 shut3 drop3 shut1 drop1 start2 start4",
          "2R+1 4R+1")}},
  {"one_for_one_leaves_temporary_siblings_alone",
   OFO, 3, 5000, "xpx", {
     EXIT(2, NRM, 0, "restart 2 1/3: start2", "1R 2R+1 3R")}},
  {"rest_for_one_restarts_transient_bystander_regardless_of_type",
   RFO, 3, 5000, "pptp", {
     EXIT(2, ABN, 0, "restart 2 1/3: shut4 shut3 start2 start3 start4",
          "1R 2R+1 3R+1 4R+1")}},
  {"rest_for_one_restarts_child_stopped_by_terminate_child",
   RFO, 3, 5000, "pppp", {
     TERM(3, "none 3: shut3", "1R 2R 3S 4R"),
     EXIT(2, ABN, 0, "restart 2 1/3: shut4 start2 start3 start4",
          "1R 2R+1 3R+1 4R+1")}},
  {"one_for_all_restarts_child_stopped_by_terminate_child",
   OFA, 3, 5000, "pppp", {
     TERM(1, "none 1: shut1", "1S 2R 3R 4R"),
     EXIT(3, ABN, 0,
          "restart 3 1/3: shut4 shut2 start1 start2 start3 start4",
          "1R+1 2R+1 3R+1 4R+1")}},
  {"one_for_all_restarts_transient_that_exited_normally",
   OFA, 3, 5000, "ptp", {
     EXIT(2, NRM, 0, "none 2:", "1R 2S 3R"),
     EXIT(3, ABN, 0, "restart 3 1/3: shut1 start1 start2 start3",
          "1R+1 2R+1 3R+1")}},
  {"one_for_all_restarts_transient_supervisor_that_gave_up",
   OFA, 3, 5000, "Tp", {
     EXIT(1, SHT, 0, "none 1:", "1S 2R"),
     EXIT(2, ABN, 0, "restart 2 1/3: start1 start2", "1R+1 2R+1")}},
  {"rest_for_one_restarts_stopped_transient_after_the_crashed_child",
   RFO, 3, 5000, "pptp", {
     EXIT(3, SHT, 0, "none 3:", "1R 2R 3S 4R"),
     EXIT(2, ABN, 0, "restart 2 1/3: shut4 start2 start3 start4",
          "1R 2R+1 3R+1 4R+1")}},
  {"rest_for_one_leaves_stopped_child_before_the_crashed_one",
   RFO, 3, 5000, "tpp", {
     EXIT(1, NRM, 0, "none 1:", "1S 2R 3R"),
     EXIT(2, ABN, 0, "restart 2 1/3: shut3 start2 start3",
          "1S 2R+1 3R+1")}},
  {"one_for_one_leaves_stopped_sibling_stopped",
   OFO, 3, 5000, "tp", {
     EXIT(1, NRM, 0, "none 1:", "1S 2R"),
     EXIT(2, ABN, 0, "restart 2 1/3: start2", "1S 2R+1")}},
  {"restarted_stopped_child_crashes_again_and_counts_toward_intensity",
   OFA, 1, 5000, "tp", {
     EXIT(1, NRM, 0, "none 1:", "1S 2R"),
     EXIT(2, ABN, 0, "restart 2 1/1: start1 start2", "1R+1 2R+1"),
     EXIT(1, ABN, 1, "give_up 1 2/1: shut2", "1S+1 2S+1")}},
  {"stopped_member_waits_restarting_through_a_failed_restart",
   RFO, 5, 5000, "ppp", {
     TERM(3, "none 3: shut3", "1R 2R 3S"),
     EXITF(2, ABN, 0, 2, "restart 2 1/5: start2 start3", "retry 2:",
           "1R 2W 3W"),
     RETRY(2, 10, "restart 2 2/5: start2 start3", "1R 2R+1 3R+1")}},
  {"temporary_bystander_waiting_for_a_retry_is_dropped",
   RFO, 5, 5000, "px", {
     CHANGEDF(2, 2, "restart 2: shut2 start2", "retry 2:", "1R 2W"),
     STRATEGY(OFA),
     EXIT(1, ABN, 0, "restart 1 1/5: drop2 start1", "1R+1"),
     RETRY(2, 1, "none 2:", "1R+1")}},

  /* Intensity: give-up plans and the window's edges. */
  {"give_up_shuts_down_all_remaining_children_newest_first",
   OFO, 0, 5000, "pppp", {
     EXIT(2, ABN, 0, "give_up 2 1/0: shut4 shut3 shut1", "1S 2S 3S 4S")}},
  {"give_up_after_second_restart_within_period",
   RFO, 1, 5000, "pppp", {
     EXIT(3, ABN, 0, "restart 3 1/1: shut4 start3 start4",
          "1R 2R 3R+1 4R+1"),
     EXIT(1, ABN, 100, "give_up 1 2/1: shut4 shut3 shut2",
          "1S 2S 3S+1 4S+1")}},
  {"give_up_skips_stopped_children",
   OFA, 0, 5000, "pxpp", {
     TERM(3, "none 3: shut3", "1R 2R 3S 4R"),
     EXIT(1, ABN, 0, "give_up 1 1/0: shut4 shut2", "1S 2S 3S 4S")}},
  {"window_restart_exactly_period_old_still_counts",
   OFO, 1, 1000, "p", {
     EXIT(1, ABN, 0, "restart 1 1/1: start1", "1R+1"),
     EXIT(1, ABN, 1000, "give_up 1 2/1:", "1S+1")}},
  {"window_restart_older_than_period_no_longer_counts",
   OFO, 1, 1000, "p", {
     EXIT(1, ABN, 0, "restart 1 1/1: start1", "1R+1"),
     EXIT(1, ABN, 1001, "restart 1 1/1: start1", "1R+2")}},
  {"window_max_zero_gives_up_on_first_restart",
   OFO, 0, 1000, "pp", {
     EXIT(2, ABN, 0, "give_up 2 1/0: shut1", "1S 2S")}},
  {"window_third_restart_within_period_exceeds_two",
   OFO, 2, 1000, "p", {
     EXIT(1, ABN, 0, "restart 1 1/2: start1", "1R+1"),
     EXIT(1, ABN, 500, "restart 1 2/2: start1", "1R+2"),
     EXIT(1, ABN, 1000, "give_up 1 3/2:", "1S+2")}},
  {"window_slides_dropping_only_expired_restarts",
   OFO, 2, 1000, "p", {
     EXIT(1, ABN, 0, "restart 1 1/2: start1", "1R+1"),
     EXIT(1, ABN, 500, "restart 1 2/2: start1", "1R+2"),
     EXIT(1, ABN, 1001, "restart 1 2/2: start1", "1R+3"),
     EXIT(1, ABN, 1500, "give_up 1 3/2:", "1S+3")}},
  {"window_drops_several_expired_restarts_at_once",
   OFO, 3, 1000, "p", {
     EXIT(1, ABN, 0, "restart 1 1/3: start1", "1R+1"),
     EXIT(1, ABN, 10, "restart 1 2/3: start1", "1R+2"),
     EXIT(1, ABN, 20, "restart 1 3/3: start1", "1R+3"),
     EXIT(1, ABN, 1011, "restart 1 2/3: start1", "1R+4"),
     EXIT(1, ABN, 1020, "restart 1 3/3: start1", "1R+5"),
     EXIT(1, ABN, 1021, "restart 1 3/3: start1", "1R+6")}},
  {"window_shortest_period_counts_one_millisecond_back",
   OFO, 1, ARB_SUP_MIN_PERIOD_MS, "p", {
     EXIT(1, ABN, 5, "restart 1 1/1: start1", "1R+1"),
     EXIT(1, ABN, 7, "restart 1 1/1: start1", "1R+2"),
     EXIT(1, ABN, 8, "give_up 1 2/1:", "1S+2")}},
  {"window_longest_period_keeps_every_restart",
   OFO, 2, ARB_SUP_MAX_PERIOD_MS, "p", {
     EXIT(1, ABN, 0, "restart 1 1/2: start1", "1R+1"),
     EXIT(1, ABN, ARB_SUP_MAX_PERIOD_MS - 1, "restart 1 2/2: start1",
          "1R+2"),
     EXIT(1, ABN, ARB_SUP_MAX_PERIOD_MS, "give_up 1 3/2:", "1S+2")}},
  {"exit_without_restart_records_no_intensity_event",
   OFO, 1, 1000, "ptx", {
     EXIT(2, NRM, 0, "none 2:", "1R 2S 3R"),
     EXIT(3, ABN, 0, "none 3: drop3", "1R 2S"),
     EXIT(1, ABN, 0, "restart 1 1/1: start1", "1R+1 2S")}},

  /* Start failures during a restart, and retries. */
  {"rest_for_one_retry_resumes_from_failed_child",
   RFO, 5, 5000, "pppp", {
     EXITF(2, ABN, 0, 3, "restart 2 1/5: shut4 shut3 start2 start3 start4",
           "retry 3:", "1R 2R+1 3W 4W"),
     RETRY(3, 10, "restart 3 2/5: start3 start4", "1R 2R+1 3R+1 4R+1")}},
  {"rest_for_one_retry_shuts_down_running_later_children_first",
   OFO, 5, 5000, "pppp", {
     EXITF(2, ABN, 0, 2, "restart 2 1/5: start2", "retry 2:",
           "1R 2W 3R 4R"),
     STRATEGY(RFO),
     RETRY(2, 10, "restart 2 2/5: shut4 shut3 start2 start3 start4",
           "1R 2R+1 3R+1 4R+1")}},
  {"one_for_all_retry_restarts_everything_again",
   OFA, 5, 5000, "pppp", {
     EXITF(2, ABN, 0, 3,
           "restart 2 1/5: shut4 shut3 shut1 start1 start2 start3 start4",
           "retry 3:", "1R+1 2R+1 3W 4W"),
     RETRY(3, 10, "restart 3 2/5: shut2 shut1 start1 start2 start3 start4",
           "1R+2 2R+2 3R+1 4R+1")}},
  {"one_for_one_retry_restarts_failed_child_alone",
   OFO, 5, 5000, "ppp", {
     EXITF(2, ABN, 0, 2, "restart 2 1/5: start2", "retry 2:", "1R 2W 3R"),
     RETRY(2, 10, "restart 2 2/5: start2", "1R 2R+1 3R")}},
  {"each_retry_counts_toward_intensity_until_give_up",
   OFO, 2, 5000, "pp", {
     EXITF(1, ABN, 0, 1, "restart 1 1/2: start1", "retry 1:", "1W 2R"),
     RETRYF(1, 1, 1, "restart 1 2/2: start1", "retry 1:", "1W 2R"),
     RETRY(1, 2, "give_up 1 3/2: shut2", "1S 2S")}},
  {"give_up_during_retry_stops_restarting_children",
   RFO, 1, 5000, "ppp", {
     EXITF(1, ABN, 0, 2, "restart 1 1/1: shut3 shut2 start1 start2 start3",
           "retry 2:", "1R+1 2W 3W"),
     RETRY(2, 1, "give_up 2 2/1: shut1", "1S+1 2S 3S")}},
  {"retry_of_child_already_restarted_by_sibling_counts_nothing",
   RFO, 5, 5000, "ppp", {
     EXITF(2, ABN, 0, 2, "restart 2 1/5: shut3 start2 start3", "retry 2:",
           "1R 2W 3W"),
     EXIT(1, ABN, 1, "restart 1 2/5: start1 start2 start3",
          "1R+1 2R+1 3R+1"),
     RETRY(2, 2, "none 2:", "1R+1 2R+1 3R+1"),
     EXIT(3, ABN, 3, "restart 3 3/5: start3", "1R+1 2R+1 3R+2")}},
  {"terminate_child_ends_a_restart_loop",
   OFO, 5, 5000, "pp", {
     EXITF(1, ABN, 0, 1, "restart 1 1/5: start1", "retry 1:", "1W 2R"),
     TERM(1, "none 1:", "1S 2R"),
     RETRY(1, 1, "none 1:", "1S 2R")}},
  {"retry_of_removed_child_does_nothing",
   OFO, 5, 5000, "pp", {
     EXITF(1, ABN, 0, 1, "restart 1 1/5: start1", "retry 1:", "1W 2R"),
     REMOVE(1, "none 1: drop1", "2R"),
     RETRY(1, 1, "none 1:", "2R")}},

  /* Initial start. */
  {"initial_start_failure_shuts_down_started_children_in_reverse",
   RFO, 3, 5000, "pppp", {
     STARTF(3, "none: start1 start2 start3 start4", "fail 3: shut2 shut1",
            "1S 2S 3S 4S")}},
  {"initial_start_failure_of_first_child_shuts_down_nothing",
   RFO, 3, 5000, "pp", {
     STARTF(1, "none: start1 start2", "fail 1:", "1S 2S")}},
  {"initial_start_refuses_when_children_run",
   RFO, 3, 5000, "pp", {
     START("none: start1 start2", "1R 2R"),
     ERR(EV_START, 0, ARB_SUP_ERUNNING)}},

  /* Management: terminate, restart, delete, and their errors. */
  {"terminate_child_keeps_spec_and_restart_child_starts_it",
   RFO, 3, 5000, "ppp", {
     TERM(2, "none 2: shut2", "1R 2S 3R"),
     TERM(2, "none 2:", "1R 2S 3R"),
     ERR(EV_EXIT, 2, ARB_SUP_ESTOPPED),
     RESTART(2, "none 2: start2", "1R 2R 3R"),
     ERR(EV_RESTART, 2, ARB_SUP_ERUNNING),
     ERR(EV_DELETE, 2, ARB_SUP_ERUNNING)}},
  {"terminate_child_drops_temporary_child",
   OFO, 3, 5000, "pxp", {TERM(2, "none 2: shut2 drop2", "1R 3R")}},
  {"restart_child_failure_leaves_child_stopped",
   OFO, 0, 5000, "pp", {
     TERM(2, "none 2: shut2", "1R 2S"),
     RESTARTF(2, "none 2: start2", "fail 2:", "1R 2S")}},
  {"delete_child_removes_only_stopped_children",
   OFO, 3, 5000, "ppp", {
     TERM(2, "none 2: shut2", "1R 2S 3R"),
     DELETE(2, "1R 3R"),
     ERR(EV_DELETE, 2, ARB_SUP_ENOTFOUND),
     ERR(EV_TERM, 2, ARB_SUP_ENOTFOUND),
     ERR(EV_RESTART, 2, ARB_SUP_ENOTFOUND),
     ERR(EV_EXIT, 2, ARB_SUP_ENOTFOUND)}},
  {"restarting_child_refuses_restart_delete_and_exit",
   OFO, 3, 5000, "pp", {
     EXITF(1, ABN, 0, 1, "restart 1 1/3: start1", "retry 1:", "1W 2R"),
     ERR(EV_RESTART, 1, ARB_SUP_ERESTARTING),
     ERR(EV_DELETE, 1, ARB_SUP_ERESTARTING),
     ERR(EV_EXIT, 1, ARB_SUP_ERESTARTING)}},

  /* Live editing. */
  {"changed_spec_restarts_rest_for_one_without_counting",
   RFO, 0, 5000, "pppp", {
     CHANGED(2, "restart 2: shut4 shut3 shut2 start2 start3 start4",
             "1R 2R+1 3R+1 4R+1")}},
  {"changed_spec_restarts_one_for_one_child_alone",
   OFO, 0, 5000, "ppp", {
     CHANGED(2, "restart 2: shut2 start2", "1R 2R+1 3R")}},
  {"changed_spec_restarts_all_under_one_for_all",
   OFA, 0, 5000, "ppp", {
     CHANGED(2, "restart 2: shut3 shut2 shut1 start1 start2 start3",
             "1R+1 2R+1 3R+1")}},
  {"changed_temporary_child_restarts_and_temporary_bystanders_drop",
   RFO, 0, 5000, "pxx", {
     CHANGED(2, "restart 2: shut3 drop3 shut2 start2", "1R 2R+1")}},
  {"changed_spec_of_stopped_child_does_nothing",
   RFO, 0, 5000, "ppp", {
     TERM(2, "none 2: shut2", "1R 2S 3R"),
     CHANGED(2, "none 2:", "1R 2S 3R")}},
  {"changed_spec_start_failure_retries_and_retry_counts",
   OFO, 0, 5000, "ppp", {
     CHANGEDF(2, 2, "restart 2: shut2 start2", "retry 2:", "1R 2W 3R"),
     RETRY(2, 0, "give_up 2 1/0: shut3 shut1", "1S 2S 3S")}},
  {"removed_child_is_shut_down_and_dropped",
   RFO, 3, 5000, "ppp", {
     REMOVE(2, "none 2: shut2 drop2", "1R 3R"),
     TERM(3, "none 3: shut3", "1R 3S"),
     REMOVE(3, "none 3: drop3", "1R"),
     ERR(EV_REMOVE, 3, ARB_SUP_ENOTFOUND),
     ERR(EV_CHANGED, 3, ARB_SUP_ENOTFOUND)}},
};

#define NSCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static int apply(arb_sup_t *s, const ev_t *e, const arb_sup_plan_t **p) {
  switch (e->op) {
    case EV_START: return arb_sup_start(s, p);
    case EV_EXIT: return arb_sup_exit(s, e->key, e->cls, e->now, p);
    case EV_RETRY: return arb_sup_retry(s, e->key, e->now, p);
    case EV_TERM: return arb_sup_terminate_child(s, e->key, p);
    case EV_RESTART: return arb_sup_restart_child(s, e->key, p);
    case EV_DELETE: return arb_sup_delete(s, e->key);
    case EV_CHANGED: return arb_sup_changed(s, e->key, p);
    case EV_REMOVE: return arb_sup_remove(s, e->key, p);
    case EV_STOP: return arb_sup_stop(s, p);
    default: {
      arb_sup_flags_t fl;
      arb_sup_get_flags(s, &fl);
      fl.strategy = (int)e->key;
      return arb_sup_set_flags(s, &fl);
    }
  }
}

static void run_scenario(void **state) {
  const scenario_t *sc = *state;
  arb_sup_t *s = sc->ev[0].op == EV_START
                     ? make(sc->strategy, sc->max, sc->period, sc->types)
                     : make_started(sc->strategy, sc->max, sc->period,
                                    sc->types);
  for (const ev_t *e = sc->ev; e->op != EV_END; e++) {
    const arb_sup_plan_t *p = NULL;
    char before[512];
    strcpy(before, render_state(s));
    int rc = apply(s, e, &p);
    assert_int_equal(arb_sup_check(s), 0);
    if (rc != 0 || e->rc != 0) {
      assert_string_equal(arb_sup_err_name(rc), arb_sup_err_name(e->rc));
      assert_null(p);
      assert_string_equal(render_state(s), before); /* nothing changed */
      continue;
    }
    if (e->plan) {
      assert_non_null(p);
      assert_string_equal(render_plan(p), e->plan);
      execute(s, p, e->fail, e->then);
    }
    if (e->state) assert_string_equal(render_state(s), e->state);
  }
  release(s);
}

/* }====== */

/* {====== Hand-written tests */

static const arb_sup_flags_t default_flags = {RFO, 1, 5000};

static void test_sup_new_and_edits_reject_bad_arguments(void **state) {
  (void)state;
  arb_sup_t *s = NULL;
  arb_sup_flags_t bad[] = {{-1, 1, 5},
                           {3, 1, 5},
                           {RFO, -1, 5},
                           {RFO, ARB_SUP_MAX_INTENSITY + 1, 5},
                           {RFO, 1, -1},
                           {RFO, 1, ARB_SUP_MIN_PERIOD_MS - 1},
                           {RFO, 1, ARB_SUP_MAX_PERIOD_MS + 1},
                           {RFO, 1, INT64_MAX}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(arb_sup_new(&s, &bad[i]), ARB_SUP_EINVAL);
  assert_int_equal(arb_sup_new(&s, NULL), ARB_SUP_EINVAL);
  assert_int_equal(arb_sup_new(NULL, &default_flags), ARB_SUP_EINVAL);
  assert_null(s);
  s = make_started(RFO, 1, 5000, "p");
  arb_sup_spec_t sp = {ARB_SUP_TEMPORARY + 1, ARB_SUP_WORKER, 0, {0, 0, 0}};
  assert_int_equal(arb_sup_add(s, &sp, NULL), ARB_SUP_EINVAL);
  sp.restart = ARB_SUP_PERMANENT;
  sp.kind = ARB_SUP_SUPERVISOR + 1;
  assert_int_equal(arb_sup_add(s, &sp, NULL), ARB_SUP_EINVAL);
  assert_int_equal(arb_sup_update(s, 1, &sp), ARB_SUP_EINVAL);
  sp.kind = ARB_SUP_WORKER;
  assert_int_equal(arb_sup_insert(s, 2, &sp, NULL), ARB_SUP_EINVAL);
  assert_int_equal(arb_sup_update(s, 9, &sp), ARB_SUP_ENOTFOUND);
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    assert_int_equal(arb_sup_set_flags(s, &bad[i]), ARB_SUP_EINVAL);
  /* The limits themselves are accepted. */
  arb_sup_flags_t edge = {OFA, ARB_SUP_MAX_INTENSITY, ARB_SUP_MAX_PERIOD_MS};
  assert_int_equal(arb_sup_set_flags(s, &edge), 0);
  edge.max_restarts = 0;
  edge.period_ms = ARB_SUP_MIN_PERIOD_MS;
  assert_int_equal(arb_sup_set_flags(s, &edge), 0);
  assert_int_equal(arb_sup_exit(s, 1, ABN + 1, 0, NULL), ARB_SUP_EINVAL);
  assert_int_equal(arb_sup_exit(s, 0, ABN, 0, NULL), ARB_SUP_ENOTFOUND);
  assert_string_equal(render_state(s), "1R");
  assert_int_equal(arb_sup_check(s), 0);
  release(s);
  arb_sup_free(NULL);
}

static void test_sup_out_of_memory_fails_cleanly_and_changes_nothing(
    void **state) {
  (void)state;
  /* arb_sup_new: each allocation in turn fails. */
  for (long n = 0;; n++) {
    arb_sup_t *s = NULL;
    fail_after_set(n);
    int rc = arb_sup_new(&s, &default_flags);
    fail_after_set(-1);
    if (rc == 0) {
      assert_true(n >= 2);
      release(s);
      break;
    }
    assert_int_equal(rc, ARB_SUP_ENOMEM);
    assert_null(s);
    assert_int_equal(arb_alloc_in_use(), 0);
  }
  /* arb_sup_add / arb_sup_insert: the step array or the child fails. */
  arb_sup_t *s = make_started(RFO, 1, 5000, "pp");
  arb_sup_spec_t sp = {ARB_SUP_PERMANENT, ARB_SUP_WORKER, 7, {0, 0, 0}};
  int failures = 0;
  for (long n = 0;; n++) {
    uint32_t key = 0;
    size_t used = arb_alloc_in_use();
    fail_after_set(n);
    int rc = arb_sup_insert(s, 1, &sp, &key);
    fail_after_set(-1);
    assert_int_equal(arb_sup_check(s), 0);
    if (rc == 0) {
      assert_int_equal(key, 3);
      break;
    }
    failures++;
    assert_int_equal(rc, ARB_SUP_ENOMEM);
    assert_int_equal(key, 0);
    assert_string_equal(render_state(s), "1R 2R");
    assert_true(arb_alloc_in_use() >= used); /* steps may have grown */
  }
  assert_int_equal(failures, 2);
  assert_string_equal(render_state(s), "1R 3S 2R");
  /* arb_sup_set_flags: the new window fails; the old one is kept. */
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_exit(s, 1, ABN, 0, &p), 0);
  execute(s, p, 0, NULL);
  arb_sup_flags_t fl = {OFO, 4, 100};
  fail_after_set(0);
  assert_int_equal(arb_sup_set_flags(s, &fl), ARB_SUP_ENOMEM);
  fail_after_set(-1);
  arb_sup_get_flags(s, &fl);
  assert_int_equal(fl.strategy, RFO);
  assert_int_equal(fl.max_restarts, 1);
  assert_int_equal(fl.period_ms, 5000);
  /* (The restart above started the inserted, stopped child 3 too.) */
  assert_int_equal(arb_sup_exit(s, 1, ABN, 1, &p), 0); /* window kept */
  assert_string_equal(render_plan(p), "give_up 1 2/1: shut2 shut3");
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_check(s), 0);
  release(s);
}

static void test_sup_planning_and_reports_never_allocate(void **state) {
  (void)state;
  arb_sup_t *s = make(OFA, 5, 5000, "pxpp");
  const arb_sup_plan_t *p = NULL;
  fail_after_set(0); /* every allocation from here on fails */
  assert_int_equal(arb_sup_start(s, &p), 0);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_exit(s, 3, ABN, 0, &p), 0);
  execute(s, p, 1, "retry 1:");
  assert_int_equal(arb_sup_retry(s, 1, 1, &p), 0);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_changed(s, 4, &p), 0);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_terminate_child(s, 1, &p), 0);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_restart_child(s, 1, &p), 0);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_remove(s, 3, &p), 0);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_stop(s, &p), 0);
  execute(s, p, 0, NULL);
  fail_after_set(-1);
  assert_string_equal(render_state(s), "1S+2 4S+2");
  release(s);
}

static void test_sup_keys_stay_stable_when_indices_shift(void **state) {
  (void)state;
  arb_sup_t *s = make_started(RFO, 3, 5000, "pxp");
  arb_sup_info_t info;
  assert_int_equal(arb_sup_lookup(s, 3, &info), 0);
  assert_int_equal(info.index, 2);
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_exit(s, 2, ABN, 0, &p), 0); /* dropped */
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_lookup(s, 3, &info), 0);
  assert_int_equal(info.index, 1);
  assert_int_equal(info.user, 103);
  assert_int_equal(arb_sup_lookup(s, 2, &info), ARB_SUP_ENOTFOUND);
  assert_int_equal(arb_sup_key_at(s, 0), 1);
  assert_int_equal(arb_sup_key_at(s, 1), 3);
  assert_int_equal(arb_sup_key_at(s, 2), 0);
  /* New children get fresh keys: 2 is never reused. */
  arb_sup_spec_t sp = {ARB_SUP_PERMANENT, ARB_SUP_WORKER, 200, {0, 0, 0}};
  uint32_t key = 0;
  assert_int_equal(arb_sup_insert(s, 0, &sp, &key), 0);
  assert_int_equal(key, 4);
  assert_int_equal(arb_sup_lookup(s, 3, &info), 0);
  assert_int_equal(info.index, 2);
  assert_int_equal(arb_sup_check(s), 0);
  release(s);
}

static void test_sup_inserted_child_starts_at_its_position(void **state) {
  (void)state;
  arb_sup_t *s = make_started(RFO, 3, 5000, "pp");
  arb_sup_spec_t sp = {ARB_SUP_TRANSIENT, ARB_SUP_SUPERVISOR, 300,
                       {0, 0, 0}};
  uint32_t key = 0;
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_insert(s, 1, &sp, &key), 0);
  assert_int_equal(arb_sup_check(s), 0);
  assert_string_equal(render_state(s), "1R 3S 2R");
  assert_int_equal(arb_sup_restart_child(s, key, &p), 0);
  assert_string_equal(render_plan(p), "none 3: start3");
  execute(s, p, 0, NULL);
  /* It now takes part in rest_for_one restarts at its position. */
  assert_int_equal(arb_sup_exit(s, 3, ABN, 0, &p), 0);
  assert_string_equal(render_plan(p), "restart 3 1/3: shut2 start3 start2");
  execute(s, p, 0, NULL);
  assert_string_equal(render_state(s), "1R 3R+1 2R+1");
  release(s);
}

static void test_sup_which_and_count_children_report_kinds_and_status(
    void **state) {
  (void)state;
  arb_sup_t *s = make_started(OFO, 5, 5000, "pTtX");
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_terminate_child(s, 3, &p), 0);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_exit(s, 1, ABN, 0, &p), 0);
  execute(s, p, 1, "retry 1:");
  arb_sup_counts_t n;
  arb_sup_count_children(s, &n);
  assert_int_equal(n.specs, 4);
  assert_int_equal(n.active, 2); /* restarting and stopped are not */
  assert_int_equal(n.workers, 2);
  assert_int_equal(n.supervisors, 2);
  arb_sup_info_t info[4];
  assert_int_equal(arb_sup_which_children(s, NULL, 0), 4);
  assert_int_equal(arb_sup_which_children(s, info, 2), 4);
  assert_int_equal(info[0].status, ARB_SUP_RESTARTING);
  assert_int_equal(info[1].kind, ARB_SUP_SUPERVISOR);
  assert_int_equal(info[1].restart, ARB_SUP_TRANSIENT);
  assert_int_equal(info[1].user, 102);
  assert_int_equal(arb_sup_retry(s, 1, 1, &p), 0);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_which_children(s, info, 4), 4);
  assert_int_equal(info[0].restarts, 1);
  assert_int_equal(info[2].status, ARB_SUP_STOPPED);
  assert_int_equal(info[3].restart, ARB_SUP_TEMPORARY);
  release(s);
}

static void test_sup_set_flags_keeps_newest_restarts(void **state) {
  (void)state;
  arb_sup_t *s = make_started(OFO, 5, 1000, "p");
  const arb_sup_plan_t *p = NULL;
  for (int t = 0; t < 3; t++) {
    assert_int_equal(arb_sup_exit(s, 1, ABN, t * 100, &p), 0);
    execute(s, p, 0, NULL);
  }
  /* Shrinking to max 1 keeps the newest two (100, 200), so at 1150 the
  ** restart at 200 still counts and this one is one too many. */
  arb_sup_flags_t fl = {OFA, 1, 1000};
  assert_int_equal(arb_sup_set_flags(s, &fl), 0);
  assert_int_equal(arb_sup_check(s), 0);
  assert_int_equal(arb_sup_exit(s, 1, ABN, 1150, &p), 0);
  assert_string_equal(render_plan(p), "give_up 1 2/1:");
  assert_int_equal(p->strategy, OFA);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_restart_child(s, 1, &p), 0);
  execute(s, p, 0, NULL);
  /* Growing keeps them all (200, 1150); the new period applies at once. */
  fl.max_restarts = 3;
  fl.period_ms = 100;
  assert_int_equal(arb_sup_set_flags(s, &fl), 0);
  assert_int_equal(arb_sup_check(s), 0);
  assert_int_equal(arb_sup_exit(s, 1, ABN, 1250, &p), 0);
  assert_string_equal(render_plan(p), "restart 1 2/3: start1");
  execute(s, p, 0, NULL);
  release(s);
}

static void test_sup_reports_must_follow_the_plan(void **state) {
  (void)state;
  arb_sup_t *s = make_started(RFO, 3, 5000, "ppp");
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_step_done(s, 1), ARB_SUP_ESTEP); /* no plan */
  assert_int_equal(arb_sup_start_failed(s, 1, &p), ARB_SUP_ESTEP);
  assert_null(p);
  assert_int_equal(arb_sup_exit(s, 1, ABN, 0, &p), 0);
  /* Next step is shut3: start2, shut2 and start_failed(3) are refused. */
  assert_int_equal(arb_sup_step_done(s, 2), ARB_SUP_ESTEP);
  assert_int_equal(arb_sup_start_failed(s, 3, NULL), ARB_SUP_ESTEP);
  assert_string_equal(render_state(s), "1W 2R 3R");
  assert_int_equal(arb_sup_step_done(s, 3), 0);
  assert_string_equal(render_state(s), "1W 2R 3W"); /* stopped only now */
  assert_int_equal(arb_sup_step_done(s, 2), 0);
  assert_int_equal(arb_sup_start_failed(s, 2, NULL), ARB_SUP_ESTEP);
  assert_int_equal(arb_sup_step_done(s, 1), 0);
  assert_string_equal(render_state(s), "1R+1 2W 3W"); /* running only now */
  assert_int_equal(arb_sup_step_done(s, 2), 0);
  assert_int_equal(arb_sup_step_done(s, 3), 0);
  assert_int_equal(arb_sup_step_done(s, 3), ARB_SUP_ESTEP); /* plan done */
  assert_string_equal(render_state(s), "1R+1 2R+1 3R+1");
  assert_int_equal(arb_sup_check(s), 0);
  release(s);
}

static void test_sup_plan_in_progress_refuses_other_events(void **state) {
  (void)state;
  arb_sup_t *s = make_started(RFO, 3, 5000, "ppp");
  const arb_sup_plan_t *p = NULL, *q = NULL;
  arb_sup_spec_t sp = {ARB_SUP_PERMANENT, ARB_SUP_WORKER, 0, {0, 0, 0}};
  arb_sup_flags_t fl = default_flags;
  assert_int_equal(arb_sup_exit(s, 2, ABN, 0, &p), 0);
  assert_int_equal(arb_sup_exit(s, 1, ABN, 0, &q), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_retry(s, 2, 0, &q), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_start(s, &q), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_terminate_child(s, 1, &q), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_restart_child(s, 1, &q), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_changed(s, 1, &q), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_remove(s, 1, &q), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_delete(s, 1), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_add(s, &sp, NULL), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_update(s, 1, &sp), ARB_SUP_EBUSY);
  assert_int_equal(arb_sup_set_flags(s, &fl), ARB_SUP_EBUSY);
  assert_null(q);
  assert_string_equal(render_plan(p), "restart 2 1/3: shut3 start2 start3");
  /* Queries still answer. */
  arb_sup_counts_t n;
  arb_sup_count_children(s, &n);
  assert_int_equal(n.active, 2);
  execute(s, p, 0, NULL);
  assert_int_equal(arb_sup_check(s), 0);
  release(s);
}

static void test_sup_stop_abandons_plan_in_progress(void **state) {
  (void)state;
  arb_sup_t *s = make_started(OFA, 3, 5000, "pppp");
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_exit(s, 2, ABN, 0, &p), 0);
  assert_int_equal(arb_sup_step_done(s, 4), 0); /* shut4 done, then stop */
  assert_int_equal(arb_sup_stop(s, &p), 0);
  assert_int_equal(arb_sup_check(s), 0);
  assert_string_equal(render_plan(p), "none: shut3 shut1");
  execute(s, p, 0, NULL);
  assert_string_equal(render_state(s), "1S 2S 3S 4S");
  release(s);
}

/* An executor can walk the current plan in place: next_step names the
** step to carry out (and stays on it until it is reported), the current
** plan is the one a start failure put in place of the event's. */
static void test_sup_next_step_walks_the_current_plan(void **state) {
  (void)state;
  arb_sup_t *s = make(RFO, 3, 5000, "ppp");
  arb_sup_step_t st;
  assert_int_equal(arb_sup_next_step(s, &st), 0); /* no plan yet */
  assert_string_equal(render_plan(arb_sup_current_plan(s)), "none:");
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_start(s, &p), 0);
  assert_ptr_equal(arb_sup_current_plan(s), p);
  for (uint32_t key = 1; key <= 3; key++) {
    assert_int_equal(arb_sup_next_step(s, &st), 1);
    assert_int_equal(arb_sup_next_step(s, NULL), 1); /* reading moves nothing */
    assert_int_equal(st.op, ARB_SUP_START);
    assert_int_equal(st.key, key);
    assert_int_equal(st.user, 100 + key);
    assert_int_equal(arb_sup_step_done_at(s, key, 0), 0);
  }
  assert_int_equal(arb_sup_next_step(s, &st), 0);
  /* Child 2 exits: shut3 start2 start3; start2 fails, and the current
  ** plan becomes the retry, with nothing left to carry out. */
  assert_int_equal(arb_sup_exit(s, 2, ABN, 10, &p), 0);
  assert_int_equal(arb_sup_next_step(s, &st), 1);
  assert_int_equal(st.op, ARB_SUP_SHUTDOWN);
  assert_int_equal(st.key, 3);
  assert_int_equal(arb_sup_step_done(s, 3), 0);
  assert_int_equal(arb_sup_next_step(s, &st), 1);
  assert_int_equal(st.op, ARB_SUP_START);
  assert_int_equal(st.key, 2);
  assert_int_equal(arb_sup_start_failed_at(s, 2, 11, &p), 0);
  assert_ptr_equal(arb_sup_current_plan(s), p);
  assert_string_equal(render_plan(arb_sup_current_plan(s)), "retry 2:");
  assert_int_equal(arb_sup_next_step(s, &st), 0);
  assert_int_equal(arb_sup_check(s), 0);
  release(s);
}

static void test_sup_update_changes_restart_type_in_place(void **state) {
  (void)state;
  arb_sup_t *s = make_started(OFO, 3, 5000, "pp");
  arb_sup_spec_t sp = {ARB_SUP_TRANSIENT, ARB_SUP_SUPERVISOR, 55, {0, 0, 0}};
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_update(s, 2, &sp), 0);
  assert_int_equal(arb_sup_exit(s, 2, SHT, 0, &p), 0);
  assert_string_equal(render_plan(p), "none 2:");
  arb_sup_info_t info;
  assert_int_equal(arb_sup_lookup(s, 2, &info), 0);
  assert_int_equal(info.user, 55);
  assert_int_equal(info.kind, ARB_SUP_SUPERVISOR);
  assert_int_equal(info.status, ARB_SUP_STOPPED);
  release(s);
}

static void test_sup_drop_steps_carry_user_values(void **state) {
  (void)state;
  arb_sup_t *s = make_started(OFA, 3, 5000, "xpx");
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_exit(s, 2, ABN, 0, &p), 0);
  assert_string_equal(render_plan(p),
                      "restart 2 1/3: shut3 drop3 shut1 drop1 start2");
  assert_int_equal(p->steps[1].user, 103);
  assert_int_equal(p->steps[3].user, 101);
  assert_int_equal(p->strategy, OFA);
  assert_int_equal(p->period_ms, 5000);
  execute(s, p, 0, NULL);
  release(s);
}

static void test_sup_empty_supervisor_plans_nothing(void **state) {
  (void)state;
  arb_sup_t *s = make(RFO, 1, 5000, "");
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_start(s, &p), 0);
  assert_string_equal(render_plan(p), "none:");
  assert_int_equal(arb_sup_retry(s, 1, 0, &p), 0);
  assert_string_equal(render_plan(p), "none 1:");
  assert_int_equal(arb_sup_stop(s, NULL), 0);
  assert_int_equal(arb_sup_check(s), 0);
  release(s);
}

static void test_sup_error_codes_have_names_and_messages(void **state) {
  (void)state;
  assert_string_equal(arb_sup_err_name(ARB_SUP_ENOTFOUND), "ENOTFOUND");
  assert_string_equal(arb_sup_strerror(ARB_SUP_ENOTFOUND), "no such child");
  assert_string_equal(arb_sup_err_name(ARB_SUP_EBUSY), "EBUSY");
  assert_string_equal(arb_sup_strerror(ARB_SUP_ENOMEM), "out of memory");
  assert_string_equal(arb_sup_err_name(0), "OK");
  assert_string_equal(arb_sup_err_name(-1), "EUNKNOWN");
  assert_string_equal(arb_sup_strerror(-1), "unknown error");
}

/* }====== */

/* {====== Backoff, on an injected clock
** The helpers below take the time of each event; every START is reported
** at that time (arb_sup_step_done_at), as the executor does. */

/* Sets child key's backoff (initial, max, reset_after) in place. */
static void set_backoff(arb_sup_t *s, uint32_t key, int64_t initial,
                        int64_t max, int64_t reset_after) {
  arb_sup_info_t info;
  assert_int_equal(arb_sup_lookup(s, key, &info), 0);
  arb_sup_spec_t sp = {info.restart, info.kind, info.user,
                       {initial, max, reset_after}};
  assert_int_equal(arb_sup_update(s, key, &sp), 0);
}

/* Reports every step of p at now (no failures). */
static void run_at(arb_sup_t *s, const arb_sup_plan_t *p, int64_t now) {
  for (size_t i = 0; i < p->nsteps; i++) {
    assert_int_equal(arb_sup_step_done_at(s, p->steps[i].key, now), 0);
    assert_int_equal(arb_sup_check(s), 0);
  }
}

/* Child key exits abnormally at now; checks and carries out the plan. */
static void exit_at(arb_sup_t *s, uint32_t key, int64_t now,
                    const char *plan, const char *state) {
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_exit(s, key, ABN, now, &p), 0);
  assert_int_equal(arb_sup_check(s), 0);
  assert_string_equal(render_plan(p), plan);
  run_at(s, p, now);
  assert_string_equal(render_state(s), state);
}

/* The clock reads now: checks and carries out what is due. */
static void due_at(arb_sup_t *s, int64_t now, const char *plan,
                   const char *state) {
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_due(s, now, &p), 0);
  assert_int_equal(arb_sup_check(s), 0);
  assert_string_equal(render_plan(p), plan);
  run_at(s, p, now);
  assert_string_equal(render_state(s), state);
}

/* The earliest due time, -1 if nothing waits. */
static int64_t next_due(const arb_sup_t *s) {
  int64_t due = -1;
  if (!arb_sup_next_due(s, &due)) return -1;
  return due;
}

static arb_sup_t *make_started_at(int strategy, int max, int64_t period,
                                  const char *types, int64_t now) {
  arb_sup_t *s = make(strategy, max, period, types);
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_start(s, &p), 0);
  run_at(s, p, now);
  return s;
}

static void test_sup_backoff_delay_doubles_up_to_max(void **state) {
  (void)state;
  arb_sup_t *s = make(OFO, 10, 100000, "pp");
  set_backoff(s, 1, 100, 400, 400);
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_start(s, &p), 0);
  run_at(s, p, 0);
  assert_int_equal(next_due(s), -1);
  exit_at(s, 1, 10, "wait 1 100ms@110:", "1W 2R");
  assert_int_equal(next_due(s), 110);
  /* Not yet: nothing restarts, nothing counts. */
  due_at(s, 109, "none:", "1W 2R");
  due_at(s, 110, "restart 1 1/10: start1", "1R+1 2R");
  assert_int_equal(next_due(s), -1);
  exit_at(s, 1, 120, "wait 1 200ms@320:", "1W+1 2R");
  due_at(s, 500, "restart 1 2/10: start1", "1R+2 2R");
  exit_at(s, 1, 510, "wait 1 400ms@910:", "1W+2 2R");
  due_at(s, 910, "restart 1 3/10: start1", "1R+3 2R");
  exit_at(s, 1, 911, "wait 1 400ms@1311:", "1W+3 2R"); /* capped at max */
  arb_sup_info_t info;
  assert_int_equal(arb_sup_lookup(s, 1, &info), 0);
  assert_true(info.waiting);
  assert_int_equal(info.due_ms, 1311);
  assert_int_equal(info.backoff_ms, 400);
  release(s);
}

static void test_sup_backoff_resets_after_a_stable_run(void **state) {
  (void)state;
  arb_sup_t *s = make_started_at(OFO, 10, 100000, "p", 0);
  set_backoff(s, 1, 100, 10000, 50);
  exit_at(s, 1, 10, "wait 1 100ms@110:", "1W");
  due_at(s, 110, "restart 1 1/10: start1", "1R+1");
  exit_at(s, 1, 159, "wait 1 200ms@359:", "1W+1"); /* ran 49 ms */
  due_at(s, 359, "restart 1 2/10: start1", "1R+2");
  exit_at(s, 1, 409, "wait 1 100ms@509:", "1W+2"); /* ran 50 ms: reset */
  due_at(s, 509, "restart 1 3/10: start1", "1R+3");
  exit_at(s, 1, 510, "wait 1 200ms@710:", "1W+3");
  release(s);
}

static void test_sup_backoff_start_of_unknown_time_counts_as_stable(
    void **state) {
  (void)state;
  arb_sup_t *s = make_started(OFO, 10, 100000, "p"); /* step_done */
  set_backoff(s, 1, 100, 10000, 50);
  exit_at(s, 1, 0, "wait 1 100ms@100:", "1W");
  due_at(s, 100, "restart 1 1/10: start1", "1R+1");
  exit_at(s, 1, 101, "wait 1 200ms@301:", "1W+1");
  release(s);
}

static void test_sup_backoff_rest_for_one_siblings_wait_with_it(
    void **state) {
  (void)state;
  arb_sup_t *s = make_started_at(RFO, 10, 100000, "pppx", 0);
  set_backoff(s, 2, 100, 400, 400);
  /* Later siblings are shut down now and wait; the temporary one is
  ** dropped; child 1 is not touched. */
  exit_at(s, 2, 10, "wait 2 100ms@110: shut4 drop4 shut3",
          "1R 2W 3W");
  arb_sup_info_t info;
  assert_int_equal(arb_sup_lookup(s, 3, &info), 0);
  assert_true(info.waiting && info.due_ms == 110);
  due_at(s, 110, "restart 2 1/10: start2 start3", "1R 2R+1 3R+1");
  release(s);
}

static void test_sup_backoff_one_for_all_siblings_wait_one_for_one_not(
    void **state) {
  (void)state;
  arb_sup_t *s = make_started_at(OFA, 10, 100000, "ppp", 0);
  set_backoff(s, 2, 50, 400, 400);
  exit_at(s, 2, 0, "wait 2 50ms@50: shut3 shut1", "1W 2W 3W");
  due_at(s, 60, "restart 2 1/10: start1 start2 start3",
         "1R+1 2R+1 3R+1");
  release(s);
  s = make_started_at(OFO, 10, 100000, "ppp", 0);
  set_backoff(s, 2, 50, 400, 400);
  exit_at(s, 2, 0, "wait 2 50ms@50:", "1R 2W 3R");
  /* Another child's exit meanwhile is planned at once, as usual. */
  exit_at(s, 3, 1, "restart 3 1/10: start3", "1R 2W 3R+1");
  due_at(s, 50, "restart 2 2/10: start2", "1R 2R+1 3R+1");
  release(s);
}

static void test_sup_backoff_counts_toward_intensity_when_it_restarts(
    void **state) {
  (void)state;
  /* One restart allowed per second: exits at 0 and 10 would give up at
  ** once without backoff, but the restarts happen 2 s and 4 s later. */
  arb_sup_t *s = make_started_at(OFO, 1, 1000, "p", 0);
  set_backoff(s, 1, 2000, 4000, 60000);
  exit_at(s, 1, 0, "wait 1 2000ms@2000:", "1W");
  due_at(s, 2000, "restart 1 1/1: start1", "1R+1");
  exit_at(s, 1, 2010, "wait 1 4000ms@6010:", "1W+1");
  due_at(s, 6010, "restart 1 1/1: start1", "1R+2");
  release(s);
  /* Delays shorter than the window still give up, at the restart that
  ** exceeds the limit, not at the exit. */
  s = make_started_at(OFO, 1, 1000, "pp", 0);
  set_backoff(s, 1, 100, 100, 100);
  exit_at(s, 1, 0, "wait 1 100ms@100:", "1W 2R");
  due_at(s, 100, "restart 1 1/1: start1", "1R+1 2R");
  exit_at(s, 1, 150, "wait 1 100ms@250:", "1W+1 2R");
  due_at(s, 250, "give_up 1 2/1: shut2", "1S+1 2S");
  assert_int_equal(next_due(s), -1);
  release(s);
}

static void test_sup_backoff_failed_start_waits_the_next_delay(
    void **state) {
  (void)state;
  arb_sup_t *s = make_started_at(RFO, 10, 100000, "ppp", 0);
  set_backoff(s, 2, 100, 1000, 1000);
  exit_at(s, 2, 0, "wait 2 100ms@100: shut3", "1R 2W 3W");
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_due(s, 100, &p), 0);
  assert_string_equal(render_plan(p), "restart 2 1/10: start2 start3");
  assert_int_equal(arb_sup_start_failed_at(s, 2, 105, &p), 0);
  assert_int_equal(arb_sup_check(s), 0);
  /* Child 3 never started: it waits with child 2 again. */
  assert_string_equal(render_plan(p), "wait 2 200ms@305:");
  assert_string_equal(render_state(s), "1R 2W 3W");
  assert_int_equal(next_due(s), 305);
  due_at(s, 305, "restart 2 2/10: start2 start3", "1R 2R+1 3R+1");
  release(s);
}

static void test_sup_backoff_management_during_the_wait(void **state) {
  (void)state;
  arb_sup_t *s = make_started_at(RFO, 10, 100000, "ppp", 0);
  set_backoff(s, 2, 1000, 1000, 1000);
  exit_at(s, 2, 0, "wait 2 1000ms@1000: shut3", "1R 2W 3W");
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_restart_child(s, 2, &p), ARB_SUP_ERESTARTING);
  assert_int_equal(arb_sup_delete(s, 2),
                   ARB_SUP_ERESTARTING);
  /* A retry message for it (a failed start earlier) changes nothing:
  ** the schedule governs it. */
  assert_int_equal(arb_sup_retry(s, 2, 10, &p), 0);
  assert_string_equal(render_plan(p), "none 2:");
  /* terminate_child ends its wait; the sibling that waited with it comes
  ** due on its own. */
  assert_int_equal(arb_sup_terminate_child(s, 2, &p), 0);
  assert_string_equal(render_plan(p), "none 2:");
  assert_string_equal(render_state(s), "1R 2S 3W");
  assert_int_equal(arb_sup_check(s), 0);
  assert_int_equal(next_due(s), 1000);
  due_at(s, 1000, "restart 3 1/10: start3", "1R 2S 3R+1");
  assert_int_equal(arb_sup_restart_child(s, 2, &p), 0);
  run_at(s, p, 1001);
  assert_string_equal(render_state(s), "1R 2R 3R+1");
  release(s);
}

static void test_sup_backoff_wait_joins_the_earlier_group(void **state) {
  (void)state;
  /* rest_for_one: child 2 waits; then child 1 (also with backoff) exits:
  ** child 2 must not start before child 1, so it joins child 1's wait. */
  arb_sup_t *s = make_started_at(RFO, 10, 100000, "pp", 0);
  set_backoff(s, 1, 500, 500, 500);
  set_backoff(s, 2, 100, 100, 100);
  exit_at(s, 2, 0, "wait 2 100ms@100:", "1R 2W");
  exit_at(s, 1, 10, "wait 1 500ms@510:", "1W 2W");
  assert_int_equal(next_due(s), 510);
  due_at(s, 100, "none:", "1W 2W");
  due_at(s, 510, "restart 1 1/10: start1 start2", "1R+1 2R+1");
  release(s);
}

static void test_sup_backoff_immediate_restart_ends_a_wait(void **state) {
  (void)state;
  arb_sup_t *s = make_started_at(RFO, 10, 100000, "pp", 0);
  set_backoff(s, 2, 100, 100, 100);
  exit_at(s, 2, 0, "wait 2 100ms@100:", "1R 2W");
  exit_at(s, 1, 5, "restart 1 1/10: start1 start2", "1R+1 2R+1");
  assert_int_equal(next_due(s), -1);
  due_at(s, 100, "none:", "1R+1 2R+1");
  release(s);
}

static void test_sup_backoff_stop_and_live_edits(void **state) {
  (void)state;
  arb_sup_t *s = make_started_at(OFO, 10, 100000, "pp", 0);
  set_backoff(s, 1, 100, 800, 800);
  exit_at(s, 1, 0, "wait 1 100ms@100:", "1W 2R");
  due_at(s, 100, "restart 1 1/10: start1", "1R+1 2R");
  exit_at(s, 1, 101, "wait 1 200ms@301:", "1W+1 2R");
  /* A changed spec (live edit) of a waiting child plans nothing now; a
  ** changed backoff starts from its initial delay again. */
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_changed(s, 1, &p), 0);
  assert_string_equal(render_plan(p), "none 1:");
  set_backoff(s, 1, 30, 800, 800);
  due_at(s, 301, "restart 1 2/10: start1", "1R+2 2R");
  exit_at(s, 1, 302, "wait 1 30ms@332:", "1W+2 2R");
  /* Removing backoff: the next exit restarts at once. */
  set_backoff(s, 2, 0, 0, 0);
  exit_at(s, 2, 303, "restart 2 3/10: start2", "1W+2 2R+1");
  /* Stop: waiting children end stopped; nothing is due any more. */
  assert_int_equal(arb_sup_stop(s, &p), 0);
  assert_string_equal(render_plan(p), "none: shut2");
  run_at(s, p, 304);
  assert_string_equal(render_state(s), "1S+2 2S+1");
  assert_int_equal(next_due(s), -1);
  release(s);
}

static void test_sup_backoff_rejects_bad_values(void **state) {
  (void)state;
  arb_sup_t *s = make(OFO, 1, 5000, "p");
  static const arb_sup_backoff_t bad[] = {
      {-1, 100, 100}, {0, 100, 0}, {0, 0, 5}, {200, 100, 100},
      {1, ARB_SUP_MAX_BACKOFF_MS + 1, 1}, {1, 1, -1},
      {1, 1, ARB_SUP_MAX_BACKOFF_MS + 1}, {INT64_MAX, INT64_MAX, 0}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    arb_sup_spec_t sp = {ARB_SUP_PERMANENT, ARB_SUP_WORKER, 0, bad[i]};
    assert_int_equal(arb_sup_add(s, &sp, NULL), ARB_SUP_EINVAL);
    assert_int_equal(arb_sup_update(s, 1, &sp), ARB_SUP_EINVAL);
  }
  /* The longest delays fit: now + max does not overflow. */
  set_backoff(s, 1, ARB_SUP_MAX_BACKOFF_MS, ARB_SUP_MAX_BACKOFF_MS, 0);
  const arb_sup_plan_t *p = NULL;
  assert_int_equal(arb_sup_start(s, &p), 0);
  run_at(s, p, 0);
  assert_int_equal(arb_sup_exit(s, 1, ABN, ARB_SUP_MAX_PERIOD_MS, &p), 0);
  assert_int_equal(p->due_ms, 2 * ARB_SUP_MAX_BACKOFF_MS);
  assert_int_equal(arb_sup_check(s), 0);
  release(s);
}

/* }====== */

int main(void) {
  static const struct CMUnitTest fixed[] = {
    cmocka_unit_test_setup_teardown(
        test_sup_new_and_edits_reject_bad_arguments, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_out_of_memory_fails_cleanly_and_changes_nothing, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_planning_and_reports_never_allocate, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_keys_stay_stable_when_indices_shift, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_inserted_child_starts_at_its_position, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_which_and_count_children_report_kinds_and_status, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_set_flags_keeps_newest_restarts, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_reports_must_follow_the_plan, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_plan_in_progress_refuses_other_events, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_stop_abandons_plan_in_progress, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_next_step_walks_the_current_plan, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_update_changes_restart_type_in_place, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_drop_steps_carry_user_values, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_empty_supervisor_plans_nothing, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_error_codes_have_names_and_messages, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_delay_doubles_up_to_max, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_resets_after_a_stable_run, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_start_of_unknown_time_counts_as_stable, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_rest_for_one_siblings_wait_with_it, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_one_for_all_siblings_wait_one_for_one_not, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_counts_toward_intensity_when_it_restarts, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_failed_start_waits_the_next_delay, setup,
        teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_management_during_the_wait, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_wait_joins_the_earlier_group, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_immediate_restart_ends_a_wait, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_stop_and_live_edits, setup, teardown),
    cmocka_unit_test_setup_teardown(
        test_sup_backoff_rejects_bad_values, setup, teardown),
  };
  static const char *strategy[] = {"rest_for_one", "one_for_one",
                                   "one_for_all"};
  static const char *restart[] = {"permanent", "transient", "temporary"};
  static const char *cls[] = {"normal", "shutdown", "abnormal"};
  static char names[NMATRIX][96];
  size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
  size_t total = nfixed + NMATRIX + NSCENARIOS, i = 0;
  struct CMUnitTest *tests = calloc(total, sizeof(*tests));
  if (!tests) return 1;
  for (size_t k = 0; k < nfixed; k++) tests[i++] = fixed[k];
  for (size_t k = 0; k < NMATRIX; k++) {
    const matrix_row_t *row = &matrix[k];
    const char *what = row->plan[0] == 'r' ? "restarts"
                       : row->restart == ARB_SUP_TEMPORARY ? "is_dropped"
                                                           : "stays_stopped";
    snprintf(names[k], sizeof(names[k]), "exit_matrix_%s_%s_%s_%s",
             strategy[row->strategy], restart[row->restart],
             cls[row->cls], what);
    tests[i++] = (struct CMUnitTest){names[k], run_matrix_row, setup,
                                     teardown, (void *)row};
  }
  for (size_t k = 0; k < NSCENARIOS; k++)
    tests[i++] = (struct CMUnitTest){scenarios[k].name, run_scenario, setup,
                                     teardown, (void *)&scenarios[k]};
  int failed = _cmocka_run_group_tests("sup", tests, total, NULL, NULL);
  free(tests);
  return failed;
}
