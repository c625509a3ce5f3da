/*
 * options.c - the command line of gitkvfs.
 *
 * `option_table` below is the single description of gitkvfs's own -o
 * options: each row gives the fuse_opt template, the field it fills, and
 * the text --help prints for it. The fuse_opt array handed to
 * fuse_opt_parse() is built from it, followed by the fstab-only options to
 * discard and by "ro", which is both ours (the store refuses writes) and
 * the kernel's (the mount is read-only), so it is recorded and kept.
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
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gitkv/error.h>
#include <gitkv/store.h>

#include "ignore.h"
#include "options.h"

#define DEFAULT_TIMEOUT	      3600.0
#define MAX_VALUE_SIZE_LIMIT  (1UL << 30)
#define DEFAULT_SYNC_INTERVAL 5
#define DEFAULT_SYNC_TIMEOUT  10
#define MAX_SECONDS	      86400
#define MAX_REMOTES	      32
#define REMOTE_NAME_MAX	      63

/* Keys of the rows opt_proc() handles itself. */
enum { KEY_REMOTE = 1 };

struct option_doc {
	const char *templ;
	unsigned long offset;
	int value; /* for a keyed row: the key */
	bool keyed;
	const char *synopsis;
	const char *help;
};

#define OPT(t, field, v, syn, help)                                                                \
	{                                                                                          \
		t, offsetof(struct gitkvfs_options, field), v, false, syn, help                    \
	}
#define OPT_KEY(t, key, syn, help)                                                                 \
	{                                                                                          \
		t, 0, key, true, syn, help                                                         \
	}

static const struct option_doc option_table[] = {
    OPT("init", init, 1, "-o init", "create STORE (a bare repository) if it is missing"),
    OPT("node=%s", node, 0, "-o node=NAME", "this node's name in commits (default: the host name)"),
    OPT("max_value_size=%lu", max_value_size, 0, "-o max_value_size=BYTES",
	"largest value accepted (default 1048576); more is EFBIG"),
    OPT("ignore=%s", ignore, 0, "-o ignore=PAT[:PAT...]",
	"names kept in memory and never committed (fnmatch patterns;\n"
	"empty: none; default " FS_IGNORE_DEFAULT ")"),
    OPT("fsync", fsync, 1, "-o fsync", "make every acknowledged commit durable"),
    OPT("entry_timeout=%lf", entry_timeout, 0, "-o entry_timeout=S",
	"seconds the kernel may cache names (default 3600)"),
    OPT("attr_timeout=%lf", attr_timeout, 0, "-o attr_timeout=S",
	"seconds the kernel may cache attributes (default 3600)"),
    OPT("ro", readonly, 1, "-o ro", "mount read-only; the store takes no writes"),
    OPT("config=%s", config, 0, "-o config=PATH", "configuration file (accepted, not read yet)"),
    OPT("noreplay", noreplay, 1, "-o noreplay",
	"do not replay outside changes through the mount (they then\n"
	"raise no inotify event; the kernel's cache is only invalidated)"),
    OPT_KEY("remote=", KEY_REMOTE, "-o remote=[NAME=]URL",
	    "sync with this remote (repeatable): a path, file://, git://,\n"
	    "ssh:// or https:// URL; NAME defaults to r1, r2, ..."),
    OPT("sync_interval=%d", sync_interval, 0, "-o sync_interval=S",
	"seconds between sync rounds (default 5)"),
    OPT("sync_mode=%s", sync_mode_arg, 0, "-o sync_mode=async|sync",
	"async: a write returns once committed locally (default);\n"
	"sync: once `quorum` remotes have it, else EIO"),
    OPT("quorum=%d", quorum, 0, "-o quorum=N",
	"remotes that must accept a write in sync mode (default 1)"),
    OPT("sync_timeout=%d", sync_timeout, 0, "-o sync_timeout=S",
	"seconds a write waits for its quorum, and the network\n"
	"bound of one fetch or push (default 10)"),
    OPT("credentials_file=%s", credentials_file, 0, "-o credentials_file=PATH",
	"https credentials for the remotes: user:password or a token"),
    OPT("ssh_key=%s", ssh_key, 0, "-o ssh_key=PATH",
	"ssh private key for the remotes (default: the agent, ~/.ssh/id_*)"),
};

#define NOPTIONS (sizeof(option_table) / sizeof(option_table[0]))

/* Options /etc/fstab and mount(8) pass that mean nothing to us. */
static const char *const fstab_only[] = {
    "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail", "defaults",
};

#define NFSTAB (sizeof(fstab_only) / sizeof(fstab_only[0]))

static struct fuse_opt fuse_table[NOPTIONS + NFSTAB + 2];

