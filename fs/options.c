/*
 * options.c - the settings of gitkvfs: the command line, and the
 * configuration file merged into it.
 *
 * `option_table` below is the single description of gitkvfs's own
 * settings: each row gives the fuse_opt template, the field it fills, how
 * the configuration file gives it (config.c) and the text --help prints for
 * it. The fuse_opt array handed to fuse_opt_parse() is built from it: for
 * each row, the row itself and a second one matching the same option that
 * records in opts->from[] that -o gave it; then the fstab-only options to
 * discard, and "ro", which is both ours (the store refuses writes) and the
 * kernel's (the mount is read-only), so it is recorded and kept.
 *
 * The positional arguments are taken by opt_proc(): the first is STORE, the
 * second MOUNTPOINT; both are consumed so that fuse_parse_cmdline() sees
 * only options, and the mount point is checked and resolved here, where a
 * failure can still be told to the user in one line.
 *
 * `remote=` is repeatable, so it is a keyed row (handled by opt_proc(),
 * which appends to opts->remotes) rather than a field a later occurrence
 * would overwrite. Secrets never appear in options: https credentials and
 * ssh keys are named by path, and a URL carrying a password is refused.
 *
 * The configuration file is read into a second struct (config.c), whose
 * values are checked on their own, each reported at its line, and then
 * moved into `opts` wherever -o did not set the value: defaults, then the
 * file, then -o. The checks are the same functions for both (check_values()),
 * so a value means the same wherever it is written; what depends on several
 * values (the quorum and the remotes) is checked once, on the result.
 */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gitkv/error.h>
#include <gitkv/store.h>

#include "config.h"
#include "ignore.h"
#include "options.h"

#define DEFAULT_TIMEOUT	      3600.0
#define MAX_VALUE_SIZE_LIMIT  (1UL << 30)
#define DEFAULT_SYNC_INTERVAL 5
#define DEFAULT_SYNC_TIMEOUT  10
#define MAX_SECONDS	      86400
#define MAX_REMOTES	      32
#define REMOTE_NAME_MAX	      63
#define ID_MAX		      4294967294UL /* (uid_t)-1 means "unchanged" to chown(2) */

/* Keys of the rows opt_proc() handles itself. */
enum { KEY_REMOTE = 1 };

struct option_doc {
	const char *templ;
	unsigned long offset;
	int value; /* for a keyed row: the key */
	bool keyed;
	enum gitkvfs_kind kind; /* in the configuration file */
	const char *synopsis;
	const char *help;
};

#define OPT(id, t, field, v, kind, syn, help)                                                      \
	[id] = {t, offsetof(struct gitkvfs_options, field), v, false, kind, syn, help}
#define OPT_KEY(id, t, key, kind, syn, help) [id] = {t, 0, key, true, kind, syn, help}

