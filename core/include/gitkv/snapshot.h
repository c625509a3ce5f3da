/*
 * gitkv/snapshot.h - the in-memory view of HEAD.
 *
 * A snapshot maps every path of the HEAD tree (keys, prefixes, and the
 * reserved .gitkv metadata) to a gitkv_entry. It is owned by its store and
 * follows HEAD: each commit or observed ref movement is applied to it as one
 * atomic step, so a reader sees either the old or the new HEAD, never a mix.
 * Lookups are hash lookups, O(1) in the number of keys; no git tree is read
 * on the read path.
 *
 * Threads: every function here may be called from any thread at any time;
 * readers share a read lock, the store's committer takes the write lock only
 * to publish a new HEAD. Results are copied out, so nothing returned here
 * borrows from the snapshot.
 */
#ifndef GITKV_SNAPSHOT_H
#define GITKV_SNAPSHOT_H

#include <gitkv/types.h>

typedef struct gitkv_snapshot gitkv_snapshot;

/* One child of a prefix, as returned by gitkv_snapshot_list(). */
typedef struct gitkv_dirent {
	char *name;	   /* the last component; owned by the array */
	gitkv_entry entry;
} gitkv_dirent;

/*
 * Look `key` up ("" is the root). Fills `out` and returns 0, or returns
 * GITKV_ENOTFOUND (out->type is then GITKV_TYPE_NONE).
 */
int gitkv_snapshot_lookup(gitkv_snapshot *snap, const char *key, gitkv_entry *out);

/*
 * Copy the children of prefix `dir` ("" for the root), sorted by name,
 * into a new array. Returns 0, GITKV_ENOTFOUND or GITKV_ENOTDIR. Free the
 * result with gitkv_dirents_free().
 */
int gitkv_snapshot_list(gitkv_snapshot *snap, const char *dir, gitkv_dirent **out, size_t *count_out);

void gitkv_dirents_free(gitkv_dirent *ents, size_t count);

/*
 * The commit the snapshot shows (zero for an empty, unborn branch) and a
 * generation number that grows by one with every published change.
 */
void gitkv_snapshot_head(gitkv_snapshot *snap, gitkv_oid *head_out, uint64_t *generation_out);

/* Number of values (files and symlinks) in the snapshot, metadata included. */
size_t gitkv_snapshot_count(gitkv_snapshot *snap);

#endif
