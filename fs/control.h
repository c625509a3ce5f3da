/*
 * control.h - the virtual, read-only /.gitkv tree of the mount.
 *
 * The branch keeps per-key metadata under the reserved top-level `.gitkv/`;
 * the mount never shows that. In its place `/.gitkv` is a directory made up
 * by the daemon (mode 0555) that reports on the store:
 *
 *   status   JSON, generated when the file is opened:
 *              head ("" while unborn), keys,  the store and its HEAD
 *              node, store
 *              sync_mode, quorum              the write concern
 *              remotes: [{name, url (credentials redacted), last_fetch,
 *                last_push (ISO-8601 UTC or null), last_fetch_ok,
 *                last_push_ok, last_error (or null), failures, ahead,
 *                behind, lag_s, remote_head (or null)}]
 *              pending_pushes                 the sum of the remotes' ahead
 *
 * The virtual nodes have fixed inode numbers below FS_INO_FIRST and are not
 * in the inode table: their lookups are not counted and forget ignores them.
 * Nothing in the tree can be created, written, renamed or removed (EROFS).
 *
 * Threads: pure functions over the store's snapshot and the sync engine's
 * status (which it copies under its own lock); any thread.
 */
#ifndef GITKVFS_CONTROL_H
#define GITKVFS_CONTROL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <gitkv/store.h>
#include <gitkv_sync/engine.h>

/* What the control files report on. Borrowed; set before the session runs. */
struct fs_control_source {
	gitkv_store *store;
	sync_engine *engine;   /* NULL without remotes */
	const char *sync_mode; /* "async" or "sync" */
	int quorum;
};

#define FS_INO_CONTROL ((fuse_ino_t)2) /* /.gitkv */
#define FS_INO_STATUS  ((fuse_ino_t)3) /* /.gitkv/status */

/* True for the inode numbers of the virtual tree. */
bool fs_control_is(fuse_ino_t ino);

/* The virtual node `name` in directory `parent`, or 0. */
fuse_ino_t fs_control_lookup(fuse_ino_t parent, const char *name);

/*
 * Fill `st` for virtual node `ino` (uid/gid and times left to the caller).
 * Returns 0 or ENOENT.
 */
int fs_control_stat(const struct fs_control_source *src, fuse_ino_t ino, struct stat *st);

/*
 * Generate the content of virtual file `ino` into a new malloc'd buffer.
 * Returns 0, EISDIR for the directory, ENOENT, or ENOMEM.
 */
int fs_control_content(const struct fs_control_source *src, fuse_ino_t ino, char **out,
		       size_t *len_out);

/* One entry of a virtual directory: its name, number and type. */
struct fs_control_dirent {
	const char *name;
	fuse_ino_t ino;
	mode_t type;
};

/*
 * The entries of virtual directory `ino` (a static array) and their count,
 * or NULL if `ino` is not a virtual directory.
 */
const struct fs_control_dirent *fs_control_list(fuse_ino_t ino, size_t *count_out);

#endif
