/*
** net.c: stream sockets on the loop (see net.h for ownership, framing
** and flow control).  Everything here runs on the loop thread.
*/
#define _GNU_SOURCE /* SO_REUSEPORT */
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Wakes pid if it is waiting; it re-checks what it waits for. */
static void wake(arb_node_t *node, arb_pid_t pid) {
  if (node == NULL || pid == ARB_PID_NONE) return;
  arb_proc_t *p = arb_node_lookup(node, pid);
  if (p) arb_node_wake(node, p); /* only a waiting one wakes */
}

static void wake_senders(arb_sock_t *s) {
  int n = s->nsend_waiters;
  s->nsend_waiters = 0;
  for (int i = 0; i < n; i++) wake(s->node, s->send_waiters[i]);
}

static void unref(arb_sock_t *s) {
  if (--s->refs > 0) return;
  if (s->addrs) uv_freeaddrinfo(s->addrs);
  free(s->buf);
  free(s->send_waiters);
  free(s);
}

static void unorphan(arb_sock_t *s);

static void on_close(uv_handle_t *h) {
  arb_sock_t *s = h->data;
  int current = (void *)s->hd == (void *)h;
  if (current) {
    unorphan(s);
    s->handle_open = 0;
    s->hd = NULL;
  }
  free(h);
  if (current && s->watching && s->deliver) s->deliver(s->deliver_ud, s);
  unref(s);
}

/* Gives s a fresh handle of its kind (holding a reference). */
static int new_handle(arb_sock_t *s) {
  arb_sock_handle_t *hd = malloc(sizeof(*hd));
  if (hd == NULL) return UV_ENOMEM;
  int rc = s->kind == ARB_SOCK_TCP ? uv_tcp_init(s->loop, &hd->tcp)
                                   : uv_pipe_init(s->loop, &hd->pipe, 0);
  if (rc != 0) {
    free(hd);
    return rc;
  }
  hd->handle.data = s;
  s->hd = hd;
  s->handle_open = 1;
  s->refs++;
  return 0;
}

static void on_linger_closed(uv_handle_t *h) {
  arb_sock_t *s = h->data;
  free(h);
  unref(s);
}

/* Ends the bound on a closed socket's flush (it is done, or cut short). */
static void stop_linger(arb_sock_t *s) {
  if (s->linger == NULL) return;
  uv_close((uv_handle_t *)s->linger, on_linger_closed);
  s->linger = NULL;
}

/* Closes the handle now (queued data is dropped) and unhooks s. */
static void close_now(arb_sock_t *s) {
  if (s->hooked) arb_node_unhook_exit(&s->hook);
  s->hooked = 0;
  stop_linger(s);
  if (s->handle_open && !uv_is_closing(&s->hd->handle))
    uv_close(&s->hd->handle, on_close);
}

/* Marks s closed for its users and wakes whoever waits on it. */
static void mark_closed(arb_sock_t *s) {
  s->closing = 1;
  if (s->err == 0) s->err = UV_EOF;
  if (s->connect_state == 0) s->connect_state = UV_ECANCELED;
  wake_senders(s);
  wake(s->node, s->waiter);
}

/* Sockets whose owner ended while their queued data was still going
** out: they close once it is sent, or at the host's end. */
static arb_list_t orphans = {&orphans, &orphans};

static void unorphan(arb_sock_t *s) {
  if (!s->orphaned) return;
  arb_list_remove(&s->orphan_node);
  s->orphaned = 0;
}

static void on_flushed(uv_shutdown_t *req, int status) {
  arb_sock_t *s = req->data;
  (void)status;
  free(req);
  unorphan(s);
  close_now(s);
}

