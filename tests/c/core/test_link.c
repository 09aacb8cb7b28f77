/*
** test_link.c: link.c: the exit-signal rules (reference/otp-semantics.md
** section 4.1), links (bidirectional, idempotent, unlink, propagation,
** a trapper's noproc exit for a link to a dead pid), monitors
** (noproc, once, fan-out, demonitor, owner cleanup, waking) and
** how a DOWN orders against subject messages.
*/
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "node_fixture.h"

/* Makes p the current process and parks it in WAITING (no timeout). */
static void park(fixture_t *f, arb_proc_t *p) { fixture_park(f, p); }

static int alive(const fixture_t *f, arb_pid_t pid) {
  return arb_node_lookup(f->node, pid) != NULL;
}

static uint32_t nlinks(const arb_proc_t *p) {
  return arb_links_of(p, NULL, 0);
}

/* {======================================================================
** The exit-signal rules
** ======================================================================*/

typedef enum { IGNORED, DIES, MESSAGE } outcome_t;

enum { R_NORMAL, R_SHUTDOWN, R_KILL, R_KILLED, R_NOPROC, R_OTHER };
static const char *const rname[] = {"normal", "shutdown", "kill",
                                    "killed", "noproc",   "other"};

typedef struct rule_s {
  int trap;
  int reason;    /* R_* sent */
  int from_self; /* exit(self(), R) rather than exit(Pid, R) */
  outcome_t outcome;
  int kind; /* the reason the receiver dies with, or the message carries */
} rule_t;

/* Section 4.1's table, for arb_signal_exit. */
static const rule_t signal_rules[] = {
    {0, R_NORMAL, 0, IGNORED, 0},
    {0, R_NORMAL, 1, DIES, ARB_REASON_NORMAL},
    {0, R_SHUTDOWN, 0, DIES, ARB_REASON_SHUTDOWN},
    {0, R_SHUTDOWN, 1, DIES, ARB_REASON_SHUTDOWN},
    {0, R_KILL, 0, DIES, ARB_REASON_KILLED},
    {0, R_KILL, 1, DIES, ARB_REASON_KILLED},
    {0, R_KILLED, 0, DIES, ARB_REASON_KILLED},
    {0, R_KILLED, 1, DIES, ARB_REASON_KILLED},
    {0, R_NOPROC, 0, DIES, ARB_REASON_NOPROC},
    {0, R_OTHER, 0, DIES, ARB_REASON_OTHER},
    {0, R_OTHER, 1, DIES, ARB_REASON_OTHER},
    {1, R_NORMAL, 0, MESSAGE, ARB_REASON_NORMAL},
    {1, R_NORMAL, 1, MESSAGE, ARB_REASON_NORMAL},
    {1, R_SHUTDOWN, 0, MESSAGE, ARB_REASON_SHUTDOWN},
    {1, R_SHUTDOWN, 1, MESSAGE, ARB_REASON_SHUTDOWN},
    {1, R_KILL, 0, DIES, ARB_REASON_KILLED},
    {1, R_KILL, 1, DIES, ARB_REASON_KILLED},
    {1, R_KILLED, 0, MESSAGE, ARB_REASON_KILLED},
    {1, R_KILLED, 1, MESSAGE, ARB_REASON_KILLED},
    {1, R_NOPROC, 0, MESSAGE, ARB_REASON_NOPROC},
    {1, R_OTHER, 0, MESSAGE, ARB_REASON_OTHER},
    {1, R_OTHER, 1, MESSAGE, ARB_REASON_OTHER},
};

/* The same rules for a signal that comes from a linked process ending
** with the reason (a process cannot end with "kill" through a signal). */
static const rule_t link_rules[] = {
    {0, R_NORMAL, 0, IGNORED, 0},
    {0, R_SHUTDOWN, 0, DIES, ARB_REASON_SHUTDOWN},
    {0, R_KILLED, 0, DIES, ARB_REASON_KILLED},
    {0, R_NOPROC, 0, DIES, ARB_REASON_NOPROC},
    {0, R_OTHER, 0, DIES, ARB_REASON_OTHER},
    {1, R_NORMAL, 0, MESSAGE, ARB_REASON_NORMAL},
    {1, R_SHUTDOWN, 0, MESSAGE, ARB_REASON_SHUTDOWN},
    {1, R_KILLED, 0, MESSAGE, ARB_REASON_KILLED},
    {1, R_NOPROC, 0, MESSAGE, ARB_REASON_NOPROC},
    {1, R_OTHER, 0, MESSAGE, ARB_REASON_OTHER},
};

