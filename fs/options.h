/*
 * options.h - gitkvfs's settings: `gitkvfs [options] STORE MOUNTPOINT`,
 * and the configuration file.
 *
 * One struct holds every setting. Its values come, each overriding the
 * last, from the built-in defaults, the configuration file (libconfig,
 * config.h: `-o config=PATH`, else /etc/gitkvfs.conf when it exists) and
 * `-o`, filled by fuse_opt_parse() from one table that is also the --help
 * text (options.c). opts->from[] records where each value came from, so
 * that the file fills only what -o left alone and a bad value is reported
 * where it was written ("PATH:LINE: ..." for the file).
 *
 * The standard FUSE options (-f, -d, -s, -o allow_other, -o
 * default_permissions, ...) stay in the argument vector for
 * fuse_parse_cmdline() and fuse_session_new(); options that only make sense
 * in /etc/fstab (auto, noauto, user, nouser, users, _netdev, nofail,
 * defaults, x-*, owner, group, comment=, and the access-time flags, which
 * mean nothing here: a key's atime is its mtime) are dropped. `-o subtype=gitkvfs,fsname=STORE` is added so
 * that /proc/mounts names the store.
 *
 * `-o remote=` may be given several times; each adds one remote (name and
 * URL) to opts->remotes, in order; remotes given with -o replace the
 * file's. Paths (the store, local remotes, the credentials file and the
 * ssh key) are made absolute, because the daemon changes to / when it
 * detaches: those of -o against the working directory, those of the file
 * against the file's directory.
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
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

/* The configuration file read when -o config= is not given, if it exists. */
#define GITKVFS_DEFAULT_CONFIG "/etc/gitkvfs.conf"

/* One remote: `-o remote=[NAME=]URL`, or one of the file's `remotes`. */
struct gitkvfs_remote {
	char *name; /* [A-Za-z0-9._-]+; r1, r2, ... when not given */
	char *url;  /* a local path made absolute, or the URL as given */
	int line;   /* where the configuration file gives it, or 0 */
};

enum gitkvfs_sync_mode {
	GITKVFS_SYNC_ASYNC, /* a write is acknowledged once committed locally */
	GITKVFS_SYNC_SYNC,  /* ... once `quorum` remotes hold it (or EIO) */
};

/* Every setting of the table in options.c, named as in -o and in the file. */
enum gitkvfs_opt {
	GITKVFS_OPT_INIT,
	GITKVFS_OPT_NODE,
	GITKVFS_OPT_MAX_VALUE_SIZE,
	GITKVFS_OPT_IGNORE,
	GITKVFS_OPT_FSYNC,
	GITKVFS_OPT_ENTRY_TIMEOUT,
	GITKVFS_OPT_ATTR_TIMEOUT,
	GITKVFS_OPT_RO,
	GITKVFS_OPT_CONFIG,
	GITKVFS_OPT_NOREPLAY,
	GITKVFS_OPT_REMOTE,
	GITKVFS_OPT_SYNC_INTERVAL,
	GITKVFS_OPT_SYNC_MODE,
	GITKVFS_OPT_QUORUM,
	GITKVFS_OPT_SYNC_TIMEOUT,
	GITKVFS_OPT_CREDENTIALS_FILE,
	GITKVFS_OPT_SSH_KEY,
	GITKVFS_OPT_UID,
	GITKVFS_OPT_GID,
	GITKVFS_OPT_UMASK,
	GITKVFS_OPT_COUNT
};

/* opts->from[]: the built-in default, -o; a positive value is the file's line. */
#define GITKVFS_FROM_DEFAULT 0
#define GITKVFS_FROM_CMDLINE (-1)

/* How the configuration file gives a setting, and where it goes (config.c). */
enum gitkvfs_kind {
	GITKVFS_KIND_NONE,     /* not in the file (config= itself) */
	GITKVFS_KIND_BOOL,     /* true or false, into an int */
	GITKVFS_KIND_INT,      /* an integer, into an int */
	GITKVFS_KIND_ULONG,    /* an integer, into an unsigned long */
	GITKVFS_KIND_FLOAT,    /* a number (an integer will do), into a double */
	GITKVFS_KIND_STRING,   /* a string, into a malloc'd char * */
	GITKVFS_KIND_PATH,     /* the same, a path relative to the file's directory */
	GITKVFS_KIND_ID,       /* an integer or a name, kept as a string */
	GITKVFS_KIND_OCTAL,    /* a string of octal digits */
	GITKVFS_KIND_PATTERNS, /* a list of strings (or one string), joined with ':' */
	GITKVFS_KIND_REMOTES,  /* into opts->remotes */
};

