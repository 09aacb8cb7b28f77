/*
** node_fixture.h: the cmocka fixture shared by the core node tests
** (test_proc.c, test_mbox.c, test_link.c), header-only.
**
** It provides fixture_t: an arb_node_t on a counting allocator
** (counting_alloc.h) whose ops callbacks (test_ops) track every message
** payload and dynamic reason the node frees, record each ended process
** and fired timer, and count misuse in f->bad; setup/teardown, which fail
** the test if anything leaked or was freed twice or the allocator is not
** clean; CHECK (arb_node_check); and helpers to spawn processes, make
** tracked reasons and payloads, send and take subject messages, count
** how a process ended and park a process in WAITING.  Optional knobs:
** kill_on_end (one process ending ends another) and spawn_on_end
** (proc_ended spawns more); subs/mons are embedder-owned storage that
** outlives arb_node_free.  It includes cmocka and its prerequisites.
*/
#ifndef ARB_TESTS_NODE_FIXTURE_H
#define ARB_TESTS_NODE_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "counting_alloc.h"
#include "node.h"

enum { MAXP = 4096 };

typedef struct ended_s {
  arb_pid_t pid;
  int kind;
  intptr_t payload;
} ended_t;

typedef struct fired_s {
  arb_timer_id_t id;
  int kind;
  arb_pid_t pid;
  intptr_t payload;
} fired_t;

typedef struct fixture_s {
  counting_alloc_t ca;
  arb_node_t *node;
  unsigned char payload_live[MAXP];
  intptr_t next_payload;
  unsigned char reason_live[MAXP];
  intptr_t next_reason;
  int bad; /* callback misuse: double or unknown frees, bad state */
  ended_t *ended;
  size_t nended, capended;
  fired_t fired[64];
  int nfired;
  arb_pid_t kill_on_end[2]; /* proc_ended of [0] ends [1] */
  int spawn_on_end;         /* proc_ended spawns this many more */
  int spawn_refused;        /* ...and how many of those were refused */
  /* Embedder-owned memory the node links into its lists: it must outlive
  ** arb_node_free, so it lives here rather than on a test's stack. */
  arb_subject_t subs[16];
  arb_monitor_t mons[16];
} fixture_t;

static inline void cb_free_payload(void *ud, intptr_t payload) {
  fixture_t *f = ud;
  if (payload <= 0 || payload >= MAXP || !f->payload_live[payload])
    f->bad++;
  else
    f->payload_live[payload] = 0;
}

static inline void cb_free_reason(void *ud, intptr_t payload) {
  fixture_t *f = ud;
  if (payload <= 0 || payload >= MAXP || !f->reason_live[payload])
    f->bad++;
  else
    f->reason_live[payload] = 0;
}

static inline void cb_proc_ended(void *ud, arb_proc_t *p) {
  fixture_t *f = ud;
  if (p->state != ARB_PROC_DEAD || p->reason == NULL ||
      arb_node_lookup(f->node, p->pid) != NULL) {
    f->bad++;
    return;
  }
  if (f->nended == f->capended) {
    f->capended = f->capended ? f->capended * 2 : 64;
    f->ended = realloc(f->ended, f->capended * sizeof(*f->ended));
  }
  f->ended[f->nended].pid = p->pid;
  f->ended[f->nended].kind = p->reason->kind;
  f->ended[f->nended].payload = p->reason->payload;
  f->nended++;
  if (f->spawn_on_end > 0) {
    f->spawn_on_end--;
    if (arb_node_spawn(f->node) == NULL) f->spawn_refused++;
  }
  if (p->pid == f->kill_on_end[0]) {
    arb_proc_t *q = arb_node_lookup(f->node, f->kill_on_end[1]);
    if (q) arb_node_exit(f->node, q, &arb_reason_shutdown);
  }
}

static inline void cb_timer_fired(void *ud, arb_timer_id_t id,
                                  const arb_timer_t *t) {
  fixture_t *f = ud;
  if (f->nfired == 64) {
    f->bad++;
    return;
  }
  fired_t *r = &f->fired[f->nfired++];
  r->id = id;
  r->kind = t->kind;
  r->pid = t->pid;
  r->payload = t->payload;
}