static const struct option_doc option_table[GITKVFS_OPT_COUNT] = {
    OPT(GITKVFS_OPT_INIT, "init", init, 1, GITKVFS_KIND_BOOL, "-o init",
	"create STORE (a bare repository) if it is missing"),
    OPT(GITKVFS_OPT_NODE, "node=%s", node, 0, GITKVFS_KIND_STRING, "-o node=NAME",
	"this node's name in commits (default: the host name)"),
    OPT(GITKVFS_OPT_MAX_VALUE_SIZE, "max_value_size=%lu", max_value_size, 0, GITKVFS_KIND_ULONG,
	"-o max_value_size=BYTES", "largest value accepted (default 1048576); more is EFBIG"),
    OPT(GITKVFS_OPT_IGNORE, "ignore=%s", ignore, 0, GITKVFS_KIND_PATTERNS, "-o ignore=PAT[:PAT...]",
	"names kept in memory and never committed (fnmatch patterns;\n"
	"empty: none; default " FS_IGNORE_DEFAULT ")"),
    OPT(GITKVFS_OPT_FSYNC, "fsync", fsync, 1, GITKVFS_KIND_BOOL, "-o fsync",
	"make every acknowledged commit durable"),
    OPT(GITKVFS_OPT_ENTRY_TIMEOUT, "entry_timeout=%lf", entry_timeout, 0, GITKVFS_KIND_FLOAT,
	"-o entry_timeout=S", "seconds the kernel may cache names (default 3600)"),
    OPT(GITKVFS_OPT_ATTR_TIMEOUT, "attr_timeout=%lf", attr_timeout, 0, GITKVFS_KIND_FLOAT,
	"-o attr_timeout=S", "seconds the kernel may cache attributes (default 3600)"),
    OPT(GITKVFS_OPT_RO, "ro", readonly, 1, GITKVFS_KIND_BOOL, "-o ro",
	"mount read-only; the store takes no writes"),
    OPT(GITKVFS_OPT_CONFIG, "config=%s", config, 0, GITKVFS_KIND_NONE, "-o config=PATH",
	"configuration file (default " GITKVFS_DEFAULT_CONFIG " if it exists;\n"
	"config= alone: none); -o options win over it"),
    OPT(GITKVFS_OPT_NOREPLAY, "noreplay", noreplay, 1, GITKVFS_KIND_BOOL, "-o noreplay",
	"do not replay outside changes through the mount (they then\n"
	"raise no inotify event; the kernel's cache is only invalidated)"),
    OPT_KEY(GITKVFS_OPT_REMOTE, "remote=", KEY_REMOTE, GITKVFS_KIND_REMOTES, "-o remote=[NAME=]URL",
	    "sync with this remote (repeatable): a path, file://, git://,\n"
	    "ssh:// or https:// URL; NAME defaults to r1, r2, ..."),
    OPT(GITKVFS_OPT_SYNC_INTERVAL, "sync_interval=%d", sync_interval, 0, GITKVFS_KIND_INT,
	"-o sync_interval=S", "seconds between sync rounds (default 5)"),
    OPT(GITKVFS_OPT_SYNC_MODE, "sync_mode=%s", sync_mode_arg, 0, GITKVFS_KIND_STRING,
	"-o sync_mode=async|sync",
	"async: a write returns once committed locally (default);\n"
	"sync: once `quorum` remotes have it, else EIO"),
    OPT(GITKVFS_OPT_QUORUM, "quorum=%d", quorum, 0, GITKVFS_KIND_INT, "-o quorum=N",
	"remotes that must accept a write in sync mode (default 1)"),
    OPT(GITKVFS_OPT_SYNC_TIMEOUT, "sync_timeout=%d", sync_timeout, 0, GITKVFS_KIND_INT,
	"-o sync_timeout=S",
	"seconds a write waits for its quorum, and the network\n"
	"bound of one fetch or push (default 10)"),
    OPT(GITKVFS_OPT_CREDENTIALS_FILE, "credentials_file=%s", credentials_file, 0, GITKVFS_KIND_PATH,
	"-o credentials_file=PATH", "https credentials for the remotes: user:password or a token"),
    OPT(GITKVFS_OPT_SSH_KEY, "ssh_key=%s", ssh_key, 0, GITKVFS_KIND_PATH, "-o ssh_key=PATH",
	"ssh private key for the remotes (default: the agent, ~/.ssh/id_*)"),
    OPT(GITKVFS_OPT_UID, "uid=%s", uid_arg, 0, GITKVFS_KIND_ID, "-o uid=USER",
	"owner of every file, a user name or number (default:\n"
	"the user running gitkvfs)"),
    OPT(GITKVFS_OPT_GID, "gid=%s", gid_arg, 0, GITKVFS_KIND_ID, "-o gid=GROUP",
	"group of every file, a group name or number (default:\n"
	"the group of the user running gitkvfs)"),
    OPT(GITKVFS_OPT_UMASK, "umask=%s", umask_arg, 0, GITKVFS_KIND_OCTAL, "-o umask=MASK",
	"permission bits (octal) cleared from every mode shown\n"
	"(default 0: files 0644, 0755 if executable; directories 0755)"),
};

#define NOPTIONS GITKVFS_OPT_COUNT

/*
 * Options /etc/fstab and mount(8) pass that mean nothing to us: the ones
 * meant for mount(8) and systemd (x-* is dropped by opt_proc()), and the
 * access-time flags, which mount(8) hands to every helper but libfuse 3.14
 * does not know; a key's atime is always its mtime, so they change nothing.
 * rw, ro, dev, nodev, suid, nosuid, exec, noexec, atime, noatime, sync,
 * async and dirsync are libfuse's and reach the kernel. Anything else
 * (nosymfollow, mand, ...) is refused rather than silently not applied.
 */
