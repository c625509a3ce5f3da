/*
 * main.c - gitkvfs: mount a gitkv store as a filesystem.
 *
 *	gitkvfs [options] STORE MOUNTPOINT
 *
 * A thin driver over the library in this directory: parse the command line
 * (options.c), open the store, build the filesystem (fs.c), then the
 * libfuse sequence of hello_ll.c. Every step that can fail runs before
 * fuse_daemonize(), so a failure is one line "gitkvfs: ..." on the caller's
 * terminal and exit status 1 (2 for a malformed command line), with nothing
 * left mounted. Threads start only after the fork (they would not survive
 * it): the notifier and the ref watcher. SIGTERM, SIGINT, SIGHUP and an
 * unmount end the loop (libfuse's handlers); then the threads stop, the
 * deletes still pending are committed, the mount goes and the store is
 * closed, and the exit status is 0.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <gitkv/error.h>
#include <gitkv/store.h>
#include <gitkv_sync/watcher.h>

#include "fs.h"
#include "options.h"

#define PROG "gitkvfs"

static int usage_error(void)
{
	fprintf(stderr, "%s: %s\n", PROG, gitkv_error_last());
	fs_options_usage(stderr, PROG);
	fprintf(stderr, "Try '%s --help' for more information.\n", PROG);
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
	if (fs_options_validate(&opts) < 0) {
		ret = usage_error();
		goto out;
	}
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
	if (fs_new(&fs, store, &opts) < 0) {
		fprintf(stderr, "%s: %s\n", PROG, gitkv_error_last());
		goto out;
	}

	se = fuse_session_new(&args, &fs_ops, sizeof(fs_ops), fs);
	if (!se)
		goto out; /* libfuse said why */
	if (fuse_set_signal_handlers(se) != 0)
		goto out;
	handlers = true;
	if (fuse_session_mount(se, opts.cmdline.mountpoint) != 0)
		goto out;
	mounted = true;
	if (fuse_daemonize(opts.cmdline.foreground) != 0)
		goto out;

	if (fs_start(fs, se, opts.cmdline.mountpoint) < 0 ||
	    sync_watcher_start(&watcher, store) < 0) {
		fuse_log(FUSE_LOG_ERR, "%s: %s\n", PROG, gitkv_error_last());
		goto out;
	}
	loop = run_loop(se, &opts.cmdline);
	/* a signal (positive) or an unmount (0) is the normal way out */
	ret = loop < 0 ? 1 : 0;
	if (loop < 0)
		fuse_log(FUSE_LOG_ERR, "%s: the session ended with an error\n", PROG);

out:
	sync_watcher_stop(watcher);
	if (fs) {
		fs_stop(fs);
		if (mounted && fs_commit_pending(fs))
			ret = 1;
	}
	if (mounted)
		fuse_session_unmount(se);
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
