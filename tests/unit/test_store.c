/*
 * test_store.c - the git-backed key store (gitkv/store.h).
 *
 * Each test arranges a fresh bare store (sandbox.c), acts through the public
 * API, and checks what a user would: the value read back, the error code,
 * and the repository as git sees it (commits, messages, modes, fsck).
 *
 * The last test drives a long random sequence of operations against a small
 * in-memory model of the tree and compares after every step, then reopens
 * the store and checks that the snapshot rebuilt from git equals the one
 * the store maintained incrementally.
 */
#include "sandbox.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EMPTY_TREE_ID "4b825dc642cb6eb9a060e54bf8d69288fbee4904"

/* ---- small helpers ----------------------------------------------------- */

static int apply_op(gitkv_store *store, gitkv_op_type type, const char *key, const char *to,
		    unsigned int flags, gitkv_result *result)
{
	gitkv_op op = {.type = type, .key = key, .to = to, .flags = flags};

	return gitkv_store_apply(store, &op, NULL, result);
}

static int do_mkdir(gitkv_store *store, const char *key, unsigned int flags)
{
	return apply_op(store, GITKV_OP_MKDIR, key, NULL, flags, NULL);
}

static int do_rmdir(gitkv_store *store, const char *key)
{
	return apply_op(store, GITKV_OP_RMDIR, key, NULL, 0, NULL);
}

static int do_set_flags(gitkv_store *store, const char *key, const char *value, unsigned int flags,
			gitkv_result *result)
{
	gitkv_op op = {
	    .type = GITKV_OP_SET, .key = key, .value = value, .len = strlen(value), .flags = flags};

	return gitkv_store_apply(store, &op, NULL, result);
}

static gitkv_oid head_of(gitkv_store *store)
{
	gitkv_oid head;
	uint64_t gen;

	gitkv_snapshot_head(gitkv_store_snapshot(store), &head, &gen);
	return head;
}

static uint64_t generation_of(gitkv_store *store)
{
	gitkv_oid head;
	uint64_t gen;

	gitkv_snapshot_head(gitkv_store_snapshot(store), &head, &gen);
	return gen;
}


/* The branch's commit through libgit2 (zero if unborn). */
static gitkv_oid git_head_id(struct sandbox *sb)
{
	git_repository *repo = sandbox_git(sb);
	git_commit *commit = sandbox_head_commit(repo);
	gitkv_oid id = {{0}};

	if (commit) {
		id = sandbox_oid_from_git(git_commit_id(commit));
		git_commit_free(commit);
	}
	git_repository_free(repo);
	return id;
}

/* The git id at `path` in the branch's tree (zero if absent). */
static gitkv_oid git_path_id(struct sandbox *sb, const char *path)
{
	git_repository *repo = sandbox_git(sb);
	git_commit *commit = sandbox_head_commit(repo);
	git_tree *tree = NULL;
	git_tree_entry *entry = NULL;
	gitkv_oid id = {{0}};

	assert_non_null(commit);
	assert_int_equal(git_commit_tree(&tree, commit), 0);
	if (git_tree_entry_bypath(&entry, tree, path) == 0) {
		id = sandbox_oid_from_git(git_tree_entry_id(entry));
		git_tree_entry_free(entry);
	}
	git_tree_free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	return id;
}

/* What a commit says about itself, copied out of libgit2. */
struct commit_facts {
	char message[1024];
	char author_name[128];
	char committer_name[128];
	char committer_email[128];
	unsigned int parents;
	gitkv_oid parent;
};

static struct commit_facts facts_of(struct sandbox *sb, const gitkv_oid *id)
{
	git_repository *repo = sandbox_git(sb);
	git_commit *commit = NULL;
	struct commit_facts f;

	memset(&f, 0, sizeof(f));
	assert_int_equal(git_commit_lookup(&commit, repo, (const git_oid *)id->id), 0);
	snprintf(f.message, sizeof(f.message), "%s", git_commit_message(commit));
	snprintf(f.author_name, sizeof(f.author_name), "%s", git_commit_author(commit)->name);
	snprintf(f.committer_name, sizeof(f.committer_name), "%s",
		 git_commit_committer(commit)->name);
	snprintf(f.committer_email, sizeof(f.committer_email), "%s",
		 git_commit_committer(commit)->email);
	f.parents = git_commit_parentcount(commit);
	if (f.parents)
		f.parent = sandbox_oid_from_git(git_commit_parent_id(commit, 0));
	git_commit_free(commit);
	git_repository_free(repo);
	return f;
}

/* The value of trailer `key` in `message`, copied into `out` ("" if none). */
static const char *trailer(const char *message, const char *key, char *out, size_t size)
{
	git_message_trailer_array arr = {0};
	size_t i;

	out[0] = '\0';
	assert_int_equal(git_message_trailers(&arr, message), 0);
	for (i = 0; i < arr.count; i++)
		if (!strcmp(arr.trailers[i].key, key))
			snprintf(out, size, "%s", arr.trailers[i].value);
	git_message_trailer_array_free(&arr);
	return out;
}

/* The first line of `message`, copied into `out`. */
static const char *summary_of(const char *message, char *out, size_t size)
{
	size_t n = strcspn(message, "\n");

	snprintf(out, size, "%.*s", (int)n, message);
	return out;
}

/* ---- the change stream, recorded --------------------------------------- */

#define REC_MAX_BATCHES 64

struct rec_change {
	char *path;
	gitkv_entry old, new;
};

struct rec_batch {
	gitkv_origin origin;
	gitkv_oid old_head, new_head;
	struct rec_change *changes;
	size_t count;
};

struct recorder {
	pthread_mutex_t lock;
	struct rec_batch batches[REC_MAX_BATCHES];
	size_t n;
	size_t overflow;
};

static void record_batch(const gitkv_change_batch *batch, void *payload)
{
	struct recorder *rec = payload;
	struct rec_batch *b;
	size_t i;

	pthread_mutex_lock(&rec->lock);
	if (rec->n == REC_MAX_BATCHES) {
		rec->overflow++;
		goto out;
	}
	b = &rec->batches[rec->n++];
	b->origin = batch->origin;
	b->old_head = batch->old_head;
	b->new_head = batch->new_head;
	b->count = batch->count;
	b->changes = calloc(batch->count ? batch->count : 1, sizeof(*b->changes));
	for (i = 0; b->changes && i < batch->count; i++) {
		b->changes[i].path = strdup(batch->changes[i].path);
		b->changes[i].old = batch->changes[i].old;
		b->changes[i].new = batch->changes[i].new;
	}
out:
	pthread_mutex_unlock(&rec->lock);
}

static void recorder_init(struct recorder *rec)
{
	memset(rec, 0, sizeof(*rec));
	pthread_mutex_init(&rec->lock, NULL);
}

static void recorder_reset(struct recorder *rec)
{
	size_t i, j;

	for (i = 0; i < rec->n; i++) {
		for (j = 0; j < rec->batches[i].count; j++)
			free(rec->batches[i].changes[j].path);
		free(rec->batches[i].changes);
	}
	rec->n = 0;
	rec->overflow = 0;
}

static void recorder_free(struct recorder *rec)
{
	recorder_reset(rec);
	pthread_mutex_destroy(&rec->lock);
}

/* Index of `path` in `b`, or -1. */
static long change_index(const struct rec_batch *b, const char *path)
{
	size_t i;

	for (i = 0; i < b->count; i++)
		if (!strcmp(b->changes[i].path, path))
			return (long)i;
	return -1;
}

static const struct rec_change *change_at(const struct rec_batch *b, const char *path)
{
	long i = change_index(b, path);

	if (i < 0)
		fail_msg("no change for \"%s\" in the batch", path);
	return &b->changes[i];
}

/* A created prefix comes before the paths in it; a deleted one after them. */
static void assert_prefix_order(const struct rec_batch *b)
{
	size_t i, j;

	for (i = 0; i < b->count; i++) {
		const struct rec_change *c = &b->changes[i];
		bool created = c->old.type == GITKV_TYPE_NONE && c->new.type == GITKV_TYPE_DIR;
		bool deleted = c->old.type == GITKV_TYPE_DIR && c->new.type == GITKV_TYPE_NONE;

		for (j = 0; j < b->count; j++) {
			if (j == i || !gitkv_key_has_prefix(b->changes[j].path, c->path))
				continue;
			if (created && j < i)
				fail_msg("created prefix \"%s\" listed after \"%s\"", c->path,
					 b->changes[j].path);
			if (deleted && j > i)
				fail_msg("deleted prefix \"%s\" listed before \"%s\"", c->path,
					 b->changes[j].path);
		}
	}
}

/* ---- opening and creating ---------------------------------------------- */

static void test_store__init_creates_a_bare_repository_on_an_unborn_main(void **state)
{
	struct sandbox *sb = *state;
	char path[700];
	git_repository *repo = NULL;
	git_reference *head = NULL;

	snprintf(path, sizeof(path), "%s/new.git", sb->dir);
	assert_ok(gitkv_store_init(path));
	assert_int_equal(git_repository_open_bare(&repo, path), 0);
	assert_true(git_repository_is_bare(repo));
	assert_int_equal(git_repository_head_unborn(repo), 1);
	assert_int_equal(git_reference_lookup(&head, repo, "HEAD"), 0);
	assert_int_equal(git_reference_type(head), GIT_REFERENCE_SYMBOLIC);
	assert_string_equal(git_reference_symbolic_target(head), "refs/heads/main");
	git_reference_free(head);
	git_repository_free(repo);
}

static void test_store__init_of_an_existing_store_returns_eexists(void **state)
{
	struct sandbox *sb = *state;

	assert_gitkv(gitkv_store_init(sb->repo), GITKV_EEXISTS);
}

static void test_store__open_of_a_missing_path_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *store = NULL;
	char path[700];

	snprintf(path, sizeof(path), "%s/missing.git", sb->dir);
	assert_gitkv(gitkv_store_open(&store, path, NULL), GITKV_ENOTFOUND);
	assert_null(store);
}

static void test_store__open_of_a_directory_that_is_no_repository_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *store = NULL;
	char path[700];

	snprintf(path, sizeof(path), "%s/plain", sb->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_gitkv(gitkv_store_open(&store, path, NULL), GITKV_ENOTFOUND);
	assert_null(store);
}

static void test_store__open_of_a_non_bare_repository_returns_einvalid(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *store = NULL;
	git_repository *repo = NULL;
	char path[700];

	snprintf(path, sizeof(path), "%s/worktree", sb->dir);
	assert_int_equal(git_repository_init(&repo, path, 0), 0);
	git_repository_free(repo);
	assert_gitkv(gitkv_store_open(&store, path, NULL), GITKV_EINVALID);
	assert_null(store);
}

static void test_store__open_with_create_makes_a_missing_store(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store_options opts = sandbox_options();
	gitkv_store *store = NULL;
	git_repository *repo = NULL;
	char path[700];

	snprintf(path, sizeof(path), "%s/created.git", sb->dir);
	opts.create = true;
	assert_ok(gitkv_store_open(&store, path, &opts));
	assert_ok(gitkv_store_set(store, "k", "v", 1, NULL, NULL));
	assert_value_str(store, "k", "v");
	gitkv_store_free(store);
	assert_int_equal(git_repository_open_bare(&repo, path), 0);
	assert_true(git_repository_is_bare(repo));
	git_repository_free(repo);
}

static void test_store__open_reports_its_path_node_and_limits(void **state)
{
	struct sandbox *sb = *state;
	char want[PATH_MAX], got[PATH_MAX];

	assert_string_equal(gitkv_store_node(sb->store), SANDBOX_NODE);
	assert_int_equal(gitkv_store_max_value_size(sb->store), GITKV_DEFAULT_MAX_VALUE_SIZE);
	assert_non_null(realpath(sb->repo, want));
	assert_non_null(realpath(gitkv_store_path(sb->store), got));
	assert_string_equal(got, want);
	assert_non_null(gitkv_store_snapshot(sb->store));
}

/* ---- set and get --------------------------------------------------------- */

static void test_store__set_then_get_returns_value(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result res;
	gitkv_entry entry;
	char *buf = NULL;
	size_t len = 0;

	assert_ok(gitkv_store_set(sb->store, "app/db/host", "db1.example", 11, NULL, &res));
	assert_true(res.committed);
	assert_oid_equal(res.commit, head_of(sb->store));
	assert_ok(gitkv_store_get(sb->store, "app/db/host", &buf, &len, &entry));
	assert_int_equal(len, 11);
	assert_memory_equal(buf, "db1.example", 11);
	assert_int_equal(entry.type, GITKV_TYPE_FILE);
	assert_int_equal(entry.size, 11);
	assert_oid_equal(entry.oid, sandbox_blob_oid("db1.example", 11));
	free(buf);
	assert_oid_equal(res.commit, git_head_id(sb));
	assert_int_equal(sandbox_git_mode(sb, "app/db/host"), GIT_FILEMODE_BLOB);
}

