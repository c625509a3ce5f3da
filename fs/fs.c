/*
 * fs.c - the FUSE operations of gitkvfs.
 *
 * Each operation is a short fs_<op>() that calls a do_<op>() helper
 * returning 0 or a positive errno, then sends exactly one reply. Core codes
 * become errno values in one place, commit() (gitkv_error_errno()).
 *
 * Reading. Names are resolved against the store's snapshot (a hash lookup;
 * no git tree is read), with two in-memory overlays consulted first: local
 * inodes (temporary files and freshly created keys, inode.h) and pending
 * deletes, which hide a key. Files are 0644 (0755 with git's exec bit),
 * directories 0755, symlinks 0777, less the bits of -o umask; sizes and
 * mtimes come from the entries; every file belongs to -o uid and gid (by
 * default the daemon's user and group).
 *
 * Commit on flush. open() attaches the key's shared buffer (buffer.h),
 * loading the blob on first use; writes from every handle go to it; flush()
 * and fsync() commit it with one GITKV_OP_SET when it is dirty, so when
 * `echo x > key` returns the commit exists, and writing the bytes the key
 * already holds makes no commit (the store notices). create() makes a
 * "fresh" inode with an empty dirty buffer, so `touch key` commits an empty
 * value at its close. The buffer goes with the last release. Two refinements
 * keep one command one commit with nothing half-done on the branch: a
 * flush of a file that was only truncated or created, while the flushing
 * process still holds it open through another descriptor (the shell's
 * open, dup2, close for `echo x > key`), leaves the commit to the last
 * close (still_open()); and after a failed write (EFBIG) the next flush
 * drops the changes instead of committing part of them.
 *
 * Temporary files and pending deletes. A file whose name matches the ignore
 * patterns (ignore.h) lives in memory only, with any mode, and shows in
 * listings beside the keys. Renaming it onto a real name commits its bytes
 * as a SET of that key: this is how `sed -i` (temp sedXXXXXX, rename over
 * the key) makes one commit. Editors that keep a backup do the opposite
 * first: vim renames `host` to `host~`, writes a new `host`, and unlinks
 * `host~`. Renaming a key to an ignored name therefore commits nothing: the
 * key's inode becomes a temp holding the key's bytes and a *pending delete*
 * of the key, which hides the key from the mount. Then
 *   - creating the key again cancels the delete (the new bytes commit as a
 *     modification: vim's save is one commit "set host");
 *   - renaming the temp back onto the key commits its bytes (nothing when
 *     unchanged); onto another name, a rename (or a set and a delete);
 *   - unlinking the temp, or replacing it, commits the delete;
 *   - at unmount, fs_commit_pending() commits whatever is still pending.
 *
 * Kernel caching. Entry and attribute timeouts are long and a failed lookup
 * is a negative entry, because the daemon sees every change: its own the
 * kernel saw happen, and external ones (the CLI, a push into the store, the
 * sync thread's merges) arrive through the store's change stream, which the
 * replay thread (replay.h) performs through the mount - the kernel then
 * sees them happen too - or, with -o noreplay, the notifier thread
 * (notify.h) turns into exact invalidations by fs_invalidate_paths().
 *
 * Replayed requests. A request whose pid is the replay thread's id is the
 * daemon itself replaying a change that is already committed: the replay_*
 * helpers answer it from the snapshot and the replay view (replay.h) and
 * change the inode table only - no commit, no buffer touched but marked
 * stale - with HANDLE_REPLAY handles whose writes are dropped. A replayed
 * request for a path that a local in-memory file shadows fails with EBUSY,
 * and the replay thread invalidates that path instead.
 *
 * Write concern (sync_mode=sync). After a flush or fsync that committed,
 * acknowledge() waits, holding no lock, until `quorum` remotes hold the
 * commit, and turns a timeout into EIO (the commit stays, and is pushed
 * later). An exclusive create that is not a temp asks the sync engine to
 * create the key on the first remote first (create_exclusive()): another
 * node's earlier create is EEXIST at open() time.
 *
 * The virtual /.gitkv tree is control.c's; the operations here route its
 * inode numbers there and refuse changes to it with EROFS.
 *
 * Locking is described in fs.h.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include <gitkv/error.h>
#include <gitkv/key.h>
#include <gitkv/meta.h>
#include <gitkv/snapshot.h>
#include <gitkv/store.h>

#include "buffer.h"
#include "control.h"
#include "fs.h"
#include "ignore.h"
#include "inode.h"
#include "metrics.h"
#include "notify.h"
#include "replay.h"

/* d_ino for a directory entry whose inode the kernel has not looked up. */
#define FS_INO_UNKNOWN ((fuse_ino_t)0xffffffffu)

/* An open file or directory: fi->fh. */
struct fs_handle {
	enum { HANDLE_FILE, HANDLE_CONTROL, HANDLE_DIR, HANDLE_REPLAY } kind;
	int flags;		/* open(2) flags */
	struct fs_inode *inode; /* FILE: attached (nopen counts us) */
	struct fs_buf *buf;	/* FILE: inode->buf, stable while attached */
	char *data;		/* CONTROL: the generated content */
	size_t size;
	struct dir_ent *ents; /* DIR: the listing taken at opendir */
	size_t nents;
	bool wrote;		/* FILE: written through since its last flush (atomic) */
};

struct dir_ent {
	char *name;
	fuse_ino_t ino;
	mode_t type;
};

/* What a path names: nothing, a key in the snapshot, or a local inode. */
struct node {
	enum { NODE_NONE, NODE_KEY, NODE_LOCAL } kind;
	gitkv_entry entry;	/* KEY */
	struct fs_inode *local; /* LOCAL */
	bool expired;		/* NONE: a value past its expiry, not reaped yet */
};

static struct gitkvfs *fs_of(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

/* True if `req` comes from the replay thread: already committed, kernel view only. */
static bool is_replay(struct gitkvfs *fs, fuse_req_t req)
{
	return fs->replay && fs_replay_is_own(fs->replay, fuse_req_ctx(req)->pid);
}

/* ---- small helpers -------------------------------------------------------- */

static mode_t ifmt_of(gitkv_type t)
{
	switch (t) {
	case GITKV_TYPE_DIR:
		return S_IFDIR;
	case GITKV_TYPE_LINK:
		return S_IFLNK;
	default:
		return S_IFREG;
	}
}

static mode_t perm_of(gitkv_type t)
{
	switch (t) {
	case GITKV_TYPE_EXEC:
	case GITKV_TYPE_DIR:
		return 0755;
	case GITKV_TYPE_LINK:
		return 0777;
	default:
		return 0644;
	}
}

/* The value type a temp file of `type` and permission bits `mode` commits as. */
static gitkv_type vtype_of_mode(mode_t type, mode_t mode)
{
	if (type == S_IFLNK)
		return GITKV_TYPE_LINK;
	return (mode & 0100) ? GITKV_TYPE_EXEC : GITKV_TYPE_FILE;
}

static bool is_writable(int flags)
{
	return (flags & O_ACCMODE) != O_RDONLY;
}

/* True if `path` lies strictly below directory `dir` ("" is the root). */
static bool below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (!n)
		return *path != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/* True if `path` is a direct child of directory `dir`. */
static bool child_of(const char *path, const char *dir)
{
	if (!below(path, dir))
		return false;
	return !strchr(path + strlen(dir) + (*dir ? 1 : 0), '/');
}

static bool ignored(struct gitkvfs *fs, const char *name)
{
	return fs_ignore_match(fs->ignore, name, strlen(name));
}

/* Read /proc/PID/comm into `out` (newline trimmed); false if it cannot. */
static bool read_comm(pid_t pid, char *out, size_t size)
{
	char path[64];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(out, (int)size, f) != NULL;
	fclose(f);
	if (ok)
		out[strcspn(out, "\n")] = '\0';
	return ok && *out;
}

struct writer_buf {
	gitkv_writer w;
	char comm[32];
};

/* Who made request `req` (NULL req or no context: the daemon itself). */
static const gitkv_writer *writer_of(fuse_req_t req, struct writer_buf *wb)
{
	const struct fuse_ctx *ctx = req ? fuse_req_ctx(req) : NULL;

	if (!ctx)
		return NULL;
	memset(wb, 0, sizeof(*wb));
	wb->w.uid = ctx->uid;
	wb->w.pid = ctx->pid;
	if (ctx->pid > 0 && read_comm(ctx->pid, wb->comm, sizeof(wb->comm)))
		wb->w.comm = wb->comm;
	return &wb->w;
}

/*
 * Apply `op` on behalf of `req`; 0 or an errno. The one place core codes
 * become errno values; failures that are not the caller's doing are logged
 * (with the key, never the value). `result` may be NULL.
 */
static int commit_result(struct gitkvfs *fs, fuse_req_t req, const gitkv_op *op,
			 gitkv_result *result)
{
	struct writer_buf wb;
	int code = gitkv_store_apply(fs->store, op, writer_of(req, &wb), result);

	if (code == 0)
		return 0;
	if (code == GITKV_ERROR || code == GITKV_ENOSPC)
		fuse_log(FUSE_LOG_ERR, "gitkvfs: cannot commit a change of '%s': %s\n", op->key,
			 gitkv_error_last());
	return gitkv_error_errno(code);
}

static int commit(struct gitkvfs *fs, fuse_req_t req, const gitkv_op *op)
{
	return commit_result(fs, req, op, NULL);
}

static int commit_delete(struct gitkvfs *fs, fuse_req_t req, const char *key)
{
	gitkv_op op = {.type = GITKV_OP_DELETE, .key = key};
	int err = commit(fs, req, &op);

	return err == ENOENT ? 0 : err; /* already gone: what we wanted */
}

/* ---- names ------------------------------------------------------------------ */

/* Checks for a name about to be created in `parent`; 0 or an errno. */
static int check_new_name(struct gitkvfs *fs, fuse_ino_t parent, const char *name)
{
	int code;

	if (fs_control_is(parent))
		return EROFS;
	if (parent == FS_INO_ROOT && strcmp(name, GITKV_RESERVED) == 0)
		return EEXIST;
	code = gitkv_key_validate_component(name, strlen(name));
	if (code < 0)
		return gitkv_error_errno(code);
	if (fs->readonly)
		return EROFS;
	return 0;
}

/* Checks for an existing name about to be removed or moved; 0 or an errno. */
static int check_old_name(struct gitkvfs *fs, fuse_ino_t parent, const char *name)
{
	if (fs_control_is(parent))
		return EROFS;
	if (parent == FS_INO_ROOT && strcmp(name, GITKV_RESERVED) == 0)
		return EROFS;
	if (strlen(name) > GITKV_KEY_COMPONENT_MAX)
		return ENAMETOOLONG;
	if (fs->readonly)
		return EROFS;
	return 0;
}

/* With inodes.lock: the key of `name` in directory inode `parent` (malloc'd). */
static int child_path_locked(struct gitkvfs *fs, fuse_ino_t parent, const char *name, char **out)
{
	struct fs_inode *dir = fs_inode_find(&fs->inodes, parent);

	if (!dir || !dir->linked)
		return ENOENT;
	if (dir->type != S_IFDIR)
		return ENOTDIR;
	*out = gitkv_key_join(dir->path, name);
	return *out ? 0 : ENOMEM;
}

/* With inodes.lock: what `path` names, overlays first. */
/*
 * TTLs (gitkv/meta.h). A value past its expiry is absent at once: lookup,
 * getattr, open and readdir treat it as gone before the reaper commits its
 * deletion (which is then replayed, so watchers see IN_DELETE). What the
 * kernel caches about a value with an expiry is cached no longer than the
 * value lives, and a miss on an expired value is not cached at all: the
 * replayed unlink must find the entry.
 */
static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static bool value_expired(struct gitkvfs *fs, const char *path)
{
	return gitkv_store_is_expired(fs->store, path, time(NULL));
}

/* `timeout` (seconds), or less if the value at `path` expires sooner. */
static double cache_time(struct gitkvfs *fs, const char *path, double timeout)
{
	int64_t exp = gitkv_store_expiry(fs->store, path);
	double left;

	if (!exp)
		return timeout;
	left = (double)exp - now_real();
	return left <= 0 ? 0 : left < timeout ? left : timeout;
}

static void resolve_locked(struct gitkvfs *fs, const char *path, struct node *n)
{
	struct fs_inode *inode = fs_inode_find_path(&fs->inodes, path);

	memset(n, 0, sizeof(*n));
	if (inode && (inode->temp || inode->fresh)) {
		n->kind = NODE_LOCAL;
		n->local = inode;
		return;
	}
	if (gitkv_key_is_reserved(path) || fs_inode_find_pending(&fs->inodes, path))
		return;
	if (gitkv_snapshot_lookup(fs->snap, path, &n->entry) != 0)
		return;
	if (gitkv_type_is_value(n->entry.type) && value_expired(fs, path))
		n->expired = true;
	else
		n->kind = NODE_KEY;
}

/* ---- attributes ------------------------------------------------------------- */

static void stat_fill(struct gitkvfs *fs, struct stat *st, fuse_ino_t ino, mode_t mode,
		      uint64_t size, int64_t mtime)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_ISLNK(mode) ? mode : mode & ~fs->umask;
	st->st_nlink = S_ISDIR(mode) ? 2 : 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((size + 511) / 512);
	st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = (time_t)mtime;
}

