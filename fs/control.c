/*
 * control.c - the virtual /.gitkv tree.
 *
 * Four fixed nodes (/.gitkv, status, history, at) and a table of dynamic
 * ones, made by lookups below history/ and at/ (control.h tells what each
 * stands for and how they are numbered). The table is two chained hashes
 * sharing one bucket count, as the inode table's: by number, and by
 * (parent, name), where several nodes may share a name - what the name
 * resolved to earlier and what it resolves to now - until the kernel
 * forgets the old one.
 *
 * A lookup resolves the name with the store first, holding no lock
 * (history/: the snapshot of HEAD, then for a name HEAD lacks a bounded
 * history walk; at/REV: gitkv_store_lookup_at(), which opens its own
 * repository handle), then finds or adds the node under the table's lock.
 * File contents are generated from the store each time they are opened
 * (the handle keeps them, and they are served with direct_io so the
 * kernel never caches a stale copy); the status's getattr generates it
 * too so that the size it reports is the size a read returns, while a
 * history file's size reads 0 rather than walk history on every stat.
 * Every JSON document is built with json-c: a node name or path may hold
 * any byte. Times are ISO-8601 in UTC; what has not happened yet (a remote
 * never fetched, an unborn branch) is null rather than a made-up value.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include <gitkv/error.h>
#include <gitkv/key.h>
#include <gitkv/snapshot.h>

#include "control.h"
#include "inode.h"

#define INITIAL_BUCKETS 64

static const struct {
	const char *name;
	fuse_ino_t ino;
	mode_t type;
} control_root[] = {
    {"status", FS_INO_STATUS, S_IFREG},
    {"metrics", FS_INO_METRICS, S_IFREG},
    {"history", FS_INO_HISTORY, S_IFDIR},
    {"at", FS_INO_AT, S_IFDIR},
};

#define NROOT (sizeof(control_root) / sizeof(control_root[0]))

enum vnode_kind {
	VNODE_HISTORY, /* history/KEY: a file, or a directory for a prefix */
	VNODE_AT,      /* at/REV/PATH: what PATH is in the commit REV resolved to */
};

/* What a name resolved to: a node's identity and payload. */
struct target {
	enum vnode_kind kind;
	char *path;	   /* HISTORY: the key; AT: the path in the tree, "" for at/REV */
	gitkv_oid commit;  /* AT: the commit */
	gitkv_entry entry; /* AT: the entry in that tree; HISTORY: the type (DIR or FILE) */
};

struct vnode {
	fuse_ino_t ino; /* immutable, like every field but nlookup and the links */
	fuse_ino_t parent;
	char *name;
	struct target t;
	uint64_t nlookup;
	struct vnode *ino_next;
	struct vnode *name_next;
};

struct fs_control_nodes {
	pthread_mutex_t lock; /* guards everything here; a leaf */
	struct vnode **by_ino;
	struct vnode **by_name;
	size_t nbuckets; /* of each hash; a power of two */
	size_t count;
	fuse_ino_t next_ino;
};

/* ---- the table ------------------------------------------------------------------ */

