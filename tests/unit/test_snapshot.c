/*
 * test_snapshot.c - the in-memory view of HEAD (gitkv/snapshot.h).
 *
 * The snapshot is reached through its store: each test writes through the
 * store and reads back what a directory listing or a stat would show, both
 * from the incrementally maintained snapshot and from one rebuilt from git
 * by reopening the store.
 */
#include "sandbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static gitkv_snapshot *snap_of(struct sandbox *sb)
{
	return gitkv_store_snapshot(sb->store);
}

static int do_mkdir(gitkv_store *store, const char *key)
{
	gitkv_op op = {.type = GITKV_OP_MKDIR, .key = key};

	return gitkv_store_apply(store, &op, NULL, NULL);
}

static gitkv_entry entry_of(struct sandbox *sb, const char *key)
{
	gitkv_entry e;

	assert_ok(gitkv_snapshot_lookup(snap_of(sb), key, &e));
	return e;
}

/* The committer time of `id`, read with libgit2. */
static int64_t commit_time(struct sandbox *sb, const gitkv_oid *id)
{
	git_repository *repo = sandbox_git(sb);
	git_commit *commit = NULL;
	int64_t t;

	assert_int_equal(git_commit_lookup(&commit, repo, (const git_oid *)id->id), 0);
	t = (int64_t)git_commit_time(commit);
	git_commit_free(commit);
	git_repository_free(repo);
	return t;
}

static void test_snapshot__the_root_of_an_empty_store_is_an_empty_directory(void **state)
{
	struct sandbox *sb = *state;
	gitkv_dirent *ents = NULL;
	size_t count = 99;
	gitkv_entry e = entry_of(sb, "");

	assert_int_equal(e.type, GITKV_TYPE_DIR);
	assert_int_equal(e.size, 0);
	assert_ok(gitkv_snapshot_list(snap_of(sb), "", &ents, &count));
	assert_int_equal(count, 0);
	gitkv_dirents_free(ents, count);
	assert_int_equal(gitkv_snapshot_count(snap_of(sb)), 0);
}

static void test_snapshot__lookup_of_the_root_is_a_directory(void **state)
{
	struct sandbox *sb = *state;
	gitkv_entry e;

	set_str(sb->store, "a", "1");
	set_str(sb->store, "d/b", "2");
	e = entry_of(sb, "");
	assert_int_equal(e.type, GITKV_TYPE_DIR);
	assert_int_equal(e.size, 2);
	assert_false(gitkv_oid_is_zero(&e.oid));
}

static void test_snapshot__lookup_of_a_missing_key_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;
	gitkv_entry e;

	set_str(sb->store, "a", "1");
	e.type = GITKV_TYPE_FILE;
	assert_gitkv(gitkv_snapshot_lookup(snap_of(sb), "b", &e), GITKV_ENOTFOUND);
	assert_int_equal(e.type, GITKV_TYPE_NONE);
	e.type = GITKV_TYPE_FILE;
	assert_gitkv(gitkv_snapshot_lookup(snap_of(sb), "a/b", &e), GITKV_ENOTFOUND);
	assert_int_equal(e.type, GITKV_TYPE_NONE);
}

static void test_snapshot__list_of_the_root_is_sorted(void **state)
{
	struct sandbox *sb = *state;
	static const char *const names[] = {"B", "a", "b", "c", "z"};
	static const gitkv_type types[] = {GITKV_TYPE_FILE, GITKV_TYPE_FILE, GITKV_TYPE_FILE,
					   GITKV_TYPE_DIR, GITKV_TYPE_DIR};
	gitkv_dirent *ents = NULL;
	size_t count = 0, i;

	set_str(sb->store, "b", "2");
	set_str(sb->store, "c/x", "3");
	set_str(sb->store, "a", "1");
	assert_ok(do_mkdir(sb->store, "z"));
	set_str(sb->store, "B", "0");
	assert_ok(gitkv_snapshot_list(snap_of(sb), "", &ents, &count));
	assert_int_equal(count, 5);
	for (i = 0; i < count; i++) {
		assert_string_equal(ents[i].name, names[i]);
		assert_int_equal(ents[i].entry.type, types[i]);
	}
	gitkv_dirents_free(ents, count);
}

