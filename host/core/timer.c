/*
** timer.c: slot table plus binary min-heap of timers.
**
** The heap stores slot indices; each slot remembers its heap position so
** cancel is O(log n) without a search.  Slots are recycled through a free
** list and their generation bumped, which is what makes stale ids safe.
*/
#include "timer.h"

#include <string.h>

#include "alloc.h"

#define NO_SLOT UINT32_MAX

void arb_timers_init(arb_timers_t *t) {
  t->slots = NULL;
  t->nslots = t->cap = 0;
  t->free_head = NO_SLOT;
  t->heap = NULL;
  t->nheap = 0;
  t->seq = 0;
}

void arb_timers_close(arb_timers_t *t) {
  arb_free(t->slots, t->cap * sizeof(*t->slots));
  arb_free(t->heap, t->cap * sizeof(*t->heap));
  arb_timers_init(t);
}

static int before(const arb_timers_t *t, uint32_t a, uint32_t b) {
  const arb_timer_t *x = &t->slots[a], *y = &t->slots[b];
  if (x->deadline != y->deadline) return x->deadline < y->deadline;
  return x->seq < y->seq;
}

static void place(arb_timers_t *t, uint32_t pos, uint32_t slot) {
  t->heap[pos] = slot;
  t->slots[slot].heap_index = pos;
}

static void sift_up(arb_timers_t *t, uint32_t pos) {
  uint32_t slot = t->heap[pos];
  while (pos > 0) {
    uint32_t parent = (pos - 1) / 2;
    if (!before(t, slot, t->heap[parent])) break;
    place(t, pos, t->heap[parent]);
    pos = parent;
  }
  place(t, pos, slot);
}

static void sift_down(arb_timers_t *t, uint32_t pos) {
  uint32_t slot = t->heap[pos];
  for (;;) {
    uint32_t child = 2 * pos + 1;
    if (child >= t->nheap) break;
    if (child + 1 < t->nheap && before(t, t->heap[child + 1], t->heap[child]))
      child++;
    if (!before(t, t->heap[child], slot)) break;
    place(t, pos, t->heap[child]);
    pos = child;
  }
  place(t, pos, slot);
}

/* Grows both tables or neither, so sizes stay exact after a failure. */
static int grow(arb_timers_t *t) {
  uint32_t ncap = t->cap ? t->cap * 2 : 64;
  arb_timer_t *slots = arb_malloc(ncap * sizeof(*slots));
  uint32_t *heap = arb_malloc(ncap * sizeof(*heap));
  if (slots == NULL || heap == NULL) {
    arb_free(slots, ncap * sizeof(*slots));
    arb_free(heap, ncap * sizeof(*heap));
    return ARB_ENOMEM;
  }
  if (t->cap) {
    memcpy(slots, t->slots, t->cap * sizeof(*slots));
    memcpy(heap, t->heap, t->cap * sizeof(*heap));
  }
  arb_free(t->slots, t->cap * sizeof(*t->slots));
  arb_free(t->heap, t->cap * sizeof(*t->heap));
  t->slots = slots;
  t->heap = heap;
  t->cap = ncap;
  return 0;
}

static arb_timer_id_t id_of(const arb_timers_t *t, uint32_t slot) {
  return ((uint64_t)t->slots[slot].gen << 32) | slot;
}

arb_timer_id_t arb_timers_start(arb_timers_t *t, int64_t now, int64_t delay,
                                int kind, arb_pid_t pid, intptr_t payload) {
  uint32_t slot;
  if (t->free_head != NO_SLOT) {
    slot = t->free_head;
    t->free_head = t->slots[slot].next_free;
  } else {
    if (t->nslots == t->cap && grow(t) != 0) return 0;
    slot = t->nslots++;
    t->slots[slot].gen = 1;
  }
  arb_timer_t *tm = &t->slots[slot];
  if (delay < 0) delay = 0;
  /* Saturate: a huge timeout means "never", not a wrap into the past. */
  tm->deadline = delay > INT64_MAX - now ? INT64_MAX : now + delay;
  tm->seq = t->seq++;
  tm->pending = 1;
  tm->kind = (uint8_t)kind;
  tm->pid = pid;
  tm->payload = payload;
  tm->next_free = NO_SLOT;
  place(t, t->nheap++, slot);
  sift_up(t, tm->heap_index);
  return id_of(t, slot);
}

static arb_timer_t *lookup(const arb_timers_t *t, arb_timer_id_t id) {
  uint32_t slot = (uint32_t)(id & 0xffffffffu);
  if (id == 0 || slot >= t->nslots) return NULL;
  arb_timer_t *tm = &t->slots[slot];
  if (!tm->pending || tm->gen != (uint32_t)(id >> 32)) return NULL;
  return tm;
}

const arb_timer_t *arb_timers_get(const arb_timers_t *t, arb_timer_id_t id) {
  return lookup(t, id);
}

/* Takes slot out of the heap and recycles it. */
static void release(arb_timers_t *t, uint32_t slot) {
  arb_timer_t *tm = &t->slots[slot];
  uint32_t pos = tm->heap_index;
  uint32_t last = t->heap[--t->nheap];
  if (pos < t->nheap) {
    place(t, pos, last);
    sift_down(t, pos);
    sift_up(t, t->slots[last].heap_index);
  }
  tm->pending = 0;
  tm->gen++;
  if (tm->gen == 0) tm->gen = 1;
  tm->next_free = t->free_head;
  t->free_head = slot;
}

int arb_timers_cancel(arb_timers_t *t, arb_timer_id_t id, int64_t now,
                      int64_t *left, arb_timer_t *out) {
  arb_timer_t *tm = lookup(t, id);
  if (tm == NULL) return ARB_ENOTFOUND;
  if (left) *left = tm->deadline > now ? tm->deadline - now : 0;
  if (out) *out = *tm;
  release(t, (uint32_t)(id & 0xffffffffu));
  return 0;
}

int64_t arb_timers_next(const arb_timers_t *t) {
  return t->nheap ? t->slots[t->heap[0]].deadline : -1;
}

arb_timer_id_t arb_timers_pop_expired(arb_timers_t *t, int64_t now,
                                      arb_timer_t *out) {
  if (t->nheap == 0) return 0;
  uint32_t slot = t->heap[0];
  if (t->slots[slot].deadline > now) return 0;
  arb_timer_id_t id = id_of(t, slot);
  if (out) *out = t->slots[slot];
  release(t, slot);
  return id;
}

uint32_t arb_timers_pending(const arb_timers_t *t) { return t->nheap; }

int arb_timers_check(const arb_timers_t *t) {
  for (uint32_t i = 0; i < t->nheap; i++) {
    uint32_t slot = t->heap[i];
    if (slot >= t->nslots || !t->slots[slot].pending) return -1;
    if (t->slots[slot].heap_index != i) return -1;
    if (i > 0 && before(t, slot, t->heap[(i - 1) / 2])) return -1;
  }
  return 0;
}
