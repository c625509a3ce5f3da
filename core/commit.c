/*
 * commit.c - the write path: operations -> trees -> commit -> ref.
 *
 * A caller's operation (gitkv_op) becomes a `txn` on the store's queue. The
 * first caller to find no batch running becomes the leader: it takes every
 * queued txn, builds one commit for all of them, moves the branch, publishes
 * the new HEAD in the snapshot, and wakes the others (group commit). Values
 * are hashed and written as blobs by each caller before it queues, so the
 * leader writes only trees, one commit and the ref.
 *
 * The leader works on an *overlay*: a small map from path to new entry that
 * sits on top of the snapshot (which only the leader may change, so it reads
 * it without locks). Each txn is checked against "snapshot + overlay so far"
 * and either applied to the overlay or failed alone. Then every directory
 * the overlay touched is serialised as a git tree from the snapshot's
 * children plus the overlay's (the snapshot knows every tree's entries, so
 * no tree is read from disk), bottom-up; untouched subtrees keep their ids.
 *
 * The branch moves with git_reference_create_matching() against the commit
 * the batch was built on. If another process moved it first, the leader
 * refreshes the snapshot (reporting that change as EXTERNAL), rebuilds the
 * overlay from scratch - txns are re-checked, so one that now conflicts
 * fails - and tries again.
 *
 * Overlay invariants:
 *  (1) every overlay node's parent path has an overlay node (root always);
 *  (2) a node whose entry is not a directory, or is a "replaced" directory,
 *      does not inherit the snapshot's children: its children are exactly
 *      its overlay children that are not NONE;
 *  (3) when a node stops being a directory (or is replaced), all its overlay
 *      descendants become NONE, so a direct hit on a descendant is right.
 */
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gitkv/key.h"
#include "gitkv/meta.h"
#include "store_internal.h"

#define MAX_CAS_RETRIES 100000
#define MAX_RETRY_SECONDS 10
#define GITKV_ELOCKED_RETRY (GITKV_EUNCHANGED - 1) /* internal: retry, the ref is locked */
#define MAX_LINK_TARGET 4095

struct txn {
	const gitkv_op *op;
	uid_t uid;
	pid_t pid;
	char comm[64];
	char author[128];
	gitkv_oid blob;		/* SET: the value's blob, written by the caller */
	int error;		/* result of the last check */
	char msg[256];		/* its message (set on the leader's thread) */
	bool changed;		/* the txn changed the overlay */
	bool fatal;		/* applying it failed half-way: the batch fails */
	bool *expired;		/* EXPIRE: which of op->keys it deleted (nkeys) */
	size_t nexpired;
	gitkv_result result;
	bool done;		/* protected by qlock */
	struct txn *next;	/* protected by qlock until taken by the leader */
};

/* ---- the overlay ------------------------------------------------------- */

struct ov {
	char *path;
	const char *name;
	gitkv_entry e;		/* the new state; NONE = absent */
	bool replaced;		/* does not inherit the snapshot's children */
	bool dirty;		/* directory to write */
	struct ov *parent, *child, *next;
	struct ov *hnext;
	uint64_t hash;
};

struct overlay {
	gitkv_store *store;
	int64_t now;		/* the batch's time, UTC seconds */
	bool now_frac;		/* ... plus a fraction of a second */
	struct ov **buckets;
	size_t nbuckets, count;
	struct ov *root;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct ov *ov_find(struct overlay *ovl, const char *path)
{
	uint64_t h = hash_str(path);

	for (struct ov *o = ovl->buckets[h & (ovl->nbuckets - 1)]; o; o = o->hnext)
		if (o->hash == h && !strcmp(o->path, path))
			return o;
	return NULL;
}

static int ov_grow(struct overlay *ovl)
{
	size_t nb = ovl->nbuckets * 2;
	struct ov **b = calloc(nb, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < ovl->nbuckets; i++) {
		struct ov *o = ovl->buckets[i], *next;

		for (; o; o = next) {
			next = o->hnext;
			o->hnext = b[o->hash & (nb - 1)];
			b[o->hash & (nb - 1)] = o;
		}
	}
	free(ovl->buckets);
	ovl->buckets = b;
	ovl->nbuckets = nb;
	return 0;
}

static struct ov *ov_add(struct overlay *ovl, struct ov *parent, const char *path,
			 const gitkv_entry *e, bool replaced)
{
	struct ov *o;

	if (ovl->count + 1 > ovl->nbuckets && ov_grow(ovl) < 0)
		return NULL;
	o = calloc(1, sizeof(*o));
	if (!o || !(o->path = strdup(path))) {
		free(o);
		return NULL;
	}
	o->name = gitkv_key_basename(o->path);
	o->e = *e;
	o->replaced = replaced;
	o->hash = hash_str(path);
	o->hnext = ovl->buckets[o->hash & (ovl->nbuckets - 1)];
	ovl->buckets[o->hash & (ovl->nbuckets - 1)] = o;
	ovl->count++;
	if (parent) {
		o->parent = parent;
		o->next = parent->child;
		parent->child = o;
	}
	return o;
}

static int overlay_init(struct overlay *ovl, gitkv_store *store)
{
	struct snap_node *root = gitkv_snapshot__root(store->snap);

	memset(ovl, 0, sizeof(*ovl));
	ovl->store = store;
	ovl->nbuckets = 64;
	ovl->buckets = calloc(ovl->nbuckets, sizeof(*ovl->buckets));
	if (!ovl->buckets)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	ovl->root = ov_add(ovl, NULL, "", &root->e, false);
	if (!ovl->root)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	ovl->root->name = ovl->root->path;
	return 0;
}

static void overlay_free(struct overlay *ovl)
{
	for (size_t i = 0; i < ovl->nbuckets; i++) {
		struct ov *o = ovl->buckets ? ovl->buckets[i] : NULL, *next;

		for (; o; o = next) {
			next = o->hnext;
			free(o->path);
			free(o);
		}
	}
	free(ovl->buckets);
	memset(ovl, 0, sizeof(*ovl));
}

/* Does `o` pass the snapshot's children through? */
static bool ov_inherits(const struct ov *o)
{
	return o->e.type == GITKV_TYPE_DIR && !o->replaced;
}

/* The effective state of `path`: overlay first, else the snapshot. */
static void eff_lookup(struct overlay *ovl, const char *path, gitkv_entry *out)
{
	struct ov *o = ov_find(ovl, path);
	char buf[GITKV_KEY_MAX + 1];
	struct snap_node *n;

	memset(out, 0, sizeof(*out));
	if (o) {
		*out = o->e;
		return;
	}
	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		char *slash = strrchr(buf, '/');

		if (slash)
			*slash = '\0';
		else
			buf[0] = '\0';
		o = ov_find(ovl, buf);
		if (o) {
			if (!ov_inherits(o))
				return;
			break;
		}
		if (!buf[0])
			break;
	}
	n = gitkv_snapshot__find(ovl->store->snap, path);
	if (n)
		*out = n->e;
}

static void ov_clear_below(struct ov *o)
{
	for (struct ov *c = o->child; c; c = c->next) {
		memset(&c->e, 0, sizeof(c->e));
		c->replaced = true;
		c->dirty = false;
		ov_clear_below(c);
	}
}

