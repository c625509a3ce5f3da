/*
 * snapshot.c - the in-memory view of HEAD.
 *
 * Every path of the HEAD tree is a node in one hash table keyed by the full
 * path (FNV-1a), and nodes are linked into a tree (parent, children), so a
 * lookup is one hash probe and a listing walks one node's children. The
 * root ("") always exists and is a directory.
 *
 * Invariants:
 *  (1) a node's parent is in the table and is a directory;
 *  (2) e.oid of a directory is the id of the tree HEAD holds at that path;
 *  (3) the table changes only inside gitkv_snapshot__apply(), under the
 *      write lock, called by the store's committer (one thread at a time).
 *
 * Value sizes are resolved lazily: a node loaded from git carries
 * GITKV_SIZE_UNKNOWN until someone asks, then the size read from the object
 * header is stored back (an idempotent, racy-but-benign relaxed store under
 * the read lock).
 */
#include <stdlib.h>
#include <string.h>

#include "gitkv/error.h"
#include "gitkv/key.h"
#include "snapshot_internal.h"

struct gitkv_snapshot {
	pthread_rwlock_t lock;
	struct snap_node **buckets;	/* protected by lock */
	size_t nbuckets;		/* protected by lock */
	size_t nnodes;			/* protected by lock; root excluded */
	size_t nvalues;			/* protected by lock */
	struct snap_node *root;
	gitkv_oid head;			/* protected by lock */
	uint64_t generation;		/* protected by lock */
	snap_size_fn size_fn;
	void *size_payload;
};

