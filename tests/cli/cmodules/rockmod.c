/*
** rockmod.c: a Lua C module built the way LuaRocks builds a C rock
** (gcc -shared -fPIC against the Lua 5.4 headers, not linked to liblua),
** compiled at test time by test_cmodules.sh.  It calls into a spread of
** the API (lua_*, luaL_* buffers, references, userdata with a metatable)
** so that a symbol the arbor binary fails to export shows up as a load
** error naming it.
*/
#include <lauxlib.h>
#include <lua.h>

/* rockmod.join(sep, ...): the arguments' texts joined by sep. */
static int join(lua_State *L) {
  size_t seplen;
  const char *sep = luaL_checklstring(L, 1, &seplen);
  int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 2; i <= n; i++) {
    luaL_tolstring(L, i, NULL);
    luaL_addvalue(&b);
    if (i < n) luaL_addlstring(&b, sep, seplen);
  }
  luaL_pushresult(&b);
  return 1;
}

/* rockmod.counter(start): a userdata whose :next() counts up. */
static int counter_next(lua_State *L) {
  lua_Integer *c = luaL_checkudata(L, 1, "rockmod.Counter");
  lua_pushinteger(L, ++*c);
  return 1;
}

static int counter(lua_State *L) {
  lua_Integer start = luaL_optinteger(L, 1, 0);
  lua_Integer *c = lua_newuserdatauv(L, sizeof(*c), 0);
  *c = start;
  luaL_setmetatable(L, "rockmod.Counter");
  return 1;
}

/* rockmod.roundtrip(v): v stored in the registry and fetched back. */
static int roundtrip(lua_State *L) {
  lua_settop(L, 1);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
  luaL_unref(L, LUA_REGISTRYINDEX, ref);
  return 1;
}

int luaopen_rockmod(lua_State *L) {
  static const luaL_Reg counter_methods[] = {{"next", counter_next},
                                             {NULL, NULL}};
  static const luaL_Reg funcs[] = {{"join", join},
                                   {"counter", counter},
                                   {"roundtrip", roundtrip},
                                   {NULL, NULL}};
  luaL_newmetatable(L, "rockmod.Counter");
  luaL_newlib(L, counter_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, funcs);
  lua_pushliteral(L, LUA_VERSION);
  lua_setfield(L, -2, "lua_version");
  return 1;
}