static arb_reason_t *rule_reason(fixture_t *f, int r) {
  switch (r) {
    case R_NORMAL: return &arb_reason_normal;
    case R_SHUTDOWN: return &arb_reason_shutdown;
    case R_KILL: return &arb_reason_kill;
    case R_KILLED: return &arb_reason_killed;
    case R_NOPROC: return &arb_reason_noproc;
    default: return reason_new(f, ARB_REASON_OTHER);
  }
}

/* Checks what happened to `to` after a signal from `from` with reason
** (payload is reason's payload, for identity); fails with the row. */
static void check_outcome(fixture_t *f, int row, const rule_t *rule,
                          arb_pid_t from, arb_proc_t *to, arb_pid_t to_pid,
                          intptr_t payload) {
  const char *what = rule->outcome == IGNORED ? "ignored"
                     : rule->outcome == DIES  ? "dies"
                                              : "message";
  int kind = -1;
  intptr_t got_payload = -1;
  int died = ended_count(f, to_pid, &kind, &got_payload);
  if (rule->outcome == DIES) {
    if (died != 1 || alive(f, to_pid) || kind != rule->kind ||
        got_payload != payload)
      fail_msg("row %d (trap=%d %s self=%d): want %s with kind %d, got "
               "died=%d kind=%d alive=%d",
               row, rule->trap, rname[rule->reason], rule->from_self, what,
               rule->kind, died, kind, alive(f, to_pid));
    return;
  }
  if (died || !alive(f, to_pid))
    fail_msg("row %d (trap=%d %s self=%d): want %s, but it died (kind %d)",
             row, rule->trap, rname[rule->reason], rule->from_self, what,
             kind);
  int has_msg = arb_exits_peek(to) != UINT64_MAX;
  if (rule->outcome == IGNORED) {
    if (has_msg)
      fail_msg("row %d (trap=%d %s self=%d): want ignored, got a message",
               row, rule->trap, rname[rule->reason], rule->from_self);
    return;
  }
  arb_pid_t mfrom = 0;
  arb_reason_t *r = NULL;
  if (arb_exits_take(to, &mfrom, &r) != 0)
    fail_msg("row %d (trap=%d %s self=%d): want a message, got none", row,
             rule->trap, rname[rule->reason], rule->from_self);
  int ok = mfrom == from && r->kind == rule->kind && r->payload == payload;
  arb_reason_release(f->node, r);
  if (!ok || arb_exits_peek(to) != UINT64_MAX)
    fail_msg("row %d (trap=%d %s self=%d): wrong or extra message", row,
             rule->trap, rname[rule->reason], rule->from_self);
}

static void test_exit_signal_rules_table(void **state) {
  fixture_t *f = *state;
  size_t n = sizeof(signal_rules) / sizeof(signal_rules[0]);
  for (size_t i = 0; i < n; i++) {
    const rule_t *rule = &signal_rules[i];
    arb_proc_t *sender = spawn(f), *to = spawn(f);
    arb_pid_t to_pid = to->pid;
    to->flags |= rule->trap ? ARB_PROC_TRAP_EXIT : 0;
    arb_pid_t from = rule->from_self ? to_pid : sender->pid;
    arb_reason_t *r = rule_reason(f, rule->reason);
    intptr_t payload = r->payload;
    assert_int_equal(arb_signal_exit(f->node, from, to_pid, r), 0);
    arb_reason_release(f->node, r);
    CHECK(f);
    check_outcome(f, (int)i, rule, from, to, to_pid, payload);
    assert_true(alive(f, sender->pid)); /* exit/2 never hurts the sender */
    arb_node_exit(f->node, sender, &arb_reason_normal);
    if (alive(f, to_pid)) arb_node_exit(f->node, to, &arb_reason_normal);
    CHECK(f);
  }
}

