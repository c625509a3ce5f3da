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
 *   history/ the keys of HEAD, mirrored: history/KEY is a file listing the
 *            commits that changed KEY, newest first, one a line:
 *              <sha, 12 digits> <ISO-8601 UTC time> <author> <summary>
 *            (at most FS_CONTROL_HISTORY_LINES lines, found among the
 *            FS_CONTROL_HISTORY_WALK newest commits). A prefix is a
 *            directory. A name HEAD does not have but that a commit among
 *            the FS_CONTROL_LOOKUP_WALK newest changed (a deleted key)
 *            still resolves, as what it was before it was deleted, and is
 *            not listed. (A lookup may be anyone's stray probe, so its
 *            walk is the shorter one.)
 *   at/REV/  the tree of revision REV (a commit id, full or abbreviated, a
 *            tag, HEAD~N: git's syntax, in one path component), values
 *            read-only with their size and exec bit, symlinks as symlinks.
 *            at/ itself lists nothing (REVs are endless), so `find` stays
 *            finite; an unknown REV is ENOENT.
 * The reserved name .gitkv never shows below history/ or at/REV/.
 *
 * Inode numbers. The fixed nodes (/.gitkv, status, history, at) have
 * numbers below FS_INO_FIRST (inode.h). The nodes below history/ and at/
 * are made on lookup and numbered from FS_INO_DYNAMIC (2^62) up, never
 * reused, far above anything the inode table hands out. Such a node is
 * what one name in one parent resolved to: a history node keeps its key
 * and whether it is a directory; a node below at/ keeps the commit REV
 * resolved to, its path in that commit's tree and its entry. A lookup
 * whose answer differs (HEAD~1 after a commit, a key that became a
 * prefix) makes a new node. Nodes count the kernel's lookups and go with
 * its forgets.
 *
 * Kernel caching. history/ follows HEAD and at/REV re-resolves REV, so
 * their entries (misses included) and every dynamic node's attributes
 * have no timeout: each path walk asks again. Below at/REV a node stands
 * for a fixed commit and can never change: its entries get the mount's
 * entry timeout. Files are served with direct_io from content generated
 * at open; a history file's size reads 0 (it is only generated when
 * opened, as for a /proc file), a value's is its blob's.
 *
 * Nothing in the tree can be created, written, renamed, removed or have
 * its attributes changed (EROFS), and nothing here ever commits.
 *
 * Threads: any FUSE worker thread. The dynamic nodes are guarded by the
 * table's own lock, a leaf: the store is called with it released, but for
 * the snapshot's lookups, which take only the snapshot's own lock. The
 * status reads the sync engine's status (copied under its own lock).
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

struct fs_control_nodes;

/* What the control files report on. Set before the session runs. */
struct fs_control_source {
	gitkv_store *store;    /* borrowed */
	sync_engine *engine;   /* borrowed; NULL without remotes */
	const char *sync_mode; /* "async" or "sync" */
	int quorum;
	double entry_timeout;		/* the mount's, for entries that never change */
	/* renders .gitkv/metrics (fs/metrics.c) into a malloc'd buffer: 0 or an errno */
	int (*metrics)(void *payload, char **out, size_t *len_out);
	void *metrics_payload;
	struct fs_control_nodes *nodes; /* the dynamic nodes: fs_control_init() */
};

#define FS_INO_CONTROL ((fuse_ino_t)2) /* /.gitkv */
#define FS_INO_STATUS  ((fuse_ino_t)3) /* /.gitkv/status */
#define FS_INO_HISTORY ((fuse_ino_t)4) /* /.gitkv/history */
#define FS_INO_AT      ((fuse_ino_t)5) /* /.gitkv/at */
#define FS_INO_METRICS ((fuse_ino_t)6) /* /.gitkv/metrics */
#define FS_INO_DYNAMIC ((fuse_ino_t)1 << 62)

#define FS_CONTROL_HISTORY_LINES 1000
#define FS_CONTROL_HISTORY_WALK	 100000
#define FS_CONTROL_LOOKUP_WALK	 10000

/* Set up the table of dynamic nodes. Returns 0 or GITKV_ERROR. */
int fs_control_init(struct fs_control_source *src);

/* Free the dynamic nodes. `src` may be zeroed (never initialised). */
void fs_control_release(struct fs_control_source *src);

/* True for the inode numbers of the virtual tree. */
bool fs_control_is(fuse_ino_t ino);

/*
 * Look `name` up in virtual directory `parent` (or .gitkv in the root):
 * fills `e` (number, attributes, timeouts; uid/gid and a zero time left to
 * the caller) and counts the lookup. A miss is 0 with e->ino 0 (a negative
 * entry for e->entry_timeout). Returns 0, or an errno (EIO, ENOMEM).
 */
int fs_control_lookup(const struct fs_control_source *src, fuse_ino_t parent, const char *name,
		      struct fuse_entry_param *e);

/* Take `n` lookups away from virtual node `ino` (forget). */
void fs_control_forget(const struct fs_control_source *src, fuse_ino_t ino, uint64_t n);

/*
 * Fill `st` for virtual node `ino` (uid/gid, and the times when they are
 * left 0, to the caller). Returns 0 or ENOENT.
 */
int fs_control_stat(const struct fs_control_source *src, fuse_ino_t ino, struct stat *st);

/*
 * Generate the content of virtual file `ino` into a new malloc'd buffer.
 * Returns 0, EISDIR for a directory, EINVAL for a symlink, ENOENT, EIO or
 * ENOMEM.
 */
int fs_control_content(const struct fs_control_source *src, fuse_ino_t ino, char **out,
		       size_t *len_out);

/* The target of virtual symlink `ino` (malloc'd). 0, EINVAL (no symlink), ENOENT or EIO. */
int fs_control_readlink(const struct fs_control_source *src, fuse_ino_t ino, char **out);

/* One entry of a virtual directory: its name, number (0: not looked up yet) and type. */
struct fs_control_dirent {
	char *name;
	fuse_ino_t ino;
	mode_t type;
};

/*
 * The entries of virtual directory `ino`, "." and ".." aside, into a new
 * array (free it with fs_control_dirents_free()). Returns 0, ENOTDIR,
 * ENOENT, EIO or ENOMEM.
 */
int fs_control_list(const struct fs_control_source *src, fuse_ino_t ino,
		    struct fs_control_dirent **out, size_t *count_out);

void fs_control_dirents_free(struct fs_control_dirent *ents, size_t count);

#endif