void arb_sock_abort(arb_sock_t *s) {
  if (!s->closing) mark_closed(s);
  unorphan(s);
  if (s->handle_open && !uv_is_closing(&s->hd->handle) &&
      s->kind == ARB_SOCK_TCP) {
    /* Not uv_tcp_close_reset: it refuses a handle whose flush (a
    ** shutdown) is in progress, the very case of a lingering close. */
    uv_os_fd_t fd;
    struct linger l = {1, 0};
    if (uv_fileno(&s->hd->handle, &fd) == 0)
      (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  close_now(s); /* pending writes and the shutdown end as cancelled */
}

static void on_linger_end(uv_timer_t *t) {
  arb_sock_t *s = t->data;
  arb_sock_abort(s);
}

/* Bounds the flush of a closed socket: its send timeout, or
** ARB_SOCK_LINGER_MS.  Without a timer (no memory) the socket is reset
** now rather than left unbounded. */
static void start_linger(arb_sock_t *s) {
  if (s->linger) return;
  uv_timer_t *t = malloc(sizeof(*t));
  if (t == NULL || uv_timer_init(s->loop, t) != 0) {
    free(t);
    arb_sock_abort(s);
    return;
  }
  t->data = s;
  s->refs++;
  s->linger = t;
  uint64_t ms = s->send_timeout_ms >= 0 ? (uint64_t)s->send_timeout_ms
                                        : ARB_SOCK_LINGER_MS;
  uv_timer_start(t, on_linger_end, ms, 0);
  uv_unref((uv_handle_t *)t);
}

/* Sends what is queued, then closes; 0 if there was nothing to send or
** the shutdown could not start. */
static int start_flush(arb_sock_t *s) {
  if (s->flushing) return 1;
  if (s->queued == 0 || !s->handle_open || s->listener) return 0;
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req == NULL) return 0;
  req->data = s;
  if (uv_shutdown(req, &s->hd->stream, on_flushed) != 0) {
    free(req);
    return 0;
  }
  s->flushing = 1;
  return 1;
}

static void owner_ended(arb_node_t *node, arb_exit_hook_t *hook,
                        arb_proc_t *p) {
  (void)p;
  arb_sock_t *s = (arb_sock_t *)((char *)hook - offsetof(arb_sock_t, hook));
  s->hooked = 0;
  s->waiter = ARB_PID_NONE;
  if (!s->closing) mark_closed(s);
  /* "send, then end" delivers what was sent, as in Erlang; but not when
  ** the whole host is going down. */
  if (!arb_node_closing(node) && start_flush(s)) {
    if (!s->orphaned) arb_list_insert_tail(&orphans, &s->orphan_node);
    s->orphaned = 1;
    start_linger(s);
    return;
  }
  close_now(s);
}

void arb_net_close_orphans(void) {
  while (!arb_list_empty(&orphans)) {
    arb_sock_t *s = arb_container_of(orphans.next, arb_sock_t, orphan_node);
    unorphan(s);
    close_now(s);
  }
}

arb_sock_t *arb_sock_new(uv_loop_t *loop, arb_node_t *node, arb_proc_t *p,
                         int kind, int packet) {
  arb_sock_t *s = calloc(1, sizeof(*s));
  if (s == NULL) return NULL;
  s->loop = loop;
  s->node = node;
  s->kind = kind;
  s->packet = packet;
  s->waiter = ARB_PID_NONE;
  s->send_timeout_ms = -1;
  s->refs = 1; /* the holder's */
  if (new_handle(s) != 0) {
    free(s);
    return NULL;
  }
  s->owner = p->pid;
  s->hook.fn = owner_ended;
  s->hooked = 1;
  arb_node_hook_exit(p, &s->hook);
  return s;
}

void arb_sock_close(arb_sock_t *s) {
  if (s->closing) return;
  mark_closed(s);
  /* Data already queued is sent before the socket closes (the exit hook
  ** stays until then). */
  if (start_flush(s))
    start_linger(s);
  else
    close_now(s);
}

void arb_sock_release(arb_sock_t *s) {
  /* At the host's teardown every owner has ended first, so the handle
  ** is closed before the Lua state lets go of its sockets. */
  if (s->handle_open && !s->closing) { /* (a flush in progress goes on) */
    mark_closed(s);
    close_now(s);
  }
  unref(s);
}

void arb_sock_give(arb_sock_t *s, arb_proc_t *p) {
  if (s->hooked) arb_node_unhook_exit(&s->hook);
  s->owner = p->pid;
  s->hooked = 1;
  arb_node_hook_exit(p, &s->hook);
}

/* {======================================================================
** Listening and accepting
** ======================================================================*/

static void on_connection(uv_stream_t *server, int status) {
  arb_sock_t *s = server->data;
  if (status < 0) {
    s->err = status;
  } else {
    s->pending_accepts++;
  }
  wake(s->node, s->waiter);
}

static int parse_addr(const char *host, int port, struct sockaddr_storage *ss) {
  memset(ss, 0, sizeof(*ss));
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0) return 0;
  if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0) return 0;
  return UV_EINVAL;
}

