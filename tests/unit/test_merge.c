/*
 * test_merge.c - the per-key deterministic merge (gitkv/merge.h).
 *
 * Each test builds a small history by hand: several nodes (bare stores
 * opened with different node names, cluster.c) start from a common commit,
 * each commits its own changes - forged with libgit2 when the committer
 * time matters, since the rule depends on it and the store stamps time(NULL)
 * - and then one node fetches the other and integrates it. A conflict test
 * merges both ways from the same two heads and checks that both nodes build
 * the same tree: that is what makes a fleet converge.
 *
 * After every merge: git fsck --strict is clean, the snapshot equals the new
 * HEAD tree, and every value the merge changed reached the subscribers with
 * origin EXTERNAL.
 *
 * The last tests are randomized, with fixed seeds (printed; GITKV_TEST_SEED
 * overrides): three nodes and a hub take random operations and random syncs
 * and must end on one tree; and three nodes that each commit a burst of
 * forged changes from a common base must end with, for every key, the value
 * of the newest last change (committer time, then node name, then commit id).
 */
#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Forged committer times: well in the past, so every real commit is newer. */
#define T0 1700000000

/* ---- helpers ------------------------------------------------------------ */


/* What every merge must leave behind; `before` is the node's HEAD before it. */
static void check_merged_at(struct node *n, const gitkv_oid *before, const gitkv_merge_result *mr,
			    const char *file, int line)
{
	gitkv_oid head = node_head(n);

	sandbox_oid_equal_at(mr->commit, head, file, line);
	if (cluster_fsck(n->path) != 0) {
		print_error("git fsck --strict failed on node %s\n", n->name);
		_fail(file, line);
	}
	node_assert_snapshot_is_head(n, file, line);
	if (mr->changed)
		node_assert_stream_reported(n, before, &head, file, line);
	_assert_int_equal(recorder_count(&n->rec, GITKV_ORIGIN_LOCAL), 0, file, line);
}

/* `dst` fetches `src` and integrates it; asserts success and check_merged. */
static void merge_from_at(struct node *dst, struct node *src, gitkv_merge_result *mr,
			  const char *file, int line)
{
	gitkv_oid before = node_head(dst);

	sandbox_assert_code(node_pull_url(dst, src->name, src->path, mr), 0, "node_pull_url", file,
			    line);
	check_merged_at(dst, &before, mr, file, line);
}
#define merge_from(dst, src, mr) merge_from_at((dst), (src), (mr), __FILE__, __LINE__)

/*
 * Merge both ways from the current heads: `a` integrates `b`'s head and `b`
 * integrates `a`'s (fetched before either merges). Both must build the same
 * tree and name the same conflicts.
 */
static void merge_both_ways_at(struct node *a, struct node *b, gitkv_merge_result *ra,
			       gitkv_merge_result *rb, const char *file, int line)
{
	gitkv_oid ah = node_head(a), bh = node_head(b), fetched;

	recorder_reset(&a->rec);
	recorder_reset(&b->rec);
	sandbox_assert_code(gitkv_remote_fetch(a->store, b->name, b->path, NULL, &fetched), 0,
			    "fetch b into a", file, line);
	sandbox_oid_equal_at(fetched, bh, file, line);
	sandbox_assert_code(gitkv_remote_fetch(b->store, a->name, a->path, NULL, &fetched), 0,
			    "fetch a into b", file, line);
	sandbox_oid_equal_at(fetched, ah, file, line);
	sandbox_assert_code(gitkv_store_integrate(a->store, &bh, b->name, ra), 0, "a integrates b",
			    file, line);
	sandbox_assert_code(gitkv_store_integrate(b->store, &ah, a->name, rb), 0, "b integrates a",
			    file, line);
	check_merged_at(a, &ah, ra, file, line);
	check_merged_at(b, &bh, rb, file, line);
	sandbox_oid_equal_at(node_tree(a), node_tree(b), file, line);
	_assert_int_equal(ra->nconflicts, rb->nconflicts, file, line);
	for (size_t i = 0; i < ra->nconflicts; i++) {
		size_t j;

		for (j = 0; j < rb->nconflicts && strcmp(ra->conflicts[i], rb->conflicts[j]); j++)
			;
		if (j == rb->nconflicts) {
			print_error("conflict \"%s\" named by one side only\n", ra->conflicts[i]);
			_fail(file, line);
		}
	}
}
#define merge_both_ways(a, b, ra, rb) merge_both_ways_at((a), (b), (ra), (rb), __FILE__, __LINE__)

static bool has_conflict(const gitkv_merge_result *mr, const char *key)
{
	for (size_t i = 0; i < mr->nconflicts; i++)
		if (!strcmp(mr->conflicts[i], key))
			return true;
	return false;
}

/* Assert that `key` is absent from the node's HEAD. */
#define assert_absent(n, key) assert_type((n)->store, (key), GITKV_TYPE_NONE)

/*
 * Nodes "a" and "b" on one common commit (forged on a at T0, fast-forwarded
 * into b): app/k1..k3 = base1..3, p = base-p (a value), d/x = base-x.
 */
static void common_base(struct cluster *c, struct node **a, struct node **b)
{
	gitkv_merge_result mr;

	*a = cluster_node(c, "a");
	*b = cluster_node(c, "b");
	forge(*a, T0, "a", "set app/k1=base1", "set app/k2=base2", "set app/k3=base3",
	      "set p=base-p", "set d/x=base-x", NULL);
	merge_from(*b, *a, &mr);
	assert_true(mr.fast_forward);
	gitkv_merge_result_free(&mr);
}