static void test_store__set_of_a_new_value_replaces_the_old_one(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "k", "first");
	set_str(sb->store, "k", "second, longer");
	assert_value_str(sb->store, "k", "second, longer");
	assert_int_equal(sandbox_count_commits(sb), 2);
}

static void test_store__binary_value_round_trips(void **state)
{
	struct sandbox *sb = *state;
	unsigned char value[512];
	size_t i;

	for (i = 0; i < sizeof(value); i++)
		value[i] = (unsigned char)(i * 7);
	value[10] = '\0';
	assert_ok(gitkv_store_set(sb->store, "bin", value, sizeof(value), NULL, NULL));
	assert_value_mem(sb->store, "bin", value, sizeof(value));
	sandbox_reopen(sb, NULL);
	assert_value_mem(sb->store, "bin", value, sizeof(value));
}

static void test_store__empty_value_round_trips(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result res;

	assert_ok(gitkv_store_set(sb->store, "empty", "", 0, NULL, &res));
	assert_true(res.committed);
	assert_value_mem(sb->store, "empty", "", 0);
	assert_type(sb->store, "empty", GITKV_TYPE_FILE);
	sandbox_reopen(sb, NULL);
	assert_value_mem(sb->store, "empty", "", 0);
}

static void test_store__set_creates_the_parent_prefixes(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "a/b/c", "v");
	assert_type(sb->store, "a", GITKV_TYPE_DIR);
	assert_type(sb->store, "a/b", GITKV_TYPE_DIR);
	assert_type(sb->store, "a/b/c", GITKV_TYPE_FILE);
	assert_int_equal(sandbox_git_mode(sb, "a/b"), GIT_FILEMODE_TREE);
}

static void test_store__set_of_identical_bytes_makes_no_commit(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result first, again;
	uint64_t gen;

	assert_ok(gitkv_store_set(sb->store, "k", "same", 4, NULL, &first));
	assert_true(first.committed);
	gen = generation_of(sb->store);
	assert_ok(gitkv_store_set(sb->store, "k", "same", 4, NULL, &again));
	assert_false(again.committed);
	assert_oid_equal(again.commit, first.commit);
	assert_int_equal(generation_of(sb->store), gen);
	assert_int_equal(sandbox_count_commits(sb), 1);
	assert_oid_equal(git_head_id(sb), first.commit);
}

static void test_store__set_accepts_a_null_result(void **state)
{
	struct sandbox *sb = *state;

	assert_ok(gitkv_store_set(sb->store, "k", "v", 1, NULL, NULL));
	assert_value_str(sb->store, "k", "v");
}

static void test_store__set_over_max_value_size_returns_etoobig(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store_options opts = sandbox_options();

	opts.max_value_size = 10;
	sandbox_reopen(sb, &opts);
	assert_int_equal(gitkv_store_max_value_size(sb->store), 10);
	assert_ok(gitkv_store_set(sb->store, "fits", "0123456789", 10, NULL, NULL));
	assert_gitkv(gitkv_store_set(sb->store, "big", "0123456789A", 11, NULL, NULL),
		     GITKV_ETOOBIG);
	assert_gitkv(gitkv_store_set(sb->store, "fits", "0123456789A", 11, NULL, NULL),
		     GITKV_ETOOBIG);
	assert_type(sb->store, "big", GITKV_TYPE_NONE);
	assert_value_str(sb->store, "fits", "0123456789");
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__get_of_a_missing_key_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;
	char *buf = NULL;
	size_t len = 0;

	assert_gitkv(gitkv_store_get(sb->store, "nope", &buf, &len, NULL), GITKV_ENOTFOUND);
	set_str(sb->store, "d/k", "v");
	assert_gitkv(gitkv_store_get(sb->store, "d/nope", &buf, &len, NULL), GITKV_ENOTFOUND);
	assert_null(buf);
}

static void test_store__get_of_a_prefix_returns_eisdir(void **state)
{
	struct sandbox *sb = *state;
	char *buf = NULL;
	size_t len = 0;

	set_str(sb->store, "d/k", "v");
	assert_gitkv(gitkv_store_get(sb->store, "d", &buf, &len, NULL), GITKV_EISDIR);
	assert_null(buf);
}

static void test_store__get_of_an_invalid_key_returns_einvalid(void **state)
{
	struct sandbox *sb = *state;
	char *buf = NULL;
	size_t len = 0;

	assert_gitkv(gitkv_store_get(sb->store, "a//b", &buf, &len, NULL), GITKV_EINVALID);
	assert_gitkv(gitkv_store_get(sb->store, "../etc/passwd", &buf, &len, NULL), GITKV_EINVALID);
}

static void test_store__read_blob_returns_the_bytes_of_an_entry(void **state)
{
	struct sandbox *sb = *state;
	gitkv_entry entry;
	gitkv_oid missing = sandbox_blob_oid("never stored", 12);
	char *buf = NULL;
	size_t len = 0;

	set_str(sb->store, "k", "hello");
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(sb->store), "k", &entry));
	assert_ok(gitkv_store_read_blob(sb->store, &entry.oid, &buf, &len));
	assert_int_equal(len, 5);
	assert_string_equal(buf, "hello");
	free(buf);
	buf = NULL;
	assert_gitkv(gitkv_store_read_blob(sb->store, &missing, &buf, &len), GITKV_ENOTFOUND);
	assert_null(buf);
}

/* ---- delete ------------------------------------------------------------------ */

static void test_store__delete_removes_the_key(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result res;

	set_str(sb->store, "k", "v");
	set_str(sb->store, "other", "v");
	assert_ok(gitkv_store_delete(sb->store, "k", NULL, &res));
	assert_true(res.committed);
	assert_type(sb->store, "k", GITKV_TYPE_NONE);
	assert_value_str(sb->store, "other", "v");
	assert_oid_equal(git_path_id(sb, "k"), (gitkv_oid){{0}});
	assert_int_equal(sandbox_count_commits(sb), 3);
}

static void test_store__delete_of_the_last_key_keeps_its_prefix(void **state)
{
	struct sandbox *sb = *state;
	gitkv_entry entry;

	set_str(sb->store, "d/k", "v");
	assert_ok(gitkv_store_delete(sb->store, "d/k", NULL, NULL));
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(sb->store), "d", &entry));
	assert_int_equal(entry.type, GITKV_TYPE_DIR);
	assert_int_equal(entry.size, 0);
	sandbox_reopen(sb, NULL);
	assert_type(sb->store, "d", GITKV_TYPE_DIR);
}

static void test_store__delete_of_a_missing_key_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;

	assert_gitkv(gitkv_store_delete(sb->store, "nope", NULL, NULL), GITKV_ENOTFOUND);
	set_str(sb->store, "d/k", "v");
	assert_gitkv(gitkv_store_delete(sb->store, "d/nope", NULL, NULL), GITKV_ENOTFOUND);
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__delete_of_a_prefix_returns_eisdir(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "d/k", "v");
	assert_gitkv(gitkv_store_delete(sb->store, "d", NULL, NULL), GITKV_EISDIR);
	assert_value_str(sb->store, "d/k", "v");
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__delete_or_rmdir_below_a_value_returns_enotdir(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "v", "x");
	assert_gitkv(gitkv_store_delete(sb->store, "v/k", NULL, NULL), GITKV_ENOTDIR);
	assert_gitkv(do_rmdir(sb->store, "v/k"), GITKV_ENOTDIR);
	assert_value_str(sb->store, "v", "x");
}

/* ---- prefixes ---------------------------------------------------------------- */

static void test_store__mkdir_creates_an_empty_prefix(void **state)
{
	struct sandbox *sb = *state;
	gitkv_entry entry;
	gitkv_oid empty;
	gitkv_result res;

	assert_ok(apply_op(sb->store, GITKV_OP_MKDIR, "e", NULL, 0, &res));
	assert_true(res.committed);
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(sb->store), "e", &entry));
	assert_int_equal(entry.type, GITKV_TYPE_DIR);
	assert_int_equal(entry.size, 0);
	assert_ok(gitkv_oid_parse(&empty, EMPTY_TREE_ID));
	assert_oid_equal(entry.oid, empty);
	assert_int_equal(sandbox_git_mode(sb, "e"), GIT_FILEMODE_TREE);
	assert_oid_equal(git_path_id(sb, "e"), empty);
	assert_int_equal(sandbox_fsck(sb), 0);
}

static void test_store__mkdir_creates_the_parent_prefixes(void **state)
{
	struct sandbox *sb = *state;

	assert_ok(do_mkdir(sb->store, "a/b/c", 0));
	assert_type(sb->store, "a", GITKV_TYPE_DIR);
	assert_type(sb->store, "a/b", GITKV_TYPE_DIR);
	assert_type(sb->store, "a/b/c", GITKV_TYPE_DIR);
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__mkdir_excl_of_an_existing_prefix_returns_eexists(void **state)
{
	struct sandbox *sb = *state;

	assert_ok(do_mkdir(sb->store, "d", GITKV_OP_EXCL));
	assert_gitkv(do_mkdir(sb->store, "d", GITKV_OP_EXCL), GITKV_EEXISTS);
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__mkdir_of_an_existing_prefix_changes_nothing(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result res;

	set_str(sb->store, "d/k", "v");
	assert_ok(apply_op(sb->store, GITKV_OP_MKDIR, "d", NULL, 0, &res));
	assert_false(res.committed);
	assert_value_str(sb->store, "d/k", "v");
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__mkdir_over_a_value_returns_eexists(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "k", "v");
	assert_gitkv(do_mkdir(sb->store, "k", 0), GITKV_EEXISTS);
	assert_gitkv(do_mkdir(sb->store, "k", GITKV_OP_EXCL), GITKV_EEXISTS);
	assert_value_str(sb->store, "k", "v");
}

static void test_store__rmdir_removes_an_empty_prefix(void **state)
{
	struct sandbox *sb = *state;

	assert_ok(do_mkdir(sb->store, "d/e", 0));
	assert_ok(do_rmdir(sb->store, "d/e"));
	assert_type(sb->store, "d/e", GITKV_TYPE_NONE);
	assert_type(sb->store, "d", GITKV_TYPE_DIR);
	assert_ok(do_rmdir(sb->store, "d"));
	assert_type(sb->store, "d", GITKV_TYPE_NONE);
	assert_int_equal(sandbox_count_commits(sb), 3);
	assert_int_equal(sandbox_fsck(sb), 0);
}

static void test_store__rmdir_of_a_prefix_holding_keys_returns_enotempty(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "d/k", "v");
	assert_gitkv(do_rmdir(sb->store, "d"), GITKV_ENOTEMPTY);
	assert_ok(do_mkdir(sb->store, "e/sub", 0));
	assert_gitkv(do_rmdir(sb->store, "e"), GITKV_ENOTEMPTY);
	assert_value_str(sb->store, "d/k", "v");
}

static void test_store__rmdir_of_a_value_returns_enotdir(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "k", "v");
	assert_gitkv(do_rmdir(sb->store, "k"), GITKV_ENOTDIR);
	assert_value_str(sb->store, "k", "v");
}

static void test_store__rmdir_of_a_missing_prefix_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;

	assert_gitkv(do_rmdir(sb->store, "nope"), GITKV_ENOTFOUND);
}

static void test_store__set_below_a_value_returns_enotdir(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "a", "v");
	assert_gitkv(gitkv_store_set(sb->store, "a/b", "x", 1, NULL, NULL), GITKV_ENOTDIR);
	assert_gitkv(gitkv_store_set(sb->store, "a/b/c", "x", 1, NULL, NULL), GITKV_ENOTDIR);
	assert_gitkv(do_mkdir(sb->store, "a/b", 0), GITKV_ENOTDIR);
	assert_value_str(sb->store, "a", "v");
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__set_on_a_prefix_returns_eisdir(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "d/k", "v");
	assert_gitkv(gitkv_store_set(sb->store, "d", "x", 1, NULL, NULL), GITKV_EISDIR);
	assert_ok(do_mkdir(sb->store, "empty", 0));
	assert_gitkv(gitkv_store_set(sb->store, "empty", "x", 1, NULL, NULL), GITKV_EISDIR);
	assert_type(sb->store, "d", GITKV_TYPE_DIR);
	assert_type(sb->store, "empty", GITKV_TYPE_DIR);
}

/* ---- rename ------------------------------------------------------------------ */

static void test_store__rename_of_a_value_moves_it_in_one_commit(void **state)
{
	struct sandbox *sb = *state;
	struct commit_facts f;
	gitkv_result res;
	char line[256];

	set_str(sb->store, "a", "value");
	assert_ok(gitkv_store_rename(sb->store, "a", "b", NULL, &res));
	assert_true(res.committed);
	assert_type(sb->store, "a", GITKV_TYPE_NONE);
	assert_value_str(sb->store, "b", "value");
	assert_int_equal(sandbox_count_commits(sb), 2);
	f = facts_of(sb, &res.commit);
	assert_string_equal(summary_of(f.message, line, sizeof(line)), "rename a -> b");
}

