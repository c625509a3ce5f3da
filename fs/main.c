/*
 * main.c - gitkvfs: mount a gitkv store as a filesystem.
 *
 *	gitkvfs [options] STORE MOUNTPOINT
 *
 * A thin driver over the library in this directory: parse the command line
 * (options.c), open the store, build the filesystem (fs.c), then the
 * libfuse sequence of hello_ll.c. A failure is one line "gitkvfs: ..." on
 * the caller's terminal and exit status 1 (2 for a malformed command line
 * or configuration file), with nothing left mounted. Threads start only
 * after the fork (they would not survive it): the sync thread, the
 * notifier, the replay thread, the ref watcher and the TTL reaper (not on a
 * read-only mount).
 *
 * Detaching (without -f) is fuse_daemonize() in two steps, detach() and
 * detach_done(): the parent waits until the child has started its threads
 * and exits 0 only then, or 1 if the child exits first. The child keeps
 * the caller's stderr until then, so a failure after the fork is still
 * reported to the caller, and the mount is gone before the caller learns
 * of it.
 * When `gitkvfs STORE MNT` (or mount(8), through mount.fuse3) returns 0,
 * the mount serves requests.
 *
 * Signals. SIGTERM, SIGINT, SIGHUP and an unmount end the loop (libfuse's
 * handlers). SIGUSR1 asks for a sync round now: our handler is installed
 * before libfuse's (which only replace handlers still at SIG_DFL) and does
 * the async-signal-safe sync_engine_force() (a flag and a byte written to
 * its pipe); the round also retries remotes that are backing off. Every thread
 * we start blocks these signals, so the handler runs on the main thread or
 * a FUSE worker.
 *
 * Shutdown, after the loop: the reaper stops, the replay and notifier threads stop (the
 * kernel answers nobody now), the deletes still pending are committed, the
 * sync engine makes one last bounded push (10 s), the watcher stops, the
 * mount goes, and the store is closed; the exit status is 0.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gitkv/error.h>
#include <gitkv/remote.h>
#include <gitkv/store.h>
#include <gitkv_sync/engine.h>
#include <gitkv_sync/reaper.h>
#include <gitkv_sync/watcher.h>

#include "fs.h"
#include "options.h"

#define PROG "gitkvfs"

/* Seconds the last push at shutdown may take. */
#define FINAL_PUSH_TIMEOUT 10

/* The engine SIGUSR1 kicks; set on the main thread only, NULL when none. */
static sync_engine *volatile usr1_engine;

static bool show_debug; /* -d: let debug-level messages through */

/* Detached child: the pipe its parent waits on (see detach()); else -1. */
static int detach_fd = -1;

static void on_sigusr1(int sig)
{
	int saved = errno;

	sync_engine_force(usr1_engine); /* async-signal-safe; NULL is fine */
	errno = saved;
}

static int install_sigusr1(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) == -1) {
		fprintf(stderr, "%s: cannot install the SIGUSR1 handler: %s\n", PROG,
			strerror(errno));
		return -1;
	}
	return 0;
}

/* libfuse's messages and ours, to stderr; debug level only with -d. */
static void log_func(enum fuse_log_level level, const char *fmt, va_list ap)
{
	if (level >= FUSE_LOG_DEBUG && !show_debug)
		return;
	vfprintf(stderr, fmt, ap);
}

/*
 * Record the remotes in the store's git config, so that `gitkv sync` and
 * plain git know them too. A failure (a read-only repository) costs only
 * that: one warning line.
 */
static void record_remotes(gitkv_store *store, const struct gitkvfs_options *opts)
{
	for (size_t i = 0; i < opts->nremotes && !opts->readonly; i++) {
		if (gitkv_remote_save(store, opts->remotes[i].name, opts->remotes[i].url) < 0)
			fprintf(stderr, "%s: warning: cannot record remote '%s' in the store: %s\n",
				PROG, opts->remotes[i].name, gitkv_error_last());
	}
}

