/*
** lfs.c: the `fs` module: files without blocking the host.
**
** Each call hands one job to host/rt/fs.c (libuv's thread pool; a FIFO's
** or a terminal's reads and writes wait on the loop) and blocks only the
** calling process, the way process.receive does: the
** process waits (arb_node_wait, no timeout) and yields; the job's
** completion wakes it and the continuation pushes the result.  The
** operation pointer travels in the continuation context.  If the process
** ends meanwhile, fs.c's exit hook abandons the job, which then frees
** itself.
**
** A file handle (fs.open) is a userdata pointing at an arb_fs_file_t
** owned by the opening process: only it may use the handle, and its
** descriptor is closed when that process ends, whatever the reason.
**
** A memory error while pushing a result (a huge read) leaves the
** operation hooked to the process: it is freed when the process ends.
**
** Every expected failure is larb_fail's `nil, err`: err.kind is the
** POSIX name in lower case ("enoent", "eacces"), or "closed" for a closed
** file; the message names the operation, the path and the cause ("open
** /x/y: no such file or directory"), and err.path holds the path (err.to
** too for rename).  A file handle remembers its path (its user value)
** for its own failures.
*/
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "larb.h"
#include "lfs.h"

#define LFS_FILE "arbor.File"

typedef struct lfs_handle_s {
  arb_fs_file_t *file; /* NULL once closed */
} lfs_handle_t;

static int fs_inited;

static const char *op_name(int kind) {
  static const char *const names[] = {
      "read", "write", "open", "stat", "list", "mkdir",
      "remove", "rename", "file:read", "file:write", "file:sync", "file:close"};
  return names[kind];
}

/* The continuation: the operation in kctx either has completed (push its
** results) or the wake was for something else (wait again). */
static int op_k(lua_State *L, int status, lua_KContext kctx);

static int await(lua_State *L, arb_fs_op_t *op) {
  larb_ctx_t *ctx = larb_ctx(L);
  arb_proc_t *p = larb_self(L);
  if (arb_node_wait(ctx->node, p, arb_rt_now(ctx->rt), -1))
    return luaL_error(L, "out of memory");
  return larb_yield(L, (lua_KContext)op, op_k);
}

static int push_result(lua_State *L, arb_fs_op_t *op) {
  if (op->err)
    return larb_fail_path(L, op->err, op_name(op->kind), op->path,
                   op->kind == ARB_FS_RENAME ? op->path2 : NULL);
  switch ((arb_fs_kind_t)op->kind) {
    case ARB_FS_READ:
      lua_pushlstring(L, op->data, op->len);
      return 1;
    case ARB_FS_FREAD:
      if (op->len == 0)
        lua_pushnil(L);
      else
        lua_pushlstring(L, op->data, op->len);
      return 1;
    case ARB_FS_OPEN: {
      lfs_handle_t *h = lua_newuserdatauv(L, sizeof(*h), 1);
      h->file = NULL;
      luaL_setmetatable(L, LFS_FILE);
      lua_pushstring(L, op->path); /* for the handle's failures */
      lua_setiuservalue(L, -2, 1);
      larb_ctx_t *ctx = larb_ctx(L);
      int fd = op->fd;
      op->fd = -1;
      h->file = arb_fs_file_new(&ctx->rt->loop, larb_self(L), fd);
      if (h->file == NULL) return luaL_error(L, "out of memory");
      h->file->stream = op->stream; /* read and written on the loop */
      return 1;
    }
    case ARB_FS_STAT: {
      static const char *const types[] = {"file", "directory", "link", "other"};
      lua_createtable(L, 0, 4);
      lua_pushinteger(L, op->mode);
      lua_setfield(L, -2, "mode");
      lua_pushstring(L, types[op->type]);
      lua_setfield(L, -2, "type");
      lua_pushinteger(L, (lua_Integer)op->size);
      lua_setfield(L, -2, "size");
      lua_pushinteger(L, (lua_Integer)op->mtime_ms);
      lua_setfield(L, -2, "mtime");
      return 1;
    }
    case ARB_FS_LIST: {
      lua_createtable(L, (int)op->count, 0);
      const char *s = op->data;
      for (size_t i = 0; i < op->count; i++) {
        size_t l = strlen(s);
        lua_pushlstring(L, s, l);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
        s += l + 1;
      }
      return 1;
    }
    default:
      lua_pushboolean(L, 1);
      return 1;
  }
}