static void test_link_exit_rules_table(void **state) {
  fixture_t *f = *state;
  size_t n = sizeof(link_rules) / sizeof(link_rules[0]);
  for (size_t i = 0; i < n; i++) {
    const rule_t *rule = &link_rules[i];
    arb_proc_t *x = spawn(f), *y = spawn(f);
    arb_pid_t xp = x->pid, yp = y->pid;
    y->flags |= rule->trap ? ARB_PROC_TRAP_EXIT : 0;
    assert_int_equal(arb_link(f->node, x, yp), 0);
    arb_reason_t *r = rule_reason(f, rule->reason);
    intptr_t payload = r->payload;
    arb_node_exit(f->node, x, r);
    arb_reason_release(f->node, r);
    CHECK(f);
    check_outcome(f, (int)i, rule, xp, y, yp, payload);
    if (alive(f, yp)) {
      assert_int_equal(nlinks(y), 0); /* the link went with x */
      arb_node_exit(f->node, y, &arb_reason_normal);
    }
    CHECK(f);
  }
}

/* BUG (link.c deliver): a process that ends with reason "kill" (e.g.
** exit(kill) on itself, arb_node_exit(p, &arb_reason_kill)) sends its
** links an ordinary exit signal with reason kill: in Erlang only exit/2
** with kill is untrappable (section 4.1, 4.4).  deliver() treats it as
** exit/2 kill: a trapping supervisor linked to it is killed. */
static void test_link_signal_from_process_that_exited_with_kill_is_trappable(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *x = spawn(f), *sup = spawn(f);
  arb_pid_t xp = x->pid, sp = sup->pid;
  sup->flags |= ARB_PROC_TRAP_EXIT;
  assert_int_equal(arb_link(f->node, x, sp), 0);
  arb_node_exit(f->node, x, &arb_reason_kill);
  CHECK(f);
  assert_true(alive(f, sp));
  arb_pid_t from = 0;
  arb_reason_t *r = NULL;
  assert_int_equal(arb_exits_take(sup, &from, &r), 0);
  assert_int_equal(from, xp);
  assert_int_equal(r->kind, ARB_REASON_KILL);
  arb_reason_release(f->node, r);
}

static void test_exit_signal_to_dead_or_unknown_pid_returns_enoproc(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_pid_t bp = b->pid;
  arb_node_exit(f->node, b, &arb_reason_normal);
  assert_int_equal(arb_signal_exit(f->node, a->pid, bp, &arb_reason_kill),
                   ARB_ENOPROC);
  assert_int_equal(arb_signal_exit(f->node, a->pid, ARB_PID_NONE,
                                   &arb_reason_kill),
                   ARB_ENOPROC);
  assert_int_equal(arb_signal_exit(f->node, a->pid, ((uint64_t)1 << 32) | 99,
                                   &arb_reason_kill),
                   ARB_ENOPROC);
  assert_true(alive(f, a->pid));
  CHECK(f);
}

static void test_exit_self_normal_ends_the_current_process(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_pid_t ap = a->pid;
  assert_ptr_equal(arb_node_next(f->node), a);
  assert_int_equal(arb_signal_exit(f->node, ap, ap, &arb_reason_normal), 0);
  CHECK(f);
  assert_int_equal(a->state, ARB_PROC_DEAD);
  int kind;
  assert_int_equal(ended_count(f, ap, &kind, NULL), 1);
  assert_int_equal(kind, ARB_REASON_NORMAL);
  assert_int_equal(arb_node_count(f->node), 0);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_kill_ends_a_trapper_killed_and_its_links_see_killed(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *t = spawn(f), *y = spawn(f), *z = spawn(f);
  arb_pid_t tp = t->pid, yp = y->pid;
  t->flags |= ARB_PROC_TRAP_EXIT;
  z->flags |= ARB_PROC_TRAP_EXIT;
  assert_int_equal(arb_link(f->node, t, yp), 0);
  assert_int_equal(arb_link(f->node, t, z->pid), 0);
  assert_int_equal(arb_signal_exit(f->node, z->pid, tp, &arb_reason_kill), 0);
  CHECK(f);
  int kind;
  assert_int_equal(ended_count(f, tp, &kind, NULL), 1);
  assert_int_equal(kind, ARB_REASON_KILLED);
  assert_int_equal(ended_count(f, yp, &kind, NULL), 1);
  assert_int_equal(kind, ARB_REASON_KILLED);
  arb_pid_t from;
  arb_reason_t *r;
  assert_int_equal(arb_exits_take(z, &from, &r), 0);
  assert_int_equal(from, tp);
  assert_ptr_equal(r, &arb_reason_killed);
  assert_int_equal(arb_node_count(f->node), 1);
}

static void test_crash_propagates_along_links_with_the_same_reason(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f), *d = spawn(f);
  arb_pid_t pa = a->pid, pb = b->pid, pc = c->pid;
  d->flags |= ARB_PROC_TRAP_EXIT;
  assert_int_equal(arb_link(f->node, a, pb), 0);
  assert_int_equal(arb_link(f->node, c, pb), 0);
  assert_int_equal(arb_link(f->node, d, pc), 0);
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  intptr_t id = r->payload;
  assert_int_equal(arb_signal_exit(f->node, d->pid, pa, r), 0);
  arb_reason_release(f->node, r);
  CHECK(f);
  const arb_pid_t dead[3] = {pa, pb, pc};
  for (int i = 0; i < 3; i++) {
    int kind;
    intptr_t payload;
    assert_int_equal(ended_count(f, dead[i], &kind, &payload), 1);
    assert_int_equal(kind, ARB_REASON_OTHER);
    assert_int_equal(payload, id);
  }
  assert_true(f->reason_live[id]); /* d's message holds it */
  arb_pid_t from;
  arb_reason_t *got;
  assert_int_equal(arb_exits_take(d, &from, &got), 0);
  assert_int_equal(from, pc);
  assert_int_equal(got->payload, id);
  arb_reason_release(f->node, got);
  assert_false(f->reason_live[id]);
  assert_int_equal(nlinks(d), 0);
}