static uint64_t hash_ino(fuse_ino_t ino)
{
	uint64_t h = ino;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static uint64_t hash_name(fuse_ino_t parent, const char *name)
{
	uint64_t h = 14695981039346656037ULL ^ hash_ino(parent); /* FNV-1a */

	for (; *name; name++) {
		h ^= (unsigned char)*name;
		h *= 1099511628211ULL;
	}
	return h;
}

static struct vnode **ino_slot(struct fs_control_nodes *tab, fuse_ino_t ino)
{
	return &tab->by_ino[hash_ino(ino) & (tab->nbuckets - 1)];
}

static struct vnode **name_slot(struct fs_control_nodes *tab, fuse_ino_t parent, const char *name)
{
	return &tab->by_name[hash_name(parent, name) & (tab->nbuckets - 1)];
}

/* Double both hashes; on allocation failure keep the old ones (only slower). */
static void grow(struct fs_control_nodes *tab)
{
	size_t old = tab->nbuckets, n = old * 2;
	struct vnode **by_ino = calloc(n, sizeof(*by_ino)), **by_name = calloc(n, sizeof(*by_name));
	struct vnode *v, *next;

	if (!by_ino || !by_name) {
		free(by_ino);
		free(by_name);
		return;
	}
	for (size_t b = 0; b < old; b++) {
		for (v = tab->by_ino[b]; v; v = next) {
			next = v->ino_next;
			v->ino_next = by_ino[hash_ino(v->ino) & (n - 1)];
			by_ino[hash_ino(v->ino) & (n - 1)] = v;
		}
		for (v = tab->by_name[b]; v; v = next) {
			next = v->name_next;
			v->name_next = by_name[hash_name(v->parent, v->name) & (n - 1)];
			by_name[hash_name(v->parent, v->name) & (n - 1)] = v;
		}
	}
	free(tab->by_ino);
	free(tab->by_name);
	tab->by_ino = by_ino;
	tab->by_name = by_name;
	tab->nbuckets = n;
}

static void vnode_destroy(struct vnode *v)
{
	free(v->name);
	free(v->t.path);
	free(v);
}

static struct vnode *find(struct fs_control_nodes *tab, fuse_ino_t ino)
{
	struct vnode *v = *ino_slot(tab, ino);

	while (v && v->ino != ino)
		v = v->ino_next;
	return v;
}

static bool same_target(const struct target *a, const struct target *b)
{
	if (a->kind != b->kind || a->entry.type != b->entry.type)
		return false;
	return a->kind == VNODE_HISTORY || (gitkv_oid_equal(&a->commit, &b->commit) &&
					    gitkv_oid_equal(&a->entry.oid, &b->entry.oid));
}

/* The node for `name` in `parent` that stands for `t` (any, with `t` NULL), or NULL. */
static struct vnode *find_child(struct fs_control_nodes *tab, fuse_ino_t parent, const char *name,
				const struct target *t)
{
	struct vnode *v = *name_slot(tab, parent, name);

	for (; v; v = v->name_next) {
		if (v->parent == parent && strcmp(v->name, name) == 0 &&
		    (!t || same_target(&v->t, t)))
			return v;
	}
	return NULL;
}

/* The node for `name` in `parent` standing for `t`, made (taking t->path) if needed. */
static struct vnode *find_or_add(struct fs_control_nodes *tab, fuse_ino_t parent, const char *name,
				 struct target *t)
{
	struct vnode *v = find_child(tab, parent, name, t), **slot;

	if (v)
		return v;
	v = calloc(1, sizeof(*v));
	if (!v || !(v->name = strdup(name))) {
		free(v);
		return NULL;
	}
	if (tab->count >= tab->nbuckets)
		grow(tab);
	v->ino = tab->next_ino++;
	v->parent = parent;
	v->t = *t;
	t->path = NULL;
	slot = ino_slot(tab, v->ino);
	v->ino_next = *slot;
	*slot = v;
	slot = name_slot(tab, parent, name);
	v->name_next = *slot;
	*slot = v;
	tab->count++;
	return v;
}

static void unhash(struct vnode **pp, struct vnode *v, bool by_ino)
{
	for (; *pp; pp = by_ino ? &(*pp)->ino_next : &(*pp)->name_next) {
		if (*pp == v) {
			*pp = by_ino ? v->ino_next : v->name_next;
			return;
		}
	}
}

int fs_control_init(struct fs_control_source *src)
{
	struct fs_control_nodes *tab = calloc(1, sizeof(*tab));

	if (tab) {
		tab->nbuckets = INITIAL_BUCKETS;
		tab->next_ino = FS_INO_DYNAMIC;
		tab->by_ino = calloc(tab->nbuckets, sizeof(*tab->by_ino));
		tab->by_name = calloc(tab->nbuckets, sizeof(*tab->by_name));
	}
	if (!tab || !tab->by_ino || !tab->by_name) {
		if (tab) {
			free(tab->by_ino);
			free(tab->by_name);
		}
		free(tab);
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	}
	pthread_mutex_init(&tab->lock, NULL);
	src->nodes = tab;
	return 0;
}

void fs_control_release(struct fs_control_source *src)
{
	struct fs_control_nodes *tab = src->nodes;
	struct vnode *v, *next;

	if (!tab)
		return;
	for (size_t b = 0; b < tab->nbuckets; b++) {
		for (v = tab->by_ino[b]; v; v = next) {
			next = v->ino_next;
			vnode_destroy(v);
		}
	}
	free(tab->by_ino);
	free(tab->by_name);
	pthread_mutex_destroy(&tab->lock);
	free(tab);
	src->nodes = NULL;
}

bool fs_control_is(fuse_ino_t ino)
{
	/* every number below the inode table's first is the control tree's */
	return (ino > FS_INO_ROOT && ino < FS_INO_FIRST) || ino >= FS_INO_DYNAMIC;
}

void fs_control_forget(const struct fs_control_source *src, fuse_ino_t ino, uint64_t n)
{
	struct fs_control_nodes *tab = src->nodes;
	struct vnode *v;

	if (ino < FS_INO_DYNAMIC)
		return; /* the fixed nodes are not counted */
	pthread_mutex_lock(&tab->lock);
	v = find(tab, ino);
	if (v) {
		v->nlookup = n > v->nlookup ? 0 : v->nlookup - n;
		if (!v->nlookup) {
			unhash(ino_slot(tab, ino), v, true);
			unhash(name_slot(tab, v->parent, v->name), v, false);
			tab->count--;
			vnode_destroy(v);
		}
	}
	pthread_mutex_unlock(&tab->lock);
}

/* With the table's lock: a copy of dynamic node `ino`'s target (t->path malloc'd). */
static int copy_target(struct fs_control_nodes *tab, fuse_ino_t ino, struct target *t)
{
	struct vnode *v = find(tab, ino);

	if (!v)
		return ENOENT;
	*t = v->t;
	t->path = strdup(v->t.path);
	return t->path ? 0 : ENOMEM;
}

/* A copy of the target of dynamic node `ino`; free t->path. 0, ENOENT or ENOMEM. */
static int target_of(const struct fs_control_source *src, fuse_ino_t ino, struct target *t)
{
	int err;

	memset(t, 0, sizeof(*t));
	if (ino < FS_INO_DYNAMIC)
		return ENOENT;
	pthread_mutex_lock(&src->nodes->lock);
	err = copy_target(src->nodes, ino, t);
	pthread_mutex_unlock(&src->nodes->lock);
	return err;
}

/* ---- attributes ------------------------------------------------------------------ */

static void stat_fill(struct stat *st, fuse_ino_t ino, mode_t mode, uint64_t size, int64_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = mode;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = (time_t)mtime;
}

static mode_t at_mode(gitkv_type type)
{
	switch (type) {
	case GITKV_TYPE_DIR:
		return S_IFDIR | 0555;
	case GITKV_TYPE_EXEC:
		return S_IFREG | 0555;
	case GITKV_TYPE_LINK:
		return S_IFLNK | 0777;
	default:
		return S_IFREG | 0444;
	}
}

/*
 * The attributes of a dynamic node (safe under the table's lock: the
 * snapshot's reads take only the snapshot's own lock). A history node's
 * time is its key's last change in HEAD (0 for a deleted key); a node
 * below at/ has its commit's.
 */
static void vnode_stat(const struct fs_control_source *src, const struct vnode *v, struct stat *st)
{
	const struct target *t = &v->t;
	gitkv_entry e;
	int64_t mtime = 0;

	if (t->kind == VNODE_AT) {
		stat_fill(st, v->ino, at_mode(t->entry.type),
			  t->entry.size == GITKV_SIZE_UNKNOWN ? 0 : t->entry.size, t->entry.mtime);
		return;
	}
	if (gitkv_snapshot_lookup(gitkv_store_snapshot(src->store), t->path, &e) == 0)
		mtime = e.mtime;
	stat_fill(st, v->ino, t->entry.type == GITKV_TYPE_DIR ? S_IFDIR | 0555 : S_IFREG | 0444, 0,
		  mtime);
}

/* ---- resolving names ---------------------------------------------------------------- */

/* A store code as the errno of a lookup: what does not exist is a miss (ENOENT). */
static int lookup_errno(int code)
{
	switch (code) {
	case 0:
		return 0;
	case GITKV_ENOTFOUND:
	case GITKV_EINVALID:
	case GITKV_ENAMETOOLONG:
	case GITKV_ENOTDIR:
		return ENOENT;
	default:
		return EIO;
	}
}

/* at/REV: the commit `rev` names. */
static int resolve_rev(const struct fs_control_source *src, const char *rev, struct target *t)
{
	int code = gitkv_store_lookup_at(src->store, rev, "", &t->entry, &t->commit);

	if (code < 0)
		return lookup_errno(code);
	t->kind = VNODE_AT;
	t->entry.size = 0;
	return (t->path = strdup("")) ? 0 : ENOMEM;
}

/* Below at/REV: `name` in directory `dir` of that commit's tree. */
static int resolve_at(const struct fs_control_source *src, const struct target *dir,
		      const char *name, struct target *t)
{
	char hex[GITKV_OID_HEXSZ + 1];
	int code;

	if (strcmp(name, GITKV_RESERVED) == 0)
		return ENOENT; /* metadata, not a key */
	if (!(t->path = gitkv_key_join(dir->path, name)))
		return ENOMEM;
	code = gitkv_store_lookup_at(src->store, gitkv_oid_fmt(hex, &dir->commit), t->path,
				     &t->entry, NULL);
	if (code == 0 && t->entry.type == GITKV_TYPE_NONE)
		code = GITKV_ENOTFOUND;
	t->kind = VNODE_AT;
	t->commit = dir->commit;
	return lookup_errno(code);
}

static int first_commit(const gitkv_commit_info *c, void *payload)
{
	*(gitkv_oid *)payload = c->id;
	return 1;
}

/*
 * What the deleted `key` was before the newest commit that changed it: its
 * type in that commit's first parent. ENOENT if no commit (among the walk's
 * bound) ever changed it.
 */
static int type_before_delete(const struct fs_control_source *src, const char *key, gitkv_type *out)
{
	char hex[GITKV_OID_HEXSZ + 1], rev[GITKV_OID_HEXSZ + 2];
	gitkv_oid last = {{0}};
	gitkv_entry e;
	int code;

	code = gitkv_store_history_bounded(src->store, key, 1, FS_CONTROL_LOOKUP_WALK, first_commit,
					   &last);
	if (code < 0)
		return lookup_errno(code);
	if (code == 0)
		return ENOENT;
	snprintf(rev, sizeof(rev), "%s^", gitkv_oid_fmt(hex, &last));
	*out =
	    gitkv_store_lookup_at(src->store, rev, key, &e, NULL) == 0 ? e.type : GITKV_TYPE_FILE;
	return 0;
}

/* Below history/: `name` in the directory of key `dir`, from HEAD or else from history. */
static int resolve_history(const struct fs_control_source *src, const char *dir, const char *name,
			   struct target *t)
{
	gitkv_type type;
	gitkv_entry e;
	int err;

	if (strcmp(name, GITKV_RESERVED) == 0)
		return ENOENT;
	if (!(t->path = gitkv_key_join(dir, name)))
		return ENOMEM;
	if (gitkv_key_validate(t->path) < 0)
		return ENOENT;
	if (gitkv_snapshot_lookup(gitkv_store_snapshot(src->store), t->path, &e) == 0)
		type = e.type;
	else if ((err = type_before_delete(src, t->path, &type)) != 0)
		return err;
	t->kind = VNODE_HISTORY;
	t->entry.type = type == GITKV_TYPE_DIR ? GITKV_TYPE_DIR : GITKV_TYPE_FILE;
	return 0;
}

static void fixed_entry(const struct fs_control_source *src, fuse_ino_t ino,
			struct fuse_entry_param *e)
{
	fs_control_stat(src, ino, &e->attr);
	e->ino = ino;
}

int fs_control_lookup(const struct fs_control_source *src, fuse_ino_t parent, const char *name,
		      struct fuse_entry_param *e)
{
	struct fs_control_nodes *tab = src->nodes;
	struct target dir = {0}, t = {0};
	struct vnode *v;
	int err;

	memset(e, 0, sizeof(*e));
	e->entry_timeout = src->entry_timeout;
	if (parent == FUSE_ROOT_ID) {
		if (strcmp(name, GITKV_RESERVED) == 0)
			fixed_entry(src, FS_INO_CONTROL, e);
		return 0;
	}
	if (parent == FS_INO_CONTROL) {
		for (size_t i = 0; i < NROOT; i++) {
			if (strcmp(control_root[i].name, name) == 0)
				fixed_entry(src, control_root[i].ino, e);
		}
		return 0;
	}
	if (parent == FS_INO_HISTORY) {
		dir.kind = VNODE_HISTORY;
		dir.entry.type = GITKV_TYPE_DIR;
	} else if (parent != FS_INO_AT && (err = target_of(src, parent, &dir)) != 0) {
		return err == ENOENT ? 0 : err;
	}
	/* Only what lies below a resolved revision can never change. */
	if (parent == FS_INO_AT || dir.kind == VNODE_HISTORY)
		e->entry_timeout = 0;
	if (parent == FS_INO_AT)
		err = resolve_rev(src, name, &t);
	else if (dir.entry.type != GITKV_TYPE_DIR)
		err = ENOENT;
	else if (dir.kind == VNODE_HISTORY)
		err = resolve_history(src, dir.path ? dir.path : "", name, &t);
	else
		err = resolve_at(src, &dir, name, &t);
	if (err)
		goto out;

	pthread_mutex_lock(&tab->lock);
	v = find_or_add(tab, parent, name, &t);
	if (v) {
		v->nlookup++;
		vnode_stat(src, v, &e->attr);
		e->ino = v->ino;
		e->generation = 1;
	}
	pthread_mutex_unlock(&tab->lock);
	err = v ? 0 : ENOMEM;
out:
	free(dir.path);
	free(t.path);
	return err == ENOENT ? 0 : err;
}

/* ---- contents ------------------------------------------------------------------------ */

/* `t` (UTC seconds) as ISO-8601 ("2024-05-01T12:00:00Z"), or JSON null for 0: never. */
static json_object *json_time(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return NULL;
	return json_object_new_string(buf);
}

/* A commit id as hex, or JSON null for the zero id. */
static json_object *json_oid(const gitkv_oid *oid)
{
	char hex[GITKV_OID_HEXSZ + 1];

	if (gitkv_oid_is_zero(oid))
		return NULL;
	return json_object_new_string(gitkv_oid_fmt(hex, oid));
}

/* Add `v` (NULL: JSON null) to `obj` as `k`; 0 or -1. */
static int add(json_object *obj, const char *k, json_object *v)
{
	return json_object_object_add(obj, k, v);
}

static json_object *remote_json(const sync_remote_status *st)
{
	json_object *r = json_object_new_object();

	if (!r)
		return NULL;
	if (add(r, "name", json_object_new_string(st->name)) ||
	    add(r, "url", json_object_new_string(st->url)) ||
	    add(r, "last_fetch", json_time(st->last_fetch)) ||
	    add(r, "last_push", json_time(st->last_push)) ||
	    add(r, "last_fetch_ok",
		json_object_new_boolean(st->last_fetch && !st->last_fetch_error)) ||
	    add(r, "last_push_ok",
		json_object_new_boolean(st->last_push && !st->last_push_error)) ||
	    add(r, "last_error",
		st->last_error[0] ? json_object_new_string(st->last_error) : NULL) ||
	    add(r, "failures", json_object_new_int64(st->failures)) ||
	    add(r, "ahead", json_object_new_int64((int64_t)st->ahead)) ||
	    add(r, "behind", json_object_new_int64((int64_t)st->behind)) ||
	    add(r, "lag_s", json_object_new_double(st->lag_s)) ||
	    add(r, "remote_head", json_oid(&st->remote_head))) {
		json_object_put(r);
		return NULL;
	}
	return r;
}

/* "remotes" and "pending_pushes" from the sync engine's status. */
static int add_sync(json_object *obj, const struct fs_control_source *src)
{
	sync_remote_status *st = NULL;
	json_object *remotes = json_object_new_array(), *r;
	size_t n = sync_engine_status(src->engine, NULL, 0), got = 0;
	int64_t pending = 0;
	int err = -1;

	if (!remotes)
		return -1;
	if (n && !(st = calloc(n, sizeof(*st))))
		goto out;
	if (n)
		got = sync_engine_status(src->engine, st, n);
	for (size_t i = 0; i < got && i < n; i++) {
		if (!(r = remote_json(&st[i])) || json_object_array_add(remotes, r)) {
			json_object_put(r);
			goto out;
		}
		pending += (int64_t)st[i].ahead;
	}
	err = add(obj, "remotes", remotes);
	remotes = NULL;
	if (!err)
		err = add(obj, "pending_pushes", json_object_new_int64(pending));
out:
	json_object_put(remotes);
	free(st);
	return err;
}

static int status_json(const struct fs_control_source *src, char **out, size_t *len_out)
{
	gitkv_store *store = src->store;
	gitkv_snapshot *snap = gitkv_store_snapshot(store);
	json_object *obj = json_object_new_object();
	char hex[GITKV_OID_HEXSZ + 1] = ""; /* an unborn branch: "" */
	const char *text;
	gitkv_oid head;
	uint64_t gen;
	size_t len;
	int err = ENOMEM;

	if (!obj)
		return ENOMEM;
	gitkv_snapshot_head(snap, &head, &gen);
	if (!gitkv_oid_is_zero(&head))
		gitkv_oid_fmt(hex, &head);
	if (add(obj, "head", json_object_new_string(hex)) ||
	    add(obj, "keys", json_object_new_int64((int64_t)gitkv_snapshot_count(snap))) ||
	    add(obj, "node", json_object_new_string(gitkv_store_node(store))) ||
	    add(obj, "store", json_object_new_string(gitkv_store_path(store))) ||
	    add(obj, "sync_mode",
		json_object_new_string(src->sync_mode ? src->sync_mode : "async")) ||
	    add(obj, "quorum", json_object_new_int(src->quorum)) || add_sync(obj, src))
		goto out;
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		goto out;
	len = strlen(text);
	*out = malloc(len + 2);
	if (!*out)
		goto out;
	memcpy(*out, text, len);
	(*out)[len++] = '\n';
	(*out)[len] = '\0';
	*len_out = len;
	err = 0;
out:
	json_object_put(obj);
	return err;
}

/* One line of a history file: the same as `gitkv history` prints. */
static int history_line(const gitkv_commit_info *c, void *payload)
{
	char hex[GITKV_OID_HEXSZ + 1], when[32];
	time_t t = (time_t)c->time;
	struct tm tm;

	gitkv_oid_fmt(hex, &c->id);
	if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof(when), "@%lld", (long long)c->time);
	fprintf(payload, "%.12s %s %s %s\n", hex, when, c->author_name ? c->author_name : "",
		c->summary ? c->summary : "");
	return 0;
}

