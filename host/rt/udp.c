/*
** udp.c: UDP sockets on the loop (see udp.h).  Loop thread only.
*/
#include "udp.h"

#include <stdlib.h>
#include <string.h>

static void wake(arb_node_t *node, arb_pid_t pid) {
  if (node == NULL || pid == ARB_PID_NONE) return;
  arb_proc_t *p = arb_node_lookup(node, pid);
  if (p) arb_node_wake(node, p); /* only a waiting one wakes */
}

static void unref(arb_udp_t *u) {
  if (--u->refs > 0) return;
  while (u->head) {
    arb_dgram_t *d = u->head;
    u->head = d->next;
    free(d);
  }
  free(u);
}

static void on_close(uv_handle_t *h) {
  arb_udp_t *u = h->data;
  u->handle_open = 0;
  unref(u);
}

static void owner_ended(arb_node_t *node, arb_exit_hook_t *hook,
                        arb_proc_t *p) {
  (void)node;
  (void)p;
  arb_udp_t *u = (arb_udp_t *)((char *)hook - offsetof(arb_udp_t, hook));
  u->hooked = 0;
  u->waiter = ARB_PID_NONE;
  arb_udp_close(u);
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return UV_EINVAL;
}

arb_udp_t *arb_udp_new(uv_loop_t *loop, arb_node_t *node, arb_proc_t *p,
                       const char *host, int port, int *err) {
  struct sockaddr_storage ss;
  *err = parse_addr(host, port, &ss);
  if (*err) return NULL;
  arb_udp_t *u = calloc(1, sizeof(*u));
  if (u == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  *err = uv_udp_init(loop, &u->handle);
  if (*err) {
    free(u);
    return NULL;
  }
  u->handle.data = u;
  u->handle_open = 1;
  u->refs = 2; /* the holder's and the handle's */
  u->node = node;
  u->waiter = ARB_PID_NONE;
  *err = uv_udp_bind(&u->handle, (struct sockaddr *)&ss, 0);
  if (*err) {
    u->closing = 1;
    uv_close((uv_handle_t *)&u->handle, on_close);
    unref(u); /* the holder's: the close frees it */
    return NULL;
  }
  u->owner = p->pid;
  u->hook.fn = owner_ended;
  u->hooked = 1;
  arb_node_hook_exit(p, &u->hook);
  return u;
}

void arb_udp_close(arb_udp_t *u) {
  if (u->closing) return;
  u->closing = 1;
  if (u->hooked) arb_node_unhook_exit(&u->hook);
  u->hooked = 0;
  uv_close((uv_handle_t *)&u->handle, on_close);
  wake(u->node, u->waiter);
}

void arb_udp_release(arb_udp_t *u) {
  if (u->handle_open) arb_udp_close(u);
  unref(u);
}

arb_dgram_t *arb_udp_take(arb_udp_t *u) {
  arb_dgram_t *d = u->head;
  if (d == NULL) return NULL;
  u->head = d->next;
  if (u->head == NULL) u->tail = NULL;
  u->queued--;
  return d;
}

/* {======================================================================
** Receiving
** ======================================================================*/

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out) {
  (void)h;
  (void)hint;
  /* One buffer of the largest datagram, owned by this read only. */
  char *buf = malloc(65536);
  *out = uv_buf_init(buf, buf ? 65536 : 0);
}

static void stop_reading(arb_udp_t *u) {
  if (u->reading && !u->closing) uv_udp_recv_stop(&u->handle);
  u->reading = 0;
}

static void on_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *b,
                    const struct sockaddr *from, unsigned flags) {
  arb_udp_t *u = h->data;
  (void)flags;
  if (n < 0) {
    u->err = (int)n;
  } else if (from != NULL && u->queued < ARB_UDP_QUEUE_MAX) {
    arb_dgram_t *d = malloc(sizeof(*d) + (size_t)n);
    if (d) {
      memset(&d->from, 0, sizeof(d->from));
      memcpy(&d->from, from,
             from->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                         : sizeof(struct sockaddr_in));
      d->len = (size_t)n;
      memcpy(d->data, b->base, (size_t)n);
      d->next = NULL;
      if (u->tail)
        u->tail->next = d;
      else
        u->head = d;
      u->tail = d;
      u->queued++;
    }
  }
  free(b->base);
  if (u->head || u->err) {
    stop_reading(u);
    wake(u->node, u->waiter);
  }
}

void arb_udp_want(arb_udp_t *u, arb_pid_t waiter) {
  u->waiter = waiter;
  if (!u->reading && !u->closing &&
      uv_udp_recv_start(&u->handle, on_alloc, on_recv) == 0)
    u->reading = 1;
}

void arb_udp_unwant(arb_udp_t *u) {
  u->waiter = ARB_PID_NONE;
  stop_reading(u);
}

/* }====================================================================== */

