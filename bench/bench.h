/*
 * bench.h - what the parts of gitkv-bench share.
 *
 *	bench.c      main: options, the scratch directory, the machine, the run
 *	workloads.c  the workloads, each timing gitkvfs against its baselines
 *	proc.c       child processes and the gitkvfs daemons the run mounts
 *	tree.c       building stores (git fast-import) and the same trees on disk
 *	sync.c       the sync workloads: propagation between mounts, round cost
 *	report.c     samples, the results table and its JSON twin
 *
 * Everything runs on the main thread except the writers of the concurrency
 * workload and the pairs of the propagation workload, which touch nothing
 * here but their own samples and the clock.
 * Functions that can fail return 0 or -1; a -1 that means "the product or
 * the machine broke" has been reported with bench_fail() by whoever saw it.
 */
#ifndef GITKV_BENCH_H
#define GITKV_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#define BENCH_VALUE_LEN 30 /* bytes in every value the workloads write */

/* ---- bench.c: the run's settings and shared services -------------------- */

struct bench_config {
	bool quick;		 /* --quick: small sizes, few samples, < 1 minute */
	bool drop_caches;	 /* cold reads may drop the page cache (root) */
	bool keep;		 /* --keep: leave the scratch directory */
	const char *gitkvfs;	 /* the daemon */
	const char *gitkv;	 /* the CLI */
	const char *json;	 /* --json FILE, or NULL */
	unsigned only;		 /* --only: bit N set runs workload N; 0 runs all */
	char root[4096];	 /* the mkdtemp scratch directory */
	char disk_dir[4096];	 /* root/disk: the on-disk baseline */
	char disk_label[64];	 /* what backs it: "ext4", "xfs", ... (from mountinfo) */
	char disk_source[256];	 /* its device, for the header */
	char tmpfs_dir[4096];	 /* a tmpfs directory, or "" if none */
	char tmpfs_how[64];	 /* "mounted" or "/dev/shm" */
	char git_env_home[4096]; /* HOME for git: no user configuration */
};

extern struct bench_config bench;

/* Is workload `n` (1-8) to run? (1-4 share their setup: any of them runs all four.) */
bool bench_selected(int n);

/* Nanoseconds on CLOCK_MONOTONIC. */
int64_t bench_now_ns(void);

/* True once SIGINT/SIGTERM/SIGHUP arrived: every loop ends early. */
bool bench_stopping(void);

/* Something broke (mount failed, wrong bytes, a write errored): say so on
 * stderr and make the exit status non-zero. Timing never calls this. */
void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* snprintf for paths: a path that does not fit fails the run rather than
 * being cut short. 0, or -1. */
