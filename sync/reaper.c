/*
 * reaper.c - the TTL reaper (see gitkv_sync/reaper.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gitkv/error.h>
#include <gitkv/key.h>
#include <gitkv/meta.h>
#include <gitkv/thread.h>

#include "gitkv_sync/reaper.h"

#define MAX_SLEEP_S 60	   /* wake at least this often, in case a change was missed */
#define MAX_BACKOFF_S 60

struct sync_reaper {
	gitkv_store *store; /* immutable */
	pthread_t thread;
	bool started;

	pthread_mutex_t lock;
	pthread_cond_t cond; /* CLOCK_MONOTONIC; signalled on a metadata change and on stop */
	bool stopping;	     /* protected by lock */
	bool poked;	     /* protected by lock: metadata changed since the last look */
	uint64_t expired;    /* protected by lock */
};

/* Store subscriber: metadata changed, the next expiry may be earlier. */
static void on_change(const gitkv_change_batch *batch, void *payload)
{
	struct sync_reaper *r = payload;

	for (size_t i = 0; i < batch->count; i++) {
		if (gitkv_key_has_prefix(batch->changes[i].path, GITKV_META_PREFIX)) {
			pthread_mutex_lock(&r->lock);
			r->poked = true;
			pthread_cond_signal(&r->cond);
			pthread_mutex_unlock(&r->lock);
			return;
		}
	}
}

/* Sleep until `wall` (UTC seconds; 0: MAX_SLEEP_S), a poke or stop. */
static void sleep_until_locked(struct sync_reaper *r, int64_t wall)
{
	int64_t now = time(NULL), delay = wall ? wall - now : MAX_SLEEP_S;
	struct timespec ts;

	if (delay > MAX_SLEEP_S)
		delay = MAX_SLEEP_S;
	if (delay <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += delay;
	while (!r->stopping && !r->poked)
		if (pthread_cond_timedwait(&r->cond, &r->lock, &ts) == ETIMEDOUT)
			break;
}

static void *reaper_main(void *arg)
{
	struct sync_reaper *r = arg;
	int64_t backoff = 0, retry_at = 0;

	pthread_mutex_lock(&r->lock);
	while (!r->stopping) {
		int64_t next, now;
		size_t n = 0;
		int error;

		r->poked = false;
		pthread_mutex_unlock(&r->lock);
		next = gitkv_store_next_expiry(r->store);
		now = time(NULL);
		if (next && next <= now && now >= retry_at) {
			error = gitkv_store_expire(r->store, now, &n, NULL);
			if (error < 0) {
				backoff = backoff ? backoff * 2 : 1;
				if (backoff > MAX_BACKOFF_S)
					backoff = MAX_BACKOFF_S;
				retry_at = now + backoff;
				fprintf(stderr, "gitkvfs: expire failed (retry in %llds): %s\n",
					(long long)backoff, gitkv_error_last());
			} else {
				backoff = 0;
				/* nothing deleted though something was due: do not spin */
				retry_at = n ? 0 : now + 1;
			}
			pthread_mutex_lock(&r->lock);
			r->expired += n;
			continue; /* look again: more may be due */
		}
		pthread_mutex_lock(&r->lock);
		if (!r->poked)
			sleep_until_locked(r, next && next > retry_at ? next : retry_at ? retry_at : next);
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

int sync_reaper_start(sync_reaper **out, gitkv_store *store)
{
	struct sync_reaper *r = calloc(1, sizeof(*r));
	pthread_condattr_t ca;
	int error;

	if (!r)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	r->store = store;
	pthread_mutex_init(&r->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cond, &ca);
	pthread_condattr_destroy(&ca);
	if ((error = gitkv_store_subscribe(store, on_change, r)) < 0)
		goto fail;
	if ((error = gitkv_thread_start(&r->thread, reaper_main, r, "the reaper")) < 0) {
		gitkv_store_unsubscribe(store, on_change, r);
		goto fail;
	}
	r->started = true;
	*out = r;
	return 0;
fail:
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
	return error;
}

uint64_t sync_reaper_expired(const sync_reaper *r)
{
	struct sync_reaper *m = (struct sync_reaper *)r;
	uint64_t n;

	if (!r)
		return 0;
	pthread_mutex_lock(&m->lock);
	n = m->expired;
	pthread_mutex_unlock(&m->lock);
	return n;
}

void sync_reaper_stop(sync_reaper *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	if (r->started)
		pthread_join(r->thread, NULL);
	gitkv_store_unsubscribe(r->store, on_change, r);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