/* Start the sync thread with the remotes of `opts`; 0 or GITKV_ERROR. */
static int start_sync(sync_engine **out, gitkv_store *store, const struct gitkvfs_options *opts)
{
	sync_options so = {0};
	sync_remote *remotes = NULL;
	int code;

	*out = NULL;
	if (!opts->nremotes)
		return 0;
	if (!(remotes = calloc(opts->nremotes, sizeof(*remotes))))
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	for (size_t i = 0; i < opts->nremotes; i++) {
		remotes[i].name = opts->remotes[i].name;
		remotes[i].url = opts->remotes[i].url;
	}
	so.remotes = remotes;
	so.nremotes = opts->nremotes;
	so.interval_s = opts->sync_interval;
	so.remote = (gitkv_remote_options)GITKV_REMOTE_OPTIONS_INIT;
	so.remote.credentials_file = opts->credentials_file;
	so.remote.ssh_key = opts->ssh_key;
	so.remote.timeout_s = opts->sync_timeout;
	code = sync_engine_start(out, store, &so); /* copies what it keeps */
	free(remotes);
	return code;
}

/*
 * Without -f: fork; the parent waits on a pipe and exits 0 once the child
 * calls detach_done(), 1 if the child exits without calling it. The child
 * leaves the caller's session. With or without -f, change to / (every path
 * was made absolute). 0 or -1 (message printed).
 */
