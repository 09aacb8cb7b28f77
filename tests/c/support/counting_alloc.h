/*
** counting_alloc.h: a counting, optionally failing allocator for
** arb_alloc_set, for tests (header-only).
**
** It keeps live allocation and byte counts and checks the size the core
** passes back on every free or resize against the size it allocated (a
** small header in front of each block remembers it), so an accounting
** slip in the core shows up as size_mismatches != 0.  In "fail after N"
** mode the next N requests that need more memory succeed and every later
** one fails (returns NULL) until counting_alloc_fail_after(ca, -1);
** frees and shrinking resizes never fail, as with Lua's test allocator.
**
** Usage: counting_alloc_install(&ca) in a fixture's setup, while the core
** holds no memory; counting_alloc_uninstall() in teardown once everything
** is freed, then assert counting_alloc_clean(&ca).
*/
#ifndef ARB_TESTS_COUNTING_ALLOC_H
#define ARB_TESTS_COUNTING_ALLOC_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"

typedef struct counting_alloc_s {
  size_t live_allocs;    /* blocks currently allocated */
  size_t live_bytes;     /* bytes currently allocated (sizes as requested) */
  size_t peak_bytes;     /* highest live_bytes seen */
  size_t total_allocs;   /* requests that needed memory and got it */
  size_t failures;       /* requests refused in fail-after mode */
  size_t size_mismatches; /* frees/resizes that passed the wrong old size */
  long fail_after;       /* -1: never fail; else successes left */
  size_t baseline_in_use; /* arb_alloc_in_use() at install */
} counting_alloc_t;

/* Stored in front of every block; max_align_t keeps the user part aligned. */
typedef union counting_alloc_hdr_u {
  max_align_t align;
  size_t size;
} counting_alloc_hdr_t;

/* Returns nonzero if the next request that needs memory may succeed, and
** consumes one success in fail-after mode. */
static inline int counting_alloc_may_grow(counting_alloc_t *ca) {
  if (ca->fail_after < 0) return 1;
  if (ca->fail_after == 0) {
    ca->failures++;
    return 0;
  }
  ca->fail_after--;
  return 1;
}

/* The arb_alloc_fn. */
static inline void *counting_alloc_fn(void *ud, void *ptr, size_t old_size,
                                      size_t new_size) {
  counting_alloc_t *ca = (counting_alloc_t *)ud;
  counting_alloc_hdr_t *h = NULL;
  if (ptr != NULL) {
    h = (counting_alloc_hdr_t *)ptr - 1;
    if (h->size != old_size) ca->size_mismatches++;
  }
  if (new_size == 0) { /* free */
    if (h == NULL) return NULL;
    ca->live_allocs--;
    ca->live_bytes -= h->size;
    free(h);
    return NULL;
  }
  int grows = (h == NULL) || new_size > h->size;
  if (grows && !counting_alloc_may_grow(ca)) return NULL;
  counting_alloc_hdr_t *nh = realloc(h, sizeof(*nh) + new_size);
  if (nh == NULL) return NULL;
  if (h == NULL) {
    ca->live_allocs++;
  } else {
    ca->live_bytes -= nh->size; /* realloc kept the old header */
  }
  if (grows) ca->total_allocs++;
  nh->size = new_size;
  ca->live_bytes += new_size;
  if (ca->live_bytes > ca->peak_bytes) ca->peak_bytes = ca->live_bytes;
  return nh + 1;
}

/* Zeroes the counters and makes ca the core's allocator. */
static inline void counting_alloc_install(counting_alloc_t *ca) {
  memset(ca, 0, sizeof(*ca));
  ca->fail_after = -1;
  ca->baseline_in_use = arb_alloc_in_use();
  arb_alloc_set(counting_alloc_fn, ca);
}

/* Restores the libc allocator. */
static inline void counting_alloc_uninstall(void) { arb_alloc_set(NULL, NULL); }

/* Lets n more requests that need memory succeed, then fails every later
** one; n < 0 turns failing off. */
static inline void counting_alloc_fail_after(counting_alloc_t *ca, long n) {
  ca->fail_after = n;
}

/* Nonzero when nothing is allocated, every free passed the right size and
** the core's own accounting (arb_alloc_in_use) is back where it started. */
static inline int counting_alloc_clean(const counting_alloc_t *ca) {
  return ca->live_allocs == 0 && ca->live_bytes == 0 &&
         ca->size_mismatches == 0 && arb_alloc_in_use() == ca->baseline_in_use;
}

#endif
