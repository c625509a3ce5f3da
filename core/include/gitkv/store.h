/*
 * gitkv/store.h - the git-backed key store.
 *
 * A store is a bare git repository. Its branch (HEAD's, "main" for new
 * stores) holds the keys as a tree: a key is a path, a value is a blob,
 * a prefix is a tree (an empty prefix is an empty tree). Reads come from
 * the store's snapshot of HEAD (gitkv/snapshot.h). Every write is one
 * operation (gitkv_op) that becomes a commit whose parent is the HEAD it
 * was built on; the branch moves with a compare-and-swap on the ref, so the
 * daemon, the CLI and a plain `git push` into the repository can all commit
 * and none loses another's change. A lost race refreshes the snapshot,
 * re-checks the operation against the new HEAD and retries.
 *
 * Concurrent operations on one store handle are folded into one commit
 * (group commit); each caller still returns only once its own change is on
 * the branch, and gets its own result (an operation that fails its checks
 * fails alone).
 *
 * Every movement of HEAD seen by the store - its own commits and movements
 * made by others, found by gitkv_store_refresh() - is reported to the
 * subscribers as one gitkv_change_batch: the change stream.
 *
 * Threads: a store handle may be used from any number of threads at once.
 * Writes serialise on the store's commit lock (held while one batch is
 * built, written and published); reads go to the snapshot and the object
 * database and never take the commit lock. Subscribers are called on the
 * thread that published the change, with the commit lock held and no
 * snapshot lock held: they must return quickly and must not call the
 * store's write functions or gitkv_store_refresh() (queue the work).
 */
#ifndef GITKV_STORE_H
#define GITKV_STORE_H

#include <gitkv/error.h>
#include <gitkv/snapshot.h>
#include <gitkv/types.h>
#include <sys/types.h>

typedef struct gitkv_store gitkv_store;

#define GITKV_DEFAULT_MAX_VALUE_SIZE (1024 * 1024)
#define GITKV_DEFAULT_BRANCH "main"

typedef struct gitkv_store_options {
	unsigned int version;
	const char *node;	/* node name; NULL: the host name */
	const char *committer;	/* committer name; NULL: "gitkv" (daemon: "gitkvfs") */
	size_t max_value_size;	/* 0: GITKV_DEFAULT_MAX_VALUE_SIZE */
	bool fsync;		/* make every acknowledged commit durable */
	bool create;		/* create the bare repository if it is missing */
	bool mtimes;		/* resolve each key's last-change time from history */
	bool readonly;		/* refuse every write with GITKV_EREADONLY */
} gitkv_store_options;

#define GITKV_STORE_OPTIONS_VERSION 1
#define GITKV_STORE_OPTIONS_INIT { .version = GITKV_STORE_OPTIONS_VERSION }

/*
 * Create a new, empty bare store at `path` whose HEAD names the unborn
 * branch "main". Returns 0, GITKV_EEXISTS if `path` holds a repository
 * already, or GITKV_ERROR.
 */
int gitkv_store_init(const char *path);

/*
 * Open the bare store at `path` and build its snapshot. `opts` may be NULL
 * for the defaults. Returns 0 and a store in `*out` (free it with
 * gitkv_store_free()), GITKV_ENOTFOUND if `path` is not a git repository
 * (and opts->create is false), GITKV_EINVALID if it is not bare, or
 * GITKV_ERROR.
 */
int gitkv_store_open(gitkv_store **out, const char *path, const gitkv_store_options *opts);

/* Close the store. Waits for nothing: call it when no thread uses it. */
void gitkv_store_free(gitkv_store *store);

/* The repository's directory (borrowed, valid until gitkv_store_free). */
const char *gitkv_store_path(const gitkv_store *store);

/* The node name in use (borrowed, valid until gitkv_store_free). */
const char *gitkv_store_node(const gitkv_store *store);

/* The maximum value size in bytes. */
size_t gitkv_store_max_value_size(const gitkv_store *store);

/* The snapshot of HEAD (borrowed; lives as long as the store). */
gitkv_snapshot *gitkv_store_snapshot(gitkv_store *store);

