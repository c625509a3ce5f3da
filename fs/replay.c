/*
 * replay.c - the replay thread and its queue (see replay.h).
 *
 * The queue holds copies of external batches, oldest first. The thread takes
 * one, makes it the *current* batch (the one fs_replay_view() answers for),
 * and performs its steps in the order core listed them (a created prefix
 * before its contents, a removed prefix after them), marking each one done
 * as it goes, so the view always tells the kernel's state: a path's state
 * before the batch, with the steps done so far applied. A path may appear
 * twice in a batch (a value that became a prefix is a removal, then a
 * creation); the view of such a path is the `old` of its first step, then
 * the `new` of the last step done.
 *
 * Every system call is made relative to a descriptor of the mount's root
 * (O_PATH), opened for each batch and checked to be a FUSE file system: if
 * the mount goes while a batch is replayed, the descriptor still names the
 * detached mount, whose calls fail, so a replay never writes into the
 * directory underneath. It is closed between batches, because a descriptor
 * in the mount makes umount(8) fail with EBUSY.
 *
 * The values are read from the store by blob id, so a batch replays the
 * bytes it committed even if a later batch (queued behind it) changed them
 * again; that later batch then replays its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#define FUSE_USE_VERSION 312
#include <fuse_log.h>

#include <gitkv/error.h>
#include <gitkv/thread.h>
#include <gitkv/key.h>

#include "replay.h"

#define FUSE_SUPER_MAGIC 0x65735546

/* One change to replay. */
struct step {
	char *path;
	gitkv_entry old, new;
	bool done; /* replayed (or handed to the fallback); protected by the lock */
};

/* A copied batch. */
struct batch {
	struct batch *next;
	struct step *steps;
	size_t count;
	size_t *order; /* step indexes sorted by path, then by index */
};

struct fs_replay {
	gitkv_store *store;		/* immutable */
	fs_replay_fallback_fn fallback; /* immutable */
	void *payload;			/* immutable */
	char *mountpoint;		/* set by start() before the thread exists */
	int root;	      /* the replay thread's: the mount's root during a batch, or -1 */
	pid_t tid;	      /* the thread's id, 0 when none; atomic */
	pthread_t thread;     /* main thread only */
	bool started, joined; /* main thread only */

	pthread_mutex_t lock; /* guards the fields below and every step's `done` */
	pthread_cond_t cond;  /* signalled on a push and on stop */
	struct batch *head, *tail;
	struct batch *current; /* being replayed: the view */
	bool stopping;
	uint64_t batches, steps, fallbacks; /* atomics: what was replayed */
};

/* ---- batches ----------------------------------------------------------------------------- */

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->count; i++)
		free(b->steps[i].path);
	free(b->steps);
	free(b->order);
	free(b);
}

static int cmp_order(const void *a, const void *b, void *arg)
{
	const struct step *steps = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	int c = strcmp(steps[i].path, steps[j].path);

	if (c)
		return c;
	return i < j ? -1 : i > j;
}

/* A copy of the replayable changes of `batch`; NULL if none or out of memory. */
static struct batch *batch_copy(const gitkv_change_batch *batch, bool *oom)
{
	struct batch *b = calloc(1, sizeof(*b));

	*oom = true;
	if (!b)
		return NULL;
	if (!(b->steps = calloc(batch->count, sizeof(*b->steps))) ||
	    !(b->order = calloc(batch->count, sizeof(*b->order))))
		goto fail;
	for (size_t i = 0; i < batch->count; i++) {
		const gitkv_change *c = &batch->changes[i];
		struct step *s = &b->steps[b->count];

		if (!*c->path || gitkv_key_is_reserved(c->path))
			continue;
		if (!(s->path = strdup(c->path)))
			goto fail;
		s->old = c->old;
		s->new = c->new;
		b->order[b->count] = b->count;
		b->count++;
	}
	*oom = false;
	if (!b->count)
		goto fail;
	qsort_r(b->order, b->count, sizeof(*b->order), cmp_order, b->steps);
	return b;
fail:
	batch_free(b);
	return NULL;
}

/* ---- the view ------------------------------------------------------------------------------ */

bool fs_replay_view(struct fs_replay *r, const char *path, gitkv_entry *out)
{
	struct batch *b;
	size_t lo = 0, hi;
	bool found = false;

	if (!r)
		return false;
	pthread_mutex_lock(&r->lock);
	b = r->current;
	hi = b ? b->count : 0;
	/* the first step of `path` in sorted order */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(b->steps[b->order[mid]].path, path) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; b && lo < b->count; lo++) {
		const struct step *s = &b->steps[b->order[lo]];

		if (strcmp(s->path, path) != 0)
			break;
		if (!found)
			*out = s->old;
		found = true;
		if (s->done)
			*out = s->new;
	}
	pthread_mutex_unlock(&r->lock);
	return found;
}

