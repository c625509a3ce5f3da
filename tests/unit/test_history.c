/*
 * test_history.c - the store's past (core/history.c): the tree of any
 * revision (gitkv_store_list_at) and the bounded history walk
 * (gitkv_store_history_bounded).
 *
 * Each test arranges a fresh bare store (sandbox.c), makes a few commits
 * through the public API, and checks what a listing at some revision
 * holds against what git holds at that revision.
 */
#include "sandbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small helpers ----------------------------------------------------- */

#define MAX_ENTS 16

struct listed {
	char names[MAX_ENTS][64];
	gitkv_entry entries[MAX_ENTS];
	size_t n;
	size_t stop_after; /* return 7 after this many (0: never) */
};

static int collect(const char *name, const gitkv_entry *e, void *payload)
{
	struct listed *l = payload;

	if (l->n < MAX_ENTS) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
		l->entries[l->n] = *e;
	}
	l->n++;
	return l->stop_after && l->n == l->stop_after ? 7 : 0;
}

/* The index of `name` in `l`, failing the test if it is not there. */
static size_t index_of(const struct listed *l, const char *name)
{
	for (size_t i = 0; i < l->n && i < MAX_ENTS; i++) {
		if (strcmp(l->names[i], name) == 0)
			return i;
	}
	fail_msg("'%s' is not in the listing", name);
	return 0;
}

static gitkv_result set_value(gitkv_store *store, const char *key, const char *value,
			      gitkv_type vtype)
{
	gitkv_op op = {
	    .type = GITKV_OP_SET, .key = key, .value = value, .len = strlen(value), .vtype = vtype};
	gitkv_result r;

	assert_ok(gitkv_store_apply(store, &op, NULL, &r));
	assert_true(r.committed);
	return r;
}

static const char *hex_of(char hex[GITKV_OID_HEXSZ + 1], const gitkv_oid *oid)
{
	return gitkv_oid_fmt(hex, oid);
}

/* The commit time git records for `commit`. */
static int64_t commit_time(struct sandbox *sb, const gitkv_oid *commit)
{
	git_repository *repo = sandbox_git(sb);
	git_commit *c = NULL;
	int64_t t;

	assert_int_equal(git_commit_lookup(&c, repo, (const git_oid *)commit), 0);
	t = git_commit_time(c);
	git_commit_free(c);
	git_repository_free(repo);
	return t;
}

static int count_commit(const gitkv_commit_info *c, void *payload)
{
	(void)c;
	(*(size_t *)payload)++;
	return 0;
}

/* ---- listing a revision's tree ---------------------------------------------- */

static void test_history__list_at_an_old_commit_shows_the_tree_as_it_was(void **state)
{
	struct sandbox *sb = *state;
	struct listed then = {0}, now = {0};
	char hex[GITKV_OID_HEXSZ + 1];
	gitkv_result c1;
	size_t i;

	set_value(sb->store, "app/host", "db1", GITKV_TYPE_FILE);
	set_value(sb->store, "app/run", "#!/bin/sh\n", GITKV_TYPE_EXEC);
	set_value(sb->store, "app/link", "host", GITKV_TYPE_LINK);
	c1 = set_value(sb->store, "app/sub/deep", "1", GITKV_TYPE_FILE);
	assert_ok(gitkv_store_delete(sb->store, "app/host", NULL, NULL));
	set_value(sb->store, "app/new", "later", GITKV_TYPE_FILE);

	assert_ok(gitkv_store_list_at(sb->store, hex_of(hex, &c1.commit), "app", collect, &then));
	assert_int_equal(then.n, 4);
	i = index_of(&then, "host");
	assert_int_equal(then.entries[i].type, GITKV_TYPE_FILE);
	assert_int_equal(then.entries[i].size, 3);
	assert_oid_equal(then.entries[i].oid, sandbox_blob_oid("db1", 3));
	assert_int_equal(then.entries[i].mtime, commit_time(sb, &c1.commit));
	i = index_of(&then, "run");
	assert_int_equal(then.entries[i].type, GITKV_TYPE_EXEC);
	assert_int_equal(then.entries[i].size, 10);
	i = index_of(&then, "link");
	assert_int_equal(then.entries[i].type, GITKV_TYPE_LINK);
	assert_int_equal(then.entries[i].size, 4);
	i = index_of(&then, "sub");
	assert_int_equal(then.entries[i].type, GITKV_TYPE_DIR);
	assert_int_equal(then.entries[i].size, 1); /* a prefix's size: its entries */

	assert_ok(gitkv_store_list_at(sb->store, "HEAD", "app", collect, &now));
	assert_int_equal(now.n, 4);
	index_of(&now, "new");
	for (i = 0; i < now.n; i++)
		assert_string_not_equal(now.names[i], "host");
}