/* A bound socket with SO_REUSEPORT, opened into s's handle (libuv 1.44
** has no flag for it). */
static int bind_reuseport(arb_sock_t *s, const struct sockaddr_storage *ss) {
  int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int on = 1;
  socklen_t len = ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                            : sizeof(struct sockaddr_in);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0 ||
      bind(fd, (const struct sockaddr *)ss, len) != 0) {
    int err = -errno;
    close(fd);
    return err;
  }
  int rc = uv_tcp_open(&s->hd->tcp, fd);
  if (rc != 0) close(fd);
  return rc;
}

int arb_sock_listen_tcp(arb_sock_t *s, const char *host, int port,
                        int backlog, int reuseport) {
  struct sockaddr_storage ss;
  int rc = parse_addr(host, port, &ss);
  if (rc == 0)
    rc = reuseport ? bind_reuseport(s, &ss)
                   : uv_tcp_bind(&s->hd->tcp, (struct sockaddr *)&ss, 0);
  if (rc == 0) rc = uv_listen(&s->hd->stream, backlog, on_connection);
  if (rc == 0) s->listener = 1;
  return rc;
}

int arb_sock_listen_pipe(arb_sock_t *s, const char *path, int backlog) {
  int rc = uv_pipe_bind(&s->hd->pipe, path);
  if (rc == 0) rc = uv_listen(&s->hd->stream, backlog, on_connection);
  if (rc == 0) s->listener = 1;
  return rc;
}

int arb_sock_accept(arb_sock_t *s, arb_sock_t *client) {
  if (s->closing) return UV_EOF;
  if (s->pending_accepts == 0) return s->err ? s->err : UV_EAGAIN;
  s->pending_accepts--;
  int rc = uv_accept(&s->hd->stream, &client->hd->stream);
  if (rc == 0) client->connect_state = 1;
  return rc;
}

/* }====================================================================== */

/* {======================================================================
** Connecting
** ======================================================================*/

static void try_next_addr(arb_sock_t *s, int last_err);

static void on_connect(uv_connect_t *req, int status) {
  arb_sock_t *s = req->data;
  free(req);
  if (s->closing) return;
  if (status == 0) {
    s->connect_state = 1;
    wake(s->node, s->waiter);
    return;
  }
  try_next_addr(s, status);
}

/* Tries s->next_addr; on running out, the last error stands.  A failed
** attempt leaves the TCP handle unusable, so each attempt after the
** first gets a fresh one (the old one closes, holding its own ref). */
static void try_next_addr(arb_sock_t *s, int last_err) {
  while (s->next_addr) {
    struct addrinfo *ai = s->next_addr;
    s->next_addr = ai->ai_next;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    if (last_err) { /* the failed attempt's handle is spent */
      uv_close(&s->hd->handle, on_close);
      int rc = new_handle(s);
      if (rc != 0) {
        s->connect_state = rc;
        wake(s->node, s->waiter);
        return;
      }
    }
    uv_connect_t *req = malloc(sizeof(*req));
    if (req == NULL) {
      s->connect_state = UV_ENOMEM;
      wake(s->node, s->waiter);
      return;
    }
    req->data = s;
    if (ai->ai_family == AF_INET)
      ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)s->port);
    else
      ((struct sockaddr_in6 *)ai->ai_addr)->sin6_port = htons((uint16_t)s->port);
    int rc = uv_tcp_connect(req, &s->hd->tcp, ai->ai_addr, on_connect);
    if (rc == 0) return;
    free(req);
    last_err = rc;
  }
  s->connect_state = last_err ? last_err : UV_EAI_NONAME;
  wake(s->node, s->waiter);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  arb_sock_t *s = req->data;
  s->addrs = res;
  s->next_addr = res;
  if (!s->closing) {
    if (status < 0)
      s->connect_state = status;
    else
      try_next_addr(s, 0);
    if (status < 0) wake(s->node, s->waiter);
  }
  unref(s);
}

