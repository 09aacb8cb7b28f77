/*
** sup.c: the supervisor restart engine.
**
** Children live in an intrusive list in start order; each is named by a
** key that never changes and is never reused.  A plan is built into a step
** array owned by the supervisor, sized 2 * children when children are
** added (a child takes at most two steps in any plan), so planning cannot
** fail for lack of memory.  `cursor` is the next step the executor must
** report; a status changes only when its step is reported.  The intensity
** window is a ring of max_restarts + 1 times, oldest at `win_head`.
** Children are found by key through `index`, an array sorted by key
** (keys only grow, so a new child is appended; a removed one leaves a
** hole until holes outnumber children), so a step costs O(log n), not a
** walk of the list: a 20,000-child plan stays linear.
**
** OTP's rules, with gleam_otp's rest_for_one default: one child exit that
** restarts = one intensity event; bystanders are shut down newest first
** then started in order, stopped ones too (a transient child that ended
** normally, one stopped by terminate_child: OTP's start_children starts
** every child in the range that kept its spec); temporary bystanders are
** dropped, whatever their status; retries count.
**
** Backoff: a waiting child has `waiting` set, its due time and the key of
** the child whose exit (or failed start) scheduled the wait (`wait_key`),
** shared by every member of that set.  Due times only ever come from the
** now_ms the caller passed, so tests drive the schedule with any clock.
** Depends on libc, alloc.h and list.h only.
*/
#include "sup.h"

#include "alloc.h"
#include "list.h"

#include <assert.h>

typedef struct child_s {
  arb_list_t node;
  uint32_t key;
  uint32_t restarts;
  uintptr_t user;
  unsigned char restart, kind, status;
  unsigned char after; /* status once its planned SHUTDOWN is reported */
  unsigned char mark;  /* planning scratch: MARK_OUT, MARK_START, MARK_DROP */
  unsigned char waiting;     /* a backoff restart is scheduled */
  unsigned char has_started; /* started_ms is known */
  uint32_t wait_key;         /* whose wait it shares, if waiting */
  arb_sup_backoff_t backoff; /* initial_ms 0: none */
  int64_t next_delay;        /* the next wait's delay, 0: initial */
  int64_t last_delay;        /* the latest wait's delay, 0: none yet */
  int64_t due_ms;            /* if waiting */
  int64_t started_ms;        /* if has_started */
} child_t;

enum { MARK_OUT, MARK_START, MARK_DROP };

/* An entry of the index by key; c is NULL for a removed child (a hole). */
typedef struct slot_s {
  uint32_t key;
  child_t *c;
} slot_t;

/* What the current plan's START steps belong to (for start failures). */
enum { CTX_NONE, CTX_INIT, CTX_MANUAL, CTX_RESTART };

struct arb_sup_s {
  arb_list_t children; /* child_t.node, in start order */
  size_t n;
  uint32_t next_key;   /* 0 once the key space is used up */
  arb_sup_flags_t flags;
  int64_t *win;        /* restart times, ring of win_cap */
  size_t win_cap, win_head, win_len;
  arb_sup_step_t *steps;
  size_t steps_cap;
  size_t cursor;       /* next unreported step of plan */
  int ctx;
  arb_sup_plan_t plan;
  slot_t *index;       /* children by key, ascending; see the header */
  size_t index_len, index_cap, index_holes;
  child_t *last_insert; /* where the next insert's walk may start, or NULL */
  size_t last_insert_pos;
  int64_t clock;       /* the latest now_ms passed in, for calls without */
  size_t nwaiting;     /* children waiting for a backoff restart */
};

#define CHILD(p) arb_container_of(p, child_t, node)

/* {====== Helpers */

static int valid_flags(const arb_sup_flags_t *f) {
  return f && f->strategy >= ARB_SUP_REST_FOR_ONE &&
         f->strategy <= ARB_SUP_ONE_FOR_ALL && f->max_restarts >= 0 &&
         f->max_restarts <= ARB_SUP_MAX_INTENSITY &&
         f->period_ms >= ARB_SUP_MIN_PERIOD_MS &&
         f->period_ms <= ARB_SUP_MAX_PERIOD_MS;
}

static int valid_backoff(const arb_sup_backoff_t *b) {
  if (b->initial_ms == 0)
    return b->max_ms == 0 && b->reset_after_ms == 0;
  return b->initial_ms > 0 && b->initial_ms <= b->max_ms &&
         b->max_ms <= ARB_SUP_MAX_BACKOFF_MS && b->reset_after_ms >= 0 &&
         b->reset_after_ms <= ARB_SUP_MAX_BACKOFF_MS;
}

