/*
 * sync.c - the sync workloads: how long a change takes to reach another
 * mount, and what one sync round costs.
 *
 *   7  propagation   Two daemons, A and B, on two stores that both sync with
 *                    one bare remote on this disk (a star). A key is
 *                    rewritten on A (open(O_TRUNC)+write+close); timed from
 *                    that close() returning until inotify on B's mount
 *                    reports IN_CLOSE_WRITE for the key (the whole value
 *                    is there; it is read back and checked); the note
 *                    says which event came first (IN_MODIFY, from the
 *                    replay's O_TRUNC) and how much earlier.
 *                    One pair with sync_interval=1, one with 5, each on its
 *                    own thread, both at once. Before each write a pair
 *                    waits a random time, up to its interval: otherwise
 *                    every write would land at the same point of B's round
 *                    cycle (B runs a round just after bringing a change
 *                    in) and the figure would be that point, not a latency.
 *
 *   8  sync round    Stores of 1,000 .. 100,000 keys, each in step with its
 *                    own bare remote. In-process, with the sync engine of
 *                    gitkv_sync linked in (sync_engine_round waits for one
 *                    round): a round that brings in one key changed on the
 *                    remote (fetch, integrate, the change stream), a round
 *                    with nothing new, and the push of one local commit
 *                    (gitkv_remote_push, which a round calls). Through a
 *                    daemon: SIGUSR1 until inotify on the mount reports the
 *                    remote's change (fetch, integrate and the replay).
 *                    A cost that grows with the number of keys means that
 *                    something walks the whole tree.
 *
 * Everything here is on the main thread except the two propagation pairs,
 * which touch only their own struct and report failures through it.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <gitkv/error.h>
#include <gitkv/remote.h>
#include <gitkv/store.h>
#include <gitkv_sync/engine.h>
#include <json-c/json.h>

#include "bench.h"

#define SEQ_STRIDE    1000003L /* prime: (i * STRIDE + off) % keys visits distinct keys */
#define MOUNT_TIMEOUT 120.0
#define SYNC_FOREVER  86400 /* sync_interval: no round unless asked */
#define ROUND_TIMEOUT 60000 /* ms: one round, at most */
#define WATCH_EVENTS  (IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO)
#define SETTLE_NS     150000000LL /* after a change came in: the round it kicks */

/* ---- small helpers ------------------------------------------------------------ */

/* A deterministic generator (splitmix64): the same delays every run. */
static double uniform01(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return (double)(z >> 11) / 9007199254740992.0;
}

/* Sleep `ns`, in slices, ending early on a stop request. */
static void nap(int64_t ns)
{
	int64_t end = bench_now_ns() + ns;

	while (!bench_stopping()) {
		int64_t left = end - bench_now_ns();

		if (left <= 0)
			break;
		bench_sleep_ns(left < 100000000 ? left : 100000000);
	}
}

/* open+read+close; the bytes read, or -1 with errno. */
static ssize_t read_value(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t got;
	int saved;

	if (fd < 0)
		return -1;
	got = read(fd, buf, size);
	saved = errno;
	close(fd);
	errno = saved;
	return got;
}

/* open(O_TRUNC)+write+close, as an application saves a key; 0 or errno. */
static int write_value(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC), err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, value, BENCH_VALUE_LEN) != BENCH_VALUE_LEN)
		err = errno ? errno : EIO;
	if (close(fd) < 0 && !err)
		err = errno;
	return err;
}

/* Discard the events queued on a non-blocking inotify descriptor. */
static void drain_events(int fd)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));

	while (read(fd, buf, sizeof(buf)) > 0)
		;
}

static const char *event_name(uint32_t mask)
{
	if (mask & IN_MODIFY)
		return "IN_MODIFY";
	if (mask & IN_CLOSE_WRITE)
		return "IN_CLOSE_WRITE";
	if (mask & IN_CREATE)
		return "IN_CREATE";
	if (mask & IN_MOVED_TO)
		return "IN_MOVED_TO";
	return "?";
}

