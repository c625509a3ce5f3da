/*
 * gitkv_sync/watcher.h - the ref watcher: notices commits made by others.
 *
 * The daemon's store handle sees its own commits as they happen, but not a
 * commit made by another process on the same bare repository: the gitkv CLI,
 * a `git push` into the store, another daemon. The watcher is one thread that
 * watches the repository's HEAD, packed-refs and refs/heads/ with inotify and
 * calls gitkv_store_refresh() shortly after any of them changes (events are
 * debounced for about 20 ms, so a burst costs one refresh), and every two
 * seconds regardless, in case an event was missed (inotify queue overflow, a
 * network filesystem, a branch below refs/heads/ in a subdirectory). A
 * refresh that finds HEAD moved updates the snapshot and feeds the change to
 * the store's subscribers (origin GITKV_ORIGIN_EXTERNAL), which is how fs/
 * learns about it. The watcher itself never looks at what changed.
 *
 * Threads: start and stop are called by the thread that owns the store's
 * lifecycle (the daemon's main thread), after the store is open and before it
 * is freed. The watcher thread starts with SIGTERM, SIGINT, SIGHUP, SIGQUIT
 * and SIGUSR1 blocked, so those signals are always delivered elsewhere. It
 * calls only gitkv_store_refresh(), which the store allows from any thread;
 * store subscribers must therefore never wait for the watcher.
 */
#ifndef GITKV_SYNC_WATCHER_H
#define GITKV_SYNC_WATCHER_H

#include <gitkv/store.h>

typedef struct sync_watcher sync_watcher;

/*
 * Start watching `store` (borrowed: it must outlive the watcher). Returns 0
 * and the new watcher in `*out`, or GITKV_ERROR (inotify or the thread could
 * not be set up; the message is in gitkv_error_last()) and `*out` untouched.
 * A missing refs/heads/ is not an error: it is watched once it appears, and
 * the periodic refresh covers the meantime.
 */
int sync_watcher_start(sync_watcher **out, gitkv_store *store);

/*
 * Stop the thread, wait for it (a refresh in progress completes first) and
 * free the watcher. `w` may be NULL. Never call it from a store subscriber.
 */
void sync_watcher_stop(sync_watcher *w);

#endif