int arb_sock_connect_tcp(arb_sock_t *s, const char *host, int port) {
  struct addrinfo hints;
  memset(&hints, 0, sizeof(hints));
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  s->port = port;
  s->gai.data = s;
  int rc = uv_getaddrinfo(s->loop, &s->gai, on_resolved, host, NULL, &hints);
  if (rc == 0) s->refs++;
  return rc;
}

int arb_sock_connect_pipe(arb_sock_t *s, const char *path) {
  uv_connect_t *req = malloc(sizeof(*req));
  if (req == NULL) return UV_ENOMEM;
  req->data = s;
  uv_pipe_connect(req, &s->hd->pipe, path, on_connect);
  return 0;
}

/* }====================================================================== */

/* {======================================================================
** Receiving and framing
** ======================================================================*/

/* Where a socket with nothing buffered (and a buffer smaller than this)
** reads: on_read copies what arrived into a buffer of the socket's own,
** sized to it.  So an idle connection holds a buffer the size of what it
** last read, not 64 KiB, and a small request costs a small copy, not an
** allocation.  (libuv calls on_alloc, read() and on_read in a row for
** one socket at a time: one scratch buffer does.) */
static char scratch[65536];

/* A drained buffer larger than this is given back. */
#define KEEP_BUFFER sizeof(scratch)

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out) {
  arb_sock_t *s = h->data;
  (void)hint;
  if (s->len == 0 && s->cap < sizeof(scratch)) {
    *out = uv_buf_init(scratch, sizeof(scratch));
    return;
  }
  size_t want = 65536;
  if (s->cap - s->len < want) {
    size_t ncap = s->cap ? s->cap : want;
    while (ncap - s->len < want) ncap *= 2;
    char *nbuf = realloc(s->buf, ncap);
    if (nbuf == NULL) {
      *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
      return;
    }
    s->buf = nbuf;
    s->cap = ncap;
  }
  *out = uv_buf_init(s->buf + s->len, (unsigned)(s->cap - s->len));
}

static void stop_reading(arb_sock_t *s) {
  if (s->reading && !s->closing) uv_read_stop(&s->hd->stream);
  s->reading = 0;
}

/* Bytes an active socket buffers while nothing is armed. */
#define WATCH_BUFFER (64u << 10)

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b);

/* Reads while the owner waits in receive, or while armed, or while
** little (under WATCH_BUFFER) is buffered once it has begun to read: a
** socket in use reads ahead a bounded amount, which also spares a pair
** of epoll_ctl calls per packet (stop, start again) and notices the
** peer's close in active mode; stops otherwise. */
static void update_reading(arb_sock_t *s) {
  int want = !s->closing && s->err == 0 && s->handle_open && !s->listener &&
             (s->waiter != ARB_PID_NONE || s->active > 0 ||
              ((s->watching || s->reading) && s->len < WATCH_BUFFER));
  if (want && !s->reading) {
    if (uv_read_start(&s->hd->stream, on_alloc, on_read) == 0) s->reading = 1;
  } else if (!want && s->reading) {
    stop_reading(s);
  }
}

void arb_sock_arm(arb_sock_t *s, int n, void (*deliver)(void *, arb_sock_t *),
                  void *ud) {
  s->deliver = deliver;
  s->deliver_ud = ud;
  s->watching = 1;
  s->active += n;
  update_reading(s);
}

