/*
 * proc.c - child processes and the gitkvfs daemons of a benchmark run.
 *
 * Every child is started with fork+exec and watched through a pidfd, so a
 * wait can be bounded with poll() instead of sleeping and guessing. Every
 * wait ends on its bound or on a stop request (SIGINT), killing the child.
 *
 * A daemon is `gitkvfs -f` in its own process group (a terminal's ^C reaches
 * the benchmark, which then unmounts in order). Each one is registered in a
 * small table while it runs, so that error paths and interruptions can
 * unmount and reap it by pid, and a second ^C can at least SIGTERM it from
 * the signal handler (which gitkvfs answers by unmounting itself).
 *
 * "Mounted" means: /proc/self/mountinfo lists the mount point (poll()ing
 * that file wakes on every mount-table change) and a stat() of the root has
 * been answered by the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

#define MAX_MOUNTS 16

/* pids of the daemons running, for the signal handler: plain ints */
static volatile pid_t registered_pid[MAX_MOUNTS];
static struct bench_mount *registered[MAX_MOUNTS];

static int stop(struct bench_mount *m, bool quiet);

/* ---- children -------------------------------------------------------------- */

static void child_redirect(int fd, int target)
{
	if (fd >= 0 && fd != target) {
		dup2(fd, target);
		close(fd);
	}
}

/*
 * The environment plus MALLOC_TRIM_THRESHOLD_, built before fork() (the
 * child of a process with threads should not allocate). With it glibc's
 * malloc keeps the heap it grew: git fast-import otherwise shrinks and
 * regrows it with brk() for almost every object it reads, which costs
 * ~150 us a call on some virtual machines (10,000 keys: 13 s, not 0.2 s).
 * Only for building stores, which is never timed.
 */
static char **keep_heap_environment(void)
{
	static char trim[] = "MALLOC_TRIM_THRESHOLD_=1073741824";
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	env = calloc(n + 2, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "MALLOC_TRIM_THRESHOLD_=", 23) != 0)
			env[k++] = environ[i];
	}
	env[k++] = trim;
	env[k] = NULL;
	return env;
}

int proc_start(struct proc *p, const char *const argv[], unsigned flags, const char *err_path)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	char **env = NULL;
	pid_t pid;

	p->pid = -1;
	p->pidfd = p->in = p->out = -1;
	if ((flags & PROC_KEEP_HEAP) && !(env = keep_heap_environment()))
		goto fail;
	if ((flags & PROC_IN_PIPE) && pipe2(in, O_CLOEXEC) < 0)
		goto fail;
	if ((flags & PROC_OUT_PIPE) && pipe2(out, O_CLOEXEC) < 0)
		goto fail;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		goto fail;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		if (flags & PROC_NEW_GROUP)
			setpgid(0, 0);
		if (flags & PROC_IN_PIPE) {
			close(in[1]);
			child_redirect(in[0], 0);
		} else {
			dup2(null, 0);
		}
		if (flags & PROC_OUT_PIPE) {
			close(out[0]);
			child_redirect(out[1], 1);
		} else if (flags & PROC_OUT_NULL) {
			dup2(null, 1);
		}
		if (flags & PROC_ERR_NULL) {
			dup2(null, 2);
		} else if (err_path) {
			int fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0644);

			child_redirect(fd, 2);
		}
		if (null > 2)
			close(null);
		if (env)
			execvpe(argv[0], (char *const *)argv, env);
		else
			execvp(argv[0], (char *const *)argv);
		fprintf(stderr, "gitkv-bench: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	free(env);
	p->pid = pid;
	p->pidfd = pidfd_open(pid, 0);
	if (flags & PROC_IN_PIPE) {
		close(in[0]);
		p->in = in[1];
	}
	if (flags & PROC_OUT_PIPE) {
		close(out[1]);
		p->out = out[0];
	}
	return 0;
fail:
	fprintf(stderr, "gitkv-bench: cannot start %s: %s\n", argv[0], strerror(errno));
	free(env);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return -1;
}

