/*
** registry.h: chip's subject registry: group keys mapped to ordered member
** lists of subjects, with delisting synchronous with a member's death.
**
** A registry belongs to one process (chip's registry process).  It owns
** its groups, its entries and one owner record per process that has
** entries in it; each owner record holds an exit hook on that process, so
** when a process ends the node's exit path removes all of its entries
** from all groups, in O(its entries), before anything else runs.  An
** exit hook on the registry's own process destroys the registry when that
** process ends.  Entries hold an opaque value (the binding's reference to
** the subject's userdata) released through ops->release when the entry
** goes.  A names table maps names to live registries.
**
** Depends on libc, alloc.h, list.h and node.h; no Lua, no libuv, no
** clock, no printing.
*/
#ifndef ARB_CORE_REGISTRY_H
#define ARB_CORE_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "arb.h"
#include "list.h"
#include "node.h"

typedef struct arb_registry_s arb_registry_t;
typedef struct arb_names_s arb_names_t;

/* Kinds of group key.  A float with an exact integer value is the same
** key as that integer (as Lua table keys are); NaN is not a valid key. */
typedef enum {
  ARB_REGISTRY_KEY_STR,
  ARB_REGISTRY_KEY_INT,
  ARB_REGISTRY_KEY_FLOAT,
  ARB_REGISTRY_KEY_BOOL
} arb_registry_key_kind_t;

/* A group key as passed in and handed back.  Only the fields of its kind
** matter: i for INT and BOOL (0 or 1), f for FLOAT, str/len for STR (any
** bytes, not necessarily NUL-terminated; the registry copies them). */
typedef struct arb_registry_key_s {
  int kind; /* arb_registry_key_kind_t */
  int64_t i;
  double f;
  const char *str;
  size_t len;
} arb_registry_key_t;

/* Builds a key of each kind; nothing is copied until a register. */
static inline arb_registry_key_t arb_registry_key_str(const char *s,
                                                      size_t len) {
  arb_registry_key_t k = {ARB_REGISTRY_KEY_STR, 0, 0.0, s, len};
  return k;
}
static inline arb_registry_key_t arb_registry_key_int(int64_t i) {
  arb_registry_key_t k = {ARB_REGISTRY_KEY_INT, i, 0.0, NULL, 0};
  return k;
}
static inline arb_registry_key_t arb_registry_key_float(double f) {
  arb_registry_key_t k = {ARB_REGISTRY_KEY_FLOAT, 0, f, NULL, 0};
  return k;
}
static inline arb_registry_key_t arb_registry_key_bool(int b) {
  arb_registry_key_t k = {ARB_REGISTRY_KEY_BOOL, b != 0, 0.0, NULL, 0};
  return k;
}

/* What the embedder provides; ops are copied, both callbacks optional.
** Neither callback may call into the registry it is called for. */
typedef struct arb_registry_ops_s {
  /* The registry no longer holds value (its entry was removed, or a
  ** register did not store it). */
  void (*release)(void *ud, intptr_t value);
  /* reg is being destroyed, by arb_registry_destroy or because its
  ** process ended: every value has been released, reg is freed right
  ** after this returns.  Called exactly once per registry. */
  void (*destroyed)(void *ud, arb_registry_t *reg);
} arb_registry_ops_t;

/* Positive results of arb_registry_register (errors are negative). */
enum {
  ARB_REGISTRY_ADDED = 0,   /* a new entry was stored */
  ARB_REGISTRY_PRESENT = 1, /* the (group, subject) pair was already there */
  ARB_REGISTRY_DEAD = 2     /* the subject's owner has ended: nothing kept */
};

/* A cursor over a group's members or over the groups.  It holds nothing;
** the registry must not change while one is in use. */
typedef struct arb_registry_iter_s {
  const arb_list_t *head, *pos;
} arb_registry_iter_t;

/* {======================================================================
** Registries
** ======================================================================*/

/* Creates an empty registry owned by the live process owner and hooks
** owner's exit so the registry is destroyed when owner ends.  ops is
** copied; ud is passed to its callbacks.  Returns the registry, or NULL
** when out of memory or when owner has ended or is ending. */
arb_registry_t *arb_registry_new(arb_node_t *node, arb_proc_t *owner,
                                 const arb_registry_ops_t *ops, void *ud);

