/*
 * snapshot_internal.h - what the store sees of the snapshot.
 *
 * The snapshot is a hash table of nodes keyed by full path, each node
 * linked to its parent and its children, so both "what is at this path"
 * and "what is in this prefix" are cheap. Only the store's committer (the
 * thread holding the store's commit lock) changes it, through
 * gitkv_snapshot__apply(), which takes the write lock for the few
 * microseconds the pointer surgery needs. The committer may read nodes
 * without the read lock (nobody else writes); every other thread goes
 * through the public functions, which take the read lock.
 */
#ifndef GITKV_SNAPSHOT_INTERNAL_H
#define GITKV_SNAPSHOT_INTERNAL_H

#include <pthread.h>

#include "gitkv/snapshot.h"

struct snap_node {
	char *path;		   /* full path; "" for the root */
	const char *name;	   /* last component, points into path */
	gitkv_entry e;		   /* e.size may be GITKV_SIZE_UNKNOWN for values */
	struct snap_node *parent;
	struct snap_node *child;   /* first child (unordered) */
	struct snap_node *next;	   /* next sibling */
	struct snap_node *prev;	   /* previous sibling */
	size_t nchildren;
	struct snap_node *hnext;   /* hash chain */
	uint64_t hash;
};

/* Resolves the size of a blob lazily (called without any snapshot lock). */
typedef int (*snap_size_fn)(void *payload, const gitkv_oid *oid, uint64_t *size_out);

/* One step of a published change: see gitkv_snapshot__apply(). */
struct snap_change {
	char *path;
	gitkv_entry old;
	gitkv_entry new;
	bool emit;		   /* reported in the change stream */
};

gitkv_snapshot *gitkv_snapshot__new(snap_size_fn size_fn, void *payload);
void gitkv_snapshot__free(gitkv_snapshot *snap);

/* Committer-only, no lock needed: find the node at `path`, or NULL. */
struct snap_node *gitkv_snapshot__find(gitkv_snapshot *snap, const char *path);
struct snap_node *gitkv_snapshot__root(gitkv_snapshot *snap);

/*
 * Publish: apply `changes` in order under the write lock and move the head.
 * Each step either inserts a path (old NONE; its parent exists), removes it
 * (new NONE; its children were removed by earlier steps or go with it), or
 * updates its entry. Returns 0 or GITKV_ERROR (out of memory).
 */
int gitkv_snapshot__apply(gitkv_snapshot *snap, struct snap_change *changes, size_t count,
			  const gitkv_oid *new_head);

/* Set every entry's mtime to `mtime` where it is still 0. */
void gitkv_snapshot__fill_mtimes(gitkv_snapshot *snap, int64_t mtime);

/* Count of nodes whose mtime is 0 (committer-only). */
size_t gitkv_snapshot__unresolved(gitkv_snapshot *snap);

/* Number of paths (all nodes, root excluded). */
size_t gitkv_snapshot__nodes(gitkv_snapshot *snap);

#endif