/* Wait up to `ms` (negative: forever) for the child to exit; true if it did. */
static bool proc_exited_within(struct proc *p, int ms)
{
	struct pollfd pfd = {.fd = p->pidfd, .events = POLLIN};
	int64_t end = bench_now_ns() + (int64_t)ms * 1000000;

	if (p->pidfd < 0) {
		/* no pidfd (old kernel): poll waitpid */
		while (ms < 0 || bench_now_ns() < end) {
			siginfo_t info = {0};

			if (waitid(P_PID, (id_t)p->pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			    info.si_pid == p->pid)
				return true;
			bench_sleep_ns(1000000);
		}
		return false;
	}
	for (;;) {
		int left = ms < 0 ? -1 : (int)((end - bench_now_ns()) / 1000000);
		int rc;

		if (ms >= 0 && left < 0)
			left = 0;
		rc = poll(&pfd, 1, left);
		if (rc > 0)
			return true;
		if (rc == 0)
			return false;
		if (errno == EINTR && bench_stopping())
			return false;
	}
}

static int reap(struct proc *p)
{
	int status = 0;

	while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (p->pidfd >= 0)
		close(p->pidfd);
	p->pidfd = -1;
	p->pid = -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

static void close_pipes(struct proc *p)
{
	if (p->in >= 0)
		close(p->in);
	if (p->out >= 0)
		close(p->out);
	p->in = p->out = -1;
}

int proc_wait(struct proc *p, double timeout_s)
{
	close_pipes(p);
	if (p->pid <= 0)
		return -1;
	if (proc_exited_within(p, (int)(timeout_s * 1000)))
		return reap(p);
	kill(p->pid, SIGKILL);
	reap(p);
	return -1;
}

/*
 * Read the child's stdout until EOF, the bound, or a stop request, handing
 * each chunk to `sink`. Returns 0 at EOF, -1 otherwise.
 */
static int drain(struct proc *p, double timeout_s, void (*sink)(void *, const char *, size_t),
		 void *ctx)
{
	int64_t end = bench_now_ns() + (int64_t)(timeout_s * 1e9);
	char buf[65536];

	for (;;) {
		struct pollfd pfd = {.fd = p->out, .events = POLLIN};
		int left = (int)((end - bench_now_ns()) / 1000000);
		ssize_t got;

		if (left <= 0 || bench_stopping())
			return -1;
		if (poll(&pfd, 1, left) <= 0)
			continue;
		got = read(p->out, buf, sizeof(buf));
		if (got == 0)
			return 0;
		if (got < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		sink(ctx, buf, (size_t)got);
	}
}

struct capture {
	char *out;
	size_t size, len;
};

static void capture_sink(void *ctx, const char *data, size_t n)
{
	struct capture *c = ctx;

	if (!c->out || c->len + 1 >= c->size)
		return;
	if (n > c->size - 1 - c->len)
		n = c->size - 1 - c->len;
	memcpy(c->out + c->len, data, n);
	c->len += n;
	c->out[c->len] = '\0';
}

int proc_run(const char *const argv[], double timeout_s, char *out, size_t outsz)
{
	struct capture c = {out, outsz, 0};
	struct proc p;
	int64_t start = bench_now_ns();
	double left;

	if (out && outsz)
		out[0] = '\0';
	if (proc_start(&p, argv, out ? PROC_OUT_PIPE : PROC_OUT_NULL, NULL) < 0)
		return -1;
	if (out && drain(&p, timeout_s, capture_sink, &c) < 0) {
		kill(p.pid, SIGKILL);
		proc_wait(&p, 5);
		return -1;
	}
	left = timeout_s - (double)(bench_now_ns() - start) / 1e9;
	return proc_wait(&p, left > 0.1 ? left : 0.1);
}

struct line_count {
	const char *prefix;
	size_t prefix_len;
	long lines, skipped;
	bool at_start;	/* the next byte begins a line */
	size_t matched; /* bytes of the prefix matched at the start of this line */
	bool skipping;
};

static void count_sink(void *ctx, const char *data, size_t n)
{
	struct line_count *c = ctx;

	for (size_t i = 0; i < n; i++) {
		if (c->at_start) {
			c->at_start = false;
			c->matched = 0;
			c->skipping = false;
		}
		if (c->prefix && c->matched < c->prefix_len && !c->skipping) {
			if (data[i] == c->prefix[c->matched]) {
				if (++c->matched == c->prefix_len)
					c->skipping = true;
			} else {
				c->matched = c->prefix_len + 1; /* no match on this line */
			}
		}
		if (data[i] == '\n') {
			if (c->skipping)
				c->skipped++;
			else
				c->lines++;
			c->at_start = true;
		}
	}
}

int proc_count_lines(const char *const argv[], double timeout_s, const char *skip_prefix,
		     long *lines, long *skipped)
{
	struct line_count c = {skip_prefix, skip_prefix ? strlen(skip_prefix) : 0, 0, 0, true, 0,
			       false};
	struct proc p;

	if (proc_start(&p, argv, PROC_OUT_PIPE, NULL) < 0)
		return -1;
	if (drain(&p, timeout_s, count_sink, &c) < 0) {
		kill(p.pid, SIGKILL);
		proc_wait(&p, 5);
		return -1;
	}
	*lines = c.lines;
	if (skipped)
		*skipped = c.skipped;
	return proc_wait(&p, timeout_s);
}

/* ---- daemons ------------------------------------------------------------- */

static void register_mount(struct bench_mount *m)
{
	for (int i = 0; i < MAX_MOUNTS; i++) {
		if (!registered[i]) {
			registered[i] = m;
			registered_pid[i] = m->daemon.pid;
			return;
		}
	}
}

static void unregister_mount(struct bench_mount *m)
{
	for (int i = 0; i < MAX_MOUNTS; i++) {
		if (registered[i] == m) {
			registered_pid[i] = 0;
			registered[i] = NULL;
		}
	}
}

void mount_signal_all(void)
{
	for (int i = 0; i < MAX_MOUNTS; i++) {
		if (registered_pid[i] > 0)
			kill(registered_pid[i], SIGTERM);
	}
}

void mount_init(struct bench_mount *m, const char *store, const char *mnt, const char *opts)
{
	memset(m, 0, sizeof(*m));
	m->daemon.pid = m->daemon.pidfd = m->daemon.in = m->daemon.out = -1;
	snprintf(m->store, sizeof(m->store), "%s", store);
	snprintf(m->mnt, sizeof(m->mnt), "%s", mnt);
	snprintf(m->log, sizeof(m->log), "%s.log", mnt);
	snprintf(m->opts, sizeof(m->opts), "%s", opts ? opts : "");
	mkdir(mnt, 0755);
}

/* Is `mnt` in the mount table (fuse.gitkvfs, or any type if !ours)? */
static bool is_mounted(const char *mnt, bool ours)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char point[4096], type[256];
		const char *dash;

		/* id parent major:minor root POINT opts... - TYPE source super */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1)
			continue;
		dash = strstr(line, " - ");
		if (!dash || sscanf(dash + 3, "%255s", type) != 1)
			continue;
		/* mountinfo escapes space, tab, newline and backslash as \ooo;
		 * the scratch paths hold none of them */
		if (strcmp(point, mnt) == 0 && (!ours || strcmp(type, "fuse.gitkvfs") == 0))
			found = true;
	}
	fclose(f);
	return found;
}