/* ---- one-sided changes --------------------------------------------------- */

static void test_merge__a_key_changed_only_by_them_takes_their_value(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;

	common_base(*state, &a, &b);
	/* Their change is older than ours: one-sided changes ignore time. */
	forge(a, T0 + 10, "a", "set app/k1=from-a", NULL);
	forge(b, T0 + 20, "b", "set app/k2=from-b", NULL);
	merge_from(b, a, &mr);
	assert_true(mr.changed);
	assert_false(mr.fast_forward);
	assert_int_equal(mr.nconflicts, 0);
	assert_value_str(b->store, "app/k1", "from-a");
	assert_value_str(b->store, "app/k2", "from-b");
	assert_value_str(b->store, "app/k3", "base3");
	gitkv_merge_result_free(&mr);
}

static void test_merge__a_key_changed_only_by_us_keeps_our_value(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;

	common_base(*state, &a, &b);
	/* Our change is older than theirs. */
	forge(b, T0 + 10, "b", "set app/k1=from-b", NULL);
	forge(a, T0 + 20, "a", "set app/k2=from-a", NULL);
	merge_from(b, a, &mr);
	assert_true(mr.changed);
	assert_int_equal(mr.nconflicts, 0);
	assert_value_str(b->store, "app/k1", "from-b");
	assert_value_str(b->store, "app/k2", "from-a");
	gitkv_merge_result_free(&mr);
}

static void test_merge__a_key_deleted_only_by_them_is_deleted(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "del app/k1", NULL);
	forge(b, T0 + 20, "b", "set app/k2=from-b", NULL);
	merge_from(b, a, &mr);
	assert_int_equal(mr.nconflicts, 0);
	assert_absent(b, "app/k1");
	assert_value_str(b->store, "app/k2", "from-b");
	gitkv_merge_result_free(&mr);
}

static void test_merge__changes_made_through_the_store_merge_per_key(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;

	common_base(*state, &a, &b);
	set_str(a->store, "app/k1", "from-a");
	assert_ok(gitkv_store_delete(a->store, "d/x", NULL, NULL));
	set_str(b->store, "app/k2", "from-b");
	set_str(b->store, "new/key", "from-b");
	merge_from(a, b, &mr);
	assert_int_equal(mr.nconflicts, 0);
	assert_value_str(a->store, "app/k1", "from-a");
	assert_value_str(a->store, "app/k2", "from-b");
	assert_value_str(a->store, "new/key", "from-b");
	assert_absent(a, "d/x");
	gitkv_merge_result_free(&mr);
}

