/*
** payload.c: byte payloads (payload.h).  One allocation per payload: the
** length, then the bytes and a NUL; the pointer's low bits (zero, from an
** allocator aligned to at least 4) carry the tag.
*/
#include "payload.h"

#include <string.h>

#include "alloc.h"

typedef struct bytes_s {
  size_t len;
  char data[];
} bytes_t;

static bytes_t *bytes_of(intptr_t payload) {
  return (bytes_t *)(payload & ~ARB_PAYLOAD_TAG_MASK);
}

intptr_t arb_bytes_new(const void *data, size_t len) {
  if (len > SIZE_MAX - sizeof(bytes_t) - 1) return 0;
  bytes_t *b = arb_malloc(sizeof(bytes_t) + len + 1);
  if (b == NULL) return 0;
  b->len = len;
  if (len) memcpy(b->data, data, len);
  b->data[len] = '\0';
  return (intptr_t)b | ARB_PAYLOAD_TAG_BYTES;
}

const char *arb_bytes_data(intptr_t payload, size_t *len) {
  bytes_t *b = bytes_of(payload);
  if (len) *len = b->len;
  return b->data;
}

void arb_bytes_free(intptr_t payload) {
  bytes_t *b = bytes_of(payload);
  arb_free(b, sizeof(bytes_t) + b->len + 1);
}