static void test_store__rename_of_a_value_into_a_new_prefix_creates_it(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "a", "value");
	assert_ok(do_mkdir(sb->store, "d", 0));
	assert_ok(gitkv_store_rename(sb->store, "a", "d/a", NULL, NULL));
	assert_value_str(sb->store, "d/a", "value");
	assert_type(sb->store, "a", GITKV_TYPE_NONE);
}

static void test_store__rename_of_a_prefix_moves_everything_below_it_in_one_commit(void **state)
{
	struct sandbox *sb = *state;
	struct commit_facts f;
	gitkv_entry before, after;
	gitkv_result res;
	char line[256];

	set_str(sb->store, "p/a", "1");
	set_str(sb->store, "p/b/c", "2");
	assert_ok(do_mkdir(sb->store, "p/empty", 0));
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(sb->store), "p", &before));
	assert_ok(gitkv_store_rename(sb->store, "p", "q", NULL, &res));
	assert_true(res.committed);
	assert_int_equal(sandbox_count_commits(sb), 4);
	assert_type(sb->store, "p", GITKV_TYPE_NONE);
	assert_type(sb->store, "p/a", GITKV_TYPE_NONE);
	assert_type(sb->store, "p/b/c", GITKV_TYPE_NONE);
	assert_value_str(sb->store, "q/a", "1");
	assert_value_str(sb->store, "q/b/c", "2");
	assert_type(sb->store, "q/empty", GITKV_TYPE_DIR);
	/* The same tree, hung under another name. */
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(sb->store), "q", &after));
	assert_oid_equal(after.oid, before.oid);
	assert_oid_equal(git_path_id(sb, "q"), before.oid);
	f = facts_of(sb, &res.commit);
	assert_string_equal(summary_of(f.message, line, sizeof(line)), "rename p -> q");
	assert_int_equal(sandbox_fsck(sb), 0);
}

static void test_store__rename_over_an_existing_value_replaces_it(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "a", "new");
	set_str(sb->store, "b", "old");
	assert_ok(gitkv_store_rename(sb->store, "a", "b", NULL, NULL));
	assert_value_str(sb->store, "b", "new");
	assert_type(sb->store, "a", GITKV_TYPE_NONE);
}

static void test_store__rename_noreplace_onto_an_existing_key_returns_eexists(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {.type = GITKV_OP_RENAME, .key = "a", .to = "b", .flags = GITKV_OP_NOREPLACE};

	set_str(sb->store, "a", "1");
	set_str(sb->store, "b", "2");
	assert_gitkv(gitkv_store_apply(sb->store, &op, NULL, NULL), GITKV_EEXISTS);
	assert_value_str(sb->store, "a", "1");
	assert_value_str(sb->store, "b", "2");
	op.to = "c";
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, NULL));
	assert_value_str(sb->store, "c", "1");
}

static void test_store__rename_of_a_value_over_a_prefix_returns_eisdir(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "a", "1");
	set_str(sb->store, "d/k", "2");
	assert_gitkv(gitkv_store_rename(sb->store, "a", "d", NULL, NULL), GITKV_EISDIR);
	assert_ok(do_mkdir(sb->store, "e", 0));
	assert_gitkv(gitkv_store_rename(sb->store, "a", "e", NULL, NULL), GITKV_EISDIR);
	assert_value_str(sb->store, "a", "1");
	assert_value_str(sb->store, "d/k", "2");
}

static void test_store__rename_of_a_prefix_over_a_non_empty_prefix_returns_enotempty(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "p/a", "1");
	set_str(sb->store, "q/b", "2");
	assert_gitkv(gitkv_store_rename(sb->store, "p", "q", NULL, NULL), GITKV_ENOTEMPTY);
	assert_value_str(sb->store, "p/a", "1");
	assert_value_str(sb->store, "q/b", "2");
}

static void test_store__rename_of_a_prefix_over_an_empty_prefix_replaces_it(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "p/a", "1");
	assert_ok(do_mkdir(sb->store, "q", 0));
	assert_ok(gitkv_store_rename(sb->store, "p", "q", NULL, NULL));
	assert_value_str(sb->store, "q/a", "1");
	assert_type(sb->store, "p", GITKV_TYPE_NONE);
}

static void test_store__rename_of_a_prefix_over_a_value_returns_enotdir(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "p/a", "1");
	set_str(sb->store, "v", "2");
	assert_gitkv(gitkv_store_rename(sb->store, "p", "v", NULL, NULL), GITKV_ENOTDIR);
	assert_value_str(sb->store, "v", "2");
}

static void test_store__rename_of_a_missing_key_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;

	assert_gitkv(gitkv_store_rename(sb->store, "nope", "b", NULL, NULL), GITKV_ENOTFOUND);
	assert_type(sb->store, "b", GITKV_TYPE_NONE);
}

static void test_store__rename_of_a_prefix_into_itself_returns_einvalid(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "p/a", "1");
	assert_gitkv(gitkv_store_rename(sb->store, "p", "p/sub", NULL, NULL), GITKV_EINVALID);
	assert_value_str(sb->store, "p/a", "1");
	assert_type(sb->store, "p/sub", GITKV_TYPE_NONE);
}

static void test_store__rename_to_an_invalid_or_reserved_key_returns_einvalid(void **state)
{
	struct sandbox *sb = *state;

	set_str(sb->store, "a", "1");
	assert_gitkv(gitkv_store_rename(sb->store, "a", "x/../y", NULL, NULL), GITKV_EINVALID);
	assert_gitkv(gitkv_store_rename(sb->store, "a", ".gitkv/meta/a", NULL, NULL),
		     GITKV_EINVALID);
	assert_value_str(sb->store, "a", "1");
}

/* ---- types and flags ----------------------------------------------------------- */

static void test_store__chmod_to_exec_sets_git_mode_100755(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {.type = GITKV_OP_CHMOD, .key = "run.sh", .vtype = GITKV_TYPE_EXEC};
	gitkv_result res;

	set_str(sb->store, "run.sh", "#!/bin/sh\n");
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, &res));
	assert_true(res.committed);
	assert_type(sb->store, "run.sh", GITKV_TYPE_EXEC);
	assert_int_equal(sandbox_git_mode(sb, "run.sh"), GIT_FILEMODE_BLOB_EXECUTABLE);
	assert_value_str(sb->store, "run.sh", "#!/bin/sh\n");

	op.vtype = GITKV_TYPE_FILE;
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, &res));
	assert_true(res.committed);
	assert_type(sb->store, "run.sh", GITKV_TYPE_FILE);
	assert_int_equal(sandbox_git_mode(sb, "run.sh"), GIT_FILEMODE_BLOB);
	assert_int_equal(sandbox_count_commits(sb), 3);
}

static void test_store__chmod_to_the_current_mode_makes_no_commit(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {.type = GITKV_OP_CHMOD, .key = "k", .vtype = GITKV_TYPE_FILE};
	gitkv_result res;

	set_str(sb->store, "k", "v");
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, &res));
	assert_false(res.committed);
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__chmod_of_a_missing_key_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {.type = GITKV_OP_CHMOD, .key = "nope", .vtype = GITKV_TYPE_EXEC};

	assert_gitkv(gitkv_store_apply(sb->store, &op, NULL, NULL), GITKV_ENOTFOUND);
}

static void test_store__set_of_a_link_stores_a_symlink(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {.type = GITKV_OP_SET,
		       .key = "current",
		       .value = "releases/v2",
		       .len = 11,
		       .vtype = GITKV_TYPE_LINK};

	assert_ok(gitkv_store_apply(sb->store, &op, NULL, NULL));
	assert_type(sb->store, "current", GITKV_TYPE_LINK);
	assert_int_equal(sandbox_git_mode(sb, "current"), GIT_FILEMODE_LINK);
	assert_value_str(sb->store, "current", "releases/v2");
	sandbox_reopen(sb, NULL);
	assert_type(sb->store, "current", GITKV_TYPE_LINK);
}

static void test_store__set_with_keep_type_keeps_the_exec_bit(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op chmod = {.type = GITKV_OP_CHMOD, .key = "k", .vtype = GITKV_TYPE_EXEC};

	set_str(sb->store, "k", "v1");
	assert_ok(gitkv_store_apply(sb->store, &chmod, NULL, NULL));
	assert_ok(do_set_flags(sb->store, "k", "v2", GITKV_OP_KEEP_TYPE, NULL));
	assert_type(sb->store, "k", GITKV_TYPE_EXEC);
	assert_int_equal(sandbox_git_mode(sb, "k"), GIT_FILEMODE_BLOB_EXECUTABLE);
	assert_value_str(sb->store, "k", "v2");
	/* Without KEEP_TYPE a SET writes the type it names: FILE by default. */
	assert_ok(do_set_flags(sb->store, "k", "v3", 0, NULL));
	assert_type(sb->store, "k", GITKV_TYPE_FILE);
}

static void test_store__if_match_with_a_wrong_expect_returns_emodified(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {
	    .type = GITKV_OP_SET, .key = "k", .value = "new", .len = 3, .flags = GITKV_OP_IF_MATCH};

	set_str(sb->store, "k", "current");
	op.expect = sandbox_blob_oid("stale", 5);
	assert_gitkv(gitkv_store_apply(sb->store, &op, NULL, NULL), GITKV_EMODIFIED);
	assert_value_str(sb->store, "k", "current");
	op.type = GITKV_OP_DELETE;
	assert_gitkv(gitkv_store_apply(sb->store, &op, NULL, NULL), GITKV_EMODIFIED);
	assert_value_str(sb->store, "k", "current");
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__if_match_with_the_current_blob_applies(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {
	    .type = GITKV_OP_SET, .key = "k", .value = "new", .len = 3, .flags = GITKV_OP_IF_MATCH};

	set_str(sb->store, "k", "current");
	op.expect = sandbox_blob_oid("current", 7);
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, NULL));
	assert_value_str(sb->store, "k", "new");
	op.type = GITKV_OP_DELETE;
	op.expect = sandbox_blob_oid("new", 3);
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, NULL));
	assert_type(sb->store, "k", GITKV_TYPE_NONE);
}

static void test_store__set_excl_of_an_existing_key_returns_eexists(void **state)
{
	struct sandbox *sb = *state;

	assert_ok(do_set_flags(sb->store, "lock", "me", GITKV_OP_EXCL, NULL));
	assert_gitkv(do_set_flags(sb->store, "lock", "you", GITKV_OP_EXCL, NULL), GITKV_EEXISTS);
	assert_value_str(sb->store, "lock", "me");
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__reserved_keys_are_refused_without_internal(void **state)
{
	struct sandbox *sb = *state;

	assert_gitkv(gitkv_store_set(sb->store, ".gitkv", "x", 1, NULL, NULL), GITKV_EINVALID);
	assert_gitkv(gitkv_store_set(sb->store, ".gitkv/meta/x", "x", 1, NULL, NULL),
		     GITKV_EINVALID);
	assert_gitkv(do_mkdir(sb->store, ".gitkv/meta", 0), GITKV_EINVALID);
	assert_int_equal(sandbox_count_commits(sb), 0);
}

static void test_store__internal_operations_write_below_the_reserved_prefix(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {.type = GITKV_OP_SET,
		       .key = ".gitkv/meta/x",
		       .value = "1700000000",
		       .len = 10,
		       .flags = GITKV_OP_INTERNAL};

	set_str(sb->store, "x", "v");
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, NULL));
	assert_type(sb->store, ".gitkv", GITKV_TYPE_DIR);
	assert_type(sb->store, ".gitkv/meta/x", GITKV_TYPE_FILE);
	assert_int_equal(gitkv_snapshot_count(gitkv_store_snapshot(sb->store)), 2);
	assert_int_equal(sandbox_git_mode(sb, ".gitkv/meta/x"), GIT_FILEMODE_BLOB);
	op.type = GITKV_OP_DELETE;
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, NULL));
	assert_type(sb->store, ".gitkv/meta/x", GITKV_TYPE_NONE);
	/* INTERNAL does not make a bad key good. */
	op.type = GITKV_OP_SET;
	op.key = ".gitkv/../x";
	assert_gitkv(gitkv_store_apply(sb->store, &op, NULL, NULL), GITKV_EINVALID);
}

/* ---- what a commit says -------------------------------------------------------- */

static const gitkv_writer alice = {.uid = 1234, .pid = 5678, .comm = "vim", .name = "alice"};

static void test_store__commit_names_the_operation_author_and_committer(void **state)
{
	struct sandbox *sb = *state;
	struct commit_facts f;
	gitkv_result res;
	char line[256];

	assert_ok(gitkv_store_set(sb->store, "app/db/host", "db1", 3, &alice, &res));
	f = facts_of(sb, &res.commit);
	assert_string_equal(summary_of(f.message, line, sizeof(line)), "set app/db/host");
	assert_string_equal(f.author_name, "alice");
	assert_string_equal(f.committer_name, "gitkv");
	assert_string_equal(f.committer_email, "gitkv@" SANDBOX_NODE);
	assert_int_equal(f.parents, 0);
}

