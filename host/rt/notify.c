/*
** notify.c: systemd's notification protocol (see notify.h).
**
** A datagram is sent whole or not at all, so one sendto per message is
** the entire protocol.  Failures are returned, never fatal: a host whose
** supervisor manager went away keeps running its tree.
*/
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct arb_notify_s {
  uv_timer_t watchdog;
  int fd;
  struct sockaddr_un addr;
  socklen_t addrlen;
  uint64_t watchdog_usec;
  uint64_t pings;
  char name[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
};

uint64_t arb_notify_monotonic_usec(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int arb_notify_send(arb_notify_t *n, const char *text) {
  ssize_t sent;
  do {
    sent = sendto(n->fd, text, strlen(text), MSG_NOSIGNAL,
                  (const struct sockaddr *)&n->addr, n->addrlen);
  } while (sent < 0 && errno == EINTR);
  return sent < 0 ? -errno : 0;
}

size_t arb_notify_add_status(char *buf, size_t len, size_t cap,
                             const char *text) {
  static const char key[] = "STATUS=";
  if (len + sizeof(key) + 4 >= cap) return len;
  memcpy(buf + len, key, sizeof(key) - 1);
  len += sizeof(key) - 1;
  size_t room = cap - len - 2; /* the newline and the NUL */
  if (room > ARB_NOTIFY_STATUS_MAX) room = ARB_NOTIFY_STATUS_MAX;
  size_t tlen = strlen(text);
  int cut = tlen > room;
  if (cut) tlen = room - 3;
  for (size_t i = 0; i < tlen; i++) {
    unsigned char c = (unsigned char)text[i];
    buf[len++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
  }
  if (cut) {
    memcpy(buf + len, "...", 3);
    len += 3;
  }
  buf[len++] = '\n';
  buf[len] = '\0';
  return len;
}

static void on_watchdog(uv_timer_t *h) {
  arb_notify_t *n = h->data;
  if (arb_notify_send(n, "WATCHDOG=1") == 0) n->pings++;
}

/* A decimal number that fills text (no sign, no spaces).  0 if not. */
static int parse_u64(const char *text, uint64_t *out) {
  if (text == NULL || *text < '0' || *text > '9') return 0;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (errno || *end != '\0') return 0;
  *out = v;
  return 1;
}

/* The watchdog settings, when they are meant for this process. */
static int watchdog_interval(uint64_t *usec, char *err, size_t errlen) {
  const char *text = getenv("WATCHDOG_USEC");
  const char *pid_text = getenv("WATCHDOG_PID");
  *usec = 0;
  if (text == NULL || *text == '\0') return 0;
  uint64_t v, pid;
  if (!parse_u64(text, &v) || v == 0) {
    snprintf(err, errlen, "WATCHDOG_USEC='%s' is not a positive whole "
             "number of microseconds", text);
    return -1;
  }
  if (pid_text && *pid_text) {
    if (!parse_u64(pid_text, &pid)) {
      snprintf(err, errlen, "WATCHDOG_PID='%s' is not a process id",
               pid_text);
      return -1;
    }
    if (pid != (uint64_t)getpid()) return 0; /* meant for another process */
  }
  *usec = v;
  return 0;
}

int arb_notify_open(arb_notify_t **out, uv_loop_t *loop, char *err,
                    size_t errlen) {
  *out = NULL;
  const char *name = getenv("NOTIFY_SOCKET");
  if (name == NULL || *name == '\0') return 0;
  arb_notify_t *n = calloc(1, sizeof(*n));
  if (n == NULL) {
    snprintf(err, errlen, "NOTIFY_SOCKET: not enough memory");
    return -1;
  }
  n->fd = -1;
  size_t len = strlen(name);
  n->addr.sun_family = AF_UNIX;
  if (name[0] != '/' && name[0] != '@') {
    snprintf(err, errlen, "NOTIFY_SOCKET='%s' is neither an absolute path "
             "nor an abstract '@name'", name);
    goto fail;
  }
  if (len >= sizeof(n->addr.sun_path) || len < 2) {
    snprintf(err, errlen, "NOTIFY_SOCKET='%s' does not fit a socket "
             "address (1 to %zu bytes after the first)", name,
             sizeof(n->addr.sun_path) - 2);
    goto fail;
  }
  memcpy(n->addr.sun_path, name, len);
  n->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  if (name[0] == '@') {
    n->addr.sun_path[0] = '\0'; /* abstract: no terminating NUL counted */
  } else {
    n->addrlen += 1;
  }
  snprintf(n->name, sizeof(n->name), "%s", name);
  if (watchdog_interval(&n->watchdog_usec, err, errlen) != 0) goto fail;
  n->fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (n->fd < 0 || fcntl(n->fd, F_SETFD, FD_CLOEXEC) != 0) {
    snprintf(err, errlen, "NOTIFY_SOCKET: cannot make a socket: %s",
             strerror(errno));
    goto fail;
  }
  uv_timer_init(loop, &n->watchdog);
  n->watchdog.data = n;
  if (n->watchdog_usec) {
    uint64_t ms = n->watchdog_usec / 2000u;
    if (ms == 0) ms = 1;
    uv_timer_start(&n->watchdog, on_watchdog, ms, ms);
    uv_unref((uv_handle_t *)&n->watchdog);
  }
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  *out = n;
  return 0;
fail:
  if (n->fd >= 0) close(n->fd);
  free(n);
  return -1;
}

uint64_t arb_notify_watchdog_usec(const arb_notify_t *n) {
  return n->watchdog_usec;
}

uint64_t arb_notify_watchdog_pings(const arb_notify_t *n) { return n->pings; }

const char *arb_notify_name(const arb_notify_t *n) { return n->name; }

static void on_closed(uv_handle_t *h) { free(h->data); }

void arb_notify_close(arb_notify_t *n) {
  if (n == NULL) return;
  uv_timer_stop(&n->watchdog);
  close(n->fd);
  n->fd = -1;
  uv_close((uv_handle_t *)&n->watchdog, on_closed);
}
