/*
 * gitkv/meta.h - per-key metadata: time to live and expiry.
 *
 * Metadata lives in the store's own tree, so it is committed, synced and
 * merged exactly like the values it describes:
 *
 *	.gitkv/meta/KEY		  the metadata of the value at KEY
 *	.gitkv/meta/PREFIX/.gitkv the metadata of the prefix (directory) PREFIX
 *
 * (".gitkv" is reserved as a key component at every level, so the two never
 * collide.) Each is a small text blob, one "name value" pair per line:
 *
 *	expires 1732400000	UTC seconds after which the value is gone
 *	ttl 60			the time to live that set it, in seconds
 *
 * A value's TTL sets `expires` to now + ttl (rounded up to the next whole
 * second, so a value never lives less than its TTL); rewriting the value
 * keeps its expiry; setting the TTL again renews it; a TTL of 0 removes it.
 * A prefix's TTL is a lease: every value written (or renamed) below it
 * gets `expires` = now + the nearest such prefix's ttl, renewed by each
 * write. A value past its expiry is absent for readers at once
 * (gitkv_store_is_expired()); gitkv_store_expire() deletes every expired
 * value and its metadata in one commit ("expire k1, k2"). Deleting,
 * renaming or expiring a value deletes or moves its metadata in the same
 * commit.
 *
 * Threads: every function here may be called from any thread. The expiry
 * index (which value expires when) is kept by the store from its change
 * stream, under its own lock; it only holds values that have an expiry.
 */
#ifndef GITKV_META_H
#define GITKV_META_H

#include <gitkv/store.h>
#include <stdint.h>

#define GITKV_META_PREFIX ".gitkv/meta"
#define GITKV_TTL_MAX (100LL * 365 * 24 * 3600) /* a hundred years */

typedef struct gitkv_meta {
	int64_t expires; /* UTC seconds; 0: never */
	int64_t ttl;	 /* seconds; 0: none */
} gitkv_meta;

/*
 * Parse a metadata blob. Unknown names are ignored (a newer version may add
 * some); a malformed line is GITKV_EINVALID. Returns 0 or GITKV_EINVALID.
 */
int gitkv_meta_parse(gitkv_meta *out, const char *buf, size_t len);

/* Format `m` into `out` (NUL-terminated); returns the length, 0 if `m` is empty. */
size_t gitkv_meta_format(char *out, size_t size, const gitkv_meta *m);

/*
 * The metadata of the value or prefix at `key` in HEAD (zeroed when it has
 * none). Returns 0, GITKV_ENOTFOUND (no such key, or the value expired) or
 * GITKV_EINVALID.
 */
int gitkv_store_meta(gitkv_store *store, const char *key, gitkv_meta *out);

/*
 * Set the TTL of the value or prefix at `key` (seconds, 0 removes it),
 * as one commit (GITKV_OP_TTL). Same return codes as gitkv_store_apply(),
 * plus GITKV_EINVALID for a TTL below 0 or above GITKV_TTL_MAX.
 */
int gitkv_store_set_ttl(gitkv_store *store, const char *key, int64_t ttl,
			const gitkv_writer *writer, gitkv_result *result);

/* The expiry of the value at `key` (UTC seconds), 0 if it has none. */
int64_t gitkv_store_expiry(gitkv_store *store, const char *key);

/* True if the value at `key` has an expiry and `now` (UTC seconds) is past it. */
bool gitkv_store_is_expired(gitkv_store *store, const char *key, int64_t now);

/* The earliest expiry of any value (UTC seconds), 0 if none has one. */
int64_t gitkv_store_next_expiry(gitkv_store *store);

/*
 * Delete every value whose expiry is at or before `now`, with its
 * metadata, in one commit (message "expire k1, k2, ..."), reported in the
 * change stream with origin GITKV_ORIGIN_INDIRECT. A value renewed in the
 * meantime is left alone. `*count_out` (may be NULL) gets the number of
 * values deleted. Returns 0 or an error of gitkv_store_apply().
 */
int gitkv_store_expire(gitkv_store *store, int64_t now, size_t *count_out, gitkv_result *result);

#endif