static const char *const fstab_only[] = {
    "auto",	  "noauto",   "user",	    "nouser",	   "users",	    "owner",
    "noowner",	  "group",    "nogroup",    "_netdev",	   "nofail",	    "defaults",
    "comment=",	  "relatime", "norelatime", "strictatime", "nostrictatime", "diratime",
    "nodiratime", "lazytime", "nolazytime",
};

#define NFSTAB (sizeof(fstab_only) / sizeof(fstab_only[0]))

static struct fuse_opt fuse_table[2 * NOPTIONS + NFSTAB + 2];

/* The templates of the rows that record -o in opts->from[]: "node=", "init". */
static char given_templ[NOPTIONS][32];

static const struct fuse_opt *build_fuse_table(void)
{
	size_t n = 0;

	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *templ = option_table[i].templ;

		if (option_table[i].keyed) {
			/* opt_proc() records these */
			fuse_table[n++] =
			    (struct fuse_opt)FUSE_OPT_KEY(templ, option_table[i].value);
			continue;
		}
		fuse_table[n].templ = templ;
		fuse_table[n].offset = option_table[i].offset;
		fuse_table[n].value = option_table[i].value;
		n++;
		snprintf(given_templ[i], sizeof(given_templ[i]), "%.*s",
			 (int)(strcspn(templ, "=") + (strchr(templ, '=') != NULL)), templ);
		fuse_table[n].templ = given_templ[i];
		fuse_table[n].offset = offsetof(struct gitkvfs_options, from) + i * sizeof(int);
		fuse_table[n].value = GITKVFS_FROM_CMDLINE;
		n++;
	}
	for (size_t i = 0; i < NFSTAB; i++)
		fuse_table[n++] =
		    (struct fuse_opt)FUSE_OPT_KEY(fstab_only[i], FUSE_OPT_KEY_DISCARD);
	/* "ro" is recorded by the table above and also kept for the mount. */
	fuse_table[n++] = (struct fuse_opt)FUSE_OPT_KEY("ro", FUSE_OPT_KEY_KEEP);
	fuse_table[n] = (struct fuse_opt)FUSE_OPT_END;
	return fuse_table;
}

int fs_options_lookup(const char *name, enum gitkvfs_opt *id, enum gitkvfs_kind *kind,
		      size_t *offset)
{
	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *templ = option_table[i].templ;
		size_t len = strcspn(templ, "=");

		if (strlen(name) == len && strncmp(name, templ, len) == 0) {
			*id = (enum gitkvfs_opt)i;
			*kind = option_table[i].kind;
			*offset = option_table[i].offset;
			return 0;
		}
	}
	return -1;
}

static void set_defaults(struct gitkvfs_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->max_value_size = GITKV_DEFAULT_MAX_VALUE_SIZE;
	opts->entry_timeout = DEFAULT_TIMEOUT;
	opts->attr_timeout = DEFAULT_TIMEOUT;
	opts->sync_interval = DEFAULT_SYNC_INTERVAL;
	opts->sync_timeout = DEFAULT_SYNC_TIMEOUT;
	opts->quorum = 1;
}

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/*
 * Append a remote: `name` and the URL `spec`, or (name NULL) "[NAME=]URL",
 * where a prefix made of name characters followed by '=' is the name.
 * Checked in validate().
 */
int fs_options_add_remote(struct gitkvfs_options *opts, const char *name, const char *spec,
			  int line)
{
	const char *eq = strchr(spec, '='), *p;
	struct gitkvfs_remote *v, *r;
	char defname[32];

	if (opts->nremotes == MAX_REMOTES) {
		opts->too_many_remotes = 1;
		return 0;
	}
	v = realloc(opts->remotes, (opts->nremotes + 1) * sizeof(*v));
	if (!v)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	opts->remotes = v;
	r = &v[opts->nremotes];
	memset(r, 0, sizeof(*r));
	r->line = line;
	for (p = spec; !name && eq && p < eq && is_name_char(*p); p++)
		;
	if (name) {
		r->name = strdup(name);
		r->url = strdup(spec);
	} else if (eq && eq > spec && p == eq) {
		r->name = strndup(spec, (size_t)(eq - spec));
		r->url = strdup(eq + 1);
	} else {
		snprintf(defname, sizeof(defname), "r%zu", opts->nremotes + 1);
		r->name = strdup(defname);
		r->url = strdup(spec);
	}
	opts->nremotes++;
	return r->name && r->url ? 0 : gitkv_error_set(GITKV_ERROR, "out of memory");
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct gitkvfs_options *opts = data;

	switch (key) {
	case KEY_REMOTE:
		opts->from[GITKVFS_OPT_REMOTE] = GITKVFS_FROM_CMDLINE;
		return fs_options_add_remote(opts, NULL, arg + strlen("remote="), 0) < 0 ? -1 : 0;
	case FUSE_OPT_KEY_OPT:
		/* x-systemd.automount, x-gvfs-show, ...: for other programs */
		if (strncmp(arg, "x-", 2) == 0)
			return 0;
		return 1;
	case FUSE_OPT_KEY_NONOPT:
		if (!opts->store)
			return (opts->store = strdup(arg)) ? 0 : -1;
		if (!opts->mountpoint_arg)
			return (opts->mountpoint_arg = strdup(arg)) ? 0 : -1;
		opts->extra_args++;
		return 0;
	default:
		return 1;
	}
}

