/*
 * workloads.c - what gitkv-bench measures, each against its baselines.
 *
 * A workload is a set of subjects: gitkvfs and the baselines it is compared
 * with. interleave() runs them in turns (A B C A B C ...), a few operations
 * each, until each has its samples or the workload's time is up, so that
 * whatever else the machine is doing hits every subject alike. Each
 * operation times itself with CLOCK_MONOTONIC (so setup it needs stays out
 * of the figure) and checks what it got: a read must return the bytes
 * written, a write must succeed; anything else is a failure of the run.
 *
 *   1  cached read   open+read+close of a key read before: gitkvfs, disk, tmpfs
 *   2  cold read     first read of keys after a fresh mount (disk: caches
 *                    dropped); and time until a change made by `gitkv set`
 *                    shows through the mount (disk: another process's write)
 *   3  write         open(O_TRUNC)+write+close, a commit per close: gitkvfs,
 *                    disk write+close, disk write+fsync+close, a git CLI
 *                    commit per write, gitkvfs -o fsync
 *   4  concurrency   1, 4, 16 threads writing distinct keys: writes/s, commits/s
 *   5  scale         stores of 1,000 .. 1,000,000 keys and a flat directory:
 *                    mount time, daemon RSS, cached/cold read, write
 *   6  walk          find and ls -R of the whole tree, gitkvfs and disk
 *
 * Workloads 7 and 8, the sync workloads, are in sync.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define SEQ_STRIDE	   1000003L /* prime: (i * STRIDE + off) % keys visits distinct keys */
#define VISIBLE_TIMEOUT_NS (10LL * 1000000000)
#define MOUNT_TIMEOUT	   120.0 /* seconds: a million keys on a slow disk */
#define MAX_WRITERS	   16

/* Keys of the base store with a role (the rest are read cold). */
enum { KEY_CACHED = 0, KEY_VISIBLE = 1, KEY_WRITE = 2, KEY_COLD_FIRST = 3 };

struct subject;
typedef int (*subject_op)(struct subject *s, int64_t *ns);

struct subject {
	const char *name;
	subject_op op;
	long want;	  /* samples to collect */
	int batch;	  /* operations per turn */
	struct samples s; /* latencies, ns */

	const struct tree *tree;
	char dir[4096];	   /* the keys live below: a mount point or a directory */
	const char *store; /* the bare store, for `gitkv set` */
	long key;	   /* single-key operations: which key */
	long next;	   /* multi-key operations: (next * SEQ_STRIDE + offset) % keys */
	long offset;
	long gen; /* generation of the last value written */
	bool fsync;
	const char *argv[8]; /* command operations */
	long expect_lines;
	bool expect_at_least;
	const char *skip_prefix;
	long first_ns; /* the first sample, before samples_pct() sorts them */
};

static int64_t elapsed_since(int64_t start)
{
	return bench_now_ns() - start;
}

/* Run the subjects in turns until each has `want` samples or `budget_s`
 * passed. -1 if an operation failed. */
static int interleave(struct subject *subj, size_t n, double budget_s)
{
	int64_t end = bench_now_ns() + (int64_t)(budget_s * 1e9);

	for (size_t i = 0; i < n; i++)
		subj[i].first_ns = -1;
	while (!bench_stopping()) {
		bool more = false;

		for (size_t i = 0; i < n; i++) {
			struct subject *s = &subj[i];

			for (int b = 0; b < s->batch && (long)s->s.n < s->want; b++) {
				int64_t ns = 0;

				if (s->op(s, &ns) < 0)
					return -1;
				if (s->first_ns < 0)
					s->first_ns = ns;
				if (samples_add(&s->s, ns) < 0) {
					bench_fail("out of memory");
					return -1;
				}
			}
			if ((long)s->s.n < s->want)
				more = true;
		}
		if (!more || bench_now_ns() > end)
			break;
	}
	return bench_stopping() ? -1 : 0;
}

static void subject_free(struct subject *s)
{
	samples_free(&s->s);
}

/* ---- operations ------------------------------------------------------- */

static void key_path(const struct subject *s, long k, char *buf, size_t size)
{
	char key[128];

	tree_key(s->tree, k, key, sizeof(key));
	snprintf(buf, size, "%s/%s", s->dir, key);
}

static long next_key(struct subject *s)
{
	return (s->next++ * SEQ_STRIDE + s->offset) % s->tree->keys;
}

/* open+read+close `path`; -1 with errno, else the bytes read into buf. */
static ssize_t read_file(const char *path, char *buf, size_t size)
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

static int check_read(const char *path, ssize_t got, const char *buf, const char *want)
{
	if (got < 0) {
		bench_fail("reading %s: %s", path, strerror(errno));
		return -1;
	}
	if (got != BENCH_VALUE_LEN || memcmp(buf, want, BENCH_VALUE_LEN) != 0) {
		bench_fail("reading %s: got %zd bytes \"%.*s\", expected \"%.*s\"", path, got,
			   (int)(got > 40 ? 40 : got), buf, BENCH_VALUE_LEN - 1, want);
		return -1;
	}
	return 0;
}

/* Time one open+read+close of key `k` (generation `gen`) and check it. */
static int timed_read(struct subject *s, long k, long gen, int64_t *ns)
{
	char path[8192], buf[4096], want[BENCH_VALUE_LEN];
	int64_t start;
	ssize_t got;

	key_path(s, k, path, sizeof(path));
	tree_value(k, gen, want);
	start = bench_now_ns();
	got = read_file(path, buf, sizeof(buf));
	*ns = elapsed_since(start);
	return check_read(path, got, buf, want);
}

/* The same key again and again (it was read before: it is cached). */
static int op_read_same(struct subject *s, int64_t *ns)
{
	return timed_read(s, s->key, s->gen, ns);
}

