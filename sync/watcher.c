/*
 * watcher.c - the ref watcher: refresh the store when another process moves
 * the branch.
 *
 * Every writer of a bare repository, git included, moves a ref the same way:
 * it writes "<ref>.lock" and renames it over "<ref>" (or rewrites packed-refs
 * the same way, or repoints HEAD). So the three places to watch are the
 * repository directory itself (HEAD and packed-refs) and refs/heads/; a
 * rename into them shows up as IN_MOVED_TO, a fresh file as IN_CREATE or
 * IN_CLOSE_WRITE, a pruned loose ref as IN_DELETE. Lock files and the other
 * files of the repository directory (config, FETCH_HEAD, ...) are ignored.
 *
 * The thread is a single poll() loop over two descriptors, the inotify
 * instance and an eventfd that sync_watcher_stop() writes to:
 *
 *     idle --relevant event--> pending (deadline = now + DEBOUNCE_MS)
 *     pending --deadline--> refresh --> idle
 *     idle or pending --TICK_MS since the last refresh--> refresh --> idle
 *     any --stop eventfd--> exit
 *
 * The deadline is set by the first event of a burst and not pushed back by
 * the later ones, so a steady stream of commits still refreshes every
 * DEBOUNCE_MS. Before each refresh the thread re-adds any watch it lost
 * (refs/heads/ removed and recreated, or missing at start). The first
 * refresh happens at once, which closes the window between opening the
 * store and setting up the watches.
 *
 * A refresh that finds nothing new is cheap (core compares one ref), and the
 * store's own commits also wake the watcher; that is accepted rather than
 * filtered, since only core knows which commits are its own.
 */
#include <gitkv_sync/watcher.h>
#include <gitkv/thread.h>

#include <gitkv/error.h>

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#define DEBOUNCE_MS 20
#define TICK_MS	    2000

#define WATCH_MASK (IN_MOVED_TO | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_ONLYDIR)

struct sync_watcher {
	gitkv_store *store; /* borrowed; outlives the watcher */
	char *repo_dir;	    /* the bare repository (HEAD, packed-refs) */
	char *heads_dir;    /* its refs/heads/ */
	int inotify_fd;
	int stop_fd; /* eventfd: readable once stop was asked */
	pthread_t thread;
	/* The fields below belong to the watcher thread once it runs. */
	int repo_wd;  /* -1 while not watched */
	int heads_wd; /* -1 while not watched */
	bool failing; /* the last refresh failed (reported once) */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* Add the watches that are missing; a directory that is not there is retried later. */
static void add_missing_watches(sync_watcher *w)
{
	if (w->repo_wd < 0)
		w->repo_wd = inotify_add_watch(w->inotify_fd, w->repo_dir, WATCH_MASK);
	if (w->heads_wd < 0)
		w->heads_wd = inotify_add_watch(w->inotify_fd, w->heads_dir, WATCH_MASK);
}

/* Does this event say a ref may have moved? Also forgets watches the kernel dropped. */
static bool event_is_relevant(sync_watcher *w, const struct inotify_event *ev)
{
	const char *name = ev->len ? ev->name : "";

	if (ev->mask & IN_Q_OVERFLOW)
		return true;
	if (ev->mask & IN_IGNORED) {
		if (ev->wd == w->repo_wd)
			w->repo_wd = -1;
		if (ev->wd == w->heads_wd)
			w->heads_wd = -1;
		return true;
	}
	if (ev->wd == w->repo_wd)
		return !strcmp(name, "HEAD") || !strcmp(name, "packed-refs");
	if (ev->wd == w->heads_wd)
		return !has_suffix(name, ".lock");
	return false;
}

/* Drain the inotify queue; true if any event calls for a refresh. */
static bool drain_events(sync_watcher *w)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;

	for (;;) {
		ssize_t n = read(w->inotify_fd, buf, sizeof(buf));
		const char *p;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			if (event_is_relevant(w, ev))
				relevant = true;
			p += sizeof(*ev) + ev->len;
		}
	}
	return relevant;
}