static int valid_spec(const arb_sup_spec_t *sp) {
  return sp && sp->restart >= ARB_SUP_PERMANENT &&
         sp->restart <= ARB_SUP_TEMPORARY && sp->kind >= ARB_SUP_WORKER &&
         sp->kind <= ARB_SUP_SUPERVISOR && valid_backoff(&sp->backoff);
}

/* Notes a caller's time; the clock of calls that take none. */
static int64_t tick(arb_sup_t *s, int64_t now) {
  s->clock = now;
  return now;
}

static int busy(const arb_sup_t *s) { return s->cursor < s->plan.nsteps; }

/* The index entry for key (a child's or a hole), or NULL. */
static slot_t *index_slot(const arb_sup_t *s, uint32_t key) {
  size_t lo = 0, hi = s->index_len;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (s->index[mid].key < key)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < s->index_len && s->index[lo].key == key ? &s->index[lo] : NULL;
}

static child_t *find(const arb_sup_t *s, uint32_t key) {
  const slot_t *slot = key ? index_slot(s, key) : NULL;
  return slot ? slot->c : NULL;
}

static void index_compact(arb_sup_t *s) {
  size_t j = 0;
  for (size_t i = 0; i < s->index_len; i++)
    if (s->index[i].c) s->index[j++] = s->index[i];
  s->index_len = j;
  s->index_holes = 0;
}

/* Makes room for one more index entry.  Returns 0 or ARB_SUP_ENOMEM
** (nothing changed). */
static int index_reserve(arb_sup_t *s) {
  if (s->index_len < s->index_cap) return 0;
  if (s->index_holes > 0) {
    index_compact(s);
    return 0;
  }
  size_t cap = s->index_cap ? s->index_cap * 2 : 8;
  slot_t *index = arb_realloc(s->index, s->index_cap * sizeof(*index),
                              cap * sizeof(*index));
  if (!index) return ARB_SUP_ENOMEM;
  s->index = index;
  s->index_cap = cap;
  return 0;
}

static void info_of(const child_t *c, size_t index, arb_sup_info_t *out) {
  out->key = c->key;
  out->index = index;
  out->restart = c->restart;
  out->kind = c->kind;
  out->status = c->status;
  out->restarts = c->restarts;
  out->user = c->user;
  out->waiting = c->waiting;
  out->due_ms = c->waiting ? c->due_ms : 0;
  out->backoff_ms = c->last_delay;
}

/* Marks c as waiting for a backoff restart or not, keeping the count
** that lets arb_sup_next_due answer without a walk when none waits. */
static void set_waiting(arb_sup_t *s, child_t *c, int on) {
  if (c->waiting == on) return;
  c->waiting = (unsigned char)on;
  if (on)
    s->nwaiting++;
  else
    s->nwaiting--;
}

static void unlink_child(arb_sup_t *s, child_t *c) {
  set_waiting(s, c, 0);
  index_slot(s, c->key)->c = NULL;
  if (++s->index_holes * 2 > s->index_len) index_compact(s);
  s->last_insert = NULL;
  arb_list_remove(&c->node);
  arb_free(c, sizeof(*c));
  s->n--;
}

/* Stores the plan pointer for the caller; always succeeds. */
static int hand_out(arb_sup_t *s, const arb_sup_plan_t **plan) {
  if (plan) *plan = &s->plan;
  return 0;
}

/* Starts an empty plan, replacing (abandoning) the current one. */
static void plan_begin(arb_sup_t *s, int outcome, uint32_t key, int ctx) {
  s->plan.outcome = outcome;
  s->plan.key = key;
  s->plan.strategy = s->flags.strategy;
  s->plan.restarts = 0;
  s->plan.max_restarts = s->flags.max_restarts;
  s->plan.period_ms = s->flags.period_ms;
  s->plan.due_ms = s->plan.delay_ms = 0;
  s->plan.nsteps = 0;
  s->plan.steps = s->steps;
  s->cursor = 0;
  s->ctx = ctx;
}

static void push(arb_sup_t *s, int op, const child_t *c) {
  assert(s->plan.nsteps < s->steps_cap);
  arb_sup_step_t *st = &s->steps[s->plan.nsteps++];
  st->op = op;
  st->key = c->key;
  st->user = c->user;
}