/* A different key each time, in a fixed pseudo-random order. */
static int op_read_next(struct subject *s, int64_t *ns)
{
	return timed_read(s, next_key(s), 0, ns);
}

static int write_file(const char *path, const char *value, bool sync)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err = 0;

	if (fd < 0)
		goto fail;
	if (write(fd, value, BENCH_VALUE_LEN) != BENCH_VALUE_LEN)
		err = errno ? errno : EIO;
	if (!err && sync && fsync(fd) < 0)
		err = errno;
	if (close(fd) < 0 && !err)
		err = errno;
	if (!err)
		return 0;
	errno = err;
fail:
	bench_fail("writing %s: %s", path, strerror(errno));
	return -1;
}

/* open(O_TRUNC)+write+close (+fsync) of key `k` with a new value. */
static int timed_write(struct subject *s, long k, int64_t *ns)
{
	char path[8192], value[BENCH_VALUE_LEN];
	int64_t start;
	int err;

	key_path(s, k, path, sizeof(path));
	tree_value(k, ++s->gen, value);
	start = bench_now_ns();
	err = write_file(path, value, s->fsync);
	*ns = elapsed_since(start);
	return err;
}

static int op_write_same(struct subject *s, int64_t *ns)
{
	return timed_write(s, s->key, ns);
}

static int op_write_next(struct subject *s, int64_t *ns)
{
	return timed_write(s, next_key(s), ns);
}

/* The git CLI baseline: change the file in a work tree, commit that file. */
static int op_git_commit(struct subject *s, int64_t *ns)
{
	char key[128], path[8192], value[BENCH_VALUE_LEN];
	const char *argv[] = {"git", "-C",	s->dir, "commit", "-q", "--no-verify",
			      "-m",  "set key", "--",	key,	  NULL};
	int64_t start;
	int status;

	tree_key(s->tree, s->key, key, sizeof(key));
	snprintf(path, sizeof(path), "%s/%s", s->dir, key);
	tree_value(s->key, ++s->gen, value);
	start = bench_now_ns();
	if (write_file(path, value, false) < 0)
		return -1;
	status = proc_run(argv, 60, NULL, 0);
	*ns = elapsed_since(start);
	if (status != 0) {
		bench_fail("git commit in %s: exit status %d", s->dir, status);
		return -1;
	}
	return 0;
}

/* Read `path` until it holds `want`; the time it took, or -1 past the bound. */
static int wait_visible(const char *path, const char *want, int64_t start, int64_t *ns)
{
	char buf[4096];

	for (;;) {
		ssize_t got = read_file(path, buf, sizeof(buf));

		if (got == BENCH_VALUE_LEN && memcmp(buf, want, BENCH_VALUE_LEN) == 0)
			break;
		if (elapsed_since(start) > VISIBLE_TIMEOUT_NS || bench_stopping()) {
			if (!bench_stopping())
				bench_fail("%s did not show the new value within %lld s", path,
					   VISIBLE_TIMEOUT_NS / 1000000000);
			return -1;
		}
		bench_sleep_ns(20000);
	}
	*ns = elapsed_since(start);
	return 0;
}

/* `gitkv -C STORE set KEY VALUE` from outside, then poll the mount. The key
 * was read (cached) by the previous poll. Timed from the CLI's exit. */
static int op_visible_gitkv(struct subject *s, int64_t *ns)
{
	char key[128], path[8192], value[BENCH_VALUE_LEN + 1];
	const char *argv[] = {bench.gitkv, "-C", s->store, "set", key, value, NULL};
	int status;

	tree_key(s->tree, s->key, key, sizeof(key));
	snprintf(path, sizeof(path), "%s/%s", s->dir, key);
	tree_value(s->key, ++s->gen, value);
	value[BENCH_VALUE_LEN] = '\0';
	status = proc_run(argv, 60, NULL, 0);
	if (status != 0) {
		bench_fail("%s set %s: exit status %d", bench.gitkv, key, status);
		return -1;
	}
	return wait_visible(path, value, bench_now_ns(), ns);
}

/* The disk analogue: another process writes the file, then poll it. */
static int op_visible_disk(struct subject *s, int64_t *ns)
{
	char path[8192], value[BENCH_VALUE_LEN];
	int status = 0;
	pid_t pid;

	key_path(s, s->key, path, sizeof(path));
	tree_value(s->key, ++s->gen, value);
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		bench_fail("fork: %s", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		int fd = open(path, O_WRONLY | O_TRUNC);

		_exit(fd >= 0 && write(fd, value, BENCH_VALUE_LEN) == BENCH_VALUE_LEN &&
			      close(fd) == 0
			  ? 0
			  : 1);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		bench_fail("the writer of %s failed", path);
		return -1;
	}
	return wait_visible(path, value, bench_now_ns(), ns);
}

/* Run a command (find, ls -R) and check how many lines it printed. */
static int op_command(struct subject *s, int64_t *ns)
{
	long lines = 0, skipped = 0;
	int64_t start = bench_now_ns();
	int status = proc_count_lines(s->argv, 600, s->skip_prefix, &lines, &skipped);

	*ns = elapsed_since(start);
	if (status != 0) {
		bench_fail("%s %s: exit status %d", s->argv[0], s->dir, status);
		return -1;
	}
	if (s->expect_at_least ? lines < s->expect_lines : lines != s->expect_lines) {
		bench_fail("%s %s: %ld lines, expected %s%ld", s->argv[0], s->dir, lines,
			   s->expect_at_least ? "at least " : "", s->expect_lines);
		return -1;
	}
	return 0;
}

/* ---- helpers for the workloads --------------------------------------------- */