/* Get or create the overlay node for `path` and all its ancestors. */
static struct ov *ov_get(struct overlay *ovl, const char *path)
{
	struct ov *o = ov_find(ovl, path), *parent;
	char *ppath;
	gitkv_entry e;

	if (o)
		return o;
	ppath = gitkv_key_parent(path);
	if (!ppath)
		return NULL;
	parent = ov_get(ovl, ppath);
	free(ppath);
	if (!parent)
		return NULL;
	memset(&e, 0, sizeof(e));
	if (ov_inherits(parent)) {
		struct snap_node *n = gitkv_snapshot__find(ovl->store->snap, path);

		if (n)
			e = n->e;
	}
	return ov_add(ovl, parent, path, &e, e.type != GITKV_TYPE_DIR);
}

/* Set the new state of `path`; `replaced` for a directory built anew. */
static int ov_set(struct overlay *ovl, const char *path, const gitkv_entry *e, bool replaced)
{
	struct ov *o = ov_get(ovl, path);

	if (!o)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	if (e->type != GITKV_TYPE_DIR || replaced)
		ov_clear_below(o);
	o->e = *e;
	o->replaced = e->type != GITKV_TYPE_DIR || replaced;
	o->dirty = e->type == GITKV_TYPE_DIR;
	for (struct ov *p = o->parent; p; p = p->parent)
		p->dirty = true;
	return 0;
}

/* Make every missing ancestor of `path` a new, empty directory. */
static int ov_mkparents(struct overlay *ovl, const char *path)
{
	char *ppath = gitkv_key_parent(path);
	gitkv_entry e;
	int error = 0;

	if (!ppath)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	if (ppath[0]) {
		eff_lookup(ovl, ppath, &e);
		if (e.type == GITKV_TYPE_NONE) {
			gitkv_entry dir = { .type = GITKV_TYPE_DIR };

			error = ov_mkparents(ovl, ppath);
			if (!error)
				error = ov_set(ovl, ppath, &dir, true);
		}
	}
	free(ppath);
	return error;
}

/* Check that no ancestor of `path` is a value. */
static int check_parents(struct overlay *ovl, const char *path)
{
	char buf[GITKV_KEY_MAX + 1];
	const char *p = path;

	for (;;) {
		const char *slash = strchr(p, '/');
		gitkv_entry e;

		if (!slash)
			return 0;
		snprintf(buf, sizeof(buf), "%.*s", (int)(slash - path), path);
		eff_lookup(ovl, buf, &e);
		if (e.type == GITKV_TYPE_NONE)
			return 0;
		if (e.type != GITKV_TYPE_DIR)
			return gitkv_error_set(GITKV_ENOTDIR, "'%s' is a value, not a directory", buf);
		p = slash + 1;
	}
}

typedef int (*child_fn)(const char *name, const gitkv_entry *e, struct ov *o, void *payload);

/* Call `fn` for each effective child of directory `path`. */
static int eff_children(struct overlay *ovl, const char *path, child_fn fn, void *payload)
{
	struct ov *o = ov_find(ovl, path);
	int error = 0;
	bool inherit;

	if (o) {
		inherit = ov_inherits(o);
	} else {
		gitkv_entry e;

		eff_lookup(ovl, path, &e);
		inherit = e.type == GITKV_TYPE_DIR;
	}
	if (inherit) {
		struct snap_node *n = gitkv_snapshot__find(ovl->store->snap, path);

		for (struct snap_node *c = n ? n->child : NULL; c && !error; c = c->next) {
			if (o && ov_find(ovl, c->path))
				continue;
			error = fn(c->name, &c->e, NULL, payload);
		}
	}
	for (struct ov *c = o ? o->child : NULL; c && !error; c = c->next)
		if (c->e.type != GITKV_TYPE_NONE)
			error = fn(c->name, &c->e, c, payload);
	return error;
}

static int count_child(const char *name, const gitkv_entry *e, struct ov *o, void *payload)
{
	(*(size_t *)payload)++;
	return 0;
}

/* ---- checking and applying one operation ------------------------------- */

static int validate_key(const char *key, unsigned int flags)
{
	if (flags & GITKV_OP_INTERNAL)
		return gitkv_key__validate_internal(key);
	return gitkv_key_validate(key);
}

struct copy_ctx {
	struct overlay *ovl;
	const char *from;
	const char *to;
};

static int copy_child(const char *name, const gitkv_entry *e, struct ov *o, void *payload);

/* Copy the effective subtree at `from` to `to` (a directory built anew). */
static int copy_tree(struct overlay *ovl, const char *from, const char *to)
{
	struct copy_ctx ctx = { ovl, from, to };

	return eff_children(ovl, from, copy_child, &ctx);
}

static int copy_child(const char *name, const gitkv_entry *e, struct ov *o, void *payload)
{
	struct copy_ctx *ctx = payload;
	char *src = gitkv_key_join(ctx->from, name);
	char *dst = gitkv_key_join(ctx->to, name);
	int error;

	if (!src || !dst) {
		error = gitkv_error_set(GITKV_ERROR, "out of memory");
	} else if (e->type == GITKV_TYPE_DIR) {
		gitkv_entry dir = *e;

		error = ov_set(ctx->ovl, dst, &dir, true);
		if (!error)
			error = copy_tree(ctx->ovl, src, dst);
	} else {
		error = ov_set(ctx->ovl, dst, e, false);
	}
	free(src);
	free(dst);
	return error;
}

/* ---- metadata (gitkv/meta.h) ------------------------------------------- */

#define META_PATH_MAX (GITKV_KEY_MAX + 64)

/* The metadata blob at `path`: 1 and `*m` if there is one, 0 if not, or an error. */
static int meta_read(struct overlay *ovl, const char *path, gitkv_meta *m)
{
	gitkv_entry e;
	char *buf = NULL;
	size_t len;
	int error;

	memset(m, 0, sizeof(*m));
	eff_lookup(ovl, path, &e);
	if (!gitkv_type_is_value(e.type))
		return 0;
	if ((error = gitkv_store_read_blob(ovl->store, &e.oid, &buf, &len)) < 0)
		return error;
	if (gitkv_meta_parse(m, buf, len) < 0)
		memset(m, 0, sizeof(*m)); /* unreadable metadata is no metadata */
	free(buf);
	return 1;
}

/* Is the value at `key` past its expiry (per the overlay's view)? */
static bool eff_expired(struct overlay *ovl, const char *key)
{
	char mp[META_PATH_MAX];
	gitkv_entry e;
	gitkv_meta m;

	eff_lookup(ovl, GITKV_META_PREFIX, &e);
	if (e.type != GITKV_TYPE_DIR)
		return false; /* the common case: no metadata at all */
	if (gitkv_meta__path(mp, sizeof(mp), key, false) < 0 || meta_read(ovl, mp, &m) <= 0)
		return false;
	return m.expires && m.expires <= ovl->now;
}