static int history_text(const struct fs_control_source *src, const char *key, char **out,
			size_t *len_out)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	int code;

	if (!f)
		return ENOMEM;
	code = gitkv_store_history_bounded(src->store, key, FS_CONTROL_HISTORY_LINES,
					   FS_CONTROL_HISTORY_WALK, history_line, f);
	if (fclose(f) != 0 && !code) {
		free(text);
		return ENOMEM;
	}
	if (code < 0) {
		fuse_log(FUSE_LOG_ERR, "gitkvfs: cannot read the history of '%s': %s\n", key,
			 gitkv_error_last());
		free(text);
		return EIO;
	}
	*out = text;
	*len_out = len;
	return 0;
}

/* The bytes of blob `oid` (a value at a revision); 0 or EIO. */
static int blob_bytes(const struct fs_control_source *src, const gitkv_oid *oid, char **out,
		      size_t *len_out)
{
	int code = gitkv_store_read_blob(src->store, oid, out, len_out);

	if (code < 0) {
		fuse_log(FUSE_LOG_ERR, "gitkvfs: cannot read a value at a revision: %s\n",
			 gitkv_error_last());
		return EIO;
	}
	return 0;
}

int fs_control_content(const struct fs_control_source *src, fuse_ino_t ino, char **out,
		       size_t *len_out)
{
	struct target t;
	int err;

	switch (ino) {
	case FS_INO_STATUS:
		return status_json(src, out, len_out);
	case FS_INO_METRICS:
		return src->metrics ? src->metrics(src->metrics_payload, out, len_out) : ENOENT;
	case FS_INO_CONTROL:
	case FS_INO_HISTORY:
	case FS_INO_AT:
		return EISDIR;
	}
	if ((err = target_of(src, ino, &t)) != 0)
		return err;
	if (t.entry.type == GITKV_TYPE_DIR)
		err = EISDIR;
	else if (t.kind == VNODE_HISTORY)
		err = history_text(src, t.path, out, len_out);
	else if (t.entry.type == GITKV_TYPE_LINK)
		err = EINVAL;
	else
		err = blob_bytes(src, &t.entry.oid, out, len_out);
	free(t.path);
	return err;
}

