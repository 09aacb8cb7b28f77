/*
** lintrospect.h: arbor.core's functions for looking at processes
** (lintrospect.c), listed in lservice.c's arbor.core functions.
*/
#ifndef ARB_BIND_LINTROSPECT_H
#define ARB_BIND_LINTROSPECT_H

#include "larb.h"

/* The registry's table of functions whose frames carry a crash report's
** context (see arbor.core.crash_frame); llogger.c reads it. */
#define LARB_CRASH_FRAMES "arbor.crash_frames"

/* arbor.core.crash_frame(fn) */
int larb_introspect_crash_frame(lua_State *L);

/* arbor.core.procs() and arbor.core.proc_info(pid) */
int larb_introspect_procs(lua_State *L);
int larb_introspect_proc_info(lua_State *L);

#endif