/* Remove `path` and then every metadata directory above it that it left empty. */
static int meta_remove(struct overlay *ovl, const char *path)
{
	gitkv_entry e, none = { 0 };
	char buf[META_PATH_MAX];
	int error;

	eff_lookup(ovl, path, &e);
	if (e.type == GITKV_TYPE_NONE)
		return 0;
	if ((error = ov_set(ovl, path, &none, false)) < 0)
		return error;
	snprintf(buf, sizeof(buf), "%s", path);
	for (;;) {
		char *slash = strrchr(buf, '/');
		size_t n = 0;

		if (!slash)
			break;
		*slash = '\0';
		eff_children(ovl, buf, count_child, &n);
		if (n || (error = ov_set(ovl, buf, &none, false)) < 0)
			break;
	}
	return error;
}

/* Make room for a metadata entry at `path`: its parents become directories. */
static int meta_parents(struct overlay *ovl, const char *path)
{
	char buf[META_PATH_MAX];
	gitkv_entry cur, none = { 0 };
	int error;

	/* metadata left behind by a merge may stand where a directory must go */
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		eff_lookup(ovl, buf, &cur);
		error = gitkv_type_is_value(cur.type) ? ov_set(ovl, buf, &none, false) : 0;
		*p = '/';
		if (error < 0)
			return error;
	}
	return ov_mkparents(ovl, path);
}

/* Write `m` as the metadata blob at `path` (removing it if `m` is empty). */
static int meta_write(struct overlay *ovl, const char *path, const gitkv_meta *m)
{
	gitkv_entry e = { .type = GITKV_TYPE_FILE }, cur;
	char text[128];
	size_t len = gitkv_meta_format(text, sizeof(text), m);
	int error;

	if (!len)
		return meta_remove(ovl, path);
	if ((error = gitkv_store__write_object(ovl->store, &e.oid, text, len, GIT_OBJECT_BLOB)) < 0)
		return error;
	eff_lookup(ovl, path, &cur);
	if (cur.type == GITKV_TYPE_FILE && gitkv_oid_equal(&cur.oid, &e.oid))
		return 0;
	if (cur.type == GITKV_TYPE_DIR && (error = meta_remove(ovl, path)) < 0)
		return error;
	e.size = len;
	if ((error = meta_parents(ovl, path)) < 0)
		return error;
	return ov_set(ovl, path, &e, false);
}

/* The expiry a TTL set now gives: never less than `ttl` seconds away. */
static int64_t expiry_of(struct overlay *ovl, int64_t ttl)
{
	return ovl->now + ttl + (ovl->now_frac ? 1 : 0);
}

/* The TTL of the nearest lease prefix above `key`, or 0. */
static int64_t lease_of(struct overlay *ovl, const char *key)
{
	char dir[GITKV_KEY_MAX + 1], mp[META_PATH_MAX];
	gitkv_entry e;
	gitkv_meta m;

	eff_lookup(ovl, GITKV_META_PREFIX, &e);
	if (e.type != GITKV_TYPE_DIR)
		return 0; /* the common case: no metadata at all */
	snprintf(dir, sizeof(dir), "%s", key);
	for (;;) {
		char *slash = strrchr(dir, '/');

		if (slash)
			*slash = '\0';
		else
			dir[0] = '\0';
		if (gitkv_meta__path(mp, sizeof(mp), dir, true) == 0 && meta_read(ovl, mp, &m) > 0 &&
		    m.ttl > 0)
			return m.ttl;
		if (!dir[0])
			return 0;
	}
}

/* A value was written at `key` (set, or renamed there): its TTL follows the rules. */
static int meta_written(struct overlay *ovl, const char *key, int64_t ttl)
{
	char mp[META_PATH_MAX];
	gitkv_meta m;
	int error, had;

	if ((error = gitkv_meta__path(mp, sizeof(mp), key, false)) < 0)
		return error;
	if (!ttl)
		ttl = lease_of(ovl, key);
	if ((had = meta_read(ovl, mp, &m)) < 0)
		return had;
	if (ttl > 0) {
		m.ttl = ttl;
		m.expires = expiry_of(ovl, ttl);
		return meta_write(ovl, mp, &m);
	}
	if (had && m.expires && m.expires <= ovl->now)
		return meta_remove(ovl, mp); /* it had expired: this is a new value */
	return 0;
}

/* Move the metadata of `from` (a value, or a prefix with all below it) to `to`. */
static int meta_moved(struct overlay *ovl, const char *from, const char *to, bool dir)
{
	char src[META_PATH_MAX], dst[META_PATH_MAX];
	gitkv_entry se;
	int error;

	if ((error = gitkv_meta__path(src, sizeof(src), from, false)) < 0 ||
	    (error = gitkv_meta__path(dst, sizeof(dst), to, false)) < 0)
		return error;
	if ((error = meta_remove(ovl, dst)) < 0)
		return error;
	eff_lookup(ovl, src, &se);
	if (se.type != GITKV_TYPE_NONE && dir == (se.type == GITKV_TYPE_DIR)) {
		if ((error = meta_parents(ovl, dst)) < 0 || (error = ov_set(ovl, dst, &se, dir)) < 0 ||
		    (dir && (error = copy_tree(ovl, src, dst)) < 0))
			return error;
	}
	if ((error = meta_remove(ovl, src)) < 0)
		return error;
	return dir ? 0 : meta_written(ovl, to, 0);
}

static int apply_set(struct overlay *ovl, struct txn *t)
{
	const gitkv_op *op = t->op;
	gitkv_entry cur, e = { .type = op->vtype ? op->vtype : GITKV_TYPE_FILE, .size = op->len };
	int error;

	eff_lookup(ovl, op->key, &cur);
	if (cur.type == GITKV_TYPE_DIR)
		return gitkv_error_set(GITKV_EISDIR, "'%s' is a directory", op->key);
	if (gitkv_type_is_value(cur.type) && eff_expired(ovl, op->key))
		memset(&cur, 0, sizeof(cur)); /* an expired value is no value */
	if ((op->flags & GITKV_OP_EXCL) && cur.type != GITKV_TYPE_NONE)
		return gitkv_error_set(GITKV_EEXISTS, "'%s' exists", op->key);
	if ((op->flags & GITKV_OP_IF_MATCH) && !gitkv_oid_equal(&cur.oid, &op->expect))
		return gitkv_error_set(GITKV_EMODIFIED, "'%s' does not hold the expected value",
				       op->key);
	if ((error = check_parents(ovl, op->key)) < 0)
		return error;
	if ((op->flags & GITKV_OP_KEEP_TYPE) && e.type == GITKV_TYPE_FILE &&
	    (cur.type == GITKV_TYPE_FILE || cur.type == GITKV_TYPE_EXEC))
		e.type = cur.type;
	e.oid = t->blob;
	if (cur.type == e.type && gitkv_oid_equal(&cur.oid, &e.oid))
		return GITKV_EUNCHANGED;
	if ((error = ov_mkparents(ovl, op->key)) < 0)
		return error;
	return ov_set(ovl, op->key, &e, false);
}

