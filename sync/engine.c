/*
 * engine.c - the sync thread (see gitkv_sync/engine.h).
 *
 * States of one remote, each round:
 *
 *   idle --(due: interval passed, kicked, or after a local commit)--> fetch
 *   fetch --ok--> integrate --ok--> push --ok--> idle (failures = 0)
 *                                        \--rejected--> fetch (at most 3 times)
 *   any step --error--> idle, failures++, next_attempt = now + backoff
 *
 * A kick or a local commit does not override a remote's backoff; an explicit
 * round (sync_engine_round, SIGUSR1) does, so an operator can retry at once.
 * The engine subscribes to the store's change stream only to be woken: it
 * never looks at what changed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gitkv/merge.h"
#include "gitkv/thread.h"
#include "gitkv_sync/engine.h"

#define PUSH_RETRIES 3

struct remote {
	char *name;
	char *url;
	sync_remote_status st;		/* protected by engine->lock */
	int64_t in_sync_since;		/* protected by engine->lock */
};

struct sync_engine {
	gitkv_store *store;
	sync_options opts;
	char *credentials_file;
	char *ssh_key;
	struct remote *remotes;
	size_t nremotes;
	pthread_t thread;
	int pipe[2];			/* kick pipe: [0] read by the thread */
	volatile sig_atomic_t stopping;
	volatile sig_atomic_t forced;	/* an explicit round: ignore backoff */
	int final_timeout_s;

	pthread_mutex_t net_lock;	/* held across one remote's network steps:
					   the engine thread's and exclusive creates'
					   do not interleave. Taken before `lock`. */
	pthread_mutex_t lock;
	pthread_cond_t cond;		/* broadcast after every round */
	uint64_t started;		/* protected by lock: rounds begun */
	uint64_t rounds;		/* protected by lock: number of the last round
					   finished (rounds finish in order) */
	uint64_t failures;		/* protected by lock */
	uint64_t conflicts;		/* protected by lock */
	uint64_t round_requests;	/* protected by lock */
};

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

void sync_engine_kick(sync_engine *e)
{
	char c = 'k';
	ssize_t n;

	if (!e || e->pipe[1] < 0)
		return;
	n = write(e->pipe[1], &c, 1); /* a full pipe already means "kicked" */
	(void)n;
}

void sync_engine_force(sync_engine *e)
{
	if (!e)
		return;
	e->forced = 1; /* volatile sig_atomic_t */
	sync_engine_kick(e);
}

static void on_change(const gitkv_change_batch *batch, void *payload)
{
	sync_engine *e = payload;

	if (!gitkv_oid_equal(&batch->old_head, &batch->new_head))
		sync_engine_kick(e);
}

static void set_error(sync_engine *e, struct remote *r, int error, bool fetch)
{
	int64_t backoff = e->opts.interval_s;

	pthread_mutex_lock(&e->lock);
	if (fetch)
		r->st.last_fetch_error = error;
	else
		r->st.last_push_error = error;
	snprintf(r->st.last_error, sizeof(r->st.last_error), "%s", gitkv_error_last());
	r->st.failures++;
	for (unsigned int i = 1; i < r->st.failures && backoff < e->opts.max_backoff_s; i++)
		backoff *= 2;
	if (backoff > e->opts.max_backoff_s)
		backoff = e->opts.max_backoff_s;
	r->st.next_attempt = now_s() + backoff;
	e->failures++;
	pthread_mutex_unlock(&e->lock);
}