static void init_subject(struct subject *s, const char *name, subject_op op, const struct tree *t,
			 const char *dir, long want, int batch)
{
	memset(s, 0, sizeof(*s));
	s->name = name;
	s->op = op;
	s->tree = t;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->want = want;
	s->batch = batch;
}

static int scratch(char *buf, size_t size, const char *name)
{
	return bench_path(buf, size, "%s/%s", bench.root, name);
}

/* A row of the table from a subject's samples, named `name` or the subject's. */
static struct row *row_of(struct subject *s, const char *name)
{
	struct row *r = report_row(name ? name : s->name);

	if (r)
		report_fill(r, &s->s);
	return r;
}

/* gitkvfs' median divided by the baseline's: how many times slower. */
static void ratio_to(struct row *baseline, const struct row *gitkvfs, const char *of)
{
	if (baseline && gitkvfs && baseline->median > 0)
		report_ratio(baseline, gitkvfs->median / baseline->median, of);
}

/* Drop the page cache, or at least the pages of the disk files about to be
 * read cold. Returns a label for the baseline. */
static const char *make_cold(const struct tree *t, const char *dir, long first, long count)
{
	if (bench.drop_caches && bench_drop_caches() == 0)
		return "caches dropped";
	for (long i = 0; i < count; i++) {
		char key[128], path[8192];
		int fd;

		tree_key(t, (first + i * SEQ_STRIDE) % t->keys, key, sizeof(key));
		snprintf(path, sizeof(path), "%s/%s", dir, key);
		fd = open(path, O_RDONLY);
		if (fd >= 0) {
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			close(fd);
		}
	}
	return "fadvise DONTNEED";
}

/* ---- 1-4: the base store ------------------------------------------------------ */

struct base {
	struct tree tree;
	char store[4096], durable_store[4096], worktree[4096], disk[4096], tmpfs[4096];
	struct bench_mount mnt, durable;
};

static struct base base;

static int base_setup(void)
{
	char dir[4096];
	struct tree one;
	int64_t t0 = bench_now_ns();

	tree_init(&base.tree, TREE_HIER, 1000);
	if (scratch(base.store, sizeof(base.store), "base.git") < 0 ||
	    scratch(base.durable_store, sizeof(base.durable_store), "durable.git") < 0 ||
	    scratch(base.worktree, sizeof(base.worktree), "worktree") < 0 ||
	    bench_path(base.disk, sizeof(base.disk), "%s/base", bench.disk_dir) < 0)
		return -1;
	bench_note("building the base trees (%ld keys): two stores, a git work tree, files",
		   base.tree.keys);
	if (tree_build_store(&base.tree, base.store) < 0 ||
	    tree_build_store(&base.tree, base.durable_store) < 0 ||
	    tree_build_worktree(&base.tree, base.worktree) < 0 || mkdir(base.disk, 0755) < 0 ||
	    tree_build_files(&base.tree, base.disk) < 0)
		return -1;
	if (bench.tmpfs_dir[0]) {
		/* key 0 only: a one-key tree names it the same */
		tree_init(&one, TREE_HIER, 1);
		if (bench_path(base.tmpfs, sizeof(base.tmpfs), "%s/base", bench.tmpfs_dir) < 0 ||
		    mkdir(base.tmpfs, 0755) < 0 || tree_build_files(&one, base.tmpfs) < 0)
			return -1;
	}
	if (scratch(dir, sizeof(dir), "mnt-base") < 0)
		return -1;
	mount_init(&base.mnt, base.store, dir, NULL);
	if (scratch(dir, sizeof(dir), "mnt-durable") < 0)
		return -1;
	mount_init(&base.durable, base.durable_store, dir, "fsync");
	if (mount_start(&base.mnt, MOUNT_TIMEOUT, NULL) < 0 ||
	    mount_start(&base.durable, MOUNT_TIMEOUT, NULL) < 0)
		return -1;
	bench_note("base trees ready in %.1f s", (double)elapsed_since(t0) / 1e9);
	return 0;
}

static int w_cached_read(void)
{
	long want = bench.quick ? 2000 : 20000;
	struct subject s[3];
	struct row *g, *r;
	size_t n = 0;
	int err = 0;

	bench_note("1 cached read");
	init_subject(&s[n++], "gitkvfs", op_read_same, &base.tree, base.mnt.mnt, want, 100);
	init_subject(&s[n++], bench.disk_label, op_read_same, &base.tree, base.disk, want, 100);
	if (base.tmpfs[0])
		init_subject(&s[n++], "tmpfs", op_read_same, &base.tree, base.tmpfs, want, 100);
	for (size_t i = 0; i < n && !err; i++) {
		int64_t ns;

		s[i].key = KEY_CACHED;
		err = s[i].op(&s[i], &ns); /* read before: now it is cached */
	}
	if (!err)
		err = interleave(s, n, bench.quick ? 10 : 60);
	report_section("1 cached read: open+read+close of a 30-byte key read before");
	if (!err && (g = row_of(&s[0], NULL))) {
		if ((r = row_of(&s[1], NULL))) {
			ratio_to(r, g, "gitkvfs / this");
			report_target(r, "<= 2x", r->ratio, 2, false);
		}
		if (n > 2 && (r = row_of(&s[2], NULL))) {
			ratio_to(r, g, "gitkvfs / this");
			snprintf(r->note, sizeof(r->note), "%s", bench.tmpfs_how);
		}
	}
	for (size_t i = 0; i < n; i++)
		subject_free(&s[i]);
	return err;
}

