/*
** udp.h: UDP sockets on the host's loop, for processes that wait on
** them without blocking the host.
**
** A UDP socket (arb_udp_t) belongs to one process, tied to it by an exit
** hook: when the owner ends, the handle closes.  It reads only while its
** owner waits in receive; datagrams that arrive together are kept in a
** short queue (at most ARB_UDP_QUEUE_MAX; beyond that they are dropped,
** as the network itself may drop them).  Sending copies the datagram and
** returns at once.
**
** Lifetime: reference-counted like net.h's sockets (the Lua handle and
** the open libuv handle each hold one).  Knows libuv and the core; never
** Lua.
*/
#ifndef ARB_RT_UDP_H
#define ARB_RT_UDP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node.h"

#define ARB_UDP_QUEUE_MAX 64

typedef struct arb_dgram_s {
  struct arb_dgram_s *next;
  struct sockaddr_storage from;
  size_t len;
  char data[];
} arb_dgram_t;

typedef struct arb_udp_s {
  uv_udp_t handle;
  arb_exit_hook_t hook;
  arb_node_t *node;
  arb_pid_t owner;
  arb_pid_t waiter; /* the owner, while it waits in receive */
  arb_dgram_t *head, *tail;
  int queued;
  int err; /* sticky receive error */
  int refs;
  uint8_t hooked, handle_open, closing, reading;
} arb_udp_t;

/* A UDP socket owned by p, bound to host:port (numeric); NULL with *err
** set on failure. */
arb_udp_t *arb_udp_new(uv_loop_t *loop, arb_node_t *node, arb_proc_t *p,
                       const char *host, int port, int *err);

/* Closes the handle (idempotent); the waiter is woken. */
void arb_udp_close(arb_udp_t *u);

/* The Lua handle lets go: closes and drops its reference. */
void arb_udp_release(arb_udp_t *u);

/* Takes the oldest queued datagram (the caller frees it), or NULL. */
arb_dgram_t *arb_udp_take(arb_udp_t *u);

/* The owner waits for a datagram (reading starts), or stops waiting. */
void arb_udp_want(arb_udp_t *u, arb_pid_t waiter);
void arb_udp_unwant(arb_udp_t *u);

/* Sends a copy of data to host:port (numeric; UV_EINVAL for a name).  0
** or an error. */
int arb_udp_send(arb_udp_t *u, const char *host, int port, const char *data,
                 size_t len);

/* A datagram waiting for its destination's name to resolve
** (uv_getaddrinfo, on the thread pool): the sender waits, not the host.
** Reference-counted: the sender's handle and the lookup each hold one,
** so a sender that dies meanwhile leaves nothing behind. */
typedef struct arb_udp_lookup_s {
  uv_getaddrinfo_t gai;
  arb_list_t pending; /* in the list of lookups in flight */
  arb_udp_t *u; /* holds a reference to u until the lookup ends */
  arb_node_t *node;
  arb_pid_t waiter;
  int refs;
  int port;
  int status; /* 1 while resolving; then 0 (sent) or an error */
  size_t len;
  char data[];
} arb_udp_lookup_t;

/* Resolves host (a name), then sends a copy of data to its first address
** of the socket's family and wakes waiter.  NULL with *err set if the
** lookup could not start. */
arb_udp_lookup_t *arb_udp_send_named(arb_udp_t *u, const char *host, int port,
                                     const char *data, size_t len,
                                     arb_pid_t waiter, int *err);

/* The sender lets go of its lookup (done or not). */
void arb_udp_lookup_release(arb_udp_lookup_t *r);

/* The node is going away: lookups still in flight will wake nobody.
** Call at the host's end, before the node is freed. */
void arb_udp_forget_lookups(void);

/* The bound address: numeric host and port.  0 or an error. */
int arb_udp_name(arb_udp_t *u, char *host, size_t hostlen, int *port);

/* A datagram's sender as a numeric host and a port. */
void arb_udp_from(const arb_dgram_t *d, char *host, size_t hostlen, int *port);

#endif
