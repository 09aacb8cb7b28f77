/*
** err.h: the one map of arbor's error codes.
**
** Every fallible function in host/core (and the rt layer's own failures)
** returns 0 or a negative code.  Our codes come from ARB_ERRNO_MAP and
** sit from -30000 down, far from libuv's range (negated errno values and
** -3000..-4095), so a function can pass a libuv code through unchanged
** and a binding can tell the two apart.  Each code has:
**   - a name ("ENOPROC"), for logs and tests;
**   - a kind ("noproc"), the `kind` field Lua code sees in `nil, err`;
**     the kinds are part of the Lua API contract and never change;
**   - a message ("no such process"), the text of the failure.
** The supervisor engine's codes (sup.h) are in the same map.
**
** Depends on libc only; nothing here allocates.
*/
#ifndef ARB_CORE_ERR_H
#define ARB_CORE_ERR_H

/* XX(name, code, kind, message) */
#define ARB_ERRNO_MAP(XX)                                                  \
  XX(ENOMEM, -30001, "enomem", "out of memory")                            \
  XX(ENOPROC, -30002, "noproc", "no such process")                         \
  XX(EINVAL, -30003, "einval", "invalid argument")                         \
  XX(ENOTOWNER, -30004, "not_owner", "subject is owned by another process") \
  XX(ENOTFOUND, -30005, "not_found", "not found")                          \
  XX(EEXIST, -30006, "name_taken", "name already taken")                   \
  XX(ENOTRUNNING, -30007, "not_running", "not running")                    \
  XX(ERUNNING, -30101, "running", "child is running")                      \
  XX(ERESTARTING, -30102, "restarting", "child is restarting")             \
  XX(ESTOPPED, -30103, "stopped", "child is not running")                  \
  XX(EBUSY, -30106, "busy", "a plan is in progress")                       \
  XX(ESTEP, -30107, "bad_step", "report does not match the plan's next step") \
  XX(ECORRUPT, -30108, "corrupt", "supervisor invariant violated")

enum {
#define XX(name, code, kind, msg) ARB_##name = code,
  ARB_ERRNO_MAP(XX)
#undef XX
};

/* True for a code from ARB_ERRNO_MAP (not libuv's, not 0). */
int arb_err_is_ours(int code);

/* Returns a static message for a code of ours: "success" for 0,
** "unknown error" for anything else. */
const char *arb_strerror(int code);

/* Returns the code's name without the ARB_ prefix ("ENOPROC"); "OK" for
** 0, "EUNKNOWN" for a code not in the map. */
const char *arb_err_name(int code);

/* Returns the code's kind ("noproc"), or NULL for a code not in the map
** (the caller names a libuv code itself). */
const char *arb_strkind(int code);

#endif