/* Plain byte order: a prefix "a" sorts before "a-c" and "a.b", as ls shows it. */
static void test_snapshot__list_sorts_by_name_not_by_git_tree_order(void **state)
{
	struct sandbox *sb = *state;
	static const char *const names[] = {"a", "a-c", "a.b"};
	gitkv_dirent *ents = NULL;
	size_t count = 0, i;

	set_str(sb->store, "a.b", "1");
	set_str(sb->store, "a-c", "2");
	set_str(sb->store, "a/x", "3");
	assert_ok(gitkv_snapshot_list(snap_of(sb), "", &ents, &count));
	assert_int_equal(count, 3);
	for (i = 0; i < count; i++)
		assert_string_equal(ents[i].name, names[i]);
	gitkv_dirents_free(ents, count);
}

static void test_snapshot__list_of_a_prefix_gives_its_children_with_their_entries(void **state)
{
	struct sandbox *sb = *state;
	gitkv_dirent *ents = NULL;
	size_t count = 0;
	gitkv_oid want;

	set_str(sb->store, "d/one", "1");
	set_str(sb->store, "d/three", "333");
	set_str(sb->store, "d/sub/deep", "x");
	set_str(sb->store, "other", "not in d");
	assert_ok(gitkv_snapshot_list(snap_of(sb), "d", &ents, &count));
	assert_int_equal(count, 3);
	assert_string_equal(ents[0].name, "one");
	assert_int_equal(ents[0].entry.type, GITKV_TYPE_FILE);
	assert_int_equal(ents[0].entry.size, 1);
	assert_string_equal(ents[1].name, "sub");
	assert_int_equal(ents[1].entry.type, GITKV_TYPE_DIR);
	assert_int_equal(ents[1].entry.size, 1);
	assert_string_equal(ents[2].name, "three");
	assert_int_equal(ents[2].entry.size, 3);
	want = sandbox_blob_oid("333", 3);
	assert_true(gitkv_oid_equal(&ents[2].entry.oid, &want));
	gitkv_dirents_free(ents, count);
}

static void test_snapshot__list_of_an_empty_prefix_is_empty(void **state)
{
	struct sandbox *sb = *state;
	gitkv_dirent *ents = NULL;
	size_t count = 99;

	assert_ok(do_mkdir(sb->store, "e"));
	assert_ok(gitkv_snapshot_list(snap_of(sb), "e", &ents, &count));
	assert_int_equal(count, 0);
	gitkv_dirents_free(ents, count);
}

static void test_snapshot__list_of_a_value_returns_enotdir(void **state)
{
	struct sandbox *sb = *state;
	gitkv_dirent *ents = NULL;
	size_t count = 0;

	set_str(sb->store, "k", "v");
	assert_gitkv(gitkv_snapshot_list(snap_of(sb), "k", &ents, &count), GITKV_ENOTDIR);
}

static void test_snapshot__list_of_a_missing_prefix_returns_enotfound(void **state)
{
	struct sandbox *sb = *state;
	gitkv_dirent *ents = NULL;
	size_t count = 0;

	assert_gitkv(gitkv_snapshot_list(snap_of(sb), "nope", &ents, &count), GITKV_ENOTFOUND);
	set_str(sb->store, "d/k", "v");
	assert_gitkv(gitkv_snapshot_list(snap_of(sb), "d/nope", &ents, &count), GITKV_ENOTFOUND);
}