static void test_store__commit_carries_uid_pid_command_and_node_trailers(void **state)
{
	struct sandbox *sb = *state;
	struct commit_facts f;
	gitkv_result res;
	char v[128];

	assert_ok(gitkv_store_set(sb->store, "k", "v", 1, &alice, &res));
	f = facts_of(sb, &res.commit);
	assert_string_equal(trailer(f.message, "Gitkv-Uid", v, sizeof(v)), "1234");
	assert_string_equal(trailer(f.message, "Gitkv-Pid", v, sizeof(v)), "5678");
	assert_string_equal(trailer(f.message, "Gitkv-Command", v, sizeof(v)), "vim");
	assert_string_equal(trailer(f.message, "Gitkv-Node", v, sizeof(v)), SANDBOX_NODE);
}

static void test_store__a_null_writer_is_the_calling_process(void **state)
{
	struct sandbox *sb = *state;
	struct passwd *pw = getpwuid(getuid());
	struct commit_facts f;
	gitkv_result res;
	char v[128], want[32];

	assert_ok(gitkv_store_set(sb->store, "k", "v", 1, NULL, &res));
	f = facts_of(sb, &res.commit);
	snprintf(want, sizeof(want), "%u", (unsigned int)getuid());
	assert_string_equal(trailer(f.message, "Gitkv-Uid", v, sizeof(v)), want);
	snprintf(want, sizeof(want), "%d", (int)getpid());
	assert_string_equal(trailer(f.message, "Gitkv-Pid", v, sizeof(v)), want);
	if (pw)
		assert_string_equal(f.author_name, pw->pw_name);
	else
		assert_true(strlen(f.author_name) > 0);
}

static void test_store__the_committer_name_comes_from_the_options(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store_options opts = sandbox_options();
	struct commit_facts f;
	gitkv_result res;

	opts.committer = "gitkvfs";
	sandbox_reopen(sb, &opts);
	assert_ok(gitkv_store_set(sb->store, "k", "v", 1, &alice, &res));
	f = facts_of(sb, &res.commit);
	assert_string_equal(f.committer_name, "gitkvfs");
	assert_non_null(strstr(f.committer_email, "@" SANDBOX_NODE));
}

static void test_store__commit_message_never_holds_the_value(void **state)
{
	struct sandbox *sb = *state;
	const char *secret = "hunter2-secret-password";
	struct commit_facts f;
	gitkv_result res;

	assert_ok(gitkv_store_set(sb->store, "db/password", secret, strlen(secret), &alice, &res));
	f = facts_of(sb, &res.commit);
	assert_null(strstr(f.message, secret));
}

static void test_store__commit_messages_name_delete_and_the_key(void **state)
{
	struct sandbox *sb = *state;
	struct commit_facts f;
	gitkv_result res;
	char line[256];

	set_str(sb->store, "app/x", "v");
	assert_ok(gitkv_store_delete(sb->store, "app/x", &alice, &res));
	f = facts_of(sb, &res.commit);
	assert_string_equal(summary_of(f.message, line, sizeof(line)), "delete app/x");
}

static void test_store__each_commit_has_the_previous_head_as_parent(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result r1, r2;
	struct commit_facts f;

	assert_ok(gitkv_store_set(sb->store, "a", "1", 1, NULL, &r1));
	assert_ok(gitkv_store_set(sb->store, "b", "2", 1, NULL, &r2));
	f = facts_of(sb, &r2.commit);
	assert_int_equal(f.parents, 1);
	assert_oid_equal(f.parent, r1.commit);
}

/* ---- concurrency ---------------------------------------------------------------- */

#define RACE_KEYS 200

struct racer {
	gitkv_store *store;
	pthread_barrier_t *start;
	int id;
	int failures;
	int first_error;
	char first_key[64];
	size_t commits;
	gitkv_oid *commit_ids; /* optional: the commit of each of this racer's writes */
	size_t nids;
};

static void racer_write(struct racer *r, const char *key, const char *value)
{
	gitkv_result res;
	int rc = gitkv_store_set(r->store, key, value, strlen(value), NULL, &res);

	if (rc) {
		if (!r->failures++) {
			r->first_error = rc;
			snprintf(r->first_key, sizeof(r->first_key), "%s", key);
		}
		return;
	}
	if (res.committed)
		r->commits++;
	if (r->commit_ids)
		r->commit_ids[r->nids++] = res.commit;
}

/* Writes RACE_KEYS own keys, rewriting "shared" after each. No cmocka here. */
static void *race(void *arg)
{
	struct racer *r = arg;
	char key[64], value[64];
	int i;

	pthread_barrier_wait(r->start);
	for (i = 0; i < RACE_KEYS; i++) {
		snprintf(key, sizeof(key), "t%d/k%03d", r->id, i);
		snprintf(value, sizeof(value), "t%d-%d", r->id, i);
		racer_write(r, key, value);
		racer_write(r, "shared", value);
	}
	return NULL;
}

static void assert_racer_clean(const struct racer *r)
{
	if (r->failures)
		fail_msg("racer %d: %d writes failed, first \"%s\": %d (%s)", r->id, r->failures,
			 r->first_key, r->first_error, gitkv_error_name(r->first_error));
}

static void assert_racers_keys(gitkv_store *store, int nracers)
{
	char key[64], value[64];
	int t, i;

	for (t = 0; t < nracers; t++)
		for (i = 0; i < RACE_KEYS; i++) {
			snprintf(key, sizeof(key), "t%d/k%03d", t, i);
			snprintf(value, sizeof(value), "t%d-%d", t, i);
			assert_value_str(store, key, value);
		}
}

static void test_store__two_handles_racing_lose_no_write(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *second = sandbox_open(sb, NULL);
	gitkv_store *third;
	pthread_barrier_t start;
	struct racer r[2];
	pthread_t th[2];
	char *buf = NULL;
	size_t len, i;

	pthread_barrier_init(&start, NULL, 2);
	memset(r, 0, sizeof(r));
	for (i = 0; i < 2; i++) {
		r[i].store = i ? second : sb->store;
		r[i].start = &start;
		r[i].id = (int)i;
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&start);
	gitkv_store_free(second);
	assert_racer_clean(&r[0]);
	assert_racer_clean(&r[1]);

	third = sandbox_open(sb, NULL);
	assert_racers_keys(third, 2);
	assert_ok(gitkv_store_get(third, "shared", &buf, &len, NULL));
	if (strcmp(buf, "t0-199") && strcmp(buf, "t1-199"))
		fail_msg("shared holds \"%s\", not the last write of either racer", buf);
	free(buf);
	assert_int_equal(gitkv_snapshot_count(gitkv_store_snapshot(third)), 2 * RACE_KEYS + 1);
	gitkv_store_free(third);
	/* Every acknowledged commit is on the branch: none was overwritten. */
	assert_int_equal(sandbox_count_commits(sb), r[0].commits + r[1].commits);
	assert_int_equal(r[0].commits + r[1].commits, 4 * RACE_KEYS);
	assert_int_equal(sandbox_fsck(sb), 0);
}

struct first_writer {
	gitkv_store *store;
	pthread_barrier_t *start;
	const char *key;
	int rc;
};

static void *write_first(void *arg)
{
	struct first_writer *w = arg;

	pthread_barrier_wait(w->start);
	w->rc = gitkv_store_set(w->store, w->key, "v", 1, NULL, NULL);
	return NULL;
}

/* The branch is unborn: both writers create it, and the ref must still be a CAS. */
static void test_store__two_handles_racing_for_the_first_commit_lose_neither(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store_options opts = sandbox_options();
	int round, lost = 0;

	for (round = 0; round < 40; round++) {
		struct first_writer w[2] = {{.key = "a"}, {.key = "b"}};
		pthread_barrier_t start;
		pthread_t th[2];
		gitkv_store *check;
		gitkv_entry e;
		char path[700];
		int i;

		snprintf(path, sizeof(path), "%s/first%d.git", sb->dir, round);
		assert_ok(gitkv_store_init(path));
		pthread_barrier_init(&start, NULL, 2);
		for (i = 0; i < 2; i++) {
			assert_ok(gitkv_store_open(&w[i].store, path, &opts));
			w[i].start = &start;
		}
		for (i = 0; i < 2; i++)
			assert_int_equal(pthread_create(&th[i], NULL, write_first, &w[i]), 0);
		for (i = 0; i < 2; i++) {
			assert_int_equal(pthread_join(th[i], NULL), 0);
			assert_gitkv(w[i].rc, GITKV_OK);
			gitkv_store_free(w[i].store);
		}
		pthread_barrier_destroy(&start);
		assert_ok(gitkv_store_open(&check, path, &opts));
		if (gitkv_snapshot_lookup(gitkv_store_snapshot(check), "a", &e) ||
		    gitkv_snapshot_lookup(gitkv_store_snapshot(check), "b", &e))
			lost++;
		gitkv_store_free(check);
	}
	if (lost)
		fail_msg("an acknowledged first commit was overwritten in %d of 40 races", lost);
}

static int compare_oid(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(gitkv_oid));
}

