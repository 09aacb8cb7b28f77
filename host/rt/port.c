/*
** port.c: OS processes on the loop (see port.h for groups, framing,
** ownership and the host's end).  Everything here runs on the loop
** thread.
*/
#define _DEFAULT_SOURCE /* dirent's d_type */
#include "port.h"

#include <dirent.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "reaper.h"

/* Ports whose process group may still have members: every port from its
** spawn until its leader has exited and its group is seen empty, or it
** has been sent SIGKILL.  The list holds a reference. */
static arb_list_t live_ports = {&live_ports, &live_ports};

static void wake(arb_node_t *node, arb_pid_t pid) {
  if (node == NULL || pid == ARB_PID_NONE) return;
  arb_proc_t *p = arb_node_lookup(node, pid);
  if (p) arb_node_wake(node, p); /* only a waiting one wakes */
}

static void unref(arb_port_t *p) {
  if (--p->refs > 0) return;
  /* Nothing is left to stop (a live group holds a reference). */
  if (p->hooked) arb_node_unhook_exit(&p->hook);
  free(p->out[0].buf);
  free(p->out[1].buf);
  free(p);
}

static void on_handle_closed(uv_handle_t *h) { unref(h->data); }

static void close_handle(arb_port_t *p, uv_handle_t *h) {
  h->data = p;
  uv_close(h, on_handle_closed);
}

/* Is anything left of the group?  (The leader, until reaped, counts.) */
static int group_alive(const arb_port_t *p) {
  if (!p->exited) return 1;
  return kill(-p->os_pid, 0) == 0 || errno == EPERM;
}

static void unlive(arb_port_t *p) {
  if (!p->live) return;
  p->live = 0;
  arb_list_remove(&p->live_node);
  if (p->timer_open) {
    p->timer_open = 0;
    uv_timer_stop(&p->kill_timer);
    close_handle(p, (uv_handle_t *)&p->kill_timer);
  }
  unref(p);
}

/* After the leader exited or the group was signalled: forget a group
** that is gone. */
static void settle(arb_port_t *p) {
  if (p->live && p->exited && (p->killed || !group_alive(p))) unlive(p);
}

int arb_port_owns(pid_t pid) {
  for (arb_list_t *n = live_ports.next; n != &live_ports; n = n->next) {
    arb_port_t *p = arb_container_of(n, arb_port_t, live_node);
    if (!p->exited && p->os_pid == pid) return 1;
  }
  return 0;
}

/* {======================================================================
** Output: reading and framing
** ======================================================================*/

static void hand_over(arb_port_t *p, int which, const char *data, size_t len) {
  if (p->deliver) p->deliver(p->deliver_ud, p, which, data, len);
}

/* Hands over the complete packets in stream which; with at_end, the rest
** too. */
static void frame(arb_port_t *p, int which, int at_end) {
  arb_port_stream_t *s = &p->out[which];
  size_t off = 0;
  if (p->packet == ARB_PORT_RAW) {
    if (s->len) hand_over(p, which, s->buf, s->len);
    off = s->len;
  } else {
    while (off < s->len) {
      char *start = s->buf + off;
      char *nl = memchr(start, '\n', s->len - off);
      if (nl) {
        size_t l = (size_t)(nl - start), shown = l;
        if (shown > 0 && start[shown - 1] == '\r') shown--;
        if (shown > ARB_PORT_LINE_MAX) shown = l = ARB_PORT_LINE_MAX - 1;
        hand_over(p, which, start, shown);
        off += l + 1;
      } else if (s->len - off >= ARB_PORT_LINE_MAX) {
        hand_over(p, which, start, ARB_PORT_LINE_MAX);
        off += ARB_PORT_LINE_MAX;
      } else if (at_end) {
        hand_over(p, which, start, s->len - off);
        off = s->len;
      } else {
        break;
      }
    }
  }
  memmove(s->buf, s->buf + off, s->len - off);
  s->len -= off;
  if (s->len == 0 && s->cap > (1u << 20)) { /* give a big buffer back */
    free(s->buf);
    s->buf = NULL;
    s->cap = 0;
  }
}