bool fs_replay_is_own(struct fs_replay *r, pid_t pid)
{
	return r && pid > 0 && pid == __atomic_load_n(&r->tid, __ATOMIC_ACQUIRE);
}

/* ---- steps ------------------------------------------------------------------------------------
 */

enum kind { KIND_NONE, KIND_VALUE, KIND_LINK, KIND_DIR };

static enum kind kind_of(gitkv_type t)
{
	switch (t) {
	case GITKV_TYPE_FILE:
	case GITKV_TYPE_EXEC:
		return KIND_VALUE;
	case GITKV_TYPE_LINK:
		return KIND_LINK;
	case GITKV_TYPE_DIR:
		return KIND_DIR;
	default:
		return KIND_NONE;
	}
}

static mode_t perm_of(gitkv_type t)
{
	return t == GITKV_TYPE_EXEC ? 0755 : 0644;
}

/* Read the blob of `s->new`; 0 or an errno. */
static int read_new(struct fs_replay *r, const struct step *s, char **data, size_t *len)
{
	int code = gitkv_store_read_blob(r->store, &s->new.oid, data, len);

	if (code < 0) {
		fuse_log(FUSE_LOG_ERR, "gitkvfs: cannot read the new value of '%s': %s\n", s->path,
			 gitkv_error_last());
		return gitkv_error_errno(code);
	}
	return 0;
}

/* open(O_TRUNC), write, close: IN_MODIFY and IN_CLOSE_WRITE (IN_CREATE if new). */
static int write_value(struct fs_replay *r, const struct step *s)
{
	char *data = NULL;
	size_t len = 0, off = 0;
	ssize_t n;
	int fd, err;

	if ((err = read_new(r, s, &data, &len)) != 0)
		return err;
	fd = openat(r->root, s->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		    perm_of(s->new.type));
	if (fd < 0) {
		err = errno;
		goto out;
	}
	while (off < len) {
		n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			break;
		}
		off += (size_t)n;
	}
	if (close(fd) < 0 && !err && errno != EINTR)
		err = errno;
out:
	free(data);
	return err;
}

static int make_link(struct fs_replay *r, const struct step *s)
{
	char *target = NULL;
	size_t len;
	int err = read_new(r, s, &target, &len);

	if (!err && symlinkat(target, r->root, s->path) < 0)
		err = errno;
	free(target);
	return err;
}

/*
 * Perform one change through the mount; 0 or an errno. What is there goes
 * first when the kind changes (and a symlink is made anew, there being no
 * way to rewrite one in place); then the new state is made.
 */
static int replay_step(struct fs_replay *r, const struct step *s)
{
	enum kind ok = kind_of(s->old.type), nk = kind_of(s->new.type);

	if (ok != KIND_NONE && (ok != nk || ok == KIND_LINK) &&
	    unlinkat(r->root, s->path, ok == KIND_DIR ? AT_REMOVEDIR : 0) < 0)
		return errno;
	switch (nk) {
	case KIND_NONE:
		return 0;
	case KIND_DIR:
		if (ok != KIND_DIR && mkdirat(r->root, s->path, 0755) < 0)
			return errno;
		return 0;
	case KIND_LINK:
		return make_link(r, s);
	case KIND_VALUE:
		break;
	}
	if (ok != KIND_VALUE || !gitkv_oid_equal(&s->old.oid, &s->new.oid)) {
		int err = write_value(r, s);

		if (err)
			return err;
	}
	if (ok == KIND_VALUE &&
	    s->old.type != s->new.type &&fchmodat(r->root, s->path, perm_of(s->new.type), 0) < 0)
		return errno;
	return 0;
}

/* ---- the thread ---------------------------------------------------------------------------------
 */

/*
 * Open the mount's root for a batch; false (logged at debug level: it
 * happens when the mount goes away) if it is not a FUSE mount any more.
 */
static bool open_root(struct fs_replay *r)
{
	struct statfs sf;
	int fd = open(r->mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0 || fstatfs(fd, &sf) < 0)
		err = errno;
	else if (sf.f_type != FUSE_SUPER_MAGIC)
		err = ENOTCONN;
	if (err) {
		fuse_log(FUSE_LOG_DEBUG,
			 "gitkvfs: cannot open the mount '%s' to replay changes: %s\n",
			 r->mountpoint, strerror(err));
		if (fd >= 0)
			close(fd);
		return false;
	}
	r->root = fd;
	return true;
}

static bool stopping(struct fs_replay *r)
{
	bool s;

	pthread_mutex_lock(&r->lock);
	s = r->stopping;
	pthread_mutex_unlock(&r->lock);
	return s;
}