/*
 * `path` made absolute against `base` (NULL: the working directory), and
 * resolved when it exists; malloc'd or NULL.
 */
static char *absolute_path(const char *base, const char *path)
{
	char *real, *cwd = NULL, *abs;
	size_t bl, pl;

	if (path[0] == '/') {
		real = realpath(path, NULL);
		return real ? real : strdup(path);
	}
	if (!base && !(base = cwd = getcwd(NULL, 0)))
		return NULL;
	bl = strlen(base);
	pl = strlen(path);
	abs = malloc(bl + pl + 2);
	if (abs) {
		memcpy(abs, base, bl);
		abs[bl] = '/';
		memcpy(abs + bl + 1, path, pl + 1);
	}
	free(cwd);
	if (abs && (real = realpath(abs, NULL))) {
		free(abs);
		return real;
	}
	return abs;
}

/* Replace the malloc'd path `*path` (if set) by its absolute form. 0 or -1. */
static int make_absolute(const char *base, char **path)
{
	char *abs;

	if (!*path || !**path || **path == '/')
		return 0;
	if (!(abs = absolute_path(base, *path)))
		return -1;
	free(*path);
	*path = abs;
	return 0;
}

/* True if remote `url` is a local path: no scheme://, no scp-like host:path. */
static bool is_local_path(const char *url)
{
	const char *colon = strchr(url, ':'), *slash = strchr(url, '/');

	if (url[0] == '/' || url[0] == '.')
		return true;
	if (strstr(url, "://"))
		return false;
	return !colon || (slash && slash < colon);
}

/* The paths among `opts`'s values made absolute against `base` (NULL: the working directory). */
static int make_paths_absolute(const char *base, struct gitkvfs_options *opts)
{
	for (size_t i = 0; i < opts->nremotes; i++) {
		if (is_local_path(opts->remotes[i].url) &&
		    make_absolute(base, &opts->remotes[i].url) < 0)
			return gitkv_error_set(GITKV_ERROR, "cannot resolve '%s': %s",
					       opts->remotes[i].url, strerror(errno));
	}
	if (make_absolute(base, &opts->credentials_file) < 0 ||
	    make_absolute(base, &opts->ssh_key) < 0)
		return gitkv_error_set(GITKV_ERROR, "cannot resolve a path: %s", strerror(errno));
	return 0;
}

/* Make the store absolute against `base` (NULL: the working directory), and resolved. */
static int resolve_store(const char *base, char **store)
{
	char *abs;

	if (!*store)
		return 0;
	if (!(abs = absolute_path(base, *store)))
		return gitkv_error_set(GITKV_ERROR, "cannot resolve '%s': %s", *store,
				       strerror(errno));
	free(*store);
	*store = abs;
	return 0;
}

/* Add "-o OPTS" to the arguments; `first`: right after the program name. */
static int add_mount_opts(struct fuse_args *args, const char *o, bool first)
{
	char *arg = malloc(strlen(o) + 3);
	int err;

	if (!arg)
		return -1;
	strcpy(arg, "-o");
	strcat(arg, o);
	err = first ? fuse_opt_insert_arg(args, 1, arg) : fuse_opt_add_arg(args, arg);
	free(arg);
	return err;
}