static void sync_one(sync_engine *e, struct remote *r)
{
	gitkv_oid remote_head, head;
	int error = 0;

	for (int attempt = 0; attempt <= PUSH_RETRIES; attempt++) {
		gitkv_merge_result mr;

		pthread_mutex_lock(&e->lock);
		r->st.last_fetch = now_s();
		pthread_mutex_unlock(&e->lock);
		error = gitkv_remote_fetch(e->store, r->name, r->url, &e->opts.remote, &remote_head);
		if (error) {
			set_error(e, r, error, true);
			return;
		}
		pthread_mutex_lock(&e->lock);
		r->st.last_fetch_error = 0;
		r->st.remote_head = remote_head;
		pthread_mutex_unlock(&e->lock);
		if (!gitkv_oid_is_zero(&remote_head)) {
			error = gitkv_store_integrate(e->store, &remote_head, r->name, &mr);
			if (error == GITKV_EMODIFIED)
				continue; /* a local commit raced the merge: again */
			if (error) {
				set_error(e, r, error, true);
				return;
			}
			pthread_mutex_lock(&e->lock);
			e->conflicts += mr.nconflicts;
			pthread_mutex_unlock(&e->lock);
			gitkv_merge_result_free(&mr);
		}
		gitkv_snapshot_head(gitkv_store_snapshot(e->store), &head, NULL);
		if (gitkv_oid_is_zero(&head))
			error = 0;
		else if (gitkv_oid_equal(&head, &remote_head))
			error = 0;
		else
			error = gitkv_remote_push(e->store, r->name, r->url, &head, &e->opts.remote);
		pthread_mutex_lock(&e->lock);
		r->st.last_push = now_s();
		pthread_mutex_unlock(&e->lock);
		if (error == GITKV_EMODIFIED)
			continue;
		if (error) {
			set_error(e, r, error, false);
			return;
		}
		pthread_mutex_lock(&e->lock);
		r->st.last_push_error = 0;
		r->st.last_error[0] = '\0';
		r->st.failures = 0;
		r->st.next_attempt = 0;
		r->st.pushed = head;
		r->st.remote_head = head;
		r->st.ahead = 0;
		r->st.behind = 0;
		r->in_sync_since = now_s();
		pthread_mutex_unlock(&e->lock);
		return;
	}
	set_error(e, r, error ? error : GITKV_EMODIFIED, false);
}

static void run_round(sync_engine *e, bool force)
{
	uint64_t mine;

	pthread_mutex_lock(&e->lock);
	mine = ++e->started;
	pthread_mutex_unlock(&e->lock);
	for (size_t i = 0; i < e->nremotes && (!e->stopping || force); i++) {
		struct remote *r = &e->remotes[i];
		int64_t next;

		pthread_mutex_lock(&e->lock);
		next = r->st.next_attempt;
		pthread_mutex_unlock(&e->lock);
		if (!force && next > now_s())
			continue;
		pthread_mutex_lock(&e->net_lock);
		sync_one(e, r);
		pthread_mutex_unlock(&e->net_lock);
	}
	pthread_mutex_lock(&e->lock);
	e->rounds = mine;
	pthread_cond_broadcast(&e->cond);
	pthread_mutex_unlock(&e->lock);
}

