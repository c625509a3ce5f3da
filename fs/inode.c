/*
 * inode.c - the inode table (see inode.h for what an inode is).
 *
 * Two chained hash tables share one bucket count: by number (every inode)
 * and by path (linked inodes only), so lookup, getattr and the notifier's
 * "is this path known to the kernel" are O(1). Both grow by doubling when
 * the table holds more inodes than buckets. The local list (temps and
 * fresh files) is a short doubly-linked list: readdir merges it into
 * listings and the pending-delete checks scan it, which is cheap because
 * it only ever holds the files editors are busy with.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gitkv/error.h>
#include <gitkv/key.h>

#include "inode.h"

#define INITIAL_BUCKETS 1024

static uint64_t hash_path(const char *s)
{
	uint64_t h = 14695981039346656037ULL; /* FNV-1a */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static uint64_t hash_ino(fuse_ino_t ino)
{
	uint64_t h = ino;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static size_t ino_bucket(const struct fs_inodes *tab, fuse_ino_t ino)
{
	return hash_ino(ino) & (tab->nbuckets - 1);
}

static size_t path_bucket(const struct fs_inodes *tab, const char *path)
{
	return hash_path(path) & (tab->nbuckets - 1);
}

static void ino_insert(struct fs_inodes *tab, struct fs_inode *inode)
{
	size_t b = ino_bucket(tab, inode->ino);

	inode->ino_next = tab->by_ino[b];
	tab->by_ino[b] = inode;
}

static void ino_remove(struct fs_inodes *tab, struct fs_inode *inode)
{
	struct fs_inode **pp = &tab->by_ino[ino_bucket(tab, inode->ino)];

	for (; *pp; pp = &(*pp)->ino_next) {
		if (*pp == inode) {
			*pp = inode->ino_next;
			return;
		}
	}
}

static void path_insert(struct fs_inodes *tab, struct fs_inode *inode)
{
	size_t b = path_bucket(tab, inode->path);

	inode->path_next = tab->by_path[b];
	tab->by_path[b] = inode;
}

static void path_remove(struct fs_inodes *tab, struct fs_inode *inode)
{
	struct fs_inode **pp = &tab->by_path[path_bucket(tab, inode->path)];

	for (; *pp; pp = &(*pp)->path_next) {
		if (*pp == inode) {
			*pp = inode->path_next;
			return;
		}
	}
}

/* Double both hashes; on allocation failure keep the old ones (only slower). */
static void grow(struct fs_inodes *tab)
{
	size_t old = tab->nbuckets, n = old * 2;
	struct fs_inode **by_ino, **by_path, *inode, *next;

	by_ino = calloc(n, sizeof(*by_ino));
	by_path = calloc(n, sizeof(*by_path));
	if (!by_ino || !by_path) {
		free(by_ino);
		free(by_path);
		return;
	}
	tab->nbuckets = n;
	for (size_t b = 0; b < old; b++) {
		for (inode = tab->by_ino[b]; inode; inode = next) {
			next = inode->ino_next;
			inode->ino_next = by_ino[hash_ino(inode->ino) & (n - 1)];
			by_ino[hash_ino(inode->ino) & (n - 1)] = inode;
		}
		for (inode = tab->by_path[b]; inode; inode = next) {
			next = inode->path_next;
			inode->path_next = by_path[hash_path(inode->path) & (n - 1)];
			by_path[hash_path(inode->path) & (n - 1)] = inode;
		}
	}
	free(tab->by_ino);
	free(tab->by_path);
	tab->by_ino = by_ino;
	tab->by_path = by_path;
}

static struct fs_inode *inode_new(struct fs_inodes *tab, const char *path, mode_t type,
				  fuse_ino_t ino)
{
	struct fs_inode *inode = calloc(1, sizeof(*inode));

	if (!inode)
		return NULL;
	inode->path = strdup(path);
	if (!inode->path) {
		free(inode);
		return NULL;
	}
	inode->ino = ino;
	inode->generation = 1;
	inode->type = type;
	inode->mode = type == S_IFDIR ? 0755 : type == S_IFLNK ? 0777 : 0644;
	inode->linked = true;
	if (tab->count >= tab->nbuckets)
		grow(tab);
	ino_insert(tab, inode);
	path_insert(tab, inode);
	tab->count++;
	return inode;
}

static void inode_destroy(struct fs_inode *inode)
{
	fs_buf_free(inode->buf);
	free(inode->pending);
	free(inode->path);
	free(inode);
}

int fs_inodes_init(struct fs_inodes *tab)
{
	memset(tab, 0, sizeof(*tab));
	pthread_mutex_init(&tab->lock, NULL);
	tab->nbuckets = INITIAL_BUCKETS;
	tab->by_ino = calloc(tab->nbuckets, sizeof(*tab->by_ino));
	tab->by_path = calloc(tab->nbuckets, sizeof(*tab->by_path));
	tab->next_ino = FS_INO_FIRST;
	if (tab->by_ino && tab->by_path)
		tab->root = inode_new(tab, "", S_IFDIR, FS_INO_ROOT);
	if (!tab->root) {
		free(tab->by_ino);
		free(tab->by_path);
		tab->by_ino = tab->by_path = NULL;
		pthread_mutex_destroy(&tab->lock);
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	}
	return 0;
}

void fs_inodes_release(struct fs_inodes *tab)
{
	struct fs_inode *inode, *next;

	if (!tab->by_ino)
		return;
	for (size_t b = 0; b < tab->nbuckets; b++) {
		for (inode = tab->by_ino[b]; inode; inode = next) {
			next = inode->ino_next;
			inode_destroy(inode);
		}
	}
	free(tab->by_ino);
	free(tab->by_path);
	tab->by_ino = tab->by_path = NULL;
	pthread_mutex_destroy(&tab->lock);
}

struct fs_inode *fs_inode_find(struct fs_inodes *tab, fuse_ino_t ino)
{
	struct fs_inode *inode = tab->by_ino[ino_bucket(tab, ino)];

	while (inode && inode->ino != ino)
		inode = inode->ino_next;
	return inode;
}

struct fs_inode *fs_inode_find_path(struct fs_inodes *tab, const char *path)
{
	struct fs_inode *inode = tab->by_path[path_bucket(tab, path)];

	while (inode && strcmp(inode->path, path) != 0)
		inode = inode->path_next;
	return inode;
}

struct fs_inode *fs_inode_add(struct fs_inodes *tab, const char *path, mode_t type)
{
	struct fs_inode *old = fs_inode_find_path(tab, path);

	if (old)
		fs_inode_unlink(tab, old);
	return inode_new(tab, path, type, tab->next_ino++);
}

struct fs_inode *fs_inode_get(struct fs_inodes *tab, const char *path, mode_t type)
{
	struct fs_inode *inode = fs_inode_find_path(tab, path);

	if (inode && inode->type == type)
		return inode;
	return fs_inode_add(tab, path, type);
}

static void local_remove(struct fs_inodes *tab, struct fs_inode *inode)
{
	if (!inode->listed)
		return;
	if (inode->local_prev)
		inode->local_prev->local_next = inode->local_next;
	else
		tab->local = inode->local_next;
	if (inode->local_next)
		inode->local_next->local_prev = inode->local_prev;
	inode->local_prev = inode->local_next = NULL;
	inode->listed = false;
}

static void local_insert(struct fs_inodes *tab, struct fs_inode *inode)
{
	if (inode->listed)
		return;
	inode->local_prev = NULL;
	inode->local_next = tab->local;
	if (tab->local)
		tab->local->local_prev = inode;
	tab->local = inode;
	inode->listed = true;
}

void fs_inode_set_local(struct fs_inodes *tab, struct fs_inode *inode, bool temp, bool fresh)
{
	if (!temp)
		fs_inode_set_pending(tab, inode, NULL);
	inode->temp = temp;
	inode->fresh = fresh;
	if (inode->linked && (temp || fresh))
		local_insert(tab, inode);
	else
		local_remove(tab, inode);
}

int fs_inode_set_pending(struct fs_inodes *tab, struct fs_inode *inode, const char *key)
{
	char *copy = NULL;

	if (key && !(copy = strdup(key)))
		return ENOMEM;
	if (inode->pending)
		tab->npending--;
	free(inode->pending);
	inode->pending = copy;
	if (copy)
		tab->npending++;
	return 0;
}

struct fs_inode *fs_inode_find_pending(struct fs_inodes *tab, const char *key)
{
	if (!tab->npending)
		return NULL;
	for (struct fs_inode *i = tab->local; i; i = i->local_next) {
		if (i->pending && strcmp(i->pending, key) == 0)
			return i;
	}
	return NULL;
}

void fs_inode_unlink(struct fs_inodes *tab, struct fs_inode *inode)
{
	if (!inode->linked || inode == tab->root)
		return;
	local_remove(tab, inode);
	fs_inode_set_pending(tab, inode, NULL);
	path_remove(tab, inode);
	inode->linked = false;
	fs_inode_maybe_free(tab, inode);
}

int fs_inode_move(struct fs_inodes *tab, struct fs_inode *inode, const char *path)
{
	struct fs_inode *old;
	char *copy;

	if (strcmp(inode->path, path) == 0)
		return 0;
	copy = strdup(path);
	if (!copy)
		return ENOMEM;
	old = fs_inode_find_path(tab, path);
	if (old && old != inode)
		fs_inode_unlink(tab, old);
	if (inode->linked)
		path_remove(tab, inode);
	free(inode->path);
	inode->path = copy;
	if (inode->linked)
		path_insert(tab, inode);
	return 0;
}

/* `to` followed by what follows prefix `from` in `path` (which lies below it). */
static char *rebase(const char *path, const char *from, const char *to)
{
	const char *rest = path + strlen(from); /* "/..." */
	size_t tl = strlen(to), rl = strlen(rest);
	char *p = malloc(tl + rl + 1);

	if (!p)
		return NULL;
	memcpy(p, to, tl);
	memcpy(p + tl, rest, rl + 1);
	return p;
}

static bool strictly_below(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 && path[n] == '/';
}

int fs_inode_move_tree(struct fs_inodes *tab, const char *from, const char *to)
{
	struct fs_inode *moved = NULL, *inode, *next;
	int err = 0;

	/* Collect first (unhashing as we go), then rehash under the new paths. */
	for (size_t b = 0; b < tab->nbuckets; b++) {
		for (inode = tab->by_ino[b]; inode; inode = inode->ino_next) {
			if (inode->pending && strictly_below(inode->pending, from)) {
				char *p = rebase(inode->pending, from, to);

				if (p) {
					free(inode->pending);
					inode->pending = p;
				} else {
					err = ENOMEM;
				}
			}
			if (!inode->linked || !strictly_below(inode->path, from))
				continue;
			path_remove(tab, inode);
			inode->path_next = moved;
			moved = inode;
		}
	}
	for (inode = moved; inode; inode = next) {
		char *p = rebase(inode->path, from, to);

		next = inode->path_next;
		if (p) {
			free(inode->path);
			inode->path = p;
		} else {
			err = ENOMEM;
		}
		path_insert(tab, inode);
	}
	return err;
}

void fs_inode_maybe_free(struct fs_inodes *tab, struct fs_inode *inode)
{
	if (inode == tab->root || inode->nlookup || inode->nopen)
		return;
	if (inode->linked && inode->temp)
		return; /* a temp file exists until it is unlinked */
	if (inode->linked && inode->fresh)
		return; /* committed at its flush, or dropped at its release */
	if (inode->linked)
		path_remove(tab, inode);
	local_remove(tab, inode);
	if (inode->pending)
		tab->npending--;
	ino_remove(tab, inode);
	tab->count--;
	inode_destroy(inode);
}

void fs_inode_forget(struct fs_inodes *tab, struct fs_inode *inode, uint64_t n)
{
	inode->nlookup = n > inode->nlookup ? 0 : inode->nlookup - n;
	fs_inode_maybe_free(tab, inode);
}
