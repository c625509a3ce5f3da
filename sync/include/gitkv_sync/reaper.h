/*
 * gitkv_sync/reaper.h - the TTL reaper: deletes values past their expiry.
 *
 * One thread that sleeps until the store's next expiry
 * (gitkv_store_next_expiry(), gitkv/meta.h) and then calls
 * gitkv_store_expire(), which deletes every value due in one commit
 * ("expire k1, k2") reported with origin GITKV_ORIGIN_INDIRECT, so the mount
 * replays it and watchers see IN_DELETE. It never scans the store: it is
 * woken by the change stream when metadata changes (an earlier expiry may
 * have appeared) and otherwise sleeps until the next expiry. Readers do not
 * wait for it: a value past its expiry already reads as absent.
 *
 * A failed expire (disk full, the branch locked) is retried after a
 * back-off of one second doubling up to a minute; the values stay absent
 * for readers meanwhile.
 *
 * Threads: start and stop belong to the thread that owns the store's
 * lifecycle, after the store is open and before it is freed. The reaper
 * thread starts with the process signals blocked. Its store subscriber only
 * signals a condition variable.
 */
#ifndef GITKV_SYNC_REAPER_H
#define GITKV_SYNC_REAPER_H

#include <gitkv/store.h>
#include <stdint.h>

typedef struct sync_reaper sync_reaper;

/* Start reaping `store` (borrowed). Returns 0 and `*out`, or GITKV_ERROR. */
int sync_reaper_start(sync_reaper **out, gitkv_store *store);

/* Values the reaper has deleted so far (any thread). */
uint64_t sync_reaper_expired(const sync_reaper *r);

/* Stop the thread, wait for it and free the reaper. `r` may be NULL. */
void sync_reaper_stop(sync_reaper *r);

#endif