static void test_merge__the_same_change_on_both_sides_is_no_conflict(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "set app/k1=same", "del app/k3", NULL);
	forge(b, T0 + 20, "b", "set app/k1=same", "del app/k3", "set app/k2=from-b", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_int_equal(ra.nconflicts, 0);
	assert_value_str(a->store, "app/k1", "same");
	assert_value_str(a->store, "app/k2", "from-b");
	assert_absent(a, "app/k3");
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

/* ---- two-sided conflicts ------------------------------------------------- */

static void test_merge__a_conflict_goes_to_the_newer_change(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	/* a's change is newer; b's node name is the larger one and must not matter. */
	forge(b, T0 + 10, "b", "set app/k1=from-b", NULL);
	forge(a, T0 + 20, "a", "set app/k1=from-a", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_value_str(a->store, "app/k1", "from-a");
	assert_value_str(b->store, "app/k1", "from-a");
	assert_true(has_conflict(&ra, "app/k1"));
	assert_true(has_conflict(&rb, "app/k1"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__the_last_change_is_counted_per_key_not_per_branch(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	/* a's branch is the newest (T0+30), but its change to app/k1 is the oldest. */
	forge(a, T0 + 10, "a", "set app/k1=from-a", NULL);
	forge(b, T0 + 20, "b", "set app/k1=from-b", NULL);
	forge(a, T0 + 30, "a", "set app/k2=from-a", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_value_str(a->store, "app/k1", "from-b");
	assert_value_str(a->store, "app/k2", "from-a");
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__a_tie_on_time_goes_to_the_larger_node_name(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;
	gitkv_oid base, ca, cb;

	common_base(*state, &a, &b);
	base = node_head(b);
	ca = forge(a, T0 + 10, "a", "set app/k1=from-a", NULL);
	/*
	 * Make b's commit id the smaller one, so that only the node name can
	 * make b win (the commit id is the next tie-breaker).
	 */
	for (forge_salt = 1; forge_salt < 64; forge_salt++) {
		cb = forge(b, T0 + 10, "b", "set app/k1=from-b", NULL);
		if (memcmp(cb.id, ca.id, GITKV_OID_RAWSZ) < 0)
			break;
		node_reset(b, &base);
	}
	forge_salt = 0;
	assert_true(memcmp(cb.id, ca.id, GITKV_OID_RAWSZ) < 0);
	merge_both_ways(a, b, &ra, &rb);
	assert_value_str(a->store, "app/k1", "from-b");
	assert_true(has_conflict(&ra, "app/k1"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__a_tie_on_time_and_node_goes_to_the_larger_commit_id(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;
	gitkv_oid ca, cb;

	common_base(*state, &a, &b);
	/* Both commits claim node "x" at the same second. */
	ca = forge(a, T0 + 10, "x", "set app/k1=from-a", NULL);
	cb = forge(b, T0 + 10, "x", "set app/k1=from-b", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_value_str(a->store, "app/k1",
			 memcmp(ca.id, cb.id, GITKV_OID_RAWSZ) > 0 ? "from-a" : "from-b");
	assert_true(has_conflict(&ra, "app/k1"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__a_newer_delete_beats_an_older_modify(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	forge(b, T0 + 10, "b", "set app/k1=from-b", NULL);
	forge(a, T0 + 20, "a", "del app/k1", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_absent(a, "app/k1");
	assert_absent(b, "app/k1");
	assert_true(has_conflict(&ra, "app/k1"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__a_newer_modify_beats_an_older_delete(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "del app/k1", NULL);
	forge(b, T0 + 20, "b", "set app/k1=from-b", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_value_str(a->store, "app/k1", "from-b");
	assert_value_str(b->store, "app/k1", "from-b");
	assert_true(has_conflict(&ra, "app/k1"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

/* ---- values against prefixes --------------------------------------------- */

static void test_merge__a_newer_prefix_replaces_a_value_at_the_same_path(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	forge(b, T0 + 10, "b", "set p=from-b", NULL);
	forge(a, T0 + 20, "a", "del p", "set p/x=ax", "set p/y=ay", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_type(b->store, "p", GITKV_TYPE_DIR);
	assert_value_str(b->store, "p/x", "ax");
	assert_value_str(b->store, "p/y", "ay");
	assert_true(has_conflict(&rb, "p"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__a_newer_value_replaces_a_whole_prefix(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	/* b adds a key inside d; a, later, replaces all of d with a value. */
	forge(b, T0 + 10, "b", "set d/y=from-b", NULL);
	forge(a, T0 + 20, "a", "del d", "set d=from-a", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_value_str(b->store, "d", "from-a");
	assert_absent(b, "d/x");
	assert_absent(b, "d/y");
	assert_true(has_conflict(&rb, "d"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__a_newer_change_inside_a_prefix_keeps_the_whole_prefix(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "del d", "set d=from-a", NULL);
	forge(b, T0 + 20, "b", "set d/y=from-b", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_type(a->store, "d", GITKV_TYPE_DIR);
	assert_value_str(a->store, "d/x", "base-x");
	assert_value_str(a->store, "d/y", "from-b");
	assert_true(has_conflict(&ra, "d"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__an_empty_prefix_against_a_value_follows_the_rule(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "set q=from-a", NULL);
	forge(b, T0 + 20, "b", "mkdir q", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_type(a->store, "q", GITKV_TYPE_DIR);
	assert_type(b->store, "q", GITKV_TYPE_DIR);
	assert_true(has_conflict(&ra, "q"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__prefixes_created_on_both_sides_merge_key_by_key(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "set new/a=from-a", "mkdir empty", NULL);
	forge(b, T0 + 20, "b", "set new/b=from-b", "mkdir empty", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_int_equal(ra.nconflicts, 0);
	assert_value_str(a->store, "new/a", "from-a");
	assert_value_str(a->store, "new/b", "from-b");
	assert_type(a->store, "empty", GITKV_TYPE_DIR);
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

/* ---- what the merge commit says ---------------------------------------- */

static void test_merge__conflicts_are_named_in_the_result_and_the_commit(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;
	gitkv_oid ours, theirs, parents[2];
	char *msg, summary[128], node[64] = "";
	git_message_trailer_array trailers = {0};

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "set app/k1=secret-a1", "set app/k2=secret-a2",
	      "set app/k3=secret-a3", NULL);
	forge(b, T0 + 20, "b", "set app/k1=secret-b1", "set app/k2=secret-b2", "set other=secret-b",
	      NULL);
	ours = node_head(b);
	theirs = node_head(a);
	merge_from(b, a, &mr);
	assert_int_equal(mr.nconflicts, 2);
	assert_true(has_conflict(&mr, "app/k1"));
	assert_true(has_conflict(&mr, "app/k2"));

	assert_int_equal(node_commit_parents(b, &mr.commit, parents, 2), 2);
	assert_oid_equal(parents[0], ours);
	assert_oid_equal(parents[1], theirs);
	msg = node_commit_message(b, &mr.commit);
	snprintf(summary, sizeof(summary), "%.*s", (int)strcspn(msg, "\n"), msg);
	assert_string_equal(summary, "merge a");
	assert_non_null(strstr(msg, "app/k1"));
	assert_non_null(strstr(msg, "app/k2"));
	assert_null(strstr(msg, "app/k3"));
	assert_null(strstr(msg, "other"));
	assert_null(strstr(msg, "secret")); /* values never go into messages */
	assert_int_equal(git_message_trailers(&trailers, msg), 0);
	for (size_t i = 0; i < trailers.count; i++)
		if (!strcmp(trailers.trailers[i].key, "Gitkv-Node"))
			snprintf(node, sizeof(node), "%s", trailers.trailers[i].value);
	git_message_trailer_array_free(&trailers);
	assert_string_equal(node, "b");
	free(msg);
	gitkv_merge_result_free(&mr);
}

static void test_merge__a_merge_without_conflicts_names_none(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;
	char *msg;

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "set app/k1=from-a", NULL);
	forge(b, T0 + 20, "b", "set app/k2=from-b", NULL);
	merge_from(b, a, &mr);
	assert_int_equal(mr.nconflicts, 0);
	assert_null(mr.conflicts);
	msg = node_commit_message(b, &mr.commit);
	assert_null(strstr(msg, "app/k1"));
	assert_null(strstr(msg, "onflict"));
	free(msg);
	gitkv_merge_result_free(&mr);
}

/* ---- symmetry ------------------------------------------------------------ */

static void test_merge__merging_either_way_gives_the_same_tree(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;

	common_base(*state, &a, &b);
	/* One of everything: one-sided, same change, newer/older, ties, clashes. */
	forge(a, T0 + 10, "a", "set app/k1=a1", "set app/k2=a2", "set only/a=a", "set same=s",
	      "del d", "set d=a-d", NULL);
	forge(b, T0 + 10, "b", "set app/k2=b2", "set only/b=b", "set same=s", "set d/y=b-y",
	      "set p/inner=b", NULL);
	forge(a, T0 + 30, "a", "set app/k3=a3", "set .gitkv/meta/app/k3=1800000000", NULL);
	forge(b, T0 + 20, "b", "set app/k3=b3", "set .gitkv/meta/app/k3=1900000000", "del app/k1",
	      NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_oid_equal(repo_tree_of(a->path, &ra.commit), repo_tree_of(b->path, &rb.commit));
	/* And the merge commits themselves differ only in their parents' order. */
	assert_false(gitkv_oid_equal(&ra.commit, &rb.commit));
	assert_value_str(a->store, "app/k2", "b2"); /* tie at T0+10: "b" > "a" */
	assert_value_str(a->store, "app/k3", "a3"); /* T0+30 > T0+20 */
	assert_absent(a, "app/k1");		    /* b's delete at T0+20 > a's set at T0+10 */
	assert_value_str(a->store, "only/a", "a");
	assert_value_str(a->store, "only/b", "b");
	assert_value_str(a->store, "same", "s");
	assert_type(a->store, "p", GITKV_TYPE_DIR); /* one-sided */
	assert_type(a->store, "d", GITKV_TYPE_DIR); /* tie at T0+10: "b" wins */
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

/* ---- fast-forward and nothing to do ---------------------------------------- */

static void test_merge__an_unborn_branch_fast_forwards(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	gitkv_merge_result mr;

	set_str(a->store, "app/k1", "v1");
	set_str(a->store, "app/k2", "v2");
	merge_from(b, a, &mr);
	assert_true(mr.changed);
	assert_true(mr.fast_forward);
	assert_int_equal(mr.nconflicts, 0);
	assert_oid_equal(mr.commit, node_head(a));
	assert_oid_equal(repo_head(b->path), node_head(a));
	assert_value_str(b->store, "app/k1", "v1");
	assert_value_str(b->store, "app/k2", "v2");
	gitkv_merge_result_free(&mr);
}

static void test_merge__a_branch_behind_fast_forwards_without_a_merge_commit(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;

	common_base(*state, &a, &b);
	set_str(a->store, "app/k1", "newer");
	assert_ok(gitkv_store_delete(a->store, "d/x", NULL, NULL));
	merge_from(b, a, &mr);
	assert_true(mr.changed);
	assert_true(mr.fast_forward);
	assert_oid_equal(mr.commit, node_head(a));
	assert_value_str(b->store, "app/k1", "newer");
	assert_absent(b, "d/x");
	gitkv_merge_result_free(&mr);
}

static void test_merge__integrating_a_contained_commit_changes_nothing(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;
	gitkv_oid old, head;

	common_base(*state, &a, &b);
	/* The same commit again. */
	merge_from(b, a, &mr);
	assert_false(mr.changed);
	assert_false(mr.fast_forward);
	assert_oid_equal(mr.commit, node_head(b));
	assert_int_equal(recorder_count(&b->rec, GITKV_ORIGIN_EXTERNAL), 0);
	gitkv_merge_result_free(&mr);

	/* An ancestor of our branch. */
	old = node_head(b);
	set_str(b->store, "app/k1", "ours");
	head = node_head(b);
	recorder_reset(&b->rec);
	assert_ok(gitkv_store_integrate(b->store, &old, "a", &mr));
	assert_false(mr.changed);
	assert_false(mr.fast_forward);
	assert_oid_equal(mr.commit, head);
	assert_oid_equal(node_head(b), head);
	assert_int_equal(recorder_count(&b->rec, GITKV_ORIGIN_EXTERNAL), 0);
	gitkv_merge_result_free(&mr);
}

static void test_merge__integrating_an_unknown_commit_returns_enotfound(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;
	gitkv_oid unknown, head;

	common_base(*state, &a, &b);
	head = node_head(b);
	assert_ok(gitkv_oid_parse(&unknown, "0123456789abcdef0123456789abcdef01234567"));
	assert_gitkv(gitkv_store_integrate(b->store, &unknown, "a", &mr), GITKV_ENOTFOUND);
	assert_oid_equal(node_head(b), head);
}

/* ---- unrelated histories --------------------------------------------------- */

static void test_merge__unrelated_histories_merge_per_key(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	gitkv_merge_result ra, rb;
	gitkv_result wa, wb;
	int64_t ta, tb;

	set_str(a->store, "x/a", "from-a");
	set_str(a->store, "same", "v");
	assert_ok(gitkv_store_set(a->store, "shared/k", "from-a", 6, NULL, &wa));
	set_str(b->store, "x/b", "from-b");
	set_str(b->store, "same", "v");
	assert_ok(gitkv_store_set(b->store, "shared/k", "from-b", 6, NULL, &wb));
	ta = node_commit_time(a, &wa.commit);
	tb = node_commit_time(b, &wb.commit);
	merge_both_ways(a, b, &ra, &rb);
	assert_value_str(a->store, "x/a", "from-a");
	assert_value_str(a->store, "x/b", "from-b");
	assert_value_str(a->store, "same", "v");
	/* Newer wins; in the same second, node "b" > "a". */
	assert_value_str(a->store, "shared/k", ta > tb ? "from-a" : "from-b");
	assert_int_equal(ra.nconflicts, 1);
	assert_true(has_conflict(&ra, "shared/k"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

static void test_merge__unrelated_forged_histories_follow_the_time_rule(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	gitkv_merge_result ra, rb;

	forge(a, T0 + 20, "a", "set k=from-a", "set ka=a", NULL);
	forge(b, T0 + 10, "b", "set k=from-b", "set kb=b", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_value_str(a->store, "k", "from-a");
	assert_value_str(a->store, "ka", "a");
	assert_value_str(a->store, "kb", "b");
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

/* ---- metadata -------------------------------------------------------------- */

static void test_merge__metadata_changed_on_one_side_is_taken(void **state)
{
	struct node *a, *b;
	gitkv_merge_result mr;
	gitkv_op op = {.type = GITKV_OP_SET,
		       .key = ".gitkv/meta/app/k1",
		       .value = "1900000000",
		       .len = 10,
		       .flags = GITKV_OP_INTERNAL};
	gitkv_entry e;
	gitkv_oid want = sandbox_blob_oid("1900000000", 10);

	common_base(*state, &a, &b);
	assert_ok(gitkv_store_apply(a->store, &op, NULL, NULL));
	set_str(b->store, "app/k2", "from-b");
	merge_from(b, a, &mr);
	assert_int_equal(mr.nconflicts, 0);
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(b->store), ".gitkv/meta/app/k1", &e));
	assert_int_equal(e.type, GITKV_TYPE_FILE);
	assert_oid_equal(e.oid, want);
	gitkv_merge_result_free(&mr);
}

static void test_merge__conflicting_metadata_goes_to_the_newer_change(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb;
	gitkv_entry e;
	gitkv_oid want = sandbox_blob_oid("1900000000", 10);

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "set .gitkv/meta/app/k1=1800000000", NULL);
	forge(b, T0 + 20, "b", "set .gitkv/meta/app/k1=1900000000", NULL);
	merge_both_ways(a, b, &ra, &rb);
	assert_ok(gitkv_snapshot_lookup(gitkv_store_snapshot(a->store), ".gitkv/meta/app/k1", &e));
	assert_oid_equal(e.oid, want);
	assert_true(has_conflict(&ra, ".gitkv/meta/app/k1"));
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
}

/* ---- more than two nodes ---------------------------------------------------- */

/*
 * Three nodes change one key at the same second; node names decide, and the
 * largest ("c") must win whichever pair merges first. Here a and c merge
 * first (c wins), on c or on a, then b brings that in: b's own change (node
 * "b") must lose to c's, not beat a's, which lost already.
 */
static void a_tie_winner_keeps_winning(struct cluster *c, bool merge_on_a)
{
	struct node *a, *b, *n3;
	gitkv_merge_result mr;

	common_base(c, &a, &b);
	n3 = cluster_node(c, "c");
	merge_from(n3, a, &mr);
	gitkv_merge_result_free(&mr);
	forge(a, T0 + 10, "a", "set app/k1=from-a", NULL);
	forge(b, T0 + 10, "b", "set app/k1=from-b", NULL);
	forge(n3, T0 + 10, "c", "set app/k1=from-c", NULL);
	if (merge_on_a) {
		merge_from(a, n3, &mr);
		assert_value_str(a->store, "app/k1", "from-c");
	} else {
		merge_from(n3, a, &mr);
		assert_value_str(n3->store, "app/k1", "from-c");
	}
	gitkv_merge_result_free(&mr);
	merge_from(b, merge_on_a ? a : n3, &mr);
	assert_value_str(b->store, "app/k1", "from-c");
	gitkv_merge_result_free(&mr);
}

static void test_merge__a_value_that_won_a_tie_keeps_winning_later_merges(void **state)
{
	a_tie_winner_keeps_winning(*state, false);
}

static void test_merge__a_value_that_won_a_tie_as_second_parent_keeps_winning(void **state)
{
	a_tie_winner_keeps_winning(*state, true);
}

/* The same with distinct times: the newest of three wins in any merge order. */
static void test_merge__the_newest_of_three_wins_in_any_merge_order(void **state)
{
	static const int orders[3][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}};
	struct cluster *c = *state;

	for (int o = 0; o < 3; o++) {
		struct node *n[3];
		gitkv_merge_result mr;

		cluster_reset(c);
		n[0] = cluster_node(c, "a");
		n[1] = cluster_node(c, "b");
		n[2] = cluster_node(c, "c");
		forge(n[0], T0, "a", "set k=base", NULL);
		merge_from(n[1], n[0], &mr);
		gitkv_merge_result_free(&mr);
		merge_from(n[2], n[0], &mr);
		gitkv_merge_result_free(&mr);
		forge(n[0], T0 + 30, "a", "set k=from-a", NULL); /* the newest */
		forge(n[1], T0 + 20, "b", "set k=from-b", NULL);
		forge(n[2], T0 + 10, "c", "set k=from-c", NULL);
		/* First two merge on the second, then the third merges that. */
		merge_from(n[orders[o][1]], n[orders[o][0]], &mr);
		gitkv_merge_result_free(&mr);
		merge_from(n[orders[o][2]], n[orders[o][1]], &mr);
		gitkv_merge_result_free(&mr);
		assert_value_str(n[orders[o][2]]->store, "k", "from-a");
	}
}

/* ---- randomized ---------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
	/* xorshift64*: the same sequence for the same seed on every platform. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 2685821657736338717ULL) >> 33) % n;
}

static void rng_seed(uint64_t seed)
{
	rng_state = seed * 0x9E3779B97F4A7C15ULL + 1;
}

/* The seeds to run: GITKV_TEST_SEED alone if set, else the fixed ones. */
static size_t test_seeds(const uint64_t *fixed, size_t n, uint64_t *out)
{
	const char *env = getenv("GITKV_TEST_SEED");

	if (env && *env) {
		out[0] = strtoull(env, NULL, 0);
		return 1;
	}
	memcpy(out, fixed, n * sizeof(*out));
	return n;
}

static void random_key(char *out, size_t size)
{
	snprintf(out, size, "p%u/k%u", rnd(3), rnd(7));
}

static bool acceptable_refusal(int rc)
{
	return rc == GITKV_ENOTFOUND || rc == GITKV_EEXISTS || rc == GITKV_ENOTDIR ||
	       rc == GITKV_EISDIR || rc == GITKV_ENOTEMPTY || rc == GITKV_EINVALID;
}

/* One random operation through the store on node `n`; `i` makes values unique. */
static void random_op(struct node *n, unsigned int i)
{
	char key[64], to[64], value[64];
	gitkv_op op = {0};
	int rc;

	random_key(key, sizeof(key));
	switch (rnd(10)) {
	case 0:
	case 1:
	case 2:
	case 3:
		op.type = GITKV_OP_SET;
		snprintf(value, sizeof(value), "v%u-%s", i, n->name);
		op.value = value;
		op.len = strlen(value);
		break;
	case 4:
	case 5:
		op.type = GITKV_OP_DELETE;
		break;
	case 6:
		op.type = GITKV_OP_MKDIR;
		if (rnd(2))
			snprintf(key, sizeof(key), "p%u", rnd(4));
		break;
	case 7:
		op.type = GITKV_OP_RMDIR;
		if (rnd(2))
			snprintf(key, sizeof(key), "p%u", rnd(4));
		break;
	default:
		op.type = GITKV_OP_RENAME;
		if (rnd(4) == 0) {
			snprintf(key, sizeof(key), "p%u", rnd(4));
			snprintf(to, sizeof(to), "p%u", rnd(4));
		} else {
			random_key(to, sizeof(to));
		}
		op.to = to;
		break;
	}
	op.key = key;
	rc = gitkv_store_apply(n->store, &op, NULL, NULL);
	if (rc != 0 && !acceptable_refusal(rc))
		fail_msg("node %s: op %d on \"%s\" failed: %s (%s)", n->name, op.type, key,
			 gitkv_error_name(rc), gitkv_error_last());
}

static bool all_trees_equal(struct cluster *c)
{
	gitkv_oid hub = repo_head(c->hub), want = repo_tree_of(c->hub, &hub);

	for (size_t i = 0; i < c->n; i++) {
		gitkv_oid t = node_tree(&c->nodes[i]);

		if (!gitkv_oid_equal(&t, &want))
			return false;
	}
	return true;
}

/* Sync passes over the nodes until every tree is the hub's (at most 10). */
static void quiesce(struct cluster *c)
{
	int pass;

	for (pass = 0; pass < 10 && !(pass > 0 && all_trees_equal(c)); pass++)
		for (size_t i = 0; i < c->n; i++)
			assert_ok(node_sync_url(&c->nodes[i], "hub", c->hub));
	if (!all_trees_equal(c))
		fail_msg("no convergence after %d sync passes", pass);
}

static void random_run(struct cluster *c, uint64_t seed)
{
	struct node *n[3];

	print_message("random run: seed %llu (GITKV_TEST_SEED=%llu repeats it)\n",
		      (unsigned long long)seed, (unsigned long long)seed);
	rng_seed(seed);
	cluster_reset(c);
	cluster_hub(c);
	n[0] = cluster_node(c, "n1");
	n[1] = cluster_node(c, "n2");
	n[2] = cluster_node(c, "n3");
	for (unsigned int i = 0; i < 200; i++) {
		struct node *me = n[rnd(3)];

		if (rnd(6) == 0) {
			/* Star (the hub) or mesh (another node's repository). */
			unsigned int peer = rnd(4);
			int rc;

			if (peer == 3 || n[peer] == me)
				rc = node_sync_url(me, "hub", c->hub);
			else
				rc = node_sync_url(me, n[peer]->name, n[peer]->path);
			if (rc != 0)
				fail_msg("seed %llu op %u: sync of %s failed: %s (%s)",
					 (unsigned long long)seed, i, me->name,
					 gitkv_error_name(rc), gitkv_error_last());
		} else {
			random_op(me, i);
		}
	}
	quiesce(c);
	assert_int_equal(cluster_fsck(c->hub), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(cluster_fsck(n[i]->path), 0);
		assert_snapshot_is_head(n[i]);
	}
}

static void test_merge__random_operations_and_syncs_converge(void **state)
{
	static const uint64_t fixed[] = {1, 2, 3, 20240601};
	uint64_t seeds[4];
	size_t nseeds = test_seeds(fixed, 4, seeds);

	for (size_t s = 0; s < nseeds; s++)
		random_run(*state, seeds[s]);
}

/*
 * The rule, checked key by key. From a common base of 21 keys, three nodes
 * each forge a burst of commits (times close together, so ties happen),
 * recording for every key its last change (time, node, commit) and final
 * value. Each node then syncs once with the hub, in a random order, and
 * once more to catch up. Every key must hold the value of the greatest last
 * change, or the base value if no node touched it.
 */
#define BURST_KEYS    21
#define BURST_COMMITS 8

struct last_change {
	bool touched;
	int64_t time;
	gitkv_oid commit;
	char value[64]; /* "" = deleted */
};

static int stamp_cmp(const struct last_change *x, const char *xnode, const struct last_change *y,
		     const char *ynode)
{
	int cmp;

	if (x->time != y->time)
		return x->time > y->time ? 1 : -1;
	if ((cmp = strcmp(xnode, ynode)))
		return cmp;
	return memcmp(x->commit.id, y->commit.id, GITKV_OID_RAWSZ);
}

static void burst_key(char *out, size_t size, int k)
{
	snprintf(out, size, "p%d/k%d", k / 7, k % 7);
}

static void burst_run(struct cluster *c, uint64_t seed)
{
	struct node *n[3];
	struct last_change last[3][BURST_KEYS];
	char cur[3][BURST_KEYS][64]; /* each node's values, "" = deleted */
	int order[3] = {0, 1, 2};
	gitkv_merge_result mr;
	char key[32];

	print_message("burst run: seed %llu (GITKV_TEST_SEED=%llu repeats it)\n",
		      (unsigned long long)seed, (unsigned long long)seed);
	rng_seed(seed);
	cluster_reset(c);
	cluster_hub(c);
	n[0] = cluster_node(c, "n1");
	n[1] = cluster_node(c, "n2");
	n[2] = cluster_node(c, "n3");
	memset(last, 0, sizeof(last));

	/* The base: every key, forged on n1, pushed to the hub, pulled by the others. */
	{
		char edits[BURST_KEYS][64];

		for (int k = 0; k < BURST_KEYS; k++) {
			burst_key(key, sizeof(key), k);
			snprintf(edits[k], sizeof(edits[k]), "set %s=base-%d", key, k);
		}
		forge(n[0], T0, "n1", edits[0], edits[1], edits[2], edits[3], edits[4], edits[5],
		      edits[6], edits[7], edits[8], edits[9], edits[10], edits[11], edits[12],
		      edits[13], edits[14], edits[15], edits[16], edits[17], edits[18], edits[19],
		      edits[20], NULL);
	}
	assert_ok(node_push_url(n[0], "hub", c->hub));
	for (int i = 1; i < 3; i++) {
		assert_ok(node_pull_url(n[i], "hub", c->hub, &mr));
		assert_true(mr.fast_forward);
		gitkv_merge_result_free(&mr);
	}
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < BURST_KEYS; k++)
			snprintf(cur[i][k], sizeof(cur[i][k]), "base-%d", k);

	/* The bursts; a key counts as changed by a commit if it differs from its parent. */
	for (int i = 0; i < 3; i++) {
		int64_t t = T0 + 100 + rnd(2);

		for (int j = 0; j < BURST_COMMITS; j++) {
			char edit[3][96], before[3][64];
			int keys[3], nedits = 1 + (int)rnd(3);
			gitkv_oid id;

			for (int e = 0; e < nedits; e++) {
				int k = (int)rnd(BURST_KEYS);

				keys[e] = k;
				snprintf(before[e], sizeof(before[e]), "%s", cur[i][k]);
				burst_key(key, sizeof(key), k);
				if (cur[i][k][0] && rnd(4) == 0) {
					snprintf(edit[e], sizeof(edit[e]), "del %s", key);
					cur[i][k][0] = '\0';
				} else {
					snprintf(cur[i][k], sizeof(cur[i][k]), "%s-c%d-e%d",
						 n[i]->name, j, e);
					snprintf(edit[e], sizeof(edit[e]), "set %s=%s", key,
						 cur[i][k]);
				}
			}
			id = forge(n[i], t, n[i]->name, edit[0], nedits > 1 ? edit[1] : NULL,
				   nedits > 2 ? edit[2] : NULL, NULL);
			for (int e = 0; e < nedits; e++) {
				int k = keys[e];
				bool first = true;

				for (int f = 0; f < e; f++)
					first &= keys[f] != k;
				if (!first || !strcmp(before[e], cur[i][k]))
					continue; /* a set and a delete that cancelled out */
				last[i][k].touched = true;
				last[i][k].time = t;
				last[i][k].commit = id;
				snprintf(last[i][k].value, sizeof(last[i][k].value), "%s",
					 cur[i][k]);
			}
			t += rnd(2);
		}
	}

	/* Sync once each in a random order, then once more to catch up. */
	for (int i = 2; i > 0; i--) {
		int j = (int)rnd((uint32_t)i + 1), tmp = order[i];

		order[i] = order[j];
		order[j] = tmp;
	}
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < 3; i++)
			assert_ok(node_sync_url(n[order[i]], "hub", c->hub));
	assert_true(all_trees_equal(c));

	for (int k = 0; k < BURST_KEYS; k++) {
		int best = -1;

		for (int i = 0; i < 3; i++)
			if (last[i][k].touched &&
			    (best < 0 ||
			     stamp_cmp(&last[i][k], n[i]->name, &last[best][k], n[best]->name) > 0))
				best = i;
		burst_key(key, sizeof(key), k);
		for (int i = 0; i < 3; i++) {
			char want[64];

			if (best < 0)
				snprintf(want, sizeof(want), "base-%d", k);
			else
				snprintf(want, sizeof(want), "%s", last[best][k].value);
			if (!want[0]) {
				gitkv_entry e;

				if (gitkv_snapshot_lookup(gitkv_store_snapshot(n[i]->store), key,
							  &e) != GITKV_ENOTFOUND)
					fail_msg("seed %llu: %s on %s: want deleted (by %s)",
						 (unsigned long long)seed, key, n[i]->name,
						 n[best]->name);
			} else {
				char *buf = NULL;
				size_t len = 0;

				if (gitkv_store_get(n[i]->store, key, &buf, &len, NULL) != 0 ||
				    strcmp(buf, want))
					fail_msg("seed %llu: %s on %s is \"%s\", want \"%s\"",
						 (unsigned long long)seed, key, n[i]->name,
						 buf ? buf : "(absent)", want);
				free(buf);
			}
		}
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(cluster_fsck(n[i]->path), 0);
}

static void test_merge__bursts_from_three_nodes_resolve_to_the_newest_change(void **state)
{
	/* 33 and 70 make all three nodes change one key in the same second. */
	static const uint64_t fixed[] = {1, 2, 3, 4, 5, 6, 33, 70};
	uint64_t seeds[8];
	size_t nseeds = test_seeds(fixed, 8, seeds);

	for (size_t s = 0; s < nseeds; s++)
		burst_run(*state, seeds[s]);
}


/*
 * Criss-cross: a and b each merge the other's change at once, so later
 * merges between them have two best common ancestors (a's first change and
 * b's). Each then deletes its own key. Against either base alone, one of the
 * deleted keys looks unchanged on one side and added on the other: it must
 * not come back.
 */
static void test_merge__after_criss_cross_merges_deletes_on_both_sides_stay(void **state)
{
	struct node *a, *b;
	gitkv_merge_result ra, rb, mr;

	common_base(*state, &a, &b);
	forge(a, T0 + 10, "a", "set ta=1", NULL);
	forge(b, T0 + 10, "b", "set tb=1", NULL);
	merge_both_ways(a, b, &ra, &rb);
	gitkv_merge_result_free(&ra);
	gitkv_merge_result_free(&rb);
	forge(a, T0 + 20, "a", "del ta", NULL);
	forge(b, T0 + 20, "b", "del tb", NULL);
	merge_from(b, a, &mr);
	assert_absent(b, "ta");
	assert_absent(b, "tb");
	assert_int_equal(mr.nconflicts, 0);
	gitkv_merge_result_free(&mr);
}

#define MERGE_TEST(name) cmocka_unit_test_setup_teardown(name, cluster_setup, cluster_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    MERGE_TEST(test_merge__after_criss_cross_merges_deletes_on_both_sides_stay),
	    MERGE_TEST(test_merge__a_key_changed_only_by_them_takes_their_value),
	    MERGE_TEST(test_merge__a_key_changed_only_by_us_keeps_our_value),
	    MERGE_TEST(test_merge__a_key_deleted_only_by_them_is_deleted),
	    MERGE_TEST(test_merge__changes_made_through_the_store_merge_per_key),
	    MERGE_TEST(test_merge__the_same_change_on_both_sides_is_no_conflict),
	    MERGE_TEST(test_merge__a_conflict_goes_to_the_newer_change),
	    MERGE_TEST(test_merge__the_last_change_is_counted_per_key_not_per_branch),
	    MERGE_TEST(test_merge__a_tie_on_time_goes_to_the_larger_node_name),
	    MERGE_TEST(test_merge__a_tie_on_time_and_node_goes_to_the_larger_commit_id),
	    MERGE_TEST(test_merge__a_newer_delete_beats_an_older_modify),
	    MERGE_TEST(test_merge__a_newer_modify_beats_an_older_delete),
	    MERGE_TEST(test_merge__a_newer_prefix_replaces_a_value_at_the_same_path),
	    MERGE_TEST(test_merge__a_newer_value_replaces_a_whole_prefix),
	    MERGE_TEST(test_merge__a_newer_change_inside_a_prefix_keeps_the_whole_prefix),
	    MERGE_TEST(test_merge__an_empty_prefix_against_a_value_follows_the_rule),
	    MERGE_TEST(test_merge__prefixes_created_on_both_sides_merge_key_by_key),
	    MERGE_TEST(test_merge__conflicts_are_named_in_the_result_and_the_commit),
	    MERGE_TEST(test_merge__a_merge_without_conflicts_names_none),
	    MERGE_TEST(test_merge__merging_either_way_gives_the_same_tree),
	    MERGE_TEST(test_merge__an_unborn_branch_fast_forwards),
	    MERGE_TEST(test_merge__a_branch_behind_fast_forwards_without_a_merge_commit),
	    MERGE_TEST(test_merge__integrating_a_contained_commit_changes_nothing),
	    MERGE_TEST(test_merge__integrating_an_unknown_commit_returns_enotfound),
	    MERGE_TEST(test_merge__unrelated_histories_merge_per_key),
	    MERGE_TEST(test_merge__unrelated_forged_histories_follow_the_time_rule),
	    MERGE_TEST(test_merge__metadata_changed_on_one_side_is_taken),
	    MERGE_TEST(test_merge__conflicting_metadata_goes_to_the_newer_change),
	    MERGE_TEST(test_merge__a_value_that_won_a_tie_keeps_winning_later_merges),
	    MERGE_TEST(test_merge__a_value_that_won_a_tie_as_second_parent_keeps_winning),
	    MERGE_TEST(test_merge__the_newest_of_three_wins_in_any_merge_order),
	    MERGE_TEST(test_merge__random_operations_and_syncs_converge),
	    MERGE_TEST(test_merge__bursts_from_three_nodes_resolve_to_the_newest_change),
	};

	(void)argc;
	(void)argv;
	return cmocka_run_group_tests_name("merge", tests, sandbox_group_setup,
					   sandbox_group_teardown);
}
