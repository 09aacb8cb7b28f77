/*
** registry.c: groups of subjects with delisting on death (see registry.h).
**
** Four objects, all owned by the registry: groups (a key and an ordered
** list of entries), entries (one (group, subject) pair and its value),
** owners (one per process with entries here: an exit hook on it and the
** list of its entries) and the registry.  Three chained hash tables find
** a group by key, an entry by (group, subject id) and an owner by pid, so
** register is O(1) on average; delisting an owner walks its own list;
** members walk a group's list.  No step scans the whole registry except
** destroy and check.  Every table is grown before anything is linked, so
** an out-of-memory failure leaves the registry as it was.
**
** Depends on libc, alloc.h, list.h and node.h only.
*/
#include "registry.h"

#include <string.h>

#include "alloc.h"

/* {======================================================================
** A small chained hash table of intrusive nodes
** ======================================================================*/

typedef struct hnode_s {
  struct hnode_s *next;
  uint64_t hash;
} hnode_t;

typedef struct htab_s {
  hnode_t **b;
  uint32_t cap, n; /* cap is 0 or a power of two */
} htab_t;

static uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9u;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebu;
  return x ^ (x >> 31);
}

/* Makes room for one more node (load factor at most 1). */
static int hreserve(htab_t *t) {
  if (t->n < t->cap) return 0;
  if (t->cap >= (1u << 30)) return ARB_ENOMEM;
  uint32_t ncap = t->cap ? t->cap * 2 : 8;
  hnode_t **nb = arb_calloc(ncap, sizeof(*nb));
  if (nb == NULL) return ARB_ENOMEM;
  for (uint32_t i = 0; i < t->cap; i++) {
    hnode_t *n = t->b[i];
    while (n) {
      hnode_t *next = n->next;
      uint32_t j = (uint32_t)(n->hash & (ncap - 1));
      n->next = nb[j];
      nb[j] = n;
      n = next;
    }
  }
  arb_free(t->b, t->cap * sizeof(*t->b));
  t->b = nb;
  t->cap = ncap;
  return 0;
}

/* Adds n; hreserve must have succeeded since the last add. */
static void hadd(htab_t *t, hnode_t *n, uint64_t hash) {
  uint32_t i = (uint32_t)(hash & (t->cap - 1));
  n->hash = hash;
  n->next = t->b[i];
  t->b[i] = n;
  t->n++;
}

static void hdel(htab_t *t, hnode_t *n) {
  hnode_t **pp = &t->b[n->hash & (t->cap - 1)];
  while (*pp != n) pp = &(*pp)->next;
  *pp = n->next;
  t->n--;
}

static hnode_t *hchain(const htab_t *t, uint64_t hash) {
  return t->cap ? t->b[hash & (t->cap - 1)] : NULL;
}

static void hfree(htab_t *t) {
  arb_free(t->b, t->cap * sizeof(*t->b));
  t->b = NULL;
  t->cap = t->n = 0;
}

/* Checks chain placement and the node count. */
static int hcheck(const htab_t *t) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < t->cap; i++)
    for (const hnode_t *h = t->b[i]; h; h = h->next, n++)
      if ((h->hash & (t->cap - 1)) != i) return -1;
  return n == t->n && t->n <= t->cap ? 0 : -1;
}

/* }====================================================================== */

/* {======================================================================
** Objects
** ======================================================================*/

typedef struct group_s {
  hnode_t h;           /* in reg->groups_h, by key */
  arb_list_t node;     /* in reg->groups, oldest first */
  arb_list_t members;  /* entry_t.gnode, registration order */
  uint32_t count;
  uint64_t stamp;      /* reg->clock at the group's last change */
  int kind;            /* normalised key */
  int64_t i;
  double f;
  size_t len;
  char str[];          /* len + 1 bytes for a string key */
} group_t;

typedef struct owner_s {
  arb_exit_hook_t hook; /* on the owner process */
  hnode_t h;            /* in reg->owners_h, by pid */
  arb_registry_t *reg;
  arb_pid_t pid;
  arb_list_t entries;   /* entry_t.onode */
} owner_t;

typedef struct entry_s {
  hnode_t h;         /* in reg->entries_h, by (group, subject id) */
  arb_list_t gnode;  /* in group->members */
  arb_list_t onode;  /* in owner->entries */
  group_t *group;
  owner_t *owner;
  arb_subject_t *sub;
  uint64_t sub_id;
  intptr_t value;
} entry_t;

