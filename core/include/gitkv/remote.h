/*
 * gitkv/remote.h - fetching from and pushing to other stores.
 *
 * A remote is an ordinary git URL: a path or file://, git://, ssh:// or
 * https://. Fetching copies the remote's branch into the local object
 * database and records it as refs/remotes/NAME/<branch>; bringing it into
 * the branch is gitkv_store_integrate() (gitkv/merge.h). Pushing offers the
 * local branch as a fast-forward; a remote that has moved on rejects it
 * (GITKV_EMODIFIED) and the caller fetches, merges and tries again.
 *
 * For path and file:// remotes the push is done by gitkv itself: objects
 * are packed into the remote's object database and the remote's branch is
 * moved with a compare-and-swap on its ref, so a daemon committing to that
 * store at the same moment never loses its commit.
 *
 * Threads: each call opens its own repository handle and takes no store
 * lock, so the network never blocks commits. Calls for the same remote must
 * not overlap (the sync thread owns the remotes).
 */
#ifndef GITKV_REMOTE_H
#define GITKV_REMOTE_H

#include <gitkv/store.h>

typedef struct gitkv_remote_options {
	unsigned int version;
	const char *credentials_file;	/* http(s): "user:password" (or a token) on the first
					   line of a file only its owner may read; read on
					   every attempt, never logged */
	const char *ssh_key;		/* ssh: private key file; NULL: the agent, then ~/.ssh/id_* */
	int timeout_s;			/* connect/transfer bound for the ssh and git transports */
} gitkv_remote_options;

#define GITKV_REMOTE_OPTIONS_VERSION 1
#define GITKV_REMOTE_OPTIONS_INIT { .version = GITKV_REMOTE_OPTIONS_VERSION }

/*
 * Fetch the store's branch from `url` and record it as
 * refs/remotes/NAME/<branch>. `head_out` receives the remote's commit (zero
 * when the remote branch does not exist yet). Returns 0 or an error code
 * (GITKV_ERROR for an unreachable remote; the message says why).
 */
int gitkv_remote_fetch(gitkv_store *store, const char *name, const char *url,
		       const gitkv_remote_options *opts, gitkv_oid *head_out);

/*
 * Push `commit` to the remote's branch as a fast-forward. Returns 0,
 * GITKV_EMODIFIED when the remote has commits we do not have (fetch and
 * merge first), or an error code.
 */
int gitkv_remote_push(gitkv_store *store, const char *name, const char *url,
		      const gitkv_oid *commit, const gitkv_remote_options *opts);

/*
 * Record remote NAME -> URL in the repository's git config
 * (remote.NAME.url), so that `gitkv sync` and plain git know it too. The
 * daemon records the remotes it is given. URLs must not carry credentials
 * (they come from a credentials file). Returns 0 or an error code.
 */
int gitkv_remote_save(gitkv_store *store, const char *name, const char *url);

/*
 * The remotes recorded in the repository's config, as parallel arrays of
 * newly allocated strings (free each and the arrays with free()).
 */
int gitkv_remote_list(gitkv_store *store, char ***names_out, char ***urls_out, size_t *count_out);

/*
 * Write `url` into `out` (size bytes) with any password or token replaced
 * by "***", for logs and status.
 */
void gitkv_remote_redact(char *out, size_t size, const char *url);

#endif