/* What one wait for a replayed change saw, in ns after `start`. */
struct arrival {
	int64_t first_ns;    /* the first event naming the key */
	uint32_t first_mask; /* and what it was */
	int64_t done_ns;     /* IN_CLOSE_WRITE (or IN_MOVED_TO), the value read back right */
	uint32_t done_mask;
};

/*
 * Wait on the inotify descriptor `fd` (watching the key's directory) until
 * IN_CLOSE_WRITE (or IN_MOVED_TO, for a replay that renames a new file
 * over the key) names `name` and `path` then reads `want`. Each event is
 * stamped when read() hands it over. 0, or -1 with the reason in `why`.
 */
static int wait_replayed(int fd, const char *name, const char *path, const char *want,
			 int64_t start, int64_t timeout_ns, struct arrival *a, char *why,
			 size_t whysize)
{
	char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
	char seen[64] = "nothing";

	a->first_ns = a->done_ns = -1;
	a->first_mask = a->done_mask = 0;
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = start + timeout_ns - bench_now_ns(), now;
		ssize_t got;

		if (bench_stopping()) {
			snprintf(why, whysize, "interrupted");
			return -1;
		}
		if (left <= 0) {
			snprintf(why, whysize,
				 "%s: no IN_CLOSE_WRITE with the new value within %.0f s (read %s)",
				 path, (double)timeout_ns / 1e9, seen);
			return -1;
		}
		if (poll(&pfd, 1, left > 100000000 ? 100 : (int)(left / 1000000) + 1) <= 0)
			continue;
		got = read(fd, buf, sizeof(buf));
		now = bench_now_ns();
		for (char *p = buf; got > 0 && p < buf + got;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			char value[4096];
			ssize_t n;

			p += sizeof(*ev) + ev->len;
			if (!ev->len || strcmp(ev->name, name) != 0 || !(ev->mask & WATCH_EVENTS))
				continue;
			if (a->first_ns < 0) {
				a->first_ns = now - start;
				a->first_mask = ev->mask;
			}
			if (!(ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO)))
				continue;
			n = read_value(path, value, sizeof(value));
			if (n == BENCH_VALUE_LEN && memcmp(value, want, BENCH_VALUE_LEN) == 0) {
				a->done_ns = now - start;
				a->done_mask = ev->mask;
				return 0;
			}
			/* not (yet) ours: an older replay; keep waiting */
			snprintf(seen, sizeof(seen), "\"%.*s\"", n > 0 && n < 40 ? (int)n - 1 : 0,
				 value);
		}
	}
}

/* Split a key into the directory below `mnt` and the last component. */
static int key_place(const char *mnt, const char *key, char *dir, size_t dsize, char *base,
		     size_t bsize)
{
	const char *slash = strrchr(key, '/');
	int dirlen = slash ? (int)(slash - key) : 0;

	if (bench_path(dir, dsize, "%s%s%.*s", mnt, slash ? "/" : "", dirlen, key) < 0 ||
	    bench_path(base, bsize, "%s", slash ? slash + 1 : key) < 0)
		return -1;
	return 0;
}

/* ---- 7: propagation ----------------------------------------------------------- */

struct pair {
	int interval;	 /* sync_interval= of both daemons, seconds */
	long want;	 /* changes to time */
	double budget_s; /* no new change once this has passed (one at least) */
	struct tree tree;
	long key;
	char remote[4096], store_a[4096], store_b[4096];
	char path_a[8192], path_b[8192], dir_b[8192], base[256];
	struct bench_mount a, b;
	int ifd;
	uint64_t rng;
	long gen;
	struct samples done, ahead;	/* close: the value is in; ahead: first event's lead */
	uint32_t first_mask, done_mask; /* the events of the first change */
	long other_first;		/* changes whose first event was another */
	pthread_t thread;
	bool started;
	char error[512]; /* set by the thread; reported by the main thread */
};

