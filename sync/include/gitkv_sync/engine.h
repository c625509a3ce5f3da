/*
 * gitkv_sync/engine.h - the sync thread: fetch, merge, push, for every remote.
 *
 * One thread owns the remotes. Every `interval_s` seconds, shortly after a
 * local commit (debounced), and whenever kicked (SIGUSR1, `gitkv sync`), it
 * runs a round: for each remote that is not backing off, fetch its branch,
 * bring it into ours (gitkv_store_integrate: fast-forward or per-key merge),
 * and push ours as a fast-forward; a rejected push fetches, merges and
 * pushes again (a few times). A remote that fails backs off exponentially
 * (interval * 2^failures, capped by max_backoff_s); the mount keeps working
 * offline and the failure shows in the status. The network is never in the
 * write path: commits are local and the sync thread catches up.
 *
 * Threads: start/stop are called by the daemon's main thread. kick() is
 * async-signal-safe (it writes one byte to a pipe) and may be called from a
 * signal handler or any thread, including store subscribers. status() and
 * wait_pushed() may be called from any thread: they read the per-remote
 * state under the engine's lock. The engine thread starts with TERM, INT,
 * HUP, QUIT and USR1 blocked.
 */
#ifndef GITKV_SYNC_ENGINE_H
#define GITKV_SYNC_ENGINE_H

#include <gitkv/remote.h>
#include <gitkv/store.h>

typedef struct sync_engine sync_engine;

typedef struct sync_remote {
	const char *name;	/* short name, [A-Za-z0-9._-]+ */
	const char *url;
} sync_remote;

typedef struct sync_options {
	const sync_remote *remotes;
	size_t nremotes;
	int interval_s;		/* 0: 5 */
	int debounce_ms;	/* delay after a local commit; 0: 50 */
	int max_backoff_s;	/* 0: 300 */
	gitkv_remote_options remote;
} sync_options;

/* What the engine knows about one remote (a copy). */
typedef struct sync_remote_status {
	char name[64];
	char url[512];		/* credentials redacted */
	int64_t last_fetch;	/* UTC seconds of the last attempt, 0: never */
	int last_fetch_error;	/* 0 or a GITKV_E* code */
	int64_t last_push;
	int last_push_error;
	char last_error[256];	/* message of the last failure, "" if none */
	unsigned int failures;	/* consecutive failed rounds */
	int64_t next_attempt;	/* UTC seconds; later than now while backing off */
	gitkv_oid remote_head;	/* the remote's branch as last fetched */
	gitkv_oid pushed;	/* the last commit the remote accepted from us */
	size_t ahead, behind;	/* our branch vs remote_head, after the round */
	double lag_s;		/* seconds since the remote last had all our commits */
} sync_remote_status;

/*
 * Start the sync thread for `store` (borrowed; must outlive the engine).
 * The remotes are copied. With no remotes, no thread is started and the
 * other calls do nothing. Returns 0 or GITKV_ERROR.
 */
int sync_engine_start(sync_engine **out, gitkv_store *store, const sync_options *opts);

/* Ask for a round soon. Async-signal-safe. `e` may be NULL. */
void sync_engine_kick(sync_engine *e);

/*
 * Ask for a round now that also retries remotes still backing off (an
 * operator's "sync now": SIGUSR1). Async-signal-safe. `e` may be NULL.
 */
void sync_engine_force(sync_engine *e);

/*
 * Wait until a round that started after this call has finished, at most
 * `timeout_ms`. Returns 0, or GITKV_ERROR on timeout. Not from the engine
 * thread or a store subscriber.
 */
int sync_engine_round(sync_engine *e, int timeout_ms);

/*
 * Stop: one last bounded round (at most `final_timeout_s` seconds) so
 * acknowledged commits leave this host, then join and free. NULL is fine.
 */
void sync_engine_stop(sync_engine *e, int final_timeout_s);