/* ---- writing --------------------------------------------------------- */

/* Who asked for a change: recorded as author and in commit trailers. */
typedef struct gitkv_writer {
	uid_t uid;
	pid_t pid;
	const char *comm;	/* command name, or NULL */
	const char *name;	/* author name; NULL: looked up from uid */
} gitkv_writer;

typedef enum gitkv_op_type {
	GITKV_OP_SET,	 /* write `value` at `key` (creates the parents) */
	GITKV_OP_DELETE, /* remove the value at `key` (not a prefix) */
	GITKV_OP_MKDIR,	 /* create the empty prefix `key` (creates the parents) */
	GITKV_OP_RMDIR,	 /* remove the empty prefix `key` */
	GITKV_OP_RENAME, /* move `key` (value or whole prefix) to `to` */
	GITKV_OP_CHMOD,	 /* set the exec bit of the value at `key` (vtype) */
	GITKV_OP_TTL,	 /* set the TTL of the value or prefix at `key` (`ttl`, 0
			    removes it; see gitkv/meta.h) */
	GITKV_OP_EXPIRE, /* delete those of `keys` whose expiry is at or before
			    `now` (see gitkv_store_expire()) */
} gitkv_op_type;

enum gitkv_op_flags {
	GITKV_OP_EXCL = 1 << 0,	     /* SET: fail with EEXISTS if `key` exists; MKDIR: also
					when it is a prefix already (without EXCL that is a
					success that changes nothing) */
	GITKV_OP_NOREPLACE = 1 << 1, /* RENAME: fail with EEXISTS if `to` exists */
	GITKV_OP_IF_MATCH = 1 << 2,  /* SET, DELETE: fail with EMODIFIED unless the
					current blob id is `expect` */
	GITKV_OP_KEEP_TYPE = 1 << 3, /* SET: keep the exec bit of an existing value */
	GITKV_OP_INTERNAL = 1 << 4,  /* allow keys under the reserved .gitkv/ */
	GITKV_OP_INDIRECT = 1 << 5,  /* the change did not come through the caller's
					own view (an expiry, a request from the
					network): it is committed alone and reported
					with origin GITKV_ORIGIN_INDIRECT */
};

typedef struct gitkv_op {
	gitkv_op_type type;
	const char *key;
	const char *to;		/* RENAME destination */
	const void *value;	/* SET value bytes (a LINK's target) */
	size_t len;		/* SET value length */
	gitkv_type vtype;	/* SET: FILE (default), EXEC or LINK; CHMOD: FILE or EXEC */
	unsigned int flags;	/* gitkv_op_flags */
	gitkv_oid expect;	/* IF_MATCH: the expected blob id */
	int64_t ttl;		/* SET: > 0 also sets the value's TTL; TTL: the TTL */
	const char *const *keys; /* EXPIRE: the candidates */
	size_t nkeys;
	int64_t now;		/* EXPIRE: expired means expiry <= now */
} gitkv_op;

/* What a successful operation did. */
typedef struct gitkv_result {
	bool committed;		/* false when the operation changed nothing */
	gitkv_oid commit;	/* the commit holding the change (HEAD if unchanged) */
	size_t count;		/* EXPIRE: how many values it deleted */
} gitkv_result;

/*
 * Apply one operation as a commit and move the branch. Returns once the
 * change is on the branch (and durable if opts.fsync), or with an error and
 * nothing changed:
 *   GITKV_EINVALID / GITKV_ENAMETOOLONG  bad key (reserved, ".git", ...)
 *   GITKV_ETOOBIG     value larger than max_value_size
 *   GITKV_ENOTFOUND   DELETE/RMDIR/RENAME/CHMOD of a missing key
 *   GITKV_EPERM       CHMOD of a symlink
 *   GITKV_EEXISTS     EXCL or NOREPLACE and the target exists
 *   GITKV_EMODIFIED   IF_MATCH and the current blob differs
 *   GITKV_ENOTDIR     a parent of the key (or of RENAME's `to`) is a value;
 *                     RMDIR of a value; RENAME of a prefix over a value
 *   GITKV_EINVALID    also: RENAME of a prefix into itself
 *   GITKV_EISDIR      SET/DELETE of a prefix; RENAME of a value over a prefix
 *   GITKV_ENOTEMPTY   RMDIR, or RENAME over, a prefix that holds keys
 *   GITKV_EREADONLY   the store was opened read-only
 *   GITKV_ENOSPC / GITKV_ERROR  writing objects or the ref failed
 * Writing the bytes the key already holds makes no commit (result->committed
 * is false). `writer` may be NULL (the calling process). `result` may be NULL.
 */