/* Print the end of a daemon's log to stderr. */
static void show_log(const struct bench_mount *m)
{
	FILE *f = fopen(m->log, "r");
	char line[1024];
	long size;

	if (!f)
		return;
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size > 4000 ? size - 4000 : 0, SEEK_SET);
	fprintf(stderr, "gitkv-bench: the daemon's log (%s) ends:\n", m->log);
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "  %s", line);
	fclose(f);
}

static bool log_has_sanitizer_report(const struct bench_mount *m)
{
	static const char *const marks[] = {
	    "ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer", "ERROR: ThreadSanitizer"};
	FILE *f = fopen(m->log, "r");
	char line[4096];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
			if (strstr(line, marks[i]))
				found = true;
		}
	}
	fclose(f);
	return found;
}

int mount_start(struct bench_mount *m, double timeout_s, int64_t *ns)
{
	const char *argv[8];
	int argc = 0, mi;
	int64_t start, end;
	struct stat st;

	argv[argc++] = bench.gitkvfs;
	argv[argc++] = "-f";
	if (m->opts[0]) {
		argv[argc++] = "-o";
		argv[argc++] = m->opts;
	}
	argv[argc++] = m->store;
	argv[argc++] = m->mnt;
	argv[argc] = NULL;

	if (is_mounted(m->mnt, false)) {
		bench_fail("%s is already a mount point", m->mnt);
		return -1;
	}
	mi = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	start = bench_now_ns();
	end = start + (int64_t)(timeout_s * 1e9);
	if (proc_start(&m->daemon, argv, PROC_NEW_GROUP | PROC_OUT_NULL, m->log) < 0) {
		if (mi >= 0)
			close(mi);
		bench_fail("cannot start %s", bench.gitkvfs);
		return -1;
	}
	register_mount(m);
	for (;;) {
		struct pollfd pfd[2] = {{.fd = mi, .events = POLLPRI},
					{.fd = m->daemon.pidfd, .events = POLLIN}};
		int left;

		if (is_mounted(m->mnt, true))
			break;
		left = (int)((end - bench_now_ns()) / 1000000);
		if (left <= 0 || bench_stopping() || proc_exited_within(&m->daemon, 0)) {
			if (mi >= 0)
				close(mi);
			if (!bench_stopping()) {
				bench_fail("mounting %s on %s: %s", m->store, m->mnt,
					   left <= 0 ? "not mounted in time" : "the daemon exited");
				show_log(m);
			}
			m->up = true; /* let stop() clean whatever there is */
			stop(m, true);
			return -1;
		}
		/* mountinfo signals POLLPRI on each change; cap the wait anyway */
		poll(pfd, 2, left < 20 ? left : 20);
		if (mi >= 0)
			lseek(mi, 0, SEEK_SET);
	}
	if (mi >= 0)
		close(mi);
	m->up = true;
	/* the first request the daemon answers: it serves */
	if (stat(m->mnt, &st) < 0) {
		bench_fail("stat %s after mounting: %s", m->mnt, strerror(errno));
		show_log(m);
		stop(m, true);
		return -1;
	}
	if (ns)
		*ns = bench_now_ns() - start;
	return 0;
}

