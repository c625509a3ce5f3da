/*
 * sandbox.c - temporary stores for the unit tests (see sandbox.h).
 *
 * The directory is removed depth-first with nftw(3), without following
 * symlinks, so a test that fails half-way still leaves nothing behind.
 */
#include "sandbox.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void remove_tree(const char *dir)
{
	nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int sandbox_group_setup(void **state)
{
	return git_libgit2_init() > 0 ? 0 : -1;
}

int sandbox_group_teardown(void **state)
{
	git_libgit2_shutdown();
	return 0;
}

gitkv_store_options sandbox_options(void)
{
	gitkv_store_options opts = GITKV_STORE_OPTIONS_INIT;

	opts.node = SANDBOX_NODE;
	return opts;
}

int sandbox_setup(void **state)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	const char *tmp = getenv("TMPDIR");
	gitkv_store_options opts = sandbox_options();

	if (!sb)
		return -1;
	snprintf(sb->dir, sizeof(sb->dir), "%s/gitkv-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(sb->dir)) {
		free(sb);
		return -1;
	}
	snprintf(sb->repo, sizeof(sb->repo), "%s/store.git", sb->dir);
	if (gitkv_store_init(sb->repo) != 0 || gitkv_store_open(&sb->store, sb->repo, &opts) != 0) {
		print_error("sandbox: cannot create a store in %s: %s\n", sb->dir,
			    gitkv_error_last());
		remove_tree(sb->dir);
		free(sb);
		return -1;
	}
	*state = sb;
	return 0;
}

int sandbox_teardown(void **state)
{
	struct sandbox *sb = *state;

	if (!sb)
		return 0;
	gitkv_store_free(sb->store);
	remove_tree(sb->dir);
	free(sb);
	*state = NULL;
	return 0;
}

gitkv_store *sandbox_open(struct sandbox *sb, const gitkv_store_options *opts)
{
	gitkv_store_options defaults = sandbox_options();
	gitkv_store *store = NULL;

	assert_ok(gitkv_store_open(&store, sb->repo, opts ? opts : &defaults));
	assert_non_null(store);
	return store;
}

void sandbox_reopen(struct sandbox *sb, const gitkv_store_options *opts)
{
	gitkv_store_free(sb->store);
	sb->store = NULL;
	sb->store = sandbox_open(sb, opts);
}

int sandbox_fsck(struct sandbox *sb)
{
	char cmd[1024];
	int status;

	snprintf(cmd, sizeof(cmd), "git -C '%s' fsck --strict --no-progress --no-dangling",
		 sb->repo);
	status = system(cmd);
	return status == -1 ? -1 : WEXITSTATUS(status);
}

git_repository *sandbox_git(struct sandbox *sb)
{
	git_repository *repo = NULL;

	assert_int_equal(git_repository_open_bare(&repo, sb->repo), 0);
	return repo;
}

git_commit *sandbox_head_commit(git_repository *repo)
{
	git_reference *head = NULL;
	git_commit *commit = NULL;
	int rc = git_repository_head(&head, repo);

	if (rc == 0) {
		assert_int_equal(git_commit_lookup(&commit, repo, git_reference_target(head)), 0);
		git_reference_free(head);
	} else {
		assert_int_equal(rc, GIT_EUNBORNBRANCH);
	}
	return commit;
}

size_t sandbox_count_commits(struct sandbox *sb)
{
	git_repository *repo = sandbox_git(sb);
	git_revwalk *walk = NULL;
	git_oid oid;
	size_t n = 0;

	assert_int_equal(git_revwalk_new(&walk, repo), 0);
	if (git_revwalk_push_head(walk) == 0)
		while (git_revwalk_next(&oid, walk) == 0)
			n++;
	git_revwalk_free(walk);
	git_repository_free(repo);
	return n;
}

unsigned int sandbox_git_mode(struct sandbox *sb, const char *path)
{
	git_repository *repo = sandbox_git(sb);
	git_commit *commit = sandbox_head_commit(repo);
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	unsigned int mode = 0;

	if (!commit) {
		git_repository_free(repo);
		return 0;
	}
	assert_int_equal(git_commit_tree(&tree, commit), 0);
	if (git_tree_entry_bypath(&entry, tree, path) == 0) {
		mode = git_tree_entry_filemode(entry);
		git_tree_entry_free(entry);
	}
	git_tree_free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	return mode;
}

gitkv_oid sandbox_blob_oid(const void *data, size_t len)
{
	git_oid oid;

	assert_int_equal(git_odb_hash(&oid, data, len, GIT_OBJECT_BLOB), 0);
	return sandbox_oid_from_git(&oid);
}

gitkv_oid sandbox_oid_from_git(const git_oid *oid)
{
	gitkv_oid out;

	memcpy(out.id, oid->id, GITKV_OID_RAWSZ);
	return out;
}

void sandbox_wait_past(int64_t t)
{
	struct timespec tick = {0, 20 * 1000 * 1000};
	int i;

	for (i = 0; i < 150 && (int64_t)time(NULL) <= t; i++)
		nanosleep(&tick, NULL);
	assert_true((int64_t)time(NULL) > t);
}

void sandbox_assert_code(int actual, int expected, const char *expr, const char *file, int line)
{
	char msg[512];

	if (actual == expected)
		return;
	/* Copy the message first: any later libgitkv call may replace it. */
	snprintf(msg, sizeof(msg), "%s", gitkv_error_last());
	print_error("%s returned %d (%s: \"%s\"), expected %d (%s)\n", expr, actual,
		    gitkv_error_name(actual), msg, expected, gitkv_error_name(expected));
	_fail(file, line);
}

void sandbox_assert_value(gitkv_store *store, const char *key, const void *value, size_t len,
			  const char *file, int line)
{
	char *buf = NULL;
	size_t got = 0;
	gitkv_entry entry;
	int rc = gitkv_store_get(store, key, &buf, &got, &entry);

	if (rc != 0) {
		print_error("get \"%s\" failed\n", key);
		sandbox_assert_code(rc, 0, "gitkv_store_get", file, line);
	}
	_assert_int_equal(got, len, file, line);
	_assert_int_equal(entry.size, len, file, line);
	_assert_memory_equal(buf, value, len, file, line);
	_assert_int_equal(buf[len], '\0', file, line);
	free(buf);
}

void sandbox_assert_type(gitkv_store *store, const char *key, gitkv_type type, const char *file,
			 int line)
{
	gitkv_entry entry;
	int rc = gitkv_snapshot_lookup(gitkv_store_snapshot(store), key, &entry);

	if (type == GITKV_TYPE_NONE)
		sandbox_assert_code(rc, GITKV_ENOTFOUND, key, file, line);
	else
		sandbox_assert_code(rc, 0, key, file, line);
	_assert_int_equal(entry.type, type, file, line);
}

void sandbox_oid_equal_at(gitkv_oid a, gitkv_oid b, const char *file, int line)
{
	char ha[GITKV_OID_HEXSZ + 1], hb[GITKV_OID_HEXSZ + 1];

	if (gitkv_oid_equal(&a, &b))
		return;
	print_error("oid %s != %s\n", gitkv_oid_fmt(ha, &a), gitkv_oid_fmt(hb, &b));
	_fail(file, line);
}