/* Insert -osubtype=gitkvfs,fsname=STORE (commas and backslashes escaped). */
static int add_mount_names(struct fuse_args *args, const char *store)
{
	char *o = NULL;
	int err = -1;

	if (fuse_opt_add_opt(&o, "subtype=gitkvfs") == -1)
		goto out;
	if (store) {
		char *name = malloc(strlen("fsname=") + strlen(store) + 1);

		if (!name)
			goto out;
		strcpy(name, "fsname=");
		strcat(name, store);
		err = fuse_opt_add_opt_escaped(&o, name);
		free(name);
		if (err == -1)
			goto out;
	}
	/* first, so that a subtype= or fsname= given by the user wins */
	err = add_mount_opts(args, o, true);
out:
	free(o);
	return err;
}

int fs_options_parse(struct fuse_args *args, struct gitkvfs_options *opts)
{
	set_defaults(opts);
	if (fuse_opt_parse(args, opts, build_fuse_table(), opt_proc) == -1)
		return gitkv_error_set(GITKV_EINVALID, "invalid options");
	if (make_paths_absolute(NULL, opts) < 0)
		return GITKV_ERROR;
	if (fuse_parse_cmdline(args, &opts->cmdline) == -1)
		return gitkv_error_set(GITKV_EINVALID, "invalid options");
	return 0;
}

/* ---- checks --------------------------------------------------------------------------- */

/*
 * Record "what is wrong" about a value given at `line` of the configuration
 * file ("PATH:LINE: " first) or on the command line (line <= 0).
 */
static int invalid(struct gitkvfs_options *opts, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0 && opts->config_file) {
		opts->error_in_file = true;
		return gitkv_error_set(GITKV_EINVALID, "%s:%d: %s", opts->config_file, line, msg);
	}
	return gitkv_error_set(GITKV_EINVALID, "%s", msg);
}

#define AT(id) (opts->from[GITKVFS_OPT_##id])

/* True if `url` carries a password ("scheme://user:secret@host/..."). */
static bool has_password(const char *url)
{
	const char *p = strstr(url, "://"), *end, *at, *colon;

	if (!p)
		return false;
	p += 3;
	end = p + strcspn(p, "/?#");
	at = memchr(p, '@', (size_t)(end - p));
	if (!at)
		return false;
	colon = memchr(p, ':', (size_t)(at - p));
	return colon != NULL;
}

static int check_remotes(struct gitkvfs_options *opts)
{
	if (opts->too_many_remotes)
		return invalid(opts, AT(REMOTE), "at most %d remotes may be given", MAX_REMOTES);
	for (size_t i = 0; i < opts->nremotes; i++) {
		const struct gitkvfs_remote *r = &opts->remotes[i];

		if (!*r->url)
			return invalid(opts, r->line, "remote '%s' has no URL", r->name);
		if (strlen(r->name) > REMOTE_NAME_MAX)
			return invalid(opts, r->line,
				       "remote name '%s' is longer than %d characters", r->name,
				       REMOTE_NAME_MAX);
		for (const char *p = r->name; *p; p++) {
			if (!is_name_char(*p))
				return invalid(opts, r->line,
					       "remote name '%s' may hold only letters, digits, "
					       "'.', '_' and '-'",
					       r->name);
		}
		if (has_password(r->url))
			return invalid(opts, r->line,
				       "remote '%s': a password does not belong in the URL "
				       "(command lines are public); use credentials_file=",
				       r->name);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(opts->remotes[j].name, r->name) == 0)
				return invalid(opts, r->line, "two remotes are named '%s'",
					       r->name);
		}
	}
	return 0;
}

/* A file named by an option must be readable now: later it would fail in the background. */
static int check_readable(struct gitkvfs_options *opts, int line, const char *option,
			  const char *path)
{
	if (!path)
		return 0;
	if (!*path)
		return invalid(opts, line, "%s needs a path", option);
	if (access(path, R_OK) < 0)
		return invalid(opts, line, "%s '%s': %s", option, path, strerror(errno));
	return 0;
}

/* A node name goes into an e-mail address and a trailer line. */
static int check_node(struct gitkvfs_options *opts)
{
	const char *p = opts->node;

	if (!p)
		return 0;
	if (!*p)
		return invalid(opts, AT(NODE), "node must not be empty");
	for (; *p; p++) {
		if (isspace((unsigned char)*p) || iscntrl((unsigned char)*p) || *p == '<' ||
		    *p == '>')
			return invalid(opts, AT(NODE),
				       "node '%s' must not hold spaces, control characters, "
				       "'<' or '>'",
				       opts->node);
	}
	return 0;
}

