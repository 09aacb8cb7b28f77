/*
** list.h: an intrusive, circular, doubly-linked list (after libuv's
** queue.h).  The node lives inside the object; arb_container_of recovers
** the object.  Nothing here allocates.  An empty list is a head that
** points at itself; a node that is in no list should be arb_list_init'ed
** so arb_list_remove on it is harmless.
*/
#ifndef ARB_CORE_LIST_H
#define ARB_CORE_LIST_H

#include <stddef.h>

typedef struct arb_list_s {
  struct arb_list_s *prev;
  struct arb_list_s *next;
} arb_list_t;

#define arb_container_of(ptr, type, field) \
  ((type *)((char *)(ptr) - offsetof(type, field)))

#define arb_list_each(pos, head) \
  for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)

static inline void arb_list_init(arb_list_t *h) { h->prev = h->next = h; }

static inline int arb_list_empty(const arb_list_t *h) { return h->next == h; }

static inline void arb_list_insert_tail(arb_list_t *h, arb_list_t *n) {
  n->next = h;
  n->prev = h->prev;
  h->prev->next = n;
  h->prev = n;
}

static inline void arb_list_insert_head(arb_list_t *h, arb_list_t *n) {
  n->prev = h;
  n->next = h->next;
  h->next->prev = n;
  h->next = n;
}

/* Unlinks n and leaves it self-linked, so removing twice is safe. */
static inline void arb_list_remove(arb_list_t *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  n->prev = n->next = n;
}

#endif