static const arb_node_ops_t test_ops = {cb_free_payload, cb_free_reason,
                                        cb_proc_ended, cb_timer_fired};

static inline int setup(void **state) {
  fixture_t *f = calloc(1, sizeof(*f));
  if (f == NULL) return -1;
  counting_alloc_install(&f->ca);
  f->next_payload = f->next_reason = 1;
  f->node = arb_node_new(&test_ops, f);
  if (f->node == NULL) return -1;
  *state = f;
  return 0;
}

static inline int teardown(void **state) {
  fixture_t *f = *state;
  arb_node_free(f->node);
  counting_alloc_uninstall();
  int clean = counting_alloc_clean(&f->ca);
  size_t live = f->ca.live_bytes, bad_sizes = f->ca.size_mismatches;
  size_t in_use = arb_alloc_in_use() - f->ca.baseline_in_use;
  int payloads = 0, reasons = 0, bad = f->bad;
  for (int i = 0; i < MAXP; i++) {
    payloads += f->payload_live[i];
    reasons += f->reason_live[i];
  }
  free(f->ended);
  free(f);
  if (!clean)
    fail_msg("allocator not clean: %zu bytes live, %zu bad sizes, "
             "arb_alloc_in_use off by %zu",
             live, bad_sizes, in_use);
  if (payloads || reasons || bad)
    fail_msg("unbalanced: %d payloads, %d reasons live, %d bad callbacks",
             payloads, reasons, bad);
  return 0;
}

#define CHECK(f) assert_int_equal(arb_node_check((f)->node), 0)

static inline arb_proc_t *spawn(fixture_t *f) {
  arb_proc_t *p = arb_node_spawn(f->node);
  assert_non_null(p);
  CHECK(f);
  return p;
}

/* A dynamic reason whose payload the fixture tracks. */
static inline arb_reason_t *reason_new(fixture_t *f, int kind) {
  assert_true(f->next_reason < MAXP);
  intptr_t id = f->next_reason++;
  arb_reason_t *r = arb_reason_new(kind, id);
  assert_non_null(r);
  f->reason_live[id] = 1;
  return r;
}

/* A message payload whose fate the fixture tracks. */
static inline intptr_t payload_new(fixture_t *f) {
  assert_true(f->next_payload < MAXP);
  intptr_t id = f->next_payload++;
  f->payload_live[id] = 1;
  return id;
}

/* The test received payload: it is no longer the node's to free. */
static inline void payload_taken(fixture_t *f, intptr_t payload) {
  assert_true(payload > 0 && payload < MAXP);
  assert_true(f->payload_live[payload]);
  f->payload_live[payload] = 0;
}

/* Sends a fresh payload to sub, expecting rc; returns the payload. */
static inline intptr_t send_new(fixture_t *f, arb_subject_t *sub, int rc) {
  intptr_t m = payload_new(f);
  assert_int_equal(arb_subject_send(f->node, sub, m), rc);
  CHECK(f);
  return m;
}

/* Takes sub's oldest message, expecting it to be `want`. */
static inline void take_expect(fixture_t *f, arb_subject_t *sub,
                               intptr_t want) {
  intptr_t got = -1;
  assert_int_equal(arb_subject_take(f->node, sub, &got), 0);
  assert_int_equal(got, want);
  payload_taken(f, got);
}

/* How many times pid ended, and the last (kind, payload) it ended with. */
static inline int ended_count(const fixture_t *f, arb_pid_t pid, int *kind,
                              intptr_t *payload) {
  int n = 0;
  for (size_t i = 0; i < f->nended; i++) {
    if (f->ended[i].pid != pid) continue;
    n++;
    if (kind) *kind = f->ended[i].kind;
    if (payload) *payload = f->ended[i].payload;
  }
  return n;
}


/* Makes p the current process and parks it in WAITING (no timeout). */
static inline void fixture_park(fixture_t *f, arb_proc_t *p) {
  while (f->node->current != p) {
    arb_proc_t *q = arb_node_next(f->node);
    assert_non_null(q);
    if (q != p) arb_node_release(f->node, q);
  }
  assert_int_equal(arb_node_wait(f->node, p, 0, -1), 0);
  arb_node_release(f->node, p);
  CHECK(f);
}

#endif