static void test_trapper_that_cannot_queue_an_exit_ends_killed(void **state) {
  fixture_t *f = *state;
  arb_proc_t *t = spawn(f), *x = spawn(f);
  arb_pid_t tp = t->pid;
  t->flags |= ARB_PROC_TRAP_EXIT;
  assert_int_equal(arb_link(f->node, t, x->pid), 0);
  counting_alloc_fail_after(&f->ca, 0);
  arb_node_exit(f->node, x, &arb_reason_shutdown);
  counting_alloc_fail_after(&f->ca, -1);
  CHECK(f);
  int kind;
  assert_int_equal(ended_count(f, tp, &kind, NULL), 1);
  assert_int_equal(kind, ARB_REASON_KILLED);
}

/* }====================================================================== */

/* {======================================================================
** Links
** ======================================================================*/

static void test_links_are_bidirectional(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_pid_t ap = a->pid;
  assert_int_equal(arb_link(f->node, a, b->pid), 0);
  CHECK(f);
  arb_pid_t out[2] = {0, 0};
  assert_int_equal(arb_links_of(a, out, 2), 1);
  assert_int_equal(out[0], b->pid);
  assert_int_equal(arb_links_of(b, out, 2), 1);
  assert_int_equal(out[0], ap);
  /* Ending the end that did not call link signals the other. */
  arb_node_exit(f->node, b, &arb_reason_shutdown);
  CHECK(f);
  int kind;
  assert_int_equal(ended_count(f, ap, &kind, NULL), 1);
  assert_int_equal(kind, ARB_REASON_SHUTDOWN);
}

static void test_linking_twice_makes_one_link(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  a->flags |= ARB_PROC_TRAP_EXIT;
  assert_int_equal(arb_link(f->node, a, b->pid), 0);
  size_t allocs = f->ca.live_allocs;
  assert_int_equal(arb_link(f->node, a, b->pid), 0);
  assert_int_equal(arb_link(f->node, b, a->pid), 0);
  assert_int_equal(f->ca.live_allocs, allocs);
  assert_int_equal(nlinks(a), 1);
  assert_int_equal(nlinks(b), 1);
  arb_pid_t bp = b->pid;
  arb_node_exit(f->node, b, &arb_reason_shutdown);
  CHECK(f);
  arb_pid_t from;
  arb_reason_t *r;
  assert_int_equal(arb_exits_take(a, &from, &r), 0);
  assert_int_equal(from, bp);
  assert_int_equal(arb_exits_take(a, &from, &r), ARB_ENOTFOUND);
  assert_int_equal(nlinks(a), 0);
}

static void test_link_to_self_is_a_no_op(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  size_t allocs = f->ca.live_allocs;
  assert_int_equal(arb_link(f->node, a, a->pid), 0);
  assert_int_equal(nlinks(a), 0);
  assert_int_equal(f->ca.live_allocs, allocs);
  arb_node_exit(f->node, a, &arb_reason_shutdown);
  assert_int_equal(f->nended, 1);
  CHECK(f);
}