/* With inodes.lock: the attributes of `inode`; 0 or an errno. */
static int inode_stat_locked(struct gitkvfs *fs, struct fs_inode *inode, struct stat *st)
{
	struct fs_buf *buf = inode->buf;
	bool in_memory = inode->temp || inode->fresh || !inode->linked, gone = !inode->linked;
	gitkv_entry e;
	uint64_t size;
	int64_t mtime;
	mode_t mode;

	if (!in_memory && (gitkv_snapshot_lookup(fs->snap, inode->path, &e) != 0 ||
			   (gitkv_type_is_value(e.type) && value_expired(fs, inode->path)))) {
		if (inode == fs->inodes.root) {
			/* an unborn branch: the root is an empty directory */
			e.type = GITKV_TYPE_DIR;
			e.size = 0;
			e.mtime = fs->started;
		} else if (buf) {
			/* removed outside the mount while open: fstat() still works */
			in_memory = gone = true;
		} else {
			return ENOENT;
		}
	}
	if (in_memory) {
		if (!buf)
			return ENOENT;
		pthread_mutex_lock(&buf->lock);
		size = buf->size;
		mtime = buf->mtime;
		mode = inode->type | (inode->temp ? inode->mode : perm_of(buf->vtype));
		pthread_mutex_unlock(&buf->lock);
		stat_fill(fs, st, inode->ino, mode, size, mtime);
		if (gone)
			st->st_nlink = 0;
		return 0;
	}
	if (ifmt_of(e.type) != inode->type)
		return ENOENT; /* replaced by another kind outside the mount */
	size = e.size;
	if (buf) {
		pthread_mutex_lock(&buf->lock);
		if (buf->dirty)
			size = buf->size;
		pthread_mutex_unlock(&buf->lock);
	}
	stat_fill(fs, st, inode->ino, inode->type | perm_of(e.type), size,
		  e.mtime ? e.mtime : fs->started);
	return 0;
}

/* With inodes.lock: fill `e` for `inode` and count the kernel's lookup. */
static int entry_locked(struct gitkvfs *fs, struct fs_inode *inode, struct fuse_entry_param *e)
{
	int err;

	memset(e, 0, sizeof(*e));
	if ((err = inode_stat_locked(fs, inode, &e->attr)) != 0)
		return err;
	e->ino = inode->ino;
	e->generation = inode->generation;
	e->attr_timeout = cache_time(fs, inode->path, fs->attr_timeout);
	e->entry_timeout = cache_time(fs, inode->path, fs->entry_timeout);
	inode->nlookup++;
	return 0;
}

static void control_stat(struct gitkvfs *fs, fuse_ino_t ino, struct stat *st)
{
	st->st_mode &= ~fs->umask;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	if (!st->st_mtim.tv_sec) /* a revision's nodes carry their commit's time */
		st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = fs->started;
}

/* ---- replayed requests (see "Replayed requests" above) ------------------------------ */

/* The attributes `ve` (a replay view entry, or made up) gives inode `ino`. */
static void view_stat(struct gitkvfs *fs, struct stat *st, fuse_ino_t ino, const gitkv_entry *ve)
{
	stat_fill(fs, st, ino, ifmt_of(ve->type) | perm_of(ve->type),
		  ve->size == GITKV_SIZE_UNKNOWN ? 0 : ve->size,
		  ve->mtime ? ve->mtime : fs->started);
}

/*
 * With inodes.lock: entry_locked(), or when the snapshot has nothing that
 * fits the inode (a path the batch being replayed removes), the attributes
 * of `ve`.
 */
static int view_entry_locked(struct gitkvfs *fs, struct fs_inode *inode, const gitkv_entry *ve,
			     struct fuse_entry_param *e)
{
	if (entry_locked(fs, inode, e) == 0)
		return 0;
	memset(e, 0, sizeof(*e));
	view_stat(fs, &e->attr, inode->ino, ve);
	e->ino = inode->ino;
	e->generation = inode->generation;
	e->attr_timeout = cache_time(fs, inode->path, fs->attr_timeout);
	e->entry_timeout = cache_time(fs, inode->path, fs->entry_timeout);
	inode->nlookup++;
	return 0;
}

/* With inodes.lock: the snapshot's entry for `path`, or one made up of `type`. */
static void new_entry_locked(struct gitkvfs *fs, const char *path, gitkv_type type,
			     gitkv_entry *out)
{
	if (gitkv_snapshot_lookup(fs->snap, path, out) == 0 && ifmt_of(out->type) == ifmt_of(type))
		return;
	memset(out, 0, sizeof(*out));
	out->type = type;
}

/* With inodes.lock: the next open reads the key anew (a clean buffer only). */
static void mark_stale_locked(struct fs_inode *inode)
{
	if (!inode->buf)
		return;
	pthread_mutex_lock(&inode->buf->lock);
	if (!inode->buf->dirty)
		inode->buf->stale = true;
	pthread_mutex_unlock(&inode->buf->lock);
}

/*
 * With inodes.lock: the path of `name` in `parent` for a replayed change,
 * which must not be shadowed by a local in-memory file (EBUSY: the replay
 * thread then invalidates instead).
 */
static int replay_path_locked(struct gitkvfs *fs, fuse_ino_t parent, const char *name, char **out)
{
	struct fs_inode *inode;
	int err;

	if (fs_control_is(parent))
		return EROFS;
	if ((err = child_path_locked(fs, parent, name, out)) != 0)
		return err;
	inode = fs_inode_find_path(&fs->inodes, *out);
	if ((inode && (inode->temp || inode->fresh)) || fs_inode_find_pending(&fs->inodes, *out)) {
		free(*out);
		*out = NULL;
		return EBUSY;
	}
	return 0;
}

/*
 * A replayed mkdir, symlink or create: an inode of `type` at the new path,
 * its entry from the snapshot. `h` (create) becomes a HANDLE_REPLAY.
 */
static int replay_make(struct gitkvfs *fs, fuse_ino_t parent, const char *name, gitkv_type type,
		       struct fuse_entry_param *e, struct fuse_file_info *fi)
{
	struct fs_handle *h = NULL;
	struct fs_inode *inode;
	gitkv_entry ne;
	char *path = NULL;
	int err;

	if (fi && !(h = calloc(1, sizeof(*h))))
		return ENOMEM;
	pthread_mutex_lock(&fs->inodes.lock);
	if ((err = replay_path_locked(fs, parent, name, &path)) != 0)
		goto out;
	if (!(inode = fs_inode_get(&fs->inodes, path, ifmt_of(type)))) {
		err = ENOMEM;
		goto out;
	}
	mark_stale_locked(inode);
	new_entry_locked(fs, path, type, &ne);
	err = view_entry_locked(fs, inode, &ne, e);
out:
	pthread_mutex_unlock(&fs->inodes.lock);
	free(path);
	if (!err && h) {
		h->kind = HANDLE_REPLAY;
		h->flags = fi->flags;
		fi->fh = (uintptr_t)h;
		fi->keep_cache = 0;
		h = NULL;
	}
	free(h);
	return err;
}

/* A replayed unlink or rmdir: the inode goes from the table, the store is left alone. */
static int replay_remove(struct gitkvfs *fs, fuse_ino_t parent, const char *name, bool dir)
{
	struct fs_inode *inode;
	char *path = NULL;
	int err;

	pthread_mutex_lock(&fs->inodes.lock);
	if ((err = replay_path_locked(fs, parent, name, &path)) != 0)
		goto out;
	for (inode = fs->inodes.local; dir && inode; inode = inode->local_next) {
		if (below(inode->path, path) || (inode->pending && below(inode->pending, path))) {
			err = ENOTEMPTY; /* in-memory files inside keep it */
			goto out;
		}
	}
	if ((inode = fs_inode_find_path(&fs->inodes, path)))
		fs_inode_unlink(&fs->inodes, inode);
out:
	pthread_mutex_unlock(&fs->inodes.lock);
	free(path);
	return err;
}

/* A replayed open (O_TRUNC to rewrite a changed key): a HANDLE_REPLAY. */
static int replay_open(struct gitkvfs *fs, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_handle *h = calloc(1, sizeof(*h));
	struct fs_inode *inode;
	int err = 0;

	if (!h)
		return ENOMEM;
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (!inode || !inode->linked)
		err = ENOENT;
	else if (inode->type != S_IFREG)
		err = EISDIR;
	else if (inode->temp || inode->fresh)
		err = EBUSY;
	else
		mark_stale_locked(inode); /* other handles re-read the key from 0 */
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err) {
		free(h);
		return err;
	}
	h->kind = HANDLE_REPLAY;
	h->flags = fi->flags;
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	return 0;
}

/* ---- buffers ------------------------------------------------------------------ */

/* With inodes.lock: attach (creating) the buffer of `inode`; NULL: no memory. */
static struct fs_buf *attach_locked(struct fs_inode *inode)
{
	if (!inode->buf && !(inode->buf = fs_buf_new()))
		return NULL;
	inode->nopen++;
	return inode->buf;
}

/* With inodes.lock: drop one attachment; the last one frees the buffer. */
static void detach_locked(struct gitkvfs *fs, struct fs_inode *inode)
{
	assert(inode->nopen > 0);
	if (--inode->nopen || inode->temp) {
		fs_inode_maybe_free(&fs->inodes, inode);
		return;
	}
	fs_buf_free(inode->buf);
	inode->buf = NULL;
	if (inode->fresh && inode->linked) {
		/* created but never committed: it does not exist; the kernel must forget it */
		fs_notifier_push(fs->notifier, inode->path);
		fs_inode_set_local(&fs->inodes, inode, false, false);
		fs_inode_unlink(&fs->inodes, inode); /* may free it */
		return;
	}
	fs_inode_maybe_free(&fs->inodes, inode);
}

static void detach(struct gitkvfs *fs, struct fs_inode *inode)
{
	pthread_mutex_lock(&fs->inodes.lock);
	detach_locked(fs, inode);
	pthread_mutex_unlock(&fs->inodes.lock);
}

/*
 * Bring the clean buffer of key `path` up to date with the snapshot:
 * load it on first use, reload it when the key changed outside the mount.
 * A dirty buffer is left alone. `*reloaded` tells whether the bytes changed.
 */
static int buf_refresh(struct gitkvfs *fs, struct fs_buf *buf, const char *path, bool *reloaded)
{
	gitkv_entry e;
	char *data;
	size_t len;
	int code, err = 0;

	*reloaded = false;
	pthread_mutex_lock(&buf->lock);
	if (buf->dirty)
		goto out;
	if (gitkv_snapshot_lookup(fs->snap, path, &e) != 0) {
		err = buf->loaded ? 0 : ENOENT;
		goto out;
	}
	if (!gitkv_type_is_value(e.type)) {
		err = EISDIR;
		goto out;
	}
	if (buf->loaded && !buf->stale && gitkv_oid_equal(&buf->oid, &e.oid))
		goto out;
	code = gitkv_store_read_blob(fs->store, &e.oid, &data, &len);
	if (code < 0) {
		fuse_log(FUSE_LOG_ERR, "gitkvfs: cannot read '%s': %s\n", path, gitkv_error_last());
		err = gitkv_error_errno(code);
		goto out;
	}
	fs_buf_replace(buf, data, len, &e.oid);
	buf->vtype = e.type;
	buf->mtime = e.mtime;
	*reloaded = true;
out:
	pthread_mutex_unlock(&buf->lock);
	return err;
}

/*
 * True if process `pid` still has inode `ino` of this mount open through
 * another descriptor. The shell opens `key` for `echo x > key`, dup2()s it
 * onto stdout and closes the original: that first close flushes a file
 * that has been truncated (or created) but not written yet. Committing it
 * then would put an empty value on the branch for a moment, and make two
 * commits of one command. /proc/PID/fdinfo names the inode and the mount
 * of each descriptor without a round trip through this filesystem.
 */
