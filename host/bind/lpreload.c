/*
** lpreload.c: the built-in modules, as linit.c lists Lua's libraries.
**
** Every module the binary carries is put in package.preload, so
** `require` loads it on first use.  Two plain tables say what exists:
** modules written in C alone, and embedded Lua modules that have a C
** half.  An embedded module with a C half gets the C opener's table as
** its chunk's second argument and adds its Lua functions to it, so each
** public function has one home in package.loaded and errors name it as
** users call it.  Adding a module is one line in one of the tables.
**
** Must not depend on: the scheduler (lsched.c) or the host's setup
** (lhost.c); openers run when a module is first required.
*/
#include <string.h>

#include "ldist.h"
#include "lfs.h"
#include "lhost.h"
#include "lnet.h"
#include "lnotify.h"
#include "lport.h"

/* Modules written in C alone, preloaded under their names. */
static const luaL_Reg c_modules[] = {
    {"arbor.core", larb_open_core},
    {"arbor.core.sup", luaopen_arbor_core_sup},
    {"arbor.notify", larb_open_notify},
    {"logger", larb_open_logger},
    {"fs", larb_open_fs},
    {"net", larb_open_net},
    {"port", larb_open_port},
    {NULL, NULL}};

/* Embedded Lua modules whose table a C opener starts. */
static const luaL_Reg c_halves[] = {
    {"process", larb_open_process},
    {"chip", larb_open_chip},
    {"dist", larb_open_dist},
    {NULL, NULL}};

static lua_CFunction c_half_of(const char *name) {
  for (const luaL_Reg *r = c_halves; r->name; r++)
    if (strcmp(r->name, name) == 0) return r->func;
  return NULL;
}

/* package.preload's loader of an embedded module: upvalue 1 is its
** larb_embedded_t, upvalue 2 its C half or nil. */
static int load_embedded(lua_State *L) {
  const larb_embedded_t *m = lua_touserdata(L, lua_upvalueindex(1));
  lua_CFunction open_c = lua_tocfunction(L, lua_upvalueindex(2));
  if (luaL_loadbuffer(L, (const char *)m->data, m->size, m->chunkname))
    return lua_error(L);
  lua_pushstring(L, m->name);
  if (open_c) {
    open_c(L);
    lua_call(L, 2, 1);
  } else {
    lua_call(L, 1, 1);
  }
  return 1;
}

void larb_preload_modules(lua_State *L) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  luaL_setfuncs(L, c_modules, 0);
  for (const larb_embedded_t *m = larb_embedded; m->name; m++) {
    lua_pushlightuserdata(L, (void *)m);
    lua_CFunction open_c = c_half_of(m->name);
    if (open_c)
      lua_pushcfunction(L, open_c);
    else
      lua_pushnil(L);
    lua_pushcclosure(L, load_embedded, 2);
    lua_setfield(L, -2, m->name);
  }
  lua_pop(L, 1);
}
