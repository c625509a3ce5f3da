/*
 * bench.c - gitkv-bench: gitkvfs against its baselines, in one table.
 *
 *	gitkv-bench [--quick] [--gitkvfs PATH] [--gitkv PATH] [--json FILE]
 *	            [--dir DIR] [--keep] [--no-drop-caches] [--only N,...]
 *
 * One run builds everything it needs in a mkdtemp directory (stores with
 * git fast-import, the same trees as plain files on the disk that backs the
 * directory, a tmpfs it mounts), runs the workloads of workloads.c and
 * sync.c (all of them, or those --only names), prints the machine and the
 * table, and removes what it made. Daemons are always unmounted and reaped,
 * also on failure and on ^C (a second ^C SIGTERMs them and leaves at once).
 *
 * Exit status: 0 when every workload ran, whatever the timings (targets are
 * reported PASS/MISS for information); 1 when something broke (a mount
 * failed, a read returned wrong bytes, a write failed); 2 usage; 77 no FUSE
 * on this machine (CTest's skip); 130 interrupted.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef GITKV_BENCH_GITKVFS
#define GITKV_BENCH_GITKVFS "gitkvfs"
#endif
#ifndef GITKV_BENCH_GITKV
#define GITKV_BENCH_GITKV "gitkv"
#endif

#define TMPFS_MAGIC_NUMBER 0x01021994

struct bench_config bench;

static volatile sig_atomic_t stop_signals;
static int failures;
static bool tmpfs_mounted;
static char only_text[64]; /* the --only list, for the machine lines */

/* ---- shared services ---------------------------------------------------- */

int64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool bench_selected(int n)
{
	if (!bench.only)
		return true;
	if (n >= 1 && n <= 4)
		return (bench.only & 0x1e) != 0;
	return (bench.only & (1u << n)) != 0;
}

bool bench_stopping(void)
{
	return stop_signals > 0;
}

void bench_fail(const char *fmt, ...)
{
	va_list ap;

	failures++;
	if (bench_stopping())
		return; /* interrupted: what fails now is our own doing */
	fputs("gitkv-bench: FAIL: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int bench_path(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		bench_fail("path too long: %s...", buf);
		return -1;
	}
	return 0;
}