static int apply_delete(struct overlay *ovl, struct txn *t)
{
	const gitkv_op *op = t->op;
	gitkv_entry cur, none = { 0 };

	int error;

	eff_lookup(ovl, op->key, &cur);
	if (cur.type == GITKV_TYPE_NONE)
		return (error = check_parents(ovl, op->key)) < 0
			       ? error
			       : gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found", op->key);
	if (cur.type == GITKV_TYPE_DIR)
		return gitkv_error_set(GITKV_EISDIR, "'%s' is a directory", op->key);
	if ((op->flags & GITKV_OP_IF_MATCH) && !gitkv_oid_equal(&cur.oid, &op->expect))
		return gitkv_error_set(GITKV_EMODIFIED, "'%s' does not hold the expected value",
				       op->key);
	return ov_set(ovl, op->key, &none, false);
}

static int apply_mkdir(struct overlay *ovl, struct txn *t)
{
	const gitkv_op *op = t->op;
	gitkv_entry cur, dir = { .type = GITKV_TYPE_DIR };
	int error;

	eff_lookup(ovl, op->key, &cur);
	if (cur.type == GITKV_TYPE_DIR && !(op->flags & GITKV_OP_EXCL))
		return GITKV_EUNCHANGED;
	if (cur.type != GITKV_TYPE_NONE)
		return gitkv_error_set(GITKV_EEXISTS, "'%s' exists", op->key);
	if ((error = check_parents(ovl, op->key)) < 0 || (error = ov_mkparents(ovl, op->key)) < 0)
		return error;
	return ov_set(ovl, op->key, &dir, true);
}

static int apply_rmdir(struct overlay *ovl, struct txn *t)
{
	const gitkv_op *op = t->op;
	gitkv_entry cur, none = { 0 };
	size_t n = 0;

	int error;

	eff_lookup(ovl, op->key, &cur);
	if (cur.type == GITKV_TYPE_NONE)
		return (error = check_parents(ovl, op->key)) < 0
			       ? error
			       : gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found", op->key);
	if (cur.type != GITKV_TYPE_DIR)
		return gitkv_error_set(GITKV_ENOTDIR, "'%s' is not a directory", op->key);
	eff_children(ovl, op->key, count_child, &n);
	if (n)
		return gitkv_error_set(GITKV_ENOTEMPTY, "'%s' is not empty", op->key);
	return ov_set(ovl, op->key, &none, false);
}

static int apply_rename(struct overlay *ovl, struct txn *t)
{
	const gitkv_op *op = t->op;
	gitkv_entry src, dst, none = { 0 };
	int error;

	eff_lookup(ovl, op->key, &src);
	if (src.type == GITKV_TYPE_NONE)
		return (error = check_parents(ovl, op->key)) < 0
			       ? error
			       : gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found", op->key);
	if (!strcmp(op->key, op->to))
		return GITKV_EUNCHANGED;
	if (gitkv_key_has_prefix(op->to, op->key))
		return gitkv_error_set(GITKV_EINVALID, "cannot move '%s' into itself", op->key);
	if ((error = check_parents(ovl, op->to)) < 0)
		return error;
	eff_lookup(ovl, op->to, &dst);
	if (dst.type != GITKV_TYPE_NONE) {
		if (op->flags & GITKV_OP_NOREPLACE)
			return gitkv_error_set(GITKV_EEXISTS, "'%s' exists", op->to);
		if (src.type == GITKV_TYPE_DIR && dst.type != GITKV_TYPE_DIR)
			return gitkv_error_set(GITKV_ENOTDIR, "'%s' is not a directory", op->to);
		if (src.type != GITKV_TYPE_DIR && dst.type == GITKV_TYPE_DIR)
			return gitkv_error_set(GITKV_EISDIR, "'%s' is a directory", op->to);
		if (dst.type == GITKV_TYPE_DIR) {
			size_t n = 0;

			eff_children(ovl, op->to, count_child, &n);
			if (n)
				return gitkv_error_set(GITKV_ENOTEMPTY, "'%s' is not empty", op->to);
		}
	}
	if ((error = ov_mkparents(ovl, op->to)) < 0)
		return error;
	if (src.type == GITKV_TYPE_DIR) {
		if ((error = ov_set(ovl, op->to, &src, true)) < 0 ||
		    (error = copy_tree(ovl, op->key, op->to)) < 0)
			return error;
	} else if ((error = ov_set(ovl, op->to, &src, false)) < 0) {
		return error;
	}
	return ov_set(ovl, op->key, &none, false);
}

static int apply_chmod(struct overlay *ovl, struct txn *t)
{
	const gitkv_op *op = t->op;
	gitkv_entry cur;

	eff_lookup(ovl, op->key, &cur);
	if (cur.type == GITKV_TYPE_NONE)
		return gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found", op->key);
	if (cur.type == GITKV_TYPE_DIR)
		return gitkv_error_set(GITKV_EISDIR, "'%s' is a directory", op->key);
	if (cur.type == GITKV_TYPE_LINK)
		return gitkv_error_set(GITKV_EPERM, "'%s' is a symlink", op->key);
	if (op->vtype != GITKV_TYPE_FILE && op->vtype != GITKV_TYPE_EXEC)
		return gitkv_error_set(GITKV_EINVALID, "chmod sets a value's exec bit only");
	if (cur.type == op->vtype)
		return GITKV_EUNCHANGED;
	cur.type = op->vtype;
	return ov_set(ovl, op->key, &cur, false);
}


static int apply_ttl(struct overlay *ovl, struct txn *t)
{
	const gitkv_op *op = t->op;
	char mp[META_PATH_MAX];
	gitkv_entry cur;
	gitkv_meta m;
	int error;

	if (op->ttl < 0 || op->ttl > GITKV_TTL_MAX)
		return gitkv_error_set(GITKV_EINVALID, "TTL out of range (0 to %lld seconds)",
				       (long long)GITKV_TTL_MAX);
	eff_lookup(ovl, op->key, &cur);
	if (cur.type == GITKV_TYPE_NONE || (cur.type != GITKV_TYPE_DIR && eff_expired(ovl, op->key)))
		return gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found", op->key);
	if ((error = gitkv_meta__path(mp, sizeof(mp), op->key, cur.type == GITKV_TYPE_DIR)) < 0 ||
	    (error = meta_read(ovl, mp, &m)) < 0)
		return error;
	m.ttl = op->ttl;
	m.expires = cur.type == GITKV_TYPE_DIR || !op->ttl ? 0 : expiry_of(ovl, op->ttl);
	if (!op->ttl)
		memset(&m, 0, sizeof(m));
	{
		gitkv_entry before;

		eff_lookup(ovl, mp, &before);
		if ((error = meta_write(ovl, mp, &m)) < 0)
			return error;
		eff_lookup(ovl, mp, &cur);
		if (before.type == cur.type && gitkv_oid_equal(&before.oid, &cur.oid))
			return GITKV_EUNCHANGED;
	}
	return 0;
}