/* Destroys reg now: detaches every exit hook it holds, releases every
** value, frees its name, calls ops->destroyed and frees reg. */
void arb_registry_destroy(arb_registry_t *reg);

/* Returns the pid of the process that owns reg. */
arb_pid_t arb_registry_pid(const arb_registry_t *reg);

/* Adds sub at the end of group key's members.  Always consumes value:
** unless the result is ARB_REGISTRY_ADDED, ops->release(value) is called
** before returning.  Returns ARB_REGISTRY_ADDED, ARB_REGISTRY_PRESENT
** (the pair is stored once; the order is the first registration's),
** ARB_REGISTRY_DEAD (sub's owner has ended or is ending), ARB_EINVAL (a
** NaN or malformed key) or ARB_ENOMEM (reg unchanged). */
int arb_registry_register(arb_registry_t *reg, const arb_registry_key_t *key,
                          arb_subject_t *sub, intptr_t value);

/* Points it at the members of group key, in registration order, and
** returns their number (0 for an unknown or invalid key). */
uint32_t arb_registry_members(const arb_registry_t *reg,
                              const arb_registry_key_t *key,
                              arb_registry_iter_t *it);

/* Takes the next member: stores its subject and value (either pointer
** may be NULL) and returns 1, or returns 0 at the end. */
int arb_registry_member_next(arb_registry_iter_t *it, arb_subject_t **sub,
                             intptr_t *value);

/* Points it at the groups that have members, oldest group first, and
** returns their number. */
uint32_t arb_registry_groups(const arb_registry_t *reg,
                             arb_registry_iter_t *it);

/* Takes the next group: stores its key (normalised: 1.0 comes back as the
** integer 1; key->str points into reg, valid while the group has
** members, and is NUL-terminated) and returns 1, or returns 0 at the end.
** count, if not NULL, gets the group's member count. */
int arb_registry_group_next(arb_registry_iter_t *it, arb_registry_key_t *key,
                            uint32_t *count);

/* Returns the number of members of group key (0 if unknown). */
uint32_t arb_registry_count(const arb_registry_t *reg,
                            const arb_registry_key_t *key);

/* Returns group key's change stamp: a number that changes whenever the
** group's member list does (a register that adds, a delisting, a
** member's death) and never otherwise, or 0 for an unknown or invalid
** key.  Stamps come from one counter per registry that only grows, so a
** group that empties (and is freed) and is later created again never gets
** a stamp it had before: a caller may cache what it derived from a group
** and trust it while the stamp it saw is still the group's. */
uint64_t arb_registry_stamp(const arb_registry_t *reg,
                            const arb_registry_key_t *key);

/* Returns the number of entries in all groups. */
size_t arb_registry_size(const arb_registry_t *reg);

/* Returns the number of groups that have members. */
uint32_t arb_registry_ngroups(const arb_registry_t *reg);

/* Checks every invariant: group lists against the group hash, entries
** against the pair hash, owner lists against entries and their hooks,
** and the counts.  Returns 0 when they hold, a negative number naming
** the first broken one otherwise.  O(size); for tests. */
int arb_registry_check(const arb_registry_t *reg);

/* }====================================================================== */

/* {======================================================================
** Names: name -> registry, one table per node, owned by the binding
** ======================================================================*/

/* Creates an empty names table.  Returns NULL when out of memory. */
arb_names_t *arb_names_new(void);

/* Frees the table.  Registries that held names stay alive, nameless. */
void arb_names_free(arb_names_t *names);

/* Gives reg the name (len bytes, copied).  A name is held until reg is
** destroyed.  Returns 0, ARB_EEXIST if a live registry holds the name,
** ARB_EINVAL if reg already has a name, or ARB_ENOMEM. */
int arb_names_take(arb_names_t *names, arb_registry_t *reg, const char *name,
                   size_t len);

/* Returns the registry holding the name, or NULL. */
arb_registry_t *arb_names_lookup(const arb_names_t *names, const char *name,
                                 size_t len);

/* }====================================================================== */

#endif
