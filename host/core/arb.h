/*
** arb.h: what every core module shares: the version, error codes, pids
** and exit reasons.
**
** Error codes are negative ints from err.h's ARB_ERRNO_MAP, far from
** libuv's range, so a function can pass a libuv code through unchanged.
** Pids are plain 64-bit values (slot index in the low half, the slot's
** generation in the high half): a pid kept after its process ended finds
** nothing, because the slot's generation has moved on.
**
** An exit reason is a small refcounted box: a kind the core understands
** (normal, shutdown, killed, ...) and an opaque payload that belongs to
** whoever made it (the Lua binding keeps the Lua value there).  The
** built-in reasons are static and never freed.
**
** Depends on libc only.
*/
#ifndef ARB_CORE_ARB_H
#define ARB_CORE_ARB_H

#include <stdint.h>

#define ARB_VERSION "0.1.0"

#include "err.h"

/* A process id.  0 is never a valid pid. */
typedef uint64_t arb_pid_t;
#define ARB_PID_NONE ((arb_pid_t)0)
#define arb_pid_slot(pid) ((uint32_t)((pid)&0xffffffffu))
#define arb_pid_gen(pid) ((uint32_t)((pid) >> 32))

typedef enum {
  ARB_REASON_NORMAL,   /* finished; ignored by linked non-trappers */
  ARB_REASON_SHUTDOWN, /* orderly stop ("shutdown", {shutdown = true}) */
  ARB_REASON_KILL,     /* only as a signal: untrappable, victim ends killed */
  ARB_REASON_KILLED,   /* the reason of a killed process */
  ARB_REASON_NOPROC,   /* the target did not exist */
  ARB_REASON_OTHER     /* anything else: a crash */
} arb_reason_kind_t;

typedef struct arb_reason_s {
  uint32_t refs; /* 0 marks a static reason that is never freed */
  uint8_t kind;  /* arb_reason_kind_t */
  intptr_t payload; /* owner-defined; 0 for the built-ins */
} arb_reason_t;

extern arb_reason_t arb_reason_normal;
extern arb_reason_t arb_reason_shutdown;
extern arb_reason_t arb_reason_kill;
extern arb_reason_t arb_reason_killed;
extern arb_reason_t arb_reason_noproc;

/* True for the reasons a transient child is not restarted after. */
#define arb_reason_is_clean(r) \
  ((r)->kind == ARB_REASON_NORMAL || (r)->kind == ARB_REASON_SHUTDOWN)

#endif
