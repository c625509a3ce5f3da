/*
 * tree.c - the key trees the workloads read and write, built fast.
 *
 * A tree is a number of keys and a layout. The hierarchical layout spreads
 * the keys over two directory levels with a fan-out of the cube root of the
 * size (1,000 keys: 10 x 10 x 10; 1,000,000: 100 x 100 x 100), the shape
 * DESIGN.md recommends; the flat layout puts every key in one directory.
 * Key i always has the same name and initial value, so a store, a git work
 * tree and a directory of plain files built from the same tree hold the
 * same bytes under the same names.
 *
 * Stores are built the quickest way git offers: `gitkv init`, then one
 * commit streamed into `git fast-import` (a million keys is one pack, no
 * loose objects, no index). The benchmark never times this.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

#define GIT_TIMEOUT 900.0 /* seconds: fast-import of a million keys on a slow disk */

void tree_init(struct tree *t, enum tree_layout layout, long keys)
{
	long f = (long)ceil(cbrt((double)keys));

	while (f * f * f < keys)
		f++;
	t->layout = layout;
	t->keys = keys;
	t->fanout = f < 1 ? 1 : f;
}

void tree_key(const struct tree *t, long i, char *buf, size_t size)
{
	long f = t->fanout;

	if (t->layout == TREE_FLAT)
		snprintf(buf, size, "flat/k%07ld", i);
	else
		snprintf(buf, size, "a%03ld/b%03ld/k%07ld", i / (f * f), (i / f) % f, i);
}

void tree_value(long i, long generation, char out[BENCH_VALUE_LEN])
{
	char tmp[64];
	int n = snprintf(tmp, sizeof(tmp), "value %07ld gen %07ld ", i, generation);

	for (; n < BENCH_VALUE_LEN - 1; n++)
		tmp[n] = '.';
	tmp[BENCH_VALUE_LEN - 1] = '\n';
	memcpy(out, tmp, BENCH_VALUE_LEN);
}

const char *tree_size_label(long keys, char *buf, size_t size)
{
	if (keys >= 1000000 && keys % 1000000 == 0)
		snprintf(buf, size, "%ldM", keys / 1000000);
	else if (keys >= 1000 && keys % 1000 == 0)
		snprintf(buf, size, "%ldk", keys / 1000);
	else
		snprintf(buf, size, "%ld", keys);
	return buf;
}

long tree_dirs(const struct tree *t)
{
	long f = t->fanout;

	if (t->layout == TREE_FLAT)
		return 1;
	return (t->keys + f * f - 1) / (f * f) + (t->keys + f - 1) / f;
}

/* Run `git -C dir ARGS...` (NULL-terminated), stdout captured into out. */
static int git_in(const char *dir, char *out, size_t outsz, ...)
{
	const char *argv[24] = {"git", "-C", dir};
	int argc = 3, status;
	va_list ap;

	va_start(ap, outsz);
	while (argc < 23 && (argv[argc] = va_arg(ap, const char *)))
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	status = proc_run(argv, GIT_TIMEOUT, out, outsz);
	if (status != 0) {
		bench_fail("git -C %s %s ...: exit status %d", dir, argv[3], status);
		return -1;
	}
	return 0;
}

