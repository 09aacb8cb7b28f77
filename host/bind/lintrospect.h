/*
** lintrospect.h: arbor.core's functions for looking at processes
** (lintrospect.c), listed in lservice.c's arbor.core functions.
*/
#ifndef ARB_BIND_LINTROSPECT_H
#define ARB_BIND_LINTROSPECT_H

#include "larb.h"

/* arbor.core.procs() and arbor.core.proc_info(pid) */
int larb_introspect_procs(lua_State *L);
int larb_introspect_proc_info(lua_State *L);

#endif