static int w_cold_read(void)
{
	int rounds = bench.quick ? 1 : 3, per = bench.quick ? 30 : 100;
	struct subject s[2];
	struct samples remount = {0};
	const char *how = "";
	char label[96], note[128];
	struct row *g, *r;
	int err = 0;

	bench_note("2 cold read: %d fresh mount(s), %d keys each", rounds, per);
	init_subject(&s[0], "gitkvfs", op_read_next, &base.tree, base.mnt.mnt, 0, 1);
	init_subject(&s[1], bench.disk_label, op_read_next, &base.tree, base.disk, 0, 1);
	for (int round = 0; round < rounds && !err && !bench_stopping(); round++) {
		int64_t ns;

		err = mount_stop(&base.mnt);
		if (!err)
			err = mount_start(&base.mnt, MOUNT_TIMEOUT, &ns);
		if (err)
			break;
		samples_add(&remount, ns);
		how = make_cold(&base.tree, base.disk, KEY_COLD_FIRST, per);
		for (int i = 0; i < 2; i++) {
			s[i].next = 0; /* the same keys: cold again after the remount */
			s[i].offset = KEY_COLD_FIRST;
			s[i].want += per;
		}
		err = interleave(s, 2, 120);
	}
	report_section("2 cold read: first open+read+close of a key after mount");
	if (!err && (g = row_of(&s[0], "gitkvfs, fresh mount"))) {
		snprintf(note, sizeof(note), "mount of %ld keys: %.1f ms", base.tree.keys,
			 samples_pct(&remount, 50) / 1e6);
		snprintf(g->note, sizeof(g->note), "%s", note);
		snprintf(label, sizeof(label), "%s, %s", bench.disk_label, how);
		if ((r = row_of(&s[1], label))) {
			ratio_to(r, g, "gitkvfs / this");
			report_target(r, "<= 5x", r->ratio, 5, false);
		}
	}
	samples_free(&remount);
	for (int i = 0; i < 2; i++)
		subject_free(&s[i]);
	return err;
}

static int w_visible(void)
{
	long want = bench.quick ? 10 : 50;
	struct subject s[2];
	struct row *g, *r;
	char label[96];
	int64_t ns;
	int err;

	bench_note("2 time to visible after a change from outside the mount");
	init_subject(&s[0], "gitkvfs", op_visible_gitkv, &base.tree, base.mnt.mnt, want, 1);
	s[0].store = base.store;
	init_subject(&s[1], bench.disk_label, op_visible_disk, &base.tree, base.disk, want, 1);
	s[0].key = s[1].key = KEY_VISIBLE;
	/* read it before, so the change has a cached copy to invalidate */
	err = op_read_same(&s[0], &ns);
	if (!err)
		err = interleave(s, 2, bench.quick ? 15 : 60);
	report_section(
	    "2 cold read after a change from outside: time until the new value reads back");
	if (!err && (g = row_of(&s[0], "gitkvfs, after `gitkv set`"))) {
		snprintf(g->note, sizeof(g->note), "from the CLI's exit; the read is polled");
		snprintf(label, sizeof(label), "%s, after another process's write",
			 bench.disk_label);
		if ((r = row_of(&s[1], label)))
			ratio_to(r, g, "gitkvfs / this");
	}
	for (int i = 0; i < 2; i++)
		subject_free(&s[i]);
	return err;
}

/*
 * Did `store` get exactly `writes` commits since `before`? One writer, each
 * write a new value: one commit per close, no more (a commit of something
 * no write left, such as the truncated empty file, is a failure), no less.
 * On a mismatch, `note` (if given) says so for the table.
 */
static int check_commits(const char *store, long before, long writes, struct row *note)
{
	long after = tree_commit_count(store);

	if (after < 0)
		return -1;
	if (after - before != writes) {
		bench_fail("%s: %ld acknowledged writes made %ld commits (one each expected)",
			   store, writes, after - before);
		if (note)
			bench_text(note->note, sizeof(note->note),
				   "FAILED: %ld writes made %ld commits", writes, after - before);
		return -1;
	}
	return 0;
}

/* Does key `s->key` (or the last written key) read back its last value? */
static int check_last_value(struct subject *s, long k)
{
	char path[8192], buf[4096], want[BENCH_VALUE_LEN];
	ssize_t got;

	key_path(s, k, path, sizeof(path));
	tree_value(k, s->gen, want);
	got = read_file(path, buf, sizeof(buf));
	return check_read(path, got, buf, want);
}

enum { W_GITKVFS, W_DISK, W_DISK_FSYNC, W_GIT, W_DURABLE, NWRITE };

