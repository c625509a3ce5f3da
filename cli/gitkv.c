/*
 * gitkv.c - the gitkv command: a thin front over libgitkv.
 *
 * `gitkv [-C STORE] COMMAND [ARGS]` finds the command in commands[] and runs
 * its cmd_* function, whose return value is the exit status. Each cmd_*
 * parses its own options, opens the store, makes one or two calls into core
 * and prints the result; all the rules about keys, values and commits live in
 * core. Writes go through gitkv_store_apply(), so they become commits exactly
 * like writes through a mount, and the branch's compare-and-swap makes the
 * command safe to use while the store is mounted.
 *
 * The store is -C STORE, else $GITKV_STORE, else the current directory.
 * Exit status: 0 success, 1 key not found, 2 usage error, 3 any other error.
 * Errors are one line on stderr: "gitkv: get 'app/x': not found".
 */
#include <gitkv/error.h>
#include <gitkv/remote.h>
#include <gitkv_sync/engine.h>
#include <gitkv/key.h>
#include <gitkv/snapshot.h>
#include <gitkv/store.h>
#include <gitkv/types.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

static const struct cmd commands[] = {
    {"init", cmd_init, "init [STORE]", "create an empty bare store"},
    {"get", cmd_get, "get KEY", "write the value of KEY to standard output"},
    {"set", cmd_set, "set KEY [VALUE]", "set KEY to VALUE, or to standard input"},
    {"rm", cmd_rm, "rm KEY", "remove KEY"},
    {"ls", cmd_ls, "ls [-r] [PREFIX]", "list the keys and prefixes below PREFIX"},
    {"history", cmd_history, "history [-n NUM] KEY", "list the commits that changed KEY"},
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
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-22s %s\n", commands[i].usage, commands[i].help);
	fputs("\n"
	      "STORE is -C STORE, else $GITKV_STORE, else the current directory.\n"
	      "Exit status: 0 ok, 1 key not found, 2 usage error, 3 other error.\n"
	      "'gitkv COMMAND -h' shows the usage of one command.\n",
	      f);
}

/* ---- helpers --------------------------------------------------------- */

/*
 * getopt for a command: options stop at the first operand (so a value may
 * start with '-'), -h and --help are always known, and errors are ours to
 * print. Returns the option, 'h', '?' after printing an error, or -1.
 */
static int cmd_getopt(int argc, char **argv, const char *optstring, const struct cmd_ctx *ctx)
{
	static const struct option longopts[] = {
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	char spec[32];
	int c;

	snprintf(spec, sizeof(spec), "+:h%s", optstring);
	opterr = 0;
	c = getopt_long(argc, argv, spec, longopts, NULL);
	if (c == '?') {
		if (optopt)
			print_error("%s: unknown option '-%c' (see 'gitkv %s -h')", ctx->cmd->name,
				    optopt, ctx->cmd->name);
		else
			print_error("%s: unknown option '%s' (see 'gitkv %s -h')", ctx->cmd->name,
				    argv[optind - 1], ctx->cmd->name);
	} else if (c == ':') {
		print_error("%s: option '-%c' needs a value", ctx->cmd->name, optopt);
		c = '?';
	} else if (c == 'h') {
		printf("usage: gitkv %s\n", ctx->cmd->usage);
	}
	return c;
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

static int cmd_get(int argc, char **argv, struct cmd_ctx *ctx)
{
	gitkv_store *store = NULL;
	const char *key;
	char *buf = NULL;
	size_t len = 0;
	int rc, status;

	status = parse_no_options(argc, argv, ctx);
	if (status != GO_ON)
		return status;
	if (argc - optind != 1)
		return usage_error(ctx);
	key = argv[optind];

	status = open_store(ctx, false, &store);
	if (status)
		return status;
	gitkv_error_clear();
	rc = gitkv_store_get(store, key, &buf, &len, NULL);
	if (rc < 0) {
		status = fail_on_key(ctx, key, rc);
		goto out;
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

/*
 * Print every value below `dir` as a full key, depth first in name order.
 * Returns 0 or a GITKV_E* code.
 */
static int list_recursive(gitkv_snapshot *snap, const char *dir)
{
	gitkv_dirent *ents = NULL;
	size_t count = 0, i;
	int rc;

	rc = gitkv_snapshot_list(snap, dir, &ents, &count);
	if (rc < 0)
		return rc;
	for (i = 0; i < count && !rc; i++) {
		char *key;

		if (!*dir && !strcmp(ents[i].name, GITKV_RESERVED))
			continue;
		key = gitkv_key_join(dir, ents[i].name);
		if (!key) {
			rc = gitkv_error_set(GITKV_ERROR, "out of memory");
			break;
		}
		if (ents[i].entry.type == GITKV_TYPE_DIR)
			rc = list_recursive(snap, key);
		else
			printf("%s\n", key);
		free(key);
	}
	gitkv_dirents_free(ents, count);
	return rc;
}

static int list_children(gitkv_snapshot *snap, const char *dir)
{
	gitkv_dirent *ents = NULL;
	size_t count = 0, i;
	int rc;

	rc = gitkv_snapshot_list(snap, dir, &ents, &count);
	if (rc < 0)
		return rc;
	for (i = 0; i < count; i++) {
		if (!*dir && !strcmp(ents[i].name, GITKV_RESERVED))
			continue;
		printf("%s%s\n", ents[i].name, ents[i].entry.type == GITKV_TYPE_DIR ? "/" : "");
	}
	gitkv_dirents_free(ents, count);
	return 0;
}

static int cmd_ls(int argc, char **argv, struct cmd_ctx *ctx)
{
	gitkv_store *store = NULL;
	gitkv_snapshot *snap;
	gitkv_entry root;
	bool recursive = false;
	char *prefix = NULL;
	int c, rc, status;

	while ((c = cmd_getopt(argc, argv, "r", ctx)) != -1) {
		if (c == 'r')
			recursive = true;
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
	snap = gitkv_store_snapshot(store);
	/* A store with no commit yet has no root tree: it lists nothing. */
	if (!*prefix && gitkv_snapshot_lookup(snap, "", &root) == GITKV_ENOTFOUND)
		goto out;
	gitkv_error_clear();
	rc = recursive ? list_recursive(snap, prefix) : list_children(snap, prefix);
	if (rc < 0)
		status = fail_on_key(ctx, prefix, rc);
	else
		status = flush_stdout(ctx);

out:
	gitkv_store_free(store);
	free(prefix);
	return status;
}

struct history_state {
	size_t printed;
};

static int print_commit(const gitkv_commit_info *commit, void *payload)
{
	struct history_state *state = payload;
	char hex[GITKV_OID_HEXSZ + 1], when[32];
	time_t t = (time_t)commit->time;
	struct tm tm;

	gitkv_oid_fmt(hex, &commit->id);
	if (!gmtime_r(&t, &tm) || !strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(when, sizeof(when), "@%" PRId64, commit->time);
	printf("%.12s %s %s %s\n", hex, when, commit->author_name ? commit->author_name : "",
	       commit->summary ? commit->summary : "");
	state->printed++;
	return 0;
}

static int cmd_history(int argc, char **argv, struct cmd_ctx *ctx)
{
	struct history_state state = {0};
	gitkv_store *store = NULL;
	unsigned long limit = 0;
	const char *key;
	char *end;
	int c, rc, status;

	while ((c = cmd_getopt(argc, argv, "n:", ctx)) != -1) {
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
	status = flush_stdout(ctx);

out:
	gitkv_store_free(store);
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