static int reserve(arb_port_stream_t *s, size_t want) {
  if (s->cap - s->len >= want) return 0;
  size_t ncap = s->cap ? s->cap : want;
  while (ncap - s->len < want) ncap *= 2;
  char *nbuf = realloc(s->buf, ncap);
  if (nbuf == NULL) return UV_ENOMEM;
  s->buf = nbuf;
  s->cap = ncap;
  return 0;
}

static int stream_of(arb_port_t *p, uv_handle_t *h) {
  return (void *)h == (void *)&p->out[0].pipe ? 0 : 1;
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out) {
  arb_port_t *p = h->data;
  arb_port_stream_t *s = &p->out[stream_of(p, h)];
  (void)hint;
  if (reserve(s, 65536) != 0) {
    *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
    return;
  }
  *out = uv_buf_init(s->buf + s->len, (unsigned)(s->cap - s->len));
}

static void close_stream(arb_port_t *p, int which) {
  arb_port_stream_t *s = &p->out[which];
  if (!s->open) return;
  s->open = 0;
  uv_read_stop((uv_stream_t *)&s->pipe);
  close_handle(p, (uv_handle_t *)&s->pipe);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  arb_port_t *p = st->data;
  int which = stream_of(p, (uv_handle_t *)st);
  (void)b;
  if (n > 0) {
    p->out[which].len += (size_t)n;
    frame(p, which, 0);
  } else if (n < 0) { /* end of file (or an error: the same for us) */
    frame(p, which, 1);
    close_stream(p, which);
  }
}

/* The leader has exited: what its pipe still holds is read now (at most
** DRAIN_MAX, in case a group member keeps writing), then the pipe closes. */
#define DRAIN_MAX (4u << 20)

static void drain(arb_port_t *p, int which) {
  arb_port_stream_t *s = &p->out[which];
  if (!s->open) return;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&s->pipe, &fd) == 0) {
    size_t total = 0;
    while (total < DRAIN_MAX && reserve(s, 65536) == 0) {
      ssize_t n = read(fd, s->buf + s->len, s->cap - s->len);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      s->len += (size_t)n;
      total += (size_t)n;
      frame(p, which, 0);
    }
  }
  frame(p, which, 1);
  close_stream(p, which);
}

/* }====================================================================== */

/* {======================================================================
** Notification sockets
** ======================================================================*/

static char notify_dir[80]; /* made on first use; "" until then */
static unsigned notify_seq;

/* Makes the host's notification directory (0700) if needed. */
static int ensure_notify_dir(void) {
  if (notify_dir[0]) return 0;
  const char *bases[] = {getenv("XDG_RUNTIME_DIR"), getenv("TMPDIR"), "/tmp"};
  for (int i = 0; i < 3; i++) {
    if (bases[i] == NULL || bases[i][0] != '/') continue;
    char tmpl[sizeof(notify_dir)];
    int n = snprintf(tmpl, sizeof(tmpl), "%s/arbor-notify-XXXXXX", bases[i]);
    if (n < 0 || (size_t)n + 16 >= sizeof(tmpl)) continue; /* room for names */
    if (mkdtemp(tmpl) == NULL) continue;
    memcpy(notify_dir, tmpl, (size_t)n + 1);
    return 0;
  }
  return UV_EACCES;
}