static int w_write(void)
{
	long want = bench.quick ? 200 : 2000, want_sync = bench.quick ? 50 : 500;
	long c_base, c_durable, c_git;
	struct subject s[NWRITE];
	struct row *g, *r;
	char plain[96], label[96];
	int err = 0, checked = 0;

	bench_note("3 write");
	init_subject(&s[W_GITKVFS], "gitkvfs", op_write_same, &base.tree, base.mnt.mnt, want, 20);
	snprintf(plain, sizeof(plain), "%s write+close", bench.disk_label);
	snprintf(label, sizeof(label), "%s write+fsync+close", bench.disk_label);
	init_subject(&s[W_DISK], plain, op_write_same, &base.tree, base.disk, want, 20);
	init_subject(&s[W_DISK_FSYNC], label, op_write_same, &base.tree, base.disk, want_sync, 5);
	s[W_DISK_FSYNC].fsync = true;
	init_subject(&s[W_GIT], "git CLI: write + git commit", op_git_commit, &base.tree,
		     base.worktree, bench.quick ? 10 : 100, 1);
	init_subject(&s[W_DURABLE], "gitkvfs -o fsync", op_write_same, &base.tree, base.durable.mnt,
		     want_sync, 5);
	for (int i = 0; i < NWRITE; i++)
		s[i].key = KEY_WRITE;
	c_base = tree_commit_count(base.store);
	c_durable = tree_commit_count(base.durable_store);
	c_git = tree_commit_count(base.worktree);
	if (c_base < 0 || c_durable < 0 || c_git < 0)
		return -1;
	err = interleave(s, NWRITE, bench.quick ? 25 : 180);
	report_section("3 write: open(O_TRUNC)+write+close of a 30-byte key, a commit per close");
	if (!err && (g = row_of(&s[W_GITKVFS], NULL))) {
		snprintf(g->note, sizeof(g->note), "%ld keys; each close returned with its commit",
			 base.tree.keys);
		checked = check_commits(base.store, c_base, (long)s[W_GITKVFS].s.n, g) |
			  check_last_value(&s[W_GITKVFS], KEY_WRITE);
		if ((r = row_of(&s[W_DISK], NULL))) {
			ratio_to(r, g, "gitkvfs / this");
			report_target(r, "<= 3x", r->ratio, 3, false);
		}
		if ((r = row_of(&s[W_DISK_FSYNC], NULL)))
			ratio_to(r, g, "gitkvfs / this");
		if ((r = row_of(&s[W_GIT], NULL))) {
			ratio_to(r, g, "gitkvfs / this");
			report_target(r, "<= 0.02x (50x faster)", r->ratio, 0.02, false);
			snprintf(r->note, sizeof(r->note),
				 "non-bare repo of the same tree, `git commit -- KEY`");
			checked |= check_commits(base.worktree, c_git, (long)s[W_GIT].s.n, r);
		}
	}
	report_section("3 durable write: gitkvfs -o fsync (every acknowledged commit on disk)");
	if (!err && (g = row_of(&s[W_DURABLE], NULL))) {
		checked |= check_commits(base.durable_store, c_durable, (long)s[W_DURABLE].s.n, g) |
			   check_last_value(&s[W_DURABLE], KEY_WRITE);
		if ((r = row_of(&s[W_DISK_FSYNC], NULL))) {
			ratio_to(r, g, "gitkvfs -o fsync / this");
			report_target(r, "<= 3x", r->ratio, 3, false);
		}
	}
	for (int i = 0; i < NWRITE; i++)
		subject_free(&s[i]);
	return err || checked ? -1 : 0;
}

/* ---- 4: concurrent writers ------------------------------------------------ */

/* Holds the writers until all exist, so they start together. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
};

struct writer {
	pthread_t thread;
	struct gate *gate;
	char path[8192];
	long id;
	int64_t duration_ns;
	long max;
	long gen;
	struct samples s;
	long done;
	int err; /* errno of a failed write */
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int64_t end;

	pthread_mutex_lock(&w->gate->lock);
	while (!w->gate->open)
		pthread_cond_wait(&w->gate->cond, &w->gate->lock);
	pthread_mutex_unlock(&w->gate->lock);
	end = bench_now_ns() + w->duration_ns;
	while (w->done < w->max && bench_now_ns() < end && !bench_stopping()) {
		char value[BENCH_VALUE_LEN];
		int64_t t0;
		int fd;

		tree_value(w->id, w->gen + 1, value);
		t0 = bench_now_ns();
		fd = open(w->path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (fd < 0 || write(fd, value, BENCH_VALUE_LEN) != BENCH_VALUE_LEN) {
			w->err = errno ? errno : EIO;
			if (fd >= 0)
				close(fd);
			break;
		}
		if (close(fd) < 0) {
			w->err = errno;
			break;
		}
		w->gen++;
		if (samples_add(&w->s, elapsed_since(t0)) < 0) {
			w->err = ENOMEM;
			break;
		}
		w->done++;
	}
	return NULL;
}

struct burst_total {
	long threads;
	long writes, commits;
	int64_t wall_ns;
	struct samples s;
	long bad_bursts; /* bursts with more commits than writes, or none */
};

/* `n` threads write their own keys for `duration_ns`; totals added to `t`. */
static int burst(struct writer *w, long n, int64_t duration_ns, struct burst_total *t)
{
	struct gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, false};
	long before = tree_commit_count(base.store), after, started = 0, writes = 0;
	int64_t t0, wall;
	int err = 0;

	if (before < 0)
		return -1;
	for (long i = 0; i < n; i++) {
		w[i].gate = &gate;
		w[i].duration_ns = duration_ns;
		w[i].max = 1000000;
		w[i].done = 0;
		w[i].err = 0;
		samples_free(&w[i].s);
		if (pthread_create(&w[i].thread, NULL, writer_main, &w[i]) != 0) {
			bench_fail("cannot start a writer thread");
			err = -1;
			break;
		}
		started++;
	}
	pthread_mutex_lock(&gate.lock);
	gate.open = true;
	t0 = bench_now_ns();
	pthread_cond_broadcast(&gate.cond);
	pthread_mutex_unlock(&gate.lock);
	for (long i = 0; i < started; i++)
		pthread_join(w[i].thread, NULL);
	wall = elapsed_since(t0);
	for (long i = 0; i < started; i++) {
		if (w[i].err) {
			bench_fail("writer %ld: writing %s: %s", i, w[i].path, strerror(w[i].err));
			err = -1;
		}
		writes += w[i].done;
		samples_merge(&t->s, &w[i].s);
	}
	after = tree_commit_count(base.store);
	if (after < 0)
		return -1;
	if (writes > 0 && (after - before < 1 || after - before > writes)) {
		/* the run goes on (the figures are still figures), but fails */
		bench_fail("%ld acknowledged concurrent writes made %ld commits", writes,
			   after - before);
		t->bad_bursts++;
	}
	t->writes += writes;
	t->commits += after - before;
	t->wall_ns += wall;
	return err;
}

