/*
 * gitkv.c - the gitkv command: a thin front over libgitkv.
 *
 * `gitkv [-C STORE] COMMAND [ARGS]` finds the command in commands[] and runs
 * its cmd_* function, whose return value is the exit status. Each cmd_*
 * parses its own options, opens the store, makes one or two calls into core
 * and prints the result; all the rules about keys, values and commits live in
 * core. Writes go through gitkv_store_apply(), so they become commits exactly
 * like writes through a mount, and the branch's compare-and-swap makes the
 * command safe to use while the store is mounted. `cas` goes through
 * sync_engine_cas(), which is cluster-wide when the store has remotes;
 * `watch` lives in watch.c.
 *
 * The store is -C STORE, else $GITKV_STORE, else the current directory.
 * Exit status: 0 success, 1 key not found (cas: the value differs), 2 usage
 * error, 3 any other error. Errors are one line on stderr:
 * "gitkv: get 'app/x': not found". JSON output (--json) is built with json-c.
 */
#include <gitkv/error.h>
#include <gitkv/remote.h>
#include <gitkv_sync/engine.h>
#include <gitkv/key.h>
#include <gitkv/snapshot.h>
#include <gitkv/store.h>
#include <gitkv/types.h>

#include "encode.h"
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#ifndef GITKV_VERSION
#define GITKV_VERSION "unknown"
#endif

enum exit_status {
	EXIT_OK = 0,
	EXIT_NOTFOUND = 1,
	EXIT_USAGE = 2,
	EXIT_ERROR = 3,
};

struct cmd;

/* What every command gets: where the store is and which command runs. */
struct cmd_ctx {
	const char *store_path; /* -C, $GITKV_STORE, or NULL: none given */
	const struct cmd *cmd;
};

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv, struct cmd_ctx *ctx);
	const char *usage; /* the synopsis after "gitkv " */
	const char *help;  /* one line for `gitkv -h` */
};