/* Plans a SHUTDOWN of every running child, newest first; the children end
** stopped, and restarting ones become stopped at once. */
static void plan_shutdown_all(arb_sup_t *s) {
  arb_list_t *p;
  for (p = s->children.prev; p != &s->children; p = p->prev) {
    child_t *c = CHILD(p);
    set_waiting(s, c, 0);
    if (c->status == ARB_SUP_RESTARTING) c->status = ARB_SUP_STOPPED;
    if (c->status != ARB_SUP_RUNNING) continue;
    c->after = ARB_SUP_STOPPED;
    push(s, ARB_SUP_SHUTDOWN, c);
  }
}

/* Adds the steps that restart `from` as the strategy says: the set is
** `from` (one_for_one), `from` and every child after it (rest_for_one) or
** every child (one_for_all), whatever its status, as OTP's
** terminate_children/start_children do: a stopped member starts again.
** Running members are shut down newest first; temporary bystanders are
** dropped (after their shutdown if they run); the rest start in order,
** unless `start` is 0 (a backoff wait: they stay restarting, marked
** MARK_START).  A member that starts no longer waits for a backoff. */
static int in_set(int strategy, const child_t *c, const child_t *from,
                  int after_from) {
  return c == from || strategy == ARB_SUP_ONE_FOR_ALL ||
         (strategy == ARB_SUP_REST_FOR_ONE && after_from);
}

static void plan_restart(arb_sup_t *s, child_t *from, int start) {
  int strategy = s->flags.strategy, after_from = 0;
  arb_list_t *p;
  arb_list_each(p, &s->children) {
    child_t *c = CHILD(p);
    int member;
    if (c == from) after_from = 1;
    member = in_set(strategy, c, from, after_from);
    if (!member)
      c->mark = MARK_OUT;
    else if (c != from && c->restart == ARB_SUP_TEMPORARY)
      c->mark = MARK_DROP;
    else
      c->mark = MARK_START;
  }
  for (p = s->children.prev; p != &s->children; p = p->prev) {
    child_t *c = CHILD(p);
    if (c->mark == MARK_OUT) continue;
    if (c->status == ARB_SUP_RUNNING) {
      c->after = c->mark == MARK_DROP ? ARB_SUP_STOPPED : ARB_SUP_RESTARTING;
      push(s, ARB_SUP_SHUTDOWN, c);
    } else if (c->mark == MARK_START) {
      c->status = ARB_SUP_RESTARTING; /* wanted again from now on */
    }
    if (c->mark == MARK_DROP) push(s, ARB_SUP_DROP, c);
  }
  if (!start) return;
  arb_list_each(p, &s->children) {
    child_t *c = CHILD(p);
    if (c->mark != MARK_START) continue;
    set_waiting(s, c, 0);
    push(s, ARB_SUP_START, c);
  }
}

/* Records a restart at now in the window and returns how many count. */
static int record(arb_sup_t *s, int64_t now) {
  while (s->win_len > 0 && now - s->win[s->win_head] > s->flags.period_ms) {
    s->win_head = (s->win_head + 1) % s->win_cap;
    s->win_len--;
  }
  if (s->win_len == s->win_cap) { /* full: over the limit either way */
    s->win_head = (s->win_head + 1) % s->win_cap;
    s->win_len--;
  }
  s->win[(s->win_head + s->win_len) % s->win_cap] = now;
  s->win_len++;
  return (int)s->win_len;
}

/* Child c (now restarting) is to be restarted at now: one intensity event,
** then a RESTART plan or, past the limit, a GIVE_UP plan. */
static void plan_counted_restart(arb_sup_t *s, child_t *c, int64_t now) {
  int count = record(s, now);
  if (count > s->flags.max_restarts) {
    plan_begin(s, ARB_SUP_GIVE_UP, c->key, CTX_NONE);
    plan_shutdown_all(s);
  } else {
    plan_begin(s, ARB_SUP_RESTART, c->key, CTX_RESTART);
    plan_restart(s, c, 1);
  }
  s->plan.restarts = count;
}

/* The delay of c's next backoff wait at now: initial after a run of at
** least reset_after (or one of unknown length), else the doubled one,
** never above max. */
static int64_t next_delay(child_t *c, int64_t now, int after_run) {
  const arb_sup_backoff_t *b = &c->backoff;
  if (after_run && (!c->has_started || now - c->started_ms >= b->reset_after_ms))
    c->next_delay = 0;
  int64_t delay = c->next_delay ? c->next_delay : b->initial_ms;
  if (delay > b->max_ms) delay = b->max_ms;
  c->next_delay = delay > b->max_ms / 2 ? b->max_ms : delay * 2;
  c->last_delay = delay;
  return delay;
}