static int op_k(lua_State *L, int status, lua_KContext kctx) {
  (void)status;
  arb_fs_op_t *op = (arb_fs_op_t *)kctx;
  larb_ctx_t *ctx = larb_ctx(L);
  arb_node_wait_done(ctx->node, larb_self(L));
  if (!op->done) return await(L, op);
  /* If pushing raises (memory), op stays hooked: freed at the exit. */
  lua_settop(L, 0);
  int n = push_result(L, op);
  arb_fs_op_free(op);
  return n;
}

/* Starts op for the calling process and waits for it. */
static int run(lua_State *L, arb_fs_op_t *op) {
  larb_ctx_t *ctx = larb_ctx(L);
  if (!fs_inited) {
    arb_fs_init();
    fs_inited = 1;
  }
  int rc = arb_fs_op_start(&ctx->rt->loop, ctx->node, larb_self(L), op);
  if (rc != 0) {
    larb_fail_path(L, rc, op_name(op->kind), op->path,
            op->kind == ARB_FS_RENAME ? op->path2 : NULL);
    arb_fs_op_free(op);
    return 2;
  }
  return await(L, op);
}

/* A new operation with a copy of the path at idx. */
static arb_fs_op_t *new_op(lua_State *L, arb_fs_kind_t kind, int idx) {
  size_t len;
  const char *path = idx ? luaL_checklstring(L, idx, &len) : NULL;
  if (path && strlen(path) != len)
    luaL_argerror(L, idx, "path contains a NUL byte");
  larb_self(L); /* raises outside a process */
  arb_fs_op_t *op = arb_fs_op_new(kind);
  if (op == NULL || (path && (op->path = strdup(path)) == NULL)) {
    if (op) arb_fs_op_free(op);
    luaL_error(L, "out of memory");
  }
  return op;
}

/* Copies the string at idx into op->data. */
static void set_data(lua_State *L, arb_fs_op_t *op, const char *s,
                     size_t len) {
  op->data = malloc(len ? len : 1);
  if (op->data == NULL) {
    arb_fs_op_free(op);
    luaL_error(L, "out of memory");
  }
  memcpy(op->data, s, len);
  op->len = len;
}

static int opt_flag(lua_State *L, int idx, const char *name) {
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, name);
  int on = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return on;
}

/* fs.read(path) -> string | nil, err */
static int lfs_read(lua_State *L) {
  return run(L, new_op(L, ARB_FS_READ, 1));
}

/* fs.write(path, data [, {append = true} | {atomic = true}]) */
static int lfs_write(lua_State *L) {
  luaL_checkstring(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int append = opt_flag(L, 3, "append"), atomic = opt_flag(L, 3, "atomic");
  luaL_argcheck(L, !(append && atomic), 3, "append and atomic exclude each other");
  arb_fs_op_t *op = new_op(L, ARB_FS_WRITE, 1);
  op->flags = (append ? ARB_FS_APPEND : 0) | (atomic ? ARB_FS_ATOMIC : 0);
  set_data(L, op, data, len);
  return run(L, op);
}

/* fs.open(path, mode) -> file | nil, err */
static int lfs_open(lua_State *L) {
  static const char *const modes[] = {"r", "w", "a", NULL};
  luaL_checkstring(L, 1);
  int mode = luaL_checkoption(L, 2, NULL, modes);
  arb_fs_op_t *op = new_op(L, ARB_FS_OPEN, 1);
  op->flags = mode + 1; /* ARB_FS_MODE_R, _W, _A */
  return run(L, op);
}

static int lfs_stat(lua_State *L) { return run(L, new_op(L, ARB_FS_STAT, 1)); }
static int lfs_list(lua_State *L) { return run(L, new_op(L, ARB_FS_LIST, 1)); }
static int lfs_remove(lua_State *L) {
  return run(L, new_op(L, ARB_FS_REMOVE, 1));
}

/* fs.mkdir(path [, {parents = true}]) */
static int lfs_mkdir(lua_State *L) {
  luaL_checkstring(L, 1);
  int parents = opt_flag(L, 2, "parents");
  arb_fs_op_t *op = new_op(L, ARB_FS_MKDIR, 1);
  op->flags = parents ? ARB_FS_PARENTS : 0;
  return run(L, op);
}

/* fs.rename(from, to) */
static int lfs_rename(lua_State *L) {
  size_t len;
  const char *to = luaL_checklstring(L, 2, &len);
  luaL_argcheck(L, strlen(to) == len, 2, "path contains a NUL byte");
  arb_fs_op_t *op = new_op(L, ARB_FS_RENAME, 1);
  if ((op->path2 = strdup(to)) == NULL) {
    arb_fs_op_free(op);
    return luaL_error(L, "out of memory");
  }
  return run(L, op);
}

/* {======================================================================
** File handles
** ======================================================================*/

/* The open file at 1, owned by the caller; nil, err "closed" is pushed
** (and NULL returned) for a closed one.  Raises for another owner. */
static arb_fs_file_t *check_file(lua_State *L) {
  lfs_handle_t *h = luaL_checkudata(L, 1, LFS_FILE);
  arb_proc_t *p = larb_self(L);
  if (h->file == NULL) return NULL;
  if (h->file->owner != p->pid)
    luaL_argerror(L, 1, "file is owned by another process");
  if (h->file->fd < 0) return NULL; /* the owner ended: closed */
  return h->file;
}

/* A new operation on the file at 1, with a copy of the file's path for
** its messages. */
static arb_fs_op_t *file_op(lua_State *L, arb_fs_kind_t kind,
                            arb_fs_file_t *f) {
  arb_fs_op_t *op = new_op(L, kind, 0);
  op->file = f;
  lua_getiuservalue(L, 1, 1);
  const char *path = lua_tostring(L, -1);
  if (path && (op->path = strdup(path)) == NULL) {
    arb_fs_op_free(op);
    luaL_error(L, "out of memory");
  }
  lua_pop(L, 1);
  return op;
}

/* nil, err "closed" for `what` on the closed file at 1. */
static int closed(lua_State *L, const char *what) {
  lua_getiuservalue(L, 1, 1);
  return larb_fail_path(L, UV_EOF, what, lua_tostring(L, -1), NULL);
}

/* file:read(n) -> string | nil (end of file) | nil, err */
static int file_read(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n > 0, 2, "count must be positive");
  arb_fs_file_t *f = check_file(L);
  if (f == NULL) return closed(L, "file:read");
  arb_fs_op_t *op = file_op(L, ARB_FS_FREAD, f);
  op->len = (size_t)n;
  return run(L, op);
}