static int apply_expire(struct overlay *ovl, struct txn *t)
{
	const gitkv_op *op = t->op;
	gitkv_entry none = { 0 }, cur;
	char mp[META_PATH_MAX];
	gitkv_meta m;
	int error;

	t->nexpired = 0;
	if (!t->expired && !(t->expired = calloc(op->nkeys ? op->nkeys : 1, sizeof(bool))))
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	for (size_t i = 0; i < op->nkeys; i++) {
		t->expired[i] = false;
		if (gitkv_meta__path(mp, sizeof(mp), op->keys[i], false) < 0 ||
		    (error = meta_read(ovl, mp, &m)) <= 0 || !m.expires || m.expires > op->now)
			continue; /* renewed, or gone */
		eff_lookup(ovl, op->keys[i], &cur);
		if (gitkv_type_is_value(cur.type)) {
			if ((error = ov_set(ovl, op->keys[i], &none, false)) < 0)
				return error;
			t->expired[i] = true;
			t->nexpired++;
		}
		if ((error = meta_remove(ovl, mp)) < 0)
			return error;
	}
	t->result.count = t->nexpired;
	return t->nexpired ? 0 : GITKV_EUNCHANGED;
}

/* After `t` changed the overlay: its metadata follows. */
static int meta_follow(struct overlay *ovl, struct txn *t, const gitkv_entry *before)
{
	const gitkv_op *op = t->op;
	char mp[META_PATH_MAX];
	int error;

	if (op->flags & GITKV_OP_INTERNAL && gitkv_key_is_reserved(op->key))
		return 0;
	switch (op->type) {
	case GITKV_OP_SET:
		return meta_written(ovl, op->key, op->ttl > 0 ? op->ttl : 0);
	case GITKV_OP_DELETE:
		if ((error = gitkv_meta__path(mp, sizeof(mp), op->key, false)) < 0)
			return error;
		return meta_remove(ovl, mp);
	case GITKV_OP_RMDIR:
		if ((error = gitkv_meta__path(mp, sizeof(mp), op->key, false)) < 0)
			return error;
		return meta_remove(ovl, mp);
	case GITKV_OP_RENAME:
		return meta_moved(ovl, op->key, op->to, before->type == GITKV_TYPE_DIR);
	default:
		return 0;
	}
}

static int apply_op(struct overlay *ovl, struct txn *t)
{
	switch (t->op->type) {
	case GITKV_OP_SET:
		return apply_set(ovl, t);
	case GITKV_OP_DELETE:
		return apply_delete(ovl, t);
	case GITKV_OP_MKDIR:
		return apply_mkdir(ovl, t);
	case GITKV_OP_RMDIR:
		return apply_rmdir(ovl, t);
	case GITKV_OP_RENAME:
		return apply_rename(ovl, t);
	case GITKV_OP_CHMOD:
		return apply_chmod(ovl, t);
	case GITKV_OP_TTL:
		return apply_ttl(ovl, t);
	case GITKV_OP_EXPIRE:
		return apply_expire(ovl, t);
	}
	return gitkv_error_set(GITKV_EINVALID, "unknown operation");
}

static int apply_txn(struct overlay *ovl, struct txn *t)
{
	gitkv_entry before;
	int error;

	eff_lookup(ovl, t->op->key, &before);
	if ((error = apply_op(ovl, t)) != 0)
		return error;
	/* the operation is in the overlay: failing now must fail the whole batch */
	if ((error = meta_follow(ovl, t, &before)) < 0)
		t->fatal = true;
	return error;
}

/* ---- writing trees ----------------------------------------------------- */

struct tree_item {
	const char *name;
	size_t len;
	gitkv_type type;
	gitkv_oid oid;
	struct ov *o;
};

struct tree_build {
	struct tree_item *v;
	size_t n, cap;
};

static int collect_child(const char *name, const gitkv_entry *e, struct ov *o, void *payload)
{
	struct tree_build *b = payload;

	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 32;
		struct tree_item *v = realloc(b->v, cap * sizeof(*v));

		if (!v)
			return gitkv_error_set(GITKV_ERROR, "out of memory");
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n++] = (struct tree_item){ name, strlen(name), e->type, e->oid, o };
	return 0;
}

/* git's tree order: a directory sorts as if its name ended in '/'. */
static int cmp_item(const void *pa, const void *pb)
{
	const struct tree_item *a = pa, *b = pb;
	size_t len = a->len < b->len ? a->len : b->len;
	int cmp = memcmp(a->name, b->name, len);
	unsigned char ca, cb;

	if (cmp)
		return cmp;
	ca = a->len > len ? (unsigned char)a->name[len] : (a->type == GITKV_TYPE_DIR ? '/' : 0);
	cb = b->len > len ? (unsigned char)b->name[len] : (b->type == GITKV_TYPE_DIR ? '/' : 0);
	return (int)ca - (int)cb;
}

static int write_tree(struct overlay *ovl, struct ov *o)
{
	struct tree_build b = { 0 };
	char *buf = NULL;
	size_t len = 0;
	int error = eff_children(ovl, o->path, collect_child, &b);

	for (size_t i = 0; i < b.n && !error; i++) {
		struct ov *c = b.v[i].o;

		if (c && c->e.type == GITKV_TYPE_DIR && (c->dirty || c->replaced)) {
			error = write_tree(ovl, c);
			b.v[i].oid = c->e.oid;
		}
		len += strlen(gitkv_store__mode_str(b.v[i].type)) + b.v[i].len + 2 + GITKV_OID_RAWSZ;
	}
	if (error)
		goto out;
	if (b.n)
		qsort(b.v, b.n, sizeof(*b.v), cmp_item);
	buf = malloc(len ? len : 1);
	if (!buf) {
		error = gitkv_error_set(GITKV_ERROR, "out of memory");
		goto out;
	}
	len = 0;
	for (size_t i = 0; i < b.n; i++) {
		const char *mode = gitkv_store__mode_str(b.v[i].type);
		size_t mlen = strlen(mode);

		memcpy(buf + len, mode, mlen);
		len += mlen;
		buf[len++] = ' ';
		memcpy(buf + len, b.v[i].name, b.v[i].len);
		len += b.v[i].len;
		buf[len++] = '\0';
		memcpy(buf + len, b.v[i].oid.id, GITKV_OID_RAWSZ);
		len += GITKV_OID_RAWSZ;
	}
	error = gitkv_store__write_object(ovl->store, &o->e.oid, buf, len, GIT_OBJECT_TREE);
	o->e.size = b.n;
	o->dirty = false;
out:
	free(buf);
	free(b.v);
	return error;
}

/* ---- publishing the overlay into the snapshot ------------------------- */

static int publish_ov(gitkv_store *store, struct change_list *l, struct ov *o, bool inherited,
		      int64_t t)
{
	struct snap_node *sn = inherited ? gitkv_snapshot__find(store->snap, o->path) : NULL;
	gitkv_entry old = { 0 }, new = o->e;
	bool child_inherited;
	int error = 0;

	if (sn)
		old = sn->e;
	if (new.type == GITKV_TYPE_NONE)
		return sn ? gitkv_store__push_remove_subtree(l, sn) : 0;
	if (sn && old.type != new.type &&
	    (old.type == GITKV_TYPE_DIR || new.type == GITKV_TYPE_DIR)) {
		if ((error = gitkv_store__push_remove_subtree(l, sn)) < 0)
			return error;
		sn = NULL;
		memset(&old, 0, sizeof(old));
	}
	if (new.type != GITKV_TYPE_DIR) {
		if (old.type == new.type && gitkv_oid_equal(&old.oid, &new.oid))
			return 0;
		new.mtime = t;
		return gitkv_store__change_push(l, o->path, sn ? &old : NULL, &new,
						true);
	}
	new.mtime = (old.type == GITKV_TYPE_DIR && gitkv_oid_equal(&old.oid, &new.oid)) ? old.mtime : t;
	if ((error = gitkv_store__change_push(l, o->path, sn ? &old : NULL, &new, !sn)) < 0)
		return error;
	if (sn && o->replaced) {
		for (struct snap_node *c = sn->child; c && !error; c = c->next)
			error = gitkv_store__push_remove_subtree(l, c);
	}
	child_inherited = sn && !o->replaced;
	for (struct ov *c = o->child; c && !error; c = c->next)
		error = publish_ov(store, l, c, child_inherited, t);
	return error;
}