/* Schedules c's restart (c has a backoff and is restarting) at now:
** plans WAIT, and every member of c's set that restarts with it waits
** with it.  after_run: c's process just ended (else a start failed).
** For an exit, the set's running members are shut down now (their
** SHUTDOWN steps), as a restart would; after a failed start, the members
** already restarting wait (the plan that started the others is over). */
static void plan_wait(arb_sup_t *s, child_t *c, int64_t now, int after_run) {
  int64_t delay = next_delay(c, now, after_run);
  int64_t due = now + delay;
  int after_from = 0;
  arb_list_t *p;
  plan_begin(s, ARB_SUP_WAIT, c->key, CTX_NONE);
  if (after_run) plan_restart(s, c, 0);
  arb_list_each(p, &s->children) {
    child_t *m = CHILD(p);
    if (m == c) after_from = 1;
    int joins = after_run ? m->mark == MARK_START
                          : in_set(s->flags.strategy, m, c, after_from) &&
                                m->status == ARB_SUP_RESTARTING;
    if (!joins) continue;
    set_waiting(s, m, 1);
    m->wait_key = c->key;
    m->due_ms = due;
  }
  s->plan.due_ms = due;
  s->plan.delay_ms = delay;
}

/* }====== */

/* {====== Lifetime and flags */

int arb_sup_new(arb_sup_t **out, const arb_sup_flags_t *flags) {
  if (!out || !valid_flags(flags)) return ARB_SUP_EINVAL;
  arb_sup_t *s = arb_calloc(1, sizeof(*s));
  if (!s) return ARB_SUP_ENOMEM;
  s->win_cap = (size_t)flags->max_restarts + 1;
  s->win = arb_malloc(s->win_cap * sizeof(*s->win));
  if (!s->win) {
    arb_free(s, sizeof(*s));
    return ARB_SUP_ENOMEM;
  }
  arb_list_init(&s->children);
  s->next_key = 1;
  s->flags = *flags;
  plan_begin(s, ARB_SUP_NONE, 0, CTX_NONE);
  *out = s;
  return 0;
}

void arb_sup_free(arb_sup_t *s) {
  if (!s) return;
  while (!arb_list_empty(&s->children))
    unlink_child(s, CHILD(s->children.next));
  arb_free(s->win, s->win_cap * sizeof(*s->win));
  arb_free(s->steps, s->steps_cap * sizeof(*s->steps));
  arb_free(s->index, s->index_cap * sizeof(*s->index));
  arb_free(s, sizeof(*s));
}

int arb_sup_set_flags(arb_sup_t *s, const arb_sup_flags_t *flags) {
  if (!valid_flags(flags)) return ARB_SUP_EINVAL;
  if (busy(s)) return ARB_SUP_EBUSY;
  size_t cap = (size_t)flags->max_restarts + 1;
  if (cap != s->win_cap) {
    int64_t *win = arb_malloc(cap * sizeof(*win));
    if (!win) return ARB_SUP_ENOMEM;
    size_t keep = s->win_len < cap ? s->win_len : cap;
    size_t skip = s->win_len - keep; /* drop the oldest */
    for (size_t i = 0; i < keep; i++)
      win[i] = s->win[(s->win_head + skip + i) % s->win_cap];
    arb_free(s->win, s->win_cap * sizeof(*s->win));
    s->win = win;
    s->win_cap = cap;
    s->win_head = 0;
    s->win_len = keep;
  }
  s->flags = *flags;
  return 0;
}

void arb_sup_get_flags(const arb_sup_t *s, arb_sup_flags_t *out) {
  *out = s->flags;
}

/* }====== */

/* {====== Children: adding, editing, queries */