static bool still_open(struct gitkvfs *fs, pid_t pid, fuse_ino_t ino)
{
	char path[320], line[128];
	struct dirent *d;
	bool found = false;
	DIR *dir;

	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		unsigned long long fino = 0;
		int mnt_id = -1;
		FILE *f;

		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, d->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "mnt_id: %d", &mnt_id) == 1)
				continue;
			sscanf(line, "ino: %llu", &fino);
		}
		fclose(f);
		found = fino == ino && (fs->mnt_id <= 0 || mnt_id == fs->mnt_id);
	}
	closedir(dir);
	return found;
}

/* A commit a flush made, for the write concern (acknowledge()). */
struct ack {
	bool committed;
	gitkv_oid commit;
	char *key; /* malloc'd when committed */
};

/*
 * Commit the attached buffer of `inode` if it is dirty. The caller holds
 * ns_lock (read or write). A temp or unlinked inode commits nothing. If
 * `ack` is not NULL it tells what was committed (free its key).
 */
static int commit_buf(struct gitkvfs *fs, fuse_req_t req, struct fs_inode *inode, struct ack *ack)
{
	gitkv_op op = {.type = GITKV_OP_SET, .flags = GITKV_OP_KEEP_TYPE};
	gitkv_result res = {0};
	struct fs_buf *buf;
	gitkv_entry e;
	char *path = NULL, *data = NULL;
	bool dirty, written;
	size_t len;
	int err = 0;

	pthread_mutex_lock(&fs->inodes.lock);
	buf = inode->buf;
	if (buf && inode->linked && !inode->temp && !(path = strdup(inode->path)))
		err = ENOMEM;
	pthread_mutex_unlock(&fs->inodes.lock);
	if (!path)
		return err; /* nothing to commit: no buffer, a temp, or unlinked */

	pthread_mutex_lock(&buf->commit_lock);
	pthread_mutex_lock(&buf->lock);
	written = buf->written;
	dirty = buf->dirty;
	if ((err = buf->error) != 0) {
		/* a write failed (EFBIG...): commit nothing half-written */
		fs_buf_discard(buf);
		dirty = false;
	}
	pthread_mutex_unlock(&buf->lock);
	if (err)
		fs_notifier_push(fs->notifier, path); /* the kernel's size and pages are stale */
	if (!dirty)
		goto out;
	if (!written && req && still_open(fs, fuse_req_ctx(req)->pid, inode->ino))
		goto out; /* truncated or created, not written yet: the last close commits */

	pthread_mutex_lock(&buf->lock);
	err = fs_buf_copy(buf, &data, &len);
	if (!err) {
		written = buf->written;
		buf->dirty = false;
		buf->written = false;
		op.vtype = buf->vtype == GITKV_TYPE_LINK ? GITKV_TYPE_FILE : buf->vtype;
	}
	pthread_mutex_unlock(&buf->lock);
	if (err)
		goto out;

	op.key = path;
	op.value = data;
	op.len = len;
	err = commit_result(fs, req, &op, &res);

	pthread_mutex_lock(&fs->inodes.lock);
	pthread_mutex_lock(&buf->lock);
	if (err) {
		buf->dirty = true;
		buf->written |= written;
	} else {
		if (!buf->dirty && gitkv_snapshot_lookup(fs->snap, path, &e) == 0) {
			buf->oid = e.oid;
			buf->vtype = e.type;
		}
		if (inode->fresh)
			fs_inode_set_local(&fs->inodes, inode, false, false);
		if (ack && res.committed) {
			ack->committed = true;
			ack->commit = res.commit;
			ack->key = path; /* the caller's now */
			path = NULL;
		}
	}
	pthread_mutex_unlock(&buf->lock);
	pthread_mutex_unlock(&fs->inodes.lock);
out:
	pthread_mutex_unlock(&buf->commit_lock);
	free(data);
	free(path);
	return err;
}

static int flush_inode(struct gitkvfs *fs, fuse_req_t req, struct fs_inode *inode, struct ack *ack)
{
	int err;

	pthread_rwlock_rdlock(&fs->ns_lock);
	err = commit_buf(fs, req, inode, ack);
	pthread_rwlock_unlock(&fs->ns_lock);
	return err;
}

/*
 * The write concern, after a flush that committed: in sync mode wait, with
 * no lock held, until `quorum` remotes hold the commit; 0 or EIO. Frees the
 * ack's key.
 */
static int acknowledge(struct gitkvfs *fs, struct ack *ack)
{
	int err = 0;

	if (fs->sync_mode && ack->committed &&
	    sync_engine_wait_pushed(fs->engine, &ack->commit, fs->quorum,
				    fs->sync_timeout_s * 1000) < 0) {
		fuse_log(FUSE_LOG_WARNING,
			 "gitkvfs: write of '%s' not acknowledged by %d remote%s within %d s; "
			 "it stays local and will be pushed later\n",
			 ack->key, fs->quorum, fs->quorum == 1 ? "" : "s", fs->sync_timeout_s);
		err = EIO;
	}
	free(ack->key);
	ack->key = NULL;
	return err;
}

/* ---- lookup, forget, getattr ----------------------------------------------------- */

static void fs_init(void *userdata, struct fuse_conn_info *conn)
{
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/* Writes must reach the daemon at once: a write is a change to commit. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static int do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_inode *inode = NULL;
	bool replay = is_replay(fs, req);
	struct node n;
	gitkv_entry ve;
	char *path = NULL;
	int err;

	memset(e, 0, sizeof(*e));
	e->entry_timeout = fs->entry_timeout; /* a miss is a negative entry */
	if (strlen(name) > GITKV_KEY_COMPONENT_MAX)
		return ENAMETOOLONG;
	if (fs_control_is(parent) || (parent == FS_INO_ROOT && strcmp(name, GITKV_RESERVED) == 0)) {
		err = fs_control_lookup(&fs->control, parent, name, e);
		if (!err && e->ino)
			control_stat(fs, e->ino, &e->attr);
		return err;
	}

	pthread_mutex_lock(&fs->inodes.lock);
	if ((err = child_path_locked(fs, parent, name, &path)) != 0)
		goto out;
	resolve_locked(fs, path, &n);
	if (replay && n.kind != NODE_LOCAL && fs_replay_view(fs->replay, path, &ve)) {
		/* the kernel is walked from the state before the batch: the view */
		if (ve.type == GITKV_TYPE_NONE)
			err = ENOENT;
		else if (!(inode = fs_inode_get(&fs->inodes, path, ifmt_of(ve.type))))
			err = ENOMEM;
		else
			err = view_entry_locked(fs, inode, &ve, e);
		goto out;
	}
	if (n.expired)
		e->entry_timeout = 0;
	if (n.kind == NODE_LOCAL)
		inode = n.local;
	else if (n.kind == NODE_KEY &&
		 !(inode = fs_inode_get(&fs->inodes, path, ifmt_of(n.entry.type))))
		err = ENOMEM;
	if (inode)
		err = entry_locked(fs, inode, e);
out:
	pthread_mutex_unlock(&fs->inodes.lock);
	free(path);
	if (err == ENOENT) {
		e->ino = 0;
		err = 0;
	}
	return err;
}

static void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err = do_lookup(req, parent, name, &e);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void forget_one(struct gitkvfs *fs, fuse_ino_t ino, uint64_t n)
{
	struct fs_inode *inode;

	if (fs_control_is(ino)) {
		fs_control_forget(&fs->control, ino, n);
		return;
	}
	inode = fs_inode_find(&fs->inodes, ino);
	if (inode)
		fs_inode_forget(&fs->inodes, inode, n);
}

static void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct gitkvfs *fs = fs_of(req);

	pthread_mutex_lock(&fs->inodes.lock);
	forget_one(fs, ino, nlookup);
	pthread_mutex_unlock(&fs->inodes.lock);
	fuse_reply_none(req);
}

static void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct gitkvfs *fs = fs_of(req);

	pthread_mutex_lock(&fs->inodes.lock);
	for (size_t i = 0; i < count; i++)
		forget_one(fs, forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&fs->inodes.lock);
	fuse_reply_none(req);
}

static int do_getattr(struct gitkvfs *fs, fuse_ino_t ino, struct stat *st)
{
	struct fs_inode *inode;
	int err;

	if (fs_control_is(ino)) {
		err = fs_control_stat(&fs->control, ino, st);
		control_stat(fs, ino, st);
		return err;
	}
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	err = inode ? inode_stat_locked(fs, inode, st) : ENOENT;
	pthread_mutex_unlock(&fs->inodes.lock);
	return err;
}

/* The attribute timeout for inode `ino`: shorter if its value expires sooner. */
static double attr_time(struct gitkvfs *fs, fuse_ino_t ino)
{
	struct fs_inode *inode;
	double t = fs->attr_timeout;

	if (fs_control_is(ino))
		return 0;
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (inode && inode->type != S_IFDIR)
		t = cache_time(fs, inode->path, t);
	pthread_mutex_unlock(&fs->inodes.lock);
	return t;
}

/* A replayed request's getattr of a path the snapshot has lost already: from the view. */
static int replay_getattr(struct gitkvfs *fs, fuse_ino_t ino, struct stat *st)
{
	struct fs_inode *inode;
	gitkv_entry ve;
	int err = ENOENT;

	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (inode && inode->linked && fs_replay_view(fs->replay, inode->path, &ve) &&
	    ifmt_of(ve.type) == inode->type && ve.type != GITKV_TYPE_NONE) {
		view_stat(fs, st, ino, &ve);
		err = 0;
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	return err;
}

static void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct gitkvfs *fs = fs_of(req);
	struct stat st;
	int err = do_getattr(fs, ino, &st);

	if (err == ENOENT && is_replay(fs, req))
		err = replay_getattr(fs, ino, &st);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, attr_time(fs, ino));
}

/* ---- setattr: chmod, chown, truncate, utimens ------------------------------------- */

/*
 * A mode as shown under -o umask back to the one git keeps (0644, 0755): the
 * bits the umask hides do not count, so chmod to the mode shown is a no-op.
 */
static mode_t unmask_mode(const struct gitkvfs *fs, mode_t mode)
{
	mode_t u = fs->umask;

	if (u && (mode & ~u) == (0755 & ~u) && ((mode & 0100) || (0644 & ~u) != (0755 & ~u)))
		return 0755;
	if (u && (mode & ~u) == (0644 & ~u))
		return 0644;
	return mode;
}

static int set_mode(struct gitkvfs *fs, fuse_req_t req, fuse_ino_t ino, mode_t mode)
{
	gitkv_op op = {.type = GITKV_OP_CHMOD};
	struct fs_inode *inode;
	gitkv_entry e;
	char *path = NULL;
	mode_t cur;
	int err = 0;

	mode = unmask_mode(fs, mode & 07777);
	pthread_rwlock_rdlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (!inode) {
		err = ENOENT;
	} else if (inode->temp) {
		inode->mode = mode; /* in memory: anything goes */
	} else if (inode->type != S_IFREG) {
		err = mode == perm_of(inode->type == S_IFDIR ? GITKV_TYPE_DIR : GITKV_TYPE_LINK)
			  ? 0
			  : EPERM;
	} else if (inode->fresh || !inode->linked) {
		/*
		 * Not committed yet: like the mode given to create(), only the
		 * exec bit is kept (rsync and mkstemp users fchmod their new file).
		 */
		if (inode->buf) {
			pthread_mutex_lock(&inode->buf->lock);
			inode->buf->vtype = (mode & 0100) ? GITKV_TYPE_EXEC : GITKV_TYPE_FILE;
			pthread_mutex_unlock(&inode->buf->lock);
		}
	} else if (gitkv_snapshot_lookup(fs->snap, inode->path, &e) != 0) {
		err = ENOENT;
	} else if ((cur = perm_of(e.type)) == mode) {
		; /* the mode it has */
	} else if (mode != 0644 && mode != 0755) {
		err = EPERM; /* git keeps only the exec bit */
	} else if (!(path = strdup(inode->path))) {
		err = ENOMEM;
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	if (!err && path) {
		op.key = path;
		op.vtype = mode == 0755 ? GITKV_TYPE_EXEC : GITKV_TYPE_FILE;
		err = commit(fs, req, &op);
	}
	pthread_rwlock_unlock(&fs->ns_lock);
	free(path);
	return err;
}

/*
 * Truncate (or extend) to `size`. Through a handle (ftruncate, O_TRUNC's
 * setattr) it changes the shared buffer and the flush commits; by path
 * (truncate(2)) it commits at once.
 */
static int set_size(struct gitkvfs *fs, fuse_req_t req, fuse_ino_t ino, off_t size,
		    struct fuse_file_info *fi)
{
	struct fs_inode *inode;
	struct fs_buf *buf = NULL;
	char *path = NULL;
	bool real = false, reloaded;
	size_t max;
	int err = 0;

	if (size < 0)
		return EINVAL;
	pthread_rwlock_rdlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (!inode)
		err = ENOENT;
	else if (inode->type == S_IFDIR)
		err = EISDIR;
	else if (inode->type != S_IFREG)
		err = EINVAL;
	else if (!(buf = attach_locked(inode)) || !(path = strdup(inode->path)))
		err = ENOMEM;
	else
		real = inode->linked && !inode->temp && !inode->fresh;
	max = inode && inode->temp ? fs->max_temp_size : fs->max_value_size;
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err)
		goto out;

	if (real)
		err = buf_refresh(fs, buf, path, &reloaded);
	if (!err) {
		pthread_mutex_lock(&buf->lock);
		err = fs_buf_truncate(buf, size, max);
		pthread_mutex_unlock(&buf->lock);
	}
	if (!err && !fi)
		err = commit_buf(fs, req, inode, NULL);
out:
	if (buf)
		detach(fs, inode);
	pthread_rwlock_unlock(&fs->ns_lock);
	free(path);
	return err;
}