/* A user or group: a number, or a name looked up now. 0 or -1. */
static int parse_id(const char *arg, bool user, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (isdigit((unsigned char)arg[0])) {
		errno = 0;
		v = strtoul(arg, &end, 10);
		if (*end || errno || v > ID_MAX)
			return -1;
		*out = v;
		return 0;
	}
	if (user) {
		struct passwd *pw = *arg ? getpwnam(arg) : NULL;

		if (!pw)
			return -1;
		*out = pw->pw_uid;
	} else {
		struct group *gr = *arg ? getgrnam(arg) : NULL;

		if (!gr)
			return -1;
		*out = gr->gr_gid;
	}
	return 0;
}

static int check_owner(struct gitkvfs_options *opts)
{
	unsigned long v;
	char *end;

	opts->uid = getuid();
	opts->gid = getgid();
	opts->umask = 0;
	if (opts->uid_arg) {
		if (parse_id(opts->uid_arg, true, &v) < 0)
			return invalid(opts, AT(UID),
				       "uid '%s' is neither a user nor a number from 0 to %lu",
				       opts->uid_arg, ID_MAX);
		opts->uid = (uid_t)v;
	}
	if (opts->gid_arg) {
		if (parse_id(opts->gid_arg, false, &v) < 0)
			return invalid(opts, AT(GID),
				       "gid '%s' is neither a group nor a number from 0 to %lu",
				       opts->gid_arg, ID_MAX);
		opts->gid = (gid_t)v;
	}
	if (opts->umask_arg) {
		errno = 0;
		v = strtoul(opts->umask_arg, &end, 8);
		if (!*opts->umask_arg || *end || errno || v > 0777 ||
		    strspn(opts->umask_arg, "01234567") != strlen(opts->umask_arg))
			return invalid(opts, AT(UMASK), "umask '%s' must be octal, from 0 to 0777",
				       opts->umask_arg);
		opts->umask = (mode_t)v;
	}
	return 0;
}

/* Each value on its own: what the file's values must pass before they are taken. */
static int check_values(struct gitkvfs_options *opts)
{
	int code;

	if (opts->max_value_size == 0 || opts->max_value_size > MAX_VALUE_SIZE_LIMIT)
		return invalid(opts, AT(MAX_VALUE_SIZE), "max_value_size must be between 1 and %lu",
			       MAX_VALUE_SIZE_LIMIT);
	if (!isfinite(opts->entry_timeout) || opts->entry_timeout < 0)
		return invalid(opts, AT(ENTRY_TIMEOUT), "entry_timeout must be a number >= 0");
	if (!isfinite(opts->attr_timeout) || opts->attr_timeout < 0)
		return invalid(opts, AT(ATTR_TIMEOUT), "attr_timeout must be a number >= 0");
	if ((code = check_node(opts)) < 0)
		return code;
	if (!opts->sync_mode_arg || strcmp(opts->sync_mode_arg, "async") == 0)
		opts->sync_mode = GITKVFS_SYNC_ASYNC;
	else if (strcmp(opts->sync_mode_arg, "sync") == 0)
		opts->sync_mode = GITKVFS_SYNC_SYNC;
	else
		return invalid(opts, AT(SYNC_MODE), "sync_mode must be 'async' or 'sync', not '%s'",
			       opts->sync_mode_arg);
	if (opts->sync_interval < 1 || opts->sync_interval > MAX_SECONDS)
		return invalid(opts, AT(SYNC_INTERVAL),
			       "sync_interval must be between 1 and %d seconds", MAX_SECONDS);
	if (opts->sync_timeout < 1 || opts->sync_timeout > MAX_SECONDS)
		return invalid(opts, AT(SYNC_TIMEOUT),
			       "sync_timeout must be between 1 and %d seconds", MAX_SECONDS);
	if (opts->quorum < 1 || opts->quorum > MAX_REMOTES)
		return invalid(opts, AT(QUORUM), "quorum must be between 1 and %d", MAX_REMOTES);
	if ((code = check_remotes(opts)) < 0 ||
	    (code = check_readable(opts, AT(CREDENTIALS_FILE), "credentials_file",
				   opts->credentials_file)) < 0 ||
	    (code = check_readable(opts, AT(SSH_KEY), "ssh_key", opts->ssh_key)) < 0)
		return code;
	return check_owner(opts);
}