int fs_control_readlink(const struct fs_control_source *src, fuse_ino_t ino, char **out)
{
	struct target t;
	size_t len;
	int err = target_of(src, ino, &t);

	*out = NULL;
	if (err)
		return err == ENOENT && ino < FS_INO_DYNAMIC ? EINVAL : err;
	if (t.kind != VNODE_AT || t.entry.type != GITKV_TYPE_LINK)
		err = EINVAL;
	else
		err = blob_bytes(src, &t.entry.oid, out, &len); /* NUL-terminated by the store */
	free(t.path);
	return err;
}

int fs_control_stat(const struct fs_control_source *src, fuse_ino_t ino, struct stat *st)
{
	struct vnode *v;
	char *text;
	size_t len = 0;

	switch (ino) {
	case FS_INO_CONTROL:
	case FS_INO_HISTORY:
	case FS_INO_AT:
		stat_fill(st, ino, S_IFDIR | 0555, 0, 0);
		return 0;
	case FS_INO_STATUS:
	case FS_INO_METRICS:
		if (fs_control_content(src, ino, &text, &len) == 0)
			free(text);
		stat_fill(st, ino, S_IFREG | 0444, len, 0);
		return 0;
	}
	memset(st, 0, sizeof(*st));
	if (ino < FS_INO_DYNAMIC)
		return ENOENT;
	pthread_mutex_lock(&src->nodes->lock);
	v = find(src->nodes, ino);
	if (v)
		vnode_stat(src, v, st);
	pthread_mutex_unlock(&src->nodes->lock);
	return v ? 0 : ENOENT;
}