static int do_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		      struct fuse_file_info *fi, struct stat *out)
{
	struct gitkvfs *fs = fs_of(req);
	int err;

	if (fs_control_is(ino))
		return EROFS;
	if (is_replay(fs, req)) {
		/* a replayed chmod: the snapshot has the new mode already */
		err = do_getattr(fs, ino, out);
		return err == ENOENT ? replay_getattr(fs, ino, out) : err;
	}
	/* chown to the owner and group every file has is a no-op; nothing else is kept */
	if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != fs->uid && attr->st_uid != (uid_t)-1)
		return EPERM;
	if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != fs->gid && attr->st_gid != (gid_t)-1)
		return EPERM;
	if ((to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_SIZE)) && fs->readonly)
		return EROFS;
	if ((to_set & FUSE_SET_ATTR_MODE) && (err = set_mode(fs, req, ino, attr->st_mode)) != 0)
		return err;
	if ((to_set & FUSE_SET_ATTR_SIZE) && (err = set_size(fs, req, ino, attr->st_size, fi)) != 0)
		return err;
	/* times: accepted; a key's mtime is the time of its last commit */
	return do_getattr(fs, ino, out);
}

static void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	struct stat st;
	int err = do_setattr(req, ino, attr, to_set, fi, &st);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, attr_time(fs_of(req), ino));
}

/* ---- symlinks ------------------------------------------------------------------ */

static int do_readlink(fuse_req_t req, fuse_ino_t ino, char **out)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_inode *inode;
	gitkv_entry e;
	size_t len;
	int err = 0, code;
	bool from_blob = false;

	*out = NULL;
	if (fs_control_is(ino))
		return fs_control_readlink(&fs->control, ino, out);
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (!inode) {
		err = ENOENT;
	} else if (inode->type != S_IFLNK) {
		err = EINVAL;
	} else if (inode->temp && inode->buf) {
		pthread_mutex_lock(&inode->buf->lock);
		*out = strndup(inode->buf->data ? inode->buf->data : "", inode->buf->size);
		pthread_mutex_unlock(&inode->buf->lock);
		err = *out ? 0 : ENOMEM;
	} else if (gitkv_snapshot_lookup(fs->snap, inode->path, &e) != 0 ||
		   e.type != GITKV_TYPE_LINK) {
		err = ENOENT;
	} else {
		from_blob = true;
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err || !from_blob)
		return err;
	code = gitkv_store_read_blob(fs->store, &e.oid, out, &len);
	if (code < 0)
		return gitkv_error_errno(code);
	(*out)[len] = '\0'; /* the store NUL-terminates; a target has no NUL */
	return 0;
}

static void fs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char *target;
	int err = do_readlink(req, ino, &target);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_readlink(req, target);
	free(target);
}

static int do_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name,
		      struct fuse_entry_param *e)
{
	struct gitkvfs *fs = fs_of(req);
	gitkv_op op = {.type = GITKV_OP_SET, .vtype = GITKV_TYPE_LINK, .flags = GITKV_OP_EXCL};
	struct fs_inode *inode, *holder;
	struct fs_buf *buf;
	struct node n;
	char *path = NULL, *copy;
	size_t len = strlen(link);
	int err;

	if (is_replay(fs, req))
		return replay_make(fs, parent, name, GITKV_TYPE_LINK, e, NULL);
	if ((err = check_new_name(fs, parent, name)) != 0)
		return err;
	pthread_rwlock_wrlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->inodes.lock);
	if ((err = child_path_locked(fs, parent, name, &path)) != 0)
		goto unlock;
	resolve_locked(fs, path, &n);
	if (n.kind != NODE_NONE) {
		err = EEXIST;
		goto unlock;
	}
	holder = fs_inode_find_pending(&fs->inodes, path);
	if (!holder && ignored(fs, name)) {
		/* an in-memory symlink (emacs' lock files are symlinks) */
		err = ENOMEM;
		copy = malloc(len + 1);
		if (!copy || !(inode = fs_inode_add(&fs->inodes, path, S_IFLNK))) {
			free(copy);
			goto unlock;
		}
		if (!(inode->buf = buf = fs_buf_new())) {
			free(copy);
			fs_inode_unlink(&fs->inodes, inode);
			goto unlock;
		}
		memcpy(copy, link, len + 1);
		fs_buf_replace(buf, copy, len, NULL);
		buf->vtype = GITKV_TYPE_LINK;
		inode->mode = 0777;
		fs_inode_set_local(&fs->inodes, inode, true, false);
		err = entry_locked(fs, inode, e);
		goto unlock;
	}
	pthread_mutex_unlock(&fs->inodes.lock);

	if (holder)
		op.flags = 0; /* the hidden key is replaced */
	op.key = path;
	op.value = link;
	op.len = len;
	if ((err = commit(fs, req, &op)) != 0)
		goto out;

	pthread_mutex_lock(&fs->inodes.lock);
	if (holder && (holder = fs_inode_find_pending(&fs->inodes, path)))
		fs_inode_set_pending(&fs->inodes, holder, NULL);
	if (!(inode = fs_inode_add(&fs->inodes, path, S_IFLNK)))
		err = ENOMEM;
	else
		err = entry_locked(fs, inode, e);
unlock:
	pthread_mutex_unlock(&fs->inodes.lock);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	free(path);
	return err;
}

static void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err = do_symlink(req, link, parent, name, &e);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

/* ---- creating files ------------------------------------------------------------- */

/*
 * Create file `name` in `parent` (O_EXCL semantics): a temp for an ignored
 * name, else a fresh key with an empty dirty buffer that the first flush
 * commits. Re-creating a key hidden by a pending delete cancels the delete.
 * The new inode comes back attached once (the caller's handle, or a pin).
 */
static int make_file(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     struct fuse_entry_param *e, struct fs_inode **inode_out)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_inode *inode, *holder;
	struct fs_buf *buf;
	struct node n;
	char *path = NULL;
	int err;

	if ((err = check_new_name(fs, parent, name)) != 0)
		return err;
	pthread_rwlock_wrlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->inodes.lock);
	if ((err = child_path_locked(fs, parent, name, &path)) != 0)
		goto out;
	resolve_locked(fs, path, &n);
	if (n.kind != NODE_NONE) {
		err = EEXIST;
		goto out;
	}
	err = ENOMEM;
	if (!(inode = fs_inode_add(&fs->inodes, path, S_IFREG)))
		goto out;
	if (!(buf = attach_locked(inode))) {
		fs_inode_unlink(&fs->inodes, inode);
		goto out;
	}
	pthread_mutex_lock(&buf->lock);
	buf->loaded = true;
	holder = fs_inode_find_pending(&fs->inodes, path);
	if (holder) {
		/* the key comes back: its delete is off, the new bytes modify it */
		fs_inode_set_pending(&fs->inodes, holder, NULL);
		buf->dirty = true;
		fs_inode_set_local(&fs->inodes, inode, false, true);
	} else if (ignored(fs, name)) {
		inode->mode = mode & 07777;
		fs_inode_set_local(&fs->inodes, inode, true, false);
	} else {
		buf->dirty = true;
		buf->vtype = (mode & 0100) ? GITKV_TYPE_EXEC : GITKV_TYPE_FILE;
		fs_inode_set_local(&fs->inodes, inode, false, true);
	}
	pthread_mutex_unlock(&buf->lock);
	err = entry_locked(fs, inode, e);
	if (err) {
		detach_locked(fs, inode);
		goto out;
	}
	*inode_out = inode;
out:
	pthread_mutex_unlock(&fs->inodes.lock);
	pthread_rwlock_unlock(&fs->ns_lock);
	free(path);
	return err;
}

/*
 * An exclusive create in sync mode: the first remote decides, through the
 * sync engine, whether this node creates `name` (an empty value, committed
 * and on that remote) or another node did first (EEXIST, and the winner's
 * value comes in by sync). It runs without ns_lock, because it waits for the
 * network; the kernel serialises creates in a directory anyway. Returns 0
 * with the key's inode attached once (a clean buffer: the bytes written
 * next commit at close like any write), an errno, or -1 when the name is
 * not the cluster's business (a temp, a key hidden by a pending delete):
 * make_file() then creates it locally.
 */
static int create_exclusive(fuse_req_t req, fuse_ino_t parent, const char *name,
			    struct fuse_entry_param *e, struct fs_inode **inode_out)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_inode *inode = NULL;
	struct fs_buf *buf = NULL;
	struct writer_buf wb;
	gitkv_result res;
	struct node n;
	char *path = NULL;
	bool reloaded;
	int err, code;

	if ((err = check_new_name(fs, parent, name)) != 0)
		return err;
	pthread_mutex_lock(&fs->inodes.lock);
	err = child_path_locked(fs, parent, name, &path);
	if (!err) {
		resolve_locked(fs, path, &n);
		if (n.kind != NODE_NONE)
			err = EEXIST;
		else if (ignored(fs, name) || fs_inode_find_pending(&fs->inodes, path))
			err = -1;
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err)
		goto out;

	code = sync_engine_create_exclusive(fs->engine, fs->store, path, "", 0, writer_of(req, &wb),
					    fs->sync_timeout_s * 1000, &res);
	if (code == GITKV_EEXISTS) {
		/* another node was first; the kernel must not keep a negative entry for it */
		fs_notifier_push(fs->notifier, path);
		err = EEXIST;
		goto out;
	}
	if (code < 0) {
		fuse_log(FUSE_LOG_ERR, "gitkvfs: exclusive create of '%s' not decided: %s\n", path,
			 gitkv_error_last());
		err = gitkv_error_errno(code);
		goto out;
	}

	pthread_mutex_lock(&fs->inodes.lock);
	resolve_locked(fs, path, &n);
	if (n.kind == NODE_LOCAL)
		err = EEXIST; /* renamed onto meanwhile: that file holds the name now */
	else if (!(inode = fs_inode_get(&fs->inodes, path, S_IFREG)) ||
		 !(buf = attach_locked(inode)))
		err = ENOMEM;
	if (inode && !buf)
		fs_inode_maybe_free(&fs->inodes, inode);
	pthread_mutex_unlock(&fs->inodes.lock);
	if (!err)
		err = buf_refresh(fs, buf, path, &reloaded); /* the empty value just committed */
	pthread_mutex_lock(&fs->inodes.lock);
	if (!err)
		err = entry_locked(fs, inode, e);
	if (err && buf)
		detach_locked(fs, inode);
	else if (!err)
		*inode_out = inode;
	pthread_mutex_unlock(&fs->inodes.lock);
out:
	free(path);
	return err;
}

static int do_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi);
static void forget_one(struct gitkvfs *fs, fuse_ino_t ino, uint64_t n);

static int do_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     struct fuse_file_info *fi, struct fuse_entry_param *e)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_handle *h;
	struct fs_inode *inode;
	int err = -1;

	if (is_replay(fs, req))
		return replay_make(fs, parent, name, GITKV_TYPE_FILE, e, fi);
	if (!(h = calloc(1, sizeof(*h))))
		return ENOMEM;
	if (fs->sync_mode && (fi->flags & O_EXCL))
		err = create_exclusive(req, parent, name, e, &inode);
	if (err < 0)
		err = make_file(req, parent, name, mode, e, &inode);
	if (err == EEXIST && !(fi->flags & O_EXCL)) {
		/*
		 * The key came from elsewhere (a merge, the CLI) between the kernel's
		 * negative lookup and this create: open it, as POSIX says.
		 */
		free(h);
		if ((err = do_lookup(req, parent, name, e)) != 0)
			return err;
		if (!e->ino)
			return ENOENT; /* and went again */
		if ((err = do_open(req, e->ino, fi)) != 0) {
			pthread_mutex_lock(&fs->inodes.lock);
			forget_one(fs, e->ino, 1); /* the kernel never got the entry */
			pthread_mutex_unlock(&fs->inodes.lock);
		}
		return err;
	}
	if (err) {
		free(h);
		return err;
	}
	h->kind = HANDLE_FILE;
	h->flags = fi->flags;
	h->inode = inode;
	h->buf = inode->buf;
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	return 0;
}