static int w_concurrent(void)
{
	static const long counts[] = {1, 4, 16};
	int rounds = bench.quick ? 1 : 3;
	int64_t duration = bench.quick ? 1000000000LL : 3000000000LL;
	struct writer w[MAX_WRITERS];
	struct burst_total t[3];
	struct row *r;
	double one = NAN;
	int err = 0, checked = 0;

	bench_note("4 concurrent writers: %d round(s) of 1, 4, 16 threads, %.0f s each", rounds,
		   (double)duration / 1e9);
	memset(w, 0, sizeof(w));
	memset(t, 0, sizeof(t));
	/* each writer owns a key, created before the clock starts */
	for (long i = 0; i < MAX_WRITERS && !err; i++) {
		char dir[8192], value[BENCH_VALUE_LEN];

		snprintf(dir, sizeof(dir), "%s/conc", base.mnt.mnt);
		if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
			bench_fail("mkdir %s: %s", dir, strerror(errno));
			err = -1;
			break;
		}
		w[i].id = base.tree.keys + i;
		if (bench_path(w[i].path, sizeof(w[i].path), "%s/w%02ld", dir, i) < 0) {
			err = -1;
			break;
		}
		tree_value(w[i].id, 0, value);
		err = write_file(w[i].path, value, false);
	}
	for (int round = 0; round < rounds && !err && !bench_stopping(); round++) {
		for (size_t c = 0; c < 3 && !err; c++) {
			t[c].threads = counts[c];
			err = burst(w, counts[c], duration, &t[c]);
		}
	}
	/* every writer's key holds its last value */
	for (long i = 0; i < MAX_WRITERS && !err; i++) {
		char buf[4096], want[BENCH_VALUE_LEN];
		ssize_t got = read_file(w[i].path, buf, sizeof(buf));

		tree_value(w[i].id, w[i].gen, want);
		err = check_read(w[i].path, got, buf, want);
	}
	report_section("4 concurrent writers: open(O_TRUNC)+write+close, each thread its own key");
	for (size_t c = 0; c < 3 && !err; c++) {
		double wall = (double)t[c].wall_ns / 1e9;
		char name[32];

		if (!t[c].writes || wall <= 0)
			continue;
		snprintf(name, sizeof(name), "%ld writer%s", t[c].threads,
			 t[c].threads > 1 ? "s" : "");
		if (!(r = report_row(name)))
			continue;
		report_fill(r, &t[c].s);
		r->ops = (double)t[c].writes / wall; /* all threads together */
		if (c == 0)
			one = r->ops;
		else
			report_ratio(r, r->ops / one, "writes/s / 1 writer's");
		if (t[c].threads == 16)
			report_target(r, ">= 3x", r->ratio, 3, true);
		bench_text(r->note, sizeof(r->note), "%.0f commits/s, %.2f writes per commit%s",
			   (double)t[c].commits / wall,
			   t[c].commits ? (double)t[c].writes / (double)t[c].commits : 0.0,
			   t[c].bad_bursts ? "; FAILED: more commits than writes" : "");
		if (t[c].bad_bursts)
			checked = -1;
	}
	for (size_t c = 0; c < 3; c++)
		samples_free(&t[c].s);
	for (long i = 0; i < MAX_WRITERS; i++)
		samples_free(&w[i].s);
	return err || checked ? -1 : 0;
}

int workload_small(void)
{
	int err = 0;

	if (base_setup() < 0) {
		mount_stop(&base.mnt);
		mount_stop(&base.durable);
		return -1;
	}
	err |= w_cached_read();
	if (!bench_stopping())
		err |= w_cold_read();
	if (!bench_stopping())
		err |= w_visible();
	if (!bench_stopping())
		err |= w_write();
	if (!bench_stopping())
		err |= w_concurrent();
	err |= mount_stop(&base.mnt);
	err |= mount_stop(&base.durable);
	return err ? -1 : 0;
}

/* ---- 5: scale -------------------------------------------------------------- */

struct scale_store {
	struct tree tree;
	char name[32]; /* "1k", "1M", "flat 100k" */
	char store[4096];
	struct bench_mount mnt;
	double build_s;
	struct samples mounts;
	long rss_mount, rss_after;
	long commits_before;
	struct subject cold, cached, write;
	struct row *row_cached, *row_cold, *row_write, *row_mount, *row_rss;
};

#define MAX_SCALE 4
static struct scale_store scale[MAX_SCALE];
static size_t nscale;

static int scale_build(void)
{
	static const long full[] = {1000, 100000, 1000000}, quick[] = {1000, 10000};
	const long *sizes = bench.quick ? quick : full;
	size_t nsizes = bench.quick ? 2 : 3;

	nscale = 0;
	for (size_t i = 0; i <= nsizes; i++) {
		struct scale_store *st = &scale[nscale];
		char kl[16], mnt[4096];
		int64_t t0 = bench_now_ns();

		if (i == nsizes) {
			if (bench.quick)
				break;
			tree_init(&st->tree, TREE_FLAT, 100000);
			snprintf(st->name, sizeof(st->name), "flat %s",
				 tree_size_label(st->tree.keys, kl, sizeof(kl)));
		} else {
			tree_init(&st->tree, TREE_HIER, sizes[i]);
			snprintf(st->name, sizeof(st->name), "%s",
				 tree_size_label(st->tree.keys, kl, sizeof(kl)));
		}
		if (bench_path(st->store, sizeof(st->store), "%s/scale-%s%s.git", bench.root,
			       st->tree.layout == TREE_FLAT ? "flat-" : "", kl) < 0)
			return -1;
		bench_note("5 scale: building a store of %s keys", st->name);
		if (tree_build_store(&st->tree, st->store) < 0)
			return -1;
		st->build_s = (double)elapsed_since(t0) / 1e9;
		if (bench_path(mnt, sizeof(mnt), "%s/mnt-scale-%s%s", bench.root,
			       st->tree.layout == TREE_FLAT ? "flat-" : "", kl) < 0)
			return -1;
		mount_init(&st->mnt, st->store, mnt, NULL);
		nscale++;
	}
	return 0;
}