static void deadline_in(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool past(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

static void drain(int fd)
{
	char buf[64];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static void *engine_main(void *arg)
{
	sync_engine *e = arg;
	double next_round = now_mono();

	while (!e->stopping) {
		struct pollfd pfd = { .fd = e->pipe[0], .events = POLLIN };
		int timeout = (int)((next_round - now_mono()) * 1000);
		bool force;

		if (timeout > 0 && poll(&pfd, 1, timeout) > 0) {
			/* Kicked: let a burst of commits settle, then go. */
			drain(e->pipe[0]);
			if (!e->stopping && !e->forced) {
				poll(NULL, 0, e->opts.debounce_ms);
				drain(e->pipe[0]);
			}
		}
		if (e->stopping)
			break;
		force = e->forced;
		e->forced = 0;
		run_round(e, force);
		next_round = now_mono() + e->opts.interval_s;
	}
	/* One last bounded round, so acknowledged commits leave this host. */
	run_round(e, true);
	return NULL;
}

static void engine_free(sync_engine *e)
{
	gitkv_store_unsubscribe(e->store, on_change, e);
	for (size_t i = 0; e->remotes && i < e->nremotes; i++) {
		free(e->remotes[i].name);
		free(e->remotes[i].url);
	}
	free(e->remotes);
	free(e->credentials_file);
	free(e->ssh_key);
	if (e->pipe[0] >= 0)
		close(e->pipe[0]);
	if (e->pipe[1] >= 0)
		close(e->pipe[1]);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->net_lock);
	pthread_cond_destroy(&e->cond);
	free(e);
}

int sync_engine_start(sync_engine **out, gitkv_store *store, const sync_options *opts)
{
	sync_engine *e;
	int error;

	*out = NULL;
	if (!opts || !opts->nremotes)
		return 0;
	e = calloc(1, sizeof(*e));
	if (!e)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	e->store = store;
	e->opts = *opts;
	e->pipe[0] = e->pipe[1] = -1;
	if (!e->opts.interval_s)
		e->opts.interval_s = 5;
	if (!e->opts.debounce_ms)
		e->opts.debounce_ms = 50;
	if (!e->opts.max_backoff_s)
		e->opts.max_backoff_s = 300;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->net_lock, NULL);
	pthread_cond_init(&e->cond, NULL);
	e->remotes = calloc(opts->nremotes, sizeof(*e->remotes));
	if (!e->remotes)
		goto oom;
	e->nremotes = opts->nremotes;
	for (size_t i = 0; i < opts->nremotes; i++) {
		struct remote *r = &e->remotes[i];

		r->name = strdup(opts->remotes[i].name);
		r->url = strdup(opts->remotes[i].url);
		if (!r->name || !r->url)
			goto oom;
		snprintf(r->st.name, sizeof(r->st.name), "%s", r->name);
		gitkv_remote_redact(r->st.url, sizeof(r->st.url), r->url);
		r->in_sync_since = now_s();
	}
	if (opts->remote.credentials_file &&
	    !(e->credentials_file = strdup(opts->remote.credentials_file)))
		goto oom;
	if (opts->remote.ssh_key && !(e->ssh_key = strdup(opts->remote.ssh_key)))
		goto oom;
	e->opts.remote.credentials_file = e->credentials_file;
	e->opts.remote.ssh_key = e->ssh_key;
	e->opts.remotes = NULL;
	if (pipe2(e->pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		error = gitkv_error_set(GITKV_ERROR, "pipe: %s", strerror(errno));
		goto fail;
	}
	if ((error = gitkv_store_subscribe(store, on_change, e)) < 0)
		goto fail;
	if ((error = gitkv_thread_start(&e->thread, engine_main, e, "sync")) < 0)
		goto fail;
	*out = e;
	return 0;
oom:
	error = gitkv_error_set(GITKV_ERROR, "out of memory");
fail:
	engine_free(e);
	return error;
}

int sync_engine_round(sync_engine *e, int timeout_ms)
{
	struct timespec deadline;
	uint64_t want;
	int error = 0;

	if (!e)
		return 0;
	deadline_in(&deadline, timeout_ms);
	pthread_mutex_lock(&e->lock);
	want = e->started + 1; /* a round that begins after this call */
	pthread_mutex_unlock(&e->lock);
	e->forced = 1;
	sync_engine_kick(e);
	pthread_mutex_lock(&e->lock);
	while (e->rounds < want && !error)
		if (pthread_cond_timedwait(&e->cond, &e->lock, &deadline) == ETIMEDOUT)
			error = gitkv_error_set(GITKV_ERROR, "sync round timed out");
	pthread_mutex_unlock(&e->lock);
	return error;
}

void sync_engine_stop(sync_engine *e, int final_timeout_s)
{
	struct timespec deadline;

	if (!e)
		return;
	e->stopping = 1;
	sync_engine_kick(e);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += final_timeout_s > 0 ? final_timeout_s : 10;
	if (pthread_timedjoin_np(e->thread, NULL, &deadline) != 0) {
		/* A remote that hangs must not hold the shutdown: leave it behind. */
		gitkv_store_unsubscribe(e->store, on_change, e);
		pthread_detach(e->thread);
		return;
	}
	engine_free(e);
}

size_t sync_engine_status(sync_engine *e, sync_remote_status *out, size_t max)
{
	int64_t t = now_s();
	gitkv_oid head;
	size_t n;

	if (!e)
		return 0;
	pthread_mutex_lock(&e->lock);
	for (n = 0; n < e->nremotes && n < max; n++) {
		out[n] = e->remotes[n].st;
		out[n].lag_s = e->remotes[n].st.failures ? (double)(t - e->remotes[n].in_sync_since)
							 : 0.0;
	}
	pthread_mutex_unlock(&e->lock);
	gitkv_snapshot_head(gitkv_store_snapshot(e->store), &head, NULL);
	for (size_t i = 0; i < n; i++)
		gitkv_store_ahead_behind(e->store, &head, &out[i].remote_head, &out[i].ahead,
					 &out[i].behind);
	return e->nremotes;
}

void sync_engine_counters(sync_engine *e, uint64_t *rounds, uint64_t *failures,
			  uint64_t *conflicts)
{
	*rounds = *failures = *conflicts = 0;
	if (!e)
		return;
	pthread_mutex_lock(&e->lock);
	*rounds = e->rounds;
	*failures = e->failures;
	*conflicts = e->conflicts;
	pthread_mutex_unlock(&e->lock);
}

/* ---- write concern ------------------------------------------------------ */

int sync_engine_wait_pushed(sync_engine *e, const gitkv_oid *commit, int quorum, int timeout_ms)
{
	struct timespec deadline;
	gitkv_oid *pushed;
	int error = 0;

	if (!e || quorum <= 0 || !e->nremotes)
		return 0;
	pushed = calloc(e->nremotes, sizeof(*pushed));
	if (!pushed)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	deadline_in(&deadline, timeout_ms);
	for (;;) {
		uint64_t rounds;
		int have = 0;

		e->forced = 1;
		sync_engine_kick(e);
		pthread_mutex_lock(&e->lock);
		rounds = e->started + 1;
		for (size_t i = 0; i < e->nremotes; i++)
			pushed[i] = e->remotes[i].st.pushed;
		pthread_mutex_unlock(&e->lock);
		for (size_t i = 0; i < e->nremotes; i++) {
			bool in = false;

			if (!gitkv_oid_is_zero(&pushed[i]) &&
			    gitkv_store_contains(e->store, &pushed[i], commit, &in) == 0 && in)
				have++;
		}
		if (have >= quorum)
			break;
		pthread_mutex_lock(&e->lock);
		while (e->rounds < rounds && !error)
			if (pthread_cond_timedwait(&e->cond, &e->lock, &deadline) == ETIMEDOUT)
				error = gitkv_error_set(GITKV_ERROR,
							"not acknowledged by %d remote(s) in time",
							quorum);
		pthread_mutex_unlock(&e->lock);
		if (error || past(&deadline)) {
			if (!error)
				error = gitkv_error_set(GITKV_ERROR,
							"not acknowledged by %d remote(s) in time",
							quorum);
			break;
		}
	}
	free(pushed);
	return error;
}

/* Undo our own creation of `key` (still holding `blob`): delete it. */
static void undo_create(gitkv_store *store, const char *key, const gitkv_oid *blob,
			const gitkv_writer *writer)
{
	gitkv_op op = { .type = GITKV_OP_DELETE, .key = key, .flags = GITKV_OP_IF_MATCH,
			.expect = *blob };
	char msg[256];

	snprintf(msg, sizeof(msg), "%s", gitkv_error_last());
	gitkv_store_apply(store, &op, writer, NULL);
	gitkv_error_set(GITKV_ERROR, "%s", msg);
}

/* We lost: make our branch hold the winner's entry at `key`, then merge. */
static int yield_to(gitkv_store *store, const char *key, const gitkv_oid *ours,
		    const gitkv_entry *theirs, const gitkv_oid *their_head, const char *name,
		    const gitkv_writer *writer)
{
	gitkv_merge_result mr;
	int error = 0;

	if (gitkv_type_is_value(theirs->type)) {
		char *buf = NULL;
		size_t len = 0;
		gitkv_op op = { .type = GITKV_OP_SET, .key = key, .vtype = theirs->type,
				.flags = GITKV_OP_IF_MATCH, .expect = *ours };

		if ((error = gitkv_store_read_blob(store, &theirs->oid, &buf, &len)) == 0) {
			op.value = buf;
			op.len = len;
			error = gitkv_store_apply(store, &op, writer, NULL);
		}
		free(buf);
	} else {
		gitkv_op op = { .type = GITKV_OP_DELETE, .key = key, .flags = GITKV_OP_IF_MATCH,
				.expect = *ours };

		error = gitkv_store_apply(store, &op, writer, NULL);
	}
	if (error && error != GITKV_EMODIFIED)
		return error;
	if (gitkv_store_integrate(store, their_head, name, &mr) == 0)
		gitkv_merge_result_free(&mr);
	return 0;
}

int sync_engine_create_exclusive(sync_engine *e, gitkv_store *store, const char *key,
				 const void *value, size_t len, const gitkv_writer *writer,
				 int timeout_ms, gitkv_result *result)
{
	gitkv_op op = { .type = GITKV_OP_SET, .key = key, .value = value, .len = len,
			.flags = GITKV_OP_EXCL };
	struct timespec deadline;
	struct remote *r;
	gitkv_result res;
	gitkv_entry mine;
	gitkv_oid head;
	char hex[GITKV_OID_HEXSZ + 1];
	int error;

	if (!e || !e->nremotes)
		return gitkv_store_apply(store, &op, writer, result);
	r = &e->remotes[0];
	deadline_in(&deadline, timeout_ms);
	pthread_mutex_lock(&e->net_lock);
	/* Bring the arbiter in first: a key it has already makes us lose at once. */
	for (int i = 0; i < 10; i++) {
		gitkv_merge_result mr;

		if ((error = gitkv_remote_fetch(store, r->name, r->url, &e->opts.remote, &head)) < 0)
			goto out;
		if (gitkv_oid_is_zero(&head))
			break;
		error = gitkv_store_integrate(store, &head, r->name, &mr);
		if (!error)
			gitkv_merge_result_free(&mr);
		if (error != GITKV_EMODIFIED)
			break;
	}
	if (error < 0)
		goto out;
	if ((error = gitkv_store_apply(store, &op, writer, &res)) < 0)
		goto out;
	if (gitkv_snapshot_lookup(gitkv_store_snapshot(store), key, &mine) < 0) {
		error = gitkv_error_set(GITKV_ERROR, "'%s' vanished after its creation", key);
		goto out;
	}
	for (;;) {
		gitkv_entry theirs;
		gitkv_merge_result mr;

		error = gitkv_remote_push(store, r->name, r->url, &res.commit, &e->opts.remote);
		if (!error)
			break;
		if (error != GITKV_EMODIFIED || past(&deadline)) {
			undo_create(store, key, &mine.oid, writer);
			error = GITKV_ERROR;
			goto out;
		}
		/* Someone pushed first: did they create the key? */
		if ((error = gitkv_remote_fetch(store, r->name, r->url, &e->opts.remote, &head)) < 0) {
			undo_create(store, key, &mine.oid, writer);
			error = GITKV_ERROR;
			goto out;
		}
		if (gitkv_store_lookup_at(store, gitkv_oid_fmt(hex, &head), key, &theirs, NULL) == 0) {
			yield_to(store, key, &mine.oid, &theirs, &head, r->name, writer);
			error = gitkv_error_set(GITKV_EEXISTS, "'%s' was created first by another node",
						key);
			goto out;
		}
		error = gitkv_store_integrate(store, &head, r->name, &mr);
		if (!error)
			gitkv_merge_result_free(&mr);
		gitkv_snapshot_head(gitkv_store_snapshot(store), &res.commit, NULL);
	}
	if (result)
		*result = res;
	pthread_mutex_lock(&e->lock);
	r->st.pushed = res.commit;
	r->st.remote_head = res.commit;
	pthread_mutex_unlock(&e->lock);
out:
	pthread_mutex_unlock(&e->net_lock);
	return error;
}

/* ---- compare-and-swap ------------------------------------------------------ */
/*
 * sync_engine_cas() (see engine.h). Locally: compare the value, then commit
 * with IF_MATCH on the blob compared (EXCL when the key must be absent), so
 * the store's own checks catch a writer that slipped in between.
 * Cluster-wide, under net_lock so that the engine thread's rounds stay out:
 *
 *   bring the arbiter in; note its entry at the key (`base`)
 *   compare and commit locally                  --differs--> EMODIFIED
 *   push to the arbiter                         --accepted--> done
 *     \--rejected--> fetch: is the arbiter's entry still `base`?
 *          yes: integrate, push again      no: take theirs, EMODIFIED
 *   unreachable, or past the deadline: put the compared value back, ERROR
 *
 * Pushing again after "yes" is sound because the push is a fast-forward:
 * the arbiter moves from a commit whose key still holds what we compared
 * to one holding our value, in one compare-and-swap of its ref.
 */
#include "gitkv/key.h"

/* `key` in the branch (type NONE when absent). */
static void cas_lookup(gitkv_store *store, const char *key, gitkv_entry *out)
{
	if (gitkv_snapshot_lookup(gitkv_store_snapshot(store), key, out) < 0)
		memset(out, 0, sizeof(*out));
}

/* `key` in commit `head` (type NONE when absent, or when `head` is zero). */
static int cas_entry_at(gitkv_store *store, const gitkv_oid *head, const char *key,
			gitkv_entry *out)
{
	char hex[GITKV_OID_HEXSZ + 1];
	int error;

	memset(out, 0, sizeof(*out));
	if (gitkv_oid_is_zero(head))
		return 0;
	error = gitkv_store_lookup_at(store, gitkv_oid_fmt(hex, head), key, out, NULL);
	if (error == GITKV_ENOTFOUND) {
		memset(out, 0, sizeof(*out));
		return 0;
	}
	return error;
}

static bool cas_same(const gitkv_entry *a, const gitkv_entry *b)
{
	if (a->type == GITKV_TYPE_NONE || b->type == GITKV_TYPE_NONE)
		return a->type == b->type;
	return a->type == b->type && gitkv_oid_equal(&a->oid, &b->oid);
}

/* Set `*out` to whether `cur` holds exactly `expected` (NULL: is absent). */
static int cas_holds(gitkv_store *store, const gitkv_entry *cur, const void *expected,
		     size_t len, bool *out)
{
	char *buf = NULL;
	size_t n = 0;
	int error;

	*out = false;
	if (!expected) {
		*out = cur->type == GITKV_TYPE_NONE;
		return 0;
	}
	if (!gitkv_type_is_value(cur->type) || (cur->size != GITKV_SIZE_UNKNOWN && cur->size != len))
		return 0;
	if ((error = gitkv_store_read_blob(store, &cur->oid, &buf, &n)) < 0)
		return error;
	*out = n == len && (!len || !memcmp(buf, expected, len));
	free(buf);
	return 0;
}

/*
 * Compare the branch's value of `key` with `expected` and, if it matches,
 * commit `value`. `cur` receives the entry compared (after a lost race: the
 * one that won), `mine` the entry committed.
 */
static int cas_here(gitkv_store *store, const char *key, const void *expected,
		    size_t expected_len, const void *value, size_t len, const gitkv_writer *writer,
		    gitkv_entry *cur, gitkv_entry *mine, gitkv_result *res)
{
	gitkv_op op = { .type = GITKV_OP_SET, .key = key, .value = value, .len = len,
			.vtype = GITKV_TYPE_FILE };
	bool holds;
	int error;

	memset(cur, 0, sizeof(*cur));
	memset(mine, 0, sizeof(*mine));
	if ((error = gitkv_key_validate(key)) < 0 || (error = gitkv_store_refresh(store)) < 0)
		return error;
	cas_lookup(store, key, cur);
	if (cur->type == GITKV_TYPE_DIR)
		return gitkv_error_set(GITKV_EISDIR, "'%s' is a prefix", key);
	if ((error = cas_holds(store, cur, expected, expected_len, &holds)) < 0)
		return error;
	if (!holds)
		return gitkv_error_set(GITKV_EMODIFIED, "'%s' does not hold the expected value", key);
	if (expected) {
		op.flags = GITKV_OP_IF_MATCH;
		op.expect = cur->oid;
		op.vtype = cur->type;
	} else {
		op.flags = GITKV_OP_EXCL;
	}
	error = gitkv_store_apply(store, &op, writer, res);
	if (error == GITKV_EMODIFIED || error == GITKV_EEXISTS) {
		gitkv_store_refresh(store);
		cas_lookup(store, key, cur);
		return gitkv_error_set(GITKV_EMODIFIED, "'%s' changed meanwhile", key);
	}
	if (error < 0)
		return error;
	return cas_entry_at(store, &res->commit, key, mine);
}

/*
 * Fetch the arbiter's branch. A failure is tried again twice: another
 * process fetching into the same store holds the tracking ref's lock.
 */
static int cas_fetch(sync_engine *e, gitkv_store *store, struct remote *r,
		     const struct timespec *deadline, gitkv_oid *head)
{
	int error;

	for (int i = 0;; i++) {
		error = gitkv_remote_fetch(store, r->name, r->url, &e->opts.remote, head);
		if (!error || i == 2 || past(deadline))
			return error;
		poll(NULL, 0, 50);
	}
}

static int cas_integrate(gitkv_store *store, const gitkv_oid *head, const char *from)
{
	gitkv_merge_result mr;
	int error = 0;

	if (gitkv_oid_is_zero(head))
		return 0;
	for (int i = 0; i < 10; i++) {
		error = gitkv_store_integrate(store, head, from, &mr);
		if (!error)
			gitkv_merge_result_free(&mr);
		if (error != GITKV_EMODIFIED)
			break;
	}
	return error;
}

/* Make `key` hold `want` (type NONE: absent) again, if it still holds `mine`. */
static int cas_put_back(gitkv_store *store, const char *key, const gitkv_entry *mine,
			const gitkv_entry *want, const gitkv_writer *writer)
{
	gitkv_op op = { .type = GITKV_OP_DELETE, .key = key, .flags = GITKV_OP_IF_MATCH,
			.expect = mine->oid };
	char *buf = NULL;
	size_t len = 0;
	int error;

	if (gitkv_type_is_value(want->type)) {
		if ((error = gitkv_store_read_blob(store, &want->oid, &buf, &len)) < 0)
			return error;
		op.type = GITKV_OP_SET;
		op.value = buf;
		op.len = len;
		op.vtype = want->type;
	}
	error = gitkv_store_apply(store, &op, writer, NULL);
	free(buf);
	/* A value written here since ours is newer than both: it stays. */
	return error == GITKV_EMODIFIED || error == GITKV_ENOTFOUND ? 0 : error;
}

int sync_engine_cas(sync_engine *e, gitkv_store *store, const char *key, const void *expected,
		    size_t expected_len, const void *value, size_t len, const gitkv_writer *writer,
		    int timeout_ms, gitkv_entry *current_out, gitkv_result *result)
{
	gitkv_entry cur, mine, base, theirs, scratch;
	struct timespec deadline;
	struct remote *r;
	gitkv_result res = { 0 };
	gitkv_oid head;
	char msg[256];
	int error;

	if (!current_out)
		current_out = &scratch;
	if (!e || !e->nremotes) {
		error = cas_here(store, key, expected, expected_len, value, len, writer, &cur, &mine,
				 &res);
		*current_out = error ? cur : mine;
		if (!error && result)
			*result = res;
		return error;
	}
	memset(current_out, 0, sizeof(*current_out));
	r = &e->remotes[0];
	deadline_in(&deadline, timeout_ms);
	pthread_mutex_lock(&e->net_lock);
	if ((error = cas_fetch(e, store, r, &deadline, &head)) < 0 ||
	    (error = cas_integrate(store, &head, r->name)) < 0 ||
	    (error = cas_entry_at(store, &head, key, &base)) < 0)
		goto out;
	error = cas_here(store, key, expected, expected_len, value, len, writer, &cur, &mine, &res);
	*current_out = error ? cur : mine;
	if (error)
		goto out;
	for (;;) {
		error = gitkv_remote_push(store, r->name, r->url, &res.commit, &e->opts.remote);
		if (!error)
			break;
		if (error == GITKV_EMODIFIED && !past(&deadline)) {
			/* The arbiter moved on: did it change the key? */
			if ((error = cas_fetch(e, store, r, &deadline, &head)) == 0 &&
			    (error = cas_entry_at(store, &head, key, &theirs)) == 0 &&
			    !cas_same(&theirs, &base)) {
				cas_put_back(store, key, &mine, &theirs, writer);
				cas_integrate(store, &head, r->name);
				cas_lookup(store, key, current_out);
				error = gitkv_error_set(GITKV_EMODIFIED,
							"'%s' was changed first by another node", key);
				goto out;
			}
			if (!error && (error = cas_integrate(store, &head, r->name)) == 0) {
				gitkv_snapshot_head(gitkv_store_snapshot(store), &res.commit, NULL);
				continue;
			}
		}
		/* Unreachable, or still moving at the deadline: undo the local swap. */
		if (error == GITKV_EMODIFIED)
			snprintf(msg, sizeof(msg), "the arbiter '%s' kept moving for %d ms", r->name,
				 timeout_ms);
		else
			snprintf(msg, sizeof(msg), "%s", gitkv_error_last());
		cas_put_back(store, key, &mine, &cur, writer);
		*current_out = cur;
		error = gitkv_error_set(GITKV_ERROR, "%s", msg);
		goto out;
	}
	if (result)
		*result = res;
	pthread_mutex_lock(&e->lock);
	r->st.pushed = res.commit;
	r->st.remote_head = res.commit;
	pthread_mutex_unlock(&e->lock);
out:
	pthread_mutex_unlock(&e->net_lock);
	return error;
}