static void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int err = do_create(req, parent, name, mode, fi, &e);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_create(req, &e, fi);
}

static int do_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		    struct fuse_entry_param *e)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_inode *inode;
	int err;

	if (!S_ISREG(mode))
		return fs_control_is(parent) ? EROFS : EPERM; /* no devices, fifos or sockets */
	if ((err = make_file(req, parent, name, mode, e, &inode)) != 0)
		return err;
	/* no handle will flush it: commit the empty key now */
	err = flush_inode(fs, req, inode, NULL);
	pthread_mutex_lock(&fs->inodes.lock);
	if (err)
		inode->nlookup--; /* the entry is not sent */
	detach_locked(fs, inode);
	pthread_mutex_unlock(&fs->inodes.lock);
	return err;
}

static void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fuse_entry_param e;
	int err = do_mknod(req, parent, name, mode, &e);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

/* ---- directories --------------------------------------------------------------- */

/*
 * Commit the delete of `key` pending on a temp elsewhere and clear it; the
 * caller holds ns_lock for writing and not inodes.lock.
 */
static int resolve_pending(struct gitkvfs *fs, fuse_req_t req, const char *key)
{
	struct fs_inode *holder;
	int err = commit_delete(fs, req, key);

	if (err)
		return err;
	pthread_mutex_lock(&fs->inodes.lock);
	if ((holder = fs_inode_find_pending(&fs->inodes, key)))
		fs_inode_set_pending(&fs->inodes, holder, NULL);
	pthread_mutex_unlock(&fs->inodes.lock);
	return 0;
}

static int do_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, struct fuse_entry_param *e)
{
	struct gitkvfs *fs = fs_of(req);
	gitkv_op op = {.type = GITKV_OP_MKDIR, .flags = GITKV_OP_EXCL};
	struct fs_inode *inode;
	struct node n;
	char *path = NULL;
	bool pending;
	int err;

	if (is_replay(fs, req))
		return replay_make(fs, parent, name, GITKV_TYPE_DIR, e, NULL);
	if ((err = check_new_name(fs, parent, name)) != 0)
		return err;
	pthread_rwlock_wrlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->inodes.lock);
	err = child_path_locked(fs, parent, name, &path);
	if (!err) {
		resolve_locked(fs, path, &n);
		if (n.kind != NODE_NONE)
			err = EEXIST;
	}
	pending = !err && fs_inode_find_pending(&fs->inodes, path);
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err)
		goto out;
	/* a directory where a key waits to be deleted: delete it first */
	if (pending && (err = resolve_pending(fs, req, path)) != 0)
		goto out;
	op.key = path;
	if ((err = commit(fs, req, &op)) != 0)
		goto out;
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_get(&fs->inodes, path, S_IFDIR);
	err = inode ? entry_locked(fs, inode, e) : ENOMEM;
	pthread_mutex_unlock(&fs->inodes.lock);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	free(path);
	return err;
}

static void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param e;
	int err = do_mkdir(req, parent, name, &e);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static int do_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct gitkvfs *fs = fs_of(req);
	gitkv_op op = {.type = GITKV_OP_DELETE};
	struct fs_inode *inode;
	struct node n;
	char *path = NULL, *pending = NULL;
	int err;

	if (is_replay(fs, req))
		return replay_remove(fs, parent, name, false);
	if ((err = check_old_name(fs, parent, name)) != 0)
		return err;
	pthread_rwlock_wrlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->inodes.lock);
	if ((err = child_path_locked(fs, parent, name, &path)) != 0)
		goto unlock;
	resolve_locked(fs, path, &n);
	switch (n.kind) {
	case NODE_NONE:
		err = ENOENT;
		goto unlock;
	case NODE_LOCAL:
		if (n.local->pending && !(pending = strdup(n.local->pending))) {
			err = ENOMEM;
			goto unlock;
		}
		break;
	case NODE_KEY:
		if (n.entry.type == GITKV_TYPE_DIR) {
			err = EISDIR;
			goto unlock;
		}
		break;
	}
	pthread_mutex_unlock(&fs->inodes.lock);

	/* A temp holding a pending delete: removing it makes the delete real. */
	if (pending)
		err = commit_delete(fs, req, pending);
	if (n.kind == NODE_KEY) {
		op.key = path;
		err = commit(fs, req, &op);
	}
	if (err)
		goto out;

	pthread_mutex_lock(&fs->inodes.lock);
	if ((inode = fs_inode_find_path(&fs->inodes, path)))
		fs_inode_unlink(&fs->inodes, inode);
unlock:
	pthread_mutex_unlock(&fs->inodes.lock);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	free(pending);
	free(path);
	return err;
}

static void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, do_unlink(req, parent, name));
}

static int do_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct gitkvfs *fs = fs_of(req);
	gitkv_op op = {.type = GITKV_OP_RMDIR};
	struct fs_inode *inode;
	struct node n;
	char *path = NULL, *key;
	int err;

	if (is_replay(fs, req))
		return replay_remove(fs, parent, name, true);
	if ((err = check_old_name(fs, parent, name)) != 0)
		return err;
	pthread_rwlock_wrlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->inodes.lock);
	if ((err = child_path_locked(fs, parent, name, &path)) != 0)
		goto unlock;
	resolve_locked(fs, path, &n);
	if (n.kind == NODE_NONE)
		err = ENOENT;
	else if (n.kind == NODE_LOCAL || n.entry.type != GITKV_TYPE_DIR)
		err = ENOTDIR;
	for (inode = fs->inodes.local; !err && inode; inode = inode->local_next) {
		if (below(inode->path, path))
			err = ENOTEMPTY; /* temp or fresh files inside */
	}
	if (err)
		goto unlock;
	/*
	 * Keys hidden by a pending delete (their temps live elsewhere) still
	 * fill the directory in the store: delete them first.
	 */
	for (;;) {
		key = NULL;
		for (inode = fs->inodes.local; inode; inode = inode->local_next) {
			if (inode->pending && below(inode->pending, path)) {
				key = strdup(inode->pending);
				break;
			}
		}
		if (!inode)
			break;
		pthread_mutex_unlock(&fs->inodes.lock);
		err = key ? resolve_pending(fs, req, key) : ENOMEM;
		free(key);
		if (err)
			goto out;
		pthread_mutex_lock(&fs->inodes.lock);
	}
	pthread_mutex_unlock(&fs->inodes.lock);

	op.key = path;
	if ((err = commit(fs, req, &op)) != 0)
		goto out;
	pthread_mutex_lock(&fs->inodes.lock);
	if ((inode = fs_inode_find_path(&fs->inodes, path)))
		fs_inode_unlink(&fs->inodes, inode);
unlock:
	pthread_mutex_unlock(&fs->inodes.lock);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	free(path);
	return err;
}

static void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, do_rmdir(req, parent, name));
}

/* ---- rename -------------------------------------------------------------------- */

/*
 * The rename cases, by what the source and the destination are (the caller
 * holds ns_lock for writing throughout; each helper takes inodes.lock for
 * its bookkeeping and never across a commit):
 *
 *   source         destination       helper            commits
 *   temp/fresh     ignored name      rename_local      nothing
 *   temp           real name         rename_temp       SET to (RENAME/+DELETE if pending)
 *   fresh          real name         rename_fresh      SET to
 *   key (value)    ignored name      rename_to_temp    nothing: a pending delete
 *   key or prefix  real name         rename_key        RENAME
 *
 * A temp at the destination is replaced; if it held a pending delete, that
 * delete is committed first (drop_temp_at).
 */

/* Commit the pending delete of a temp at `to` (about to be replaced). */
static int drop_temp_at(struct gitkvfs *fs, fuse_req_t req, const char *to)
{
	struct fs_inode *inode;
	char *key = NULL;
	int err = 0;

	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find_path(&fs->inodes, to);
	if (inode && inode->temp && inode->pending && !(key = strdup(inode->pending)))
		err = ENOMEM;
	pthread_mutex_unlock(&fs->inodes.lock);
	if (key)
		err = resolve_pending(fs, req, key);
	free(key);
	return err;
}

/* Clear the pending delete of `key` (it was just replaced by a commit). */
static void cancel_pending_locked(struct gitkvfs *fs, const char *key)
{
	struct fs_inode *holder = fs_inode_find_pending(&fs->inodes, key);

	if (holder)
		fs_inode_set_pending(&fs->inodes, holder, NULL);
}

/* After a committed move of `from` to `to`: move the inodes to match. */
static int move_inodes_locked(struct gitkvfs *fs, const char *from, const char *to, bool tree)
{
	struct fs_inode *inode = fs_inode_find_path(&fs->inodes, from), *old;
	int err = 0;

	if (tree)
		err = fs_inode_move_tree(&fs->inodes, from, to);
	if (inode)
		return fs_inode_move(&fs->inodes, inode, to) ? ENOMEM : err;
	if ((old = fs_inode_find_path(&fs->inodes, to)))
		fs_inode_unlink(&fs->inodes, old);
	return err;
}