static int pair_setup(struct pair *p, int interval, long want, double budget_s)
{
	char key[128], mnt[4096], opts[256];

	memset(p, 0, sizeof(*p));
	p->ifd = -1;
	p->interval = interval;
	p->want = want;
	p->budget_s = budget_s;
	p->rng = 0x5eed0000ULL + (uint64_t)interval;
	tree_init(&p->tree, TREE_HIER, 1000);
	p->key = 0;
	tree_key(&p->tree, p->key, key, sizeof(key));
	if (bench_path(p->remote, sizeof(p->remote), "%s/prop%d-remote.git", bench.root, interval) <
		0 ||
	    bench_path(p->store_a, sizeof(p->store_a), "%s/prop%d-a.git", bench.root, interval) <
		0 ||
	    bench_path(p->store_b, sizeof(p->store_b), "%s/prop%d-b.git", bench.root, interval) <
		0 ||
	    bench_path(opts, sizeof(opts), "remote=%s,sync_interval=%d", p->remote, interval) < 0)
		return -1;
	/* the same tree built the same way: the same commit, so all three start in step */
	if (tree_build_store(&p->tree, p->remote) < 0 ||
	    tree_build_store(&p->tree, p->store_a) < 0 ||
	    tree_build_store(&p->tree, p->store_b) < 0)
		return -1;
	if (bench_path(mnt, sizeof(mnt), "%s/mnt-prop%d-a", bench.root, interval) < 0)
		return -1;
	mount_init(&p->a, p->store_a, mnt, opts);
	if (bench_path(mnt, sizeof(mnt), "%s/mnt-prop%d-b", bench.root, interval) < 0)
		return -1;
	mount_init(&p->b, p->store_b, mnt, opts);
	if (bench_path(p->path_a, sizeof(p->path_a), "%s/%s", p->a.mnt, key) < 0 ||
	    bench_path(p->path_b, sizeof(p->path_b), "%s/%s", p->b.mnt, key) < 0 ||
	    key_place(p->b.mnt, key, p->dir_b, sizeof(p->dir_b), p->base, sizeof(p->base)) < 0)
		return -1;
	if (mount_start(&p->a, MOUNT_TIMEOUT, NULL) < 0 ||
	    mount_start(&p->b, MOUNT_TIMEOUT, NULL) < 0)
		return -1;
	p->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (p->ifd < 0 || inotify_add_watch(p->ifd, p->dir_b, WATCH_EVENTS) < 0) {
		bench_fail("inotify on %s: %s", p->dir_b, strerror(errno));
		return -1;
	}
	return 0;
}

static void *pair_main(void *arg)
{
	struct pair *p = arg;
	int64_t begin = bench_now_ns(), timeout = (4LL * p->interval + 20) * 1000000000LL;

	for (long i = 0; i < p->want && !bench_stopping(); i++) {
		char value[BENCH_VALUE_LEN];
		struct arrival a;
		/* a random point of B's round cycle */
		int64_t delay = (int64_t)(uniform01(&p->rng) * (double)p->interval * 1e9), start;
		int err;

		if (i > 0 && (double)(bench_now_ns() + delay - begin) / 1e9 > p->budget_s)
			break;
		nap(delay);
		if (bench_stopping())
			break;
		drain_events(p->ifd);
		tree_value(p->key, ++p->gen, value);
		err = write_value(p->path_a, value);
		start = bench_now_ns();
		if (err) {
			bench_text(p->error, sizeof(p->error), "writing %s: %s", p->path_a,
				   strerror(err));
			break;
		}
		if (wait_replayed(p->ifd, p->base, p->path_b, value, start, timeout, &a, p->error,
				  sizeof(p->error)) < 0)
			break;
		if (samples_add(&p->done, a.done_ns) < 0 ||
		    samples_add(&p->ahead, a.done_ns - a.first_ns) < 0) {
			snprintf(p->error, sizeof(p->error), "out of memory");
			break;
		}
		if (i == 0) {
			p->first_mask = a.first_mask;
			p->done_mask = a.done_mask;
		} else if (strcmp(event_name(a.first_mask), event_name(p->first_mask)) != 0) {
			p->other_first++;
		}
	}
	return NULL;
}

