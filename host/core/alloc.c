/*
** alloc.c: the core's allocator, with exact byte accounting.
**
** The accounting is a single counter updated on every call, which is why
** arb_free and arb_realloc take the old size: the core always knows the
** size of what it frees, and libc's malloc_usable_size is not portable.
*/
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static void *libc_alloc(void *ud, void *ptr, size_t old_size,
                        size_t new_size) {
  (void)ud;
  (void)old_size;
  if (new_size == 0) {
    free(ptr);
    return NULL;
  }
  return realloc(ptr, new_size);
}

static arb_alloc_fn alloc_fn = libc_alloc;
static void *alloc_ud = NULL;
static size_t in_use = 0;

void arb_alloc_set(arb_alloc_fn fn, void *ud) {
  alloc_fn = fn ? fn : libc_alloc;
  alloc_ud = fn ? ud : NULL;
}

void *arb_malloc(size_t size) {
  if (size == 0) size = 1;
  void *p = alloc_fn(alloc_ud, NULL, 0, size);
  if (p) in_use += size;
  return p;
}

void *arb_calloc(size_t count, size_t size) {
  if (size && count > (size_t)-1 / size) return NULL;
  void *p = arb_malloc(count * size);
  if (p) memset(p, 0, (count * size) != 0 ? count * size : 1);
  return p;
}

void *arb_realloc(void *ptr, size_t old_size, size_t new_size) {
  if (ptr == NULL) return arb_malloc(new_size);
  if (new_size == 0) new_size = 1;
  if (old_size == 0) old_size = 1;
  void *p = alloc_fn(alloc_ud, ptr, old_size, new_size);
  if (p) in_use = in_use - old_size + new_size;
  return p;
}

void arb_free(void *ptr, size_t size) {
  if (ptr == NULL) return;
  if (size == 0) size = 1;
  alloc_fn(alloc_ud, ptr, size, 0);
  in_use -= size;
}

size_t arb_alloc_in_use(void) { return in_use; }
