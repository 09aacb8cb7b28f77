/*
** alloc.h: the core's allocator.
**
** Every allocation in host/core goes through arb_malloc/arb_realloc/
** arb_free so that tests can swap in a counting or failing allocator
** (arb_alloc_set) and so that the host can print how much C memory the
** core holds (arb_alloc_in_use).  Out-of-memory is reported by a NULL
** return, never by aborting: callers turn it into ARB_ENOMEM.
**
** Depends on libc only.
*/
#ifndef ARB_CORE_ALLOC_H
#define ARB_CORE_ALLOC_H

#include <stddef.h>

/* A realloc-shaped function: size 0 frees and returns NULL. */
typedef void *(*arb_alloc_fn)(void *ud, void *ptr, size_t old_size,
                              size_t new_size);

/* Replaces the allocator (NULL restores the libc one).  Only call this
** while the core holds no memory, e.g. at the start of a test. */
void arb_alloc_set(arb_alloc_fn fn, void *ud);

/* Allocate, resize and free.  Sizes must be passed back exactly as they
** were allocated so the accounting stays exact.  Return NULL on failure. */
void *arb_malloc(size_t size);
void *arb_calloc(size_t count, size_t size);
void *arb_realloc(void *ptr, size_t old_size, size_t new_size);
void arb_free(void *ptr, size_t size);

/* Bytes currently allocated through this module. */
size_t arb_alloc_in_use(void);

#endif
