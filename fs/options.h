/*
 * options.h - gitkvfs's command line: `gitkvfs [options] STORE MOUNTPOINT`.
 *
 * One struct holds every setting, filled by fuse_opt_parse() from one table
 * that is also the --help text (options.c). The standard FUSE options (-f,
 * -d, -s, -o allow_other, -o default_permissions, ...) stay in the argument
 * vector for fuse_parse_cmdline() and fuse_session_new(); options that only
 * make sense in /etc/fstab (auto, noauto, user, nouser, users, _netdev,
 * nofail, defaults, x-*) are dropped. `-o subtype=gitkvfs,fsname=STORE` is
 * added so that /proc/mounts names the store.
 *
 * `-o remote=` may be given several times; each adds one remote (name and
 * URL) to opts->remotes, in order. Paths (the store, local remotes, the
 * credentials file and the ssh key) are made absolute here, because the
 * daemon changes to / when it detaches.
 *
 * Errors are reported through gitkv_error_set() (gitkv_error_last() holds
 * the one-line message, without the program name).
 *
 * Threads: main thread only, before the session exists.
 */
#ifndef GITKVFS_OPTIONS_H
#define GITKVFS_OPTIONS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <stdio.h>

/* One `-o remote=[NAME=]URL`. */
struct gitkvfs_remote {
	char *name; /* [A-Za-z0-9._-]+; r1, r2, ... when not given */
	char *url;  /* a local path made absolute, or the URL as given */
};

enum gitkvfs_sync_mode {
	GITKVFS_SYNC_ASYNC, /* a write is acknowledged once committed locally */
	GITKVFS_SYNC_SYNC,  /* ... once `quorum` remotes hold it (or EIO) */
};

struct gitkvfs_options {
	/* -o options (the table in options.c) */
	int init;     /* create the store if missing */
	int fsync;    /* durable commits */
	int readonly; /* -o ro: also passed on to the mount */
	char *node;   /* node name, or NULL for the host name */
	char *ignore; /* ignore patterns, or NULL for the defaults */
	char *config; /* configuration file (not read yet) */
	unsigned long max_value_size;
	double entry_timeout; /* seconds */
	double attr_timeout;  /* seconds */
	int noreplay;	      /* external changes only invalidate the kernel's cache */

	/* sync */
	struct gitkvfs_remote *remotes; /* -o remote=, in the order given */
	size_t nremotes;
	int too_many_remotes; /* more were given than fit */
	int sync_interval;    /* seconds between rounds */
	int sync_timeout;     /* seconds a write waits for its quorum (and transport bound) */
	int quorum;	      /* remotes that must hold a write in sync mode */
	char *sync_mode_arg;  /* -o sync_mode= as given, or NULL */
	enum gitkvfs_sync_mode sync_mode; /* set by validate() */
	char *credentials_file;		  /* https credentials (a path; the secret stays in it) */
	char *ssh_key;			  /* ssh private key file */

	/* positional arguments */
	char *store;	      /* STORE, made absolute */
	char *mountpoint_arg; /* MOUNTPOINT as given */
	int extra_args;	      /* positional arguments past the second */

	/* what fuse_parse_cmdline() found; cmdline.mountpoint is set by
	 * fs_options_check_mountpoint() */
	struct fuse_cmdline_opts cmdline;
};

/*
 * Fill `opts` with the defaults, then parse `args`: our options are taken
 * out, the standard FUSE ones left in. Returns 0, or GITKV_EINVALID for a
 * malformed command line (message recorded).
 */
int fs_options_parse(struct fuse_args *args, struct gitkvfs_options *opts);

/*
 * Check what parse() could not: both positional arguments present, no
 * extra ones, values in range, remotes well-formed and distinct, the quorum
 * reachable, the credential files readable; set opts->sync_mode. Returns 0
 * or GITKV_EINVALID.
 */
int fs_options_validate(struct gitkvfs_options *opts);

/*
 * Check that MOUNTPOINT exists, is a directory and is not a mount point
 * already; on success set opts->cmdline.mountpoint to its real path.
 * Returns 0 or GITKV_EINVALID ("mountpoint 'X' does not exist", "... is
 * already mounted", ...).
 */
int fs_options_check_mountpoint(struct gitkvfs_options *opts);

/* Print the usage line and every option (ours, then libfuse's) to stdout. */
void fs_options_help(const char *progname);

/* The one-line usage summary. */
void fs_options_usage(FILE *out, const char *progname);

/* Free what parse() allocated. */
void fs_options_release(struct gitkvfs_options *opts);

#endif