static void test_link_to_dead_or_unknown_pid_returns_enoproc(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_pid_t bp = b->pid;
  arb_node_exit(f->node, b, &arb_reason_normal);
  assert_int_equal(arb_link(f->node, a, bp), ARB_ENOPROC);
  arb_proc_t *c = spawn(f); /* reuses b's slot */
  assert_int_equal(arb_pid_slot(c->pid), arb_pid_slot(bp));
  assert_int_equal(arb_link(f->node, a, bp), ARB_ENOPROC);
  assert_int_equal(arb_link(f->node, a, ARB_PID_NONE), ARB_ENOPROC);
  assert_int_equal(arb_link(f->node, a, ((uint64_t)1 << 32) | 1000),
                   ARB_ENOPROC);
  assert_int_equal(nlinks(a), 0);
  assert_int_equal(nlinks(c), 0);
  arb_pid_t from = 0;
  arb_reason_t *r = NULL;
  assert_int_not_equal(arb_exits_take(a, &from, &r), 0); /* not trapping */
  assert_true(alive(f, a->pid));
  CHECK(f);
}

/* Erlang: link/1 to a process that is gone sends the caller an exit
** signal with reason noproc; a trapper gets it as a message. */
static void test_trapper_linking_to_dead_pid_gets_noproc_exit(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_pid_t bp = b->pid;
  a->flags |= ARB_PROC_TRAP_EXIT;
  arb_node_exit(f->node, b, &arb_reason_normal);
  assert_int_equal(arb_link(f->node, a, bp), ARB_ENOPROC);
  CHECK(f);
  assert_int_equal(nlinks(a), 0);
  arb_pid_t from = 0;
  arb_reason_t *r = NULL;
  assert_int_equal(arb_exits_take(a, &from, &r), 0);
  assert_int_equal(from, bp);
  assert_int_equal(r->kind, ARB_REASON_NOPROC);
  arb_reason_release(f->node, r);
  assert_int_not_equal(arb_exits_take(a, &from, &r), 0); /* just one */
  /* Each failed link sends one; a live link sends none. */
  arb_proc_t *c = spawn(f);
  assert_int_equal(arb_link(f->node, a, bp), ARB_ENOPROC);
  assert_int_equal(arb_link(f->node, a, c->pid), 0);
  assert_int_equal(arb_exits_take(a, &from, &r), 0);
  assert_int_equal(r->kind, ARB_REASON_NOPROC);
  arb_reason_release(f->node, r);
  assert_int_not_equal(arb_exits_take(a, &from, &r), 0);
  assert_true(alive(f, a->pid));
  CHECK(f);
}

/* No memory for the noproc exit: the link fails with ARB_ENOMEM and the
** trapper is neither ended nor left with half an exit. */
static void test_trapper_linking_to_dead_pid_out_of_memory(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_pid_t bp = b->pid;
  a->flags |= ARB_PROC_TRAP_EXIT;
  arb_node_exit(f->node, b, &arb_reason_normal);
  counting_alloc_fail_after(&f->ca, 0);
  assert_int_equal(arb_link(f->node, a, bp), ARB_ENOMEM);
  counting_alloc_fail_after(&f->ca, -1);
  arb_pid_t from = 0;
  arb_reason_t *r = NULL;
  assert_int_not_equal(arb_exits_take(a, &from, &r), 0);
  assert_true(alive(f, a->pid));
  CHECK(f);
}

static void test_link_out_of_memory_returns_enomem(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  counting_alloc_fail_after(&f->ca, 0);
  assert_int_equal(arb_link(f->node, a, b->pid), ARB_ENOMEM);
  counting_alloc_fail_after(&f->ca, -1);
  assert_int_equal(nlinks(a), 0);
  assert_int_equal(nlinks(b), 0);
  CHECK(f);
}

static void test_unlink_removes_both_directions(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f);
  arb_pid_t ap = a->pid, bp = b->pid;
  size_t allocs = f->ca.live_allocs;
  assert_int_equal(arb_link(f->node, a, bp), 0);
  assert_int_equal(arb_link(f->node, a, c->pid), 0);
  arb_unlink(f->node, b, ap); /* from the other end */
  CHECK(f);
  assert_int_equal(nlinks(b), 0);
  arb_pid_t out[2];
  assert_int_equal(arb_links_of(a, out, 2), 1);
  assert_int_equal(out[0], c->pid);
  arb_unlink(f->node, a, bp); /* not linked any more: no-op */
  arb_unlink(f->node, a, c->pid);
  assert_int_equal(nlinks(a), 0);
  assert_int_equal(nlinks(c), 0);
  assert_int_equal(f->ca.live_allocs, allocs);
  arb_node_exit(f->node, b, &arb_reason_shutdown);
  arb_node_exit(f->node, c, &arb_reason_shutdown);
  CHECK(f);
  assert_true(alive(f, ap));
}