static int rename_local(struct gitkvfs *fs, fuse_req_t req, const char *from, const char *to)
{
	struct fs_inode *inode;
	int err;

	if ((err = drop_temp_at(fs, req, to)) != 0)
		return err;
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find_path(&fs->inodes, from);
	if (!inode) {
		err = ENOENT;
	} else {
		if (inode->fresh) {
			/* a new key renamed to a temporary name: never committed */
			if (inode->buf)
				inode->mode = perm_of(inode->buf->vtype);
			fs_inode_set_local(&fs->inodes, inode, true, false);
		}
		err = fs_inode_move(&fs->inodes, inode, to);
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	return err;
}

static int rename_temp(struct gitkvfs *fs, fuse_req_t req, const char *from, const char *to)
{
	gitkv_op op = {.type = GITKV_OP_SET};
	struct fs_inode *inode;
	struct fs_buf *buf = NULL;
	gitkv_entry e;
	char *pending = NULL, *data = NULL;
	size_t len = 0;
	bool modified = true;
	int err = 0;

	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find_path(&fs->inodes, from);
	if (!inode || !inode->temp)
		err = ENOENT;
	else if (!(buf = attach_locked(inode)))
		err = ENOMEM;
	else if (inode->pending && !(pending = strdup(inode->pending)))
		err = ENOMEM;
	if (!err) {
		op.vtype = vtype_of_mode(inode->type, inode->mode);
		pthread_mutex_lock(&buf->lock);
		err = fs_buf_copy(buf, &data, &len);
		modified = buf->dirty || buf->vtype != op.vtype;
		pthread_mutex_unlock(&buf->lock);
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err)
		goto out;

	if (pending && strcmp(pending, to) != 0 && !modified) {
		/* `mv key key~; mv key~ other`: the key moved, unchanged */
		gitkv_op mv = {.type = GITKV_OP_RENAME, .key = pending, .to = to};

		err = commit(fs, req, &mv);
	} else {
		op.key = to;
		op.value = data;
		op.len = len;
		err = commit(fs, req, &op);
		if (!err && pending && strcmp(pending, to) != 0)
			err = commit_delete(fs, req, pending);
	}
	if (err)
		goto out;

	pthread_mutex_lock(&fs->inodes.lock);
	cancel_pending_locked(fs, to);
	fs_inode_set_local(&fs->inodes, inode, false, false);
	err = fs_inode_move(&fs->inodes, inode, to);
	pthread_mutex_lock(&buf->lock);
	buf->dirty = false;
	buf->vtype = op.vtype;
	if (gitkv_snapshot_lookup(fs->snap, to, &e) == 0) {
		buf->oid = e.oid;
		buf->vtype = e.type;
		buf->mtime = e.mtime;
	}
	pthread_mutex_unlock(&buf->lock);
	pthread_mutex_unlock(&fs->inodes.lock);
out:
	if (buf)
		detach(fs, inode);
	free(data);
	free(pending);
	return err;
}

static int rename_fresh(struct gitkvfs *fs, fuse_req_t req, const char *from, const char *to)
{
	gitkv_op op = {.type = GITKV_OP_SET, .key = to, .flags = GITKV_OP_KEEP_TYPE};
	struct fs_inode *inode;
	struct fs_buf *buf = NULL;
	char *data = NULL;
	size_t len = 0;
	int err = 0;

	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find_path(&fs->inodes, from);
	if (!inode || !inode->fresh)
		err = ENOENT;
	else if (!(buf = attach_locked(inode)))
		err = ENOMEM;
	if (!err) {
		pthread_mutex_lock(&buf->lock);
		err = fs_buf_copy(buf, &data, &len);
		if (!err)
			buf->dirty = false;
		op.vtype = buf->vtype;
		pthread_mutex_unlock(&buf->lock);
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err)
		goto out;

	op.value = data;
	op.len = len;
	err = commit(fs, req, &op);

	pthread_mutex_lock(&fs->inodes.lock);
	if (err) {
		pthread_mutex_lock(&buf->lock);
		buf->dirty = true;
		pthread_mutex_unlock(&buf->lock);
	} else {
		cancel_pending_locked(fs, to);
		fs_inode_set_local(&fs->inodes, inode, false, false);
		err = fs_inode_move(&fs->inodes, inode, to);
	}
	pthread_mutex_unlock(&fs->inodes.lock);
out:
	if (buf)
		detach(fs, inode);
	free(data);
	return err;
}

static int rename_to_temp(struct gitkvfs *fs, fuse_req_t req, const char *from, const char *to,
			  const gitkv_entry *src)
{
	struct fs_inode *inode;
	struct fs_buf *buf = NULL;
	bool reloaded;
	int err;

	if ((err = drop_temp_at(fs, req, to)) != 0)
		return err;
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_get(&fs->inodes, from, ifmt_of(src->type));
	if (!inode || !(buf = attach_locked(inode))) {
		if (inode)
			fs_inode_maybe_free(&fs->inodes, inode);
		err = ENOMEM;
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err)
		return err;

	/* the temp holds the key's bytes: load them unless a handle has them */
	err = buf_refresh(fs, buf, from, &reloaded);

	pthread_mutex_lock(&fs->inodes.lock);
	if (!err) {
		inode->mode = perm_of(src->type);
		fs_inode_set_local(&fs->inodes, inode, true, false);
		err = fs_inode_set_pending(&fs->inodes, inode, from);
		if (!err)
			err = fs_inode_move(&fs->inodes, inode, to);
		if (err)
			fs_inode_set_local(&fs->inodes, inode, false, false);
	}
	detach_locked(fs, inode);
	pthread_mutex_unlock(&fs->inodes.lock);
	return err;
}

static int rename_key(struct gitkvfs *fs, fuse_req_t req, const char *from, const char *to,
		      unsigned int flags, const struct node *src, const struct node *dst)
{
	gitkv_op op = {.type = GITKV_OP_RENAME, .key = from, .to = to};
	bool hidden;
	int err;

	if (dst->kind == NODE_LOCAL && dst->local->temp && (err = drop_temp_at(fs, req, to)) != 0)
		return err;
	pthread_mutex_lock(&fs->inodes.lock);
	hidden = fs_inode_find_pending(&fs->inodes, to) != NULL;
	pthread_mutex_unlock(&fs->inodes.lock);
	if (hidden && src->entry.type == GITKV_TYPE_DIR) {
		/* a directory onto a key that waits to be deleted: delete it now */
		if ((err = resolve_pending(fs, req, to)) != 0)
			return err;
		hidden = false;
	}
	if ((flags & RENAME_NOREPLACE) && !hidden)
		op.flags = GITKV_OP_NOREPLACE;
	if ((err = commit(fs, req, &op)) != 0)
		return err;

	pthread_mutex_lock(&fs->inodes.lock);
	cancel_pending_locked(fs, to);
	err = move_inodes_locked(fs, from, to, src->entry.type == GITKV_TYPE_DIR);
	pthread_mutex_unlock(&fs->inodes.lock);
	return err;
}

static int do_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		     const char *newname, unsigned int flags)
{
	struct gitkvfs *fs = fs_of(req);
	struct node src, dst;
	char *from = NULL, *to = NULL;
	bool src_dir, dst_temp;
	int err, code;

	if (flags & ~RENAME_NOREPLACE)
		return EINVAL; /* RENAME_EXCHANGE, RENAME_WHITEOUT */
	if ((err = check_old_name(fs, parent, name)) != 0)
		return err;
	if (fs_control_is(newparent) ||
	    (newparent == FS_INO_ROOT && strcmp(newname, GITKV_RESERVED) == 0))
		return EROFS;
	if ((code = gitkv_key_validate_component(newname, strlen(newname))) < 0)
		return gitkv_error_errno(code);

	pthread_rwlock_wrlock(&fs->ns_lock);
	pthread_mutex_lock(&fs->inodes.lock);
	err = child_path_locked(fs, parent, name, &from);
	if (!err)
		err = child_path_locked(fs, newparent, newname, &to);
	if (!err) {
		resolve_locked(fs, from, &src);
		resolve_locked(fs, to, &dst);
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err)
		goto out;
	if (src.kind == NODE_NONE) {
		err = ENOENT;
		goto out;
	}
	if (strcmp(from, to) == 0)
		goto out;
	if ((flags & RENAME_NOREPLACE) && dst.kind != NODE_NONE) {
		err = EEXIST;
		goto out;
	}
	src_dir = src.kind == NODE_KEY && src.entry.type == GITKV_TYPE_DIR;
	if (!src_dir && dst.kind == NODE_KEY && dst.entry.type == GITKV_TYPE_DIR) {
		err = EISDIR;
		goto out;
	}
	if (below(to, from)) {
		err = EINVAL; /* into itself */
		goto out;
	}
	/* a real key named like a temporary file stays a real key */
	dst_temp = !src_dir && dst.kind != NODE_KEY && ignored(fs, newname);

	if (src.kind == NODE_LOCAL && dst_temp)
		err = rename_local(fs, req, from, to);
	else if (src.kind == NODE_LOCAL && src.local->temp)
		err = rename_temp(fs, req, from, to);
	else if (src.kind == NODE_LOCAL)
		err = rename_fresh(fs, req, from, to);
	else if (dst_temp)
		err = rename_to_temp(fs, req, from, to, &src.entry);
	else
		err = rename_key(fs, req, from, to, flags, &src, &dst);
out:
	pthread_rwlock_unlock(&fs->ns_lock);
	free(from);
	free(to);
	return err;
}

static void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	fuse_reply_err(req, do_rename(req, parent, name, newparent, newname, flags));
}

static void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	fuse_reply_err(req, EPERM); /* git has no hard links */
}

/* ---- open files ------------------------------------------------------------------ */

static int open_control(struct gitkvfs *fs, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_handle *h;
	int err;

	if (is_writable(fi->flags) || (fi->flags & O_TRUNC))
		return EROFS;
	h = calloc(1, sizeof(*h));
	if (!h)
		return ENOMEM;
	h->kind = HANDLE_CONTROL;
	if ((err = fs_control_content(&fs->control, ino, &h->data, &h->size)) != 0) {
		free(h);
		return err;
	}
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1;
	return 0;
}

static int do_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_inode *inode;
	struct fs_buf *buf = NULL;
	struct fs_handle *h;
	char *path = NULL;
	bool real = false, reloaded = false, write = is_writable(fi->flags);
	int err = 0;

	if (fs_control_is(ino))
		return open_control(fs, ino, fi);
	if (is_replay(fs, req))
		return replay_open(fs, ino, fi);
	h = calloc(1, sizeof(*h));
	if (!h)
		return ENOMEM;

	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (!inode)
		err = ENOENT;
	else if (inode->type == S_IFDIR)
		err = EISDIR;
	else if (inode->type != S_IFREG)
		err = ELOOP;
	else if ((write || (fi->flags & O_TRUNC)) && fs->readonly)
		err = EROFS;
	else if (inode->linked && !inode->temp && !inode->fresh && value_expired(fs, inode->path) &&
		 !(write && (fi->flags & O_TRUNC)))
		err = ENOENT; /* expired: only a rewrite (which makes it new) may open it */
	else if (!(buf = attach_locked(inode)) || !(path = strdup(inode->path)))
		err = ENOMEM;
	else
		real = inode->linked && !inode->temp && !inode->fresh;
	pthread_mutex_unlock(&fs->inodes.lock);
	if (err)
		goto out;

	if (real)
		err = buf_refresh(fs, buf, path, &reloaded);
	if (!err && write && (fi->flags & O_TRUNC)) {
		pthread_mutex_lock(&buf->lock);
		err = fs_buf_truncate(buf, 0, fs->max_value_size);
		pthread_mutex_unlock(&buf->lock);
	}
	if (err)
		goto out;
	h->kind = HANDLE_FILE;
	h->flags = fi->flags;
	h->inode = inode;
	h->buf = buf;
	fi->fh = (uintptr_t)h;
	/* the kernel's pages stay valid unless this handle changes the file */
	fi->keep_cache = !write && !reloaded;
	h = NULL;
out:
	if (err && buf)
		detach(fs, inode);
	free(h);
	free(path);
	return err;
}

static void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err = do_open(req, ino, fi);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_open(req, fi);
}

static struct fs_handle *handle_of(struct fuse_file_info *fi)
{
	return (struct fs_handle *)(uintptr_t)fi->fh;
}

/* Reload a clean buffer whose key changed outside the mount (read at offset 0). */
static void refresh_if_stale(struct gitkvfs *fs, struct fs_handle *h)
{
	char *path = NULL;
	bool stale, reloaded;

	pthread_mutex_lock(&h->buf->lock);
	stale = h->buf->stale && !h->buf->dirty;
	pthread_mutex_unlock(&h->buf->lock);
	if (!stale)
		return;
	pthread_mutex_lock(&fs->inodes.lock);
	if (h->inode->linked && !h->inode->temp && !h->inode->fresh)
		path = strdup(h->inode->path);
	pthread_mutex_unlock(&fs->inodes.lock);
	if (path)
		buf_refresh(fs, h->buf, path, &reloaded);
	free(path);
}

/* A copy of at most `size` bytes of `data` (`len` long) from `off`; *n_out 0 past the end. */
static char *slice_copy(const char *data, size_t len, size_t size, off_t off, size_t *n_out)
{
	size_t n = off < 0 || (size_t)off >= len ? 0 : len - (size_t)off;
	char *copy;

	*n_out = n = size < n ? size : n;
	if (!n || !(copy = malloc(n)))
		return NULL;
	memcpy(copy, data + off, n);
	return copy;
}

/*
 * The reply is sent from a copy, with no lock held: once the kernel has the
 * bytes, the reader may close the file and its release free the handle and
 * the buffer before fuse_reply_buf() even returns here.
 */
static void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fs_handle *h = handle_of(fi);
	char *copy;
	size_t n;

	if (h->kind == HANDLE_REPLAY) {
		fuse_reply_err(req, EBADF); /* opened to write */
		return;
	}
	if (h->kind == HANDLE_CONTROL) {
		copy = slice_copy(h->data, h->size, size, off, &n);
	} else {
		if (off == 0)
			refresh_if_stale(fs_of(req), h);
		pthread_mutex_lock(&h->buf->lock);
		copy = slice_copy(h->buf->data, h->buf->size, size, off, &n);
		pthread_mutex_unlock(&h->buf->lock);
	}
	if (n && !copy) {
		fuse_reply_err(req, ENOMEM);
	} else {
		if (h->kind != HANDLE_CONTROL) {
			struct gitkvfs *fs = fs_of(req);

			__atomic_fetch_add(&fs->stats.reads, 1, __ATOMIC_RELAXED);
			__atomic_fetch_add(&fs->stats.read_bytes, (uint64_t)n, __ATOMIC_RELAXED);
		}
		fuse_reply_buf(req, copy, n);
	}
	free(copy);
}

static int do_write(fuse_req_t req, const char *data, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_handle *h = handle_of(fi);
	size_t max;
	int err;

	if (h->kind == HANDLE_REPLAY)
		return 0; /* the bytes are committed already: they only fill the kernel's pages */
	if (h->kind != HANDLE_FILE)
		return EBADF;
	pthread_mutex_lock(&fs->inodes.lock);
	max = h->inode->temp ? fs->max_temp_size : fs->max_value_size;
	pthread_mutex_unlock(&fs->inodes.lock);
	pthread_mutex_lock(&h->buf->lock);
	if (h->flags & O_APPEND)
		off = (off_t)h->buf->size;
	err = fs_buf_write(h->buf, data, size, off, max);
	if (err)
		h->buf->error = err; /* the flush drops what this handle's writes did */
	__atomic_store_n(&h->wrote, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&h->buf->lock);
	return err;
}

static void fs_write(fuse_req_t req, fuse_ino_t ino, const char *data, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct gitkvfs *fs = fs_of(req);
	int err = do_write(req, data, size, off, fi);

	if (err) {
		fuse_reply_err(req, err);
		return;
	}
	if (handle_of(fi)->kind == HANDLE_FILE) { /* not the replay's own */
		__atomic_fetch_add(&fs->stats.writes, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&fs->stats.write_bytes, (uint64_t)size, __ATOMIC_RELAXED);
	}
	fuse_reply_write(req, size);
}