/* The ratio of `r` to the row it is compared with (this / base). */
static void ratio_over(struct row *r, const struct row *base_row, const char *of)
{
	if (r && base_row && base_row->median > 0 && r != base_row)
		report_ratio(r, r->median / base_row->median, of);
}

/* The hierarchical store a row of `st` is compared with: for the flat
 * directory the hierarchical store of its size, else the smallest. */
static const struct scale_store *scale_reference(const struct scale_store *st)
{
	if (st->tree.layout == TREE_FLAT) {
		for (size_t i = 0; i < nscale; i++) {
			if (scale[i].tree.layout == TREE_HIER &&
			    scale[i].tree.keys == st->tree.keys)
				return &scale[i];
		}
	}
	return &scale[0];
}

static void scale_rows(void)
{
	const struct scale_store *largest = NULL;
	char of[64], subject[64];

	for (size_t i = 0; i < nscale; i++) {
		if (scale[i].tree.layout == TREE_HIER &&
		    (!largest || scale[i].tree.keys > largest->tree.keys))
			largest = &scale[i];
	}
	report_section("5 scale: hierarchical stores (aNNN/bNNN/kNNNNNNN) and one flat directory");
	for (size_t i = 0; i < nscale; i++) {
		struct scale_store *st = &scale[i];
		struct row *r;

		snprintf(subject, sizeof(subject), "mount, %s keys", st->name);
		if (!st->mounts.n || !(r = report_row(subject)))
			continue;
		report_fill(r, &st->mounts);
		r->ops = NAN;
		snprintf(r->note, sizeof(r->note), "exec to mounted; store built in %.1f s",
			 st->build_s);
		if (st == largest)
			report_target(r, "< 3 s", r->median, 3e9, false);
		st->row_mount = r;
	}
	for (size_t i = 0; i < nscale; i++) {
		struct scale_store *st = &scale[i];
		struct row *r;

		snprintf(subject, sizeof(subject), "daemon RSS, %s keys", st->name);
		if (st->rss_after <= 0 || !(r = report_row(subject)))
			continue;
		r->unit = ROW_BYTES;
		r->median = (double)st->rss_after;
		r->n = 1;
		report_ratio(r, (double)st->rss_after / (double)st->tree.keys, "bytes per key");
		snprintf(r->ratio_fmt, sizeof(r->ratio_fmt), "%%.0f B/key");
		snprintf(r->note, sizeof(r->note), "VmRSS after the workload; after mount %.1f MiB",
			 (double)st->rss_mount / (1024 * 1024));
		if (st == largest)
			report_target(r, "< 300 B/key", r->ratio, 300, false);
	}
	for (int what = 0; what < 3; what++) {
		static const char *const names[] = {"cached read", "cold read", "write"};

		for (size_t i = 0; i < nscale; i++) {
			struct scale_store *st = &scale[i];
			const struct scale_store *ref = scale_reference(st);
			struct subject *s = what == 0	? &st->cached
					    : what == 1 ? &st->cold
							: &st->write;
			struct row **slot = what == 0	? &st->row_cached
					    : what == 1 ? &st->row_cold
							: &st->row_write;
			const struct row *ref_row = what == 0	? ref->row_cached
						    : what == 1 ? ref->row_cold
								: ref->row_write;
			struct row *r;

			snprintf(subject, sizeof(subject), "%s, %s keys", names[what], st->name);
			if (!s->s.n || !(r = row_of(s, subject)))
				continue;
			*slot = r;
			snprintf(of, sizeof(of), "this / %s keys", ref->name);
			ratio_over(r, ref_row, of);
			if (what == 2 && st == largest && st != ref)
				report_target(r, "<= 2x", r->ratio, 2, false);
			if (what == 2)
				snprintf(r->note, sizeof(r->note), "a different key each write");
			if (what == 1)
				snprintf(r->note, sizeof(r->note),
					 "first read of each key after mount%s",
					 bench.drop_caches ? ", caches dropped" : "");
		}
	}
}

