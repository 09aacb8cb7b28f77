/*
** ldist.h: the `dist` module (ldist.c): arbor as a hidden Erlang node.
**
** Built in both builds: without erl_interface (ARBOR_HAVE_DIST unset)
** `require "dist"` raises a clear error and the hooks below do only
** what the plain host did.
*/
#ifndef ARB_BIND_LDIST_H
#define ARB_BIND_LDIST_H

#include <lua.h>

#include "node.h"

/* Opens the C half of `dist`; lua/dist.lua completes it. */
int larb_open_dist(lua_State *L);

/* process.monitor's target: the pid at idx, or for a BEAM pid the arbor
** pid of the proxy that stands for it (started on first use). */
arb_pid_t larb_dist_monitor_target(lua_State *L, int idx);

/* chip.register stored subject (at sub_idx) in group (at group_idx) of
** the registry whose handle is at reg_idx: a registry mirrored into a
** pg scope tells the scope. */
void larb_dist_chip_registered(lua_State *L, int reg_idx, int group_idx,
                               int sub_idx);

#endif