/* What depends on several values, once they are all known. */
static int check_combination(struct gitkvfs_options *opts)
{
	if (opts->sync_mode != GITKVFS_SYNC_SYNC)
		return 0;
	if (!opts->nremotes)
		return invalid(opts, AT(SYNC_MODE), "sync_mode=sync needs at least one remote=");
	if ((size_t)opts->quorum > opts->nremotes)
		return invalid(opts, AT(QUORUM), "quorum=%d is more than the %zu remote%s given",
			       opts->quorum, opts->nremotes, opts->nremotes == 1 ? "" : "s");
	return 0;
}

int fs_options_validate(struct gitkvfs_options *opts)
{
	int code;

	opts->error_in_file = false;
	if (!opts->store)
		return gitkv_error_set(GITKV_EINVALID, "missing STORE and MOUNTPOINT");
	if (!opts->mountpoint_arg)
		return gitkv_error_set(GITKV_EINVALID, "missing MOUNTPOINT");
	if (opts->extra_args)
		return gitkv_error_set(GITKV_EINVALID, "too many arguments");
	if ((code = check_values(opts)) < 0)
		return code;
	return check_combination(opts);
}

/* ---- the configuration file ------------------------------------------------------------ */

/* Move the value of setting `i` from `file` into `opts`. */
static void take_value(struct gitkvfs_options *opts, struct gitkvfs_options *file, size_t i)
{
	char *to = (char *)opts + option_table[i].offset;
	char *from = (char *)file + option_table[i].offset;

	switch (option_table[i].kind) {
	case GITKVFS_KIND_NONE:
		return;
	case GITKVFS_KIND_BOOL:
	case GITKVFS_KIND_INT:
		*(int *)to = *(int *)from;
		break;
	case GITKVFS_KIND_ULONG:
		*(unsigned long *)to = *(unsigned long *)from;
		break;
	case GITKVFS_KIND_FLOAT:
		*(double *)to = *(double *)from;
		break;
	case GITKVFS_KIND_STRING:
	case GITKVFS_KIND_PATH:
	case GITKVFS_KIND_ID:
	case GITKVFS_KIND_OCTAL:
	case GITKVFS_KIND_PATTERNS:
		free(*(char **)to);
		*(char **)to = *(char **)from;
		*(char **)from = NULL;
		break;
	case GITKVFS_KIND_REMOTES:
		/* -o gave none, or this would not be called */
		opts->remotes = file->remotes;
		opts->nremotes = file->nremotes;
		opts->too_many_remotes = file->too_many_remotes;
		file->remotes = NULL;
		file->nremotes = 0;
		break;
	}
	opts->from[i] = file->from[i];
}

/* Read and check the file `path` into `file`, whose paths are made absolute. */
static int read_file(const char *path, struct gitkvfs_options *file)
{
	char *abs, *slash;
	int code;

	if ((code = fs_config_read(path, file)) < 0)
		return code;
	/* relative paths in the file are relative to the file's directory */
	if (!(abs = absolute_path(NULL, path)))
		return gitkv_error_set(GITKV_ERROR, "cannot resolve '%s': %s", path,
				       strerror(errno));
	if ((slash = strrchr(abs, '/')))
		*(slash == abs ? slash + 1 : slash) = '\0';
	if ((code = make_paths_absolute(abs, file)) == 0)
		code = resolve_store(abs, &file->store);
	free(abs);
	return code < 0 ? code : check_values(file);
}

int fs_options_load_config(struct fuse_args *args, struct gitkvfs_options *opts)
{
	struct gitkvfs_options file;
	const char *path = opts->config;
	int code = 0;

	set_defaults(&file);
	if (!path && access(GITKVFS_DEFAULT_CONFIG, F_OK) == 0)
		path = GITKVFS_DEFAULT_CONFIG;
	if (path && *path) {
		if (!(opts->config_file = strdup(path))) {
			code = gitkv_error_set(GITKV_ERROR, "out of memory");
			goto out;
		}
		file.config_file = opts->config_file; /* borrowed, for the messages */
		if ((code = read_file(path, &file)) < 0) {
			opts->error_in_file = true;
			goto out;
		}
		for (size_t i = 0; i < NOPTIONS; i++) {
			if (file.from[i] > 0 && opts->from[i] != GITKVFS_FROM_CMDLINE)
				take_value(opts, &file, i);
		}
	}

	/* STORE: the operand, or the file's (resolved); with one operand, that is MOUNTPOINT */
	if (file.store && !opts->mountpoint_arg) {
		opts->mountpoint_arg = opts->store;
		opts->store = file.store;
		file.store = NULL;
	} else if ((code = resolve_store(NULL, &opts->store)) < 0) {
		goto out;
	}
	if (add_mount_names(args, opts->store) == -1 ||
	    (opts->readonly && AT(RO) > 0 && add_mount_opts(args, "ro", false) == -1) ||
	    (file.fuse_opts && add_mount_opts(args, file.fuse_opts, false) == -1))
		code = gitkv_error_set(GITKV_ERROR, "out of memory");
out:
	file.config_file = NULL;
	fs_options_release(&file);
	return code;
}