static void test_links_of_lists_oldest_first_and_counts_all(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_pid_t peers[5];
  for (int i = 0; i < 5; i++) {
    peers[i] = spawn(f)->pid;
  }
  /* b links to a, the others the other way round: same list order. */
  assert_int_equal(arb_link(f->node, arb_node_lookup(f->node, peers[0]),
                            a->pid),
                   0);
  for (int i = 1; i < 5; i++)
    assert_int_equal(arb_link(f->node, a, peers[i]), 0);
  arb_pid_t out[5];
  assert_int_equal(arb_links_of(a, out, 5), 5);
  for (int i = 0; i < 5; i++) assert_int_equal(out[i], peers[i]);
  arb_pid_t small[2] = {0, 0};
  assert_int_equal(arb_links_of(a, small, 2), 5);
  assert_int_equal(small[0], peers[0]);
  assert_int_equal(small[1], peers[1]);
  arb_unlink(f->node, a, peers[2]);
  assert_int_equal(arb_links_of(a, out, 5), 4);
  assert_int_equal(out[2], peers[3]);
}

static void test_normal_exit_does_not_propagate_but_removes_links(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *c = spawn(f);
  assert_int_equal(arb_link(f->node, a, b->pid), 0);
  assert_int_equal(arb_link(f->node, b, c->pid), 0);
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
  assert_true(alive(f, b->pid));
  assert_true(alive(f, c->pid));
  arb_pid_t out[2];
  assert_int_equal(arb_links_of(b, out, 2), 1);
  assert_int_equal(out[0], c->pid);
}

/* }====================================================================== */

/* {======================================================================
** Monitors
** ======================================================================*/

static void test_monitor_of_dead_pid_fires_at_once_with_noproc(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f);
  arb_pid_t bp = b->pid;
  arb_node_exit(f->node, b, &arb_reason_normal);
  arb_monitor_t *m1 = &f->mons[0], *m2 = &f->mons[1];
  arb_monitor_init(f->node, m1, a, bp);
  arb_monitor_init(f->node, m2, a, ((uint64_t)1 << 32) | 77);
  CHECK(f);
  assert_int_equal(m1->state, ARB_MONITOR_FIRED);
  assert_true(arb_monitor_peek(m1) < arb_monitor_peek(m2));
  assert_true(arb_monitor_peek(m2) != UINT64_MAX);
  assert_int_equal(m1->owner, a->pid);
  assert_int_equal(m1->target, bp);
  assert_ptr_equal(arb_monitor_take(f->node, m1), &arb_reason_noproc);
  assert_null(arb_monitor_take(f->node, m1));
  assert_ptr_equal(arb_monitor_take(f->node, m2), &arb_reason_noproc);
  assert_true(alive(f, a->pid));
  arb_monitor_fini(f->node, m1);
  arb_monitor_fini(f->node, m2);
}

static void test_monitor_fires_once_with_the_reason(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *t = spawn(f);
  arb_pid_t ap = a->pid;
  a->flags |= ARB_PROC_TRAP_EXIT;
  arb_monitor_t *m = &f->mons[0];
  arb_monitor_init(f->node, m, a, t->pid);
  assert_int_equal(m->state, ARB_MONITOR_ACTIVE);
  assert_int_equal(arb_monitor_peek(m), UINT64_MAX);
  assert_null(arb_monitor_take(f->node, m));
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  intptr_t id = r->payload;
  arb_node_exit(f->node, t, r);
  arb_reason_release(f->node, r);
  CHECK(f);
  /* Monitors never hurt the owner and are not exit signals. */
  assert_true(alive(f, ap));
  assert_int_equal(arb_exits_peek(a), UINT64_MAX);
  assert_int_equal(m->state, ARB_MONITOR_FIRED);
  assert_true(f->reason_live[id]);
  arb_reason_t *got = arb_monitor_take(f->node, m);
  assert_ptr_equal(got, r);
  assert_int_equal(got->payload, id);
  assert_null(arb_monitor_take(f->node, m));
  assert_int_equal(arb_monitor_peek(m), UINT64_MAX);
  assert_int_equal(m->state, ARB_MONITOR_IDLE);
  arb_reason_release(f->node, got);
  assert_false(f->reason_live[id]);
  arb_monitor_fini(f->node, m);
  CHECK(f);
}

