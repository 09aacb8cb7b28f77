/*
** notify.h: systemd's service notification protocol, spoken directly
** (no libsystemd): datagrams of "KEY=VALUE\n" lines to the Unix socket
** named by $NOTIFY_SOCKET, a path or, after an '@', an abstract name.
**
** It owns one datagram socket and, when $WATCHDOG_USEC is set (and
** $WATCHDOG_PID is unset or ours), a repeating uv timer that sends
** WATCHDOG=1 at half that interval.  The timer runs on the host's loop,
** so a loop that stalls stops pinging and systemd sees it.  The timer is
** unreferenced: it never keeps the loop alive by itself.
**
** Opening reads the three variables and removes them from the
** environment, so programs the host starts do not talk to systemd in its
** name.  libuv and libc only; never Lua.
*/
#ifndef ARB_RT_NOTIFY_H
#define ARB_RT_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct arb_notify_s arb_notify_t;

/* Longest STATUS= text sent; longer texts are cut (with "...").  */
#define ARB_NOTIFY_STATUS_MAX 1024

/* Opens the notifier from the environment.  Returns 0 with *out NULL when
** $NOTIFY_SOCKET is unset or empty (not under systemd); 0 with *out set
** when it is usable; -1 with a message in err (naming the variable and
** what is wrong with it) otherwise, *out NULL. */
int arb_notify_open(arb_notify_t **out, uv_loop_t *loop, char *err,
                    size_t errlen);

/* Sends text (KEY=VALUE lines) as one datagram.  Returns 0 or -errno. */
int arb_notify_send(arb_notify_t *n, const char *text);

/* Appends "STATUS=<text>\n" to buf (of size cap, holding len bytes),
** with newlines and other control characters turned into spaces and the
** text cut to ARB_NOTIFY_STATUS_MAX.  Returns the new length. */
size_t arb_notify_add_status(char *buf, size_t len, size_t cap,
                             const char *text);

/* CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC=. */
uint64_t arb_notify_monotonic_usec(void);

/* The watchdog interval systemd asked for (µs), 0 when none. */
uint64_t arb_notify_watchdog_usec(const arb_notify_t *n);
/* How many WATCHDOG=1 pings have been sent. */
uint64_t arb_notify_watchdog_pings(const arb_notify_t *n);

/* The socket's name as given ($NOTIFY_SOCKET), for messages. */
const char *arb_notify_name(const arb_notify_t *n);

/* Stops the watchdog and closes the socket; n is freed once the loop has
** run the timer's close callback (arb_rt_close runs it). */
void arb_notify_close(arb_notify_t *n);

#endif