int workload_scale(void)
{
	int rounds = bench.quick ? 2 : 3;
	long cold = bench.quick ? 50 : 200, cached = bench.quick ? 500 : 5000;
	long writes = bench.quick ? 100 : 300, flat_writes = bench.quick ? 20 : 60;
	struct subject s[MAX_SCALE];
	int err = scale_build(), checked = 0;

	for (int round = 0; round < rounds && !err && !bench_stopping(); round++) {
		bench_note("5 scale: mount round %d of %d", round + 1, rounds);
		for (size_t i = 0; i < nscale && !err; i++) {
			int64_t ns;

			err = mount_start(&scale[i].mnt, MOUNT_TIMEOUT, &ns);
			if (err)
				break;
			samples_add(&scale[i].mounts, ns);
			scale[i].rss_mount = mount_rss(&scale[i].mnt);
			if (round < rounds - 1)
				err = mount_stop(&scale[i].mnt);
		}
	}
	for (size_t i = 0; i < nscale && !err; i++) {
		struct scale_store *st = &scale[i];

		init_subject(&st->cold, st->name, op_read_next, &st->tree, st->mnt.mnt, cold, 1);
		st->cold.offset = 7;
		init_subject(&st->cached, st->name, op_read_same, &st->tree, st->mnt.mnt, cached,
			     50);
		st->cached.key = st->tree.keys / 2;
		init_subject(&st->write, st->name, op_write_next, &st->tree, st->mnt.mnt,
			     st->tree.layout == TREE_FLAT ? flat_writes : writes, 5);
		st->write.offset = 11 + st->tree.keys / 3;
		st->commits_before = tree_commit_count(st->store);
		if (st->commits_before < 0)
			err = -1;
	}
	if (!err && !bench_stopping()) {
		bench_note("5 scale: cold reads");
		if (bench.drop_caches)
			bench_drop_caches();
		for (size_t i = 0; i < nscale; i++)
			s[i] = scale[i].cold;
		err = interleave(s, nscale, bench.quick ? 20 : 120);
		for (size_t i = 0; i < nscale; i++)
			scale[i].cold = s[i];
	}
	if (!err && !bench_stopping()) {
		bench_note("5 scale: cached reads");
		for (size_t i = 0; i < nscale && !err; i++) {
			int64_t ns;

			err = op_read_same(&scale[i].cached, &ns); /* read before */
			s[i] = scale[i].cached;
		}
		if (!err)
			err = interleave(s, nscale, bench.quick ? 10 : 60);
		for (size_t i = 0; i < nscale; i++)
			scale[i].cached = s[i];
	}
	if (!err && !bench_stopping()) {
		bench_note("5 scale: writes");
		for (size_t i = 0; i < nscale; i++)
			s[i] = scale[i].write;
		err = interleave(s, nscale, bench.quick ? 20 : 240);
		for (size_t i = 0; i < nscale; i++) {
			scale[i].write = s[i];
			scale[i].rss_after = mount_rss(&scale[i].mnt);
		}
	}
	for (size_t i = 0; i < nscale; i++) {
		if (mount_stop(&scale[i].mnt) < 0)
			err = -1;
	}
	if (!err) {
		scale_rows();
		for (size_t i = 0; i < nscale; i++) {
			if (check_commits(scale[i].store, scale[i].commits_before,
					  (long)scale[i].write.s.n, scale[i].row_write) < 0)
				checked = -1;
		}
	}
	for (size_t i = 0; i < nscale; i++) {
		samples_free(&scale[i].mounts);
		subject_free(&scale[i].cold);
		subject_free(&scale[i].cached);
		subject_free(&scale[i].write);
	}
	return err || checked ? -1 : 0;
}

/* ---- 6: walking the tree ------------------------------------------------------ */

int workload_walk(void)
{
	long keys = bench.quick ? 10000 : 100000;
	const struct scale_store *st = NULL;
	struct subject s[4];
	struct bench_mount mnt;
	char dir[4096], mdir[4096], skip[4200], title[128], note[64], kl[16];
	struct tree tree;
	struct row *g, *r;
	int rounds = bench.quick ? 3 : 5, err = 0;

	for (size_t i = 0; i < nscale; i++) {
		if (scale[i].tree.layout == TREE_HIER && scale[i].tree.keys == keys)
			st = &scale[i];
	}
	tree_init(&tree, TREE_HIER, keys);
	if (!st) {
		/* the scale workload did not build it (or did not run) */
		static struct scale_store own;

		own.tree = tree;
		if (bench_path(own.store, sizeof(own.store), "%s/walk.git", bench.root) < 0 ||
		    tree_build_store(&tree, own.store) < 0)
			return -1;
		st = &own;
	}
	bench_note("6 walk: %ld keys as files on %s", keys, bench.disk_label);
	if (bench_path(dir, sizeof(dir), "%s/walk", bench.disk_dir) < 0 || mkdir(dir, 0755) < 0 ||
	    tree_build_files(&tree, dir) < 0)
		return -1;
	if (bench_path(mdir, sizeof(mdir), "%s/mnt-walk", bench.root) < 0)
		return -1;
	mount_init(&mnt, st->store, mdir, NULL);
	if (mount_start(&mnt, MOUNT_TIMEOUT, NULL) < 0)
		return -1;
	snprintf(skip, sizeof(skip), "%s/.gitkv", mdir);

	init_subject(&s[0], "find, gitkvfs", op_command, &tree, mdir, rounds, 1);
	init_subject(&s[1], "", op_command, &tree, dir, rounds, 1);
	init_subject(&s[2], "ls -R, gitkvfs", op_command, &tree, mdir, rounds, 1);
	init_subject(&s[3], "", op_command, &tree, dir, rounds, 1);
	for (int i = 0; i < 4; i++) {
		const char *path = s[i].dir;

		if (i < 2) {
			s[i].argv[0] = "find";
			s[i].argv[1] = path;
			/* the root, every directory, every key; /.gitkv counted apart */
			s[i].expect_lines = tree.keys + tree_dirs(&tree) + 1;
		} else {
			s[i].argv[0] = "ls";
			s[i].argv[1] = "-R";
			s[i].argv[2] = path;
			s[i].expect_lines = tree.keys + tree_dirs(&tree);
			s[i].expect_at_least = true;
		}
		if (i % 2 == 0)
			s[i].skip_prefix = skip;
	}
	bench_note("6 walk: find and ls -R, %d rounds", rounds);
	err = interleave(s, 4, 600);
	snprintf(title, sizeof(title), "6 walk: find / ls -R of the %s-key tree (fresh mount)",
		 tree_size_label(keys, kl, sizeof(kl)));
	report_section(title);
	for (int i = 0; i < 4 && !err; i += 2) {
		char name[64];

		snprintf(note, sizeof(note), "first run %.0f ms", (double)s[i].first_ns / 1e6);
		if (!(g = row_of(&s[i], NULL)))
			continue;
		snprintf(g->note, sizeof(g->note), "%s", note);
		g->ops = NAN;
		bench_text(name, sizeof(name), "%s, %s", i < 2 ? "find" : "ls -R",
			   bench.disk_label);
		if ((r = row_of(&s[i + 1], name))) {
			r->ops = NAN;
			ratio_to(r, g, "gitkvfs / this");
		}
	}
	if (mount_stop(&mnt) < 0)
		err = -1;
	for (int i = 0; i < 4; i++)
		subject_free(&s[i]);
	return err ? -1 : 0;
}