/* ---- listings ---------------------------------------------------------------------------- */

struct listing {
	struct fs_control_dirent *ents;
	size_t n, cap;
};

static int listing_add(struct listing *l, const char *name, mode_t type)
{
	if (strcmp(name, GITKV_RESERVED) == 0)
		return 0; /* metadata, not a key: never shown */
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct fs_control_dirent *p = realloc(l->ents, cap * sizeof(*p));

		if (!p)
			return ENOMEM;
		l->ents = p;
		l->cap = cap;
	}
	if (!(l->ents[l->n].name = strdup(name)))
		return ENOMEM;
	l->ents[l->n].ino = 0;
	l->ents[l->n].type = type;
	l->n++;
	return 0;
}

/* history/DIR: the children HEAD has (none for a prefix that is gone). */
static int list_history(const struct fs_control_source *src, const char *dir, struct listing *l)
{
	gitkv_dirent *ents = NULL;
	size_t n = 0;
	int err = 0;

	if (gitkv_snapshot_list(gitkv_store_snapshot(src->store), dir, &ents, &n) < 0)
		return 0;
	for (size_t i = 0; !err && i < n; i++)
		err = listing_add(l, ents[i].name,
				  ents[i].entry.type == GITKV_TYPE_DIR ? S_IFDIR : S_IFREG);
	gitkv_dirents_free(ents, n);
	return err;
}