struct gitkvfs_options {
	/* -o options (the table in options.c) */
	int init;     /* create the store if missing */
	int fsync;    /* durable commits */
	int readonly; /* -o ro: also passed on to the mount */
	char *node;   /* node name, or NULL for the host name */
	char *ignore; /* ignore patterns, or NULL for the defaults */
	char *config; /* -o config= as given, or NULL */
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

	/* what the mount shows as owner and permissions */
	char *uid_arg;	 /* -o uid= as given (a number or a user name), or NULL */
	char *gid_arg;	 /* -o gid= as given (a number or a group name), or NULL */
	char *umask_arg; /* -o umask= as given (octal), or NULL */
	uid_t uid;	 /* set by validate(): uid_arg, or the daemon's user */
	gid_t gid;	 /* set by validate(): gid_arg, or the daemon's group */
	mode_t umask;	 /* set by validate(): bits cleared from every mode shown */

	/* positional arguments */
	char *store;	      /* STORE (or the file's `store`), made absolute */
	char *mountpoint_arg; /* MOUNTPOINT as given */
	int extra_args;	      /* positional arguments past the second */

	/* the configuration file */
	char *config_file;	     /* the file read, as named; NULL when none was */
	char *fuse_opts;	     /* the file's FUSE options (allow_other, ...), or NULL */
	int from[GITKVFS_OPT_COUNT]; /* where each value came from (GITKVFS_FROM_*) */
	bool error_in_file;	     /* the last error names a line of the file */

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
 * Read the configuration file (opts->config; when not given,
 * GITKVFS_DEFAULT_CONFIG if it exists; an empty config= reads none), check
 * each of its values, and take those -o did not set. Then settle what
 * depends on both: STORE (a single operand is the MOUNTPOINT when the file
 * names the store), the mount's own options added to `args` (fsname=,
 * subtype=, ro and the file's FUSE options). Returns 0, or GITKV_EINVALID
 * with "PATH:LINE: what is wrong" (opts->error_in_file set) for a file that
 * is missing, unreadable, malformed, names an unknown setting, or gives a
 * value of the wrong type or out of range.
 */
int fs_options_load_config(struct fuse_args *args, struct gitkvfs_options *opts);

/*
 * Check what parse() could not: both positional arguments present, no
 * extra ones, values in range, remotes well-formed and distinct, the quorum
 * reachable, the credential files readable, the owner known; set
 * opts->sync_mode, uid, gid and umask. Returns 0 or GITKV_EINVALID; when
 * the culprit is a value of the configuration file, the message starts
 * with "PATH:LINE: " and opts->error_in_file is set.
 */
int fs_options_validate(struct gitkvfs_options *opts);

/*
 * Check that MOUNTPOINT exists, is a directory and is not a mount point
 * already; on success set opts->cmdline.mountpoint to its real path.
 * Returns 0 or GITKV_EINVALID ("mountpoint 'X' does not exist", "... is
 * already mounted", ...).
 */
int fs_options_check_mountpoint(struct gitkvfs_options *opts);

/*
 * For config.c: the setting `name` takes (as -o does) — its id, how the file
 * gives it and the offset of its field in struct gitkvfs_options. Returns 0,
 * or -1 if gitkvfs has no such -o option.
 */
int fs_options_lookup(const char *name, enum gitkvfs_opt *id, enum gitkvfs_kind *kind,
		      size_t *offset);

/*
 * For config.c: append the remote `spec` ("[NAME=]URL", as -o remote=
 * takes it; or, with `name` non-NULL, `name` and the URL `spec`) given at
 * `line` of the file. Returns 0 or GITKV_ERROR (out of memory).
 */
int fs_options_add_remote(struct gitkvfs_options *opts, const char *name, const char *spec,
			  int line);

/* Print the usage line and every option (ours, then libfuse's) to stdout. */
void fs_options_help(const char *progname);

/* The one-line usage summary. */
void fs_options_usage(FILE *out, const char *progname);

/* Free what parse() and load_config() allocated. */
void fs_options_release(struct gitkvfs_options *opts);

#endif