/* Moves n bytes read into scratch to s's own buffer; 0 or ENOBUFS. */
static int adopt_scratch(arb_sock_t *s, size_t n) {
  if (s->cap < n) {
    size_t ncap = n < 256 ? 256 : n;
    char *nbuf = realloc(s->buf, ncap);
    if (nbuf == NULL) return UV_ENOBUFS;
    s->buf = nbuf;
    s->cap = ncap;
  }
  memcpy(s->buf, scratch, n);
  return 0;
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  arb_sock_t *s = st->data;
  if (n > 0 && b->base == scratch && adopt_scratch(s, (size_t)n) != 0)
    n = UV_ENOBUFS;
  if (n < 0) {
    s->err = (int)n;
    stop_reading(s);
    wake(s->node, s->waiter);
    if (s->watching && s->deliver) s->deliver(s->deliver_ud, s);
    return;
  }
  s->len += (size_t)n;
  const char *d;
  size_t l;
  if (arb_sock_packet(s, &d, &l) != 0) {
    if (s->waiter != ARB_PID_NONE) {
      wake(s->node, s->waiter); /* reading goes on (update_reading) */
    } else if (s->watching && s->deliver) {
      s->deliver(s->deliver_ud, s);
    }
  }
  update_reading(s);
}

int arb_sock_packet(arb_sock_t *s, const char **data, size_t *len) {
  s->taken = 0;
  if (s->len > 0) {
    if (s->packet == ARB_PACKET_RAW) {
      *data = s->buf;
      *len = s->len;
      s->taken = s->len;
      return 1;
    }
    if (s->packet == ARB_PACKET_LINE) {
      char *nl = memchr(s->buf, '\n', s->len);
      if (nl) {
        size_t l = (size_t)(nl - s->buf);
        s->taken = l + 1;
        if (l > 0 && s->buf[l - 1] == '\r') l--;
        if (l > ARB_SOCK_LINE_MAX) return UV_EMSGSIZE;
        *data = s->buf;
        *len = l;
        return 1;
      }
      if (s->len > ARB_SOCK_LINE_MAX + 1) return UV_EMSGSIZE;
    } else if (s->len >= 4) {
      const unsigned char *u = (const unsigned char *)s->buf;
      size_t l = ((size_t)u[0] << 24) | ((size_t)u[1] << 16) |
                 ((size_t)u[2] << 8) | (size_t)u[3];
      if (l > ARB_SOCK_FRAME_MAX) return UV_EMSGSIZE;
      if (s->len >= l + 4) {
        *data = s->buf + 4;
        *len = l;
        s->taken = l + 4;
        return 1;
      }
    }
  }
  if (s->err) return s->err;
  return 0;
}

void arb_sock_consume(arb_sock_t *s) {
  if (s->taken == 0) return;
  memmove(s->buf, s->buf + s->taken, s->len - s->taken);
  s->len -= s->taken;
  s->taken = 0;
  if (s->len == 0 && s->cap > KEEP_BUFFER) { /* give a big buffer back */
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
  }
}

void arb_sock_want_packet(arb_sock_t *s, arb_pid_t waiter) {
  s->waiter = waiter;
  update_reading(s);
}

void arb_sock_unwant(arb_sock_t *s) {
  s->waiter = ARB_PID_NONE;
  update_reading(s);
}

/* }====================================================================== */

/* {======================================================================
** Sending
** ======================================================================*/

typedef struct write_req_s {
  uv_write_t req;
  arb_sock_t *s;
  size_t len;
  char data[];
} write_req_t;

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  arb_sock_t *s = w->s;
  s->queued -= w->len;
  if (status < 0 && status != UV_ECANCELED && s->err == 0) s->err = status;
  if (s->queued <= ARB_SOCK_SEND_HIGH || status < 0) wake_senders(s);
  free(w);
}