static int detach(bool foreground)
{
	int waiter[2];
	ssize_t n;
	char ready;

	if (!foreground) {
		if (pipe2(waiter, O_CLOEXEC) == -1) {
			fprintf(stderr, "%s: cannot detach: %s\n", PROG, strerror(errno));
			return -1;
		}
		switch (fork()) {
		case -1:
			fprintf(stderr, "%s: cannot detach: %s\n", PROG, strerror(errno));
			close(waiter[0]);
			close(waiter[1]);
			return -1;
		case 0:
			break;
		default:
			close(waiter[1]);
			do
				n = read(waiter[0], &ready, 1);
			while (n == -1 && errno == EINTR);
			_exit(n == 1 ? 0 : 1);
		}
		close(waiter[0]);
		detach_fd = waiter[1];
		if (setsid() == -1) {
			fprintf(stderr, "%s: cannot detach: setsid: %s\n", PROG, strerror(errno));
			return -1;
		}
	}
	if (chdir("/") == -1) {
		fprintf(stderr, "%s: cannot change to /: %s\n", PROG, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The detached child is ready: let go of the caller's terminal (stdio to
 * /dev/null), then let the parent exit 0. Nothing with -f.
 */
static void detach_done(void)
{
	int nullfd;

	if (detach_fd == -1)
		return;
	nullfd = open("/dev/null", O_RDWR);
	if (nullfd != -1) {
		dup2(nullfd, STDIN_FILENO);
		dup2(nullfd, STDOUT_FILENO);
		dup2(nullfd, STDERR_FILENO);
		if (nullfd > STDERR_FILENO)
			close(nullfd);
	}
	if (write(detach_fd, "", 1) != 1) {
		/* the parent is gone: nobody is waiting */
	}
	close(detach_fd);
	detach_fd = -1;
}

static int usage_error(void)
{
	fprintf(stderr, "%s: %s\n", PROG, gitkv_error_last());
	fs_options_usage(stderr, PROG);
	fprintf(stderr, "Try '%s --help' for more information.\n", PROG);
	return 2;
}

/* A configuration file is wrong: one line, "gitkvfs: PATH:LINE: what is wrong". */
static int config_error(void)
{
	fprintf(stderr, "%s: %s\n", PROG, gitkv_error_last());
	return 2;
}

static int run_loop(struct fuse_session *se, const struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *config;
	int ret;

	if (cmd->singlethread)
		return fuse_session_loop(se);
	config = fuse_loop_cfg_create();
	if (!config)
		return -1;
	fuse_loop_cfg_set_clone_fd(config, (unsigned int)cmd->clone_fd);
	fuse_loop_cfg_set_max_threads(config, cmd->max_threads);
	if (cmd->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(config, cmd->max_idle_threads);
	ret = fuse_session_loop_mt(se, config);
	fuse_loop_cfg_destroy(config);
	return ret;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	gitkv_store_options sopts = GITKV_STORE_OPTIONS_INIT;
	struct gitkvfs_options opts;
	struct fuse_session *se = NULL;
	struct gitkvfs *fs = NULL;
	gitkv_store *store = NULL;
	sync_watcher *watcher = NULL;
	sync_engine *engine = NULL;
	sync_reaper *reaper = NULL;
	int ret = 1, loop;
	bool mounted = false, handlers = false;

	if (fs_options_parse(&args, &opts) < 0) {
		ret = usage_error();
		goto out;
	}
	if (opts.cmdline.show_help) {
		fs_options_help(PROG);
		ret = 0;
		goto out;
	}
	if (opts.cmdline.show_version) {
		printf("%s %s\n", PROG, GITKV_VERSION);
		ret = 0;
		goto out;
	}
	/* the configuration file: values -o did not set; its errors name its line */
	if (fs_options_load_config(&args, &opts) < 0 || fs_options_validate(&opts) < 0) {
		ret = opts.error_in_file ? config_error() : usage_error();
		goto out;
	}
	show_debug = opts.cmdline.debug;
	fuse_set_log_func(log_func);
	if (fs_options_check_mountpoint(&opts) < 0) {
		fprintf(stderr, "%s: %s\n", PROG, gitkv_error_last());
		goto out;
	}

	sopts.node = opts.node;
	sopts.committer = PROG;
	sopts.max_value_size = opts.max_value_size;
	sopts.fsync = opts.fsync;
	sopts.create = opts.init;
	sopts.mtimes = true;
	sopts.readonly = opts.readonly;
	if (gitkv_store_open(&store, opts.store, &sopts) < 0) {
		fprintf(stderr, "%s: cannot open store '%s': %s\n", PROG, opts.store,
			gitkv_error_last());
		goto out;
	}
	record_remotes(store, &opts);
	if (fs_new(&fs, store, &opts) < 0) {
		fprintf(stderr, "%s: %s\n", PROG, gitkv_error_last());
		goto out;
	}

	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), fs);
	if (!se)
		goto out; /* libfuse said why */
	/* before libfuse's, which skip handlers that are not SIG_DFL */
	if (install_sigusr1() < 0 || fuse_set_signal_handlers(se) != 0)
		goto out;
	handlers = true;
	if (fuse_session_mount(se, opts.cmdline.mountpoint) != 0)
		goto out;
	mounted = true;
	if (detach(opts.cmdline.foreground) != 0)
		goto out;

	/* threads from here on: they would not survive the fork */
	if (start_sync(&engine, store, &opts) < 0 ||
	    fs_start(fs, se, opts.cmdline.mountpoint, engine) < 0 ||
	    sync_watcher_start(&watcher, store) < 0 ||
	    (!opts.readonly && sync_reaper_start(&reaper, store) < 0)) {
		fuse_log(FUSE_LOG_ERR, "%s: %s\n", PROG, gitkv_error_last());
		goto out;
	}
	fs->reaper = reaper; /* for the metrics; read only by request handlers */
	usr1_engine = engine;
	detach_done(); /* the caller may use the mount now */
	loop = run_loop(se, &opts.cmdline);
	/* a signal (positive) or an unmount (0) is the normal way out */
	ret = loop < 0 ? 1 : 0;
	if (loop < 0)
		fuse_log(FUSE_LOG_ERR, "%s: the session ended with an error\n", PROG);

out:
	if (fs)
		fs->reaper = NULL;
	sync_reaper_stop(reaper); /* first: its commits are replayed, and pushed below */
	if (fs) {
		fs_stop(fs);
		if (mounted && fs_commit_pending(fs))
			ret = 1;
	}
	usr1_engine = NULL; /* only this thread takes SIGUSR1 now */
	sync_engine_stop(engine, FINAL_PUSH_TIMEOUT);
	sync_watcher_stop(watcher);
	if (mounted)
		fuse_session_unmount(se);
	if (fs)
		fs_join(fs);
	if (handlers)
		fuse_remove_signal_handlers(se);
	if (se)
		fuse_session_destroy(se);
	gitkv_store_free(store);
	fs_free(fs); /* after the store: it calls the subscriber until freed */
	fs_options_release(&opts);
	fuse_opt_free_args(&args);
	return ret;
}
