/*
 * watch.h - `gitkv watch`: a line for every change to a key, as it happens.
 *
 * Threads: cli_watch() runs on the main thread and starts at most the ref
 * watcher's thread; it installs handlers for SIGINT and SIGTERM.
 */
#ifndef GITKV_CLI_WATCH_H
#define GITKV_CLI_WATCH_H

#include <gitkv/store.h>

/*
 * Write "CREATED key", "CHANGED key" or "DELETED key" to standard output,
 * one line each and flushed, for every value at or below `prefix` ("" for
 * the whole store) that appears, changes or goes, until SIGINT or SIGTERM.
 * `store` is borrowed (opened for reading is enough). Says on standard error
 * how it watches: through the store's mount when there is one here, else on
 * the branch. Returns 0 once stopped by a signal, or GITKV_ERROR (the
 * message says why).
 */
int cli_watch(gitkv_store *store, const char *prefix);

#endif