/* Stream the tree into `git -C repo fast-import` as one commit on `ref`. */
static int fast_import(const struct tree *t, const char *repo, const char *ref)
{
	const char *argv[] = {"git", "-C", repo, "fast-import", "--quiet", "--done", NULL};
	struct proc p;
	FILE *f;
	int status, err = 0;

	if (proc_start(&p, argv, PROC_IN_PIPE | PROC_OUT_NULL | PROC_KEEP_HEAP, NULL) < 0)
		return -1;
	f = fdopen(p.in, "w");
	if (!f) {
		proc_wait(&p, 5);
		return -1;
	}
	p.in = -1; /* fclose closes it */
	fprintf(f,
		"commit %s\ncommitter gitkv-bench <bench@example.invalid> 1700000000 +0000\n"
		"data <<EOF\nbench: %ld keys\nEOF\n",
		ref, t->keys);
	for (long i = 0; i < t->keys && !err; i++) {
		char key[128], value[BENCH_VALUE_LEN];

		tree_key(t, i, key, sizeof(key));
		tree_value(i, 0, value);
		fprintf(f, "M 100644 inline %s\ndata %d\n", key, BENCH_VALUE_LEN);
		fwrite(value, 1, BENCH_VALUE_LEN, f);
		if (fputc('\n', f) == EOF || ((i & 0xffff) == 0 && bench_stopping()))
			err = -1;
	}
	fputs("done\n", f);
	if (fclose(f) != 0)
		err = -1;
	status = proc_wait(&p, GIT_TIMEOUT);
	if (status != 0 || err) {
		if (!bench_stopping())
			bench_fail("git fast-import into %s failed (status %d)", repo, status);
		return -1;
	}
	return 0;
}

int tree_build_store(const struct tree *t, const char *store)
{
	const char *init[] = {bench.gitkv, "init", store, NULL};
	char ref[256];

	if (proc_run(init, 60, NULL, 0) != 0) {
		bench_fail("%s init %s failed", bench.gitkv, store);
		return -1;
	}
	if (git_in(store, ref, sizeof(ref), "symbolic-ref", "HEAD", NULL) < 0)
		return -1;
	ref[strcspn(ref, "\n")] = '\0';
	return fast_import(t, store, ref);
}

int tree_build_worktree(const struct tree *t, const char *dir)
{
	const char *init[] = {"git", "init", "-q", "-b", "main", dir, NULL};

	if (proc_run(init, 60, NULL, 0) != 0) {
		bench_fail("git init %s failed", dir);
		return -1;
	}
	/* no background maintenance: it would run inside the timed commits */
	if (git_in(dir, NULL, 0, "config", "gc.auto", "0", NULL) < 0 ||
	    git_in(dir, NULL, 0, "config", "maintenance.auto", "false", NULL) < 0 ||
	    fast_import(t, dir, "refs/heads/main") < 0 ||
	    git_in(dir, NULL, 0, "reset", "-q", "--hard", "main", NULL) < 0)
		return -1;
	return 0;
}

/* mkdir -p of the directories of `path` below `dir`. */
static int make_parents(const char *dir, const char *key)
{
	char path[8192];
	size_t base = (size_t)snprintf(path, sizeof(path), "%s/", dir);

	snprintf(path + base, sizeof(path) - base, "%s", key);
	for (char *s = path + base; (s = strchr(s, '/')); s++) {
		*s = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST) {
			bench_fail("mkdir %s: %s", path, strerror(errno));
			return -1;
		}
		*s = '/';
	}
	return 0;
}

int tree_build_files(const struct tree *t, const char *dir)
{
	char last_parent[128] = "";

	for (long i = 0; i < t->keys; i++) {
		char key[128], path[8192], value[BENCH_VALUE_LEN];
		const char *slash;
		int fd;

		tree_key(t, i, key, sizeof(key));
		slash = strrchr(key, '/');
		if (slash && (strncmp(key, last_parent, (size_t)(slash - key)) != 0 ||
			      last_parent[slash - key] != '\0')) {
			if (make_parents(dir, key) < 0)
				return -1;
			snprintf(last_parent, sizeof(last_parent), "%.*s", (int)(slash - key), key);
		}
		snprintf(path, sizeof(path), "%s/%s", dir, key);
		tree_value(i, 0, value);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, value, BENCH_VALUE_LEN) != BENCH_VALUE_LEN) {
			bench_fail("writing %s: %s", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
		close(fd);
		if ((i & 0xfff) == 0 && bench_stopping())
			return -1;
	}
	return 0;
}

long tree_commit_count(const char *store)
{
	char out[64];
	char *end;
	long n;

	if (git_in(store, out, sizeof(out), "rev-list", "--count", "HEAD", NULL) < 0)
		return -1;
	n = strtol(out, &end, 10);
	return end == out ? -1 : n;
}
