/*
** test_loop.c: the libuv runtime (host/rt/loop.c) driving a real node on
** a real uv loop, with no Lua: a scripted ops table stands in for the
** binding.  Each case makes a fresh node and runtime, counts callbacks
** and checks exact numbers, and closes everything (the counting
** allocator must be clean at the end).
**
** Cases: slices of several processes interleave until each finishes; a
** process blocked on a subject is woken by bytes a uv timer callback
** delivers (a byte payload, as a socket or a port would) and receives
** them intact; a node timer fires through ops->timer_fired at its
** deadline on the runtime's clock.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "counting_alloc.h"
#include "loop.h"
#include "payload.h"

typedef struct script_s {
  arb_rt_t rt;
  arb_node_t *node;
  counting_alloc_t ca;
  int resumes[8];     /* per slot */
  int slices_wanted;  /* each process yields this many times, then ends */
  int ended;          /* processes ended */
  int nprocs;
  /* the bytes case */
  arb_subject_t sub;
  uv_timer_t sender;
  char received[64];
  size_t received_len;
  int fired;          /* node timers fired */
  int64_t fired_at;
} script_t;

static void free_payload(void *ud, intptr_t payload) {
  (void)ud;
  if (arb_payload_is_bytes(payload)) arb_bytes_free(payload);
}

static void timer_fired(void *ud, arb_timer_id_t id, const arb_timer_t *t) {
  script_t *s = ud;
  (void)id, (void)t;
  s->fired++;
  s->fired_at = arb_rt_now(&s->rt);
  arb_rt_stop(&s->rt);
}

static const arb_node_ops_t node_ops = {free_payload, NULL, NULL,
                                        timer_fired};

static void no_signal(void *ud, int signum) { (void)ud, (void)signum; }

static script_t *script_new(void) {
  script_t *s = calloc(1, sizeof(*s));
  assert_non_null(s);
  counting_alloc_install(&s->ca);
  s->node = arb_node_new(&node_ops, s);
  assert_non_null(s->node);
  return s;
}

static void script_free(script_t *s) {
  arb_node_free(s->node);
  arb_rt_close(&s->rt);
  counting_alloc_uninstall();
  assert_true(counting_alloc_clean(&s->ca));
  free(s);
}

/* {====== slices */

static void resume_slices(void *ud, arb_proc_t *p) {
  script_t *s = ud;
  uint32_t slot = arb_pid_slot(p->pid);
  if (++s->resumes[slot] >= s->slices_wanted) {
    arb_node_exit(s->node, p, &arb_reason_normal);
    if (++s->ended == s->nprocs) arb_rt_stop(&s->rt);
  }
  arb_node_release(s->node, p); /* still running: back of the queue */
}

static void test_rt_slices_interleave_until_done(void **state) {
  (void)state;
  script_t *s = script_new();
  static const arb_rt_ops_t ops = {resume_slices, no_signal};
  assert_int_equal(arb_rt_init(&s->rt, s->node, &ops, s), 0);
  s->slices_wanted = 50;
  s->nprocs = 3;
  for (int i = 0; i < s->nprocs; i++) assert_non_null(arb_node_spawn(s->node));
  assert_int_equal(arb_rt_run(&s->rt), 0);
  assert_int_equal(s->ended, 3);
  for (int i = 0; i < 3; i++) assert_int_equal(s->resumes[i], 50);
  assert_int_equal(arb_node_count(s->node), 0);
  assert_int_equal(arb_node_check(s->node), 0);
  script_free(s);
}

/* }====== */

/* {====== bytes delivered from a uv callback */

static void send_bytes(uv_timer_t *t) {
  script_t *s = t->data;
  static const char line[] = "GET / HTTP/1.0\r\n";
  arb_subject_send(s->node, &s->sub, arb_bytes_new(line, sizeof(line) - 1));
  uv_close((uv_handle_t *)t, NULL);
}

static void resume_receiver(void *ud, arb_proc_t *p) {
  script_t *s = ud;
  if (s->resumes[0]++ == 0) {
    /* First slice: block on the subject, as receive does. */
    arb_subject_init(s->node, &s->sub, p);
    arb_subject_select(&s->sub, 1);
    assert_int_equal(arb_node_wait(s->node, p, arb_rt_now(&s->rt), -1), 0);
    uv_timer_init(&s->rt.loop, &s->sender);
    s->sender.data = s;
    uv_timer_start(&s->sender, send_bytes, 5, 0);
  } else {
    arb_subject_select(&s->sub, 0);
    arb_node_wait_done(s->node, p);
    intptr_t payload;
    assert_int_equal(arb_subject_take(s->node, &s->sub, &payload), 0);
    assert_true(arb_payload_is_bytes(payload));
    const char *data = arb_bytes_data(payload, &s->received_len);
    assert_true(s->received_len < sizeof(s->received));
    memcpy(s->received, data, s->received_len);
    arb_bytes_free(payload);
    arb_node_exit(s->node, p, &arb_reason_normal);
    arb_rt_stop(&s->rt);
  }
  arb_node_release(s->node, p);
}

static void test_rt_bytes_wake_a_blocked_process(void **state) {
  (void)state;
  script_t *s = script_new();
  static const arb_rt_ops_t ops = {resume_receiver, no_signal};
  assert_int_equal(arb_rt_init(&s->rt, s->node, &ops, s), 0);
  assert_non_null(arb_node_spawn(s->node));
  assert_int_equal(arb_rt_run(&s->rt), 0);
  assert_int_equal(s->resumes[0], 2); /* blocked once, woken once */
  assert_int_equal(s->received_len, 16);
  assert_memory_equal(s->received, "GET / HTTP/1.0\r\n", 16);
  arb_subject_fini(s->node, &s->sub);
  script_free(s);
}

/* }====== */

/* {====== node timers on the runtime's clock */

static void resume_never(void *ud, arb_proc_t *p) {
  script_t *s = ud;
  arb_node_release(s->node, p);
  fail_msg("no process should run");
}

static void test_rt_node_timer_fires_at_its_deadline(void **state) {
  (void)state;
  script_t *s = script_new();
  static const arb_rt_ops_t ops = {resume_never, no_signal};
  assert_int_equal(arb_rt_init(&s->rt, s->node, &ops, s), 0);
  int64_t start = arb_rt_now(&s->rt);
  assert_int_not_equal(arb_node_timer_start(s->node, start, 20,
                                            ARB_TIMER_USER, 0, 0),
                       0);
  assert_int_equal(arb_rt_run(&s->rt), 0);
  assert_int_equal(s->fired, 1);
  assert_true(s->fired_at - start >= 20);
  assert_int_equal(arb_node_next_deadline(s->node), -1);
  script_free(s);
}

/* }====== */

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rt_slices_interleave_until_done),
      cmocka_unit_test(test_rt_bytes_wake_a_blocked_process),
      cmocka_unit_test(test_rt_node_timer_fires_at_its_deadline),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