int arb_sup_insert(arb_sup_t *s, size_t pos, const arb_sup_spec_t *spec,
                   uint32_t *key) {
  if (!valid_spec(spec) || pos > s->n) return ARB_SUP_EINVAL;
  if (busy(s)) return ARB_SUP_EBUSY;
  if (s->next_key == 0) return ARB_SUP_ENOMEM; /* key space used up */
  size_t need = 2 * (s->n + 1);
  if (s->steps_cap < need) {
    size_t cap = s->steps_cap * 2 > need ? s->steps_cap * 2 : need;
    arb_sup_step_t *steps =
        arb_realloc(s->steps, s->steps_cap * sizeof(*steps),
                    cap * sizeof(*steps));
    if (!steps) return ARB_SUP_ENOMEM;
    s->steps = steps;
    s->steps_cap = cap;
    s->plan.steps = steps;
  }
  if (index_reserve(s) != 0) return ARB_SUP_ENOMEM;
  child_t *c = arb_calloc(1, sizeof(*c));
  if (!c) return ARB_SUP_ENOMEM;
  c->key = s->next_key++;
  c->user = spec->user;
  c->restart = (unsigned char)spec->restart;
  c->kind = (unsigned char)spec->kind;
  c->status = c->after = ARB_SUP_STOPPED;
  c->backoff = spec->backoff;
  /* Insert before `at`, the child now at pos.  The walk to it starts at
  ** the nearer end, or at the last child inserted when it is on the way
  ** (a reload inserts its new children in ascending positions). */
  arb_list_t *at = &s->children;
  if (pos < s->n) {
    size_t i = 0;
    at = s->children.next;
    if (s->last_insert && s->last_insert_pos <= pos) {
      at = &s->last_insert->node;
      i = s->last_insert_pos;
    }
    if (s->n - pos < pos - i) {
      at = &s->children;
      for (i = s->n; i > pos; i--) at = at->prev;
    }
    for (; i < pos; i++) at = at->next;
  }
  arb_list_insert_tail(at, &c->node);
  s->index[s->index_len].key = c->key;
  s->index[s->index_len++].c = c;
  s->last_insert = c;
  s->last_insert_pos = pos;
  s->n++;
  if (key) *key = c->key;
  return 0;
}

int arb_sup_add(arb_sup_t *s, const arb_sup_spec_t *spec, uint32_t *key) {
  return arb_sup_insert(s, s->n, spec, key);
}

int arb_sup_update(arb_sup_t *s, uint32_t key, const arb_sup_spec_t *spec) {
  if (!valid_spec(spec)) return ARB_SUP_EINVAL;
  if (busy(s)) return ARB_SUP_EBUSY;
  child_t *c = find(s, key);
  if (!c) return ARB_SUP_ENOTFOUND;
  c->restart = (unsigned char)spec->restart;
  c->kind = (unsigned char)spec->kind;
  c->user = spec->user;
  const arb_sup_backoff_t *b = &spec->backoff;
  if (b->initial_ms != c->backoff.initial_ms || b->max_ms != c->backoff.max_ms ||
      b->reset_after_ms != c->backoff.reset_after_ms) {
    c->backoff = *b;
    c->next_delay = 0;
  }
  return 0;
}

int arb_sup_delete(arb_sup_t *s, uint32_t key) {
  if (busy(s)) return ARB_SUP_EBUSY;
  child_t *c = find(s, key);
  if (!c) return ARB_SUP_ENOTFOUND;
  if (c->status == ARB_SUP_RUNNING) return ARB_SUP_ERUNNING;
  if (c->status == ARB_SUP_RESTARTING) return ARB_SUP_ERESTARTING;
  unlink_child(s, c);
  return 0;
}

int arb_sup_lookup(const arb_sup_t *s, uint32_t key, arb_sup_info_t *out) {
  size_t i = 0;
  arb_list_t *p;
  arb_list_each(p, &s->children) {
    if (CHILD(p)->key == key) {
      if (out) info_of(CHILD(p), i, out);
      return 0;
    }
    i++;
  }
  return ARB_SUP_ENOTFOUND;
}

uint32_t arb_sup_key_at(const arb_sup_t *s, size_t index) {
  arb_list_t *p;
  arb_list_each(p, &s->children) {
    if (index-- == 0) return CHILD(p)->key;
  }
  return 0;
}

size_t arb_sup_which_children(const arb_sup_t *s, arb_sup_info_t *out,
                              size_t cap) {
  size_t i = 0;
  arb_list_t *p;
  arb_list_each(p, &s->children) {
    if (i < cap) info_of(CHILD(p), i, &out[i]);
    i++;
  }
  return i;
}