static void pair_rows(struct pair *p)
{
	char subject[64], of[48], first[64];
	struct row *r;

	snprintf(subject, sizeof(subject), "sync_interval=%d, %s on B", p->interval,
		 event_name(p->done_mask));
	if (!p->done.n || !(r = report_row(subject)))
		return;
	report_fill(r, &p->done);
	r->ops = NAN;
	snprintf(of, sizeof(of), "median / sync_interval (%d s)", p->interval);
	report_ratio(r, r->median / (p->interval * 1e9), of);
	snprintf(r->ratio_fmt, sizeof(r->ratio_fmt), "%%.2fx intvl");
	if (p->other_first)
		snprintf(first, sizeof(first), "%s but %ld times", event_name(p->first_mask),
			 p->other_first);
	else
		snprintf(first, sizeof(first), "%s every time", event_name(p->first_mask));
	bench_text(r->note, sizeof(r->note),
		   "value read back each time; first event %s, %.0f us before (median; p99 "
		   "%.0f us)",
		   first, samples_pct(&p->ahead, 50) / 1e3, samples_pct(&p->ahead, 99) / 1e3);
}

int workload_propagation(void)
{
	/* quick: few changes, and a time bound the interval-5 pair reaches first */
	long want1 = bench.quick ? 10 : 300, want5 = bench.quick ? 3 : 100;
	double budget = bench.quick ? 6 : 1800;
	struct pair pairs[2];
	int err = 0;

	memset(pairs, 0, sizeof(pairs));
	pairs[0].ifd = pairs[1].ifd = -1;
	bench_note("7 propagation: building 2 x 3 stores of 1000 keys, mounting 2 pairs");
	if (pair_setup(&pairs[0], 1, want1, budget) < 0 ||
	    pair_setup(&pairs[1], 5, want5, budget) < 0)
		err = -1;
	if (!err) {
		bench_note("7 propagation: %ld changes at sync_interval=1 and %ld at 5, together",
			   want1, want5);
		for (int i = 0; i < 2 && !err; i++) {
			if (pthread_create(&pairs[i].thread, NULL, pair_main, &pairs[i]) != 0) {
				bench_fail("cannot start a propagation thread");
				err = -1;
			} else {
				pairs[i].started = true;
			}
		}
	}
	for (int i = 0; i < 2; i++) {
		if (pairs[i].started)
			pthread_join(pairs[i].thread, NULL);
		if (pairs[i].error[0] && !bench_stopping()) {
			bench_fail("7 propagation, sync_interval=%d: %s", pairs[i].interval,
				   pairs[i].error);
			err = -1;
		}
	}
	if (!err && !bench_stopping()) {
		report_section("7 propagation: close() of a write on A until inotify on B "
			       "(star, sync_interval=N)");
		for (int i = 0; i < 2; i++)
			pair_rows(&pairs[i]);
	}
	for (int i = 0; i < 2; i++) {
		if (pairs[i].ifd >= 0)
			close(pairs[i].ifd);
		if (mount_stop(&pairs[i].a) < 0 || mount_stop(&pairs[i].b) < 0)
			err = -1;
		samples_free(&pairs[i].done);
		samples_free(&pairs[i].ahead);
	}
	return err ? -1 : 0;
}

/* ---- 8: the cost of a round ------------------------------------------------------ */

struct round_store {
	struct tree tree;
	char name[16];
	char local[4096], remote[4096];
	gitkv_store *ls, *rs;
	sync_engine *engine;
	bool subscribed;
	struct bench_mount daemon;
	int ifd;
	long next, gen;
	struct samples fetch, idle, push, replay;
	long batches, paths; /* counted by the change subscriber (engine thread) */
	long fetch_batches, fetch_paths, idle_batches;
	struct row *rows[4];
};

#define MAX_ROUND_SIZES 3
static struct round_store rounds[MAX_ROUND_SIZES];
static size_t nrounds;