static void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_handle *h = handle_of(fi);
	struct ack ack = {0};
	int err;

	if (h->kind != HANDLE_FILE) {
		fuse_reply_err(req, 0); /* a replay handle too: its change is committed */
		return;
	}
	err = flush_inode(fs, req, h->inode, &ack);
	if (!err)
		__atomic_store_n(&h->wrote, false, __ATOMIC_RELAXED);
	if (!err)
		err = acknowledge(fs, &ack);
	free(ack.key);
	fuse_reply_err(req, err);
}

static void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	fs_flush(req, ino, fi);
}

static void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_handle *h = handle_of(fi);
	int err;

	if (h->kind == HANDLE_FILE) {
		/*
		 * Normally clean by now. Writes through a shared mapping may follow
		 * the flush: commit those. Never commit only because the shared
		 * buffer is dirty: a new open(O_TRUNC) of the key by another handle
		 * may have emptied it while this release was in flight, and that
		 * would commit bytes nobody wrote.
		 */
		err = __atomic_load_n(&h->wrote, __ATOMIC_RELAXED)
			      ? flush_inode(fs, NULL, h->inode, NULL)
			      : 0;
		if (err)
			fuse_log(FUSE_LOG_ERR, "gitkvfs: last changes to inode %lu lost: %s\n",
				 (unsigned long)ino, strerror(err));
		detach(fs, h->inode);
	}
	free(h->data);
	free(h);
	fuse_reply_err(req, 0);
}

/* ---- directory listings ------------------------------------------------------------ */

static void dir_free(struct dir_ent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ents[i].name);
	free(ents);
}

static int dir_add(struct dir_ent **ents, size_t *n, size_t *cap, const char *name, fuse_ino_t ino,
		   mode_t type)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		struct dir_ent *p = realloc(*ents, c * sizeof(*p));

		if (!p)
			return ENOMEM;
		*ents = p;
		*cap = c;
	}
	if (!((*ents)[*n].name = strdup(name)))
		return ENOMEM;
	(*ents)[*n].ino = ino;
	(*ents)[*n].type = type;
	(*n)++;
	return 0;
}

static int cmp_dirent_name(const void *key, const void *elem)
{
	return strcmp(key, ((const gitkv_dirent *)elem)->name);
}

/*
 * Build the listing of directory `path` (inode `ino`): the snapshot's
 * children less the keys hidden by pending deletes and the reserved tree,
 * plus the local inodes in it, plus /.gitkv at the root.
 */
static int list_dir(struct gitkvfs *fs, fuse_ino_t ino, const char *path, struct dir_ent **out,
		    size_t *nout)
{
	struct dir_ent *ents = NULL;
	gitkv_dirent *snap = NULL;
	struct fs_inode *inode;
	size_t n = 0, cap = 0, nsnap = 0;
	bool root = !*path;
	char *child;
	int code, err;

	code = gitkv_snapshot_list(fs->snap, path, &snap, &nsnap);
	if (code < 0 && !(root && code == GITKV_ENOTFOUND))
		return gitkv_error_errno(code);
	err = dir_add(&ents, &n, &cap, ".", ino, S_IFDIR);
	if (!err)
		err = dir_add(&ents, &n, &cap, "..", FS_INO_UNKNOWN, S_IFDIR);
	if (!err && root)
		err = dir_add(&ents, &n, &cap, GITKV_RESERVED, FS_INO_CONTROL, S_IFDIR);

	pthread_mutex_lock(&fs->inodes.lock);
	for (size_t i = 0; !err && i < nsnap; i++) {
		if (root && strcmp(snap[i].name, GITKV_RESERVED) == 0)
			continue;
		if (!(child = gitkv_key_join(path, snap[i].name))) {
			err = ENOMEM;
			break;
		}
		inode = fs_inode_find_path(&fs->inodes, child);
		if (!fs_inode_find_pending(&fs->inodes, child) && !(inode && inode->temp) &&
		    !(gitkv_type_is_value(snap[i].entry.type) && value_expired(fs, child)))
			err = dir_add(&ents, &n, &cap, snap[i].name,
				      inode && inode->type == ifmt_of(snap[i].entry.type)
					  ? inode->ino
					  : FS_INO_UNKNOWN,
				      ifmt_of(snap[i].entry.type));
		free(child);
	}
	for (inode = fs->inodes.local; !err && inode; inode = inode->local_next) {
		const char *name = gitkv_key_basename(inode->path);

		if (!child_of(inode->path, path))
			continue;
		if (!inode->temp && bsearch(name, snap, nsnap, sizeof(*snap), cmp_dirent_name))
			continue; /* a fresh file committed since: listed already */
		err = dir_add(&ents, &n, &cap, name, inode->ino, inode->type);
	}
	pthread_mutex_unlock(&fs->inodes.lock);
	gitkv_dirents_free(snap, nsnap);
	if (err) {
		dir_free(ents, n);
		return err;
	}
	*out = ents;
	*nout = n;
	return 0;
}

static int list_control(struct gitkvfs *fs, fuse_ino_t ino, struct dir_ent **out, size_t *nout)
{
	struct fs_control_dirent *c = NULL;
	struct dir_ent *ents = NULL;
	size_t n = 0, cap = 0, count = 0;
	int err;

	if ((err = fs_control_list(&fs->control, ino, &c, &count)) != 0)
		return err;
	err = dir_add(&ents, &n, &cap, ".", ino, S_IFDIR);
	if (!err)
		err = dir_add(&ents, &n, &cap, "..",
			      ino == FS_INO_CONTROL ? FS_INO_ROOT : FS_INO_UNKNOWN, S_IFDIR);
	for (size_t i = 0; !err && i < count; i++)
		err = dir_add(&ents, &n, &cap, c[i].name, c[i].ino ? c[i].ino : FS_INO_UNKNOWN,
			      c[i].type);
	fs_control_dirents_free(c, count);
	if (err) {
		dir_free(ents, n);
		return err;
	}
	*out = ents;
	*nout = n;
	return 0;
}

static int do_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct gitkvfs *fs = fs_of(req);
	struct fs_inode *inode;
	struct fs_handle *h = calloc(1, sizeof(*h));
	char *path = NULL;
	int err = 0;

	if (!h)
		return ENOMEM;
	h->kind = HANDLE_DIR;
	if (fs_control_is(ino)) {
		err = list_control(fs, ino, &h->ents, &h->nents);
		goto out;
	}
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (!inode || !inode->linked)
		err = ENOENT;
	else if (inode->type != S_IFDIR)
		err = ENOTDIR;
	else if (!(path = strdup(inode->path)))
		err = ENOMEM;
	pthread_mutex_unlock(&fs->inodes.lock);
	if (!err)
		err = list_dir(fs, ino, path, &h->ents, &h->nents);
out:
	free(path);
	if (err) {
		free(h);
		return err;
	}
	fi->fh = (uintptr_t)h;
	return 0;
}

static void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err = do_opendir(req, ino, fi);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_open(req, fi);
}

static void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct fs_handle *h = handle_of(fi);
	struct stat st;
	size_t pos = 0, need;
	char *buf = malloc(size);

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memset(&st, 0, sizeof(st));
	for (size_t i = off < 0 ? 0 : (size_t)off; i < h->nents; i++) {
		st.st_ino = h->ents[i].ino;
		st.st_mode = h->ents[i].type;
		need = fuse_add_direntry(req, buf + pos, size - pos, h->ents[i].name, &st,
					 (off_t)(i + 1));
		if (need > size - pos)
			break;
		pos += need;
	}
	fuse_reply_buf(req, buf, pos);
	free(buf);
}

static void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs_handle *h = handle_of(fi);

	dir_free(h->ents, h->nents);
	free(h);
	fuse_reply_err(req, 0);
}

/* ---- statfs, xattrs ------------------------------------------------------------------ */

static void fs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct gitkvfs *fs = fs_of(req);
	struct statvfs sv, st;
	unsigned long frsize;

	memset(&st, 0, sizeof(st));
	st.f_bsize = st.f_frsize = 4096;
	st.f_namemax = GITKV_KEY_COMPONENT_MAX;
	st.f_files = gitkv_snapshot_count(fs->snap);
	if (statvfs(gitkv_store_path(fs->store), &sv) == 0) {
		/* the space left is the space of the repository's filesystem */
		frsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
		st.f_blocks = sv.f_blocks * frsize / 4096;
		st.f_bfree = sv.f_bfree * frsize / 4096;
		st.f_bavail = sv.f_bavail * frsize / 4096;
		st.f_ffree = sv.f_ffree;
		st.f_favail = sv.f_favail;
		st.f_files += sv.f_ffree;
	}
	fuse_reply_statfs(req, &st);
}

/*
 * xattrs: the user.gitkv. namespace, nothing else (ENOTSUP: never a silent
 * drop). user.gitkv.ttl reads and writes the TTL of a value or the lease of
 * a directory (seconds; 0 or removexattr clears it; XATTR_CREATE and
 * XATTR_REPLACE are honoured); user.gitkv.expires (ISO 8601, UTC) and
 * user.gitkv.commit (the last commit that changed the path) are read-only
 * (EPERM). A name the path does not have is ENODATA.
 */
#define XATTR_TTL "user.gitkv.ttl"
#define XATTR_EXPIRES "user.gitkv.expires"
#define XATTR_COMMIT "user.gitkv.commit"

enum xattr_name { XATTR_OTHER, XATTR_IS_TTL, XATTR_IS_EXPIRES, XATTR_IS_COMMIT };

static enum xattr_name xattr_of(const char *name)
{
	if (!strcmp(name, XATTR_TTL))
		return XATTR_IS_TTL;
	if (!strcmp(name, XATTR_EXPIRES))
		return XATTR_IS_EXPIRES;
	if (!strcmp(name, XATTR_COMMIT))
		return XATTR_IS_COMMIT;
	return XATTR_OTHER;
}

/* The committed key behind inode `ino` (malloc'd), or an errno. */
static int xattr_key(struct gitkvfs *fs, fuse_ino_t ino, char **out)
{
	struct fs_inode *inode;
	int err = 0;

	*out = NULL;
	pthread_mutex_lock(&fs->inodes.lock);
	inode = fs_inode_find(&fs->inodes, ino);
	if (!inode || !inode->linked)
		err = ENOENT;
	else if (inode->temp || inode->fresh)
		err = ENOTSUP; /* not in the store (yet): it has no metadata */
	else if (!(*out = strdup(inode->path)))
		err = ENOMEM;
	pthread_mutex_unlock(&fs->inodes.lock);
	return err;
}

static int first_commit(const gitkv_commit_info *c, void *payload)
{
	*(gitkv_oid *)payload = c->id;
	return 1;
}

/* The text of attribute `which` of `key` into `buf`; its length or -errno. */
static int xattr_text(struct gitkvfs *fs, const char *key, enum xattr_name which, char *buf,
		      size_t size)
{
	gitkv_meta m;
	gitkv_oid id = {{0}};
	struct tm tm;
	time_t t;
	int code;

	if (which == XATTR_IS_COMMIT) {
		code = gitkv_store_history(fs->store, key, 1, first_commit, &id);
		if (code < 0)
			return -gitkv_error_errno(code);
		if (gitkv_oid_is_zero(&id))
			return -ENODATA;
		gitkv_oid_fmt(buf, &id);
		return GITKV_OID_HEXSZ;
	}
	if ((code = gitkv_store_meta(fs->store, key, &m)) < 0)
		return -gitkv_error_errno(code);
	if (which == XATTR_IS_TTL)
		return m.ttl ? snprintf(buf, size, "%lld", (long long)m.ttl) : -ENODATA;
	if (!m.expires)
		return -ENODATA;
	t = (time_t)m.expires;
	gmtime_r(&t, &tm);
	return (int)strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Reply to a getxattr/listxattr with `len` bytes of `data` and the size protocol. */
static void reply_xattr(fuse_req_t req, const char *data, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, data, len);
}

static int parse_ttl(const char *value, size_t size, int64_t *out)
{
	char buf[32];
	char *end;
	long long v;

	while (size && (value[size - 1] == '\n' || value[size - 1] == ' '))
		size--;
	if (!size || size >= sizeof(buf))
		return EINVAL;
	memcpy(buf, value, size);
	buf[size] = '\0';
	if (buf[0] < '0' || buf[0] > '9')
		return EINVAL;
	errno = 0;
	v = strtoll(buf, &end, 10);
	if (errno || *end || v > GITKV_TTL_MAX)
		return EINVAL;
	*out = v;
	return 0;
}

/*
 * Set (remove: clear) the TTL xattr `name` of `ino` to `ttl` seconds, with
 * setxattr's `flags`; 0 or an errno.
 */