static void refresh(sync_watcher *w)
{
	int rc;

	add_missing_watches(w);
	rc = gitkv_store_refresh(w->store);
	if (rc < 0 && !w->failing)
		fprintf(stderr, "gitkv: ref watcher: cannot refresh '%s': %s\n", w->repo_dir,
			*gitkv_error_last() ? gitkv_error_last() : gitkv_error_name(rc));
	else if (rc >= 0 && w->failing)
		fprintf(stderr, "gitkv: ref watcher: refreshing '%s' works again\n", w->repo_dir);
	w->failing = rc < 0;
}

static void *watcher_main(void *arg)
{
	sync_watcher *w = arg;
	struct pollfd fds[2] = {
	    {.fd = w->stop_fd, .events = POLLIN},
	    {.fd = w->inotify_fd, .events = POLLIN},
	};
	int64_t next_tick = 0; /* refresh at once */
	int64_t deadline = 0;
	bool pending = false;

	for (;;) {
		int64_t now = now_ms();
		int64_t due = pending && deadline < next_tick ? deadline : next_tick;
		int timeout = due > now ? (int)(due - now) : 0;
		int n = poll(fds, 2, timeout);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "gitkv: ref watcher: poll failed: %s\n", strerror(errno));
			break;
		}
		if (n > 0 && fds[0].revents)
			break;
		if (n > 0 && fds[1].revents && drain_events(w) && !pending) {
			pending = true;
			deadline = now_ms() + DEBOUNCE_MS;
		}
		now = now_ms();
		if ((pending && now >= deadline) || now >= next_tick) {
			refresh(w);
			pending = false;
			next_tick = now_ms() + TICK_MS;
		}
	}
	return NULL;
}

static char *path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir);
	char *p = malloc(n + 1 + strlen(name) + 1);

	if (p) {
		while (n > 1 && dir[n - 1] == '/')
			n--;
		memcpy(p, dir, n);
		p[n] = '/';
		strcpy(p + n + 1, name);
	}
	return p;
}

static void watcher_free(sync_watcher *w)
{
	if (!w)
		return;
	if (w->inotify_fd >= 0)
		close(w->inotify_fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	free(w->repo_dir);
	free(w->heads_dir);
	free(w);
}

int sync_watcher_start(sync_watcher **out, gitkv_store *store)
{
	sync_watcher *w;
	int err;

	w = calloc(1, sizeof(*w));
	if (!w)
		return gitkv_error_set(GITKV_ERROR, "ref watcher: out of memory");
	w->store = store;
	w->inotify_fd = w->stop_fd = w->repo_wd = w->heads_wd = -1;

	w->repo_dir = strdup(gitkv_store_path(store));
	w->heads_dir = w->repo_dir ? path_join(w->repo_dir, "refs/heads") : NULL;
	if (!w->heads_dir) {
		err = gitkv_error_set(GITKV_ERROR, "ref watcher: out of memory");
		goto fail;
	}
	w->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->inotify_fd < 0) {
		err = gitkv_error_set(GITKV_ERROR, "ref watcher: cannot start inotify: %s",
				      strerror(errno));
		goto fail;
	}
	w->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->stop_fd < 0) {
		err = gitkv_error_set(GITKV_ERROR, "ref watcher: cannot create eventfd: %s",
				      strerror(errno));
		goto fail;
	}
	w->repo_wd = inotify_add_watch(w->inotify_fd, w->repo_dir, WATCH_MASK);
	if (w->repo_wd < 0) {
		err = gitkv_error_set(GITKV_ERROR, "ref watcher: cannot watch '%s': %s",
				      w->repo_dir, strerror(errno));
		goto fail;
	}
	w->heads_wd = inotify_add_watch(w->inotify_fd, w->heads_dir, WATCH_MASK);

	/* The thread inherits the mask: keep process signals off it. */
	if ((err = gitkv_thread_start(&w->thread, watcher_main, w, "ref watcher")) < 0)
		goto fail;
	*out = w;
	return 0;

fail:
	watcher_free(w);
	return err;
}

void sync_watcher_stop(sync_watcher *w)
{
	uint64_t one = 1;

	if (!w)
		return;
	while (write(w->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_join(w->thread, NULL);
	watcher_free(w);
}