/* 1 (stops the listing) when out of memory. */
static int add_at_entry(const char *name, const gitkv_entry *e, void *payload)
{
	return listing_add(payload, name, at_mode(e->type) & S_IFMT) ? 1 : 0;
}

/* at/REV/DIR: the children of DIR in the commit's tree. */
static int list_at(const struct fs_control_source *src, const struct target *dir, struct listing *l)
{
	char hex[GITKV_OID_HEXSZ + 1];
	int code = gitkv_store_list_at(src->store, gitkv_oid_fmt(hex, &dir->commit), dir->path,
				       add_at_entry, l);

	if (code > 0)
		return ENOMEM;
	if (code < 0) {
		fuse_log(FUSE_LOG_ERR, "gitkvfs: cannot list '%s' at %s: %s\n", dir->path, hex,
			 gitkv_error_last());
		return EIO;
	}
	return 0;
}

void fs_control_dirents_free(struct fs_control_dirent *ents, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(ents[i].name);
	free(ents);
}

int fs_control_list(const struct fs_control_source *src, fuse_ino_t ino,
		    struct fs_control_dirent **out, size_t *count_out)
{
	struct listing l = {0};
	struct target t = {0};
	struct vnode *v;
	int err = 0;

	if (ino == FS_INO_CONTROL) {
		for (size_t i = 0; !err && i < NROOT; i++)
			err = listing_add(&l, control_root[i].name, control_root[i].type);
	} else if (ino == FS_INO_HISTORY) {
		err = list_history(src, "", &l);
	} else if (ino == FS_INO_AT) {
		; /* revisions are endless: nothing */
	} else if (!fs_control_is(ino) || ino < FS_INO_DYNAMIC) {
		err = ino == FS_INO_STATUS || ino == FS_INO_METRICS ? ENOTDIR : ENOENT;
	} else if ((err = target_of(src, ino, &t)) == 0) {
		if (t.entry.type != GITKV_TYPE_DIR)
			err = ENOTDIR;
		else if (t.kind == VNODE_HISTORY)
			err = list_history(src, t.path, &l);
		else
			err = list_at(src, &t, &l);
	}
	free(t.path);
	if (err) {
		fs_control_dirents_free(l.ents, l.n);
		return err;
	}
	/* the numbers of the children the kernel holds already */
	pthread_mutex_lock(&src->nodes->lock);
	for (size_t i = 0; i < l.n; i++) {
		if (ino == FS_INO_CONTROL) {
			l.ents[i].ino = control_root[i].ino;
			continue;
		}
		v = find_child(src->nodes, ino, l.ents[i].name, NULL);
		if (v && (v->t.entry.type == GITKV_TYPE_DIR) == S_ISDIR(l.ents[i].type))
			l.ents[i].ino = v->ino;
	}
	pthread_mutex_unlock(&src->nodes->lock);
	*out = l.ents;
	*count_out = l.n;
	return 0;
}