static const struct fuse_opt *build_fuse_table(void)
{
	size_t n = 0;

	for (size_t i = 0; i < NOPTIONS; i++) {
		if (option_table[i].keyed) {
			fuse_table[n++] = (struct fuse_opt)FUSE_OPT_KEY(option_table[i].templ,
									option_table[i].value);
			continue;
		}
		fuse_table[n].templ = option_table[i].templ;
		fuse_table[n].offset = option_table[i].offset;
		fuse_table[n].value = option_table[i].value;
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

static bool is_name_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/*
 * Append `-o remote=[NAME=]SPEC` (arg is the whole "remote=..."): a prefix
 * made of name characters followed by '=' is the name. Checked in validate().
 */
static int add_remote(struct gitkvfs_options *opts, const char *arg)
{
	const char *spec = arg + strlen("remote="), *eq = strchr(spec, '='), *p;
	struct gitkvfs_remote *v, *r;
	char defname[32];

	if (opts->nremotes == MAX_REMOTES) {
		opts->too_many_remotes = 1;
		return 0;
	}
	v = realloc(opts->remotes, (opts->nremotes + 1) * sizeof(*v));
	if (!v)
		return -1;
	opts->remotes = v;
	r = &v[opts->nremotes];
	memset(r, 0, sizeof(*r));
	for (p = spec; eq && p < eq && is_name_char(*p); p++)
		;
	if (eq && eq > spec && p == eq) {
		r->name = strndup(spec, (size_t)(eq - spec));
		r->url = strdup(eq + 1);
	} else {
		snprintf(defname, sizeof(defname), "r%zu", opts->nremotes + 1);
		r->name = strdup(defname);
		r->url = strdup(spec);
	}
	opts->nremotes++;
	return r->name && r->url ? 0 : -1;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct gitkvfs_options *opts = data;

	switch (key) {
	case KEY_REMOTE:
		return add_remote(opts, arg);
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

/* `path` made absolute (and resolved, when it exists); malloc'd or NULL. */
static char *absolute_path(const char *path)
{
	char *real = realpath(path, NULL), *cwd, *abs;
	size_t cl, pl;

	if (real)
		return real;
	if (path[0] == '/')
		return strdup(path);
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return NULL;
	cl = strlen(cwd);
	pl = strlen(path);
	abs = malloc(cl + pl + 2);
	if (abs) {
		memcpy(abs, cwd, cl);
		abs[cl] = '/';
		memcpy(abs + cl + 1, path, pl + 1);
	}
	free(cwd);
	return abs;
}

/* Replace the malloc'd path `*path` (if set) by its absolute form. 0 or -1. */
static int make_absolute(char **path)
{
	char *abs;

	if (!*path || !**path || **path == '/')
		return 0;
	if (!(abs = absolute_path(*path)))
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

/* Insert -osubtype=gitkvfs,fsname=STORE (commas and backslashes escaped). */
static int add_mount_names(struct fuse_args *args, const char *store)
{
	char *o = NULL, *arg = NULL;
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
		err = -1;
	}
	arg = malloc(strlen(o) + 3);
	if (!arg)
		goto out;
	strcpy(arg, "-o");
	strcat(arg, o);
	/* first, so that a subtype= or fsname= given by the user wins */
	err = fuse_opt_insert_arg(args, 1, arg);
out:
	free(arg);
	free(o);
	return err;
}

int fs_options_parse(struct fuse_args *args, struct gitkvfs_options *opts)
{
	char *abs;

	memset(opts, 0, sizeof(*opts));
	opts->max_value_size = GITKV_DEFAULT_MAX_VALUE_SIZE;
	opts->entry_timeout = DEFAULT_TIMEOUT;
	opts->attr_timeout = DEFAULT_TIMEOUT;
	opts->sync_interval = DEFAULT_SYNC_INTERVAL;
	opts->sync_timeout = DEFAULT_SYNC_TIMEOUT;
	opts->quorum = 1;

	if (fuse_opt_parse(args, opts, build_fuse_table(), opt_proc) == -1)
		return gitkv_error_set(GITKV_EINVALID, "invalid options");
	if (opts->store) {
		abs = absolute_path(opts->store);
		if (!abs)
			return gitkv_error_set(GITKV_ERROR, "cannot resolve '%s': %s", opts->store,
					       strerror(errno));
		free(opts->store);
		opts->store = abs;
	}
	for (size_t i = 0; i < opts->nremotes; i++) {
		if (is_local_path(opts->remotes[i].url) && make_absolute(&opts->remotes[i].url) < 0)
			return gitkv_error_set(GITKV_ERROR, "cannot resolve '%s': %s",
					       opts->remotes[i].url, strerror(errno));
	}
	if (make_absolute(&opts->credentials_file) < 0 || make_absolute(&opts->ssh_key) < 0)
		return gitkv_error_set(GITKV_ERROR, "cannot resolve a path: %s", strerror(errno));
	if (add_mount_names(args, opts->store) == -1)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	if (fuse_parse_cmdline(args, &opts->cmdline) == -1)
		return gitkv_error_set(GITKV_EINVALID, "invalid options");
	return 0;
}

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

static int validate_remotes(const struct gitkvfs_options *opts)
{
	const int err = GITKV_EINVALID;

	if (opts->too_many_remotes)
		return gitkv_error_set(err, "at most %d remotes may be given", MAX_REMOTES);
	for (size_t i = 0; i < opts->nremotes; i++) {
		const struct gitkvfs_remote *r = &opts->remotes[i];

		if (!*r->url)
			return gitkv_error_set(err, "remote '%s' has no URL", r->name);
		if (strlen(r->name) > REMOTE_NAME_MAX)
			return gitkv_error_set(err, "remote name '%s' is longer than %d characters",
					       r->name, REMOTE_NAME_MAX);
		if (has_password(r->url))
			return gitkv_error_set(err,
					       "remote '%s': a password does not belong in the URL "
					       "(command lines are public); use credentials_file=",
					       r->name);
		for (size_t j = 0; j < i; j++) {
			if (strcmp(opts->remotes[j].name, r->name) == 0)
				return gitkv_error_set(err, "two remotes are named '%s'", r->name);
		}
	}
	return 0;
}

/* A file named by an option must be readable now: later it would fail in the background. */
static int validate_readable(const char *option, const char *path)
{
	if (!path)
		return 0;
	if (!*path)
		return gitkv_error_set(GITKV_EINVALID, "%s needs a path", option);
	if (access(path, R_OK) < 0)
		return gitkv_error_set(GITKV_EINVALID, "%s '%s': %s", option, path,
				       strerror(errno));
	return 0;
}

static int validate_sync(struct gitkvfs_options *opts)
{
	const int err = GITKV_EINVALID;
	int code;

	if (!opts->sync_mode_arg || strcmp(opts->sync_mode_arg, "async") == 0)
		opts->sync_mode = GITKVFS_SYNC_ASYNC;
	else if (strcmp(opts->sync_mode_arg, "sync") == 0)
		opts->sync_mode = GITKVFS_SYNC_SYNC;
	else
		return gitkv_error_set(err, "sync_mode must be 'async' or 'sync', not '%s'",
				       opts->sync_mode_arg);
	if (opts->sync_interval < 1 || opts->sync_interval > MAX_SECONDS)
		return gitkv_error_set(err, "sync_interval must be between 1 and %d seconds",
				       MAX_SECONDS);
	if (opts->sync_timeout < 1 || opts->sync_timeout > MAX_SECONDS)
		return gitkv_error_set(err, "sync_timeout must be between 1 and %d seconds",
				       MAX_SECONDS);
	if (opts->quorum < 1)
		return gitkv_error_set(err, "quorum must be at least 1");
	if ((code = validate_remotes(opts)) < 0)
		return code;
	if (opts->sync_mode == GITKVFS_SYNC_SYNC) {
		if (!opts->nremotes)
			return gitkv_error_set(err, "sync_mode=sync needs at least one remote=");
		if ((size_t)opts->quorum > opts->nremotes)
			return gitkv_error_set(err, "quorum=%d is more than the %zu remote%s given",
					       opts->quorum, opts->nremotes,
					       opts->nremotes == 1 ? "" : "s");
	}
	if ((code = validate_readable("credentials_file", opts->credentials_file)) < 0 ||
	    (code = validate_readable("ssh_key", opts->ssh_key)) < 0)
		return code;
	return 0;
}

int fs_options_validate(struct gitkvfs_options *opts)
{
	if (!opts->store)
		return gitkv_error_set(GITKV_EINVALID, "missing STORE and MOUNTPOINT");
	if (!opts->mountpoint_arg)
		return gitkv_error_set(GITKV_EINVALID, "missing MOUNTPOINT");
	if (opts->extra_args)
		return gitkv_error_set(GITKV_EINVALID, "too many arguments");
	if (opts->max_value_size == 0 || opts->max_value_size > MAX_VALUE_SIZE_LIMIT)
		return gitkv_error_set(GITKV_EINVALID, "max_value_size must be between 1 and %lu",
				       MAX_VALUE_SIZE_LIMIT);
	if (!isfinite(opts->entry_timeout) || opts->entry_timeout < 0)
		return gitkv_error_set(GITKV_EINVALID, "entry_timeout must be a number >= 0");
	if (!isfinite(opts->attr_timeout) || opts->attr_timeout < 0)
		return gitkv_error_set(GITKV_EINVALID, "attr_timeout must be a number >= 0");
	return validate_sync(opts);
}

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
	free(opts->store);
	free(opts->mountpoint_arg);
	free(opts->cmdline.mountpoint);
	memset(opts, 0, sizeof(*opts));
}
