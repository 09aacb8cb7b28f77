/*
** stdin.c: standard input on the loop (see stdin.h for why a poll on a
** duplicate of fd 0, and for the reader queue).  Loop thread only.
*/
#define _GNU_SOURCE /* F_DUPFD_CLOEXEC */
#include "stdin.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define READ_MAX (1u << 20) /* most bytes one read() takes */

static void wake(arb_node_t *node, arb_pid_t pid) {
  arb_proc_t *p = arb_node_lookup(node, pid);
  if (p) arb_node_wake(node, p); /* only a waiting one wakes */
}

static void stop_polling(arb_stdin_t *in) {
  if (in->polling) uv_poll_stop(in->poll);
  in->polling = 0;
}

/* Room for at least want more bytes after the unread ones; 0 or ENOMEM. */
static int make_room(arb_stdin_t *in, size_t want) {
  if (in->start > 0 && in->cap - in->start - in->len < want) {
    memmove(in->buf, in->buf + in->start, in->len);
    in->start = 0;
  }
  if (in->cap - in->start - in->len >= want) return 0;
  size_t ncap = in->cap ? in->cap : READ_CHUNK;
  while (ncap - in->len < want) ncap *= 2;
  char *nbuf = realloc(in->buf, ncap);
  if (nbuf == NULL) return UV_ENOMEM;
  in->buf = nbuf;
  in->cap = ncap;
  return 0;
}

/* One read() of what is there; 1 if something changed (bytes, end of
** file, an error), 0 if the descriptor had nothing after all. */
static int read_some(arb_stdin_t *in) {
  int avail = 0;
  size_t want = READ_CHUNK;
  if (ioctl(in->fd, FIONREAD, &avail) == 0 && avail > 0)
    want = (size_t)avail < READ_MAX ? (size_t)avail : READ_MAX;
  if (make_room(in, want) != 0) {
    in->err = UV_ENOMEM;
    return 1;
  }
  ssize_t n = read(in->fd, in->buf + in->start + in->len, want);
  if (n > 0) {
    in->len += (size_t)n;
    return 1;
  }
  if (n == 0) {
    in->eof = 1;
    return 1;
  }
  if (errno == EAGAIN || errno == EINTR) return 0;
  in->err = -errno;
  return 1;
}

static void on_poll(uv_poll_t *h, int status, int events) {
  arb_stdin_t *in = h->data;
  (void)events;
  if (status < 0)
    in->err = status;
  else if (!read_some(in))
    return;
  stop_polling(in);
  if (in->head) wake(in->node, in->head->pid);
}

static void on_close(uv_handle_t *h) { free(h); }

int arb_stdin_open(arb_stdin_t *in, uv_loop_t *loop, arb_node_t *node) {
  memset(in, 0, sizeof(*in));
  in->fd = -1;
  struct stat st;
  if (fstat(0, &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) ||
      S_ISBLK(st.st_mode) || (S_ISCHR(st.st_mode) && !isatty(0)))
    return UV_ENOTSUP;
  int flags = fcntl(0, F_GETFL);
  int fd = fcntl(0, F_DUPFD_CLOEXEC, 3);
  if (flags < 0 || fd < 0) return UV_ENOTSUP;
  uv_poll_t *poll = malloc(sizeof(*poll));
  if (poll == NULL) {
    close(fd);
    return UV_ENOMEM;
  }
  int rc = uv_poll_init(loop, poll, fd);
  /* uv_poll_init made the shared description non-blocking: put the
  ** flags back, so fd 0 (and whoever inherits it) is as it was. */
  fcntl(fd, F_SETFL, flags);
  if (rc != 0) {
    free(poll);
    close(fd);
    return rc == UV_EPERM ? UV_ENOTSUP : rc;
  }
  poll->data = in;
  in->poll = poll;
  in->loop = loop;
  in->node = node;
  in->fd = fd;
  return 0;
}

void arb_stdin_close(arb_stdin_t *in) {
  while (in->head) {
    arb_stdin_waiter_t *w = in->head;
    in->head = w->next;
    arb_node_unhook_exit(&w->hook);
    free(w);
  }
  in->tail = NULL;
  if (in->poll) {
    stop_polling(in);
    uv_close((uv_handle_t *)in->poll, on_close);
    in->poll = NULL;
  }
  if (in->fd >= 0) close(in->fd);
  in->fd = -1;
  free(in->buf);
  in->buf = NULL;
  in->start = in->len = in->cap = 0;
}

/* {======================================================================
** The reader queue
** ======================================================================*/

/* Unlinks w (the caller frees it); wakes the next head if w was head. */
static void unlink_waiter(arb_stdin_t *in, arb_stdin_waiter_t *w) {
  arb_stdin_waiter_t **at = &in->head, *prev = NULL;
  while (*at && *at != w) {
    prev = *at;
    at = &(*at)->next;
  }
  if (*at == NULL) return;
  int was_head = w == in->head;
  *at = w->next;
  if (in->tail == w) in->tail = prev;
  if (!was_head) return;
  stop_polling(in); /* the next head asks again if it needs to */
  if (in->head) wake(in->node, in->head->pid);
}

static void waiter_ended(arb_node_t *node, arb_exit_hook_t *hook,
                         arb_proc_t *p) {
  (void)node;
  (void)p;
  arb_stdin_waiter_t *w =
      (arb_stdin_waiter_t *)((char *)hook - offsetof(arb_stdin_waiter_t, hook));
  unlink_waiter(w->in, w);
  free(w);
}

int arb_stdin_enter(arb_stdin_t *in, arb_proc_t *p) {
  for (arb_stdin_waiter_t *w = in->head; w; w = w->next)
    if (w->pid == p->pid) return w == in->head;
  arb_stdin_waiter_t *w = calloc(1, sizeof(*w));
  if (w == NULL) return UV_ENOMEM;
  w->in = in;
  w->pid = p->pid;
  w->hook.fn = waiter_ended;
  arb_node_hook_exit(p, &w->hook);
  if (in->tail)
    in->tail->next = w;
  else
    in->head = w;
  in->tail = w;
  return w == in->head;
}

void arb_stdin_leave(arb_stdin_t *in, arb_pid_t pid) {
  for (arb_stdin_waiter_t *w = in->head; w; w = w->next) {
    if (w->pid != pid) continue;
    arb_node_unhook_exit(&w->hook);
    unlink_waiter(in, w);
    free(w);
    return;
  }
}

/* }====================================================================== */

void arb_stdin_want(arb_stdin_t *in) {
  if (in->polling || in->poll == NULL) return;
  if (uv_poll_start(in->poll, UV_READABLE, on_poll) == 0)
    in->polling = 1;
  else
    in->err = UV_EBADF;
}

void arb_stdin_consume(arb_stdin_t *in, size_t n) {
  in->start += n;
  in->len -= n;
  if (in->len == 0) {
    in->start = 0;
    if (in->cap > 4 * READ_MAX) { /* give a big buffer back */
      free(in->buf);
      in->buf = NULL;
      in->cap = 0;
    }
  }
}

void arb_stdin_fill_now(arb_stdin_t *in) {
  for (;;) {
    struct pollfd pfd = {.fd = in->fd, .events = POLLIN};
    int rc = poll(&pfd, 1, -1);
    if (rc < 0 && errno != EINTR) {
      in->err = -errno;
      return;
    }
    if (rc > 0 && read_some(in)) return;
  }
}