/*
 * Write concern: wait until at least `quorum` remotes hold `commit` (it or
 * a descendant was accepted by them), kicking a round at once (backoff is
 * ignored). Returns 0, or GITKV_ERROR after `timeout_ms` (the commit stays
 * local and is pushed by later rounds). With no engine or quorum <= 0 it
 * returns 0 at once. Not from the engine thread or a store subscriber.
 */
int sync_engine_wait_pushed(sync_engine *e, const gitkv_oid *commit, int quorum, int timeout_ms);

/*
 * A cluster-wide exclusive create (O_CREAT|O_EXCL in sync mode): creates
 * `key` with `value` only if no node has created it first. It brings the
 * first remote (the arbiter) in, commits the key locally with EXCL, and
 * pushes to the arbiter from the calling thread; the arbiter's ref
 * compare-and-swap decides. A node that loses gets GITKV_EEXISTS and its
 * local branch takes the winner's value (nothing of the loser remains).
 * Returns 0 (created, on the arbiter), GITKV_EEXISTS, or GITKV_ERROR when
 * the arbiter cannot be reached within `timeout_ms` (the local creation is
 * undone). Without remotes it is a plain local EXCL create.
 */
int sync_engine_create_exclusive(sync_engine *e, gitkv_store *store, const char *key,
				 const void *value, size_t len, const gitkv_writer *writer,
				 int timeout_ms, gitkv_result *result);

/* Copy up to `max` remote states into `out`; returns the number of remotes. */
size_t sync_engine_status(sync_engine *e, sync_remote_status *out, size_t max);

/* Total completed rounds and failed remote attempts (for metrics). */
void sync_engine_counters(sync_engine *e, uint64_t *rounds, uint64_t *failures,
			  uint64_t *conflicts);

/* ---- compare-and-swap ------------------------------------------------------ */

/*
 * A compare-and-swap of `key` (`gitkv cas`): set it to the `len` bytes at
 * `value` only if it holds exactly the `expected_len` bytes at `expected`,
 * or, with `expected` NULL, only if it does not exist. Values are compared
 * byte for byte; the commit is then made with GITKV_OP_IF_MATCH on the blob
 * compared (GITKV_OP_EXCL for an absent key), so a writer that slips in
 * between makes the swap fail rather than be overwritten. The value keeps
 * the key's type (exec bit, symlink).
 *
 * With remotes the swap is cluster-wide and the first remote (the arbiter)
 * decides, as for sync_engine_create_exclusive(): the arbiter is brought
 * in, the branch's value compared, the swap committed locally and pushed to
 * the arbiter from the calling thread. A rejected push fetches again: if
 * the arbiter's entry at `key` is still the one the comparison saw, the
 * swap is merged and pushed again; otherwise the swap lost, the local
 * branch takes the arbiter's value and the call returns GITKV_EMODIFIED.
 * The engine thread's rounds do not interleave with it, but another
 * process syncing the same store (a gitkvfs mount with remotes) is not
 * held back: its round may push the local commit merged with a concurrent
 * change before the swap has pushed it itself.
 *
 * `current_out` (may be NULL) receives the key's entry after a swap, or the
 * entry that made it fail (type GITKV_TYPE_NONE: absent); read the value
 * with gitkv_store_read_blob(). Returns 0 (swapped; with remotes: on the
 * arbiter), GITKV_EMODIFIED (the value differs, or changed meanwhile),
 * GITKV_EISDIR (a prefix), the key and value errors of gitkv_store_apply(),
 * or GITKV_ERROR when the arbiter cannot be reached, or keeps moving, for
 * `timeout_ms` (the local commit is undone). Without remotes it is a local
 * compare-and-swap and `timeout_ms` is unused. Not from the engine thread
 * or a store subscriber.
 */
int sync_engine_cas(sync_engine *e, gitkv_store *store, const char *key, const void *expected,
		    size_t expected_len, const void *value, size_t len, const gitkv_writer *writer,
		    int timeout_ms, gitkv_entry *current_out, gitkv_result *result);

#endif