typedef struct send_req_s {
  uv_udp_send_t req;
  char data[];
} send_req_t;

static void on_send(uv_udp_send_t *req, int status) {
  (void)status; /* a datagram may be lost anyway */
  free(req);
}

int arb_udp_send(arb_udp_t *u, const char *host, int port, const char *data,
                 size_t len) {
  if (u->closing) return UV_EBADF;
  struct sockaddr_storage ss;
  int rc = parse_addr(host, port, &ss);
  if (rc) return rc;
  send_req_t *r = malloc(sizeof(*r) + len);
  if (r == NULL) return UV_ENOMEM;
  memcpy(r->data, data, len);
  uv_buf_t b = uv_buf_init(r->data, (unsigned)len);
  rc = uv_udp_send(&r->req, &u->handle, &b, 1, (struct sockaddr *)&ss, on_send);
  if (rc) free(r);
  return rc;
}

/* {======================================================================
** Sending to a name
** ======================================================================*/

static arb_list_t lookups = {&lookups, &lookups};

void arb_udp_forget_lookups(void) {
  for (arb_list_t *l = lookups.next; l != &lookups; l = l->next)
    arb_container_of(l, arb_udp_lookup_t, pending)->node = NULL;
}

static void lookup_unref(arb_udp_lookup_t *r) {
  if (--r->refs == 0) free(r);
}

void arb_udp_lookup_release(arb_udp_lookup_t *r) { lookup_unref(r); }

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  arb_udp_lookup_t *r = req->data;
  arb_udp_t *u = r->u;
  if (status == 0 && u->closing) status = UV_EBADF;
  if (status == 0) {
    status = UV_EAI_NONAME;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
      if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
      struct sockaddr_storage ss;
      memset(&ss, 0, sizeof(ss));
      memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
      if (ai->ai_family == AF_INET)
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)r->port);
      else
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)r->port);
      send_req_t *sr = malloc(sizeof(*sr) + r->len);
      if (sr == NULL) {
        status = UV_ENOMEM;
        break;
      }
      memcpy(sr->data, r->data, r->len);
      uv_buf_t b = uv_buf_init(sr->data, (unsigned)r->len);
      status = uv_udp_send(&sr->req, &u->handle, &b, 1, (struct sockaddr *)&ss,
                           on_send);
      if (status != 0) free(sr);
      break;
    }
  }
  if (res) uv_freeaddrinfo(res);
  arb_list_remove(&r->pending);
  r->status = status;
  if (r->refs > 1) wake(r->node, r->waiter);
  r->u = NULL;
  unref(u);
  lookup_unref(r);
}

arb_udp_lookup_t *arb_udp_send_named(arb_udp_t *u, const char *host, int port,
                                     const char *data, size_t len,
                                     arb_pid_t waiter, int *err) {
  struct sockaddr_storage bound;
  int n = sizeof(bound);
  *err = u->closing ? UV_EBADF
                    : uv_udp_getsockname(&u->handle, (struct sockaddr *)&bound,
                                         &n);
  if (*err) return NULL;
  arb_udp_lookup_t *r = malloc(sizeof(*r) + len);
  if (r == NULL) {
    *err = UV_ENOMEM;
    return NULL;
  }
  memset(r, 0, sizeof(*r));
  r->u = u;
  r->node = u->node;
  r->waiter = waiter;
  r->refs = 2; /* the sender's and the lookup's */
  r->port = port;
  r->status = 1;
  r->len = len;
  memcpy(r->data, data, len);
  r->gai.data = r;
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = bound.ss_family; /* an address the socket can reach */
  hints.ai_socktype = SOCK_DGRAM;
  *err = uv_getaddrinfo(u->handle.loop, &r->gai, on_resolved, host, NULL,
                        &hints);
  if (*err) {
    free(r);
    return NULL;
  }
  u->refs++;
  arb_list_insert_tail(&lookups, &r->pending);
  return r;
}

/* }====================================================================== */

static void name_of(const struct sockaddr_storage *ss, char *host,
                    size_t hostlen, int *port) {
  if (ss->ss_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
    uv_ip6_name(a, host, hostlen);
    *port = ntohs(a->sin6_port);
  } else {
    const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
    uv_ip4_name(a, host, hostlen);
    *port = ntohs(a->sin_port);
  }
}

int arb_udp_name(arb_udp_t *u, char *host, size_t hostlen, int *port) {
  if (u->closing) return UV_EBADF;
  struct sockaddr_storage ss;
  int n = sizeof(ss);
  int rc = uv_udp_getsockname(&u->handle, (struct sockaddr *)&ss, &n);
  if (rc == 0) name_of(&ss, host, hostlen, port);
  return rc;
}

void arb_udp_from(const arb_dgram_t *d, char *host, size_t hostlen,
                  int *port) {
  name_of(&d->from, host, hostlen, port);
}