static void notify_read(arb_port_t *p) {
  char buf[ARB_PORT_NOTIFY_MAX];
  for (;;) {
    ssize_t n = recv(p->notify_fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    hand_over(p, ARB_PORT_EV_NOTIFY, buf, (size_t)n);
  }
}

static void on_notify(uv_poll_t *h, int status, int events) {
  (void)status;
  (void)events;
  notify_read(h->data);
}

static void on_notify_closed(uv_handle_t *h) {
  arb_port_t *p = h->data;
  close(p->notify_fd);
  p->notify_fd = -1;
  unref(p);
}

static void close_notify(arb_port_t *p) {
  if (!p->notify_open) return;
  p->notify_open = 0;
  uv_poll_stop(&p->notify_poll);
  unlink(p->notify_path);
  free(p->notify_path);
  p->notify_path = NULL;
  uv_close((uv_handle_t *)&p->notify_poll, on_notify_closed);
}

/* Opens p's socket and returns env with NOTIFY_SOCKET set (a new array
** in *owned, to free after the spawn); NULL with *err on failure. */
static char **open_notify(arb_port_t *p, char **env, char ***owned, int *err) {
  *owned = NULL;
  *err = ensure_notify_dir();
  if (*err) return NULL;
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  /* notify_dir is short enough (< 80) for a name of 16 more bytes. */
  char name[sizeof(sa.sun_path)];
  int nlen = snprintf(name, sizeof(name), "%.79s/%u.sock", notify_dir,
                      ++notify_seq);
  if (nlen < 0 || (size_t)nlen >= sizeof(sa.sun_path)) {
    *err = UV_ENAMETOOLONG;
    return NULL;
  }
  memcpy(sa.sun_path, name, (size_t)nlen + 1);
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = -errno;
    return NULL;
  }
  unlink(sa.sun_path);
  if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    *err = -errno;
    close(fd);
    return NULL;
  }
  size_t n = 0;
  while (env[n]) n++;
  char **out = malloc((n + 2) * sizeof(char *));
  size_t len = strlen(sa.sun_path) + sizeof("NOTIFY_SOCKET=");
  char *var = malloc(len);
  p->notify_path = strdup(sa.sun_path);
  if (out == NULL || var == NULL || p->notify_path == NULL ||
      uv_poll_init_socket(p->loop, &p->notify_poll, fd) != 0) {
    free(out);
    free(var);
    free(p->notify_path);
    p->notify_path = NULL;
    unlink(sa.sun_path);
    close(fd);
    *err = UV_ENOMEM;
    return NULL;
  }
  snprintf(var, len, "NOTIFY_SOCKET=%s", sa.sun_path);
  size_t m = 0;
  out[m++] = var;
  for (size_t i = 0; i < n; i++)
    if (strncmp(env[i], "NOTIFY_SOCKET=", 14) != 0) out[m++] = env[i];
  out[m] = NULL;
  p->notify_fd = fd;
  p->notify_poll.data = p;
  p->notify_open = 1;
  p->refs++;
  uv_poll_start(&p->notify_poll, UV_READABLE, on_notify);
  *owned = out;
  return out;
}

/* }====================================================================== */

/* {======================================================================
** Exit, owner's end, kill timer
** ======================================================================*/

static void on_exit_cb(uv_process_t *proc, int64_t status, int term_signal) {
  arb_port_t *p = proc->data;
  p->exited = 1;
  p->exit_status = (int)status;
  p->term_signal = term_signal;
  if (p->notify_open) notify_read(p);
  close_notify(p);
  drain(p, 0);
  drain(p, 1);
  p->exit_delivered = 1;
  hand_over(p, ARB_PORT_EV_EXIT, NULL, 0);
  if (p->proc_open) {
    p->proc_open = 0;
    close_handle(p, (uv_handle_t *)proc);
  }
  wake(p->node, p->write_waiter);
  settle(p);
  /* libuv has taken its zombie: others may wait behind it. */
  arb_reaper_scan();
}

static void on_kill_timer(uv_timer_t *t) {
  arb_port_t *p = t->data;
  if (group_alive(p)) kill(-p->os_pid, SIGKILL);
  p->killed = 1;
  /* Until its exit callback, libuv owns the leader: it stays listed. */
  if (p->exited) unlive(p);
}

/* Signals the group with signum, then SIGKILL after kill_after_ms unless
** signum was SIGKILL. */
static void terminate(arb_port_t *p, int signum, int kill_after_ms) {
  if (!p->live || p->term_sent) return;
  p->term_sent = 1;
  if (!group_alive(p)) {
    unlive(p);
    return;
  }
  kill(-p->os_pid, signum);
  if (signum == SIGKILL) {
    /* Nothing survives it; the reaper takes what is left. */
    p->killed = 1;
    if (p->exited) unlive(p);
    return;
  }
  if (!p->timer_open) {
    if (uv_timer_init(p->loop, &p->kill_timer) != 0) return;
    p->kill_timer.data = p;
    p->timer_open = 1;
    p->refs++;
    uv_unref((uv_handle_t *)&p->kill_timer);
  }
  uv_timer_start(&p->kill_timer, on_kill_timer, (uint64_t)kill_after_ms, 0);
}