int gitkv_store_apply(gitkv_store *store, const gitkv_op *op, const gitkv_writer *writer,
		      gitkv_result *result);

/* Shorthands for gitkv_store_apply(). */
int gitkv_store_set(gitkv_store *store, const char *key, const void *value, size_t len,
		    const gitkv_writer *writer, gitkv_result *result);
int gitkv_store_delete(gitkv_store *store, const char *key, const gitkv_writer *writer,
		       gitkv_result *result);
int gitkv_store_rename(gitkv_store *store, const char *from, const char *to,
		       const gitkv_writer *writer, gitkv_result *result);

/*
 * Re-read the branch. If it moved (a commit by another process), apply the
 * difference to the snapshot and report it to the subscribers with origin
 * GITKV_ORIGIN_EXTERNAL. Returns 0 or an error code.
 */
int gitkv_store_refresh(gitkv_store *store);

/* ---- reading --------------------------------------------------------- */

/*
 * Read the blob `oid` into a new buffer (free() it). Returns 0,
 * GITKV_ENOTFOUND or GITKV_ERROR. The buffer is NUL-terminated past
 * `*len_out` for convenience.
 */
int gitkv_store_read_blob(gitkv_store *store, const gitkv_oid *oid, char **buf_out,
			  size_t *len_out);

/*
 * Read the value at `key` in HEAD (a value past its expiry is GITKV_ENOTFOUND,
 * gitkv/meta.h). Returns 0, GITKV_ENOTFOUND, GITKV_EISDIR,
 * GITKV_EINVALID. `entry_out` may be NULL.
 */
int gitkv_store_get(gitkv_store *store, const char *key, char **buf_out, size_t *len_out,
		    gitkv_entry *entry_out);

/*
 * Look `key` up in the tree of commit `rev` (40 hex digits, an abbreviated
 * id, a tag, "HEAD~N", anything git's revision syntax takes), without
 * touching the snapshot. Fills `entry_out` (mtime is the commit's time) and,
 * if `commit_out` is not NULL, the commit id. Returns 0, GITKV_ENOTFOUND
 * (no such revision, or no such key in it) or GITKV_EINVALID. Takes no
 * store lock (it opens its own repository handle).
 */
int gitkv_store_lookup_at(gitkv_store *store, const char *rev, const char *key,
			  gitkv_entry *entry_out, gitkv_oid *commit_out);

/* One commit, as seen by gitkv_store_history(). Borrowed for the callback. */
typedef struct gitkv_commit_info {
	gitkv_oid id;
	int64_t time;		/* committer time, UTC seconds */
	int tz_offset;		/* committer time zone, minutes east of UTC */
	const char *author_name;
	const char *author_email;
	const char *summary;	/* first line of the message */
	const char *message;	/* whole message */
} gitkv_commit_info;

/* Return non-zero to stop the walk (that value is then returned). */
typedef int (*gitkv_history_fn)(const gitkv_commit_info *commit, void *payload);

/*
 * Call `fn` for each commit, newest first, that changed `key` (or anything
 * below it, for a prefix) compared with its first parent; at most `limit`
 * commits (0: no limit). Returns 0, GITKV_EINVALID, or what `fn` returned.
 */
int gitkv_store_history(gitkv_store *store, const char *key, size_t limit, gitkv_history_fn fn,
			void *payload);

/*
 * gitkv_store_history() that examines at most `max_commits` commits of the
 * branch's first-parent history (0: no bound), so that the cost of a walk
 * for a key that rarely changes is bounded too. Same returns.
 */
