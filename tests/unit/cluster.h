/*
 * cluster.h - several stores that sync with each other, for the merge and
 * sync tests.
 *
 * A cluster is one temporary directory (removed with everything in it by
 * cluster_teardown) holding any number of nodes - each a bare store
 * "NAME.git" opened with node name NAME - and, if asked for, a hub: a bare
 * store nobody opens, the shared repository of a star topology.
 *
 * Every node records its change stream, so a test can ask what the
 * subscribers were told. forge() writes a commit straight into a node's
 * repository with libgit2, with the committer time and node trailer the
 * test chooses: the merge rule depends on both, and commits made through
 * the store carry time(NULL).
 *
 * Threads: the helpers assert with cmocka; call them from the test's thread.
 * The recorder itself is filled on whichever thread publishes a change.
 */
#ifndef GITKV_TESTS_CLUSTER_H
#define GITKV_TESTS_CLUSTER_H

#include "sandbox.h"

#include <gitkv/merge.h>
#include <gitkv/remote.h>
#include <pthread.h>
#include <stdbool.h>

#define CLUSTER_MAX_NODES 8

/* The change stream of one store, copied as it arrives. */
struct rec_change {
	char *path;
	gitkv_entry old, new;
};

struct rec_batch {
	gitkv_origin origin;
	gitkv_oid old_head, new_head;
	struct rec_change *changes;
	size_t count;
};

struct recorder {
	pthread_mutex_t lock;
	struct rec_batch *batches; /* under lock */
	size_t n, cap;		   /* under lock */
};

struct node {
	char name[32];
	char path[700];
	gitkv_store *store;
	struct recorder rec;
};

struct cluster {
	char dir[512];
	char hub[700]; /* "" until cluster_hub() */
	struct node nodes[CLUSTER_MAX_NODES];
	size_t n;
};

/* cmocka setup/teardown: *state is a struct cluster with no nodes yet. */
int cluster_setup(void **state);
int cluster_teardown(void **state);

/* Free every node and empty the directory (the hub goes too): a fresh cluster. */
void cluster_reset(struct cluster *c);

/* A new node: init DIR/NAME.git, open it with node name `name`, record its stream. */
struct node *cluster_node(struct cluster *c, const char *name);

/* The hub's path, creating the empty bare store DIR/hub.git on first use. */
const char *cluster_hub(struct cluster *c);

/* A path inside the cluster's directory (static buffer, overwritten by the next call). */
const char *cluster_path(struct cluster *c, const char *name);

/* `git fsck --strict` of the repository at `path`; returns its exit status. */
int cluster_fsck(const char *path);

/* The commit the branch of the repository at `path` names (zero if unborn). */
gitkv_oid repo_head(const char *path);

/* The tree id of `commit` in the repository at `path` (zero for a zero commit). */
gitkv_oid repo_tree_of(const char *path, const gitkv_oid *commit);

/* The node's HEAD as its snapshot shows it (zero if unborn). */
gitkv_oid node_head(struct node *n);

/* The tree id of the node's HEAD (zero if unborn). */
gitkv_oid node_tree(struct node *n);

/* The committer time of `commit` in the node's repository. */
int64_t node_commit_time(struct node *n, const gitkv_oid *commit);

/* The full message of `commit` (malloc'd; free it). */
char *node_commit_message(struct node *n, const gitkv_oid *commit);

/* Parent `i` of `commit` and the number of parents. */
unsigned int node_commit_parents(struct node *n, const gitkv_oid *commit, gitkv_oid *parents,
				 unsigned int max);

/*
 * Commit on top of the node's branch, as node `who` at committer time
 * `when`, the edits given as strings until NULL: "set KEY=VALUE",
 * "del KEY" (a value or a whole prefix), "mkdir KEY" (an empty prefix).
 * Missing parents become prefixes; a value in the way of a parent is
 * replaced. Moves the branch (compare-and-swap) and refreshes the store.
 * Returns the commit id.
 */
gitkv_oid forge(struct node *n, int64_t when, const char *who, ...) __attribute__((sentinel));

/* When non-zero, forge() names it in the message: the same edits, another commit id. */
extern unsigned int forge_salt;

/* Move the node's branch to `commit` (force) and refresh the store. */
void node_reset(struct node *n, const gitkv_oid *commit);

/*
 * Fetch `src_url`'s branch into `dst` as remote `name` and integrate it.
 * Forgets what `dst`'s recorder held before. Returns the first error; a
 * missing remote branch integrates nothing (out zeroed, 0 returned).
 */
int node_pull_url(struct node *dst, const char *name, const char *src_url, gitkv_merge_result *out);

/* Push `n`'s HEAD to `url`; returns what gitkv_remote_push returned. */
int node_push_url(struct node *n, const char *name, const char *url);

/*
 * One round against `url` the way the sync thread does it: fetch,
 * integrate, push, again on a rejected push (a few times). Returns 0 or the
 * last error.
 */
int node_sync_url(struct node *n, const char *name, const char *url);

/* ---- the recorder ------------------------------------------------------ */

void recorder_reset(struct recorder *rec);

/*
 * The last change recorded for `path` in a batch of origin `origin` (copied
 * into *out); false if there is none.
 */
bool recorder_find(struct recorder *rec, gitkv_origin origin, const char *path,
		   struct rec_change *out);

/* Number of batches recorded with `origin`. */
size_t recorder_count(struct recorder *rec, gitkv_origin origin);

/* ---- checks ------------------------------------------------------------ */

/*
 * Assert that the node's snapshot holds exactly the paths of its HEAD tree
 * in git, with the same types and ids.
 */
void node_assert_snapshot_is_head(struct node *n, const char *file, int line);
#define assert_snapshot_is_head(n) node_assert_snapshot_is_head((n), __FILE__, __LINE__)

/*
 * Assert that every value that differs between the trees of `old_head` and
 * `new_head` (added, changed or removed) was reported to the node's
 * subscribers with origin EXTERNAL and its new blob id (or as gone).
 */
void node_assert_stream_reported(struct node *n, const gitkv_oid *old_head,
				 const gitkv_oid *new_head, const char *file, int line);
#define assert_stream_reported(n, o, nw)                                                           \
	node_assert_stream_reported((n), (o), (nw), __FILE__, __LINE__)

#endif
