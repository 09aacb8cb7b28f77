/*
** logfile.h: where the host's log lines go: stderr, or a file opened for
** appending that can be reopened (logrotate moves the file away and sends
** SIGUSR1; the next line goes to a new file at the same path).
**
** It owns one file descriptor, the path and a write buffer.  Lines are
** gathered in the buffer and written with one write(2) when the loop ends
** a turn (arb_logfile_flush_pending, called by loop.c before it may
** block), when the buffer passes ARB_LOGFILE_BOUND, before a reopen, at
** close and at exit(3) (an atexit handler: os.exit from Lua).  Nothing is
** lost or reordered by a short write or EAGAIN (a non-blocking pipe is
** waited on with poll); a write error drops what could not be written and
** never stops the host.
**
** It knows nothing about events or formats (host/bind/llogger.c builds
** the lines) and nothing about Lua or libuv.  Everything here runs on the
** host's one thread.
*/
#ifndef ARB_RT_LOGFILE_H
#define ARB_RT_LOGFILE_H

#include <stddef.h>

/* Buffered bytes that make a write happen at once rather than at the end
** of the loop's turn. */
#define ARB_LOGFILE_BOUND (64 * 1024)

typedef struct arb_logfile_s {
  char *path; /* NULL: stderr */
  int fd;
  char *buf; /* ARB_LOGFILE_BOUND bytes once the first line comes; NULL */
  size_t len;
  unsigned long dropped; /* bytes a write error threw away */
} arb_logfile_t;

/* Opens path for appending (created 0644 if missing), or stderr when path
** is NULL.  Returns 0, or -1 with a message in err. */
int arb_logfile_open(arb_logfile_t *f, const char *path, char *err,
                     size_t errlen);
/* Opens the path again and switches to the new file (what was buffered
** goes to the old one first); the old one stays in use if the path cannot
** be opened.  Returns 0, or -1 with err. */
int arb_logfile_reopen(arb_logfile_t *f, char *err, size_t errlen);
/* Adds data to the buffer (lines from one event stay together in one
** write); writes at once when the buffer would pass ARB_LOGFILE_BOUND.  A
** failure is dropped: logging never stops the host. */
void arb_logfile_write(arb_logfile_t *f, const char *data, size_t len);
/* Writes out what is buffered. */
void arb_logfile_flush(arb_logfile_t *f);
/* Writes out the buffer of the open log, if any (the loop's per-turn
** point; cheap when nothing is buffered). */
void arb_logfile_flush_pending(void);
/* Flushes and closes the file (not stderr). */
void arb_logfile_close(arb_logfile_t *f);

#endif