void arb_sup_count_children(const arb_sup_t *s, arb_sup_counts_t *out) {
  arb_list_t *p;
  out->specs = out->active = out->workers = out->supervisors = 0;
  arb_list_each(p, &s->children) {
    const child_t *c = CHILD(p);
    out->specs++;
    if (c->status == ARB_SUP_RUNNING) out->active++;
    if (c->kind == ARB_SUP_SUPERVISOR)
      out->supervisors++;
    else
      out->workers++;
  }
}

int arb_sup_check(const arb_sup_t *s) {
#define CHECK(cond)                       \
  do {                                    \
    if (!(cond)) return ARB_SUP_ECORRUPT; \
  } while (0)
  CHECK(s && valid_flags(&s->flags));
  CHECK(s->win && s->win_cap == (size_t)s->flags.max_restarts + 1);
  CHECK(s->win_head < s->win_cap && s->win_len <= s->win_cap);
  for (size_t i = 1; i < s->win_len; i++)
    CHECK(s->win[(s->win_head + i - 1) % s->win_cap] <=
          s->win[(s->win_head + i) % s->win_cap]);
  size_t n = 0, nwaiting = 0;
  const arb_list_t *p, *q;
  arb_list_each(p, &s->children) {
    const child_t *c = CHILD(p);
    CHECK(p->next->prev == p && p->prev->next == p);
    CHECK(c->key != 0 && (s->next_key == 0 || c->key < s->next_key));
    CHECK(c->restart <= ARB_SUP_TEMPORARY && c->kind <= ARB_SUP_SUPERVISOR);
    CHECK(c->status <= ARB_SUP_STOPPED && c->after <= ARB_SUP_STOPPED);
    CHECK(valid_backoff(&c->backoff));
    CHECK(!c->waiting || c->status != ARB_SUP_STOPPED);
    nwaiting += c->waiting;
    CHECK(c->next_delay >= 0 && c->next_delay <= c->backoff.max_ms);
    for (q = p->next; q != &s->children; q = q->next)
      CHECK(CHILD(q)->key != c->key);
    CHECK(find(s, c->key) == c);
    n++;
  }
  CHECK(n == s->n && s->steps_cap >= 2 * s->n && nwaiting == s->nwaiting);
  CHECK(s->index_len <= s->index_cap && s->index_len - s->index_holes == n);
  for (size_t i = 0; i < s->index_len; i++)
    CHECK(i == 0 || s->index[i - 1].key < s->index[i].key);
  CHECK(s->ctx >= CTX_NONE && s->ctx <= CTX_RESTART);
  CHECK(s->plan.nsteps <= s->steps_cap && s->cursor <= s->plan.nsteps);
  CHECK(s->plan.nsteps == 0 || s->plan.steps == s->steps);
  for (size_t i = s->cursor; i < s->plan.nsteps; i++) {
    const arb_sup_step_t *st = &s->steps[i];
    const child_t *c = find(s, st->key);
    CHECK(c && st->op >= ARB_SUP_SHUTDOWN && st->op <= ARB_SUP_DROP);
    if (i == s->cursor)
      CHECK((st->op == ARB_SUP_SHUTDOWN) == (c->status == ARB_SUP_RUNNING));
  }
  return 0;
#undef CHECK
}

const char *arb_sup_strerror(int err) {
  return err == ARB_SUP_ENOTFOUND ? "no such child" : arb_strerror(err);
}

const char *arb_sup_err_name(int err) { return arb_err_name(err); }

/* }====== */

/* {====== Events that make plans */

int arb_sup_start(arb_sup_t *s, const arb_sup_plan_t **plan) {
  arb_list_t *p;
  if (busy(s)) return ARB_SUP_EBUSY;
  arb_list_each(p, &s->children) {
    if (CHILD(p)->status == ARB_SUP_RUNNING) return ARB_SUP_ERUNNING;
    if (CHILD(p)->status == ARB_SUP_RESTARTING) return ARB_SUP_ERESTARTING;
  }
  plan_begin(s, ARB_SUP_NONE, 0, CTX_INIT);
  arb_list_each(p, &s->children) push(s, ARB_SUP_START, CHILD(p));
  return hand_out(s, plan);
}

