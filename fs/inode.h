/*
 * inode.h - the inode table: which inode number the kernel holds for which
 * path, and what the daemon keeps per inode.
 *
 * Keys are paths, so an inode is a path the kernel has looked up (as in
 * libfuse's passthrough_ll): the first lookup of a path creates an inode
 * with a new number, every entry reply adds one to its lookup count, and
 * forget() takes them away; at zero the inode is freed. Numbers are never
 * reused (a 64-bit counter), so a stale number can only miss. The root is
 * inode 1 with path "" and is never freed. Numbers below FS_INO_FIRST are
 * reserved for the virtual /.gitkv tree (control.h) and never in the table.
 *
 * An inode is "linked" while its path leads to it; unlink, rmdir, or a
 * rename over it unlinks it (it stays in the table, found by number, until
 * the kernel forgets it). A rename moves an inode to a new path, and a
 * directory's rename moves every inode below it.
 *
 * Two kinds of inode exist only in memory (the "local" list):
 *   temp   an ignored name (ignore.h): its content is its buffer, it is never
 *          committed, and it lives while linked even if the kernel forgets it.
 *          A temp may hold a pending delete: the key it was renamed from,
 *          hidden from the mount but still on the branch until resolved
 *          (see fs.c, "Temporary files and pending deletes").
 *   fresh  a key created by create() whose first flush has not committed
 *          it yet.
 *
 * Threads: every function here but init and release requires `tab->lock`
 * held by the caller (FUSE worker threads and the notifier thread take it).
 * Only the buffer locks (buffer.h) and the notifier's queue lock (notify.h)
 * are taken under it: nothing that commits, waits for another thread, or
 * calls fuse_lowlevel_notify_* runs under it.
 * Fields marked "immutable" are set at creation; all others are guarded by
 * `tab->lock`, the buffer's own fields by its own lock.
 */
#ifndef GITKVFS_INODE_H
#define GITKVFS_INODE_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "buffer.h"

#define FS_INO_ROOT  ((fuse_ino_t)FUSE_ROOT_ID)
#define FS_INO_FIRST ((fuse_ino_t)16) /* first number handed to a path */

struct fs_inode {
	fuse_ino_t ino;	     /* immutable */
	uint64_t generation; /* immutable */
	mode_t type;	     /* immutable: S_IFREG, S_IFDIR or S_IFLNK */
	char *path;	     /* "" for the root; the key otherwise */
	uint64_t nlookup;    /* the kernel's lookup count */
	unsigned int nopen;  /* open handles attached to `buf` (and pins) */
	bool linked;	     /* `path` leads here */
	bool temp;	     /* in memory only, never committed */
	bool fresh;	     /* created, not committed yet */
	mode_t mode;	     /* permission bits of a temp node */
	char *pending;	     /* temp: the key whose delete waits here, or NULL */
	struct fs_buf *buf;  /* open-file state / a temp's content, or NULL */
	bool listed;	     /* on the local list */

	/* table links */
	struct fs_inode *ino_next;   /* chain in the number hash */
	struct fs_inode *path_next;  /* chain in the path hash (linked only) */
	struct fs_inode *local_prev; /* the local list (temp or fresh, linked) */
	struct fs_inode *local_next;
};

struct fs_inodes {
	pthread_mutex_t lock; /* guards the table and every inode's fields */
	struct fs_inode **by_ino;
	struct fs_inode **by_path;
	size_t nbuckets; /* of each hash; a power of two */
	size_t count;	 /* inodes in the table */
	fuse_ino_t next_ino;
	struct fs_inode *local; /* head of the local list */
	size_t npending;	/* temps holding a pending delete */
	struct fs_inode *root;
};

/* Set up a table holding only the root. Returns 0 or GITKV_ERROR. */
int fs_inodes_init(struct fs_inodes *tab);

/* Free every inode and its buffer. No other thread may use the table. */
void fs_inodes_release(struct fs_inodes *tab);

/* The inode numbered `ino`, linked or not, or NULL. */
struct fs_inode *fs_inode_find(struct fs_inodes *tab, fuse_ino_t ino);

/* The linked inode at `path`, or NULL. */
struct fs_inode *fs_inode_find_path(struct fs_inodes *tab, const char *path);

/*
 * A new linked inode of `type` at `path` (copied), with a lookup count of
 * zero; whichever inode was linked at `path` is unlinked first. NULL when
 * out of memory.
 */
struct fs_inode *fs_inode_add(struct fs_inodes *tab, const char *path, mode_t type);

/*
 * The linked inode at `path` if its type is `type`; otherwise (none, or a
 * stale one of another type, which is unlinked) a new one. NULL when out of
 * memory.
 */
struct fs_inode *fs_inode_get(struct fs_inodes *tab, const char *path, mode_t type);

/* Unlink `inode` from its path (and from the local list); frees it if unused. */
void fs_inode_unlink(struct fs_inodes *tab, struct fs_inode *inode);

/*
 * Move the linked `inode` to `path`; an inode linked there is unlinked.
 * Returns 0 or ENOMEM (nothing changed).
 */
int fs_inode_move(struct fs_inodes *tab, struct fs_inode *inode, const char *path);

/*
 * Rewrite every linked path, and every pending key, below prefix `from`
 * ("from/...") to lie below `to` (neither may be the root ""). Returns 0 or ENOMEM (partially done:
 * only on allocation failure).
 */
int fs_inode_move_tree(struct fs_inodes *tab, const char *from, const char *to);

/* Mark `inode` temp or fresh (or neither), keeping the local list in step. */
void fs_inode_set_local(struct fs_inodes *tab, struct fs_inode *inode, bool temp, bool fresh);

/* Set (or with NULL clear) the pending delete held by temp `inode`. 0 or ENOMEM. */
int fs_inode_set_pending(struct fs_inodes *tab, struct fs_inode *inode, const char *key);

/* The temp holding a pending delete of `key`, or NULL. */
struct fs_inode *fs_inode_find_pending(struct fs_inodes *tab, const char *key);

/* Take `n` lookups away (forget); frees the inode when nothing holds it. */
void fs_inode_forget(struct fs_inodes *tab, struct fs_inode *inode, uint64_t n);

/* Free `inode` if nothing holds it any more (lookups, handles, a temp's link). */
void fs_inode_maybe_free(struct fs_inodes *tab, struct fs_inode *inode);

#endif