int mount_stop(struct bench_mount *m)
{
	return stop(m, false);
}

/* Unmount and reap; `quiet`: the caller already reported a failure. */
static int stop(struct bench_mount *m, bool quiet)
{
	const char *argv[] = {"fusermount3", "-u", m->mnt, NULL};
	int status, ret = 0;

	if (!m->up)
		return 0;
	m->up = false;
	if (is_mounted(m->mnt, true) && proc_run(argv, 30, NULL, 0) != 0)
		fprintf(stderr, "gitkv-bench: fusermount3 -u %s failed; signalling the daemon\n",
			m->mnt);
	status = -1;
	if (m->daemon.pid > 0) {
		if (proc_exited_within(&m->daemon, 30000)) {
			status = reap(&m->daemon);
		} else {
			kill(m->daemon.pid, SIGTERM);
			if (proc_exited_within(&m->daemon, 10000)) {
				status = reap(&m->daemon);
			} else {
				kill(m->daemon.pid, SIGKILL);
				reap(&m->daemon);
			}
		}
	}
	if (is_mounted(m->mnt, false)) {
		fprintf(stderr, "gitkv-bench: %s still mounted; detaching it\n", m->mnt);
		umount2(m->mnt, MNT_DETACH);
	}
	unregister_mount(m);
	if (status != 0 && !quiet && !bench_stopping()) {
		bench_fail("the daemon of %s exited with status %d", m->mnt, status);
		show_log(m);
		ret = -1;
	}
	if (log_has_sanitizer_report(m)) {
		bench_fail("the daemon of %s reported a sanitizer error", m->mnt);
		show_log(m);
		ret = -1;
	}
	return ret;
}

void mount_stop_all(void)
{
	for (int i = 0; i < MAX_MOUNTS; i++) {
		if (registered[i])
			mount_stop(registered[i]);
	}
}

long mount_rss(const struct bench_mount *m)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	if (m->daemon.pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)m->daemon.pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	}
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}