int arb_sup_exit(arb_sup_t *s, uint32_t key, int cls, int64_t now_ms,
                 const arb_sup_plan_t **plan) {
  if (busy(s)) return ARB_SUP_EBUSY;
  if (cls < ARB_EXIT_NORMAL || cls > ARB_EXIT_ABNORMAL) return ARB_SUP_EINVAL;
  child_t *c = find(s, key);
  if (!c) return ARB_SUP_ENOTFOUND;
  if (c->status == ARB_SUP_RESTARTING) return ARB_SUP_ERESTARTING;
  if (c->status == ARB_SUP_STOPPED) return ARB_SUP_ESTOPPED;
  tick(s, now_ms);
  int restart = c->restart == ARB_SUP_PERMANENT ||
                (c->restart == ARB_SUP_TRANSIENT && cls == ARB_EXIT_ABNORMAL);
  if (!restart) {
    c->status = ARB_SUP_STOPPED;
    plan_begin(s, ARB_SUP_NONE, key, CTX_NONE);
    if (c->restart == ARB_SUP_TEMPORARY) push(s, ARB_SUP_DROP, c);
    return hand_out(s, plan);
  }
  c->status = ARB_SUP_RESTARTING;
  if (c->backoff.initial_ms > 0)
    plan_wait(s, c, now_ms, 1);
  else
    plan_counted_restart(s, c, now_ms);
  return hand_out(s, plan);
}

int arb_sup_retry(arb_sup_t *s, uint32_t key, int64_t now_ms,
                  const arb_sup_plan_t **plan) {
  if (busy(s)) return ARB_SUP_EBUSY;
  tick(s, now_ms);
  child_t *c = find(s, key);
  if (!c || c->status != ARB_SUP_RESTARTING || c->waiting)
    plan_begin(s, ARB_SUP_NONE, key, CTX_NONE);
  else
    plan_counted_restart(s, c, now_ms);
  return hand_out(s, plan);
}

/* The waiting child whose restart is due first (ties: start order). */
static child_t *first_due(const arb_sup_t *s) {
  child_t *first = NULL;
  if (s->nwaiting == 0) return NULL; /* (every supervisor loop asks) */
  const arb_list_t *p;
  arb_list_each(p, &s->children) {
    child_t *c = CHILD(p);
    if (c->waiting && (!first || c->due_ms < first->due_ms)) first = c;
  }
  return first;
}

int arb_sup_next_due(const arb_sup_t *s, int64_t *due_ms) {
  const child_t *c = first_due(s);
  if (!c) return 0;
  if (due_ms) *due_ms = c->due_ms;
  return 1;
}

int arb_sup_due(arb_sup_t *s, int64_t now_ms, const arb_sup_plan_t **plan) {
  if (busy(s)) return ARB_SUP_EBUSY;
  tick(s, now_ms);
  child_t *c = first_due(s);
  if (!c || c->due_ms > now_ms) {
    plan_begin(s, ARB_SUP_NONE, 0, CTX_NONE);
    return hand_out(s, plan);
  }
  /* The group restarts as the child that scheduled it would, or, if that
  ** one was terminated meanwhile, as its first member in start order. */
  uint32_t group = c->wait_key;
  child_t *owner = find(s, group);
  if (owner && owner->waiting && owner->wait_key == group) {
    c = owner;
  } else {
    arb_list_t *p;
    arb_list_each(p, &s->children) {
      if (CHILD(p)->waiting && CHILD(p)->wait_key == group) {
        c = CHILD(p);
        break;
      }
    }
  }
  /* Members the strategy's set no longer covers (its flags changed) are
  ** still waiting and come due on the next call. */
  set_waiting(s, c, 0);
  plan_counted_restart(s, c, now_ms);
  return hand_out(s, plan);
}

/* Plans c's stop: a SHUTDOWN if it runs (stopped once reported), else
** just stopped, which also ends a restart loop or a backoff wait. */
static void push_stop(arb_sup_t *s, child_t *c) {
  set_waiting(s, c, 0);
  if (c->status == ARB_SUP_RUNNING) {
    c->after = ARB_SUP_STOPPED;
    push(s, ARB_SUP_SHUTDOWN, c);
  } else {
    c->status = ARB_SUP_STOPPED;
  }
}

int arb_sup_terminate_child(arb_sup_t *s, uint32_t key,
                            const arb_sup_plan_t **plan) {
  if (busy(s)) return ARB_SUP_EBUSY;
  child_t *c = find(s, key);
  if (!c) return ARB_SUP_ENOTFOUND;
  plan_begin(s, ARB_SUP_NONE, key, CTX_NONE);
  push_stop(s, c);
  if (c->restart == ARB_SUP_TEMPORARY) push(s, ARB_SUP_DROP, c);
  return hand_out(s, plan);
}