static void test_store__threads_sharing_one_handle_lose_no_write(void **state)
{
	struct sandbox *sb = *state;
	enum { NTHREADS = 4 };
	gitkv_oid *ids = calloc(NTHREADS * 2 * RACE_KEYS, sizeof(*ids));
	pthread_barrier_t start;
	struct racer r[NTHREADS];
	pthread_t th[NTHREADS];
	size_t i, n = 0, distinct = 0;

	assert_non_null(ids);
	pthread_barrier_init(&start, NULL, NTHREADS);
	memset(r, 0, sizeof(r));
	for (i = 0; i < NTHREADS; i++) {
		r[i].store = sb->store;
		r[i].start = &start;
		r[i].id = (int)i;
		r[i].commit_ids = ids + i * 2 * RACE_KEYS;
		assert_int_equal(pthread_create(&th[i], NULL, race, &r[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&start);
	for (i = 0; i < NTHREADS; i++)
		assert_racer_clean(&r[i]);

	assert_racers_keys(sb->store, NTHREADS);
	sandbox_reopen(sb, NULL);
	assert_racers_keys(sb->store, NTHREADS);
	/* Group commit may fold writes together, but each names a commit on the branch. */
	for (i = 0; i < NTHREADS; i++) {
		memmove(ids + n, r[i].commit_ids, r[i].nids * sizeof(*ids));
		n += r[i].nids;
	}
	qsort(ids, n, sizeof(*ids), compare_oid);
	for (i = 0; i < n; i++)
		if (i == 0 || !gitkv_oid_equal(&ids[i], &ids[i - 1]))
			distinct++;
	assert_int_equal(distinct, sandbox_count_commits(sb));
	assert_int_equal(sandbox_fsck(sb), 0);
	free(ids);
}

static void test_store__a_stale_handle_builds_on_the_new_head(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *other = sandbox_open(sb, NULL);
	struct commit_facts f;
	gitkv_result theirs, ours;

	set_str(sb->store, "base", "0");
	assert_ok(gitkv_store_refresh(other));
	assert_ok(gitkv_store_set(other, "x", "theirs", 6, NULL, &theirs));
	assert_ok(gitkv_store_set(sb->store, "y", "ours", 4, NULL, &ours));
	assert_true(ours.committed);
	f = facts_of(sb, &ours.commit);
	assert_oid_equal(f.parent, theirs.commit);
	assert_oid_equal(git_head_id(sb), ours.commit);
	assert_value_str(sb->store, "x", "theirs");
	assert_value_str(sb->store, "y", "ours");
	gitkv_store_free(other);
	assert_int_equal(sandbox_count_commits(sb), 3);
}

static void test_store__a_stale_handle_rechecks_excl_against_the_new_head(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *other = sandbox_open(sb, NULL);

	assert_ok(do_set_flags(other, "lock", "other", GITKV_OP_EXCL, NULL));
	assert_gitkv(do_set_flags(sb->store, "lock", "me", GITKV_OP_EXCL, NULL), GITKV_EEXISTS);
	assert_value_str(sb->store, "lock", "other");
	gitkv_store_free(other);
	assert_int_equal(sandbox_count_commits(sb), 1);
}

static void test_store__a_stale_handle_rechecks_if_match_against_the_new_head(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *other = sandbox_open(sb, NULL);
	gitkv_op op = {.type = GITKV_OP_SET,
		       .key = "k",
		       .value = "mine",
		       .len = 4,
		       .flags = GITKV_OP_IF_MATCH};

	set_str(sb->store, "k", "v1");
	assert_ok(gitkv_store_refresh(other));
	set_str(other, "k", "v2");
	op.expect = sandbox_blob_oid("v1", 2);
	assert_gitkv(gitkv_store_apply(sb->store, &op, NULL, NULL), GITKV_EMODIFIED);
	assert_value_str(sb->store, "k", "v2");
	gitkv_store_free(other);
}

static void test_store__a_lost_race_reports_the_other_change_to_subscribers(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *other = sandbox_open(sb, NULL);
	struct recorder rec;
	bool saw_x = false, saw_y_local = false;
	size_t i;

	recorder_init(&rec);
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &rec));
	set_str(other, "x", "theirs");
	set_str(sb->store, "y", "ours");
	for (i = 0; i < rec.n; i++) {
		if (change_index(&rec.batches[i], "x") >= 0)
			saw_x = true;
		if (rec.batches[i].origin == GITKV_ORIGIN_LOCAL &&
		    change_index(&rec.batches[i], "y") >= 0)
			saw_y_local = true;
	}
	assert_true(saw_x);
	assert_true(saw_y_local);
	assert_oid_equal(rec.batches[rec.n - 1].new_head, git_head_id(sb));
	gitkv_store_free(other);
	recorder_free(&rec);
}

/* ---- the change stream ------------------------------------------------------------ */

static void test_store__refresh_reports_an_external_batch(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *other = sandbox_open(sb, NULL);
	const struct rec_change *c;
	struct recorder rec;
	gitkv_oid before = head_of(sb->store);
	uint64_t gen = generation_of(sb->store);
	gitkv_result res;

	recorder_init(&rec);
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &rec));
	set_str(other, "x", "1");
	set_str(other, "z", "gone soon");
	assert_ok(gitkv_store_set(other, "d/y", "2", 1, NULL, &res));
	assert_int_equal(rec.n, 0);

	assert_ok(gitkv_store_refresh(sb->store));
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.batches[0].origin, GITKV_ORIGIN_EXTERNAL);
	assert_oid_equal(rec.batches[0].old_head, before);
	assert_oid_equal(rec.batches[0].new_head, res.commit);
	assert_int_equal(rec.batches[0].count, 4);
	c = change_at(&rec.batches[0], "x");
	assert_int_equal(c->old.type, GITKV_TYPE_NONE);
	assert_int_equal(c->new.type, GITKV_TYPE_FILE);
	assert_oid_equal(c->new.oid, sandbox_blob_oid("1", 1));
	c = change_at(&rec.batches[0], "d");
	assert_int_equal(c->old.type, GITKV_TYPE_NONE);
	assert_int_equal(c->new.type, GITKV_TYPE_DIR);
	c = change_at(&rec.batches[0], "d/y");
	assert_int_equal(c->new.type, GITKV_TYPE_FILE);
	assert_oid_equal(c->new.oid, sandbox_blob_oid("2", 1));
	change_at(&rec.batches[0], "z");
	assert_prefix_order(&rec.batches[0]);
	assert_value_str(sb->store, "d/y", "2");
	assert_oid_equal(head_of(sb->store), res.commit);
	assert_int_equal(generation_of(sb->store), gen + 1);

	/* A changed value and a deleted one. */
	recorder_reset(&rec);
	set_str(other, "x", "one");
	assert_ok(gitkv_store_delete(other, "z", NULL, &res));
	assert_ok(gitkv_store_refresh(sb->store));
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.batches[0].origin, GITKV_ORIGIN_EXTERNAL);
	assert_int_equal(rec.batches[0].count, 2);
	c = change_at(&rec.batches[0], "x");
	assert_int_equal(c->old.type, GITKV_TYPE_FILE);
	assert_oid_equal(c->old.oid, sandbox_blob_oid("1", 1));
	assert_int_equal(c->new.type, GITKV_TYPE_FILE);
	assert_oid_equal(c->new.oid, sandbox_blob_oid("one", 3));
	c = change_at(&rec.batches[0], "z");
	assert_int_equal(c->old.type, GITKV_TYPE_FILE);
	assert_oid_equal(c->old.oid, sandbox_blob_oid("gone soon", 9));
	assert_int_equal(c->new.type, GITKV_TYPE_NONE);
	assert_type(sb->store, "z", GITKV_TYPE_NONE);
	assert_value_str(sb->store, "x", "one");

	gitkv_store_free(other);
	recorder_free(&rec);
}

static void test_store__refresh_without_movement_reports_nothing(void **state)
{
	struct sandbox *sb = *state;
	struct recorder rec;
	uint64_t gen;

	set_str(sb->store, "k", "v");
	gen = generation_of(sb->store);
	recorder_init(&rec);
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &rec));
	assert_ok(gitkv_store_refresh(sb->store));
	assert_ok(gitkv_store_refresh(sb->store));
	assert_int_equal(rec.n, 0);
	assert_int_equal(generation_of(sb->store), gen);
	recorder_free(&rec);
}

static void test_store__refresh_reports_a_prefix_moved_by_another_handle(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *other = sandbox_open(sb, NULL);
	struct recorder rec;

	set_str(sb->store, "p/a", "1");
	set_str(sb->store, "p/b/c", "2");
	assert_ok(gitkv_store_refresh(other));
	assert_ok(gitkv_store_rename(other, "p", "q", NULL, NULL));
	recorder_init(&rec);
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &rec));
	assert_ok(gitkv_store_refresh(sb->store));
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.batches[0].count, 8);
	assert_int_equal(change_at(&rec.batches[0], "p")->new.type, GITKV_TYPE_NONE);
	assert_int_equal(change_at(&rec.batches[0], "p/b/c")->new.type, GITKV_TYPE_NONE);
	assert_int_equal(change_at(&rec.batches[0], "q")->old.type, GITKV_TYPE_NONE);
	assert_int_equal(change_at(&rec.batches[0], "q/b/c")->new.type, GITKV_TYPE_FILE);
	assert_prefix_order(&rec.batches[0]);
	gitkv_store_free(other);
	recorder_free(&rec);
}

/* A commit made with libgit2 alone, as `git push` into the bare store would. */
static void commit_with_libgit2(struct sandbox *sb, const char *name, const char *content)
{
	git_repository *repo = sandbox_git(sb);
	git_commit *parent = sandbox_head_commit(repo);
	git_tree *base = NULL, *tree = NULL;
	git_treebuilder *tb = NULL;
	git_signature *sig = NULL;
	git_oid blob, tree_id, commit_id;

	assert_non_null(parent);
	assert_int_equal(git_commit_tree(&base, parent), 0);
	assert_int_equal(git_blob_create_from_buffer(&blob, repo, content, strlen(content)), 0);
	assert_int_equal(git_treebuilder_new(&tb, repo, base), 0);
	assert_int_equal(git_treebuilder_insert(NULL, tb, name, &blob, GIT_FILEMODE_BLOB), 0);
	assert_int_equal(git_treebuilder_write(&tree_id, tb), 0);
	assert_int_equal(git_tree_lookup(&tree, repo, &tree_id), 0);
	assert_int_equal(git_signature_now(&sig, "outsider", "outsider@example.org"), 0);
	assert_int_equal(git_commit_create_v(&commit_id, repo, "refs/heads/main", sig, sig, NULL,
					     "an outside commit\n", tree, 1, parent),
			 0);
	git_signature_free(sig);
	git_tree_free(tree);
	git_treebuilder_free(tb);
	git_tree_free(base);
	git_commit_free(parent);
	git_repository_free(repo);
}

static void test_store__refresh_picks_up_a_commit_made_outside_gitkv(void **state)
{
	struct sandbox *sb = *state;
	struct recorder rec;

	set_str(sb->store, "k", "v");
	recorder_init(&rec);
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &rec));
	commit_with_libgit2(sb, "pushed", "from git");
	assert_ok(gitkv_store_refresh(sb->store));
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.batches[0].origin, GITKV_ORIGIN_EXTERNAL);
	assert_int_equal(rec.batches[0].count, 1);
	assert_int_equal(change_at(&rec.batches[0], "pushed")->new.type, GITKV_TYPE_FILE);
	assert_value_str(sb->store, "pushed", "from git");
	/* And the next write builds on it. */
	set_str(sb->store, "after", "x");
	assert_int_equal(sandbox_count_commits(sb), 3);
	assert_value_str(sb->store, "pushed", "from git");
	recorder_free(&rec);
}

static void test_store__local_batch_lists_a_created_prefix_before_its_keys(void **state)
{
	struct sandbox *sb = *state;
	struct recorder rec;
	gitkv_result res;

	recorder_init(&rec);
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &rec));
	assert_ok(gitkv_store_set(sb->store, "d/e/f", "v", 1, NULL, &res));
	assert_int_equal(rec.n, 1);
	assert_int_equal(rec.batches[0].origin, GITKV_ORIGIN_LOCAL);
	assert_true(gitkv_oid_is_zero(&rec.batches[0].old_head));
	assert_oid_equal(rec.batches[0].new_head, res.commit);
	assert_int_equal(rec.batches[0].count, 3);
	assert_string_equal(rec.batches[0].changes[0].path, "d");
	assert_string_equal(rec.batches[0].changes[1].path, "d/e");
	assert_string_equal(rec.batches[0].changes[2].path, "d/e/f");
	assert_int_equal(rec.batches[0].changes[0].new.type, GITKV_TYPE_DIR);
	assert_int_equal(rec.batches[0].changes[2].old.type, GITKV_TYPE_NONE);
	assert_int_equal(rec.batches[0].changes[2].new.type, GITKV_TYPE_FILE);
	assert_oid_equal(rec.batches[0].changes[2].new.oid, sandbox_blob_oid("v", 1));

	/* Identical bytes: no commit, no batch. */
	assert_ok(gitkv_store_set(sb->store, "d/e/f", "v", 1, NULL, &res));
	assert_int_equal(rec.n, 1);
	/* A failed operation: no batch either. */
	assert_gitkv(gitkv_store_delete(sb->store, "nope", NULL, NULL), GITKV_ENOTFOUND);
	assert_int_equal(rec.n, 1);
	recorder_free(&rec);
}

static void test_store__local_batch_lists_a_deleted_prefix_after_its_keys(void **state)
{
	struct sandbox *sb = *state;
	struct recorder rec;
	const struct rec_batch *b;

	set_str(sb->store, "d/e/f", "v");
	recorder_init(&rec);
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &rec));
	assert_ok(gitkv_store_rename(sb->store, "d", "g", NULL, NULL));
	assert_int_equal(rec.n, 1);
	b = &rec.batches[0];
	assert_int_equal(b->origin, GITKV_ORIGIN_LOCAL);
	assert_int_equal(b->count, 6);
	assert_true(change_index(b, "d/e/f") < change_index(b, "d/e"));
	assert_true(change_index(b, "d/e") < change_index(b, "d"));
	assert_true(change_index(b, "g") < change_index(b, "g/e"));
	assert_true(change_index(b, "g/e") < change_index(b, "g/e/f"));
	assert_int_equal(change_at(b, "d")->old.type, GITKV_TYPE_DIR);
	assert_int_equal(change_at(b, "d")->new.type, GITKV_TYPE_NONE);
	assert_int_equal(change_at(b, "g/e/f")->new.type, GITKV_TYPE_FILE);
	assert_oid_equal(change_at(b, "g/e/f")->new.oid, change_at(b, "d/e/f")->old.oid);

	recorder_reset(&rec);
	assert_ok(gitkv_store_delete(sb->store, "g/e/f", NULL, NULL));
	assert_ok(do_rmdir(sb->store, "g/e"));
	assert_int_equal(rec.n, 2);
	assert_int_equal(rec.batches[0].count, 1);
	assert_string_equal(rec.batches[0].changes[0].path, "g/e/f");
	assert_int_equal(rec.batches[1].count, 1);
	assert_string_equal(rec.batches[1].changes[0].path, "g/e");
	assert_int_equal(rec.batches[1].changes[0].new.type, GITKV_TYPE_NONE);
	recorder_free(&rec);
}

static void test_store__every_subscriber_gets_every_batch(void **state)
{
	struct sandbox *sb = *state;
	struct recorder a, b;

	recorder_init(&a);
	recorder_init(&b);
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &a));
	assert_ok(gitkv_store_subscribe(sb->store, record_batch, &b));
	set_str(sb->store, "k", "1");
	set_str(sb->store, "k", "2");
	assert_int_equal(a.n, 2);
	assert_int_equal(b.n, 2);
	recorder_free(&a);
	recorder_free(&b);
}

/* ---- history -------------------------------------------------------------------- */

struct walk {
	gitkv_oid ids[32];
	char summaries[32][128];
	char authors[32][64];
	int64_t times[32];
	size_t n;
	size_t stop_after; /* return 42 after this many (0: never) */
};

