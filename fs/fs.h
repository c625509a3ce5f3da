/*
 * fs.h - the gitkvfs filesystem: the FUSE low-level operations over a
 * gitkv store, and the context they share.
 *
 * Files are keys, directories are prefixes. Reads come from the store's
 * snapshot of HEAD; every change is one gitkv_store_apply() and so one
 * commit. fs.c's opening comment tells how each operation maps to the store
 * (commit on flush, temporary files and pending deletes, kernel caching).
 *
 * Lifecycle (main thread): fs_new() once the store is open (it subscribes
 * to the store's change stream), fuse_session_new() with &fs_ops and the
 * context as userdata, mount, daemonize, start the sync engine, fs_start()
 * (the notifier and replay threads), the session loop, fs_stop(),
 * fs_commit_pending(), stop the sync engine, unmount, fs_join(), then
 * gitkv_store_free() and only then fs_free(): the store keeps calling the
 * subscriber until it is freed.
 *
 * Changes made outside the mount (origin GITKV_ORIGIN_EXTERNAL: the CLI, a
 * push into the store, a merge by the sync engine) go to the replay thread
 * (replay.h), which performs them through the mount so that inotify
 * watchers see them; the operations recognise its requests and change only
 * the kernel's view. With -o noreplay (and on a read-only mount, where the
 * kernel refuses the replay's writes) they go to the notifier instead,
 * which only invalidates the kernel's caches.
 *
 * Write concern (sync_mode=sync): a flush or fsync that committed returns
 * only once `quorum` remotes hold the commit (sync_engine_wait_pushed()),
 * or EIO after sync_timeout; an exclusive create (O_EXCL) is decided by the
 * first remote (sync_engine_create_exclusive()). Both wait holding no lock.
 *
 * Threads and locks:
 *   FUSE worker threads run the operations. The notifier thread
 *   (notify.h) invalidates kernel caches; the replay thread (replay.h)
 *   replays external commits. The ref watcher thread and the sync thread
 *   (sync/) publish external changes and so call the subscriber on their
 *   thread.
 *   Locks, in the order they are taken:
 *     ns_lock             rwlock over the namespace. Written by the
 *                         operations that change which path is what
 *                         (create, mknod, mkdir, symlink, unlink, rmdir,
 *                         rename) for the whole operation, commit included,
 *                         so they see and change the table and the store as
 *                         one step; read by flush, fsync, truncate and chmod
 *                         across their commit, so a commit goes to the path
 *                         the inode has. Lookups, reads and writes skip it.
 *     buf->commit_lock    one commit of a buffer at a time (buffer.h)
 *     inodes.lock         the inode table and every inode field (inode.h)
 *     buf->lock           a buffer's bytes and flags (buffer.h)
 *   The store's own locks come after all of these: gitkv_store_apply() is
 *   called holding at most ns_lock and a commit_lock, never inodes.lock or
 *   buf->lock, because the store calls the subscriber with its commit lock
 *   held. The snapshot's read functions and gitkv_store_read_blob() never
 *   take the commit lock and may be called under inodes.lock or buf->lock.
 *   The notifier's queue lock (notify.h) and the replay lock (replay.h:
 *   its queue and view) are leaves, taken under any of these. Replayed
 *   requests take only inodes.lock (then the replay lock): the replay
 *   thread waits for them, so they must never wait for a commit.
 *   fuse_lowlevel_notify_* is called only by the notifier thread, holding
 *   no lock; the write concern's waits hold none either.
 */
#ifndef GITKVFS_FS_H
#define GITKVFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include <gitkv/store.h>
#include <gitkv_sync/engine.h>
#include <gitkv_sync/reaper.h>

#include "control.h"
#include "inode.h"
#include "options.h"

struct fs_ignore;
struct fs_notifier;
struct fs_replay;

struct gitkvfs {
	/* immutable once fs_new() returns */
	gitkv_store *store;
	gitkv_snapshot *snap; /* the store's (borrowed) */
	struct fs_ignore *ignore;
	double entry_timeout;
	double attr_timeout;
	size_t max_value_size; /* the store's */
	size_t max_temp_size;  /* in-memory files */
	bool readonly;
	uid_t uid;    /* owner shown for every file: -o uid, or the daemon's */
	gid_t gid;    /* -o gid, or the daemon's */
	mode_t umask; /* -o umask: bits cleared from every mode shown */
	time_t started; /* mtime of the virtual nodes */
	struct fs_notifier *notifier;
	struct fs_replay *replay; /* NULL: external changes are only invalidated */
	bool sync_mode;		  /* write concern: wait for `quorum` remotes */
	int quorum;
	int sync_timeout_s;

	/* set by fs_start() before the threads and the session loop exist */
	struct fuse_session *se;
	int mnt_id;			  /* the mount's id in /proc/PID/fdinfo, or 0 */
	sync_engine *engine;		  /* NULL without remotes */
	sync_reaper *reaper;		  /* NULL on a read-only mount; set by main */
	struct fs_control_source control; /* what /.gitkv reports on */

	struct fs_stats {
		uint64_t reads, read_bytes;   /* read requests that reached the daemon */
		uint64_t writes, write_bytes; /* write requests */
		uint64_t invalidations;	      /* kernel-cache invalidations sent */
	} stats;			      /* atomics (__atomic builtins), any thread */

	pthread_rwlock_t ns_lock; /* see "Threads and locks" above */
	struct fs_inodes inodes;  /* guarded by inodes.lock */
};

/* The operations, to pass to fuse_session_new() with the context as userdata. */
extern const struct fuse_lowlevel_ops fs_ops;

/*
 * Build the context over an open store and subscribe it to the store's
 * change stream. Returns 0, or GITKV_ERROR with the message recorded.
 */
int fs_new(struct gitkvfs **out, gitkv_store *store, const struct gitkvfs_options *opts);

/*
 * Start the notifier and replay threads for session `se`, mounted at
 * `mountpoint`, syncing through `engine` (NULL: no remotes; borrowed, it
 * must outlive the session loop). Call it after the daemon has detached (main.c) and before
 * the session loop. Returns 0 or GITKV_ERROR.
 */
int fs_start(struct gitkvfs *fs, struct fuse_session *se, const char *mountpoint,
	     sync_engine *engine);

/*
 * Stop the notifier and replay threads once the session loop has ended. A
 * replay step stuck on the ended session (nobody answers its request any
 * more) is left to end at unmount, which fails it: call fs_join() after
 * unmounting and before freeing the store.
 */
void fs_stop(struct gitkvfs *fs);

/* After unmount: wait for a replay step fs_stop() had to leave behind. */
void fs_join(struct gitkvfs *fs);

/*
 * Commit the deletes still pending (keys renamed to a temporary name that
 * were never re-created), one commit each. Returns how many failed.
 */
int fs_commit_pending(struct gitkvfs *fs);

/* Free the context. Call it after gitkv_store_free(). `fs` may be NULL. */
void fs_free(struct gitkvfs *fs);

/*
 * The notifier's handler: invalidate the kernel's caches for `paths`
 * changed outside the mount. Exposed for tests; runs without any lock held.
 */
void fs_invalidate_paths(void *fs, char *const *paths, size_t count);

#endif
