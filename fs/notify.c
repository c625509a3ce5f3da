/*
 * notify.c - the notifier thread and its queue.
 *
 * The queue is a growable array of path copies. The thread sleeps on a
 * condition variable; when woken it swaps the array out under the lock and
 * hands the whole batch to the handler outside it, so a slow invalidation
 * never holds up the store's publisher. A path queued twice before the
 * thread runs is invalidated twice, which is harmless. If a copy cannot be
 * allocated the path is dropped and the failure logged: the kernel then
 * serves that entry from cache until its timeout.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define FUSE_USE_VERSION 312
#include <fuse_log.h>

#include <gitkv/error.h>
#include <gitkv/thread.h>
#include <gitkv/key.h>

#include "notify.h"

struct fs_notifier {
	fs_notify_fn fn;  /* immutable */
	void *payload;	  /* immutable */
	pthread_t thread; /* main thread only */
	bool started;	  /* main thread only */

	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t cond;  /* signalled on a push and on stop */
	char **paths;
	size_t count, cap;
	bool stopping;
};

int fs_notifier_new(struct fs_notifier **out, fs_notify_fn fn, void *payload)
{
	struct fs_notifier *n = calloc(1, sizeof(*n));

	if (!n)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	n->fn = fn;
	n->payload = payload;
	pthread_mutex_init(&n->lock, NULL);
	pthread_cond_init(&n->cond, NULL);
	*out = n;
	return 0;
}

/* With n->lock held. */
static void push_locked(struct fs_notifier *n, const char *path)
{
	char *copy;

	if (n->stopping)
		return;
	if (n->count == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 64;
		char **p = realloc(n->paths, cap * sizeof(*p));

		if (!p)
			goto oom;
		n->paths = p;
		n->cap = cap;
	}
	copy = strdup(path);
	if (!copy)
		goto oom;
	n->paths[n->count++] = copy;
	return;
oom:
	fuse_log(FUSE_LOG_ERR, "gitkvfs: out of memory: kernel cache of '%s' not invalidated\n",
		 path);
}

void fs_notifier_push(struct fs_notifier *n, const char *path)
{
	pthread_mutex_lock(&n->lock);
	push_locked(n, path);
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

void fs_notifier_change(const gitkv_change_batch *batch, void *payload)
{
	struct fs_notifier *n = payload;

	if (batch->origin == GITKV_ORIGIN_LOCAL || !batch->count)
		return;
	pthread_mutex_lock(&n->lock);
	for (size_t i = 0; i < batch->count; i++) {
		if (!gitkv_key_is_reserved(batch->changes[i].path))
			push_locked(n, batch->changes[i].path);
	}
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

static void *notifier_main(void *arg)
{
	struct fs_notifier *n = arg;
	char **paths;
	size_t count;

	pthread_mutex_lock(&n->lock);
	for (;;) {
		while (!n->count && !n->stopping)
			pthread_cond_wait(&n->cond, &n->lock);
		if (!n->count)
			break; /* stopping, and drained */
		paths = n->paths;
		count = n->count;
		n->paths = NULL;
		n->count = n->cap = 0;
		pthread_mutex_unlock(&n->lock);

		n->fn(n->payload, paths, count);
		for (size_t i = 0; i < count; i++)
			free(paths[i]);
		free(paths);

		pthread_mutex_lock(&n->lock);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int fs_notifier_start(struct fs_notifier *n)
{
	int err = gitkv_thread_start(&n->thread, notifier_main, n, "notifier");

	if (err < 0)
		return err;
	n->started = true;
	return 0;
}

void fs_notifier_stop(struct fs_notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stopping = true;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
	if (n->started) {
		pthread_join(n->thread, NULL);
		n->started = false;
	}
}

void fs_notifier_free(struct fs_notifier *n)
{
	if (!n)
		return;
	fs_notifier_stop(n);
	for (size_t i = 0; i < n->count; i++)
		free(n->paths[i]);
	free(n->paths);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	free(n);
}
