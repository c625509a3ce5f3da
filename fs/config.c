/*
 * config.c - read gitkvfs's configuration file with libconfig.
 *
 * The file is a libconfig document whose top-level settings are named like
 * the -o options. Each one is looked up in options.c's table
 * (fs_options_lookup()), which says what type the file must give and which
 * field takes the value; a few settings exist only here (`store`,
 * `remotes`, and the FUSE mount options of fuse_flags[]). Anything else is
 * an unknown setting, and an error: a misspelt setting silently ignored is
 * a setting silently not applied.
 *
 * Every error names the file and the line: libconfig's own for a syntax
 * error, config_setting_source_line() for the rest. libconfig 1.5 reads an
 * integer literal too large for 32 bits without its L suffix modulo 2^32
 * (atoi), so a plain integer is checked against its text in the file
 * (literal_fits()): 4294967296 must not turn into 0 on the way.
 */
#include <ctype.h>
#include <errno.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <gitkv/error.h>

#include "config.h"

/* FUSE's mount options a file may switch on; passed to the mount as -o NAME. */
static const char *const fuse_flags[] = {"allow_other", "default_permissions", "auto_unmount"};

#define NFUSE_FLAGS (sizeof(fuse_flags) / sizeof(fuse_flags[0]))

/* "FILE:LINE: NAME ..." about setting `s` (a top-level setting or one inside it). */
static int setting_error(const config_setting_t *s, const char *path, const char *fmt, ...)
{
	const char *file = config_setting_source_file(s);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return gitkv_error_set(GITKV_EINVALID, "%s:%u: %s", file ? file : path,
			       config_setting_source_line(s), msg);
}

static const char *type_name(const config_setting_t *s)
{
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
		return "a group";
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		return "an integer";
	case CONFIG_TYPE_FLOAT:
		return "a floating-point number";
	case CONFIG_TYPE_STRING:
		return "a string";
	case CONFIG_TYPE_BOOL:
		return "a boolean";
	case CONFIG_TYPE_ARRAY:
		return "an array";
	case CONFIG_TYPE_LIST:
		return "a list";
	default:
		return "nothing";
	}
}

static int wrong_type(const config_setting_t *s, const char *path, const char *name,
		      const char *want)
{
	return setting_error(s, path, "%s must be %s, not %s", name, want, type_name(s));
}

static bool is_integer(const config_setting_t *s)
{
	int t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

/*
 * True unless the line of `s` shows `name = LITERAL` with a literal other
 * than the value libconfig read (see the top of the file). A line that
 * cannot be read or does not show the literal is given the benefit of the
 * doubt; INT64 values (with the L suffix) are read right.
 */
static bool literal_fits(const config_setting_t *s, const char *path, const char *name)
{
	const char *file = config_setting_source_file(s);
	unsigned line = config_setting_source_line(s), n = 0;
	size_t nlen = strlen(name), cap = 0;
	char *text = NULL, *p, *end, *digits;
	bool fits = true;
	long long v;
	FILE *f;

	if (config_setting_type(s) != CONFIG_TYPE_INT || !(f = fopen(file ? file : path, "re")))
		return true;
	while (n < line && getline(&text, &cap, f) != -1)
		n++;
	fclose(f);
	for (p = text; n == line && p && (p = strstr(p, name)); p += nlen) {
		if (p > text && (isalnum((unsigned char)p[-1]) || p[-1] == '_'))
			continue;
		end = p + nlen;
		end += strspn(end, " \t");
		if (*end != '=' && *end != ':')
			continue;
		end++;
		end += strspn(end, " \t");
		digits = end + (*end == '-' || *end == '+');
		if (!isdigit((unsigned char)*digits))
			break;
		errno = 0;
		v = strtoll(end, NULL, digits[0] == '0' && (digits[1] | 0x20) == 'x' ? 16 : 10);
		fits = errno == 0 && v == config_setting_get_int(s);
		break;
	}
	free(text);
	return fits;
}

/* The integer `s` holds, checked against its text; 0 or GITKV_EINVALID. */
static int read_integer(const config_setting_t *s, const char *path, const char *name,
			long long *out)
{
	if (!is_integer(s))
		return wrong_type(s, path, name, "an integer");
	if (!literal_fits(s, path, name))
		return setting_error(s, path,
				     "%s: the integer is too large (libconfig needs the suffix L "
				     "for integers beyond 32 bits)",
				     name);
	*out = config_setting_get_int64(s);
	return 0;
}

static int set_string(char **field, const char *value)
{
	char *copy = strdup(value);

	if (!copy)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	free(*field);
	*field = copy;
	return 0;
}

/* `ignore`: a list or array of patterns, joined with ':' as -o ignore= takes them. */
static int read_patterns(const config_setting_t *s, const char *path, const char *name,
			 char **field)
{
	char *joined = NULL;
	size_t len = 0;
	int n = config_setting_length(s);

	if (config_setting_type(s) == CONFIG_TYPE_STRING)
		return set_string(field, config_setting_get_string(s));
	if (config_setting_type(s) != CONFIG_TYPE_ARRAY &&
	    config_setting_type(s) != CONFIG_TYPE_LIST)
		return wrong_type(s, path, name, "a list of strings");
	if (!(joined = calloc(1, 1)))
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *pat = config_setting_get_string(e);
		char *grown;

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			free(joined);
			return setting_error(e, path, "%s: a pattern must be a string, not %s",
					     name, type_name(e));
		}
		if (!*pat || strchr(pat, ':')) {
			free(joined);
			return setting_error(e, path, "%s: pattern '%s' is %s", name, pat,
					     *pat ? "not allowed to contain ':'" : "empty");
		}
		if (!(grown = realloc(joined, len + strlen(pat) + 2))) {
			free(joined);
			return gitkv_error_set(GITKV_ERROR, "out of memory");
		}
		joined = grown;
		if (len)
			joined[len++] = ':';
		strcpy(joined + len, pat);
		len += strlen(pat);
	}
	free(*field);
	*field = joined;
	return 0;
}