typedef struct name_s {
  hnode_t h;
  arb_registry_t *reg;
  size_t len;
  char str[];
} name_t;

struct arb_names_s {
  htab_t t;
};

struct arb_registry_s {
  arb_exit_hook_t hook; /* on the registry's own process */
  arb_node_t *node;
  arb_pid_t pid;
  arb_registry_ops_t ops;
  void *ud;
  htab_t groups_h, owners_h, entries_h;
  arb_list_t groups;
  size_t nentries;
  uint64_t clock;      /* last stamp handed out; stamps are never reused */
  arb_names_t *names;
  name_t *name;
};

static size_t group_size(const group_t *g) {
  return sizeof(group_t) + (g->kind == ARB_REGISTRY_KEY_STR ? g->len + 1 : 0);
}

/* }====================================================================== */

/* {======================================================================
** Keys
** ======================================================================*/

/* Turns a key into its canonical form; ARB_EINVAL for NaN or junk. */
static int norm_key(const arb_registry_key_t *in, arb_registry_key_t *out) {
  *out = *in;
  switch (in->kind) {
    case ARB_REGISTRY_KEY_STR:
      out->i = 0, out->f = 0.0;
      return in->str || in->len == 0 ? 0 : ARB_EINVAL;
    case ARB_REGISTRY_KEY_INT:
      out->f = 0.0;
      return 0;
    case ARB_REGISTRY_KEY_BOOL:
      out->i = in->i != 0, out->f = 0.0;
      return 0;
    case ARB_REGISTRY_KEY_FLOAT: {
      double f = in->f;
      out->i = 0;
      if (f != f) return ARB_EINVAL;
      if (f >= -0x1p63 && f < 0x1p63 && (double)(int64_t)f == f) {
        out->kind = ARB_REGISTRY_KEY_INT;
        out->i = (int64_t)f, out->f = 0.0;
      }
      return 0;
    }
    default:
      return ARB_EINVAL;
  }
}

static uint64_t key_hash(const arb_registry_key_t *k) {
  uint64_t h;
  if (k->kind == ARB_REGISTRY_KEY_STR) {
    h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t j = 0; j < k->len; j++)
      h = (h ^ (unsigned char)k->str[j]) * 0x100000001b3u;
  } else if (k->kind == ARB_REGISTRY_KEY_FLOAT) {
    memcpy(&h, &k->f, sizeof(h));
  } else {
    h = (uint64_t)k->i;
  }
  return mix(h + (uint64_t)k->kind * 0x9e3779b97f4a7c15u);
}

static int key_eq(const group_t *g, const arb_registry_key_t *k) {
  if (g->kind != k->kind) return 0;
  switch (k->kind) {
    case ARB_REGISTRY_KEY_STR:
      return g->len == k->len &&
             (k->len == 0 || memcmp(g->str, k->str, k->len) == 0);
    case ARB_REGISTRY_KEY_FLOAT:
      return g->f == k->f;
    default:
      return g->i == k->i;
  }
}

static uint64_t pair_hash(const group_t *g, uint64_t sub_id) {
  return mix((uint64_t)(uintptr_t)g * 0x9e3779b97f4a7c15u ^ mix(sub_id));
}

static group_t *find_group(const arb_registry_t *reg,
                           const arb_registry_key_t *k, uint64_t hash) {
  for (hnode_t *n = hchain(&reg->groups_h, hash); n; n = n->next) {
    group_t *g = arb_container_of(n, group_t, h);
    if (n->hash == hash && key_eq(g, k)) return g;
  }
  return NULL;
}

static entry_t *find_entry(const arb_registry_t *reg, const group_t *g,
                           uint64_t sub_id) {
  uint64_t hash = pair_hash(g, sub_id);
  for (hnode_t *n = hchain(&reg->entries_h, hash); n; n = n->next) {
    entry_t *e = arb_container_of(n, entry_t, h);
    if (n->hash == hash && e->group == g && e->sub_id == sub_id) return e;
  }
  return NULL;
}

static owner_t *find_owner(const arb_registry_t *reg, arb_pid_t pid) {
  uint64_t hash = mix(pid);
  for (hnode_t *n = hchain(&reg->owners_h, hash); n; n = n->next) {
    owner_t *o = arb_container_of(n, owner_t, h);
    if (o->pid == pid) return o;
  }
  return NULL;
}

/* Looks a key up without storing it; NULL for unknown or invalid keys. */
static group_t *lookup(const arb_registry_t *reg,
                       const arb_registry_key_t *key) {
  arb_registry_key_t k;
  if (norm_key(key, &k) != 0) return NULL;
  return find_group(reg, &k, key_hash(&k));
}