static int cmd_init(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_get(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_set(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_rm(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_ls(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_history(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_sync(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_revert(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_cas(int argc, char **argv, struct cmd_ctx *ctx);
static int cmd_watch(int argc, char **argv, struct cmd_ctx *ctx);

static const struct cmd commands[] = {
    {"init", cmd_init, "init [STORE]", "create an empty bare store"},
    {"get", cmd_get, "get [--rev REV] KEY", "write the value of KEY (at REV) to standard output"},
    {"set", cmd_set, "set KEY [VALUE]", "set KEY to VALUE, or to standard input"},
    {"rm", cmd_rm, "rm KEY", "remove KEY"},
    {"ls", cmd_ls, "ls [-r] [--values] [--json] [PREFIX]",
     "list the keys and prefixes below PREFIX"},
    {"history", cmd_history, "history [-n NUM] [--json] KEY", "list the commits that changed KEY"},
    {"revert", cmd_revert, "revert KEY --to REV",
     "set KEY back to its value at REV, as a new commit"},
    {"cas", cmd_cas, "cas [--sync|--local] [-t SECONDS] {KEY EXPECTED | --absent KEY} [NEW]",
     "set KEY to NEW only if it holds EXPECTED (or is absent)"},
    {"watch", cmd_watch, "watch [KEY|PREFIX]", "print a line for every change below PREFIX"},
    {"sync", cmd_sync, "sync [-t SECONDS]", "fetch, merge and push every remote now"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

/* ---- reporting ------------------------------------------------------- */

static void print_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void print_error(const char *fmt, ...)
{
	va_list ap;

	fputs("gitkv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* The exit status for a GITKV_E* code: only a missing key is 1. */
static int exit_status_of(int code)
{
	if (!code)
		return EXIT_OK;
	return code == GITKV_ENOTFOUND ? EXIT_NOTFOUND : EXIT_ERROR;
}

/* Why `code` happened: core's message if it left one, else the code's name. */
static const char *reason_of(int code)
{
	const char *msg = gitkv_error_last();

	if (code == GITKV_ENOTFOUND || !msg || !*msg)
		return gitkv_error_name(code);
	return msg;
}

/* Report a failed operation on `key` and return the exit status for it. */
static int fail_on_key(const struct cmd_ctx *ctx, const char *key, int code)
{
	print_error("%s '%s': %s", ctx->cmd->name, key, reason_of(code));
	return exit_status_of(code);
}

static int usage_error(const struct cmd_ctx *ctx)
{
	print_error("usage: gitkv %s", ctx->cmd->usage);
	return EXIT_USAGE;
}

static void print_usage(FILE *f)
{
	size_t i;

	fputs("usage: gitkv [-C STORE] COMMAND [ARGS]\n"
	      "       gitkv -h | --help | --version\n"
	      "\n"
	      "commands:\n",
	      f);
	for (i = 0; i < N_COMMANDS; i++) {
		if (strlen(commands[i].usage) <= 30)
			fprintf(f, "  %-30s %s\n", commands[i].usage, commands[i].help);
		else
			fprintf(f, "  %s\n  %-30s %s\n", commands[i].usage, "", commands[i].help);
	}
	fputs("\n"
	      "STORE is -C STORE, else $GITKV_STORE, else the current directory.\n"
	      "Exit status: 0 ok, 1 key not found (cas: value differs), 2 usage error,\n"
	      "3 other error.\n"
	      "'gitkv COMMAND -h' shows the usage of one command.\n",
	      f);
}

/* ---- helpers --------------------------------------------------------- */

/* The long options that have no short form: values past any character. */
enum long_option {
	OPT_REV = 256,
	OPT_VALUES,
	OPT_JSON,
	OPT_TO,
	OPT_ABSENT,
	OPT_SYNC,
	OPT_LOCAL,
};

#define MAX_LONG_OPTIONS 8

/*
 * getopt for a command, with its own long options (`longopts`, ended by a
 * zeroed entry, at most MAX_LONG_OPTIONS; may be NULL). -h and --help are
 * always known, and errors are ours to print. Unless `permute`, options stop
 * at the first operand (so a value may start with '-'); commands whose
 * operands are keys and revisions take options anywhere. Returns the
 * option, 'h', '?' after printing an error, or -1.
 */
static int cmd_getopt_long(int argc, char **argv, const char *optstring,
			   const struct option *longopts, bool permute, const struct cmd_ctx *ctx)
{
	struct option all[MAX_LONG_OPTIONS + 2];
	char spec[32];
	size_t n = 0;
	int c;

	for (; longopts && longopts[n].name && n < MAX_LONG_OPTIONS; n++)
		all[n] = longopts[n];
	all[n++] = (struct option){"help", no_argument, NULL, 'h'};
	all[n] = (struct option){NULL, 0, NULL, 0};
	snprintf(spec, sizeof(spec), "%s:h%s", permute ? "" : "+", optstring);
	opterr = 0;
	c = getopt_long(argc, argv, spec, all, NULL);
	if (c == '?') {
		if (optopt > 0 && optopt < OPT_REV)
			print_error("%s: unknown option '-%c' (see 'gitkv %s -h')", ctx->cmd->name,
				    optopt, ctx->cmd->name);
		else
			print_error("%s: unknown option '%s' (see 'gitkv %s -h')", ctx->cmd->name,
				    argv[optind - 1], ctx->cmd->name);
	} else if (c == ':') {
		if (optopt > 0 && optopt < OPT_REV)
			print_error("%s: option '-%c' needs a value", ctx->cmd->name, optopt);
		else
			print_error("%s: option '%s' needs a value", ctx->cmd->name,
				    argv[optind - 1]);
		c = '?';
	} else if (c == 'h') {
		printf("usage: gitkv %s\n", ctx->cmd->usage);
	}
	return c;
}

/* cmd_getopt_long() without long options; options stop at the first operand. */
static int cmd_getopt(int argc, char **argv, const char *optstring, const struct cmd_ctx *ctx)
{
	return cmd_getopt_long(argc, argv, optstring, NULL, false, ctx);
}

#define GO_ON (-1)

/* For a command without options: GO_ON, or the exit status after -h or an error. */
static int parse_no_options(int argc, char **argv, const struct cmd_ctx *ctx)
{
	int c = cmd_getopt(argc, argv, "", ctx);

	if (c == -1)
		return GO_ON;
	return c == 'h' ? EXIT_OK : EXIT_USAGE;
}

static const char *store_path_or_cwd(const struct cmd_ctx *ctx)
{
	return ctx->store_path ? ctx->store_path : ".";
}

/* Open the store for reading or writing; on failure report it and return 3. */
static int open_store(const struct cmd_ctx *ctx, bool write, gitkv_store **out)
{
	gitkv_store_options opts = GITKV_STORE_OPTIONS_INIT;
	const char *path = store_path_or_cwd(ctx);
	int rc;

	opts.committer = "gitkv";
	opts.readonly = !write;
	gitkv_error_clear();
	rc = gitkv_store_open(out, path, &opts);
	if (rc < 0) {
		if (rc == GITKV_ENOTFOUND)
			print_error("cannot open store '%s': not a gitkv store", path);
		else
			print_error("cannot open store '%s': %s", path, reason_of(rc));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/* Who the CLI writes as: the calling user, this process, "gitkv". */
static gitkv_writer this_writer(void)
{
	gitkv_writer w = {
	    .uid = getuid(),
	    .pid = getpid(),
	    .comm = "gitkv",
	};

	return w;
}

/*
 * Read standard input, but never more than `max + 1` bytes: a longer value
 * is refused by core all the same, and this bounds the memory it costs.
 */
static int read_stdin(size_t max, char **buf_out, size_t *len_out)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -1;
	while (len <= max) {
		size_t want, n;

		if (len == cap) {
			char *bigger;

			cap *= 2;
			bigger = realloc(buf, cap);
			if (!bigger)
				goto fail;
			buf = bigger;
		}
		want = cap - len;
		if (want > max + 1 - len)
			want = max + 1 - len;
		n = fread(buf + len, 1, want, stdin);
		len += n;
		if (n < want) {
			if (ferror(stdin))
				goto fail;
			break;
		}
	}
	*buf_out = buf;
	*len_out = len;
	return 0;

fail:
	free(buf);
	return -1;
}

/* A prefix as the user typed it, without trailing slashes ("app/" is "app"). */
static char *normalize_prefix(const char *arg)
{
	char *p = strdup(arg);
	size_t n;

	if (!p)
		return NULL;
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		p[--n] = '\0';
	return p;
}

static int flush_stdout(const struct cmd_ctx *ctx)
{
	if (fflush(stdout) || ferror(stdout)) {
		print_error("%s: cannot write to standard output: %s", ctx->cmd->name,
			    strerror(errno));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/* ---- commands -------------------------------------------------------- */

static int cmd_init(int argc, char **argv, struct cmd_ctx *ctx)
{
	const char *path;
	int rc, status;

	status = parse_no_options(argc, argv, ctx);
	if (status != GO_ON)
		return status;
	if (argc - optind > 1)
		return usage_error(ctx);
	path = optind < argc ? argv[optind] : ctx->store_path;
	if (!path) {
		print_error("init: no store given (gitkv init STORE, or -C STORE)");
		return EXIT_USAGE;
	}
	gitkv_error_clear();
	rc = gitkv_store_init(path);
	if (rc == GITKV_EEXISTS) {
		print_error("init '%s': a repository exists there already", path);
		return EXIT_ERROR;
	}
	if (rc < 0)
		return fail_on_key(ctx, path, rc);
	return EXIT_OK;
}

/*
 * Resolve revision `rev` (an id, a tag, HEAD~N...) to a commit once, so that
 * every lookup that follows sees the same tree. On failure report it and
 * return 3.
 */
static int resolve_rev(const struct cmd_ctx *ctx, gitkv_store *store, const char *rev,
		       char hex[GITKV_OID_HEXSZ + 1])
{
	gitkv_entry root;
	gitkv_oid commit;

	gitkv_error_clear();
	/* The empty key is the commit's root tree: it exists once the revision does. */
	if (gitkv_store_lookup_at(store, rev, "", &root, &commit) < 0) {
		print_error("%s: unknown revision '%s'", ctx->cmd->name, rev);
		return EXIT_ERROR;
	}
	gitkv_oid_fmt(hex, &commit);
	return EXIT_OK;
}

/*
 * The value of `key` in commit `hex` (as resolved from `rev`) and its entry
 * in `then`. Returns 0, 1 without a word when the key is absent there, or 3
 * reported.
 */
static int read_at(const struct cmd_ctx *ctx, gitkv_store *store, const char *rev, const char *hex,
		   const char *key, gitkv_entry *then, char **buf, size_t *len)
{
	int rc;

	gitkv_error_clear();
	rc = gitkv_store_lookup_at(store, hex, key, then, NULL);
	if (rc == GITKV_ENOTFOUND)
		return EXIT_NOTFOUND;
	if (rc < 0)
		return fail_on_key(ctx, key, rc);
	if (then->type == GITKV_TYPE_DIR) {
		print_error("%s '%s': a prefix at '%s', not a value", ctx->cmd->name, key, rev);
		return EXIT_ERROR;
	}
	if ((rc = gitkv_store_read_blob(store, &then->oid, buf, len)) < 0)
		return fail_on_key(ctx, key, rc);
	return EXIT_OK;
}

static int cmd_get(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
	    {"rev", required_argument, NULL, OPT_REV},
	    {NULL, 0, NULL, 0},
	};
	gitkv_store *store = NULL;
	gitkv_entry then;
	char hex[GITKV_OID_HEXSZ + 1];
	const char *key, *rev = NULL;
	char *buf = NULL;
	size_t len = 0;
	int c, rc, status;

	while ((c = cmd_getopt_long(argc, argv, "", longopts, true, ctx)) != -1) {
		if (c == OPT_REV)
			rev = optarg;
		else
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
	}
	if (argc - optind != 1)
		return usage_error(ctx);
	key = argv[optind];

	status = open_store(ctx, false, &store);
	if (status)
		return status;
	if (rev) {
		if ((status = resolve_rev(ctx, store, rev, hex)))
			goto out;
		status = read_at(ctx, store, rev, hex, key, &then, &buf, &len);
		if (status == EXIT_NOTFOUND)
			print_error("get '%s': not found at '%s'", key, rev);
		if (status)
			goto out;
	} else {
		gitkv_error_clear();
		rc = gitkv_store_get(store, key, &buf, &len, NULL);
		if (rc < 0) {
			status = fail_on_key(ctx, key, rc);
			goto out;
		}
	}
	fwrite(buf, 1, len, stdout);
	status = flush_stdout(ctx);

out:
	free(buf);
	gitkv_store_free(store);
	return status;
}

static int cmd_set(int argc, char **argv, struct cmd_ctx *ctx)
{
	gitkv_store *store = NULL;
	gitkv_writer writer = this_writer();
	gitkv_op op = {.type = GITKV_OP_SET, .flags = GITKV_OP_KEEP_TYPE, .vtype = GITKV_TYPE_FILE};
	char *input = NULL;
	size_t len;
	int rc, status;

	status = parse_no_options(argc, argv, ctx);
	if (status != GO_ON)
		return status;
	if (argc - optind < 1 || argc - optind > 2)
		return usage_error(ctx);
	op.key = argv[optind];

	status = open_store(ctx, true, &store);
	if (status)
		return status;
	if (argc - optind == 2) {
		op.value = argv[optind + 1];
		op.len = strlen(argv[optind + 1]);
	} else {
		if (read_stdin(gitkv_store_max_value_size(store), &input, &len) < 0) {
			print_error("set '%s': cannot read standard input: %s", op.key,
				    strerror(errno));
			status = EXIT_ERROR;
			goto out;
		}
		op.value = input;
		op.len = len;
	}
	gitkv_error_clear();
	rc = gitkv_store_apply(store, &op, &writer, NULL);
	if (rc < 0)
		status = fail_on_key(ctx, op.key, rc);

out:
	free(input);
	gitkv_store_free(store);
	return status;
}

static int cmd_rm(int argc, char **argv, struct cmd_ctx *ctx)
{
	gitkv_store *store = NULL;
	gitkv_writer writer = this_writer();
	gitkv_op op = {.type = GITKV_OP_DELETE};
	int rc, status;

	status = parse_no_options(argc, argv, ctx);
	if (status != GO_ON)
		return status;
	if (argc - optind != 1)
		return usage_error(ctx);
	op.key = argv[optind];

	status = open_store(ctx, true, &store);
	if (status)
		return status;
	gitkv_error_clear();
	rc = gitkv_store_apply(store, &op, &writer, NULL);
	if (rc < 0)
		status = fail_on_key(ctx, op.key, rc);
	gitkv_store_free(store);
	return status;
}

/* ---- ls ---- */

/* How `ls` prints: names or full keys, values or not, text or JSON. */
struct listing {
	gitkv_store *store;
	bool values;	   /* show each value */
	json_object *json; /* the array of entries, or NULL for text */
};

static const char *type_name(gitkv_type type)
{
	switch (type) {
	case GITKV_TYPE_FILE:
		return "file";
	case GITKV_TYPE_EXEC:
		return "exec";
	case GITKV_TYPE_LINK:
		return "link";
	case GITKV_TYPE_DIR:
		return "dir";
	default:
		return "none";
	}
}

/*
 * Show one entry: `key` is its full key, `shown` what the text form prints
 * for it (the full key with -r, else the name). Returns 0 or a GITKV_E* code.
 */
static int list_one(struct listing *l, const char *key, const char *shown, const gitkv_entry *entry)
{
	bool is_value = gitkv_type_is_value(entry->type);
	char *buf = NULL;
	size_t len = 0;
	int rc;

	if (l->values && is_value &&
	    (rc = gitkv_store_read_blob(l->store, &entry->oid, &buf, &len)) < 0)
		return rc;
	if (l->json) {
		json_object *obj = json_object_new_object();

		rc = !obj || json_add_bytes(obj, "key", key, strlen(key)) ||
		     json_object_object_add(obj, "type",
					    json_object_new_string(type_name(entry->type))) ||
		     (l->values && is_value && json_add_bytes(obj, "value", buf, len)) ||
		     json_object_array_add(l->json, obj);
		if (rc) {
			json_object_put(obj);
			free(buf);
			return gitkv_error_set(GITKV_ERROR, "out of memory");
		}
	} else {
		fputs(shown, stdout);
		if (entry->type == GITKV_TYPE_DIR)
			fputc('/', stdout);
		if (l->values && is_value) {
			fputc('\t', stdout);
			escape_print(stdout, buf, len);
		}
		fputc('\n', stdout);
	}
	free(buf);
	return 0;
}

/*
 * List the children of `dir` (every value below it, depth first, with
 * `recursive`) in name order. The reserved .gitkv trees are metadata, never
 * listed. Returns 0 or a GITKV_E* code.
 */
static int list_dir(struct listing *l, gitkv_snapshot *snap, const char *dir, bool recursive)
{
	gitkv_dirent *ents = NULL;
	size_t count = 0, i;
	int rc;

	rc = gitkv_snapshot_list(snap, dir, &ents, &count);
	if (rc < 0)
		return rc;
	for (i = 0; i < count && !rc; i++) {
		char *key;

		if (!strcmp(ents[i].name, GITKV_RESERVED))
			continue;
		key = gitkv_key_join(dir, ents[i].name);
		if (!key) {
			rc = gitkv_error_set(GITKV_ERROR, "out of memory");
			break;
		}
		if (!recursive)
			rc = list_one(l, key, ents[i].name, &ents[i].entry);
		else if (ents[i].entry.type == GITKV_TYPE_DIR)
			rc = list_dir(l, snap, key, true);
		else
			rc = list_one(l, key, key, &ents[i].entry);
		free(key);
	}
	gitkv_dirents_free(ents, count);
	return rc;
}

/* Print `json` (an array) on standard output and free it; 0, or 3 reported. */
static int print_json(const struct cmd_ctx *ctx, json_object *json)
{
	const char *text = json_object_to_json_string_ext(json, JSON_C_TO_STRING_PRETTY |
								    JSON_C_TO_STRING_NOSLASHESCAPE);
	int status = EXIT_OK;

	if (!text) {
		print_error("%s: out of memory", ctx->cmd->name);
		status = EXIT_ERROR;
	} else {
		puts(text);
	}
	json_object_put(json);
	return status;
}

static int cmd_ls(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
	    {"recursive", no_argument, NULL, 'r'},
	    {"values", no_argument, NULL, OPT_VALUES},
	    {"json", no_argument, NULL, OPT_JSON},
	    {NULL, 0, NULL, 0},
	};
	struct listing l = {0};
	gitkv_store *store = NULL;
	gitkv_snapshot *snap;
	gitkv_entry root;
	bool recursive = false, json = false;
	char *prefix = NULL;
	int c, rc, status;

	while ((c = cmd_getopt_long(argc, argv, "r", longopts, true, ctx)) != -1) {
		if (c == 'r')
			recursive = true;
		else if (c == OPT_VALUES)
			l.values = true;
		else if (c == OPT_JSON)
			json = true;
		else
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
	}
	if (argc - optind > 1)
		return usage_error(ctx);
	prefix = normalize_prefix(optind < argc ? argv[optind] : "");
	if (!prefix) {
		print_error("ls: out of memory");
		return EXIT_ERROR;
	}
	gitkv_error_clear();
	if (*prefix && (rc = gitkv_key_validate(prefix)) < 0) {
		status = fail_on_key(ctx, prefix, rc);
		goto out;
	}

	status = open_store(ctx, false, &store);
	if (status)
		goto out;
	l.store = store;
	if (json && !(l.json = json_object_new_array())) {
		print_error("ls: out of memory");
		status = EXIT_ERROR;
		goto out;
	}
	snap = gitkv_store_snapshot(store);
	gitkv_error_clear();
	/* A store with no commit yet has no root tree: it lists nothing. */
	if (!*prefix && gitkv_snapshot_lookup(snap, "", &root) == GITKV_ENOTFOUND)
		rc = 0;
	else
		rc = list_dir(&l, snap, prefix, recursive);
	if (rc < 0) {
		status = fail_on_key(ctx, prefix, rc);
		goto out;
	}
	if (l.json) {
		status = print_json(ctx, l.json);
		l.json = NULL;
	}
	if (!status)
		status = flush_stdout(ctx);

out:
	json_object_put(l.json);
	gitkv_store_free(store);
	free(prefix);
	return status;
}

/* ---- history ---- */

struct history_state {
	size_t printed;
	json_object *json; /* the array of commits, or NULL for text */
};

/* The commit time as ISO 8601 in UTC ("2026-11-23T10:00:00Z"). */
static void format_time(char *out, size_t size, int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, size, "@%" PRId64, when);
}

/* One commit as a JSON object: commit, time, author, email, summary, message. */
static json_object *commit_json(const gitkv_commit_info *commit)
{
	char hex[GITKV_OID_HEXSZ + 1], when[32];
	json_object *obj = json_object_new_object();
	const char *author = commit->author_name ? commit->author_name : "";
	const char *email = commit->author_email ? commit->author_email : "";
	const char *summary = commit->summary ? commit->summary : "";
	const char *message = commit->message ? commit->message : "";

	gitkv_oid_fmt(hex, &commit->id);
	format_time(when, sizeof(when), commit->time);
	if (!obj || json_object_object_add(obj, "commit", json_object_new_string(hex)) ||
	    json_object_object_add(obj, "time", json_object_new_string(when)) ||
	    json_add_bytes(obj, "author", author, strlen(author)) ||
	    json_add_bytes(obj, "email", email, strlen(email)) ||
	    json_add_bytes(obj, "summary", summary, strlen(summary)) ||
	    json_add_bytes(obj, "message", message, strlen(message))) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static int print_commit(const gitkv_commit_info *commit, void *payload)
{
	struct history_state *state = payload;
	char hex[GITKV_OID_HEXSZ + 1], when[32];

	if (state->json) {
		json_object *obj = commit_json(commit);

		if (!obj || json_object_array_add(state->json, obj)) {
			json_object_put(obj);
			return gitkv_error_set(GITKV_ERROR, "out of memory");
		}
	} else {
		gitkv_oid_fmt(hex, &commit->id);
		format_time(when, sizeof(when), commit->time);
		printf("%.12s %s %s %s\n", hex, when,
		       commit->author_name ? commit->author_name : "",
		       commit->summary ? commit->summary : "");
	}
	state->printed++;
	return 0;
}

static int cmd_history(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
	    {"json", no_argument, NULL, OPT_JSON},
	    {NULL, 0, NULL, 0},
	};
	struct history_state state = {0};
	gitkv_store *store = NULL;
	unsigned long limit = 0;
	bool json = false;
	const char *key;
	char *end;
	int c, rc, status;

	while ((c = cmd_getopt_long(argc, argv, "n:", longopts, true, ctx)) != -1) {
		if (c == OPT_JSON) {
			json = true;
			continue;
		}
		if (c != 'n')
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
		errno = 0;
		limit = strtoul(optarg, &end, 10);
		if (errno || end == optarg || *end || *optarg == '-') {
			print_error("history: '-n %s': not a number", optarg);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1)
		return usage_error(ctx);
	key = argv[optind];

	status = open_store(ctx, false, &store);
	if (status)
		return status;
	if (json && !(state.json = json_object_new_array())) {
		print_error("history: out of memory");
		status = EXIT_ERROR;
		goto out;
	}
	gitkv_error_clear();
	rc = gitkv_store_history(store, key, limit, print_commit, &state);
	if (rc < 0) {
		status = fail_on_key(ctx, key, rc);
		goto out;
	}
	/* No commit ever touched it: the key does not exist, and never did. */
	if (!state.printed) {
		status = fail_on_key(ctx, key, GITKV_ENOTFOUND);
		goto out;
	}
	if (state.json) {
		status = print_json(ctx, state.json);
		state.json = NULL;
	}
	if (!status)
		status = flush_stdout(ctx);

out:
	json_object_put(state.json);
	gitkv_store_free(store);
	return status;
}

/* ---- revert ---- */

/*
 * revert KEY --to REV: write the value KEY had at REV as a new commit (an
 * ordinary "set KEY", or "delete KEY" if KEY did not exist at REV), so the
 * bad value stays in history and the rollback is itself a change.
 */
static int cmd_revert(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
	    {"to", required_argument, NULL, OPT_TO},
	    {NULL, 0, NULL, 0},
	};
	gitkv_store *store = NULL;
	gitkv_writer writer = this_writer();
	gitkv_op op = {.type = GITKV_OP_DELETE};
	gitkv_entry then;
	char hex[GITKV_OID_HEXSZ + 1];
	const char *rev = NULL;
	char *buf = NULL;
	size_t len = 0;
	int c, rc, status;

	while ((c = cmd_getopt_long(argc, argv, "", longopts, true, ctx)) != -1) {
		if (c == OPT_TO)
			rev = optarg;
		else
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
	}
	if (argc - optind != 1 || !rev)
		return usage_error(ctx);
	op.key = argv[optind];
	gitkv_error_clear();
	if ((rc = gitkv_key_validate(op.key)) < 0)
		return fail_on_key(ctx, op.key, rc);

	status = open_store(ctx, true, &store);
	if (status)
		return status;
	if ((status = resolve_rev(ctx, store, rev, hex)))
		goto out;
	status = read_at(ctx, store, rev, hex, op.key, &then, &buf, &len);
	if (status == EXIT_NOTFOUND) {
		/* Absent at REV: absent again, which is no error if it is absent now. */
		status = EXIT_OK;
	} else if (status) {
		goto out;
	} else {
		op.type = GITKV_OP_SET;
		op.vtype = then.type; /* the exec bit, or a symlink, as it was */
		op.value = buf;
		op.len = len;
	}
	gitkv_error_clear();
	rc = gitkv_store_apply(store, &op, &writer, NULL);
	if (rc < 0 && !(rc == GITKV_ENOTFOUND && op.type == GITKV_OP_DELETE))
		status = fail_on_key(ctx, op.key, rc);

out:
	free(buf);
	gitkv_store_free(store);
	return status;
}

/* ---- cas ---- */

/* The remotes recorded in the store's config, as the sync engine takes them. */
struct remotes {
	char **names, **urls;
	sync_remote *list;
	size_t n;
};

static void remotes_free(struct remotes *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->names[i]);
		free(r->urls[i]);
	}
	free(r->names);
	free(r->urls);
	free(r->list);
	memset(r, 0, sizeof(*r));
}

static int remotes_load(gitkv_store *store, struct remotes *r)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = gitkv_remote_list(store, &r->names, &r->urls, &r->n)) < 0)
		return rc;
	if (r->n && !(r->list = calloc(r->n, sizeof(*r->list)))) {
		remotes_free(r);
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	}
	for (size_t i = 0; i < r->n; i++)
		r->list[i] = (sync_remote){.name = r->names[i], .url = r->urls[i]};
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Take an exclusive lock on the store's directory, waiting at most
 * `timeout_s`: cluster-wide swaps from several processes on one store take
 * turns, since each fetches into the same tracking ref. The lock goes with
 * the descriptor. Returns the descriptor, or -1 with errno set.
 */
static int lock_store(const char *path, double timeout_s)
{
	double until = now_seconds() + timeout_s;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK || now_seconds() >= until) {
			int err = errno == EWOULDBLOCK ? ETIMEDOUT : errno;

			close(fd);
			errno = err;
			return -1;
		}
		poll(NULL, 0, 10);
	}
	return fd;
}

/*
 * After a failed swap: the current value on standard error, byte for byte,
 * or one line saying what is there instead of a value. Returns 1.
 */
static int report_mismatch(const struct cmd_ctx *ctx, gitkv_store *store, const char *key,
			   const gitkv_entry *cur)
{
	char *buf = NULL;
	size_t len = 0;

	if (cur->type == GITKV_TYPE_NONE)
		print_error("cas '%s': absent", key);
	else if (cur->type == GITKV_TYPE_DIR)
		print_error("cas '%s': a prefix", key);
	else if (gitkv_store_read_blob(store, &cur->oid, &buf, &len) < 0)
		print_error("cas '%s': the value differs", key);
	else
		fwrite(buf, 1, len, stderr);
	free(buf);
	fflush(stderr);
	return EXIT_NOTFOUND;
}

/*
 * cas: compare-and-swap through sync_engine_cas(). With remotes in the
 * store's config (or --sync) it runs cluster-wide against the first
 * remote; --local keeps it to this store.
 */
static int cmd_cas(int argc, char **argv, struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
	    {"absent", no_argument, NULL, OPT_ABSENT},
	    {"sync", no_argument, NULL, OPT_SYNC},
	    {"local", no_argument, NULL, OPT_LOCAL},
	    {NULL, 0, NULL, 0},
	};
	gitkv_store *store = NULL;
	gitkv_writer writer = this_writer();
	sync_engine *engine = NULL;
	struct remotes remotes = {0};
	gitkv_entry cur;
	bool absent = false, sync = false, local = false;
	unsigned long timeout = 60;
	const char *key, *expected = NULL, *value;
	char *input = NULL, *end;
	size_t len, expected_len = 0;
	int c, rc, status, lock = -1, operands;
	double started = now_seconds();

	while ((c = cmd_getopt_long(argc, argv, "t:", longopts, false, ctx)) != -1) {
		if (c == OPT_ABSENT) {
			absent = true;
		} else if (c == OPT_SYNC) {
			sync = true;
		} else if (c == OPT_LOCAL) {
			local = true;
		} else if (c == 't') {
			errno = 0;
			timeout = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || *optarg == '-' || !timeout ||
			    timeout > 86400) {
				print_error("cas: '-t %s': not a number of seconds", optarg);
				return EXIT_USAGE;
			}
		} else {
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
		}
	}
	operands = argc - optind;
	if ((sync && local) || operands < (absent ? 1 : 2) || operands > (absent ? 2 : 3))
		return usage_error(ctx);
	key = argv[optind];
	if (!absent) {
		expected = argv[optind + 1];
		expected_len = strlen(expected);
	}
	value = operands == (absent ? 2 : 3) ? argv[argc - 1] : NULL;

	status = open_store(ctx, true, &store);
	if (status)
		return status;
	if (value) {
		len = strlen(value);
	} else {
		if (read_stdin(gitkv_store_max_value_size(store), &input, &len) < 0) {
			print_error("cas '%s': cannot read standard input: %s", key,
				    strerror(errno));
			status = EXIT_ERROR;
			goto out;
		}
		value = input;
	}
	gitkv_error_clear();
	if (!local && (rc = remotes_load(store, &remotes)) < 0) {
		print_error("cas: %s", reason_of(rc));
		status = EXIT_ERROR;
		goto out;
	}
	if (sync && !remotes.n) {
		print_error("cas: --sync, but the store has no remotes (remote.NAME.url)");
		status = EXIT_ERROR;
		goto out;
	}
	if (remotes.n) {
		sync_options opts = {
		    .remotes = remotes.list, .nremotes = remotes.n, .interval_s = 3600};

		if ((lock = lock_store(gitkv_store_path(store), (double)timeout)) < 0) {
			print_error("cas: cannot lock the store: %s", strerror(errno));
			status = EXIT_ERROR;
			goto out;
		}
		if ((rc = sync_engine_start(&engine, store, &opts)) < 0) {
			print_error("cas: %s", reason_of(rc));
			status = EXIT_ERROR;
			goto out;
		}
	}
	gitkv_error_clear();
	rc = sync_engine_cas(engine, store, key, expected, expected_len, value, len, &writer,
			     (int)(timeout * 1000), &cur, NULL);
	if (rc == GITKV_EMODIFIED)
		status = report_mismatch(ctx, store, key, &cur);
	else if (rc < 0) {
		fail_on_key(ctx, key, rc);
		status = EXIT_ERROR;
	}

out:
	if (engine) {
		/* The engine's last round takes the swap to the other remotes. */
		double left = (double)timeout - (now_seconds() - started);

		sync_engine_stop(engine, left < 1 ? 1 : left > 10 ? 10 : (int)left);
	}
	if (lock >= 0)
		close(lock);
	remotes_free(&remotes);
	free(input);
	gitkv_store_free(store);
	return status;
}

/* ---- watch ---- */

static int cmd_watch(int argc, char **argv, struct cmd_ctx *ctx)
{
	gitkv_store *store = NULL;
	char *prefix;
	int rc, status;

	if ((rc = cmd_getopt_long(argc, argv, "", NULL, true, ctx)) != -1)
		return rc == 'h' ? EXIT_OK : EXIT_USAGE;
	if (argc - optind > 1)
		return usage_error(ctx);
	prefix = normalize_prefix(optind < argc ? argv[optind] : "");
	if (!prefix) {
		print_error("watch: out of memory");
		return EXIT_ERROR;
	}
	gitkv_error_clear();
	if (*prefix && (rc = gitkv_key_validate(prefix)) < 0) {
		status = fail_on_key(ctx, prefix, rc);
		goto out;
	}
	status = open_store(ctx, false, &store);
	if (status)
		goto out;
	gitkv_error_clear();
	rc = cli_watch(store, prefix);
	if (rc < 0) {
		print_error("watch: %s", reason_of(rc));
		status = EXIT_ERROR;
	}

out:
	gitkv_store_free(store);
	free(prefix);
	return status;
}

/*
 * sync: one round of fetch, merge and push for every remote recorded in the
 * store's config (a mounted daemon records its -o remote= there). It runs
 * in this process through the same engine the daemon uses; a daemon
 * mounting the store sees the result through its ref watcher.
 */
static int cmd_sync(int argc, char **argv, struct cmd_ctx *ctx)
{
	gitkv_store *store = NULL;
	sync_engine *engine = NULL;
	sync_remote *remotes = NULL;
	sync_remote_status *st = NULL;
	char **names = NULL, **urls = NULL;
	size_t n = 0;
	unsigned long timeout = 60;
	char *end;
	int c, rc, status;

	while ((c = cmd_getopt(argc, argv, "t:", ctx)) != -1) {
		if (c != 't')
			return c == 'h' ? EXIT_OK : EXIT_USAGE;
		errno = 0;
		timeout = strtoul(optarg, &end, 10);
		if (errno || end == optarg || *end || *optarg == '-' || !timeout) {
			print_error("sync: '-t %s': not a positive number", optarg);
			return EXIT_USAGE;
		}
	}
	if (argc != optind)
		return usage_error(ctx);
	status = open_store(ctx, true, &store);
	if (status)
		return status;
	if ((rc = gitkv_remote_list(store, &names, &urls, &n)) < 0) {
		print_error("sync: %s", reason_of(rc));
		status = EXIT_ERROR;
		goto out;
	}
	if (!n) {
		print_error("sync: the store has no remotes (mount it with -o remote=URL)");
		status = EXIT_ERROR;
		goto out;
	}
	remotes = calloc(n, sizeof(*remotes));
	st = calloc(n, sizeof(*st));
	if (!remotes || !st) {
		print_error("sync: out of memory");
		status = EXIT_ERROR;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		remotes[i] = (sync_remote){.name = names[i], .url = urls[i]};
	sync_options opts = {.remotes = remotes, .nremotes = n, .interval_s = 3600};
	if ((rc = sync_engine_start(&engine, store, &opts)) < 0 ||
	    (rc = sync_engine_round(engine, (int)timeout * 1000)) < 0) {
		print_error("sync: %s", reason_of(rc));
		status = EXIT_ERROR;
		goto out;
	}
	sync_engine_status(engine, st, n);
	status = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		if (st[i].failures) {
			print_error("sync: %s (%s): %s", st[i].name, st[i].url, st[i].last_error);
			status = EXIT_ERROR;
		} else {
			printf("%s\t%s\tok\n", st[i].name, st[i].url);
		}
	}
out:
	sync_engine_stop(engine, 10);
	for (size_t i = 0; i < n; i++) {
		free(names[i]);
		free(urls[i]);
	}
	free(names);
	free(urls);
	free(remotes);
	free(st);
	gitkv_store_free(store);
	if (status == EXIT_OK)
		status = flush_stdout(ctx);
	return status;
}

/* ---- main ------------------------------------------------------------ */

static const struct cmd *find_command(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	struct cmd_ctx ctx = {.store_path = getenv("GITKV_STORE")};
	int i;

	if (ctx.store_path && !*ctx.store_path)
		ctx.store_path = NULL;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
			print_usage(stdout);
			return EXIT_OK;
		} else if (!strcmp(arg, "--version")) {
			printf("gitkv %s\n", GITKV_VERSION);
			return EXIT_OK;
		} else if (!strcmp(arg, "-C")) {
			if (++i == argc) {
				print_error("option '-C' needs a store");
				return EXIT_USAGE;
			}
			ctx.store_path = argv[i];
		} else if (!strncmp(arg, "-C", 2)) {
			ctx.store_path = arg + 2;
		} else if (!strcmp(arg, "--")) {
			i++;
			break;
		} else {
			print_error("unknown option '%s' (see 'gitkv -h')", arg);
			return EXIT_USAGE;
		}
	}
	if (i == argc) {
		print_usage(stderr);
		return EXIT_USAGE;
	}
	ctx.cmd = find_command(argv[i]);
	if (!ctx.cmd) {
		print_error("'%s' is not a gitkv command (see 'gitkv -h')", argv[i]);
		return EXIT_USAGE;
	}
	optind = 0; /* glibc: start getopt afresh */
	return ctx.cmd->fn(argc - i, argv + i, &ctx);
}