static int collect(const gitkv_commit_info *c, void *payload)
{
	struct walk *w = payload;

	if (w->n < 32) {
		w->ids[w->n] = c->id;
		snprintf(w->summaries[w->n], sizeof(w->summaries[0]), "%s", c->summary);
		snprintf(w->authors[w->n], sizeof(w->authors[0]), "%s", c->author_name);
		w->times[w->n] = c->time;
	}
	w->n++;
	return w->stop_after && w->n == w->stop_after ? 42 : 0;
}

static void
test_store__history_of_a_key_lists_the_commits_that_changed_it_newest_first(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result c1, c2, c3, c4, c5, same;
	struct walk w = {0};

	assert_ok(gitkv_store_set(sb->store, "k1", "a", 1, &alice, &c1));
	assert_ok(gitkv_store_set(sb->store, "k2", "a", 1, NULL, &c2));
	assert_ok(gitkv_store_set(sb->store, "k1", "b", 1, &alice, &c3));
	assert_ok(gitkv_store_delete(sb->store, "k2", NULL, &c4));
	assert_ok(gitkv_store_set(sb->store, "k1", "b", 1, NULL, &same));
	assert_false(same.committed);
	assert_ok(gitkv_store_set(sb->store, "k1", "c", 1, &alice, &c5));

	assert_ok(gitkv_store_history(sb->store, "k1", 0, collect, &w));
	assert_int_equal(w.n, 3);
	assert_oid_equal(w.ids[0], c5.commit);
	assert_oid_equal(w.ids[1], c3.commit);
	assert_oid_equal(w.ids[2], c1.commit);
	assert_string_equal(w.summaries[0], "set k1");
	assert_string_equal(w.authors[0], "alice");
	assert_true(w.times[0] >= w.times[2]);

	memset(&w, 0, sizeof(w));
	assert_ok(gitkv_store_history(sb->store, "k2", 0, collect, &w));
	assert_int_equal(w.n, 2);
	assert_oid_equal(w.ids[0], c4.commit);
	assert_oid_equal(w.ids[1], c2.commit);
	assert_string_equal(w.summaries[0], "delete k2");
}

static void test_store__history_honours_the_limit(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result r[5];
	struct walk w = {0};
	char v[8];
	int i;

	for (i = 0; i < 5; i++) {
		snprintf(v, sizeof(v), "%d", i);
		assert_ok(gitkv_store_set(sb->store, "k", v, strlen(v), NULL, &r[i]));
		set_str(sb->store, "noise", v);
	}
	assert_ok(gitkv_store_history(sb->store, "k", 2, collect, &w));
	assert_int_equal(w.n, 2);
	assert_oid_equal(w.ids[0], r[4].commit);
	assert_oid_equal(w.ids[1], r[3].commit);
	memset(&w, 0, sizeof(w));
	assert_ok(gitkv_store_history(sb->store, "k", 1, collect, &w));
	assert_int_equal(w.n, 1);
	memset(&w, 0, sizeof(w));
	assert_ok(gitkv_store_history(sb->store, "k", 100, collect, &w));
	assert_int_equal(w.n, 5);
}

static void test_store__history_of_a_prefix_lists_the_commits_below_it(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result c1, c3, c4, c5;
	struct walk w = {0};

	assert_ok(gitkv_store_set(sb->store, "p/a", "1", 1, NULL, &c1));
	set_str(sb->store, "q", "2");
	assert_ok(gitkv_store_set(sb->store, "p/sub/b", "3", 1, NULL, &c3));
	assert_ok(apply_op(sb->store, GITKV_OP_MKDIR, "p/empty", NULL, 0, &c4));
	set_str(sb->store, "pp", "not below p");
	assert_ok(gitkv_store_delete(sb->store, "p/a", NULL, &c5));
	assert_ok(gitkv_store_history(sb->store, "p", 0, collect, &w));
	assert_int_equal(w.n, 4);
	assert_oid_equal(w.ids[0], c5.commit);
	assert_oid_equal(w.ids[1], c4.commit);
	assert_oid_equal(w.ids[2], c3.commit);
	assert_oid_equal(w.ids[3], c1.commit);
}

static void test_store__history_of_a_key_never_set_is_empty(void **state)
{
	struct sandbox *sb = *state;
	struct walk w = {0};

	assert_ok(gitkv_store_history(sb->store, "k", 0, collect, &w));
	assert_int_equal(w.n, 0);
	set_str(sb->store, "other", "v");
	assert_ok(gitkv_store_history(sb->store, "k", 0, collect, &w));
	assert_int_equal(w.n, 0);
}

static void test_store__history_stops_when_the_callback_returns_non_zero(void **state)
{
	struct sandbox *sb = *state;
	struct walk w = {.stop_after = 2};
	int i;
	char v[8];

	for (i = 0; i < 4; i++) {
		snprintf(v, sizeof(v), "%d", i);
		set_str(sb->store, "k", v);
	}
	assert_int_equal(gitkv_store_history(sb->store, "k", 0, collect, &w), 42);
	assert_int_equal(w.n, 2);
}

static void test_store__history_of_an_invalid_key_returns_einvalid(void **state)
{
	struct sandbox *sb = *state;
	struct walk w = {0};

	assert_gitkv(gitkv_store_history(sb->store, "a//b", 0, collect, &w), GITKV_EINVALID);
	assert_int_equal(w.n, 0);
}

/* ---- persistence and options ----------------------------------------------------- */

static void test_store__an_empty_prefix_survives_reopen(void **state)
{
	struct sandbox *sb = *state;
	gitkv_entry entry;

	assert_ok(do_mkdir(sb->store, "e/f", 0));
	sandbox_reopen(sb, NULL);
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(sb->store), "e/f", &entry));
	assert_int_equal(entry.type, GITKV_TYPE_DIR);
	assert_int_equal(entry.size, 0);
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(sb->store), "e", &entry));
	assert_int_equal(entry.type, GITKV_TYPE_DIR);
	assert_int_equal(entry.size, 1);
	assert_int_equal(sandbox_git_mode(sb, "e/f"), GIT_FILEMODE_TREE);
}

static void test_store__a_readonly_store_refuses_writes_with_ereadonly(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store_options opts = sandbox_options();
	gitkv_op chmod = {.type = GITKV_OP_CHMOD, .key = "k", .vtype = GITKV_TYPE_EXEC};

	set_str(sb->store, "k", "v");
	opts.readonly = true;
	sandbox_reopen(sb, &opts);
	assert_gitkv(gitkv_store_set(sb->store, "k", "w", 1, NULL, NULL), GITKV_EREADONLY);
	assert_gitkv(gitkv_store_set(sb->store, "new", "w", 1, NULL, NULL), GITKV_EREADONLY);
	assert_gitkv(gitkv_store_delete(sb->store, "k", NULL, NULL), GITKV_EREADONLY);
	assert_gitkv(gitkv_store_rename(sb->store, "k", "j", NULL, NULL), GITKV_EREADONLY);
	assert_gitkv(do_mkdir(sb->store, "d", 0), GITKV_EREADONLY);
	assert_gitkv(gitkv_store_apply(sb->store, &chmod, NULL, NULL), GITKV_EREADONLY);
	assert_value_str(sb->store, "k", "v");
	assert_int_equal(sandbox_count_commits(sb), 1);
	assert_ok(gitkv_store_refresh(sb->store));
}

/* ---- faults ------------------------------------------------------------------------ */

/*
 * The store's write seam fails its Nth object write when GITKV_FAULT_WRITE=N
 * (":enospc" for ENOSPC). The seam reads the variable once per process, so
 * each N runs in a fresh copy of this program ("fault-child REPO"), which
 * applies fault_ops in order, stops at the first failure and exits with the
 * number of operations acknowledged (FAULT_BAD_CODE: a failure with the wrong
 * code). The parent then checks the repository holds exactly those.
 */
#define FAULT_BAD_CODE 100

static const gitkv_op fault_ops[] = {
    {.type = GITKV_OP_SET, .key = "a", .value = "1", .len = 1},
    {.type = GITKV_OP_SET, .key = "d/b", .value = "2", .len = 1},
    {.type = GITKV_OP_MKDIR, .key = "e"},
    {.type = GITKV_OP_RENAME, .key = "d", .to = "f"},
    {.type = GITKV_OP_DELETE, .key = "a"},
    {.type = GITKV_OP_SET, .key = "f/b", .value = "3", .len = 1},
};
#define FAULT_NOPS (sizeof(fault_ops) / sizeof(fault_ops[0]))

static int fault_child(const char *repo)
{
	const char *env = getenv("GITKV_FAULT_WRITE");
	int want = env && strstr(env, "enospc") ? GITKV_ENOSPC : GITKV_ERROR;
	gitkv_store_options opts = sandbox_options();
	gitkv_store *store = NULL;
	size_t i;
	int rc;

	git_libgit2_init();
	if ((rc = gitkv_store_open(&store, repo, &opts)) != 0)
		return FAULT_BAD_CODE;
	for (i = 0; i < FAULT_NOPS; i++)
		if ((rc = gitkv_store_apply(store, &fault_ops[i], NULL, NULL)) != 0)
			break;
	gitkv_store_free(store);
	git_libgit2_shutdown();
	if (rc && rc != want) {
		fprintf(stderr, "fault-child: op %zu returned %d (%s), expected %d\n", i, rc,
			gitkv_error_name(rc), want);
		return FAULT_BAD_CODE;
	}
	return (int)i;
}

/* Run fault_child on `repo` with the Nth write failing; returns its exit status. */
static int run_fault_child(const char *repo, int n, bool enospc)
{
	extern char **environ;
	char var[64], *argv[] = {(char *)"test_store", (char *)"fault-child", (char *)repo, NULL};
	char **envp;
	size_t i, nenv = 0;
	pid_t pid;
	int status;

	snprintf(var, sizeof(var), "GITKV_FAULT_WRITE=%d%s", n, enospc ? ":enospc" : "");
	while (environ[nenv])
		nenv++;
	envp = calloc(nenv + 2, sizeof(*envp));
	assert_non_null(envp);
	for (i = 0; i < nenv; i++)
		envp[i] = environ[i];
	envp[nenv] = var;
	assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp), 0);
	free(envp);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* The store after the first `acked` fault_ops, and nothing more. */
static void assert_fault_state(struct sandbox *sb, const char *repo, size_t acked)
{
	gitkv_store_options opts = sandbox_options();
	gitkv_store *store = NULL;

	assert_ok(gitkv_store_open(&store, repo, &opts));
	assert_type(store, "a", acked >= 1 && acked < 5 ? GITKV_TYPE_FILE : GITKV_TYPE_NONE);
	assert_type(store, "d", acked >= 2 && acked < 4 ? GITKV_TYPE_DIR : GITKV_TYPE_NONE);
	assert_type(store, "e", acked >= 3 ? GITKV_TYPE_DIR : GITKV_TYPE_NONE);
	assert_type(store, "f", acked >= 4 ? GITKV_TYPE_DIR : GITKV_TYPE_NONE);
	if (acked >= 1 && acked < 5)
		assert_value_str(store, "a", "1");
	if (acked >= 2 && acked < 4)
		assert_value_str(store, "d/b", "2");
	if (acked >= 4)
		assert_value_str(store, "f/b", acked >= 6 ? "3" : "2");
	gitkv_store_free(store);
}

static void fault_loop(struct sandbox *sb, bool enospc)
{
	char repo[700], cmd[800];
	size_t acked = 0;
	int n;

	for (n = 1; acked < FAULT_NOPS; n++) {
		int status;

		assert_true(n < 100);
		snprintf(repo, sizeof(repo), "%s/fault%d.git", sb->dir, n);
		assert_ok(gitkv_store_init(repo));
		status = run_fault_child(repo, n, enospc);
		if (status == FAULT_BAD_CODE || status > (int)FAULT_NOPS)
			fail_msg("write %d failing: the child reported %d", n, status);
		acked = (size_t)status;
		assert_fault_state(sb, repo, acked);
		snprintf(cmd, sizeof(cmd), "git -C '%s' fsck --strict --no-progress --no-dangling",
			 repo);
		if (acked)
			assert_int_equal(WEXITSTATUS(system(cmd)), 0);
	}
	print_message("%d writes to fail one by one (%s)\n", n - 1, enospc ? "ENOSPC" : "EIO");
}

static void test_store__a_failed_object_write_keeps_every_acknowledged_change(void **state)
{
	fault_loop(*state, false);
}

static void test_store__a_full_disk_returns_enospc_and_keeps_every_acknowledged_change(void **state)
{
	fault_loop(*state, true);
}

/* ---- a random walk against a model ------------------------------------------------ */

#define MODEL_OPS 500

/* One path of the model: a value or a prefix. Kept sorted by path. */
struct mentry {
	char path[32];
	gitkv_type type; /* FILE or DIR */
	char value[16];
	size_t len;
};

struct model {
	struct mentry v[64];
	size_t n;
};

static long model_find(const struct model *m, const char *path)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (!strcmp(m->v[i].path, path))
			return (long)i;
	return -1;
}

