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
 */
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

#define DEFAULT_TIMEOUT	     3600.0
#define MAX_VALUE_SIZE_LIMIT (1UL << 30)

struct option_doc {
	const char *templ;
	unsigned long offset;
	int value;
	const char *synopsis;
	const char *help;
};

#define OPT(t, field, v, syn, help)                                                                \
	{                                                                                          \
		t, offsetof(struct gitkvfs_options, field), v, syn, help                           \
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

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct gitkvfs_options *opts = data;

	switch (key) {
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
	if (add_mount_names(args, opts->store) == -1)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	if (fuse_parse_cmdline(args, &opts->cmdline) == -1)
		return gitkv_error_set(GITKV_EINVALID, "invalid options");
	return 0;
}

int fs_options_validate(const struct gitkvfs_options *opts)
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
	return 0;
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
	free(opts->store);
	free(opts->mountpoint_arg);
	free(opts->cmdline.mountpoint);
	memset(opts, 0, sizeof(*opts));
}