static void owner_ended(arb_node_t *node, arb_exit_hook_t *hook,
                        arb_proc_t *owner) {
  (void)node;
  (void)owner;
  arb_port_t *p = (arb_port_t *)((char *)hook - offsetof(arb_port_t, hook));
  p->hooked = 0;
  p->write_waiter = ARB_PID_NONE;
  arb_port_close_stdin(p);
  terminate(p, p->owner_exit_signal, p->kill_after_ms);
}

/* }====================================================================== */

/* {======================================================================
** Spawning
** ======================================================================*/

/* Every descriptor above stderr becomes close-on-exec before a spawn, so
** that nothing the host (or a C module, or Lua's io library) opened
** leaks into a child, whatever opened it and however.  One close_range
** call does it on Linux 5.11 and later; older kernels get a walk over
** /proc/self/fd. */
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static void cloexec_all(void) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC) == 0) return;
#endif
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL) return;
  int self = dirfd(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = atoi(e->d_name);
    if (fd <= 2 || fd == self) continue;
    int flags = fcntl(fd, F_GETFD);
    if (flags >= 0 && !(flags & FD_CLOEXEC)) fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  }
  closedir(d);
}

static void close_fd(uv_file *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

int arb_port_spawn(uv_loop_t *loop, arb_node_t *node, arb_proc_t *owner,
                   const arb_port_opts_t *o, arb_port_deliver_fn deliver,
                   void *ud, arb_port_t **out) {
  *out = NULL;
  arb_port_t *p = calloc(1, sizeof(*p));
  if (p == NULL) return UV_ENOMEM;
  p->loop = loop;
  p->node = node;
  p->packet = o->packet;
  p->deliver = deliver;
  p->deliver_ud = ud;
  p->write_waiter = ARB_PID_NONE;
  p->owner_exit_signal = o->owner_exit_signal ? o->owner_exit_signal : SIGTERM;
  p->kill_after_ms = o->kill_after_ms >= 0 ? o->kill_after_ms
                                           : ARB_PORT_KILL_AFTER_MS;
  p->refs = 1; /* the caller's */

  /* parent[i]: our end of stream i's pipe; child[i]: the child's end. */
  uv_file parent[3] = {-1, -1, -1}, child[3] = {-1, -1, -1};
  uv_stdio_container_t stdio[3];
  memset(stdio, 0, sizeof(stdio));
  int rc = 0;
  if (o->stdin_mode == ARB_PORT_IO_PIPE) {
    uv_file fds[2];
    rc = uv_pipe(fds, 0, UV_NONBLOCK_PIPE);
    if (rc == 0) {
      child[0] = fds[0];
      parent[0] = fds[1];
    }
  }
  for (int i = 1; i <= 2 && rc == 0; i++) {
    int mode = i == 1 ? o->stdout_mode : o->stderr_mode;
    if (mode != ARB_PORT_IO_PIPE) continue;
    uv_file fds[2];
    rc = uv_pipe(fds, UV_NONBLOCK_PIPE, 0);
    if (rc == 0) {
      parent[i] = fds[0];
      child[i] = fds[1];
    }
  }
  if (rc != 0) goto fail;
  for (int i = 0; i <= 2; i++) {
    int mode = i == 0 ? o->stdin_mode : i == 1 ? o->stdout_mode : o->stderr_mode;
    if (i == 2 && mode == ARB_PORT_IO_STDOUT) {
      stdio[2] = stdio[1];
      if (stdio[1].flags == UV_IGNORE) stdio[2].flags = UV_IGNORE;
      continue;
    }
    if (mode == ARB_PORT_IO_PIPE) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = child[i];
    } else if (mode == ARB_PORT_IO_INHERIT) {
      stdio[i].flags = UV_INHERIT_FD;
      stdio[i].data.fd = i;
    } else {
      stdio[i].flags = UV_IGNORE; /* libuv opens /dev/null */
    }
  }

  char **env = o->env, **owned_env = NULL;
  p->notify_fd = -1;
  if (o->notify) {
    env = open_notify(p, o->env, &owned_env, &rc);
    if (env == NULL) goto fail;
  }
  uv_process_options_t opts;
  memset(&opts, 0, sizeof(opts));
  opts.exit_cb = on_exit_cb;
  opts.file = o->file;
  opts.args = o->args;
  opts.env = env;
  opts.cwd = o->cwd;
  opts.flags = UV_PROCESS_DETACHED; /* setsid: its own process group */
  opts.stdio_count = 3;
  opts.stdio = stdio;
  cloexec_all();
  p->proc.data = p;
  rc = uv_spawn(loop, &p->proc, &opts);
  if (owned_env) {
    free(owned_env[0]); /* our NOTIFY_SOCKET= string */
    free(owned_env);
  }
  for (int i = 0; i < 3; i++) close_fd(&child[i]);
  p->refs++; /* the process handle's */
  if (rc != 0) {
    close_handle(p, (uv_handle_t *)&p->proc);
    close_notify(p);
    goto fail;
  }
  p->proc_open = 1;
  p->os_pid = p->proc.pid;
  p->live = 1;
  p->refs++;
  arb_list_insert_tail(&live_ports, &p->live_node);

  if (parent[0] >= 0 && uv_pipe_init(loop, &p->in, 0) == 0) {
    p->in.data = p;
    p->refs++;
    p->in_open = 1;
    if (uv_pipe_open(&p->in, parent[0]) == 0)
      parent[0] = -1;
    else
      arb_port_close_stdin(p);
  }
  for (int i = 1; i <= 2; i++) {
    arb_port_stream_t *s = &p->out[i - 1];
    if (parent[i] < 0 || uv_pipe_init(loop, &s->pipe, 0) != 0) continue;
    s->pipe.data = p;
    p->refs++;
    s->open = 1;
    if (uv_pipe_open(&s->pipe, parent[i]) == 0) {
      parent[i] = -1;
      uv_read_start((uv_stream_t *)&s->pipe, on_alloc, on_read);
    } else {
      close_stream(p, i - 1);
    }
  }
  for (int i = 0; i < 3; i++) close_fd(&parent[i]);
  p->owner = owner->pid;
  p->hook.fn = owner_ended;
  p->hooked = 1;
  arb_node_hook_exit(owner, &p->hook);
  *out = p;
  return 0;

fail:
  for (int i = 0; i < 3; i++) {
    close_fd(&parent[i]);
    close_fd(&child[i]);
  }
  unref(p);
  return rc;
}