void bench_text(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

void bench_note(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void bench_sleep_ns(int64_t ns)
{
	struct timespec ts = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};

	nanosleep(&ts, NULL);
}

int bench_drop_caches(void)
{
	int fd;
	bool ok;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ok = write(fd, "3", 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

/* ---- signals ----------------------------------------------------------------- */

static void on_signal(int sig)
{
	static const char msg[] = "\ngitkv-bench: interrupted; unmounting (again to leave now)\n";

	if (stop_signals++ == 0) {
		if (write(2, msg, sizeof(msg) - 1) < 0) {
			/* nothing to do about it */
		}
		return;
	}
	/* a second signal: let the daemons unmount themselves, and go */
	mount_signal_all();
	_exit(128 + sig);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a blocked wait returns EINTR and sees the flag */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* ---- the scratch directory ---------------------------------------------------- */

/* The mount that holds `path` (longest mount point prefix): type, source. */
static void filesystem_of(const char *path, char *type, size_t tsize, char *source, size_t ssize)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192];
	size_t best = 0;

	snprintf(type, tsize, "unknown");
	snprintf(source, ssize, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char point[4096], t[256], src[1024];
		const char *dash = strstr(line, " - ");
		size_t len;

		if (sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 || !dash ||
		    sscanf(dash + 3, "%255s %1023s", t, src) != 2)
			continue;
		len = strlen(point);
		if (strncmp(path, point, len) != 0 ||
		    (len > 1 && path[len] != '/' && path[len] != '\0'))
			continue;
		if (len >= best) {
			best = len;
			bench_text(type, tsize, "%s", t);
			bench_text(source, ssize, "%s", src);
		}
	}
	fclose(f);
}

static int setup_tmpfs(void)
{
	char dir[4096 + 16];
	struct statfs sf;

	snprintf(dir, sizeof(dir), "%s/tmpfs", bench.root);
	if (mkdir(dir, 0755) == 0 &&
	    mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0755") == 0) {
		tmpfs_mounted = true;
		bench_text(bench.tmpfs_dir, sizeof(bench.tmpfs_dir), "%s", dir);
		snprintf(bench.tmpfs_how, sizeof(bench.tmpfs_how), "a tmpfs mounted for the run");
		return 0;
	}
	/* not root: /dev/shm is a tmpfs on most systems */
	snprintf(dir, sizeof(dir), "/dev/shm/gitkv-bench.XXXXXX");
	if (statfs("/dev/shm", &sf) == 0 && sf.f_type == TMPFS_MAGIC_NUMBER && mkdtemp(dir)) {
		bench_text(bench.tmpfs_dir, sizeof(bench.tmpfs_dir), "%s", dir);
		snprintf(bench.tmpfs_how, sizeof(bench.tmpfs_how), "/dev/shm");
		return 0;
	}
	bench_note("no tmpfs available: the tmpfs baseline is left out");
	return 0;
}

static int setup_scratch(const char *parent)
{
	char templ[4096], *real;

	snprintf(templ, sizeof(templ), "%s/gitkv-bench.XXXXXX", parent);
	if (!mkdtemp(templ)) {
		fprintf(stderr, "gitkv-bench: cannot create a directory in %s: %s\n", parent,
			strerror(errno));
		return -1;
	}
	/* the mount table names canonical paths */
	real = realpath(templ, NULL);
	snprintf(bench.root, sizeof(bench.root), "%s", real ? real : templ);
	free(real);
	if (bench_path(bench.disk_dir, sizeof(bench.disk_dir), "%s/disk", bench.root) < 0 ||
	    bench_path(bench.git_env_home, sizeof(bench.git_env_home), "%s/home", bench.root) < 0)
		return -1;
	if (mkdir(bench.disk_dir, 0755) < 0 || mkdir(bench.git_env_home, 0755) < 0) {
		fprintf(stderr, "gitkv-bench: mkdir in %s: %s\n", bench.root, strerror(errno));
		return -1;
	}
	filesystem_of(bench.disk_dir, bench.disk_label, sizeof(bench.disk_label), bench.disk_source,
		      sizeof(bench.disk_source));
	return setup_tmpfs();
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void remove_scratch(void)
{
	if (tmpfs_mounted && umount2(bench.tmpfs_dir, 0) < 0)
		umount2(bench.tmpfs_dir, MNT_DETACH);
	if (bench.tmpfs_dir[0] && !tmpfs_mounted)
		nftw(bench.tmpfs_dir, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	if (bench.root[0] && !bench.keep)
		/* FTW_MOUNT: never into anything still mounted below */
		nftw(bench.root, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	else if (bench.root[0])
		bench_note("kept %s", bench.root);
}

/* Git must not read this machine's or this user's configuration. */
static void set_git_environment(void)
{
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("HOME", bench.git_env_home, 1);
	setenv("GIT_AUTHOR_NAME", "gitkv-bench", 1);
	setenv("GIT_AUTHOR_EMAIL", "bench@example.invalid", 1);
	setenv("GIT_COMMITTER_NAME", "gitkv-bench", 1);
	setenv("GIT_COMMITTER_EMAIL", "bench@example.invalid", 1);
	setenv("LC_ALL", "C", 1);
	unsetenv("GIT_DIR");
	unsetenv("GIT_WORK_TREE");
	unsetenv("GIT_INDEX_FILE");
	unsetenv("GITKV_STORE");
}

/* ---- the machine ------------------------------------------------------------- */

static void cpu_model(char *buf, size_t size)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(buf, size, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char *colon = strchr(line, ':');

		if (strncmp(line, "model name", 10) == 0 && colon) {
			colon += 2;
			colon[strcspn(colon, "\n")] = '\0';
			snprintf(buf, size, "%s", colon);
			break;
		}
	}
	fclose(f);
}

static void describe_machine(void)
{
	char buf[512], model[256];
	struct utsname u;
	struct sysinfo si;
	double load[3];
	time_t now = time(NULL);

	cpu_model(model, sizeof(model));
	snprintf(buf, sizeof(buf), "%ld online (%s)", sysconf(_SC_NPROCESSORS_ONLN), model);
	report_machine("cores", buf);
	if (sysinfo(&si) == 0) {
		snprintf(buf, sizeof(buf), "%.1f GiB",
			 (double)si.totalram * si.mem_unit / (1024.0 * 1024 * 1024));
		report_machine("memory", buf);
	}
	if (uname(&u) == 0) {
		snprintf(buf, sizeof(buf), "%s %s %s", u.sysname, u.release, u.machine);
		report_machine("kernel", buf);
	}
	snprintf(buf, sizeof(buf), "%s (the scratch directory's filesystem, on %s)",
		 bench.disk_label, bench.disk_source);
	report_machine("disk", buf);
	snprintf(buf, sizeof(buf), "%s", bench.tmpfs_dir[0] ? bench.tmpfs_how : "none");
	report_machine("tmpfs", buf);
	if (getloadavg(load, 3) == 3) {
		snprintf(buf, sizeof(buf), "%.2f %.2f %.2f (1, 5, 15 min)", load[0], load[1],
			 load[2]);
		report_machine("load_start", buf);
	}
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	report_machine("date", buf);
	snprintf(buf, sizeof(buf), "%s%s%s", bench.quick ? "--quick" : "full",
		 only_text[0] ? ", --only " : "", only_text);
	report_machine("mode", buf);
}

/* ---- main ----------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fputs("usage: gitkv-bench [--quick] [--gitkvfs PATH] [--gitkv PATH] [--json FILE]\n"
	      "                   [--dir DIR] [--keep] [--no-drop-caches] [--only N,...]\n"
	      "\n"
	      "Run every workload against gitkvfs and its baselines, interleaved, and\n"
	      "print one table (median, p99, ops/s, ratios, targets).\n"
	      "\n"
	      "  --quick            small sizes and few samples: under a minute\n"
	      "  --gitkvfs PATH     the daemon to measure (default: the one built beside)\n"
	      "  --gitkv PATH       the command-line tool (default: the one built beside)\n"
	      "  --json FILE        also write the figures as JSON\n"
	      "  --dir DIR          where to make the scratch directory (default $TMPDIR, /tmp)\n"
	      "  --keep             leave the scratch directory\n"
	      "  --no-drop-caches   never drop the page cache for cold reads\n"
	      "  --only N,...       run only these workloads (1-8; 1-4 run together)\n"
	      "\n"
	      "Exit status: 0 the workloads ran (timings never fail a run), 1 something\n"
	      "broke, 2 usage, 77 no FUSE here, 130 interrupted.\n",
	      f);
}

/* "7,8" -> bits 7 and 8; -1 if not a list of workload numbers. */
static int parse_only(const char *list, unsigned *out)
{
	const char *p = list;

	*out = 0;
	while (*p) {
		char *end;
		long n = strtol(p, &end, 10);

		if (end == p || n < 1 || n > 8 || (*end && (*end != ',' || !end[1])))
			return -1;
		*out |= 1u << n;
		p = *end ? end + 1 : end;
	}
	return *out ? 0 : -1;
}

static const char *absolute(const char *path)
{
	char *real;

	if (!strchr(path, '/'))
		return path; /* found in PATH at exec time */
	real = realpath(path, NULL);
	return real ? real : path;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"quick", no_argument, NULL, 'q'},		{"gitkvfs", required_argument, NULL, 'F'},
	    {"gitkv", required_argument, NULL, 'G'},	{"json", required_argument, NULL, 'j'},
	    {"dir", required_argument, NULL, 'd'},	{"keep", no_argument, NULL, 'k'},
	    {"no-drop-caches", no_argument, NULL, 'D'}, {"only", required_argument, NULL, 'o'},
	    {"help", no_argument, NULL, 'h'},		{NULL, 0, NULL, 0}};
	const char *parent = getenv("TMPDIR");
	int64_t start = bench_now_ns();
	double load[3];
	char buf[128];
	int opt, fd, err = 0;

	bench.gitkvfs = GITKV_BENCH_GITKVFS;
	bench.gitkv = GITKV_BENCH_GITKV;
	bench.drop_caches = true;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'q':
			bench.quick = true;
			break;
		case 'F':
			bench.gitkvfs = optarg;
			break;
		case 'G':
			bench.gitkv = optarg;
			break;
		case 'j':
			bench.json = optarg;
			break;
		case 'd':
			parent = optarg;
			break;
		case 'k':
			bench.keep = true;
			break;
		case 'D':
			bench.drop_caches = false;
			break;
		case 'o':
			if (parse_only(optarg, &bench.only) < 0) {
				fprintf(stderr,
					"gitkv-bench: --only takes workload numbers 1-8: %s\n",
					optarg);
				return 2;
			}
			bench_text(only_text, sizeof(only_text), "%s", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	bench.gitkvfs = absolute(bench.gitkvfs);
	bench.gitkv = absolute(bench.gitkv);
	if (!parent || !*parent)
		parent = "/tmp";

	fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("gitkv-bench: skipped: /dev/fuse: %s\n", strerror(errno));
		return 77;
	}
	close(fd);

	install_signals();
	if (setup_scratch(parent) < 0) {
		remove_scratch();
		return 1;
	}
	set_git_environment();
	describe_machine();
	bench_note("gitkv-bench %s: scratch %s (%s), gitkvfs %s", bench.quick ? "--quick" : "full",
		   bench.root, bench.disk_label, bench.gitkvfs);

	if (bench_selected(1) && workload_small() < 0)
		err = -1;
	if (!bench_stopping() && bench_selected(5) && workload_scale() < 0)
		err = -1;
	if (!bench_stopping() && bench_selected(6) && workload_walk() < 0)
		err = -1;
	if (!bench_stopping() && bench_selected(7) && workload_propagation() < 0)
		err = -1;
	if (!bench_stopping() && bench_selected(8) && workload_round() < 0)
		err = -1;

	mount_stop_all();
	remove_scratch();

	if (getloadavg(load, 3) == 3) {
		snprintf(buf, sizeof(buf), "%.2f %.2f %.2f (1, 5, 15 min)", load[0], load[1],
			 load[2]);
		report_machine("load_end", buf);
	}
	snprintf(buf, sizeof(buf), "%.0f s", (double)(bench_now_ns() - start) / 1e9);
	report_machine("runtime", buf);
	report_print(stdout);
	printf(
	    "\nratio: gitkvfs' median / the baseline's (time; below 1 means gitkvfs is faster);\n"
	    "for concurrent writers, writes/s over 1 writer's; at scale, the median over the\n"
	    "smallest store's (the flat directory: over the hierarchical store of its size).\n"
	    "Propagation: the median over the sync interval; sync round: over the 1k store's.\n"
	    "Targets are informational: timing never changes the exit status.\n");
	if (bench.json && report_json(bench.json, (double)(bench_now_ns() - start) / 1e9) < 0) {
		fprintf(stderr, "gitkv-bench: cannot write %s\n", bench.json);
		err = -1;
	}
	if (bench_stopping())
		return 130;
	if (err || failures) {
		fprintf(stderr, "gitkv-bench: %d failure(s): see the FAIL lines above\n",
			failures ? failures : 1);
		return 1;
	}
	return 0;
}