/* ---- the mount point ------------------------------------------------------------------- */

/* Decode the octal escapes (\040 for a space) of a /proc/self/mountinfo field in place. */
static void unescape_mountinfo(char *s)
{
	char *out = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*out++ = *s++;
		}
	}
	*out = '\0';
}

/* True if `real` (a resolved path) is listed as a mount point of this namespace. */
static bool listed_as_mounted(const char *real)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL, *field, *save;
	size_t cap = 0;
	bool found = false;

	if (!f)
		return false;
	while (!found && getline(&line, &cap, f) != -1) {
		/* id parent major:minor root MOUNTPOINT ... */
		field = strtok_r(line, " ", &save);
		for (int i = 0; field && i < 4; i++)
			field = strtok_r(NULL, " ", &save);
		if (!field)
			continue;
		unescape_mountinfo(field);
		found = strcmp(field, real) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

int fs_options_check_mountpoint(struct gitkvfs_options *opts)
{
	const char *mnt = opts->mountpoint_arg;
	struct stat st, parent;
	char *real, *up;
	int err = GITKV_EINVALID;

	if (stat(mnt, &st) == -1) {
		if (errno == ENOENT)
			return gitkv_error_set(err, "mountpoint '%s' does not exist", mnt);
		return gitkv_error_set(err, "mountpoint '%s': %s", mnt, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return gitkv_error_set(err, "mountpoint '%s' is not a directory", mnt);
	real = realpath(mnt, NULL);
	if (!real)
		return gitkv_error_set(err, "mountpoint '%s': %s", mnt, strerror(errno));
	up = malloc(strlen(real) + 4);
	if (!up) {
		free(real);
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	}
	strcpy(up, real);
	strcat(up, "/..");
	if (strcmp(real, "/") == 0 || listed_as_mounted(real) ||
	    (stat(up, &parent) == 0 &&
	     (parent.st_dev != st.st_dev || parent.st_ino == st.st_ino))) {
		free(up);
		free(real);
		return gitkv_error_set(err, "mountpoint '%s' is already mounted", mnt);
	}
	free(up);
	free(opts->cmdline.mountpoint);
	opts->cmdline.mountpoint = real;
	return 0;
}

void fs_options_usage(FILE *out, const char *progname)
{
	fprintf(out, "usage: %s [options] STORE MOUNTPOINT\n", progname);
}

void fs_options_help(const char *progname)
{
	fs_options_usage(stdout, progname);
	printf("\nMount the gitkv store STORE (a bare git repository) at MOUNTPOINT.\n"
	       "\ngitkvfs options:\n");
	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *h = option_table[i].help, *nl;

		printf("    %-26s ", option_table[i].synopsis);
		while ((nl = strchr(h, '\n'))) {
			printf("%.*s\n    %-26s ", (int)(nl - h), h, "");
			h = nl + 1;
		}
		printf("%s\n", h);
	}
	printf("    %-26s %s\n", "--version", "print the version and exit");
	printf("\nFUSE options:\n");
	fuse_cmdline_help();
	fuse_lowlevel_help();
}

void fs_options_release(struct gitkvfs_options *opts)
{
	free(opts->node);
	free(opts->ignore);
	free(opts->config);
	for (size_t i = 0; i < opts->nremotes; i++) {
		free(opts->remotes[i].name);
		free(opts->remotes[i].url);
	}
	free(opts->remotes);
	free(opts->sync_mode_arg);
	free(opts->credentials_file);
	free(opts->ssh_key);
	free(opts->uid_arg);
	free(opts->gid_arg);
	free(opts->umask_arg);
	free(opts->config_file);
	free(opts->fuse_opts);
	free(opts->store);
	free(opts->mountpoint_arg);
	free(opts->cmdline.mountpoint);
	memset(opts, 0, sizeof(*opts));
}