int gitkv_store_history_bounded(gitkv_store *store, const char *key, size_t limit,
				size_t max_commits, gitkv_history_fn fn, void *payload);

/* One child of a prefix at a revision, as seen by gitkv_store_list_at(). */
typedef int (*gitkv_list_fn)(const char *name, const gitkv_entry *entry, void *payload);

/*
 * Call `fn` for each child of prefix `dir` ("" for the root) in the tree of
 * commit `rev` (the revision syntax of gitkv_store_lookup_at()), in the
 * tree's order, without touching the snapshot. Entries are filled as by
 * gitkv_store_lookup_at() (size resolved, mtime the commit's time); the
 * reserved .gitkv is listed like any name, as gitkv_snapshot_list() does.
 * `name` and `entry` are borrowed for the call; a non-zero return stops the
 * listing and is returned. Returns 0, GITKV_ENOTFOUND (no such revision or
 * prefix), GITKV_ENOTDIR (`dir` is a value), GITKV_EINVALID or GITKV_ERROR.
 * Takes no store lock (it opens its own repository handle).
 */
int gitkv_store_list_at(gitkv_store *store, const char *rev, const char *dir, gitkv_list_fn fn,
			void *payload);

/* ---- the change stream ----------------------------------------------- */

typedef enum gitkv_origin {
	GITKV_ORIGIN_LOCAL = 0,	 /* committed through this store handle */
	GITKV_ORIGIN_EXTERNAL,	 /* found by gitkv_store_refresh() */
	GITKV_ORIGIN_INDIRECT,	 /* committed through this store handle with
				    GITKV_OP_INDIRECT: no view has seen it yet */
} gitkv_origin;

/*
 * One changed path. Values and prefixes that appear or disappear are listed;
 * a prefix whose contents changed is not (its changed keys are). A created
 * prefix comes before the paths in it; a deleted prefix after them.
 */
typedef struct gitkv_change {
	const char *path;
	gitkv_entry old;	/* type GITKV_TYPE_NONE if the path did not exist */
	gitkv_entry new;	/* type GITKV_TYPE_NONE if the path was removed */
} gitkv_change;

typedef struct gitkv_change_batch {
	gitkv_origin origin;
	gitkv_oid old_head;
	gitkv_oid new_head;
	const gitkv_change *changes;
	size_t count;
} gitkv_change_batch;

typedef void (*gitkv_change_fn)(const gitkv_change_batch *batch, void *payload);

/*
 * Subscribe `fn` to the change stream (at most 8 subscribers). Called after
 * the new HEAD is published in the snapshot; the batch is borrowed for the
 * call. See "Threads" above. Returns 0 or GITKV_ERROR.
 */
int gitkv_store_subscribe(gitkv_store *store, gitkv_change_fn fn, void *payload);

/*
 * Remove the subscription made with the same `fn` and `payload`. When it
 * returns, `fn` is not running and will not be called again for it.
 */
void gitkv_store_unsubscribe(gitkv_store *store, gitkv_change_fn fn, void *payload);

/* ---- statistics (for metrics) ------------------------------------------ */

/* Upper bounds, in seconds, of the commit latency histogram's buckets. */
#define GITKV_LATENCY_BOUNDS                                                                       	{ 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0 }
#define GITKV_LATENCY_BUCKETS 13

typedef struct gitkv_store_stats {
	uint64_t commits;	/* commits made through this handle */
	uint64_t ops;		/* operations that changed something */
	uint64_t failed_ops;	/* operations that failed */
	uint64_t bytes_written; /* value bytes of the SET operations committed */
	/* per operation, from gitkv_store_apply() to its commit on the branch */
	uint64_t latency_count;
	uint64_t latency_sum_ns;
	uint64_t latency_le[GITKV_LATENCY_BUCKETS]; /* cumulative: <= each bound */
} gitkv_store_stats;

/* A consistent-enough copy of the counters (each read atomically). Any thread. */
void gitkv_store_stats_get(gitkv_store *store, gitkv_store_stats *out);

#endif