static int change_ttl(fuse_req_t req, fuse_ino_t ino, const char *name, int64_t ttl, int flags,
		      bool remove)
{
	struct gitkvfs *fs = fs_of(req);
	enum xattr_name which = xattr_of(name);
	gitkv_op op = {.type = GITKV_OP_TTL, .ttl = ttl};
	char *key = NULL, cur[32];
	int len, err;

	if (fs_control_is(ino))
		return EROFS;
	if (which == XATTR_OTHER)
		return ENOTSUP;
	if (which != XATTR_IS_TTL)
		return EPERM;
	if (fs->readonly)
		return EROFS;
	if ((err = xattr_key(fs, ino, &key)) != 0)
		return err;
	len = xattr_text(fs, key, XATTR_IS_TTL, cur, sizeof(cur));
	if (len < 0 && (len != -ENODATA || remove))
		err = -len;
	else if ((flags & XATTR_CREATE) && len >= 0)
		err = EEXIST;
	else if ((flags & XATTR_REPLACE) && len < 0)
		err = ENODATA;
	else {
		op.key = key;
		err = commit(fs, req, &op);
	}
	free(key);
	return err;
}

static void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	int64_t ttl = 0;
	int err = xattr_of(name) == XATTR_IS_TTL && !fs_control_is(ino)
			  ? parse_ttl(value, size, &ttl)
			  : 0;

	fuse_reply_err(req, err ? err : change_ttl(req, ino, name, ttl, flags, false));
}

static void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct gitkvfs *fs = fs_of(req);
	enum xattr_name which = xattr_of(name);
	char *key = NULL, buf[64];
	int len, err;

	if (which == XATTR_OTHER || fs_control_is(ino)) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if ((err = xattr_key(fs, ino, &key)) != 0) {
		fuse_reply_err(req, err);
		return;
	}
	len = xattr_text(fs, key, which, buf, sizeof(buf));
	free(key);
	if (len < 0)
		fuse_reply_err(req, -len);
	else
		reply_xattr(req, buf, (size_t)len, size);
}

static void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const enum xattr_name names[] = {XATTR_IS_COMMIT, XATTR_IS_TTL, XATTR_IS_EXPIRES};
	static const char *const strs[] = {XATTR_COMMIT, XATTR_TTL, XATTR_EXPIRES};
	struct gitkvfs *fs = fs_of(req);
	char list[128], buf[64], *key = NULL;
	size_t len = 0;

	if (fs_control_is(ino) || xattr_key(fs, ino, &key) != 0) {
		reply_xattr(req, "", 0, size); /* nothing to list */
		return;
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (xattr_text(fs, key, names[i], buf, sizeof(buf)) < 0)
			continue;
		memcpy(list + len, strs[i], strlen(strs[i]) + 1);
		len += strlen(strs[i]) + 1;
	}
	free(key);
	reply_xattr(req, list, len, size);
}

static void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, change_ttl(req, ino, name, 0, 0, true));
}

const struct fuse_lowlevel_ops fs_ops = {
    .init = fs_init,
    .lookup = fs_lookup,
    .forget = fs_forget,
    .forget_multi = fs_forget_multi,
    .getattr = fs_getattr,
    .setattr = fs_setattr,
    .readlink = fs_readlink,
    .mknod = fs_mknod,
    .mkdir = fs_mkdir,
    .unlink = fs_unlink,
    .rmdir = fs_rmdir,
    .symlink = fs_symlink,
    .rename = fs_rename,
    .link = fs_link,
    .open = fs_open,
    .read = fs_read,
    .write = fs_write,
    .flush = fs_flush,
    .release = fs_release,
    .fsync = fs_fsync,
    .opendir = fs_opendir,
    .readdir = fs_readdir,
    .releasedir = fs_releasedir,
    .statfs = fs_statfs,
    .setxattr = fs_setxattr,
    .getxattr = fs_getxattr,
    .listxattr = fs_listxattr,
    .removexattr = fs_removexattr,
    .create = fs_create,
};

/* ---- invalidation (the notifier thread) ------------------------------------------------ */

static bool notify_failed(int r)
{
	/* not cached, or the mount is going away: nothing to invalidate */
	return r != 0 && r != -ENOENT && r != -EBADF && r != -ENODEV;
}

void fs_invalidate_paths(void *payload, char *const *paths, size_t count)
{
	struct gitkvfs *fs = payload;
	fuse_ino_t last_parent = 0;

	for (size_t i = 0; i < count && fs->se; i++) {
		const char *path = paths[i], *name = gitkv_key_basename(path);
		struct fs_inode *inode;
		char *parent = gitkv_key_parent(path);
		fuse_ino_t ino = 0, pino = 0;
		int r;

		pthread_mutex_lock(&fs->inodes.lock);
		inode = fs_inode_find_path(&fs->inodes, path);
		if (inode && !inode->temp && !inode->fresh) {
			ino = inode->ino;
			if (inode->buf) {
				/* the next open (or read from 0) re-reads a clean copy */
				pthread_mutex_lock(&inode->buf->lock);
				if (!inode->buf->dirty)
					inode->buf->stale = true;
				pthread_mutex_unlock(&inode->buf->lock);
			}
		}
		if (parent && (inode = fs_inode_find_path(&fs->inodes, parent)))
			pino = inode->ino;
		pthread_mutex_unlock(&fs->inodes.lock);
		free(parent);

		/* no lock held from here on: the kernel may call us back */
		__atomic_fetch_add(&fs->stats.invalidations, 1, __ATOMIC_RELAXED);
		if (ino && notify_failed(r = fuse_lowlevel_notify_inval_inode(fs->se, ino, 0, 0)))
			fuse_log(FUSE_LOG_DEBUG, "gitkvfs: invalidating '%s': %s\n", path,
				 strerror(-r));
		if (!pino)
			continue;
		r = fuse_lowlevel_notify_inval_entry(fs->se, pino, name, strlen(name));
		if (notify_failed(r))
			fuse_log(FUSE_LOG_DEBUG, "gitkvfs: invalidating the entry '%s': %s\n", path,
				 strerror(-r));
		if (pino != last_parent) {
			/* the directory's size and times changed too */
			fuse_lowlevel_notify_inval_inode(fs->se, pino, -1, 0);
			last_parent = pino;
		}
	}
}

/* The replay thread's fallback: a step it could not perform is invalidated instead. */
static void invalidate_instead(void *payload, const char *path)
{
	struct gitkvfs *fs = payload;

	fs_notifier_push(fs->notifier, path);
}

/*
 * The store's subscriber (any publishing thread, the store's commit lock
 * held): external batches go to the replay thread, or to the notifier.
 */
static void on_change(const gitkv_change_batch *batch, void *payload)
{
	struct gitkvfs *fs = payload;

	/* an expiry that changed: the kernel must ask again, and cache no longer than it */
	for (size_t i = 0; i < batch->count; i++) {
		const char *p = batch->changes[i].path;

		if (gitkv_key_has_prefix(p, GITKV_META_PREFIX) && strlen(p) > strlen(GITKV_META_PREFIX) &&
		    strcmp(gitkv_key_basename(p), GITKV_RESERVED) != 0 &&
		    (gitkv_type_is_value(batch->changes[i].old.type) ||
		     gitkv_type_is_value(batch->changes[i].new.type)))
			fs_notifier_push(fs->notifier, p + strlen(GITKV_META_PREFIX) + 1);
	}
	if (batch->origin == GITKV_ORIGIN_LOCAL || !batch->count)
		return;
	if (fs->replay)
		fs_replay_push(fs->replay, batch);
	else
		fs_notifier_change(batch, fs->notifier);
}

static int render_metrics(void *payload, char **out, size_t *len_out)
{
	return fs_metrics_render(payload, out, len_out);
}

/* ---- lifecycle ------------------------------------------------------------------------- */

int fs_new(struct gitkvfs **out, gitkv_store *store, const struct gitkvfs_options *opts)
{
	struct gitkvfs *fs = calloc(1, sizeof(*fs));
	pthread_rwlockattr_t attr;
	int code;

	if (!fs)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	fs->store = store;
	fs->snap = gitkv_store_snapshot(store);
	fs->entry_timeout = opts->entry_timeout;
	fs->attr_timeout = opts->attr_timeout;
	fs->readonly = opts->readonly;
	fs->max_value_size = gitkv_store_max_value_size(store);
	/* room for an editor's swap file of the largest value */
	fs->max_temp_size = 4 * fs->max_value_size + (1 << 20);
	fs->uid = opts->uid;
	fs->gid = opts->gid;
	fs->umask = opts->umask;
	fs->started = time(NULL);
	fs->sync_mode = opts->sync_mode == GITKVFS_SYNC_SYNC;
	fs->quorum = opts->quorum;
	fs->sync_timeout_s = opts->sync_timeout;
	fs->control.store = store;
	fs->control.sync_mode = fs->sync_mode ? "sync" : "async";
	fs->control.quorum = opts->quorum;
	fs->control.entry_timeout = opts->entry_timeout;
	fs->control.metrics = render_metrics;
	fs->control.metrics_payload = fs;

	pthread_rwlockattr_init(&attr);
	/* renames must not starve behind a stream of flushes */
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->ns_lock, &attr);
	pthread_rwlockattr_destroy(&attr);

	if ((code = fs_ignore_new(&fs->ignore, opts->ignore)) < 0 ||
	    (code = fs_inodes_init(&fs->inodes)) < 0 ||
	    (code = fs_control_init(&fs->control)) < 0 ||
	    (code = fs_notifier_new(&fs->notifier, fs_invalidate_paths, fs)) < 0 ||
	    /* the kernel refuses a read-only mount's writes: invalidate only */
	    (!opts->noreplay && !opts->readonly &&
	     (code = fs_replay_new(&fs->replay, store, invalidate_instead, fs)) < 0) ||
	    (code = gitkv_store_subscribe(store, on_change, fs)) < 0) {
		fs_free(fs);
		return code;
	}
	*out = fs;
	return 0;
}

/* The id /proc/self/mountinfo gives the mount at `mountpoint`, or 0. */
static int mount_id_of(const char *mountpoint)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, mnt[4096];
	size_t cap = 0;
	int id = 0, cand;

	if (!f)
		return 0;
	while (getline(&line, &cap, f) != -1) {
		/* id parent major:minor root mountpoint ...; escapes only matter for odd names */
		if (sscanf(line, "%d %*d %*s %*s %4095s", &cand, mnt) == 2 &&
		    strcmp(mnt, mountpoint) == 0)
			id = cand; /* the last one listed is on top */
	}
	free(line);
	fclose(f);
	return id;
}

int fs_start(struct gitkvfs *fs, struct fuse_session *se, const char *mountpoint,
	     sync_engine *engine)
{
	int code;

	fs->se = se;
	fs->mnt_id = mountpoint ? mount_id_of(mountpoint) : 0;
	fs->engine = engine;
	fs->control.engine = engine;
	if ((code = fs_notifier_start(fs->notifier)) < 0)
		return code;
	if (fs->replay && mountpoint)
		return fs_replay_start(fs->replay, mountpoint);
	return 0;
}

void fs_stop(struct gitkvfs *fs)
{
	/* a step stuck on the ended session ends at unmount: fs_join() waits for it */
	fs_replay_stop(fs->replay, 1000);
	fs_notifier_stop(fs->notifier);
}

void fs_join(struct gitkvfs *fs)
{
	fs_replay_stop(fs->replay, -1);
}

int fs_commit_pending(struct gitkvfs *fs)
{
	struct fs_inode *inode;
	char *key;
	int failed = 0, err;

	pthread_rwlock_wrlock(&fs->ns_lock);
	for (;;) {
		key = NULL;
		pthread_mutex_lock(&fs->inodes.lock);
		for (inode = fs->inodes.local; inode && !inode->pending; inode = inode->local_next)
			;
		if (inode) {
			key = strdup(inode->pending);
			fs_inode_set_pending(&fs->inodes, inode, NULL);
		}
		pthread_mutex_unlock(&fs->inodes.lock);
		if (!inode)
			break;
		err = key ? commit_delete(fs, NULL, key) : ENOMEM;
		if (err) {
			fuse_log(FUSE_LOG_ERR, "gitkvfs: cannot delete '%s': %s\n",
				 key ? key : "(out of memory)", strerror(err));
			failed++;
		}
		free(key);
	}
	pthread_rwlock_unlock(&fs->ns_lock);
	return failed;
}

void fs_free(struct gitkvfs *fs)
{
	if (!fs)
		return;
	fs_replay_free(fs->replay);
	fs_notifier_free(fs->notifier);
	if (fs->inodes.by_ino)
		fs_inodes_release(&fs->inodes);
	fs_ignore_free(fs->ignore);
	fs_control_release(&fs->control);
	pthread_rwlock_destroy(&fs->ns_lock);
	free(fs);
}