static void test_several_monitors_on_one_target_all_fire(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *t = spawn(f);
  arb_monitor_init(f->node, &f->mons[0], a, t->pid);
  arb_monitor_init(f->node, &f->mons[1], b, t->pid);
  arb_monitor_init(f->node, &f->mons[2], a, t->pid); /* stackable */
  assert_true(f->mons[0].id != f->mons[2].id);
  arb_node_exit(f->node, t, &arb_reason_shutdown);
  CHECK(f);
  uint64_t last = 0;
  for (int i = 0; i < 3; i++) {
    assert_int_equal(f->mons[i].state, ARB_MONITOR_FIRED);
    assert_true(i == 0 || arb_monitor_peek(&f->mons[i]) > last);
    last = arb_monitor_peek(&f->mons[i]);
  }
  for (int i = 0; i < 3; i++)
    assert_ptr_equal(arb_monitor_take(f->node, &f->mons[i]),
                     &arb_reason_shutdown);
}

static void test_monitor_fini_drops_a_fired_down(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *t = spawn(f);
  arb_monitor_t *m = &f->mons[0];
  arb_monitor_init(f->node, m, a, t->pid);
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  intptr_t id = r->payload;
  arb_node_exit(f->node, t, r);
  arb_reason_release(f->node, r);
  assert_true(f->reason_live[id]); /* the DOWN holds it */
  arb_monitor_fini(f->node, m);
  CHECK(f);
  assert_false(f->reason_live[id]);
  assert_int_equal(m->state, ARB_MONITOR_IDLE);
  assert_int_equal(arb_monitor_peek(m), UINT64_MAX);
  assert_null(arb_monitor_take(f->node, m));
  assert_true(arb_list_empty(&a->monitors));
  arb_monitor_fini(f->node, m); /* twice is harmless */
}

static void test_monitor_fini_of_active_monitor_stops_watching(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *t = spawn(f);
  arb_monitor_t *m = &f->mons[0];
  arb_monitor_init(f->node, m, a, t->pid);
  arb_monitor_fini(f->node, m);
  assert_true(arb_list_empty(&t->watchers));
  assert_true(arb_list_empty(&a->monitors));
  arb_node_exit(f->node, t, &arb_reason_shutdown);
  CHECK(f);
  assert_int_equal(m->state, ARB_MONITOR_IDLE);
  assert_null(m->reason);
  assert_null(arb_monitor_take(f->node, m));
}

static void test_monitors_held_by_an_ending_owner_are_cleaned(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *t1 = spawn(f), *t2 = spawn(f);
  arb_monitor_t *active = &f->mons[0], *fired = &f->mons[1];
  arb_monitor_init(f->node, active, a, t1->pid);
  arb_monitor_init(f->node, fired, a, t2->pid);
  arb_reason_t *r = reason_new(f, ARB_REASON_OTHER);
  intptr_t id = r->payload;
  arb_node_exit(f->node, t2, r);
  arb_reason_release(f->node, r);
  assert_true(f->reason_live[id]);
  arb_node_exit(f->node, a, &arb_reason_normal);
  CHECK(f);
  assert_false(f->reason_live[id]);
  assert_true(arb_list_empty(&t1->watchers));
  assert_int_equal(active->state, ARB_MONITOR_IDLE);
  assert_int_equal(fired->state, ARB_MONITOR_IDLE);
  assert_null(fired->reason);
  /* The target ending later touches nothing of a's. */
  arb_node_exit(f->node, t1, &arb_reason_shutdown);
  CHECK(f);
  assert_int_equal(active->state, ARB_MONITOR_IDLE);
  arb_monitor_fini(f->node, active); /* the user's late fini is harmless */
  arb_monitor_fini(f->node, fired);
}

static void test_monitor_of_oneself_is_cleaned_when_it_ends(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f);
  arb_monitor_t *m = &f->mons[0];
  arb_monitor_init(f->node, m, a, a->pid);
  assert_int_equal(m->state, ARB_MONITOR_ACTIVE);
  arb_node_exit(f->node, a, &arb_reason_shutdown);
  CHECK(f);
  assert_int_equal(m->state, ARB_MONITOR_IDLE);
  assert_null(m->reason);
}