void arb_port_release(arb_port_t *p) {
  p->deliver = NULL;
  unref(p);
}

/* }====================================================================== */

/* {======================================================================
** Stdin and signals
** ======================================================================*/

typedef struct write_req_s {
  uv_write_t req;
  arb_port_t *p;
  size_t len;
  char data[];
} write_req_t;

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  arb_port_t *p = w->p;
  p->queued -= w->len;
  if (status < 0 && p->write_err == 0)
    p->write_err = status == UV_ECANCELED ? UV_EPIPE : status;
  if (p->queued <= ARB_PORT_WRITE_HIGH || status < 0) {
    arb_pid_t waiter = p->write_waiter;
    p->write_waiter = ARB_PID_NONE;
    wake(p->node, waiter);
  }
  free(w);
}

int arb_port_write(arb_port_t *p, const char *data, size_t len) {
  if (!p->in_open) return p->write_err ? p->write_err : UV_EPIPE;
  if (p->write_err) return p->write_err;
  write_req_t *w = malloc(sizeof(*w) + len);
  if (w == NULL) return UV_ENOMEM;
  memcpy(w->data, data, len);
  w->p = p;
  w->len = len;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
  int rc = uv_write(&w->req, (uv_stream_t *)&p->in, &b, 1, on_write);
  if (rc != 0) {
    free(w);
    return rc;
  }
  p->queued += len;
  return 0;
}