static void test_snapshot__count_is_the_number_of_values(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op link = {
	    .type = GITKV_OP_SET, .key = "l", .value = "a", .len = 1, .vtype = GITKV_TYPE_LINK};

	assert_int_equal(gitkv_snapshot_count(snap_of(sb)), 0);
	set_str(sb->store, "a", "1");
	set_str(sb->store, "b/c", "2");
	assert_ok(do_mkdir(sb->store, "d/e"));
	assert_int_equal(gitkv_snapshot_count(snap_of(sb)), 2);
	assert_ok(gitkv_store_apply(sb->store, &link, NULL, NULL));
	assert_int_equal(gitkv_snapshot_count(snap_of(sb)), 3);
	assert_ok(gitkv_store_delete(sb->store, "a", NULL, NULL));
	assert_int_equal(gitkv_snapshot_count(snap_of(sb)), 2);
	assert_ok(gitkv_store_rename(sb->store, "b", "d/e/b", NULL, NULL));
	assert_int_equal(gitkv_snapshot_count(snap_of(sb)), 2);
	sandbox_reopen(sb, NULL);
	assert_int_equal(gitkv_snapshot_count(snap_of(sb)), 2);
}

static void test_snapshot__head_and_generation_advance_by_one_per_commit(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store *other = sandbox_open(sb, NULL);
	gitkv_oid head;
	uint64_t g0, g;
	gitkv_result r;

	gitkv_snapshot_head(snap_of(sb), &head, &g0);
	assert_true(gitkv_oid_is_zero(&head));

	assert_ok(gitkv_store_set(sb->store, "a", "1", 1, NULL, &r));
	gitkv_snapshot_head(snap_of(sb), &head, &g);
	assert_int_equal(g, g0 + 1);
	assert_true(gitkv_oid_equal(&head, &r.commit));

	assert_ok(gitkv_store_set(sb->store, "a", "1", 1, NULL, &r)); /* unchanged */
	assert_gitkv(gitkv_store_delete(sb->store, "nope", NULL, NULL), GITKV_ENOTFOUND);
	gitkv_snapshot_head(snap_of(sb), &head, &g);
	assert_int_equal(g, g0 + 1);

	assert_ok(do_mkdir(sb->store, "d"));
	gitkv_snapshot_head(snap_of(sb), &head, &g);
	assert_int_equal(g, g0 + 2);

	assert_ok(gitkv_store_rename(sb->store, "a", "d/a", NULL, &r));
	gitkv_snapshot_head(snap_of(sb), &head, &g);
	assert_int_equal(g, g0 + 3);
	assert_true(gitkv_oid_equal(&head, &r.commit));

	/* A commit by another handle, found by refresh, is one more step. */
	assert_ok(gitkv_store_refresh(other));
	assert_ok(gitkv_store_set(other, "b", "2", 1, NULL, &r));
	assert_ok(gitkv_store_refresh(sb->store));
	gitkv_snapshot_head(snap_of(sb), &head, &g);
	assert_int_equal(g, g0 + 4);
	assert_true(gitkv_oid_equal(&head, &r.commit));
	gitkv_store_free(other);
}

static void test_snapshot__head_after_reopen_is_the_branch(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result r;
	gitkv_oid head;
	uint64_t g;

	assert_ok(gitkv_store_set(sb->store, "a", "1", 1, NULL, &r));
	sandbox_reopen(sb, NULL);
	gitkv_snapshot_head(snap_of(sb), &head, &g);
	assert_true(gitkv_oid_equal(&head, &r.commit));
}