/* Sends what it can at once when nothing is queued (no request, no
** copy: the common case of a small reply), and queues the rest (with a
** 4-byte prefix in packet mode 4) as one write request. */
int arb_sock_send(arb_sock_t *s, const char *data, size_t len) {
  if (s->closing) return UV_EPIPE;
  size_t extra = s->packet == ARB_PACKET_4 ? 4 : 0;
  if (extra && len > 0xffffffffu) return UV_EMSGSIZE;
  char prefix[4] = {(char)(len >> 24), (char)(len >> 16), (char)(len >> 8),
                    (char)len};
  size_t sent = 0;
  if (s->queued == 0 && len < (1u << 30) &&
      uv_stream_get_write_queue_size(&s->hd->stream) == 0) {
    uv_buf_t bufs[2];
    int nbufs = 0;
    if (extra) bufs[nbufs++] = uv_buf_init(prefix, 4);
    bufs[nbufs++] = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(&s->hd->stream, bufs, nbufs);
    if (n < 0 && n != UV_EAGAIN && n != UV_ENOSYS) return n;
    if (n > 0) sent = (size_t)n;
    if (sent == len + extra) return 0;
  }
  size_t rest = len + extra - sent;
  write_req_t *w = malloc(sizeof(*w) + rest);
  if (w == NULL) return UV_ENOMEM;
  if (sent < extra) { /* part of the prefix is still to go */
    memcpy(w->data, prefix + sent, extra - sent);
    memcpy(w->data + extra - sent, data, len);
  } else {
    memcpy(w->data, data + (sent - extra), rest);
  }
  w->s = s;
  w->len = rest;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
  int rc = uv_write(&w->req, &s->hd->stream, &b, 1, on_write);
  if (rc != 0) {
    free(w);
    return rc;
  }
  s->queued += w->len;
  return 0;
}

void arb_sock_unwait_drain(arb_sock_t *s, arb_pid_t pid) {
  for (int i = 0; i < s->nsend_waiters; i++) {
    if (s->send_waiters[i] != pid) continue;
    s->send_waiters[i] = s->send_waiters[--s->nsend_waiters];
    return;
  }
}

int arb_sock_wait_drain(arb_sock_t *s, arb_pid_t pid) {
  if (s->nsend_waiters == s->send_waiters_cap) {
    int ncap = s->send_waiters_cap ? s->send_waiters_cap * 2 : 4;
    arb_pid_t *n = realloc(s->send_waiters, (size_t)ncap * sizeof(*n));
    if (n == NULL) return UV_ENOMEM;
    s->send_waiters = n;
    s->send_waiters_cap = ncap;
  }
  s->send_waiters[s->nsend_waiters++] = pid;
  return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

int arb_sock_shutdown(arb_sock_t *s) {
  if (s->closing) return UV_ENOTCONN;
  uv_shutdown_t *req = malloc(sizeof(*req));
  if (req == NULL) return UV_ENOMEM;
  int rc = uv_shutdown(req, &s->hd->stream, on_shutdown);
  if (rc != 0) free(req);
  return rc;
}

/* }====================================================================== */

int arb_sock_name(arb_sock_t *s, int peer, char *host, size_t hostlen,
                  int *port) {
  if (s->closing) return UV_EBADF;
  if (s->kind == ARB_SOCK_PIPE) {
    size_t n = hostlen;
    int rc = peer ? uv_pipe_getpeername(&s->hd->pipe, host, &n)
                  : uv_pipe_getsockname(&s->hd->pipe, host, &n);
    *port = -1;
    return rc;
  }
  struct sockaddr_storage ss;
  int n = sizeof(ss);
  int rc = peer ? uv_tcp_getpeername(&s->hd->tcp, (struct sockaddr *)&ss, &n)
                : uv_tcp_getsockname(&s->hd->tcp, (struct sockaddr *)&ss, &n);
  if (rc != 0) return rc;
  if (ss.ss_family == AF_INET6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
    uv_ip6_name(a, host, hostlen);
    *port = ntohs(a->sin6_port);
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;
    uv_ip4_name(a, host, hostlen);
    *port = ntohs(a->sin_port);
  }
  return 0;
}