/* }====================================================================== */

/* {======================================================================
** Removal: by owner, and the whole registry
** ======================================================================*/

/* Unlinks e everywhere, frees its group if it was the last member,
** releases its value and frees it. */
static void drop_entry(arb_registry_t *reg, entry_t *e) {
  group_t *g = e->group;
  arb_list_remove(&e->gnode);
  arb_list_remove(&e->onode);
  hdel(&reg->entries_h, &e->h);
  reg->nentries--;
  if (--g->count == 0) {
    hdel(&reg->groups_h, &g->h);
    arb_list_remove(&g->node);
    arb_free(g, group_size(g));
  } else {
    g->stamp = ++reg->clock;
  }
  intptr_t value = e->value;
  arb_free(e, sizeof(*e));
  if (reg->ops.release) reg->ops.release(reg->ud, value);
}

/* Removes all of o's entries and o itself; o's hook must be detached. */
static void drop_owner(arb_registry_t *reg, owner_t *o) {
  hdel(&reg->owners_h, &o->h);
  while (!arb_list_empty(&o->entries))
    drop_entry(reg, arb_container_of(o->entries.next, entry_t, onode));
  arb_free(o, sizeof(*o));
  if (reg->owners_h.n == 0) { /* empty again: give the tables back */
    hfree(&reg->groups_h);
    hfree(&reg->owners_h);
    hfree(&reg->entries_h);
  }
}

/* Exit hook of an owner process: the node has already unlinked it. */
static void owner_ended(arb_node_t *node, arb_exit_hook_t *hook,
                        arb_proc_t *p) {
  (void)node, (void)p;
  owner_t *o = arb_container_of(hook, owner_t, hook);
  drop_owner(o->reg, o);
}

void arb_registry_destroy(arb_registry_t *reg) {
  arb_node_unhook_exit(&reg->hook);
  /* Dropping the last owner frees the tables, which ends the loop. */
  uint32_t i = 0;
  while (reg->owners_h.n > 0) {
    while (reg->owners_h.b[i] == NULL) i++;
    owner_t *o = arb_container_of(reg->owners_h.b[i], owner_t, h);
    arb_node_unhook_exit(&o->hook);
    drop_owner(reg, o);
  }
  if (reg->name) {
    hdel(&reg->names->t, &reg->name->h);
    arb_free(reg->name, sizeof(name_t) + reg->name->len + 1);
  }
  if (reg->ops.destroyed) reg->ops.destroyed(reg->ud, reg);
  arb_free(reg, sizeof(*reg));
}

/* Exit hook of the registry's own process. */
static void registry_ended(arb_node_t *node, arb_exit_hook_t *hook,
                           arb_proc_t *p) {
  (void)node, (void)p;
  arb_registry_destroy(arb_container_of(hook, arb_registry_t, hook));
}

/* }====================================================================== */

/* {======================================================================
** Creation, registration, queries
** ======================================================================*/

static int ended(const arb_proc_t *p) {
  return p == NULL || p->state == ARB_PROC_FREE ||
         p->state == ARB_PROC_DEAD || (p->flags & ARB_PROC_EXITING);
}

arb_registry_t *arb_registry_new(arb_node_t *node, arb_proc_t *owner,
                                 const arb_registry_ops_t *ops, void *ud) {
  if (ended(owner)) return NULL;
  arb_registry_t *reg = arb_calloc(1, sizeof(*reg));
  if (reg == NULL) return NULL;
  reg->node = node;
  reg->pid = owner->pid;
  if (ops) reg->ops = *ops;
  reg->ud = ud;
  arb_list_init(&reg->groups);
  reg->hook.fn = registry_ended;
  arb_node_hook_exit(owner, &reg->hook);
  return reg;
}

arb_pid_t arb_registry_pid(const arb_registry_t *reg) { return reg->pid; }

/* Allocates a group for a normalised key; NULL when out of memory. */
static group_t *new_group(const arb_registry_key_t *k) {
  int str = k->kind == ARB_REGISTRY_KEY_STR;
  group_t *g = arb_malloc(sizeof(group_t) + (str ? k->len + 1 : 0));
  if (g == NULL) return NULL;
  arb_list_init(&g->members);
  g->count = 0;
  g->stamp = 0;
  g->kind = k->kind;
  g->i = k->i;
  g->f = k->f;
  g->len = str ? k->len : 0;
  if (str) {
    if (k->len) memcpy(g->str, k->str, k->len);
    g->str[k->len] = '\0';
  }
  return g;
}