static gitkv_type model_type(const struct model *m, const char *path)
{
	long i;

	if (!*path)
		return GITKV_TYPE_DIR;
	i = model_find(m, path);
	return i < 0 ? GITKV_TYPE_NONE : m->v[i].type;
}

static bool is_child_of(const char *path, const char *dir)
{
	size_t dl = strlen(dir);

	if (!dl)
		return !strchr(path, '/');
	return !strncmp(path, dir, dl) && path[dl] == '/' && !strchr(path + dl + 1, '/');
}

static size_t model_children(const struct model *m, const char *dir)
{
	size_t i, n = 0;

	for (i = 0; i < m->n; i++)
		n += is_child_of(m->v[i].path, dir);
	return n;
}

/* True if a proper prefix of `path` is a value. */
static bool model_below_value(const struct model *m, const char *path)
{
	char buf[32];
	char *slash;

	snprintf(buf, sizeof(buf), "%s", path);
	while ((slash = strrchr(buf, '/'))) {
		*slash = '\0';
		if (model_type(m, buf) == GITKV_TYPE_FILE)
			return true;
	}
	return false;
}

static void model_insert(struct model *m, const char *path, gitkv_type type, const char *value,
			 size_t len)
{
	long at = model_find(m, path);
	size_t i;

	if (at < 0) {
		assert_true(m->n < sizeof(m->v) / sizeof(m->v[0]));
		for (i = 0; i < m->n && strcmp(m->v[i].path, path) < 0; i++)
			;
		memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(m->v[0]));
		m->n++;
		at = (long)i;
		snprintf(m->v[at].path, sizeof(m->v[at].path), "%s", path);
	}
	m->v[at].type = type;
	m->v[at].len = len;
	if (len)
		memcpy(m->v[at].value, value, len);
}

static void model_mkdir_p(struct model *m, const char *path)
{
	char buf[32];
	char *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf; (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (model_type(m, buf) == GITKV_TYPE_NONE)
			model_insert(m, buf, GITKV_TYPE_DIR, NULL, 0);
		*p = '/';
	}
	if (model_type(m, buf) == GITKV_TYPE_NONE)
		model_insert(m, buf, GITKV_TYPE_DIR, NULL, 0);
}

static void model_remove_tree(struct model *m, const char *path)
{
	size_t i = 0;

	while (i < m->n) {
		if (gitkv_key_has_prefix(m->v[i].path, path)) {
			memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(m->v[0]));
			m->n--;
		} else {
			i++;
		}
	}
}

static void model_rename(struct model *m, const char *from, const char *to)
{
	struct mentry moved[64];
	size_t i, n = 0, fl = strlen(from);

	for (i = 0; i < m->n; i++)
		if (gitkv_key_has_prefix(m->v[i].path, from))
			moved[n++] = m->v[i];
	model_remove_tree(m, from);
	model_remove_tree(m, to);
	for (i = 0; i < n; i++) {
		char path[64];

		snprintf(path, sizeof(path), "%s%s", to, moved[i].path + fl);
		assert_true(strlen(path) < sizeof(moved[i].path));
		model_insert(m, path, moved[i].type, moved[i].value, moved[i].len);
	}
}

static size_t model_values(const struct model *m)
{
	size_t i, n = 0;

	for (i = 0; i < m->n; i++)
		n += m->v[i].type == GITKV_TYPE_FILE;
	return n;
}

/* A reproducible generator (xorshift32); the seed is printed. */
static uint32_t rng_state;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state % n;
}

/* A path of one to three components from {a, b, c}; deeper ones more often. */
static void random_path(char *out, size_t size)
{
	static const char *const names[] = {"a", "b", "c"};
	static const size_t depths[] = {1, 2, 2, 3, 3};
	size_t depth = depths[rnd(5)], i, pos = 0;

	for (i = 0; i < depth; i++)
		pos += (size_t)snprintf(out + pos, size - pos, "%s%s", i ? "/" : "", names[rnd(3)]);
}

/* Replace `out` with a random model path of `type`, if there is one. */
static void pick_existing(const struct model *m, gitkv_type type, char *out, size_t size)
{
	size_t i, n = 0, k;

	for (i = 0; i < m->n; i++)
		n += m->v[i].type == type;
	if (!n)
		return;
	k = rnd((uint32_t)n);
	for (i = 0; i < m->n; i++)
		if (m->v[i].type == type && k-- == 0) {
			snprintf(out, size, "%s", m->v[i].path);
			return;
		}
}

static const struct {
	const char *bytes;
	size_t len;
} model_values_pool[] = {
    {"", 0}, {"x", 1}, {"y", 1}, {"bin\0\xff", 5}, {"a longer value", 14},
};

/* Compare the store with the model: every path, the counts, and the listings of `dirs`. */
static void model_check(struct model *m, gitkv_store *store, const char *const *dirs, size_t ndirs,
			int step)
{
	gitkv_snapshot *snap = gitkv_store_snapshot(store);
	gitkv_dirent *ents = NULL;
	gitkv_entry e;
	size_t i, j, count = 0;

	if (gitkv_snapshot_count(snap) != model_values(m))
		fail_msg("step %d: %zu values, model has %zu", step, gitkv_snapshot_count(snap),
			 model_values(m));
	for (i = 0; i < m->n; i++) {
		const struct mentry *me = &m->v[i];

		if (gitkv_snapshot_lookup(snap, me->path, &e) || e.type != me->type)
			fail_msg("step %d: \"%s\" is type %d, model says %d", step, me->path,
				 e.type, me->type);
		if (me->type == GITKV_TYPE_FILE) {
			gitkv_oid want = sandbox_blob_oid(me->value, me->len);

			if (!gitkv_oid_equal(&e.oid, &want))
				fail_msg("step %d: \"%s\" holds another blob", step, me->path);
			assert_value_mem(store, me->path, me->value, me->len);
		} else if (e.size != model_children(m, me->path)) {
			fail_msg("step %d: prefix \"%s\" has size %llu, model has %zu children",
				 step, me->path, (unsigned long long)e.size,
				 model_children(m, me->path));
		}
	}
	for (i = 0; i < ndirs; i++) {
		gitkv_type t = model_type(m, dirs[i]);
		int rc = gitkv_snapshot_list(snap, dirs[i], &ents, &count);

		if (t == GITKV_TYPE_NONE) {
			if (rc != GITKV_ENOTFOUND)
				fail_msg("step %d: list \"%s\" returned %d, model has no such path",
					 step, dirs[i], rc);
			assert_int_equal(gitkv_snapshot_lookup(snap, dirs[i], &e), GITKV_ENOTFOUND);
			continue;
		}
		if (t == GITKV_TYPE_FILE) {
			if (rc != GITKV_ENOTDIR)
				fail_msg("step %d: list of value \"%s\" returned %d", step, dirs[i],
					 rc);
			continue;
		}
		if (rc)
			fail_msg("step %d: list \"%s\" returned %d", step, dirs[i], rc);
		if (count != model_children(m, dirs[i]))
			fail_msg("step %d: \"%s\" lists %zu children, model has %zu", step, dirs[i],
				 count, model_children(m, dirs[i]));
		for (j = 0; j < count; j++) {
			char *path = gitkv_key_join(dirs[i], ents[j].name);

			if (model_type(m, path) != ents[j].entry.type)
				fail_msg("step %d: listing has \"%s\" of type %d, model %d", step,
					 path, ents[j].entry.type, model_type(m, path));
			if (j && strcmp(ents[j - 1].name, ents[j].name) >= 0)
				fail_msg("step %d: listing of \"%s\" is not sorted", step, dirs[i]);
			free(path);
		}
		gitkv_dirents_free(ents, count);
	}
}

/* Every path of the snapshot with what it holds, walked from the root. */
struct dump_entry {
	char path[32];
	gitkv_entry e;
};

struct dump {
	struct dump_entry v[64];
	size_t n;
};

static void dump_dir(gitkv_snapshot *snap, const char *dir, struct dump *d)
{
	gitkv_dirent *ents = NULL;
	size_t count = 0, i;

	assert_ok(gitkv_snapshot_list(snap, dir, &ents, &count));
	for (i = 0; i < count; i++) {
		char *path = gitkv_key_join(dir, ents[i].name);

		assert_true(d->n < sizeof(d->v) / sizeof(d->v[0]));
		snprintf(d->v[d->n].path, sizeof(d->v[0].path), "%s", path);
		assert_ok(gitkv_snapshot_lookup(snap, path, &d->v[d->n].e));
		d->n++;
		if (ents[i].entry.type == GITKV_TYPE_DIR)
			dump_dir(snap, path, d);
		free(path);
	}
	gitkv_dirents_free(ents, count);
}

static void assert_dumps_equal(const struct dump *a, const struct dump *b)
{
	char ha[GITKV_OID_HEXSZ + 1], hb[GITKV_OID_HEXSZ + 1];
	size_t i;

	assert_int_equal(a->n, b->n);
	for (i = 0; i < a->n; i++) {
		const gitkv_entry *x = &a->v[i].e, *y = &b->v[i].e;

		assert_string_equal(a->v[i].path, b->v[i].path);
		if (x->type != y->type || x->size != y->size || !gitkv_oid_equal(&x->oid, &y->oid))
			fail_msg("\"%s\": type %d size %llu %s before reopen, type %d size %llu "
				 "%s after",
				 a->v[i].path, x->type, (unsigned long long)x->size,
				 gitkv_oid_fmt(ha, &x->oid), y->type, (unsigned long long)y->size,
				 gitkv_oid_fmt(hb, &y->oid));
	}
}

static void model_check_all(struct model *m, gitkv_store *store, int step)
{
	const char *dirs[65];
	size_t i, n = 0;

	dirs[n++] = "";
	for (i = 0; i < m->n; i++)
		if (m->v[i].type == GITKV_TYPE_DIR)
			dirs[n++] = m->v[i].path;
	model_check(m, store, dirs, n, step);
}