/* One element of `remotes`: "[NAME=]URL", or a group { name = ...; url = ...; }. */
static int read_remote(const config_setting_t *e, const char *path, struct gitkvfs_options *out)
{
	const char *name = NULL, *url = NULL;
	int line = (int)config_setting_source_line(e);

	if (config_setting_type(e) == CONFIG_TYPE_STRING)
		return fs_options_add_remote(out, NULL, config_setting_get_string(e), line);
	if (config_setting_type(e) != CONFIG_TYPE_GROUP)
		return setting_error(e, path,
				     "remotes: a remote must be a group { name; url; } "
				     "or a string, not %s",
				     type_name(e));
	for (int i = 0; i < config_setting_length(e); i++) {
		const config_setting_t *m = config_setting_get_elem(e, (unsigned)i);
		const char *mname = config_setting_name(m);
		const char **slot = strcmp(mname, "name") == 0	? &name
				    : strcmp(mname, "url") == 0 ? &url
								: NULL;

		if (!slot)
			return setting_error(m, path,
					     "remotes: unknown setting '%s' in a remote "
					     "(name and url are)",
					     mname);
		if (config_setting_type(m) != CONFIG_TYPE_STRING)
			return setting_error(m, path, "remotes: %s must be a string, not %s", mname,
					     type_name(m));
		*slot = config_setting_get_string(m);
	}
	if (!url)
		return setting_error(e, path, "remotes: a remote needs a url");
	if (name && !*name)
		return setting_error(e, path, "remotes: a remote's name must not be empty");
	return fs_options_add_remote(out, name, url, line);
}

static int read_remotes(const config_setting_t *s, const char *path, const char *name,
			struct gitkvfs_options *out)
{
	int code;

	if (out->from[GITKVFS_OPT_REMOTE] > 0)
		return setting_error(s, path, "%s: the remotes are given already, at line %d", name,
				     out->from[GITKVFS_OPT_REMOTE]);
	out->from[GITKVFS_OPT_REMOTE] = (int)config_setting_source_line(s);
	if (strcmp(name, "remote") == 0) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return wrong_type(s, path, name, "a string \"[NAME=]URL\"");
		return fs_options_add_remote(out, NULL, config_setting_get_string(s),
					     out->from[GITKVFS_OPT_REMOTE]);
	}
	if (config_setting_type(s) != CONFIG_TYPE_LIST &&
	    config_setting_type(s) != CONFIG_TYPE_ARRAY)
		return wrong_type(s, path, name, "a list of remotes");
	for (int i = 0; i < config_setting_length(s); i++) {
		if ((code = read_remote(config_setting_get_elem(s, (unsigned)i), path, out)) < 0)
			return code;
	}
	return 0;
}

/* A setting named like one of the -o options, into its field. */
static int read_option(const config_setting_t *s, const char *path, const char *name,
		       enum gitkvfs_kind kind, size_t offset, struct gitkvfs_options *out)
{
	char *field = (char *)out + offset, idbuf[32];
	long long v = 0;
	int code;