int arb_registry_register(arb_registry_t *reg, const arb_registry_key_t *key,
                          arb_subject_t *sub, intptr_t value) {
  arb_registry_key_t k;
  int rc = norm_key(key, &k);
  if (rc != 0) goto release;
  arb_proc_t *p = sub->owner_proc;
  if (ended(p) || p->pid != sub->owner) {
    rc = ARB_REGISTRY_DEAD;
    goto release;
  }
  uint64_t gh = key_hash(&k);
  group_t *g = find_group(reg, &k, gh);
  if (g && find_entry(reg, g, sub->id)) {
    rc = ARB_REGISTRY_PRESENT;
    goto release;
  }
  owner_t *o = find_owner(reg, p->pid);
  /* Grow and allocate everything before linking anything. */
  rc = ARB_ENOMEM;
  if ((!g && hreserve(&reg->groups_h)) || (!o && hreserve(&reg->owners_h)) ||
      hreserve(&reg->entries_h))
    goto release;
  entry_t *e = arb_malloc(sizeof(*e));
  group_t *ng = g ? NULL : new_group(&k);
  owner_t *no = o ? NULL : arb_malloc(sizeof(*no));
  if (e == NULL || (!g && !ng) || (!o && !no)) {
    arb_free(e, sizeof(*e));
    if (ng) arb_free(ng, group_size(ng));
    arb_free(no, sizeof(*no));
    goto release;
  }
  if (ng) {
    g = ng;
    hadd(&reg->groups_h, &g->h, gh);
    arb_list_insert_tail(&reg->groups, &g->node);
  }
  if (no) {
    o = no;
    o->reg = reg;
    o->pid = p->pid;
    arb_list_init(&o->entries);
    o->hook.fn = owner_ended;
    arb_node_hook_exit(p, &o->hook);
    hadd(&reg->owners_h, &o->h, mix(o->pid));
  }
  e->group = g;
  e->owner = o;
  e->sub = sub;
  e->sub_id = sub->id;
  e->value = value;
  hadd(&reg->entries_h, &e->h, pair_hash(g, sub->id));
  arb_list_insert_tail(&g->members, &e->gnode);
  arb_list_insert_tail(&o->entries, &e->onode);
  g->count++;
  g->stamp = ++reg->clock;
  reg->nentries++;
  return ARB_REGISTRY_ADDED;
release:
  if (reg->ops.release) reg->ops.release(reg->ud, value);
  return rc;
}

uint32_t arb_registry_members(const arb_registry_t *reg,
                              const arb_registry_key_t *key,
                              arb_registry_iter_t *it) {
  const group_t *g = lookup(reg, key);
  it->head = it->pos = g ? &g->members : NULL;
  return g ? g->count : 0;
}

int arb_registry_member_next(arb_registry_iter_t *it, arb_subject_t **sub,
                             intptr_t *value) {
  if (it->head == NULL || it->pos->next == it->head) return 0;
  it->pos = it->pos->next;
  const entry_t *e = arb_container_of(it->pos, entry_t, gnode);
  if (sub) *sub = e->sub;
  if (value) *value = e->value;
  return 1;
}

uint32_t arb_registry_groups(const arb_registry_t *reg,
                             arb_registry_iter_t *it) {
  it->head = it->pos = &reg->groups;
  return reg->groups_h.n;
}

int arb_registry_group_next(arb_registry_iter_t *it, arb_registry_key_t *key,
                            uint32_t *count) {
  if (it->head == NULL || it->pos->next == it->head) return 0;
  it->pos = it->pos->next;
  const group_t *g = arb_container_of(it->pos, group_t, node);
  if (key) {
    key->kind = g->kind;
    key->i = g->i;
    key->f = g->f;
    key->str = g->kind == ARB_REGISTRY_KEY_STR ? g->str : NULL;
    key->len = g->len;
  }
  if (count) *count = g->count;
  return 1;
}

uint32_t arb_registry_count(const arb_registry_t *reg,
                            const arb_registry_key_t *key) {
  const group_t *g = lookup(reg, key);
  return g ? g->count : 0;
}

uint64_t arb_registry_stamp(const arb_registry_t *reg,
                            const arb_registry_key_t *key) {
  const group_t *g = lookup(reg, key);
  return g ? g->stamp : 0;
}

size_t arb_registry_size(const arb_registry_t *reg) { return reg->nentries; }