int arb_sup_restart_child(arb_sup_t *s, uint32_t key,
                          const arb_sup_plan_t **plan) {
  if (busy(s)) return ARB_SUP_EBUSY;
  child_t *c = find(s, key);
  if (!c) return ARB_SUP_ENOTFOUND;
  if (c->status == ARB_SUP_RUNNING) return ARB_SUP_ERUNNING;
  if (c->status == ARB_SUP_RESTARTING) return ARB_SUP_ERESTARTING;
  plan_begin(s, ARB_SUP_NONE, key, CTX_MANUAL);
  push(s, ARB_SUP_START, c);
  return hand_out(s, plan);
}

int arb_sup_remove(arb_sup_t *s, uint32_t key, const arb_sup_plan_t **plan) {
  if (busy(s)) return ARB_SUP_EBUSY;
  child_t *c = find(s, key);
  if (!c) return ARB_SUP_ENOTFOUND;
  plan_begin(s, ARB_SUP_NONE, key, CTX_NONE);
  push_stop(s, c);
  push(s, ARB_SUP_DROP, c);
  return hand_out(s, plan);
}

int arb_sup_changed(arb_sup_t *s, uint32_t key,
                    const arb_sup_plan_t **plan) {
  if (busy(s)) return ARB_SUP_EBUSY;
  child_t *c = find(s, key);
  if (!c) return ARB_SUP_ENOTFOUND;
  if (c->status != ARB_SUP_RUNNING) {
    plan_begin(s, ARB_SUP_NONE, key, CTX_NONE);
  } else {
    plan_begin(s, ARB_SUP_RESTART, key, CTX_RESTART);
    plan_restart(s, c, 1);
  }
  return hand_out(s, plan);
}

int arb_sup_stop(arb_sup_t *s, const arb_sup_plan_t **plan) {
  plan_begin(s, ARB_SUP_NONE, 0, CTX_NONE);
  plan_shutdown_all(s);
  return hand_out(s, plan);
}

/* }====== */

/* {====== Reports from the executor */

int arb_sup_step_done(arb_sup_t *s, uint32_t key) {
  return arb_sup_step_done_at(s, key, INT64_MIN);
}

int arb_sup_step_done_at(arb_sup_t *s, uint32_t key, int64_t now_ms) {
  if (!busy(s) || s->steps[s->cursor].key != key) return ARB_SUP_ESTEP;
  child_t *c = find(s, key);
  assert(c != NULL);
  switch (s->steps[s->cursor].op) {
    case ARB_SUP_SHUTDOWN:
      c->status = c->after;
      break;
    case ARB_SUP_START:
      c->status = ARB_SUP_RUNNING;
      c->has_started = now_ms != INT64_MIN;
      if (c->has_started) c->started_ms = tick(s, now_ms);
      if (s->ctx == CTX_RESTART) c->restarts++;
      break;
    default:
      unlink_child(s, c);
      break;
  }
  s->cursor++;
  return 0;
}

int arb_sup_start_failed(arb_sup_t *s, uint32_t key,
                         const arb_sup_plan_t **plan) {
  return arb_sup_start_failed_at(s, key, s->clock, plan);
}

int arb_sup_start_failed_at(arb_sup_t *s, uint32_t key, int64_t now_ms,
                            const arb_sup_plan_t **plan) {
  if (!busy(s) || s->steps[s->cursor].key != key ||
      s->steps[s->cursor].op != ARB_SUP_START)
    return ARB_SUP_ESTEP;
  child_t *c = find(s, key);
  assert(c != NULL);
  if (s->ctx == CTX_RESTART) {
    c->status = ARB_SUP_RESTARTING;
    if (c->backoff.initial_ms > 0)
      plan_wait(s, c, tick(s, now_ms), 0);
    else
      plan_begin(s, ARB_SUP_RETRY, key, CTX_NONE);
  } else {
    c->status = ARB_SUP_STOPPED;
    int init = s->ctx == CTX_INIT;
    plan_begin(s, ARB_SUP_FAIL, key, CTX_NONE);
    if (init) plan_shutdown_all(s);
  }
  return hand_out(s, plan);
}

/* }====== */

/* {====== Reading the current plan */

int arb_sup_next_step(const arb_sup_t *s, arb_sup_step_t *out) {
  if (!busy(s)) return 0;
  if (out) *out = s->steps[s->cursor];
  return 1;
}

const arb_sup_plan_t *arb_sup_current_plan(const arb_sup_t *s) {
  return &s->plan;
}

/* }====== */

