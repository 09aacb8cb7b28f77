/*
** payload.h: byte payloads, a message kind that carries a C-owned buffer.
**
** A message payload is an opaque intptr_t whose meaning belongs to the
** embedder (the Lua binding tags its own: inline integers and booleans,
** references to Lua values).  One tag is reserved here, low bits 11, for
** a buffer of bytes the core allocates: code with no Lua in it (rt's
** sockets, files, ports, the distribution link) can hand a socket's
** bytes or a port's line to a subject with arb_subject_send, and the
** binding makes one Lua string of it when the message is received.
**
** Ownership: arb_bytes_new's result belongs to whoever holds the payload;
** arb_subject_send consumes it (the node's free_payload callback, which
** the embedder routes to arb_bytes_free for this tag, frees one dropped
** undelivered).  Embedders must keep the low bits 11 free in their own
** payloads.
**
** Depends on libc and alloc.h only.
*/
#ifndef ARB_CORE_PAYLOAD_H
#define ARB_CORE_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#define ARB_PAYLOAD_TAG_MASK ((intptr_t)3)
#define ARB_PAYLOAD_TAG_BYTES ((intptr_t)3)

/* Returns a byte payload holding a copy of the len bytes at data (data may
** be NULL when len is 0), or 0 when out of memory. */
intptr_t arb_bytes_new(const void *data, size_t len);

/* True if payload is a byte payload. */
static inline int arb_payload_is_bytes(intptr_t payload) {
  return (payload & ARB_PAYLOAD_TAG_MASK) == ARB_PAYLOAD_TAG_BYTES;
}

/* The bytes of a byte payload and their count (followed by a NUL byte, not
** counted); valid until the payload is freed. */
const char *arb_bytes_data(intptr_t payload, size_t *len);

/* Frees a byte payload. */
void arb_bytes_free(intptr_t payload);

#endif