static void replay_batch(struct fs_replay *r, struct batch *b)
{
	open_root(r);
	for (size_t i = 0; i < b->count; i++) {
		struct step *s = &b->steps[i];
		int err;

		if (stopping(r))
			break;
		err = r->root < 0 ? ENOTCONN : replay_step(r, s);
		__atomic_fetch_add(err ? &r->fallbacks : &r->steps, 1, __ATOMIC_RELAXED);
		if (err) {
			fuse_log(FUSE_LOG_DEBUG,
				 "gitkvfs: cannot replay the change of '%s' through the mount: %s; "
				 "invalidating it instead\n",
				 s->path, strerror(err));
			r->fallback(r->payload, s->path);
		}
		pthread_mutex_lock(&r->lock);
		s->done = true;
		pthread_mutex_unlock(&r->lock);
	}
	if (r->root >= 0)
		close(r->root);
	r->root = -1;
	__atomic_fetch_add(&r->batches, 1, __ATOMIC_RELAXED);
}

void fs_replay_counters(struct fs_replay *r, uint64_t *batches, uint64_t *steps,
			uint64_t *fallbacks)
{
	*batches = r ? __atomic_load_n(&r->batches, __ATOMIC_RELAXED) : 0;
	*steps = r ? __atomic_load_n(&r->steps, __ATOMIC_RELAXED) : 0;
	*fallbacks = r ? __atomic_load_n(&r->fallbacks, __ATOMIC_RELAXED) : 0;
}

static void *replay_main(void *arg)
{
	struct fs_replay *r = arg;
	struct batch *b;

	__atomic_store_n(&r->tid, gettid(), __ATOMIC_RELEASE);
	pthread_mutex_lock(&r->lock);
	for (;;) {
		while (!r->head && !r->stopping)
			pthread_cond_wait(&r->cond, &r->lock);
		if (r->stopping)
			break;
		b = r->head;
		r->head = b->next;
		if (!r->head)
			r->tail = NULL;
		r->current = b;
		pthread_mutex_unlock(&r->lock);

		replay_batch(r, b);

		pthread_mutex_lock(&r->lock);
		r->current = NULL;
		pthread_mutex_unlock(&r->lock);
		batch_free(b);
		pthread_mutex_lock(&r->lock);
	}
	pthread_mutex_unlock(&r->lock);
	__atomic_store_n(&r->tid, 0, __ATOMIC_RELEASE);
	return NULL;
}

/* ---- lifecycle
 * ------------------------------------------------------------------------------------ */

int fs_replay_new(struct fs_replay **out, gitkv_store *store, fs_replay_fallback_fn fallback,
		  void *payload)
{
	struct fs_replay *r = calloc(1, sizeof(*r));

	if (!r)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	r->store = store;
	r->fallback = fallback;
	r->payload = payload;
	r->root = -1;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	*out = r;
	return 0;
}

int fs_replay_start(struct fs_replay *r, const char *mountpoint)
{
	int err;

	if (!(r->mountpoint = strdup(mountpoint)))
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	if ((err = gitkv_thread_start(&r->thread, replay_main, r, "replay")) < 0)
		return err;
	r->started = true;
	return 0;
}

void fs_replay_push(struct fs_replay *r, const gitkv_change_batch *batch)
{
	struct batch *b;
	bool oom;

	if (!batch->count)
		return;
	b = batch_copy(batch, &oom);
	if (!b) {
		if (oom)
			fuse_log(FUSE_LOG_ERR, "gitkvfs: out of memory: %zu changes not replayed\n",
				 batch->count);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (r->stopping) {
		pthread_mutex_unlock(&r->lock);
		batch_free(b);
		return;
	}
	if (r->tail)
		r->tail->next = b;
	else
		r->head = b;
	r->tail = b;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

bool fs_replay_stop(struct fs_replay *r, int timeout_ms)
{
	struct batch *b, *next;
	struct timespec deadline;

	if (!r)
		return true;
	pthread_mutex_lock(&r->lock);
	r->stopping = true;
	b = r->head;
	r->head = r->tail = NULL;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	for (; b; b = next) {
		next = b->next;
		batch_free(b);
	}
	if (!r->started || r->joined)
		return true;
	if (timeout_ms < 0) {
		r->joined = pthread_join(r->thread, NULL) == 0;
		return r->joined;
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	r->joined = pthread_timedjoin_np(r->thread, NULL, &deadline) == 0;
	return r->joined;
}

void fs_replay_free(struct fs_replay *r)
{
	if (!r)
		return;
	fs_replay_stop(r, -1);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	free(r->mountpoint);
	free(r);
}