/* file:write(data) -> true | nil, err */
static int file_write(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  arb_fs_file_t *f = check_file(L);
  if (f == NULL) return closed(L, "file:write");
  arb_fs_op_t *op = file_op(L, ARB_FS_FWRITE, f);
  set_data(L, op, data, len);
  return run(L, op);
}

/* file:sync() -> true | nil, err */
static int file_sync(lua_State *L) {
  arb_fs_file_t *f = check_file(L);
  if (f == NULL) return closed(L, "file:sync");
  return run(L, file_op(L, ARB_FS_FSYNC, f));
}

/* file:close() -> true | nil, err; closing a closed file is a no-op. */
static int file_close(lua_State *L) {
  arb_fs_file_t *f = check_file(L);
  lfs_handle_t *h = lua_touserdata(L, 1);
  if (f == NULL) {
    lua_pushboolean(L, 1);
    return 1;
  }
  arb_fs_op_t *op = file_op(L, ARB_FS_FCLOSE, NULL);
  op->fd = arb_fs_file_take_fd(f);
  h->file = NULL;
  arb_fs_file_release(f);
  return run(L, op);
}

static int file_gc(lua_State *L) {
  lfs_handle_t *h = lua_touserdata(L, 1);
  if (h->file) {
    /* After the host's teardown the loop is gone; every owner has ended
    ** by then, so the descriptor is closed already. */
    if (larb_ctx(L)->node == NULL) h->file->loop = NULL;
    arb_fs_file_release(h->file);
    h->file = NULL;
  }
  return 0;
}

static int file_tostring(lua_State *L) {
  lfs_handle_t *h = luaL_checkudata(L, 1, LFS_FILE);
  if (h->file == NULL || h->file->fd < 0)
    lua_pushliteral(L, "File<closed>");
  else
    lua_pushfstring(L, "File<%d of <0.%d.%d>>", h->file->fd,
                    (int)arb_pid_slot(h->file->owner),
                    (int)arb_pid_gen(h->file->owner));
  return 1;
}

/* }====================================================================== */

static const luaL_Reg fs_funcs[] = {
    {"read", lfs_read},     {"write", lfs_write},   {"open", lfs_open},
    {"stat", lfs_stat},     {"list", lfs_list},     {"mkdir", lfs_mkdir},
    {"remove", lfs_remove}, {"rename", lfs_rename}, {NULL, NULL}};

static const luaL_Reg file_methods[] = {{"read", file_read},
                                        {"write", file_write},
                                        {"sync", file_sync},
                                        {"close", file_close},
                                        {NULL, NULL}};

int larb_open_fs(lua_State *L) {
  if (luaL_newmetatable(L, LFS_FILE)) {
    luaL_newlib(L, file_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, file_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, file_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  luaL_newlib(L, fs_funcs);
  return 1;
}
