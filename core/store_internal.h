/*
 * store_internal.h - the store's private state, shared by store.c (open,
 * refresh, reads), commit.c (the write path) and history.c.
 *
 * Locks, in the order they may be taken:
 *   qlock        the queue of operations waiting for a commit (brief)
 *   commit_lock  held by the one thread that builds, writes and publishes a
 *                commit or applies a refresh; it owns `repo` and the refdb,
 *                and is the only writer of the snapshot
 *   snapshot     its own rwlock, taken inside gitkv_snapshot__apply()
 * `odb` is thread-safe (libgit2 guarantees it) and is read without a lock.
 */
#ifndef GITKV_STORE_INTERNAL_H
#define GITKV_STORE_INTERNAL_H

#include <git2.h>
#include <pthread.h>

#include "gitkv/store.h"
#include "snapshot_internal.h"

#define GITKV_MAX_SUBSCRIBERS 8

struct txn;
struct meta_ent;

/* The expiry index (meta.c): key -> expiry, for the values that have one. */
struct gitkv_meta_index {
	pthread_mutex_t lock;
	struct meta_ent **buckets;	/* protected by lock */
	size_t nbuckets;		/* protected by lock */
	size_t count;			/* written under lock, read relaxed without */
	int64_t min;			/* protected by lock: earliest expiry, 0 none */
	bool min_stale;			/* protected by lock: min must be recomputed */
	bool ready;			/* set at open */
};

struct gitkv_store {
	char *path;			/* repository directory */
	char *node;			/* node name */
	char *committer;		/* committer name */
	char *branch;			/* full ref name, "refs/heads/main" */
	size_t max_value_size;
	bool readonly;

	git_repository *repo;		/* protected by commit_lock */
	git_odb *odb;			/* thread-safe */
	gitkv_snapshot *snap;

	pthread_mutex_t commit_lock;
	struct {
		gitkv_change_fn fn;
		void *payload;
	} subs[GITKV_MAX_SUBSCRIBERS];	/* protected by commit_lock */
	int nsubs;			/* protected by commit_lock */

	pthread_mutex_t qlock;
	pthread_cond_t qcond;		/* signalled when a batch is done */
	struct txn *qhead;		/* protected by qlock */
	struct txn **qtail;		/* protected by qlock */
	bool leader;			/* protected by qlock: a batch is running */

	pthread_mutex_t name_lock;
	uid_t name_uid;			/* protected by name_lock: last looked-up uid */
	char name_cache[64];		/* protected by name_lock */

	struct gitkv_meta_index meta;	/* its own lock */
	gitkv_store_stats stats;	/* atomics only (__atomic builtins) */
};

/* libgit2 error -> GITKV_E*, message recorded on this thread. */
int gitkv_store__git_error(int gerr, const char *what);

/* Write one object through the store's single write seam. */
int gitkv_store__write_object(gitkv_store *store, gitkv_oid *out, const void *data, size_t len,
			      git_object_t type);

/*
 * With commit_lock held: bring the snapshot up to the branch's current
 * commit, reporting the difference with `origin`. Returns 0 or an error.
 */
int gitkv_store__refresh_locked(gitkv_store *store, gitkv_origin origin);

/*
 * After GIT_ELOCKED on the branch: remove its lock file if it is older than
 * GITKV_STALE_LOCK_S (a process died holding it; a live writer holds the
 * lock for microseconds). Returns true if a stale lock was removed.
 */
#define GITKV_STALE_LOCK_S 2
bool gitkv_store__break_stale_lock(gitkv_store *store);

/* With commit_lock held: the branch's commit id (zero if unborn). */
int gitkv_store__read_branch(gitkv_store *store, gitkv_oid *out);

/* With commit_lock held: apply a change list and report it. */
int gitkv_store__publish(gitkv_store *store, struct snap_change *changes, size_t count,
			 const gitkv_oid *old_head, const gitkv_oid *new_head, gitkv_origin origin);

/* A growable list of snapshot changes. */
struct change_list {
	struct snap_change *v;
	size_t n, cap;
};

int gitkv_store__change_push(struct change_list *l, const char *path, const gitkv_entry *old,
			     const gitkv_entry *new, bool emit);
void gitkv_store__change_list_free(struct change_list *l);

/* Push the removal of `n` and everything below it (children first). */
int gitkv_store__push_remove_subtree(struct change_list *l, struct snap_node *n);

/* Convert between our and libgit2's ids, modes and types. */
static inline const git_oid *gk2git(const gitkv_oid *o)
{
	return (const git_oid *)o;
}
static inline const gitkv_oid *git2gk(const git_oid *o)
{
	return (const gitkv_oid *)o;
}
gitkv_type gitkv_store__type_from_mode(git_filemode_t mode);
const char *gitkv_store__mode_str(gitkv_type type);

/* The expiry index (meta.c). update: with commit_lock, after the snapshot moved. */
int gitkv_store__meta_init(gitkv_store *store);
void gitkv_store__meta_free(gitkv_store *store);
void gitkv_store__meta_update(gitkv_store *store, const struct snap_change *changes,
			      size_t count);

/* The path of the metadata of `key` (a prefix's if `dir`) into `out`. */
int gitkv_meta__path(char *out, size_t size, const char *key, bool dir);

/* Key validation for paths under the reserved tree (gitkv/key.c). */
int gitkv_key__validate_internal(const char *key);

#endif