int bench_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* snprintf for labels and notes: cut short if need be. */
void bench_text(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Progress on stderr, prefixed "# ". */
void bench_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Sleep `ns` nanoseconds (returns early on a signal). */
void bench_sleep_ns(int64_t ns);

/* Write "3" to /proc/sys/vm/drop_caches after sync(); -1 if not allowed. */
int bench_drop_caches(void);

/* ---- proc.c: child processes --------------------------------------------- */

enum {
	PROC_IN_PIPE = 1,    /* p->in: a pipe to the child's stdin */
	PROC_OUT_PIPE = 2,   /* p->out: a pipe from the child's stdout */
	PROC_OUT_NULL = 4,   /* stdout to /dev/null */
	PROC_ERR_NULL = 8,   /* stderr to /dev/null */
	PROC_NEW_GROUP = 16, /* own process group: a terminal's ^C does not reach it */
	PROC_KEEP_HEAP = 32, /* the child's malloc never gives memory back (see proc.c) */
};

struct proc {
	pid_t pid;
	int pidfd; /* readable once the child exited */
	int in;	   /* or -1 */
	int out;   /* or -1 */
};

/* Start argv[0] (searched in PATH) with the given PROC_* flags; stderr goes
 * to `err_path` (appended) when given. 0, or -1 with a message on stderr. */
int proc_start(struct proc *p, const char *const argv[], unsigned flags, const char *err_path);

/* Wait at most `timeout_s` for the child; on timeout or a stop request it
 * is killed. Closes the pipes. Returns the exit status (0-255, 128+signal)
 * or -1 if it had to be killed. Always reaps. */
int proc_wait(struct proc *p, double timeout_s);

/* Run argv to completion within `timeout_s`, stdin from /dev/null, stdout
 * into `out` (NUL-terminated, truncated to outsz; may be NULL). Returns the
 * exit status, or -1 (could not start, killed). */
int proc_run(const char *const argv[], double timeout_s, char *out, size_t outsz);

/* Run argv and count the lines of its stdout; lines starting with
 * `skip_prefix` (if not NULL) are counted in *skipped instead. Returns the
 * exit status or -1. */
int proc_count_lines(const char *const argv[], double timeout_s, const char *skip_prefix,
		     long *lines, long *skipped);

/* ---- proc.c: gitkvfs daemons ---------------------------------------------- */

struct bench_mount {
	char store[4096];
	char mnt[4096];
	char log[4096];
	char opts[256]; /* extra -o options, "" for none */
	struct proc daemon;
	bool up;
};

/* Prepare `m` (nothing runs yet): the store, the mount point (created),
 * the daemon's log, extra -o options. */
void mount_init(struct bench_mount *m, const char *store, const char *mnt, const char *opts);

/* Exec `gitkvfs -f [-o OPTS] STORE MNT` and wait (bounded) until the mount
 * answers; *ns gets exec-to-ready. Fails (bench_fail) if the daemon died or
 * the bound passed. */
int mount_start(struct bench_mount *m, double timeout_s, int64_t *ns);

/* Unmount (fusermount3 -u), wait for the daemon; escalate to SIGTERM,
 * SIGKILL and a lazy unmount if it lingers. Fails if the daemon exited
 * non-zero or its log holds a sanitizer report. Safe on a mount not up. */
int mount_stop(struct bench_mount *m);

/* Stop every mount still up (error paths and interruption). */
void mount_stop_all(void);

/* Async-signal-safe: SIGTERM every daemon still registered. */
void mount_signal_all(void);

/* The daemon's VmRSS in bytes, or -1. */
long mount_rss(const struct bench_mount *m);

/* ---- tree.c: stores and trees ---------------------------------------------- */

enum tree_layout {
	TREE_HIER, /* ~3 levels: aNNN/bNNN/kNNNNNNN, fan-out the cube root of the size */
	TREE_FLAT, /* one directory: flat/kNNNNNNN */
};

struct tree {
	enum tree_layout layout;
	long keys;
	long fanout; /* TREE_HIER: entries per directory level */
};

void tree_init(struct tree *t, enum tree_layout layout, long keys);

/* The name of key `i` (0 <= i < keys) into buf. */
void tree_key(const struct tree *t, long i, char *buf, size_t size);

/* The initial value of key `i`: BENCH_VALUE_LEN bytes, the last a newline. */
void tree_value(long i, long generation, char out[BENCH_VALUE_LEN]);

/* A number of keys for labels: "1k", "100k", "1M"; returns buf. */
const char *tree_size_label(long keys, char *buf, size_t size);

/* Number of directories in the tree (for checking a listing). */
long tree_dirs(const struct tree *t);

/* Create `store` with `gitkv init` and fill it with the tree in one commit
 * through `git fast-import`. */
int tree_build_store(const struct tree *t, const char *store);

/* Create a non-bare git repository at `dir` holding the tree, checked out. */
int tree_build_worktree(const struct tree *t, const char *dir);

/* Write the tree as plain files below `dir`. */
int tree_build_files(const struct tree *t, const char *dir);

/* `git -C store rev-list --count HEAD`, or -1. */
long tree_commit_count(const char *store);

/* ---- report.c: samples and the table --------------------------------------- */

struct samples {
	int64_t *v;
	size_t n, cap;
	int64_t sum;
};

int samples_add(struct samples *s, int64_t ns);
void samples_free(struct samples *s);
void samples_merge(struct samples *into, const struct samples *from);
/* Percentile (0-100) by nearest rank; sorts the samples. NAN if empty. */
double samples_pct(struct samples *s, double pct);
/* 1e9 / mean: operations per second of one caller. NAN if empty. */
double samples_rate(const struct samples *s);

enum row_unit { ROW_TIME, ROW_BYTES };
enum row_result { RESULT_NONE, RESULT_PASS, RESULT_MISS };

struct row {
	char section[96];
	char subject[64];
	enum row_unit unit;
	double median, p99; /* ns or bytes; NAN: not applicable */
	double ops;	    /* per second; NAN: not applicable */
	long n;		    /* samples */
	double ratio;	    /* NAN: none */
	char ratio_fmt[24]; /* printf format of the ratio column, "%.2fx" by default */
	char ratio_of[48];  /* what the ratio compares, for the JSON */
	char target[32];    /* "" for none */
	enum row_result result;
	char note[128];
};

/* Start a section of the table. */
void report_section(const char *title);

/* A new row in the current section, zeroed with NANs; NULL if out of memory. */
struct row *report_row(const char *subject);

/* Fill the latency columns of `r` from `s`. */
void report_fill(struct row *r, struct samples *s);

/* Set the ratio column of `r`, and the target and result when `target` is
 * given: PASS when `ratio <= limit` (or >= when `at_least`). */
void report_ratio(struct row *r, double ratio, const char *of);
void report_target(struct row *r, const char *target, double value, double limit, bool at_least);

/* Print the table to `f`; write it as JSON to `path` (0, or -1). */
void report_print(FILE *f);
int report_json(const char *path, double runtime_s);

/* Machine description lines (from nproc, free, uname, statfs) for both. */
void report_machine(const char *key, const char *value);

/* ---- workloads.c ------------------------------------------------------------ */

/* Each returns 0 if it ran (whatever the timings), -1 if something broke. */
int workload_small(void); /* 1-4: reads, cold reads, writes, concurrency */
int workload_scale(void); /* 5: 1k..1M keys, and the flat directory */
int workload_walk(void);  /* 6: find / ls -R */

/* ---- sync.c ----------------------------------------------------------------- */

int workload_propagation(void); /* 7: a write on one mount until inotify on another */
int workload_round(void);	/* 8: the cost of a sync round, 1k..100k keys */

#endif