/* The change stream of the local store: what a round delivers to fs/. */
static void count_changes(const gitkv_change_batch *batch, void *payload)
{
	struct round_store *st = payload;

	__atomic_add_fetch(&st->batches, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->paths, (long)batch->count, __ATOMIC_RELAXED);
}

static long load(const long *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

/* The next key to change and its new value. */
static void next_change(struct round_store *st, char *key, size_t size, char value[BENCH_VALUE_LEN])
{
	long k = (st->next++ * SEQ_STRIDE + 17) % st->tree.keys;

	tree_key(&st->tree, k, key, size);
	tree_value(k, ++st->gen, value);
}

static int store_fail(const char *what, const struct round_store *st)
{
	bench_fail("8 sync round, %s keys: %s: %s", st->name, what, gitkv_error_last());
	return -1;
}

/* Did the last round of the engine go wrong? Then say why. */
static int engine_check(struct round_store *st, uint64_t failures_before)
{
	uint64_t r, f, c;
	sync_remote_status rs;

	sync_engine_counters(st->engine, &r, &f, &c);
	if (f == failures_before)
		return 0;
	sync_engine_status(st->engine, &rs, 1);
	bench_fail("8 sync round, %s keys: the round failed: %s", st->name, rs.last_error);
	return -1;
}

static int round_open(struct round_store *st, long keys)
{
	gitkv_store_options lo = GITKV_STORE_OPTIONS_INIT, ro = GITKV_STORE_OPTIONS_INIT;
	sync_remote remote = {.name = "r1", .url = st->remote};
	sync_options so = {0};
	int64_t t0 = bench_now_ns();

	memset(st, 0, sizeof(*st));
	st->ifd = -1;
	tree_init(&st->tree, TREE_HIER, keys);
	tree_size_label(keys, st->name, sizeof(st->name));
	if (bench_path(st->local, sizeof(st->local), "%s/round-%s.git", bench.root, st->name) < 0 ||
	    bench_path(st->remote, sizeof(st->remote), "%s/round-%s-remote.git", bench.root,
		       st->name) < 0)
		return -1;
	bench_note("8 sync round: building a store of %s keys and its remote", st->name);
	if (tree_build_store(&st->tree, st->local) < 0 ||
	    tree_build_store(&st->tree, st->remote) < 0)
		return -1;
	lo.node = "bench-local";
	ro.node = "bench-remote";
	if (gitkv_store_open(&st->ls, st->local, &lo) < 0 ||
	    gitkv_store_open(&st->rs, st->remote, &ro) < 0)
		return store_fail("opening the stores", st);
	if (gitkv_store_subscribe(st->ls, count_changes, st) < 0)
		return store_fail("subscribing", st);
	st->subscribed = true;
	so.remotes = &remote;
	so.nremotes = 1;
	so.interval_s = SYNC_FOREVER; /* rounds only when asked */
	so.debounce_ms = 1;	      /* the round a change kicks comes at once: see below */
	so.remote = (gitkv_remote_options)GITKV_REMOTE_OPTIONS_INIT;
	so.remote.timeout_s = 30;
	if (sync_engine_start(&st->engine, st->ls, &so) < 0)
		return store_fail("starting the sync engine", st);
	/* the engine starts with a round; let it pass */
	if (sync_engine_round(st->engine, ROUND_TIMEOUT) < 0)
		return store_fail("the first round", st);
	bench_note("8 sync round: %s keys ready in %.1f s", st->name,
		   (double)(bench_now_ns() - t0) / 1e9);
	return 0;
}

/*
 * A round that brought a change in moved HEAD, and every HEAD movement
 * kicks the engine: one more round follows (nothing new). Let it pass, so
 * that it is not inside the next timed round.
 */
static void round_settle(struct round_store *st, uint64_t after)
{
	int64_t end = bench_now_ns() + 2000000000LL;
	uint64_t r, f, c;

	do {
		sync_engine_counters(st->engine, &r, &f, &c);
		if (r > after)
			return;
		bench_sleep_ns(200000);
	} while (bench_now_ns() < end && !bench_stopping());
}

/* One remote change brought in by a round, then a round with nothing new. */
static int round_pair(struct round_store *st)
{
	char key[128], value[BENCH_VALUE_LEN], *buf = NULL;
	uint64_t r0, f0, c0, r1, f1, c1;
	long batches, paths;
	size_t len = 0;
	int64_t t0, ns;
	int err;

	next_change(st, key, sizeof(key), value);
	if (gitkv_store_set(st->rs, key, value, BENCH_VALUE_LEN, NULL, NULL) < 0)
		return store_fail("changing the remote", st);
	sync_engine_counters(st->engine, &r0, &f0, &c0);
	batches = load(&st->batches);
	paths = load(&st->paths);
	t0 = bench_now_ns();
	err = sync_engine_round(st->engine, ROUND_TIMEOUT);
	ns = bench_now_ns() - t0;
	if (err < 0)
		return store_fail("a round", st);
	if (engine_check(st, f0) < 0)
		return -1;
	samples_add(&st->fetch, ns);
	st->fetch_batches += load(&st->batches) - batches;
	st->fetch_paths += load(&st->paths) - paths;
	/* the change is in the local store */
	if (gitkv_store_get(st->ls, key, &buf, &len, NULL) < 0 || len != BENCH_VALUE_LEN ||
	    memcmp(buf, value, BENCH_VALUE_LEN) != 0) {
		free(buf);
		bench_fail("8 sync round, %s keys: %s did not arrive with its new value", st->name,
			   key);
		return -1;
	}
	free(buf);
	sync_engine_counters(st->engine, &r1, &f1, &c1);
	round_settle(st, r1);

	sync_engine_counters(st->engine, &r0, &f0, &c0);
	batches = load(&st->batches);
	t0 = bench_now_ns();
	err = sync_engine_round(st->engine, ROUND_TIMEOUT);
	ns = bench_now_ns() - t0;
	if (err < 0)
		return store_fail("a round", st);
	if (engine_check(st, f0) < 0)
		return -1;
	samples_add(&st->idle, ns);
	st->idle_batches += load(&st->batches) - batches;
	return 0;
}

/* The push of one local commit, as a round does it after the fetch. */
static int round_push(struct round_store *st)
{
	gitkv_remote_options ro = GITKV_REMOTE_OPTIONS_INIT;
	char key[128], value[BENCH_VALUE_LEN];
	gitkv_result res;
	int64_t t0, ns;

	next_change(st, key, sizeof(key), value);
	if (gitkv_store_set(st->ls, key, value, BENCH_VALUE_LEN, NULL, &res) < 0)
		return store_fail("a local commit", st);
	t0 = bench_now_ns();
	if (gitkv_remote_push(st->ls, "r1", st->remote, &res.commit, &ro) < 0)
		return store_fail("pushing", st);
	ns = bench_now_ns() - t0;
	samples_add(&st->push, ns);
	return 0;
}

/* Has the daemon's first round (it starts with one) finished? From its status. */
static bool daemon_synced(const struct bench_mount *m)
{
	char path[8192];
	json_object *doc, *remotes, *r0, *push;
	bool done = false;

	snprintf(path, sizeof(path), "%s/.gitkv/status", m->mnt);
	doc = json_object_from_file(path);
	if (!doc)
		return false;
	if (json_object_object_get_ex(doc, "remotes", &remotes) &&
	    json_object_is_type(remotes, json_type_array) &&
	    json_object_array_length(remotes) > 0 && (r0 = json_object_array_get_idx(remotes, 0)) &&
	    json_object_object_get_ex(r0, "last_push", &push) && push &&
	    !json_object_is_type(push, json_type_null))
		done = true;
	json_object_put(doc);
	return done;
}

static int daemon_start(struct round_store *st)
{
	char mnt[4096], opts[256];
	int64_t end;

	if (bench_path(mnt, sizeof(mnt), "%s/mnt-round-%s", bench.root, st->name) < 0 ||
	    bench_path(opts, sizeof(opts), "remote=%s,sync_interval=%d", st->remote, SYNC_FOREVER) <
		0)
		return -1;
	mount_init(&st->daemon, st->local, mnt, opts);
	if (mount_start(&st->daemon, MOUNT_TIMEOUT, NULL) < 0)
		return -1;
	end = bench_now_ns() + 30000000000LL;
	while (!daemon_synced(&st->daemon)) {
		if (bench_now_ns() > end || bench_stopping()) {
			if (!bench_stopping())
				bench_fail("8 sync round: the daemon of %s made no round in 30 s",
					   st->daemon.mnt);
			return -1;
		}
		bench_sleep_ns(10000000);
	}
	nap(SETTLE_NS);
	st->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (st->ifd < 0) {
		bench_fail("inotify_init1: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* SIGUSR1 to the daemon, until inotify on its mount reports the remote's change. */
static int round_replay(struct round_store *st)
{
	char key[128], value[BENCH_VALUE_LEN], dir[8192], base[256], path[8192], why[512];
	struct arrival a;
	int64_t start;
	int wd;

	next_change(st, key, sizeof(key), value);
	if (key_place(st->daemon.mnt, key, dir, sizeof(dir), base, sizeof(base)) < 0 ||
	    bench_path(path, sizeof(path), "%s/%s", st->daemon.mnt, key) < 0)
		return -1;
	wd = inotify_add_watch(st->ifd, dir, WATCH_EVENTS);
	if (wd < 0) {
		bench_fail("inotify on %s: %s", dir, strerror(errno));
		return -1;
	}
	if (gitkv_store_set(st->rs, key, value, BENCH_VALUE_LEN, NULL, NULL) < 0) {
		inotify_rm_watch(st->ifd, wd);
		return store_fail("changing the remote", st);
	}
	drain_events(st->ifd);
	start = bench_now_ns();
	if (kill(st->daemon.daemon.pid, SIGUSR1) < 0)
		snprintf(why, sizeof(why), "SIGUSR1: %s", strerror(errno));
	else if (wait_replayed(st->ifd, base, path, value, start, 30000000000LL, &a, why,
			       sizeof(why)) == 0)
		why[0] = '\0';
	inotify_rm_watch(st->ifd, wd);
	if (why[0]) {
		if (!bench_stopping())
			bench_fail("8 sync round, %s keys, daemon: %s", st->name, why);
		return -1;
	}
	samples_add(&st->replay, a.done_ns);
	nap(SETTLE_NS); /* the round the change kicks */
	return 0;
}

static void round_rows(void)
{
	static const char *const what[4] = {"1 remote change", "nothing new", "push 1 commit",
					    "daemon: SIGUSR1 to inotify"};
	char subject[64], of[48];

	report_section("8 sync round: one remote; in-process unless said (a new key each change)");
	for (int w = 0; w < 4; w++) {
		for (size_t i = 0; i < nrounds; i++) {
			struct round_store *st = &rounds[i];
			struct samples *s = w == 0   ? &st->fetch
					    : w == 1 ? &st->idle
					    : w == 2 ? &st->push
						     : &st->replay;
			const struct row *ref = rounds[0].rows[w];
			struct row *r;

			snprintf(subject, sizeof(subject), "%s, %s keys", what[w], st->name);
			if (!s->n || !(r = report_row(subject)))
				continue;
			report_fill(r, s);
			st->rows[w] = r;
			snprintf(of, sizeof(of), "this / %s keys", rounds[0].name);
			if (i > 0 && ref && ref->median > 0)
				report_ratio(r, r->median / ref->median, of);
			if (w == 0)
				snprintf(r->note, sizeof(r->note),
					 "fetch+integrate; %.2f batches, %.2f paths each; %.1fx "
					 "nothing new",
					 (double)st->fetch_batches / (double)s->n,
					 (double)st->fetch_paths / (double)s->n,
					 r->median / samples_pct(&st->idle, 50));
			else if (w == 1)
				snprintf(r->note, sizeof(r->note),
					 "fetch, nothing to integrate, no push; %ld batches",
					 st->idle_batches);
			else if (w == 2)
				snprintf(r->note, sizeof(r->note),
					 "gitkv_remote_push to the bare remote on disk");
			else
				snprintf(r->note, sizeof(r->note),
					 "fetch+integrate+replay, to IN_CLOSE_WRITE on the mount");
		}
	}
}

static void round_close(struct round_store *st)
{
	if (st->ifd >= 0)
		close(st->ifd);
	st->ifd = -1;
	sync_engine_stop(st->engine, 10);
	st->engine = NULL;
	if (st->subscribed)
		gitkv_store_unsubscribe(st->ls, count_changes, st);
	st->subscribed = false;
	gitkv_store_free(st->ls);
	st->ls = NULL;
}

int workload_round(void)
{
	static const long full[] = {1000, 10000, 100000}, quick[] = {1000, 10000};
	const long *sizes = bench.quick ? quick : full;
	size_t nsizes = bench.quick ? 2 : 3;
	long want = bench.quick ? 10 : 100, want_replay = bench.quick ? 5 : 50;
	int64_t end;
	int err = 0;

	nrounds = 0;
	for (size_t i = 0; i < nsizes && !err && !bench_stopping(); i++) {
		err = round_open(&rounds[i], sizes[i]);
		nrounds++;
	}
	/* in turns: each store one change round and one idle round */
	if (!err && !bench_stopping())
		bench_note("8 sync round: %ld rounds with one remote change, %ld with nothing new",
			   want, want);
	end = bench_now_ns() + (int64_t)((bench.quick ? 15 : 300) * 1e9);
	for (long n = 0; n < want && !err && !bench_stopping() && bench_now_ns() < end; n++) {
		for (size_t i = 0; i < nrounds && !err; i++)
			err = round_pair(&rounds[i]);
	}
	/* pushes: with the engine stopped, nothing else pushes the commit */
	for (size_t i = 0; i < nrounds; i++) {
		sync_engine_stop(rounds[i].engine, 10);
		rounds[i].engine = NULL;
	}
	if (!err && !bench_stopping())
		bench_note("8 sync round: %ld pushes of one local commit", want);
	end = bench_now_ns() + (int64_t)((bench.quick ? 10 : 300) * 1e9);
	for (long n = 0; n < want && !err && !bench_stopping() && bench_now_ns() < end; n++) {
		for (size_t i = 0; i < nrounds && !err; i++)
			err = round_push(&rounds[i]);
	}
	/* the daemon: the store is its now */
	for (size_t i = 0; i < nrounds; i++)
		round_close(&rounds[i]);
	for (size_t i = 0; i < nrounds && !err && !bench_stopping(); i++)
		err = daemon_start(&rounds[i]);
	if (!err && !bench_stopping())
		bench_note("8 sync round: %ld rounds through each daemon (SIGUSR1)", want_replay);
	end = bench_now_ns() + (int64_t)((bench.quick ? 15 : 300) * 1e9);
	for (long n = 0; n < want_replay && !err && !bench_stopping() && bench_now_ns() < end;
	     n++) {
		for (size_t i = 0; i < nrounds && !err; i++)
			err = round_replay(&rounds[i]);
	}
	for (size_t i = 0; i < nrounds; i++) {
		if (rounds[i].ifd >= 0)
			close(rounds[i].ifd);
		rounds[i].ifd = -1;
		if (mount_stop(&rounds[i].daemon) < 0)
			err = -1;
	}
	if (!err && !bench_stopping())
		round_rows();
	for (size_t i = 0; i < nrounds; i++) {
		gitkv_store_free(rounds[i].rs);
		rounds[i].rs = NULL;
		samples_free(&rounds[i].fetch);
		samples_free(&rounds[i].idle);
		samples_free(&rounds[i].push);
		samples_free(&rounds[i].replay);
	}
	return err ? -1 : 0;
}