static void test_snapshot__entry_sizes_are_value_bytes_and_child_counts(void **state)
{
	struct sandbox *sb = *state;
	int pass;

	set_str(sb->store, "five", "12345");
	set_str(sb->store, "empty", "");
	assert_ok(gitkv_store_set(sb->store, "bin", "\0\1\2\0", 4, NULL, NULL));
	set_str(sb->store, "d/a", "1");
	set_str(sb->store, "d/b", "22");
	assert_ok(do_mkdir(sb->store, "d/sub"));
	/* Once from the maintained snapshot, once from one rebuilt from git. */
	for (pass = 0; pass < 2; pass++) {
		gitkv_dirent *ents = NULL;
		size_t count = 0;

		assert_int_equal(entry_of(sb, "five").size, 5);
		assert_int_equal(entry_of(sb, "empty").size, 0);
		assert_int_equal(entry_of(sb, "bin").size, 4);
		assert_int_equal(entry_of(sb, "d").size, 3);
		assert_int_equal(entry_of(sb, "d/sub").size, 0);
		assert_int_equal(entry_of(sb, "").size, 4);
		assert_ok(gitkv_snapshot_list(snap_of(sb), "d", &ents, &count));
		assert_int_equal(count, 3);
		assert_int_equal(ents[0].entry.size, 1);
		assert_int_equal(ents[1].entry.size, 2);
		assert_int_equal(ents[2].entry.size, 0);
		gitkv_dirents_free(ents, count);
		sandbox_reopen(sb, NULL);
	}
}

static void test_snapshot__entries_carry_the_git_object_ids(void **state)
{
	struct sandbox *sb = *state;
	gitkv_entry e;
	gitkv_oid want = sandbox_blob_oid("value", 5);

	set_str(sb->store, "d/k", "value");
	e = entry_of(sb, "d/k");
	assert_true(gitkv_oid_equal(&e.oid, &want));
	sandbox_reopen(sb, NULL);
	e = entry_of(sb, "d/k");
	assert_true(gitkv_oid_equal(&e.oid, &want));
}

/*
 * Two commits in two different seconds: "first" at t1, "second" at t2 > t1.
 * Returns the two commit times read back from git.
 */
static void two_commits_in_two_seconds(struct sandbox *sb, const char *first, const char *second,
				       int64_t *t1, int64_t *t2)
{
	gitkv_result r1, r2;

	assert_ok(gitkv_store_set(sb->store, first, "1", 1, NULL, &r1));
	*t1 = commit_time(sb, &r1.commit);
	sandbox_wait_past(*t1);
	assert_ok(gitkv_store_set(sb->store, second, "2", 1, NULL, &r2));
	*t2 = commit_time(sb, &r2.commit);
	assert_true(*t2 > *t1);
}

static void test_snapshot__mtime_is_the_time_of_the_commit_that_last_changed_the_key(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store_options opts = sandbox_options();
	int64_t t1, t2;

	two_commits_in_two_seconds(sb, "first", "second", &t1, &t2);
	assert_int_equal(entry_of(sb, "first").mtime, t1);
	assert_int_equal(entry_of(sb, "second").mtime, t2);

	opts.mtimes = true;
	sandbox_reopen(sb, &opts);
	assert_int_equal(entry_of(sb, "first").mtime, t1);
	assert_int_equal(entry_of(sb, "second").mtime, t2);
}

static void test_snapshot__mtime_of_a_prefix_follows_the_last_change_below_it(void **state)
{
	struct sandbox *sb = *state;
	gitkv_store_options opts = sandbox_options();
	int64_t t1, t2;

	two_commits_in_two_seconds(sb, "d/k", "other", &t1, &t2);
	assert_int_equal(entry_of(sb, "d").mtime, t1);
	assert_int_equal(entry_of(sb, "d/k").mtime, t1);
	opts.mtimes = true;
	sandbox_reopen(sb, &opts);
	assert_int_equal(entry_of(sb, "d").mtime, t1);
	assert_int_equal(entry_of(sb, "d/k").mtime, t1);
	assert_int_equal(entry_of(sb, "other").mtime, t2);
}

/* ---- readers against a writer ---------------------------------------------------- */

struct reader {
	gitkv_snapshot *snap;
	atomic_int *stop;
	unsigned long reads;
	unsigned long torn; /* listings showing both or neither of x and y */
	unsigned long errors;
};

