/*
** logfile.h: where the host's log lines go: stderr, or a file opened for
** appending that can be reopened (logrotate moves the file away and sends
** SIGUSR1; the next line goes to a new file at the same path).
**
** It owns one file descriptor and the path.  It knows nothing about
** events or formats (host/bind/llogger.c builds the lines) and nothing
** about Lua.  Everything here runs on the host's one thread.
*/
#ifndef ARB_RT_LOGFILE_H
#define ARB_RT_LOGFILE_H

#include <stddef.h>

typedef struct arb_logfile_s {
  char *path; /* NULL: stderr */
  int fd;
} arb_logfile_t;

/* Opens path for appending (created 0644 if missing), or stderr when path
** is NULL.  Returns 0, or -1 with a message in err. */
int arb_logfile_open(arb_logfile_t *f, const char *path, char *err,
                     size_t errlen);
/* Opens the path again and switches to the new file; the old one stays in
** use if the path cannot be opened.  Returns 0, or -1 with err. */
int arb_logfile_reopen(arb_logfile_t *f, char *err, size_t errlen);
/* Writes all of data with one write where the system allows (lines from
** one event stay together); a failure is dropped: logging never stops
** the host. */
void arb_logfile_write(arb_logfile_t *f, const char *data, size_t len);
/* Closes the file (not stderr). */
void arb_logfile_close(arb_logfile_t *f);

#endif