static void test_history__list_at_the_root_lists_the_top_level(void **state)
{
	struct sandbox *sb = *state;
	struct listed l = {0};

	set_value(sb->store, "b", "1", GITKV_TYPE_FILE);
	set_value(sb->store, "a/x", "2", GITKV_TYPE_FILE);
	assert_ok(gitkv_store_list_at(sb->store, "HEAD", "", collect, &l));
	assert_int_equal(l.n, 2);
	/* in the tree's order */
	assert_string_equal(l.names[0], "a");
	assert_int_equal(l.entries[0].type, GITKV_TYPE_DIR);
	assert_string_equal(l.names[1], "b");
}

static void test_history__list_at_shows_the_reserved_tree_like_the_snapshot(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {.type = GITKV_OP_SET,
		       .key = ".gitkv/meta/k",
		       .value = "ttl 60\n",
		       .len = 7,
		       .flags = GITKV_OP_INTERNAL};
	struct listed l = {0};
	gitkv_dirent *ents = NULL;
	size_t n = 0;

	set_value(sb->store, "k", "v", GITKV_TYPE_FILE);
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, NULL));
	assert_ok(gitkv_store_list_at(sb->store, "HEAD", "", collect, &l));
	assert_ok(gitkv_snapshot_list(gitkv_store_snapshot(sb->store), "", &ents, &n));
	assert_int_equal(l.n, n);
	assert_int_equal(l.entries[index_of(&l, GITKV_RESERVED)].type, GITKV_TYPE_DIR);
	gitkv_dirents_free(ents, n);

	memset(&l, 0, sizeof(l));
	assert_ok(gitkv_store_list_at(sb->store, "HEAD", ".gitkv/meta", collect, &l));
	assert_int_equal(l.n, 1);
	assert_string_equal(l.names[0], "k");
}

static void test_history__list_at_takes_git_revision_syntax(void **state)
{
	struct sandbox *sb = *state;
	char hex[GITKV_OID_HEXSZ + 1], abbrev[8];
	gitkv_result c1;
	git_repository *repo;
	git_object *target = NULL;
	git_oid tag_id;
	struct listed l = {0};

	c1 = set_value(sb->store, "d/one", "1", GITKV_TYPE_FILE);
	set_value(sb->store, "d/two", "2", GITKV_TYPE_FILE);
	set_value(sb->store, "d/three", "3", GITKV_TYPE_FILE);

	repo = sandbox_git(sb);
	assert_int_equal(
	    git_object_lookup(&target, repo, (const git_oid *)&c1.commit, GIT_OBJECT_COMMIT), 0);
	assert_int_equal(git_tag_create_lightweight(&tag_id, repo, "v1", target, 0), 0);
	git_object_free(target);
	git_repository_free(repo);

	snprintf(abbrev, sizeof(abbrev), "%.7s", hex_of(hex, &c1.commit));
	assert_ok(gitkv_store_list_at(sb->store, hex, "d", collect, &l));
	assert_int_equal(l.n, 1);
	memset(&l, 0, sizeof(l));
	assert_ok(gitkv_store_list_at(sb->store, abbrev, "d", collect, &l));
	assert_int_equal(l.n, 1);
	memset(&l, 0, sizeof(l));
	assert_ok(gitkv_store_list_at(sb->store, "v1", "d", collect, &l));
	assert_int_equal(l.n, 1);
	memset(&l, 0, sizeof(l));
	assert_ok(gitkv_store_list_at(sb->store, "HEAD~1", "d", collect, &l));
	assert_int_equal(l.n, 2);
	memset(&l, 0, sizeof(l));
	assert_ok(gitkv_store_list_at(sb->store, "HEAD", "d", collect, &l));
	assert_int_equal(l.n, 3);
}

static void test_history__list_at_of_an_empty_prefix_lists_nothing(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = {.type = GITKV_OP_MKDIR, .key = "empty"};
	struct listed l = {0};

	assert_ok(gitkv_store_apply(sb->store, &op, NULL, NULL));
	assert_ok(gitkv_store_list_at(sb->store, "HEAD", "empty", collect, &l));
	assert_int_equal(l.n, 0);
}

