/*
** notify_send.c: a test helper that speaks systemd's notification
** protocol, so tests of readiness need no Python.
**
**   notify_send [-w FIFO] MESSAGE... [-- CMD ARG...]
**
** Sends each MESSAGE (e.g. "STATUS=warming up", "READY=1") as one
** datagram to the Unix socket named by $NOTIFY_SOCKET (a path, or an
** abstract name after '@'), in order; with -w it first waits until FIFO
** can be opened for reading and has been written to (a test's go
** signal).  Then it runs CMD (execvp) or, without one, exits 0.  Exits 2
** when $NOTIFY_SOCKET is unset or a send fails.
*/
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int send_one(int fd, const struct sockaddr_un *sa, socklen_t len,
                    const char *msg) {
  if (sendto(fd, msg, strlen(msg), 0, (const struct sockaddr *)sa, len) < 0) {
    perror("notify_send: sendto");
    return -1;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *name = getenv("NOTIFY_SOCKET");
  if (name == NULL || name[0] == '\0') {
    fprintf(stderr, "notify_send: NOTIFY_SOCKET is not set\n");
    return 2;
  }
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  size_t n = strlen(name);
  if (n >= sizeof(sa.sun_path)) {
    fprintf(stderr, "notify_send: NOTIFY_SOCKET is too long\n");
    return 2;
  }
  memcpy(sa.sun_path, name, n);
  if (name[0] == '@') sa.sun_path[0] = '\0';
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n +
                              (name[0] == '@' ? 0 : 1));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("notify_send: socket");
    return 2;
  }
  int i = 1;
  if (i + 1 < argc && strcmp(argv[i], "-w") == 0) {
    int ff = open(argv[i + 1], O_RDONLY);
    char c;
    if (ff >= 0) {
      if (read(ff, &c, 1) < 0) perror("notify_send: read");
      close(ff);
    }
    i += 2;
  }
  for (; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (send_one(fd, &sa, len, argv[i]) != 0) return 2;
  close(fd);
  if (i < argc && i + 1 < argc) {
    execvp(argv[i + 1], argv + i + 1);
    perror("notify_send: exec");
    return 127;
  }
  return 0;
}