static void test_store__random_operations_match_a_model(void **state)
{
	struct sandbox *sb = *state;
	const char *env = getenv("GITKV_TEST_SEED");
	uint32_t seed = env ? (uint32_t)strtoul(env, NULL, 0) : 0x5eed2024u;
	struct model *m = calloc(1, sizeof(*m));
	struct dump *before = calloc(1, sizeof(*before)), *after = calloc(1, sizeof(*after));
	int step, counts[6] = {0};

	assert_non_null(m);
	assert_non_null(before);
	assert_non_null(after);
	print_message("random operations: seed 0x%08x (set GITKV_TEST_SEED to replay)\n", seed);
	rng_state = seed ? seed : 1;

	for (step = 0; step < MODEL_OPS; step++) {
		char key[32], to[32], kparent[32], tparent[32];
		const char *dirs[5];
		gitkv_op op = {0};
		gitkv_result res;
		gitkv_type kt, tt;
		uint64_t gen = generation_of(sb->store);
		int expect = GITKV_OK, rc;
		bool changes = true;
		uint32_t pick = rnd(100);

		random_path(key, sizeof(key));
		/* Mostly delete values and remove prefixes that exist, so that most steps apply. */
		if (pick >= 35 && pick < 50 && rnd(3))
			pick_existing(m, GITKV_TYPE_FILE, key, sizeof(key));
		else if (pick >= 65 && pick < 80 && rnd(3))
			pick_existing(m, GITKV_TYPE_DIR, key, sizeof(key));
		to[0] = '\0';
		kt = model_type(m, key);
		op.key = key;
		if (pick < 35) {
			size_t v = rnd(sizeof(model_values_pool) / sizeof(model_values_pool[0]));

			op.type = GITKV_OP_SET;
			op.value = model_values_pool[v].bytes;
			op.len = model_values_pool[v].len;
			if (kt == GITKV_TYPE_FILE && rnd(8) == 0)
				op.flags = GITKV_OP_EXCL;
			if (model_below_value(m, key))
				expect = GITKV_ENOTDIR;
			else if (kt == GITKV_TYPE_DIR)
				expect = GITKV_EISDIR;
			else if (op.flags & GITKV_OP_EXCL)
				expect = GITKV_EEXISTS;
			else if (kt == GITKV_TYPE_FILE) {
				const struct mentry *me = &m->v[model_find(m, key)];

				changes = me->len != op.len || memcmp(me->value, op.value, op.len);
			}
		} else if (pick < 50) {
			/* Below a value: a targeted test covers it; the walk stays on paths. */
			if (model_below_value(m, key)) {
				step--;
				continue;
			}
			op.type = GITKV_OP_DELETE;
			if (kt == GITKV_TYPE_NONE)
				expect = GITKV_ENOTFOUND;
			else if (kt == GITKV_TYPE_DIR)
				expect = GITKV_EISDIR;
		} else if (pick < 65) {
			op.type = GITKV_OP_MKDIR;
			op.flags = GITKV_OP_EXCL;
			if (model_below_value(m, key))
				expect = GITKV_ENOTDIR;
			else if (kt != GITKV_TYPE_NONE)
				expect = GITKV_EEXISTS;
		} else if (pick < 80) {
			if (model_below_value(m, key)) {
				step--;
				continue;
			}
			op.type = GITKV_OP_RMDIR;
			if (kt == GITKV_TYPE_NONE)
				expect = GITKV_ENOTFOUND;
			else if (kt == GITKV_TYPE_FILE)
				expect = GITKV_ENOTDIR;
			else if (model_children(m, key))
				expect = GITKV_ENOTEMPTY;
		} else {
			char *p;

			/* Rename an existing path to a place whose parent exists or is a value. */
			if (!m->n) {
				step--;
				continue;
			}
			snprintf(key, sizeof(key), "%s", m->v[rnd((uint32_t)m->n)].path);
			kt = model_type(m, key);
			random_path(to, sizeof(to));
			p = gitkv_key_parent(to);
			snprintf(tparent, sizeof(tparent), "%s", p);
			free(p);
			tt = model_type(m, to);
			op.type = GITKV_OP_RENAME;
			op.to = to;
			if (!strcmp(key, to)) {
				step--;
				continue;
			}
			/*
			 * Below itself and below a value at once: ENOTDIR and EINVALID are
			 * both fair answers, so the walk leaves that case out.
			 */
			if (gitkv_key_has_prefix(to, key) &&
			    (kt == GITKV_TYPE_FILE || model_below_value(m, to))) {
				step--;
				continue;
			}
			if (model_below_value(m, to))
				expect = GITKV_ENOTDIR;
			else if (model_type(m, tparent) == GITKV_TYPE_NONE) {
				step--;
				continue;
			} else if (kt == GITKV_TYPE_DIR && gitkv_key_has_prefix(to, key))
				expect = GITKV_EINVALID;
			else if (kt == GITKV_TYPE_FILE && tt == GITKV_TYPE_DIR)
				expect = GITKV_EISDIR;
			else if (kt == GITKV_TYPE_DIR && tt == GITKV_TYPE_FILE)
				expect = GITKV_ENOTDIR;
			else if (kt == GITKV_TYPE_DIR && tt == GITKV_TYPE_DIR &&
				 model_children(m, to))
				expect = GITKV_ENOTEMPTY;
		}

		rc = gitkv_store_apply(sb->store, &op, NULL, &res);
		if (rc != expect) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", gitkv_error_last());
			fail_msg("step %d (seed 0x%08x): op %d \"%s\"%s%s%s flags %u returned %d "
				 "(%s: \"%s\"), model expects %d (%s)",
				 step, seed, op.type, key, op.to ? " -> \"" : "", op.to ? to : "",
				 op.to ? "\"" : "", op.flags, rc, gitkv_error_name(rc), msg, expect,
				 gitkv_error_name(expect));
		}
		counts[expect == GITKV_OK ? op.type : 5]++;
		if (rc == GITKV_OK) {
			switch (op.type) {
			case GITKV_OP_SET: {
				char *parent = gitkv_key_parent(key);

				if (*parent)
					model_mkdir_p(m, parent);
				free(parent);
				model_insert(m, key, GITKV_TYPE_FILE, op.value, op.len);
				break;
			}
			case GITKV_OP_DELETE:
			case GITKV_OP_RMDIR:
				model_remove_tree(m, key);
				break;
			case GITKV_OP_MKDIR:
				model_mkdir_p(m, key);
				break;
			case GITKV_OP_RENAME:
				model_rename(m, key, to);
				break;
			default:
				break;
			}
			if (res.committed != changes)
				fail_msg("step %d: committed is %d, model expects %d", step,
					 res.committed, changes);
			assert_int_equal(generation_of(sb->store), gen + (changes ? 1 : 0));
		} else {
			assert_int_equal(generation_of(sb->store), gen);
		}

		{
			char *p = gitkv_key_parent(key);

			snprintf(kparent, sizeof(kparent), "%s", p);
			free(p);
		}
		dirs[0] = "";
		dirs[1] = kparent;
		dirs[2] = key;
		dirs[3] = op.to ? tparent : "";
		dirs[4] = op.to ? to : "";
		model_check(m, sb->store, dirs, 5, step);
	}
	print_message("random operations: %d set, %d delete, %d mkdir, %d rmdir, %d rename "
		      "applied, %d refused\n",
		      counts[GITKV_OP_SET], counts[GITKV_OP_DELETE], counts[GITKV_OP_MKDIR],
		      counts[GITKV_OP_RMDIR], counts[GITKV_OP_RENAME], counts[5]);

	model_check_all(m, sb->store, step);
	dump_dir(gitkv_store_snapshot(sb->store), "", before);
	assert_int_equal(sandbox_fsck(sb), 0);
	sandbox_reopen(sb, NULL);
	model_check_all(m, sb->store, step);
	dump_dir(gitkv_store_snapshot(sb->store), "", after);
	assert_dumps_equal(before, after);
	free(m);
	free(before);
	free(after);
}

#define STORE_TEST(name) cmocka_unit_test_setup_teardown(name, sandbox_setup, sandbox_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    STORE_TEST(test_store__init_creates_a_bare_repository_on_an_unborn_main),
	    STORE_TEST(test_store__init_of_an_existing_store_returns_eexists),
	    STORE_TEST(test_store__open_of_a_missing_path_returns_enotfound),
	    STORE_TEST(test_store__open_of_a_directory_that_is_no_repository_returns_enotfound),
	    STORE_TEST(test_store__open_of_a_non_bare_repository_returns_einvalid),
	    STORE_TEST(test_store__open_with_create_makes_a_missing_store),
	    STORE_TEST(test_store__open_reports_its_path_node_and_limits),
	    STORE_TEST(test_store__set_then_get_returns_value),
	    STORE_TEST(test_store__set_of_a_new_value_replaces_the_old_one),
	    STORE_TEST(test_store__binary_value_round_trips),
	    STORE_TEST(test_store__empty_value_round_trips),
	    STORE_TEST(test_store__set_creates_the_parent_prefixes),
	    STORE_TEST(test_store__set_of_identical_bytes_makes_no_commit),
	    STORE_TEST(test_store__set_accepts_a_null_result),
	    STORE_TEST(test_store__set_over_max_value_size_returns_etoobig),
	    STORE_TEST(test_store__get_of_a_missing_key_returns_enotfound),
	    STORE_TEST(test_store__get_of_a_prefix_returns_eisdir),
	    STORE_TEST(test_store__get_of_an_invalid_key_returns_einvalid),
	    STORE_TEST(test_store__read_blob_returns_the_bytes_of_an_entry),
	    STORE_TEST(test_store__delete_removes_the_key),
	    STORE_TEST(test_store__delete_of_the_last_key_keeps_its_prefix),
	    STORE_TEST(test_store__delete_of_a_missing_key_returns_enotfound),
	    STORE_TEST(test_store__delete_of_a_prefix_returns_eisdir),
	    STORE_TEST(test_store__delete_or_rmdir_below_a_value_returns_enotdir),
	    STORE_TEST(test_store__mkdir_creates_an_empty_prefix),
	    STORE_TEST(test_store__mkdir_creates_the_parent_prefixes),
	    STORE_TEST(test_store__mkdir_excl_of_an_existing_prefix_returns_eexists),
	    STORE_TEST(test_store__mkdir_of_an_existing_prefix_changes_nothing),
	    STORE_TEST(test_store__mkdir_over_a_value_returns_eexists),
	    STORE_TEST(test_store__rmdir_removes_an_empty_prefix),
	    STORE_TEST(test_store__rmdir_of_a_prefix_holding_keys_returns_enotempty),
	    STORE_TEST(test_store__rmdir_of_a_value_returns_enotdir),
	    STORE_TEST(test_store__rmdir_of_a_missing_prefix_returns_enotfound),
	    STORE_TEST(test_store__set_below_a_value_returns_enotdir),
	    STORE_TEST(test_store__set_on_a_prefix_returns_eisdir),
	    STORE_TEST(test_store__rename_of_a_value_moves_it_in_one_commit),
	    STORE_TEST(test_store__rename_of_a_value_into_a_new_prefix_creates_it),
	    STORE_TEST(test_store__rename_of_a_prefix_moves_everything_below_it_in_one_commit),
	    STORE_TEST(test_store__rename_over_an_existing_value_replaces_it),
	    STORE_TEST(test_store__rename_noreplace_onto_an_existing_key_returns_eexists),
	    STORE_TEST(test_store__rename_of_a_value_over_a_prefix_returns_eisdir),
	    STORE_TEST(test_store__rename_of_a_prefix_over_a_non_empty_prefix_returns_enotempty),
	    STORE_TEST(test_store__rename_of_a_prefix_over_an_empty_prefix_replaces_it),
	    STORE_TEST(test_store__rename_of_a_prefix_over_a_value_returns_enotdir),
	    STORE_TEST(test_store__rename_of_a_missing_key_returns_enotfound),
	    STORE_TEST(test_store__rename_of_a_prefix_into_itself_returns_einvalid),
	    STORE_TEST(test_store__rename_to_an_invalid_or_reserved_key_returns_einvalid),
	    STORE_TEST(test_store__chmod_to_exec_sets_git_mode_100755),
	    STORE_TEST(test_store__chmod_to_the_current_mode_makes_no_commit),
	    STORE_TEST(test_store__chmod_of_a_missing_key_returns_enotfound),
	    STORE_TEST(test_store__set_of_a_link_stores_a_symlink),
	    STORE_TEST(test_store__set_with_keep_type_keeps_the_exec_bit),
	    STORE_TEST(test_store__if_match_with_a_wrong_expect_returns_emodified),
	    STORE_TEST(test_store__if_match_with_the_current_blob_applies),
	    STORE_TEST(test_store__set_excl_of_an_existing_key_returns_eexists),
	    STORE_TEST(test_store__reserved_keys_are_refused_without_internal),
	    STORE_TEST(test_store__internal_operations_write_below_the_reserved_prefix),
	    STORE_TEST(test_store__commit_names_the_operation_author_and_committer),
	    STORE_TEST(test_store__commit_carries_uid_pid_command_and_node_trailers),
	    STORE_TEST(test_store__a_null_writer_is_the_calling_process),
	    STORE_TEST(test_store__the_committer_name_comes_from_the_options),
	    STORE_TEST(test_store__commit_message_never_holds_the_value),
	    STORE_TEST(test_store__commit_messages_name_delete_and_the_key),
	    STORE_TEST(test_store__each_commit_has_the_previous_head_as_parent),
	    STORE_TEST(test_store__two_handles_racing_for_the_first_commit_lose_neither),
	    STORE_TEST(test_store__two_handles_racing_lose_no_write),
	    STORE_TEST(test_store__threads_sharing_one_handle_lose_no_write),
	    STORE_TEST(test_store__a_stale_handle_builds_on_the_new_head),
	    STORE_TEST(test_store__a_stale_handle_rechecks_excl_against_the_new_head),
	    STORE_TEST(test_store__a_stale_handle_rechecks_if_match_against_the_new_head),
	    STORE_TEST(test_store__a_lost_race_reports_the_other_change_to_subscribers),
	    STORE_TEST(test_store__refresh_reports_an_external_batch),
	    STORE_TEST(test_store__refresh_without_movement_reports_nothing),
	    STORE_TEST(test_store__refresh_reports_a_prefix_moved_by_another_handle),
	    STORE_TEST(test_store__refresh_picks_up_a_commit_made_outside_gitkv),
	    STORE_TEST(test_store__local_batch_lists_a_created_prefix_before_its_keys),
	    STORE_TEST(test_store__local_batch_lists_a_deleted_prefix_after_its_keys),
	    STORE_TEST(test_store__every_subscriber_gets_every_batch),
	    STORE_TEST(test_store__history_of_a_key_lists_the_commits_that_changed_it_newest_first),
	    STORE_TEST(test_store__history_honours_the_limit),
	    STORE_TEST(test_store__history_of_a_prefix_lists_the_commits_below_it),
	    STORE_TEST(test_store__history_of_a_key_never_set_is_empty),
	    STORE_TEST(test_store__history_stops_when_the_callback_returns_non_zero),
	    STORE_TEST(test_store__history_of_an_invalid_key_returns_einvalid),
	    STORE_TEST(test_store__an_empty_prefix_survives_reopen),
	    STORE_TEST(test_store__a_readonly_store_refuses_writes_with_ereadonly),
	    STORE_TEST(test_store__a_failed_object_write_keeps_every_acknowledged_change),
	    STORE_TEST(test_store__a_full_disk_returns_enospc_and_keeps_every_acknowledged_change),
	    STORE_TEST(test_store__random_operations_match_a_model),
	};

	if (argc == 3 && !strcmp(argv[1], "fault-child"))
		return fault_child(argv[2]);

	return cmocka_run_group_tests_name("store", tests, sandbox_group_setup,
					   sandbox_group_teardown);
}
