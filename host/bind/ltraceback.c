/*
** ltraceback.c: crash reports' tracebacks, cheaply.
**
** luaL_traceback names every frame by first searching package.loaded
** for the function (every module's every field, two levels deep), which
** costs about 100,000 instructions per crash here: most of a crash
** report, and more than the rest of a supervised restart.  This one
** keeps luaL_traceback's layout (the same lines, the same "skipping n
** levels" cut) but names a frame from what the calling code called it,
** as Lua's own debug info gives it ("local 'f'", "method 'm'",
** "field 'f'", "upvalue 'f'"), and a global as "function 'name'" (what
** luaL_traceback prints for _G's functions); main chunks and anonymous
** functions read as luaL_traceback's do.  A function reached only
** through a module table is named by its field, not as 'module.field'.
**
** Owns nothing; depends on Lua's public API (lua.h, lauxlib.h) only.
*/
#include "ltraceback.h"

#include <lauxlib.h>
#include <string.h>

#define LEVELS_HEAD 10 /* frames shown from the top ... */
#define LEVELS_TAIL 11 /* ... and from the bottom of a deep stack */

/* The number of levels in co's stack (a binary search, as lauxlib's). */
static int stack_depth(lua_State *co) {
  lua_Debug ar;
  int lo = 1, hi = 1;
  while (lua_getstack(co, hi, &ar)) {
    lo = hi;
    hi *= 2;
  }
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if (lua_getstack(co, mid, &ar))
      lo = mid + 1;
    else
      hi = mid;
  }
  return hi - 1;
}

static void add_frame_name(luaL_Buffer *b, const lua_Debug *ar) {
  if (strcmp(ar->namewhat, "global") == 0 && ar->name) {
    luaL_addstring(b, "function '");
    luaL_addstring(b, ar->name);
    luaL_addchar(b, '\'');
  } else if (*ar->namewhat != '\0' && ar->name) {
    luaL_addstring(b, ar->namewhat);
    luaL_addstring(b, " '");
    luaL_addstring(b, ar->name);
    luaL_addchar(b, '\'');
  } else if (*ar->what == 'm') {
    luaL_addstring(b, "main chunk");
  } else if (*ar->what != 'C') {
    lua_pushfstring(b->L, "function <%s:%d>", ar->short_src,
                    ar->linedefined);
    luaL_addvalue(b);
  } else {
    luaL_addchar(b, '?');
  }
}

void larb_traceback(lua_State *L, lua_State *co) {
  luaL_Buffer b;
  lua_Debug ar;
  int depth = stack_depth(co);
  int skip_from = depth > LEVELS_HEAD + LEVELS_TAIL ? LEVELS_HEAD : -1;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "stack traceback:");
  for (int level = 0; lua_getstack(co, level, &ar); level++) {
    if (level == skip_from) {
      int skipped = depth - LEVELS_TAIL - LEVELS_HEAD;
      lua_pushfstring(L, "\n\t...\t(skipping %d levels)", skipped);
      luaL_addvalue(&b);
      level += skipped; /* on to the last LEVELS_TAIL levels */
      continue;
    }
    lua_getinfo(co, "Slnt", &ar);
    luaL_addstring(&b, "\n\t");
    luaL_addstring(&b, ar.short_src);
    luaL_addchar(&b, ':');
    if (ar.currentline > 0) {
      lua_pushfstring(L, "%d:", ar.currentline);
      luaL_addvalue(&b);
    }
    luaL_addstring(&b, " in ");
    add_frame_name(&b, &ar);
    if (ar.istailcall) luaL_addstring(&b, "\n\t(...tail calls...)");
  }
  luaL_pushresult(&b);
}
