/*
 * replay.h - the replay thread: changes made outside the mount are performed
 * through the mount, so that the kernel raises inotify events for them.
 *
 * A commit that did not come through the mount (the CLI, a `git push` into
 * the store, a merge by the sync thread) moves HEAD without any VFS event,
 * and the kernel raises no inotify event for FUSE's invalidation notices.
 * So the daemon replays each such change with ordinary system calls on the
 * mount, relative to a descriptor of the mount's root:
 *
 *   value created or changed   open(O_WRONLY|O_CREAT|O_TRUNC), write, close
 *                              (IN_CREATE, IN_MODIFY, IN_CLOSE_WRITE)
 *   exec bit changed           chmod (IN_ATTRIB)
 *   symlink created/changed    unlink, symlink (IN_DELETE, IN_CREATE)
 *   value removed              unlink (IN_DELETE)
 *   prefix created / removed   mkdir / rmdir (IN_CREATE / IN_DELETE)
 *   value <-> prefix           the removal, then the creation
 *
 * The change is already committed: the operations (fs.c) recognise the
 * replay thread's requests by their pid, which is this thread's id
 * (fs_replay_is_own()), and apply them to the kernel's view only - no
 * commit, no store write, no change to open files' buffers. While a batch
 * is replayed, the snapshot already shows its end state, but the kernel
 * must be walked from the start state: a lookup by the replay thread of a
 * path in the batch is answered from the *view* (fs_replay_view()), the
 * path's state before the batch with the steps done so far applied; so the
 * unlink of a removed key finds the key, and the open of a new key finds
 * nothing and creates it (IN_CREATE).
 *
 * A step that fails (a local temporary file keeps a removed directory
 * non-empty, a user's in-memory file shadows the key, the mount is going
 * away) is handed to the fallback, which invalidates the kernel's cache for
 * the path as if replay were off, and is logged at debug level.
 *
 * Threads: fs_replay_push() runs on whichever thread publishes a change
 * (the store's subscriber: it copies the batch and returns at once);
 * fs_replay_is_own() and fs_replay_view() on FUSE worker threads, under
 * the inode table's lock; start, stop and free on the main thread. `lock`
 * guards the queue and the view; it is a leaf lock. The replay thread holds
 * no lock across a system call on the mount: the requests it causes are
 * served by FUSE workers that take the inode table's lock and then this one.
 */
#ifndef GITKVFS_REPLAY_H
#define GITKVFS_REPLAY_H

#include <stdbool.h>
#include <sys/types.h>

#include <gitkv/store.h>

struct fs_replay;

/* Called on the replay thread, no lock held, for a path whose replay failed. */
typedef void (*fs_replay_fallback_fn)(void *payload, const char *path);

/*
 * A stopped replayer that reads values from `store` (borrowed) and hands
 * failed paths to `fallback`. Returns 0 or GITKV_ERROR (no memory).
 */
int fs_replay_new(struct fs_replay **out, gitkv_store *store, fs_replay_fallback_fn fallback,
		  void *payload);

/*
 * Start the thread (with the termination signals blocked) for the mount at
 * `mountpoint`, mounted already. Returns 0 or GITKV_ERROR.
 */
int fs_replay_start(struct fs_replay *r, const char *mountpoint);

/*
 * Queue an external batch (reserved paths are left out). Returns at once;
 * a stopped replayer drops it.
 */
void fs_replay_push(struct fs_replay *r, const gitkv_change_batch *batch);

/* True if `pid` (a request's) is the replay thread's id. */
bool fs_replay_is_own(struct fs_replay *r, pid_t pid);

/*
 * If `path` is part of the batch being replayed, fill `out` with the state
 * the kernel has been shown so far (type GITKV_TYPE_NONE: absent) and
 * return true; otherwise false (the snapshot is the kernel's view).
 */
bool fs_replay_view(struct fs_replay *r, const char *path, gitkv_entry *out);

/*
 * Stop replaying: queued batches are dropped and the thread ends after the
 * step in progress. Waits for it at most `timeout_ms` (negative: without a
 * bound); returns true if it ended. A step blocked on a session that no
 * longer answers ends once the mount is gone: call it again then. The
 * thread never uses the store once it has ended a step after the stop.
 */
bool fs_replay_stop(struct fs_replay *r, int timeout_ms);

/* Stop, wait for the thread without a bound, and free. `r` may be NULL. */
void fs_replay_free(struct fs_replay *r);

/*
 * Batches replayed, steps performed through the mount, and steps that
 * could not be and were invalidated instead (any thread; `r` may be NULL).
 */
void fs_replay_counters(struct fs_replay *r, uint64_t *batches, uint64_t *steps,
			uint64_t *fallbacks);

#endif