static uint64_t hash_path(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct snap_node *find(gitkv_snapshot *snap, const char *path)
{
	uint64_t h = hash_path(path);
	struct snap_node *n = snap->buckets[h & (snap->nbuckets - 1)];

	for (; n; n = n->hnext)
		if (n->hash == h && !strcmp(n->path, path))
			return n;
	return NULL;
}

static int grow(gitkv_snapshot *snap)
{
	size_t nb = snap->nbuckets * 2;
	struct snap_node **b = calloc(nb, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < snap->nbuckets; i++) {
		struct snap_node *n = snap->buckets[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			n->hnext = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
		}
	}
	free(snap->buckets);
	snap->buckets = b;
	snap->nbuckets = nb;
	return 0;
}

static struct snap_node *node_new(const char *path, const gitkv_entry *e)
{
	struct snap_node *n = calloc(1, sizeof(*n));

	if (!n || !(n->path = strdup(path))) {
		free(n);
		return NULL;
	}
	n->name = gitkv_key_basename(n->path);
	n->e = *e;
	n->hash = hash_path(path);
	return n;
}

static void hash_insert(gitkv_snapshot *snap, struct snap_node *n)
{
	size_t i = n->hash & (snap->nbuckets - 1);

	n->hnext = snap->buckets[i];
	snap->buckets[i] = n;
}

static void hash_remove(gitkv_snapshot *snap, struct snap_node *n)
{
	struct snap_node **pp = &snap->buckets[n->hash & (snap->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == n) {
			*pp = n->hnext;
			return;
		}
}

static void link_child(struct snap_node *parent, struct snap_node *n)
{
	n->parent = parent;
	n->prev = NULL;
	n->next = parent->child;
	if (parent->child)
		parent->child->prev = n;
	parent->child = n;
	parent->nchildren++;
}

static void unlink_child(struct snap_node *n)
{
	struct snap_node *parent = n->parent;

	if (n->prev)
		n->prev->next = n->next;
	else
		parent->child = n->next;
	if (n->next)
		n->next->prev = n->prev;
	parent->nchildren--;
	n->parent = n->next = n->prev = NULL;
}

static void node_free(struct snap_node *n)
{
	free(n->path);
	free(n);
}

/* Remove `n` and everything below it. */
static void remove_subtree(gitkv_snapshot *snap, struct snap_node *n)
{
	while (n->child)
		remove_subtree(snap, n->child);
	unlink_child(n);
	hash_remove(snap, n);
	snap->nnodes--;
	if (gitkv_type_is_value(n->e.type))
		snap->nvalues--;
	node_free(n);
}

gitkv_snapshot *gitkv_snapshot__new(snap_size_fn size_fn, void *payload)
{
	gitkv_snapshot *snap = calloc(1, sizeof(*snap));
	gitkv_entry root = { .type = GITKV_TYPE_DIR };

	if (!snap)
		return NULL;
	snap->nbuckets = 1024;
	snap->buckets = calloc(snap->nbuckets, sizeof(*snap->buckets));
	snap->root = node_new("", &root);
	if (!snap->buckets || !snap->root) {
		free(snap->buckets);
		free(snap->root);
		free(snap);
		return NULL;
	}
	snap->root->name = snap->root->path;
	hash_insert(snap, snap->root);
	pthread_rwlock_init(&snap->lock, NULL);
	snap->size_fn = size_fn;
	snap->size_payload = payload;
	return snap;
}

void gitkv_snapshot__free(gitkv_snapshot *snap)
{
	if (!snap)
		return;
	for (size_t i = 0; i < snap->nbuckets; i++) {
		struct snap_node *n = snap->buckets[i], *next;

		for (; n; n = next) {
			next = n->hnext;
			node_free(n);
		}
	}
	free(snap->buckets);
	pthread_rwlock_destroy(&snap->lock);
	free(snap);
}

struct snap_node *gitkv_snapshot__find(gitkv_snapshot *snap, const char *path)
{
	return find(snap, path);
}

struct snap_node *gitkv_snapshot__root(gitkv_snapshot *snap)
{
	return snap->root;
}

size_t gitkv_snapshot__nodes(gitkv_snapshot *snap)
{
	return snap->nnodes;
}

static int apply_one(gitkv_snapshot *snap, const struct snap_change *c)
{
	struct snap_node *n = find(snap, c->path);

	if (c->new.type == GITKV_TYPE_NONE) {
		if (n && n != snap->root)
			remove_subtree(snap, n);
		return 0;
	}
	if (n) {
		if (n->e.type == GITKV_TYPE_DIR && c->new.type != GITKV_TYPE_DIR)
			while (n->child)
				remove_subtree(snap, n->child);
		if (gitkv_type_is_value(n->e.type))
			snap->nvalues--;
		n->e = c->new;
		if (gitkv_type_is_value(n->e.type))
			snap->nvalues++;
		return 0;
	} else {
		const char *slash = strrchr(c->path, '/');
		struct snap_node *parent;

		if (slash) {
			char *ppath = strndup(c->path, (size_t)(slash - c->path));

			if (!ppath)
				return -1;
			parent = find(snap, ppath);
			free(ppath);
		} else {
			parent = snap->root;
		}
		if (!parent || parent->e.type != GITKV_TYPE_DIR)
			return gitkv_error_set(GITKV_ERROR, "snapshot: no parent for '%s'", c->path);
		if (snap->nnodes + 1 > snap->nbuckets && grow(snap) < 0)
			return gitkv_error_set(GITKV_ERROR, "out of memory");
		n = node_new(c->path, &c->new);
		if (!n)
			return gitkv_error_set(GITKV_ERROR, "out of memory");
		hash_insert(snap, n);
		link_child(parent, n);
		snap->nnodes++;
		if (gitkv_type_is_value(n->e.type))
			snap->nvalues++;
	}
	return 0;
}

int gitkv_snapshot__apply(gitkv_snapshot *snap, struct snap_change *changes, size_t count,
			  const gitkv_oid *new_head)
{
	int error = 0;

	pthread_rwlock_wrlock(&snap->lock);
	for (size_t i = 0; i < count && !error; i++) {
		if (changes[i].path[0] == '\0') {
			snap->root->e = changes[i].new;
			snap->root->e.type = GITKV_TYPE_DIR;
			continue;
		}
		error = apply_one(snap, &changes[i]);
	}
	snap->head = *new_head;
	snap->generation++;
	pthread_rwlock_unlock(&snap->lock);
	return error;
}

static void fill_mtimes(struct snap_node *n, int64_t mtime)
{
	if (!n->e.mtime)
		n->e.mtime = mtime;
	for (struct snap_node *c = n->child; c; c = c->next)
		fill_mtimes(c, mtime);
}

void gitkv_snapshot__fill_mtimes(gitkv_snapshot *snap, int64_t mtime)
{
	pthread_rwlock_wrlock(&snap->lock);
	fill_mtimes(snap->root, mtime);
	pthread_rwlock_unlock(&snap->lock);
}

static size_t count_unresolved(struct snap_node *n)
{
	size_t k = n->e.mtime ? 0 : 1;

	for (struct snap_node *c = n->child; c; c = c->next)
		k += count_unresolved(c);
	return k;
}

size_t gitkv_snapshot__unresolved(gitkv_snapshot *snap)
{
	return count_unresolved(snap->root);
}

/* Resolve an unknown value size outside the lock and remember it. */
static void resolve_size(gitkv_snapshot *snap, const char *path, gitkv_entry *e)
{
	uint64_t size = 0;
	struct snap_node *n;

	if (e->size != GITKV_SIZE_UNKNOWN)
		return;
	if (!snap->size_fn || snap->size_fn(snap->size_payload, &e->oid, &size) < 0) {
		e->size = 0;
		return;
	}
	e->size = size;
	pthread_rwlock_rdlock(&snap->lock);
	n = find(snap, path);
	if (n && gitkv_oid_equal(&n->e.oid, &e->oid))
		__atomic_store_n(&n->e.size, size, __ATOMIC_RELAXED);
	pthread_rwlock_unlock(&snap->lock);
}

int gitkv_snapshot_lookup(gitkv_snapshot *snap, const char *key, gitkv_entry *out)
{
	struct snap_node *n;

	pthread_rwlock_rdlock(&snap->lock);
	n = find(snap, key);
	if (n) {
		*out = n->e;
		out->size = __atomic_load_n(&n->e.size, __ATOMIC_RELAXED);
	}
	pthread_rwlock_unlock(&snap->lock);
	if (!n) {
		memset(out, 0, sizeof(*out));
		return GITKV_ENOTFOUND;
	}
	resolve_size(snap, key, out);
	return 0;
}

static int cmp_dirent(const void *a, const void *b)
{
	return strcmp(((const gitkv_dirent *)a)->name, ((const gitkv_dirent *)b)->name);
}

int gitkv_snapshot_list(gitkv_snapshot *snap, const char *dir, gitkv_dirent **out,
			size_t *count_out)
{
	struct snap_node *n;
	gitkv_dirent *ents = NULL;
	size_t k = 0;
	int error = 0;

	*out = NULL;
	*count_out = 0;
	pthread_rwlock_rdlock(&snap->lock);
	n = find(snap, dir);
	if (!n) {
		error = gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found", dir);
		goto out;
	}
	if (n->e.type != GITKV_TYPE_DIR) {
		error = gitkv_error_set(GITKV_ENOTDIR, "'%s' is not a directory", dir);
		goto out;
	}
	ents = calloc(n->nchildren ? n->nchildren : 1, sizeof(*ents));
	if (!ents) {
		error = gitkv_error_set(GITKV_ERROR, "out of memory");
		goto out;
	}
	for (struct snap_node *c = n->child; c; c = c->next, k++) {
		ents[k].name = strdup(c->name);
		ents[k].entry = c->e;
		ents[k].entry.size = __atomic_load_n(&c->e.size, __ATOMIC_RELAXED);
		if (!ents[k].name) {
			gitkv_dirents_free(ents, k);
			ents = NULL;
			error = gitkv_error_set(GITKV_ERROR, "out of memory");
			goto out;
		}
	}
out:
	pthread_rwlock_unlock(&snap->lock);
	if (error)
		return error;
	for (size_t i = 0; i < k; i++) {
		if (ents[i].entry.size == GITKV_SIZE_UNKNOWN) {
			char *path = gitkv_key_join(dir, ents[i].name);

			if (path)
				resolve_size(snap, path, &ents[i].entry);
			else
				ents[i].entry.size = 0;
			free(path);
		}
	}
	qsort(ents, k, sizeof(*ents), cmp_dirent);
	*out = ents;
	*count_out = k;
	return 0;
}

void gitkv_dirents_free(gitkv_dirent *ents, size_t count)
{
	if (!ents)
		return;
	for (size_t i = 0; i < count; i++)
		free(ents[i].name);
	free(ents);
}

void gitkv_snapshot_head(gitkv_snapshot *snap, gitkv_oid *head_out, uint64_t *generation_out)
{
	pthread_rwlock_rdlock(&snap->lock);
	if (head_out)
		*head_out = snap->head;
	if (generation_out)
		*generation_out = snap->generation;
	pthread_rwlock_unlock(&snap->lock);
}

size_t gitkv_snapshot_count(gitkv_snapshot *snap)
{
	size_t n;

	pthread_rwlock_rdlock(&snap->lock);
	n = snap->nvalues;
	pthread_rwlock_unlock(&snap->lock);
	return n;
}