static void test_history__list_at_reports_what_it_cannot_list(void **state)
{
	struct sandbox *sb = *state;
	struct listed l = {0};

	/* an unborn branch has no revision at all */
	assert_gitkv(gitkv_store_list_at(sb->store, "HEAD", "", collect, &l), GITKV_ENOTFOUND);
	set_value(sb->store, "dir/value", "v", GITKV_TYPE_FILE);
	assert_gitkv(gitkv_store_list_at(sb->store, "no-such-rev", "", collect, &l),
		     GITKV_ENOTFOUND);
	assert_gitkv(gitkv_store_list_at(sb->store, "0123456789abcdef0123456789abcdef01234567", "",
					 collect, &l),
		     GITKV_ENOTFOUND);
	assert_gitkv(gitkv_store_list_at(sb->store, "HEAD~5", "", collect, &l), GITKV_ENOTFOUND);
	assert_gitkv(gitkv_store_list_at(sb->store, "HEAD", "missing", collect, &l),
		     GITKV_ENOTFOUND);
	assert_gitkv(gitkv_store_list_at(sb->store, "HEAD", "dir/value", collect, &l),
		     GITKV_ENOTDIR);
	assert_gitkv(gitkv_store_list_at(sb->store, "HEAD", "dir//x", collect, &l), GITKV_EINVALID);
	assert_int_equal(l.n, 0);
}

static void test_history__list_at_stops_when_the_callback_returns_non_zero(void **state)
{
	struct sandbox *sb = *state;
	struct listed l = {.stop_after = 2};

	set_value(sb->store, "p/a", "1", GITKV_TYPE_FILE);
	set_value(sb->store, "p/b", "2", GITKV_TYPE_FILE);
	set_value(sb->store, "p/c", "3", GITKV_TYPE_FILE);
	assert_int_equal(gitkv_store_list_at(sb->store, "HEAD", "p", collect, &l), 7);
	assert_int_equal(l.n, 2);
}

/* ---- the bounded history walk ------------------------------------------------- */

static void test_history__a_bounded_walk_examines_at_most_that_many_commits(void **state)
{
	struct sandbox *sb = *state;
	size_t n;
	char v[8];

	set_value(sb->store, "k", "old", GITKV_TYPE_FILE);
	for (int i = 0; i < 5; i++) {
		snprintf(v, sizeof(v), "%d", i);
		set_value(sb->store, "noise", v, GITKV_TYPE_FILE);
	}
	/* six commits: the newest five are noise, the first set k */
	n = 0;
	assert_ok(gitkv_store_history_bounded(sb->store, "k", 0, 5, count_commit, &n));
	assert_int_equal(n, 0);
	n = 0;
	assert_ok(gitkv_store_history_bounded(sb->store, "k", 0, 6, count_commit, &n));
	assert_int_equal(n, 1);
	n = 0;
	assert_ok(gitkv_store_history_bounded(sb->store, "k", 0, 0, count_commit, &n));
	assert_int_equal(n, 1);
	n = 0;
	assert_ok(gitkv_store_history_bounded(sb->store, "noise", 2, 0, count_commit, &n));
	assert_int_equal(n, 2);
}

static void test_history__a_bounded_walk_finds_what_the_full_walk_finds(void **state)
{
	struct sandbox *sb = *state;
	size_t full = 0, bounded = 0;

	set_value(sb->store, "k", "1", GITKV_TYPE_FILE);
	set_value(sb->store, "other", "x", GITKV_TYPE_FILE);
	set_value(sb->store, "k", "2", GITKV_TYPE_FILE);
	set_value(sb->store, "k", "2", GITKV_TYPE_EXEC); /* a mode change is a change */
	assert_ok(gitkv_store_delete(sb->store, "k", NULL, NULL));
	assert_ok(gitkv_store_history(sb->store, "k", 0, count_commit, &full));
	assert_ok(gitkv_store_history_bounded(sb->store, "k", 0, 100, count_commit, &bounded));
	assert_int_equal(full, 4);
	assert_int_equal(bounded, full);
}

#define HISTORY_TEST(name) cmocka_unit_test_setup_teardown(name, sandbox_setup, sandbox_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    HISTORY_TEST(test_history__list_at_an_old_commit_shows_the_tree_as_it_was),
	    HISTORY_TEST(test_history__list_at_the_root_lists_the_top_level),
	    HISTORY_TEST(test_history__list_at_shows_the_reserved_tree_like_the_snapshot),
	    HISTORY_TEST(test_history__list_at_takes_git_revision_syntax),
	    HISTORY_TEST(test_history__list_at_of_an_empty_prefix_lists_nothing),
	    HISTORY_TEST(test_history__list_at_reports_what_it_cannot_list),
	    HISTORY_TEST(test_history__list_at_stops_when_the_callback_returns_non_zero),
	    HISTORY_TEST(test_history__a_bounded_walk_examines_at_most_that_many_commits),
	    HISTORY_TEST(test_history__a_bounded_walk_finds_what_the_full_walk_finds),
	};

	return cmocka_run_group_tests_name("history", tests, sandbox_group_setup,
					   sandbox_group_teardown);
}