static void on_stdin_shutdown(uv_shutdown_t *req, int status) {
  arb_port_t *p = req->data;
  (void)status;
  free(req);
  close_handle(p, (uv_handle_t *)&p->in);
}

void arb_port_close_stdin(arb_port_t *p) {
  if (!p->in_open) return;
  p->in_open = 0;
  if (p->queued > 0) {
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req) {
      req->data = p;
      if (uv_shutdown(req, (uv_stream_t *)&p->in, on_stdin_shutdown) == 0)
        return;
      free(req);
    }
  }
  close_handle(p, (uv_handle_t *)&p->in);
}

void arb_port_close_output(arb_port_t *p) {
  for (int i = 0; i < 2; i++) {
    if (!p->out[i].open) continue;
    frame(p, i, 1);
    close_stream(p, i);
  }
}

int arb_port_signal(arb_port_t *p, int signum) {
  if (!group_alive(p)) return UV_ESRCH;
  if (kill(-p->os_pid, signum) == 0) return 0;
  return -errno;
}

/* }====================================================================== */

/* {======================================================================
** The host's end
** ======================================================================*/

#define MAX_CHILDREN 4096

/* Signals every live group and every child the host adopted; returns
** whether anything was left to signal. */
static int signal_everything(int signum, int only_unsignalled) {
  int left = 0;
  arb_list_t *n = live_ports.next;
  while (n != &live_ports) {
    arb_port_t *p = arb_container_of(n, arb_port_t, live_node);
    n = n->next;
    if (!group_alive(p)) {
      unlive(p);
      continue;
    }
    left = 1;
    if (!only_unsignalled || !p->term_sent) kill(-p->os_pid, signum);
    p->term_sent = 1;
  }
  static pid_t kids[MAX_CHILDREN];
  int nk = arb_reaper_children(kids, MAX_CHILDREN);
  if (nk > MAX_CHILDREN) nk = MAX_CHILDREN;
  for (int i = 0; i < nk; i++) {
    left = 1;
    kill(kids[i], signum);
  }
  return left;
}

static void pause_ms(int ms) {
  struct timespec ts = {0, (long)ms * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t now_ms(void) { return uv_hrtime() / 1000000u; }

void arb_port_end_all(uv_loop_t *loop, int grace_ms) {
  /* SIGTERM to what has not been asked to stop yet, then wait (the loop
  ** delivers libuv's exits) until nothing is left or the grace is over. */
  uint64_t deadline = now_ms() + (uint64_t)grace_ms;
  int left = signal_everything(SIGTERM, 1);
  while (left && now_ms() < deadline) {
    uv_run(loop, UV_RUN_NOWAIT);
    arb_reaper_scan();
    left = signal_everything(0, 0);
    if (left) pause_ms(2);
  }
  /* Then SIGKILL, until nothing is left (bounded: a process stuck in the
  ** kernel cannot hold the host forever). */
  deadline = now_ms() + 2000;
  while (left && now_ms() < deadline) {
    signal_everything(SIGKILL, 0);
    uv_run(loop, UV_RUN_NOWAIT);
    arb_reaper_scan();
    left = signal_everything(0, 0);
    if (left) pause_ms(2);
  }
  /* Close what is left of every port; the loop's last turns run the
  ** close callbacks. */
  while (!arb_list_empty(&live_ports)) {
    arb_port_t *p = arb_container_of(live_ports.next, arb_port_t, live_node);
    p->refs++;
    unlive(p);
    if (p->proc_open) {
      p->proc_open = 0;
      close_handle(p, (uv_handle_t *)&p->proc);
    }
    close_stream(p, 0);
    close_stream(p, 1);
    close_notify(p);
    arb_port_close_stdin(p);
    unref(p);
  }
  if (notify_dir[0]) {
    rmdir(notify_dir);
    notify_dir[0] = '\0';
  }
}