	switch (kind) {
	case GITKVFS_KIND_NONE:
		return setting_error(s, path, "%s cannot be set in a configuration file", name);
	case GITKVFS_KIND_BOOL:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return wrong_type(s, path, name, "true or false");
		*(int *)field = config_setting_get_bool(s);
		return 0;
	case GITKVFS_KIND_INT:
		if ((code = read_integer(s, path, name, &v)) < 0)
			return code;
		/* out of int's range: a value no check accepts, reported by options.c */
		*(int *)field = v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
		return 0;
	case GITKVFS_KIND_ULONG:
		if ((code = read_integer(s, path, name, &v)) < 0)
			return code;
		*(unsigned long *)field = v < 0 ? ULONG_MAX : (unsigned long)v;
		return 0;
	case GITKVFS_KIND_FLOAT:
		if (config_setting_type(s) == CONFIG_TYPE_FLOAT) {
			*(double *)field = config_setting_get_float(s);
			return 0;
		}
		if (!is_integer(s))
			return wrong_type(s, path, name, "a number");
		if ((code = read_integer(s, path, name, &v)) < 0)
			return code;
		*(double *)field = (double)v;
		return 0;
	case GITKVFS_KIND_STRING:
	case GITKVFS_KIND_PATH:
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return wrong_type(s, path, name, "a string");
		return set_string((char **)field, config_setting_get_string(s));
	case GITKVFS_KIND_ID:
		if (config_setting_type(s) == CONFIG_TYPE_STRING)
			return set_string((char **)field, config_setting_get_string(s));
		if (!is_integer(s))
			return wrong_type(s, path, name, "a number or a name");
		if ((code = read_integer(s, path, name, &v)) < 0)
			return code;
		snprintf(idbuf, sizeof(idbuf), "%lld", v);
		return set_string((char **)field, idbuf);
	case GITKVFS_KIND_OCTAL:
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			/* libconfig reads 027 as twenty-seven */
			return setting_error(s, path,
					     "%s must be a string of octal digits such as \"027\", "
					     "not %s",
					     name, type_name(s));
		return set_string((char **)field, config_setting_get_string(s));
	case GITKVFS_KIND_PATTERNS:
		return read_patterns(s, path, name, (char **)field);
	case GITKVFS_KIND_REMOTES:
		return read_remotes(s, path, name, out);
	}
	return setting_error(s, path, "%s: not supported", name);
}

static int read_setting(const config_setting_t *s, const char *path, struct gitkvfs_options *out)
{
	const char *name = config_setting_name(s);
	enum gitkvfs_kind kind;
	enum gitkvfs_opt id;
	size_t offset;
	int code;

	if (strcmp(name, "store") == 0) {
		if (config_setting_type(s) != CONFIG_TYPE_STRING)
			return wrong_type(s, path, name, "a string");
		if (!*config_setting_get_string(s))
			return setting_error(s, path, "store must not be empty");
		return set_string(&out->store, config_setting_get_string(s));
	}
	if (strcmp(name, "remotes") == 0)
		return read_remotes(s, path, name, out);
	for (size_t i = 0; i < NFUSE_FLAGS; i++) {
		if (strcmp(name, fuse_flags[i]) != 0)
			continue;
		if (config_setting_type(s) != CONFIG_TYPE_BOOL)
			return wrong_type(s, path, name, "true or false");
		if (config_setting_get_bool(s) && fuse_opt_add_opt(&out->fuse_opts, name) == -1)
			return gitkv_error_set(GITKV_ERROR, "out of memory");
		return 0;
	}
	if (fs_options_lookup(name, &id, &kind, &offset) < 0)
		return setting_error(s, path, "unknown setting '%s'", name);
	if ((code = read_option(s, path, name, kind, offset, out)) < 0)
		return code;
	out->from[id] = (int)config_setting_source_line(s);
	return 0;
}

int fs_config_read(const char *path, struct gitkvfs_options *out)
{
	config_setting_t *root;
	char *dir = NULL, *slash;
	struct stat st;
	config_t cf;
	FILE *f;
	int code = 0;

	/* libconfig says "file I/O error" whatever happened: ask first */
	if (!(f = fopen(path, "re")))
		return gitkv_error_set(GITKV_EINVALID, "%s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
		fclose(f);
		return gitkv_error_set(GITKV_EINVALID, "%s: %s", path, strerror(EISDIR));
	}
	fclose(f);

	config_init(&cf);
	/* @include "x.conf" is relative to the including file */
	if ((slash = strrchr(path, '/')) && !(dir = strndup(path, (size_t)(slash - path + 1)))) {
		config_destroy(&cf);
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	}
	if (dir)
		config_set_include_dir(&cf, dir);
	if (config_read_file(&cf, path) == CONFIG_FALSE) {
		const char *file = config_error_file(&cf);

		if (config_error_line(&cf) > 0)
			code = gitkv_error_set(GITKV_EINVALID, "%s:%d: %s", file ? file : path,
					       config_error_line(&cf), config_error_text(&cf));
		else
			code = gitkv_error_set(GITKV_EINVALID, "%s: %s", file ? file : path,
					       config_error_text(&cf));
		goto out;
	}
	root = config_root_setting(&cf);
	for (int i = 0; i < config_setting_length(root) && code == 0; i++)
		code = read_setting(config_setting_get_elem(root, (unsigned)i), path, out);
out:
	config_destroy(&cf);
	free(dir);
	return code;
}