static void *read_root(void *arg)
{
	struct reader *r = arg;

	while (!atomic_load(r->stop)) {
		gitkv_dirent *ents = NULL;
		size_t count = 0, i, seen = 0;

		if (gitkv_snapshot_list(r->snap, "", &ents, &count)) {
			r->errors++;
			continue;
		}
		for (i = 0; i < count; i++)
			seen += !strcmp(ents[i].name, "x") || !strcmp(ents[i].name, "y");
		r->torn += seen != 1;
		r->reads++;
		gitkv_dirents_free(ents, count);
	}
	return NULL;
}

static void test_snapshot__readers_never_see_half_a_commit(void **state)
{
	struct sandbox *sb = *state;
	enum { NREADERS = 2, RENAMES = 100 };
	struct reader r[NREADERS];
	pthread_t th[NREADERS];
	atomic_int stop = 0;
	int i;

	set_str(sb->store, "x/a", "1");
	set_str(sb->store, "x/b/c", "2");
	memset(r, 0, sizeof(r));
	for (i = 0; i < NREADERS; i++) {
		r[i].snap = snap_of(sb);
		r[i].stop = &stop;
		assert_int_equal(pthread_create(&th[i], NULL, read_root, &r[i]), 0);
	}
	for (i = 0; i < RENAMES; i++)
		assert_ok(gitkv_store_rename(sb->store, i % 2 ? "y" : "x", i % 2 ? "x" : "y", NULL,
					     NULL));
	atomic_store(&stop, 1);
	for (i = 0; i < NREADERS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		print_message("reader %d: %lu listings\n", i, r[i].reads);
		assert_int_equal(r[i].errors, 0);
		assert_int_equal(r[i].torn, 0);
	}
	assert_int_equal(entry_of(sb, "x").type, GITKV_TYPE_DIR);
}

#define SNAPSHOT_TEST(name) cmocka_unit_test_setup_teardown(name, sandbox_setup, sandbox_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    SNAPSHOT_TEST(test_snapshot__the_root_of_an_empty_store_is_an_empty_directory),
	    SNAPSHOT_TEST(test_snapshot__lookup_of_the_root_is_a_directory),
	    SNAPSHOT_TEST(test_snapshot__lookup_of_a_missing_key_returns_enotfound),
	    SNAPSHOT_TEST(test_snapshot__list_of_the_root_is_sorted),
	    SNAPSHOT_TEST(test_snapshot__list_sorts_by_name_not_by_git_tree_order),
	    SNAPSHOT_TEST(test_snapshot__list_of_a_prefix_gives_its_children_with_their_entries),
	    SNAPSHOT_TEST(test_snapshot__list_of_an_empty_prefix_is_empty),
	    SNAPSHOT_TEST(test_snapshot__list_of_a_value_returns_enotdir),
	    SNAPSHOT_TEST(test_snapshot__list_of_a_missing_prefix_returns_enotfound),
	    SNAPSHOT_TEST(test_snapshot__count_is_the_number_of_values),
	    SNAPSHOT_TEST(test_snapshot__head_and_generation_advance_by_one_per_commit),
	    SNAPSHOT_TEST(test_snapshot__head_after_reopen_is_the_branch),
	    SNAPSHOT_TEST(test_snapshot__entry_sizes_are_value_bytes_and_child_counts),
	    SNAPSHOT_TEST(test_snapshot__entries_carry_the_git_object_ids),
	    SNAPSHOT_TEST(test_snapshot__mtime_is_the_time_of_the_commit_that_last_changed_the_key),
	    SNAPSHOT_TEST(test_snapshot__mtime_of_a_prefix_follows_the_last_change_below_it),
	    SNAPSHOT_TEST(test_snapshot__readers_never_see_half_a_commit),
	};

	return cmocka_run_group_tests_name("snapshot", tests, sandbox_group_setup,
					   sandbox_group_teardown);
}