uint32_t arb_registry_ngroups(const arb_registry_t *reg) {
  return reg->groups_h.n;
}

int arb_registry_check(const arb_registry_t *reg) {
  if (hcheck(&reg->groups_h) || hcheck(&reg->owners_h) ||
      hcheck(&reg->entries_h))
    return -1;
  if (reg->hook.node.next == &reg->hook.node) return -2; /* detached */
  size_t total = 0;
  uint32_t ngroups = 0;
  const arb_list_t *n, *m;
  arb_list_each(n, &reg->groups) {
    const group_t *g = arb_container_of(n, group_t, node);
    arb_registry_key_t k = {g->kind, g->i, g->f, g->str, g->len};
    if (g->count == 0 || find_group(reg, &k, key_hash(&k)) != g) return -3;
    if (g->stamp == 0 || g->stamp > reg->clock) return -3;
    if (g->h.hash != key_hash(&k)) return -3;
    uint32_t count = 0;
    arb_list_each(m, &g->members) {
      const entry_t *e = arb_container_of(m, entry_t, gnode);
      if (e->group != g || find_entry(reg, g, e->sub_id) != e) return -4;
      if (e->sub->id != e->sub_id || e->sub->owner != e->owner->pid)
        return -5;
      count++;
    }
    if (count != g->count) return -6;
    total += count;
    ngroups++;
  }
  if (ngroups != reg->groups_h.n) return -7;
  if (total != reg->nentries || total != reg->entries_h.n) return -8;
  size_t owned = 0;
  for (uint32_t i = 0; i < reg->owners_h.cap; i++) {
    for (const hnode_t *h = reg->owners_h.b[i]; h; h = h->next) {
      const owner_t *o = arb_container_of(h, owner_t, h);
      if (o->reg != reg || h->hash != mix(o->pid)) return -9;
      if (arb_list_empty(&o->entries)) return -10;
      if (o->hook.node.next == &o->hook.node) return -11;
      arb_list_each(m, &o->entries) {
        const entry_t *e = arb_container_of(m, entry_t, onode);
        if (e->owner != o) return -12;
        owned++;
      }
    }
  }
  return owned == total ? 0 : -13;
}

/* }====================================================================== */

/* {======================================================================
** Names
** ======================================================================*/

static uint64_t name_hash(const char *s, size_t len) {
  arb_registry_key_t k = arb_registry_key_str(s, len);
  return key_hash(&k);
}

static name_t *find_name(const arb_names_t *names, const char *s,
                         size_t len) {
  uint64_t hash = name_hash(s, len);
  for (hnode_t *n = hchain(&names->t, hash); n; n = n->next) {
    name_t *nm = arb_container_of(n, name_t, h);
    if (n->hash == hash && nm->len == len &&
        (len == 0 || memcmp(nm->str, s, len) == 0))
      return nm;
  }
  return NULL;
}

arb_names_t *arb_names_new(void) { return arb_calloc(1, sizeof(arb_names_t)); }

void arb_names_free(arb_names_t *names) {
  if (names == NULL) return;
  for (uint32_t i = 0; i < names->t.cap; i++) {
    hnode_t *n = names->t.b[i];
    while (n) {
      name_t *nm = arb_container_of(n, name_t, h);
      n = n->next;
      nm->reg->name = NULL;
      nm->reg->names = NULL;
      arb_free(nm, sizeof(*nm) + nm->len + 1);
    }
  }
  hfree(&names->t);
  arb_free(names, sizeof(*names));
}

int arb_names_take(arb_names_t *names, arb_registry_t *reg, const char *name,
                   size_t len) {
  if (reg->name) return ARB_EINVAL;
  if (name == NULL && len) return ARB_EINVAL;
  if (find_name(names, name, len)) return ARB_EEXIST;
  if (hreserve(&names->t)) return ARB_ENOMEM;
  name_t *nm = arb_malloc(sizeof(*nm) + len + 1);
  if (nm == NULL) return ARB_ENOMEM;
  nm->reg = reg;
  nm->len = len;
  if (len) memcpy(nm->str, name, len);
  nm->str[len] = '\0';
  hadd(&names->t, &nm->h, name_hash(name, len));
  reg->name = nm;
  reg->names = names;
  return 0;
}

arb_registry_t *arb_names_lookup(const arb_names_t *names, const char *name,
                                 size_t len) {
  if (name == NULL && len) return NULL;
  name_t *nm = find_name(names, name, len);
  return nm ? nm->reg : NULL;
}

/* }====================================================================== */
