/*
 * notify.h - the notifier: hands changes made outside the mount to a thread
 * that tells the kernel what to forget.
 *
 * The store reports every movement of HEAD to its subscribers on the thread
 * that published it, with the store's commit lock held. A commit that came
 * from outside the mount (the CLI, a `git push` into the store, found by the
 * ref watcher; origin GITKV_ORIGIN_EXTERNAL) changes keys behind the
 * kernel's back, so the kernel's cached entries, attributes and pages for
 * them must be invalidated. libfuse forbids notifying from a request handler
 * or under a lock a request may need, and the subscriber may not block, so
 * fs_notifier_change() only copies the changed paths into a queue and wakes
 * the notifier thread; the thread takes the queue and calls the handler
 * (fs.c) with no lock held. Local batches are skipped: the kernel saw those
 * operations itself. When external changes are replayed (replay.h), the
 * notifier gets only the paths a replay could not perform, and the
 * daemon's own invalidations (fs_notifier_push()).
 *
 * Threads: fs_notifier_change() runs on whichever thread publishes a change
 * (a FUSE worker, the watcher thread); the handler runs on the notifier
 * thread. `lock` guards the queue and the flags; it is a leaf lock, held
 * only to move paths in or out. start/stop are called by the main thread.
 */
#ifndef GITKVFS_NOTIFY_H
#define GITKVFS_NOTIFY_H

#include <stddef.h>

#include <gitkv/store.h>

struct fs_notifier;

/* Called on the notifier thread, no lock held, with paths it may not keep. */
typedef void (*fs_notify_fn)(void *payload, char *const *paths, size_t count);

/* A stopped notifier calling `fn`. Returns 0 or GITKV_ERROR (no memory). */
int fs_notifier_new(struct fs_notifier **out, fs_notify_fn fn, void *payload);

/* Start the thread (with the termination signals blocked). 0 or GITKV_ERROR. */
int fs_notifier_start(struct fs_notifier *n);

/*
 * Stop the thread once the queue is drained, and wait for it. Later
 * changes are dropped. Safe to call on a notifier never started.
 */
void fs_notifier_stop(struct fs_notifier *n);

/* Stop, then free. `n` may be NULL. */
void fs_notifier_free(struct fs_notifier *n);

/*
 * The store subscriber (gitkv_change_fn; payload: the notifier). Queues
 * the paths of an external batch; returns at once.
 */
void fs_notifier_change(const gitkv_change_batch *batch, void *payload);

/* Queue one path by hand (tests, and changes the daemon makes itself). */
void fs_notifier_push(struct fs_notifier *n, const char *path);

#endif