/* ---- commit objects ---------------------------------------------------- */

struct strbuf {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void sb_add(struct strbuf *sb, const char *s, size_t n)
{
	if (sb->oom)
		return;
	if (sb->len + n + 1 > sb->cap) {
		size_t cap = (sb->len + n + 1) * 2;
		char *b = realloc(sb->buf, cap);

		if (!b) {
			sb->oom = true;
			return;
		}
		sb->buf = b;
		sb->cap = cap;
	}
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

static void sb_puts(struct strbuf *sb, const char *s)
{
	sb_add(sb, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void sb_printf(struct strbuf *sb, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		sb_add(sb, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A key in a message: as is, or C-quoted when it holds control bytes. */
static void sb_key(struct strbuf *sb, const char *key)
{
	bool plain = true;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '"' || *p == '\\')
			plain = false;
	if (plain) {
		sb_puts(sb, key);
		return;
	}
	sb_puts(sb, "\"");
	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		if (*p == '\n')
			sb_puts(sb, "\\n");
		else if (*p == '\t')
			sb_puts(sb, "\\t");
		else if (*p == '"' || *p == '\\')
			sb_printf(sb, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			sb_printf(sb, "\\%03o", *p);
		else
			sb_add(sb, (const char *)p, 1);
	}
	sb_puts(sb, "\"");
}

static void describe(struct strbuf *sb, const struct txn *t)
{
	const gitkv_op *op = t->op;
	bool first = true;

	switch (op->type) {
	case GITKV_OP_SET:
		sb_puts(sb, "set ");
		break;
	case GITKV_OP_DELETE:
		sb_puts(sb, "delete ");
		break;
	case GITKV_OP_MKDIR:
		sb_puts(sb, "mkdir ");
		break;
	case GITKV_OP_RMDIR:
		sb_puts(sb, "rmdir ");
		break;
	case GITKV_OP_RENAME:
		sb_puts(sb, "rename ");
		sb_key(sb, op->key);
		sb_puts(sb, " -> ");
		sb_key(sb, op->to);
		return;
	case GITKV_OP_CHMOD:
		sb_puts(sb, op->vtype == GITKV_TYPE_EXEC ? "chmod +x " : "chmod -x ");
		break;
	case GITKV_OP_TTL:
		sb_puts(sb, "ttl ");
		sb_key(sb, op->key);
		if (op->ttl)
			sb_printf(sb, " %llds", (long long)op->ttl);
		else
			sb_puts(sb, " off");
		return;
	case GITKV_OP_EXPIRE:
		sb_puts(sb, "expire ");
		for (size_t i = 0; i < op->nkeys; i++) {
			if (!t->expired || !t->expired[i])
				continue;
			if (!first)
				sb_puts(sb, ", ");
			sb_key(sb, op->keys[i]);
			first = false;
		}
		return;
	}
	sb_key(sb, op->key);
}

/* Names in commit headers: no '<', '>' or control bytes. */
static void sb_ident(struct strbuf *sb, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p >= 0x20 && *p != '<' && *p != '>' && *p != 0x7f)
			sb_add(sb, (const char *)p, 1);
}

static int write_commit(gitkv_store *store, gitkv_oid *out, const gitkv_oid *tree,
			const gitkv_oid *parent, struct txn *batch, int64_t t)
{
	struct strbuf sb = { 0 };
	char hex[GITKV_OID_HEXSZ + 1];
	struct txn *first = NULL, *prev = NULL;
	size_t nchanged = 0;
	int error;

	for (struct txn *x = batch; x; x = x->next)
		if (x->changed) {
			if (!first)
				first = x;
			nchanged++;
		}
	sb_printf(&sb, "tree %s\n", gitkv_oid_fmt(hex, tree));
	if (!gitkv_oid_is_zero(parent))
		sb_printf(&sb, "parent %s\n", gitkv_oid_fmt(hex, parent));
	sb_puts(&sb, "author ");
	sb_ident(&sb, first->author);
	sb_puts(&sb, " <");
	sb_ident(&sb, first->author);
	sb_puts(&sb, "@");
	sb_ident(&sb, store->node);
	sb_printf(&sb, "> %lld +0000\n", (long long)t);
	sb_puts(&sb, "committer ");
	sb_ident(&sb, store->committer);
	sb_puts(&sb, " <");
	sb_ident(&sb, store->committer);
	sb_puts(&sb, "@");
	sb_ident(&sb, store->node);
	sb_printf(&sb, "> %lld +0000\n\n", (long long)t);

	describe(&sb, first);
	if (nchanged > 1) {
		sb_printf(&sb, " (and %zu more)\n\n", nchanged - 1);
		for (struct txn *x = batch; x; x = x->next)
			if (x->changed) {
				describe(&sb, x);
				sb_puts(&sb, "\n");
			}
	} else {
		sb_puts(&sb, "\n");
	}
	sb_puts(&sb, "\n");
	for (struct txn *x = batch; x; x = x->next) {
		if (!x->changed)
			continue;
		if (prev && prev->uid == x->uid && prev->pid == x->pid && !strcmp(prev->comm, x->comm))
			continue;
		sb_printf(&sb, "Gitkv-Uid: %u\nGitkv-Pid: %d\n", (unsigned)x->uid, (int)x->pid);
		if (x->comm[0]) {
			sb_puts(&sb, "Gitkv-Command: ");
			sb_ident(&sb, x->comm);
			sb_puts(&sb, "\n");
		}
		prev = x;
	}
	sb_puts(&sb, "Gitkv-Node: ");
	sb_ident(&sb, store->node);
	sb_puts(&sb, "\n");
	if (sb.oom) {
		free(sb.buf);
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	}
	error = gitkv_store__write_object(store, out, sb.buf, sb.len, GIT_OBJECT_COMMIT);
	free(sb.buf);
	return error;
}

/* ---- the object write seam --------------------------------------------- */

/*
 * Every object the store writes goes through here, so that tests can make
 * the Nth write fail (GITKV_FAULT_WRITE=N[:enospc]) and a faster backend can
 * replace libgit2's later without touching the callers.
 */
static long fault_countdown = -2;
static bool fault_enospc;
static pthread_mutex_t fault_lock = PTHREAD_MUTEX_INITIALIZER;

static bool fault_hit(void)
{
	bool hit = false;

	pthread_mutex_lock(&fault_lock);
	if (fault_countdown == -2) {
		const char *env = getenv("GITKV_FAULT_WRITE");

		fault_countdown = env ? strtol(env, NULL, 10) : -1;
		fault_enospc = env && strstr(env, "enospc");
	}
	if (fault_countdown > 0 && --fault_countdown == 0)
		hit = true;
	pthread_mutex_unlock(&fault_lock);
	return hit;
}

int gitkv_store__write_object(gitkv_store *store, gitkv_oid *out, const void *data, size_t len,
			      git_object_t type)
{
	git_oid id;
	int error;

	if (fault_hit())
		return fault_enospc ? gitkv_error_set(GITKV_ENOSPC, "injected fault: no space left")
				    : gitkv_error_set(GITKV_ERROR, "injected fault: write failed");
	error = git_odb_write(&id, store->odb, data, len, type);
	if (error < 0)
		return gitkv_store__git_error(error, "cannot write an object");
	*out = *git2gk(&id);
	return 0;
}

/* ---- running a batch --------------------------------------------------- */

static int move_branch(gitkv_store *store, const gitkv_oid *commit, const gitkv_oid *base)
{
	git_reference *ref = NULL;
	int error;

	/*
	 * A zero `base` (unborn branch) means "must not exist yet": libgit2
	 * checks that under the ref's lock, unlike a non-forced create.
	 */
	error = git_reference_create_matching(&ref, store->repo, store->branch, gk2git(commit), 1,
					      gk2git(base), NULL);
	git_reference_free(ref);
	if (error == GIT_EMODIFIED || error == GIT_EEXISTS) {
		git_error_clear();
		return GITKV_EMODIFIED;
	}
	if (error == GIT_ELOCKED) {
		/* Another process holds the ref's lock file: it is committing too. */
		git_error_clear();
		if (!gitkv_store__break_stale_lock(store))
			usleep(200 + rand() % 800);
		return GITKV_ELOCKED_RETRY;
	}
	if (error < 0)
		return gitkv_store__git_error(error, "cannot move the branch");
	return 0;
}

static int try_batch(gitkv_store *store, struct txn *batch, gitkv_origin origin, bool *retry,
		     bool *locked)
{
	struct overlay ovl;
	struct change_list list = { 0 };
	gitkv_oid base, commit;
	struct timespec ts;
	bool any = false;
	int64_t now;
	int error;

	*retry = false;
	*locked = false;
	if ((error = gitkv_store__refresh_locked(store, GITKV_ORIGIN_EXTERNAL)) < 0)
		return error;
	gitkv_snapshot_head(store->snap, &base, NULL);
	if ((error = overlay_init(&ovl, store)) < 0)
		goto out;
	clock_gettime(CLOCK_REALTIME, &ts);
	ovl.now = ts.tv_sec;
	ovl.now_frac = ts.tv_nsec != 0;
	for (struct txn *t = batch; t; t = t->next) {
		t->fatal = false;
		t->error = apply_txn(&ovl, t);
		if (t->fatal) {
			error = t->error;
			goto out;
		}
		if (t->error && t->error != GITKV_EUNCHANGED)
			snprintf(t->msg, sizeof(t->msg), "%s", gitkv_error_last());
		t->changed = t->error == 0;
		if (t->error == GITKV_EUNCHANGED)
			t->error = 0;
		any |= t->changed;
		t->result.committed = false;
		t->result.commit = base;
	}
	if (!any)
		goto out;
	if ((error = write_tree(&ovl, ovl.root)) < 0)
		goto out;
	if (gitkv_oid_equal(&ovl.root->e.oid, &gitkv_snapshot__root(store->snap)->e.oid) &&
	    !gitkv_oid_is_zero(&base))
		goto out; /* the changes cancelled out */
	now = ovl.now;
	if ((error = write_commit(store, &commit, &ovl.root->e.oid, &base, batch, now)) < 0)
		goto out;
	error = move_branch(store, &commit, &base);
	if (error == GITKV_EMODIFIED || error == GITKV_ELOCKED_RETRY) {
		*locked = error == GITKV_ELOCKED_RETRY;
		*retry = true;
		error = 0;
		goto out;
	}
	if (error < 0)
		goto out;
	if ((error = publish_ov(store, &list, ovl.root, true, now)) < 0 ||
	    (error = gitkv_store__publish(store, list.v, list.n, &base, &commit,
					  origin)) < 0) {
		/* The commit is on the branch; re-read it rather than trust the overlay. */
		goto out;
	}
	__atomic_fetch_add(&store->stats.commits, 1, __ATOMIC_RELAXED);
	for (struct txn *x = batch; x; x = x->next) {
		x->result.commit = commit;
		x->result.committed = x->changed;
		if (!x->changed)
			continue;
		__atomic_fetch_add(&store->stats.ops, 1, __ATOMIC_RELAXED);
		if (x->op->type == GITKV_OP_SET)
			__atomic_fetch_add(&store->stats.bytes_written, (uint64_t)x->op->len,
					   __ATOMIC_RELAXED);
	}
out:
	overlay_free(&ovl);
	gitkv_store__change_list_free(&list);
	return error;
}

static void run_batch(gitkv_store *store, struct txn *batch, gitkv_origin origin)
{
	int error = 0;
	bool retry = true, locked = false;
	time_t start = time(NULL);

	pthread_mutex_lock(&store->commit_lock);
	for (int i = 0; retry && i < MAX_CAS_RETRIES && time(NULL) - start < MAX_RETRY_SECONDS; i++)
		error = try_batch(store, batch, origin, &retry, &locked);
	if (!error && retry)
		error = locked ? gitkv_error_set(GITKV_ERROR, "the branch is locked by '%s/%s.lock'",
						 store->path, store->branch)
			       : gitkv_error_set(GITKV_ERROR, "the branch keeps moving; gave up");
	if (error) {
		for (struct txn *t = batch; t; t = t->next) {
			t->error = error;
			t->changed = false;
			snprintf(t->msg, sizeof(t->msg), "%s", gitkv_error_last());
		}
	}
	pthread_mutex_unlock(&store->commit_lock);
}

/* ---- the queue --------------------------------------------------------- */

static void writer_identity(gitkv_store *store, struct txn *t, const gitkv_writer *w)
{
	t->uid = w ? w->uid : getuid();
	t->pid = w ? w->pid : getpid();
	t->comm[0] = '\0';
	if (w && w->comm) {
		snprintf(t->comm, sizeof(t->comm), "%s", w->comm);
	} else if (!w) {
		FILE *f = fopen("/proc/self/comm", "r");

		if (f) {
			if (fgets(t->comm, sizeof(t->comm), f))
				t->comm[strcspn(t->comm, "\n")] = '\0';
			fclose(f);
		}
	}
	if (w && w->name) {
		snprintf(t->author, sizeof(t->author), "%s", w->name);
		return;
	}
	pthread_mutex_lock(&store->name_lock);
	if (store->name_uid != t->uid) {
		struct passwd pw, *res = NULL;
		char buf[1024];

		if (getpwuid_r(t->uid, &pw, buf, sizeof(buf), &res) == 0 && res)
			snprintf(store->name_cache, sizeof(store->name_cache), "%s", res->pw_name);
		else
			snprintf(store->name_cache, sizeof(store->name_cache), "uid%u",
				 (unsigned)t->uid);
		store->name_uid = t->uid;
	}
	snprintf(t->author, sizeof(t->author), "%s", store->name_cache);
	pthread_mutex_unlock(&store->name_lock);
}

static int check_op(gitkv_store *store, const gitkv_op *op)
{
	int error;

	if (!op->key)
		return gitkv_error_set(GITKV_EINVALID, "no key");
	if (store->readonly)
		return gitkv_error_set(GITKV_EREADONLY, "the store is read-only");
	if ((error = validate_key(op->key, op->flags)) < 0)
		return error;
	if (op->type == GITKV_OP_RENAME &&
	    (!op->to || (error = validate_key(op->to, op->flags)) < 0))
		return op->to ? error : gitkv_error_set(GITKV_EINVALID, "no destination");
	if (op->type == GITKV_OP_EXPIRE && !op->keys)
		return gitkv_error_set(GITKV_EINVALID, "no keys");
	if ((op->type == GITKV_OP_SET || op->type == GITKV_OP_TTL) &&
	    (op->ttl < 0 || op->ttl > GITKV_TTL_MAX))
		return gitkv_error_set(GITKV_EINVALID, "TTL out of range (0 to %lld seconds)",
				       (long long)GITKV_TTL_MAX);
	if (op->type == GITKV_OP_SET) {
		if (op->len && !op->value)
			return gitkv_error_set(GITKV_EINVALID, "no value");
		if (op->vtype == GITKV_TYPE_LINK) {
			if (op->len == 0 || op->len > MAX_LINK_TARGET ||
			    memchr(op->value, '\0', op->len))
				return gitkv_error_set(op->len > MAX_LINK_TARGET ? GITKV_ENAMETOOLONG
										 : GITKV_EINVALID,
						       "bad symlink target");
		} else if (op->vtype == GITKV_TYPE_DIR) {
			return gitkv_error_set(GITKV_EINVALID, "a value cannot be a directory");
		} else if (op->len > store->max_value_size) {
			return gitkv_error_set(GITKV_ETOOBIG,
					       "value of %zu bytes exceeds max_value_size (%zu)",
					       op->len, store->max_value_size);
		}
	}
	return 0;
}

static void record_latency(gitkv_store *store, const struct timespec *start, int error)
{
	static const double bounds[GITKV_LATENCY_BUCKETS] = GITKV_LATENCY_BOUNDS;
	gitkv_store_stats *st = &store->stats;
	struct timespec end;
	double s;

	if (error) {
		__atomic_fetch_add(&st->failed_ops, 1, __ATOMIC_RELAXED);
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	s = (double)(end.tv_sec - start->tv_sec) + (end.tv_nsec - start->tv_nsec) / 1e9;
	for (int i = 0; i < GITKV_LATENCY_BUCKETS; i++)
		if (s <= bounds[i])
			__atomic_fetch_add(&st->latency_le[i], 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&st->latency_sum_ns, (uint64_t)(s * 1e9), __ATOMIC_RELAXED);
	__atomic_fetch_add(&st->latency_count, 1, __ATOMIC_RELAXED);
}

void gitkv_store_stats_get(gitkv_store *store, gitkv_store_stats *out)
{
	gitkv_store_stats *st = &store->stats;

	out->commits = __atomic_load_n(&st->commits, __ATOMIC_RELAXED);
	out->ops = __atomic_load_n(&st->ops, __ATOMIC_RELAXED);
	out->failed_ops = __atomic_load_n(&st->failed_ops, __ATOMIC_RELAXED);
	out->bytes_written = __atomic_load_n(&st->bytes_written, __ATOMIC_RELAXED);
	out->latency_count = __atomic_load_n(&st->latency_count, __ATOMIC_RELAXED);
	out->latency_sum_ns = __atomic_load_n(&st->latency_sum_ns, __ATOMIC_RELAXED);
	for (int i = 0; i < GITKV_LATENCY_BUCKETS; i++)
		out->latency_le[i] = __atomic_load_n(&st->latency_le[i], __ATOMIC_RELAXED);
}

int gitkv_store_apply(gitkv_store *store, const gitkv_op *op, const gitkv_writer *writer,
		      gitkv_result *result)
{
	struct txn t = { .op = op };
	struct timespec start;
	int error = check_op(store, op);

	clock_gettime(CLOCK_MONOTONIC, &start);

	if (error)
		return error;
	if (op->type == GITKV_OP_SET &&
	    (error = gitkv_store__write_object(store, &t.blob, op->len ? op->value : "", op->len,
					       GIT_OBJECT_BLOB)) < 0)
		return error;
	writer_identity(store, &t, writer);

	pthread_mutex_lock(&store->qlock);
	*store->qtail = &t;
	store->qtail = &t.next;
	while (!t.done) {
		if (!store->leader) {
			struct txn *batch = store->qhead, *next;

			struct txn *indirect = NULL, **itail = &indirect, **pp = &batch;

			store->leader = true;
			store->qhead = NULL;
			store->qtail = &store->qhead;
			pthread_mutex_unlock(&store->qlock);
			/* indirect changes make commits of their own: views replay them */
			while (*pp) {
				if ((*pp)->op->flags & GITKV_OP_INDIRECT) {
					*itail = *pp;
					*pp = (*pp)->next;
					itail = &(*itail)->next;
					*itail = NULL;
				} else {
					pp = &(*pp)->next;
				}
			}
			if (batch)
				run_batch(store, batch, GITKV_ORIGIN_LOCAL);
			if (indirect)
				run_batch(store, indirect, GITKV_ORIGIN_INDIRECT);
			*pp = indirect; /* one list again, to mark done */
			pthread_mutex_lock(&store->qlock);
			for (struct txn *x = batch; x; x = next) {
				next = x->next;
				x->done = true;
			}
			store->leader = false;
			pthread_cond_broadcast(&store->qcond);
		} else {
			pthread_cond_wait(&store->qcond, &store->qlock);
		}
	}
	pthread_mutex_unlock(&store->qlock);
	free(t.expired);
	record_latency(store, &start, t.error);
	if (t.error) /* the message was recorded on the leader's thread: copy it here */
		return gitkv_error_set(t.error, "%s", t.msg);
	if (result)
		*result = t.result;
	return 0;
}

int gitkv_store_set(gitkv_store *store, const char *key, const void *value, size_t len,
		    const gitkv_writer *writer, gitkv_result *result)
{
	gitkv_op op = { .type = GITKV_OP_SET, .key = key, .value = value, .len = len,
			.flags = GITKV_OP_KEEP_TYPE };

	return gitkv_store_apply(store, &op, writer, result);
}

int gitkv_store_delete(gitkv_store *store, const char *key, const gitkv_writer *writer,
		       gitkv_result *result)
{
	gitkv_op op = { .type = GITKV_OP_DELETE, .key = key };

	return gitkv_store_apply(store, &op, writer, result);
}

int gitkv_store_rename(gitkv_store *store, const char *from, const char *to,
		       const gitkv_writer *writer, gitkv_result *result)
{
	gitkv_op op = { .type = GITKV_OP_RENAME, .key = from, .to = to };

	return gitkv_store_apply(store, &op, writer, result);
}
