/*
 * control.h - the virtual, read-only /.gitkv tree of the mount.
 *
 * The branch keeps per-key metadata under the reserved top-level `.gitkv/`;
 * the mount never shows that. In its place `/.gitkv` is a directory made up
 * by the daemon (mode 0555) that reports on the store:
 *
 *   status   JSON: {"head": "<commit or empty>", "keys": N, "node": "...",
 *            "store": "<path>"}, generated when the file is opened.
 *
 * The virtual nodes have fixed inode numbers below FS_INO_FIRST and are not
 * in the inode table: their lookups are not counted and forget ignores them.
 * Nothing in the tree can be created, written, renamed or removed (EROFS).
 *
 * Threads: pure functions over the store's snapshot; any thread.
 */
#ifndef GITKVFS_CONTROL_H
#define GITKVFS_CONTROL_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include <gitkv/store.h>

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
int fs_control_stat(gitkv_store *store, fuse_ino_t ino, struct stat *st);

/*
 * Generate the content of virtual file `ino` into a new malloc'd buffer.
 * Returns 0, EISDIR for the directory, ENOENT, or ENOMEM.
 */
int fs_control_content(gitkv_store *store, fuse_ino_t ino, char **out, size_t *len_out);

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