static void test_monitor_reason_is_that_of_a_process_killed_by_a_link(
    void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *x = spawn(f), *y = spawn(f);
  assert_int_equal(arb_link(f->node, x, y->pid), 0);
  arb_monitor_init(f->node, &f->mons[0], a, y->pid);
  assert_int_equal(arb_signal_exit(f->node, a->pid, x->pid, &arb_reason_kill),
                   0);
  CHECK(f);
  assert_ptr_equal(arb_monitor_take(f->node, &f->mons[0]),
                   &arb_reason_killed);
}

static void test_selected_monitor_wakes_its_waiting_owner(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *b = spawn(f), *t = spawn(f);
  arb_monitor_t *ma = &f->mons[0], *mb = &f->mons[1];
  arb_monitor_init(f->node, ma, a, t->pid);
  arb_monitor_init(f->node, mb, b, t->pid);
  park(f, a);
  park(f, b);
  ma->selected = 1; /* b waits on something else */
  arb_node_exit(f->node, t, &arb_reason_shutdown);
  CHECK(f);
  assert_int_equal(a->state, ARB_PROC_RUNNABLE);
  assert_int_equal(b->state, ARB_PROC_WAITING);
  assert_ptr_equal(arb_node_next(f->node), a);
  arb_node_wait_done(f->node, a);
  assert_ptr_equal(arb_monitor_take(f->node, ma), &arb_reason_shutdown);
  arb_node_release(f->node, a);
  CHECK(f);
}

static void test_peek_orders_a_down_between_subject_messages(void **state) {
  fixture_t *f = *state;
  arb_proc_t *a = spawn(f), *t = spawn(f);
  arb_subject_t *s = &f->subs[0];
  arb_monitor_t *m = &f->mons[0];
  arb_subject_init(f->node, s, a);
  arb_monitor_init(f->node, m, a, t->pid);
  intptr_t m1 = send_new(f, s, 0);
  arb_node_exit(f->node, t, &arb_reason_shutdown);
  intptr_t m2 = send_new(f, s, 0);
  /* Oldest first: m1, then the DOWN, then m2. */
  assert_true(arb_subject_peek(s) < arb_monitor_peek(m));
  take_expect(f, s, m1);
  assert_true(arb_monitor_peek(m) < arb_subject_peek(s));
  assert_ptr_equal(arb_monitor_take(f->node, m), &arb_reason_shutdown);
  assert_int_equal(arb_monitor_peek(m), UINT64_MAX);
  take_expect(f, s, m2);
}

/* }====================================================================== */

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
      T(test_exit_signal_rules_table),
      T(test_link_exit_rules_table),
      T(test_link_signal_from_process_that_exited_with_kill_is_trappable),
      T(test_exit_signal_to_dead_or_unknown_pid_returns_enoproc),
      T(test_exit_self_normal_ends_the_current_process),
      T(test_kill_ends_a_trapper_killed_and_its_links_see_killed),
      T(test_crash_propagates_along_links_with_the_same_reason),
      T(test_trapper_that_cannot_queue_an_exit_ends_killed),
      T(test_links_are_bidirectional),
      T(test_linking_twice_makes_one_link),
      T(test_link_to_self_is_a_no_op),
      T(test_link_to_dead_or_unknown_pid_returns_enoproc),
      T(test_trapper_linking_to_dead_pid_gets_noproc_exit),
      T(test_trapper_linking_to_dead_pid_out_of_memory),
      T(test_link_out_of_memory_returns_enomem),
      T(test_unlink_removes_both_directions),
      T(test_links_of_lists_oldest_first_and_counts_all),
      T(test_normal_exit_does_not_propagate_but_removes_links),
      T(test_monitor_of_dead_pid_fires_at_once_with_noproc),
      T(test_monitor_fires_once_with_the_reason),
      T(test_several_monitors_on_one_target_all_fire),
      T(test_monitor_fini_drops_a_fired_down),
      T(test_monitor_fini_of_active_monitor_stops_watching),
      T(test_monitors_held_by_an_ending_owner_are_cleaned),
      T(test_monitor_of_oneself_is_cleaned_when_it_ends),
      T(test_monitor_reason_is_that_of_a_process_killed_by_a_link),
      T(test_selected_monitor_wakes_its_waiting_owner),
      T(test_peek_orders_a_down_between_subject_messages),
#undef T
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
