/*
 * test_meta.c - per-key metadata: TTLs, leases, the expiry index and the
 * expire operation (gitkv/meta.h), each in a fresh bare store.
 */
#include "sandbox.h"

#include <gitkv/meta.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The summary line of the branch's head commit, copied into `out`. */
static void head_summary(struct sandbox *sb, char *out, size_t size)
{
	git_repository *repo = sandbox_git(sb);
	git_commit *c = sandbox_head_commit(repo);

	snprintf(out, size, "%s", git_commit_summary(c));
	git_commit_free(c);
	git_repository_free(repo);
}

static void assert_summary(struct sandbox *sb, const char *want)
{
	char got[512];

	head_summary(sb, got, sizeof(got));
	assert_string_equal(got, want);
}

static void test_parse_format(void **state)
{
	gitkv_meta m = { .expires = 1732400000, .ttl = 60 }, back;
	char buf[128];
	size_t n = gitkv_meta_format(buf, sizeof(buf), &m);

	(void)state;
	assert_string_equal(buf, "expires 1732400000\nttl 60\n");
	assert_ok(gitkv_meta_parse(&back, buf, n));
	assert_int_equal(back.expires, m.expires);
	assert_int_equal(back.ttl, m.ttl);
	/* unknown names are kept out of the way, not errors */
	assert_ok(gitkv_meta_parse(&back, "mode 0600\nttl 5\n", 16));
	assert_int_equal(back.ttl, 5);
	assert_int_equal(back.expires, 0);
	assert_gitkv(gitkv_meta_parse(&back, "expires soon\n", 13), GITKV_EINVALID);
	assert_gitkv(gitkv_meta_parse(&back, "garbage\n", 8), GITKV_EINVALID);
	m = (gitkv_meta){ 0 };
	assert_int_equal(gitkv_meta_format(buf, sizeof(buf), &m), 0);
}

static void test_reserved_component(void **state)
{
	struct sandbox *sb = *state;

	assert_gitkv(gitkv_store_set(sb->store, "a/.gitkv", "x", 1, NULL, NULL), GITKV_EINVALID);
	assert_gitkv(gitkv_store_set(sb->store, "a/.gitkv/b", "x", 1, NULL, NULL), GITKV_EINVALID);
	assert_gitkv(gitkv_store_set(sb->store, ".gitkv/meta/a", "x", 1, NULL, NULL),
		     GITKV_EINVALID);
	assert_int_equal(sandbox_count_commits(sb), 0);
}

static void test_ttl_on_value(void **state)
{
	struct sandbox *sb = *state;
	int64_t before = time(NULL);
	gitkv_result r;
	gitkv_meta m;

	set_str(sb->store, "sessions/abc", "user=1");
	assert_ok(gitkv_store_set_ttl(sb->store, "sessions/abc", 60, NULL, &r));
	assert_true(r.committed);
	assert_summary(sb, "ttl sessions/abc 60s");
	assert_ok(gitkv_store_meta(sb->store, "sessions/abc", &m));
	assert_int_equal(m.ttl, 60);
	assert_true(m.expires >= before + 60 && m.expires <= time(NULL) + 61);
	assert_int_equal(gitkv_store_expiry(sb->store, "sessions/abc"), m.expires);
	assert_int_equal(gitkv_store_next_expiry(sb->store), m.expires);
	assert_type(sb->store, ".gitkv/meta/sessions/abc", GITKV_TYPE_FILE);
	assert_false(gitkv_store_is_expired(sb->store, "sessions/abc", time(NULL)));
	assert_true(gitkv_store_is_expired(sb->store, "sessions/abc", m.expires));

	/* the same TTL again within the same second changes nothing */
	/* rewriting the value keeps its expiry */
	set_str(sb->store, "sessions/abc", "user=2");
	assert_int_equal(gitkv_store_expiry(sb->store, "sessions/abc"), m.expires);

	/* setting the TTL again renews it */
	sandbox_wait_past(time(NULL));
	assert_ok(gitkv_store_set_ttl(sb->store, "sessions/abc", 60, NULL, &r));
	assert_true(r.committed);
	assert_true(gitkv_store_expiry(sb->store, "sessions/abc") > m.expires);

	/* 0 removes it, and the metadata tree with it */
	assert_ok(gitkv_store_set_ttl(sb->store, "sessions/abc", 0, NULL, &r));
	assert_true(r.committed);
	assert_summary(sb, "ttl sessions/abc off");
	assert_int_equal(gitkv_store_expiry(sb->store, "sessions/abc"), 0);
	assert_int_equal(gitkv_store_next_expiry(sb->store), 0);
	assert_type(sb->store, ".gitkv", GITKV_TYPE_NONE);
	assert_ok(gitkv_store_set_ttl(sb->store, "sessions/abc", 0, NULL, &r));
	assert_false(r.committed);
	assert_value_str(sb->store, "sessions/abc", "user=2");
	assert_int_equal(sandbox_fsck(sb), 0);
}

static void test_ttl_errors(void **state)
{
	struct sandbox *sb = *state;
	size_t commits;

	set_str(sb->store, "k", "v");
	commits = sandbox_count_commits(sb);
	assert_gitkv(gitkv_store_set_ttl(sb->store, "missing", 5, NULL, NULL), GITKV_ENOTFOUND);
	assert_gitkv(gitkv_store_set_ttl(sb->store, "k", -1, NULL, NULL), GITKV_EINVALID);
	assert_gitkv(gitkv_store_set_ttl(sb->store, "k", GITKV_TTL_MAX + 1, NULL, NULL),
		     GITKV_EINVALID);
	assert_gitkv(gitkv_store_set_ttl(sb->store, ".gitkv/meta", 5, NULL, NULL), GITKV_EINVALID);
	assert_int_equal(sandbox_count_commits(sb), commits);
}

static void test_set_with_ttl(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op op = { .type = GITKV_OP_SET, .key = "a/b", .value = "v", .len = 1, .ttl = 30 };
	gitkv_result r;
	gitkv_meta m;

	assert_ok(gitkv_store_apply(sb->store, &op, NULL, &r));
	assert_true(r.committed);
	assert_int_equal(sandbox_count_commits(sb), 1); /* value and TTL: one commit */
	assert_ok(gitkv_store_meta(sb->store, "a/b", &m));
	assert_int_equal(m.ttl, 30);
	assert_summary(sb, "set a/b");
}

static void test_delete_and_rename_carry_metadata(void **state)
{
	struct sandbox *sb = *state;
	int64_t exp;

	set_str(sb->store, "x/one", "1");
	set_str(sb->store, "x/two", "2");
	assert_ok(gitkv_store_set_ttl(sb->store, "x/one", 100, NULL, NULL));
	assert_ok(gitkv_store_set_ttl(sb->store, "x/two", 200, NULL, NULL));
	exp = gitkv_store_expiry(sb->store, "x/one");

	/* a renamed value keeps its expiry */
	assert_ok(gitkv_store_rename(sb->store, "x/one", "y/one", NULL, NULL));
	assert_int_equal(gitkv_store_expiry(sb->store, "y/one"), exp);
	assert_int_equal(gitkv_store_expiry(sb->store, "x/one"), 0);
	assert_type(sb->store, ".gitkv/meta/x/one", GITKV_TYPE_NONE);
	assert_type(sb->store, ".gitkv/meta/y/one", GITKV_TYPE_FILE);

	/* a renamed prefix takes its values' metadata along */
	assert_ok(gitkv_store_rename(sb->store, "x", "z", NULL, NULL));
	assert_int_equal(gitkv_store_expiry(sb->store, "x/two"), 0);
	assert_true(gitkv_store_expiry(sb->store, "z/two") > exp);
	assert_type(sb->store, ".gitkv/meta/x", GITKV_TYPE_NONE);

	/* a deleted value's metadata goes in the same commit */
	assert_ok(gitkv_store_delete(sb->store, "z/two", NULL, NULL));
	assert_int_equal(gitkv_store_expiry(sb->store, "z/two"), 0);
	assert_type(sb->store, ".gitkv/meta/z", GITKV_TYPE_NONE);
	assert_ok(gitkv_store_delete(sb->store, "y/one", NULL, NULL));
	assert_type(sb->store, ".gitkv", GITKV_TYPE_NONE);
	assert_int_equal(gitkv_store_next_expiry(sb->store), 0);
	assert_int_equal(sandbox_fsck(sb), 0);
}

static void test_lease_directory(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op mk = { .type = GITKV_OP_MKDIR, .key = "services/api" };
	gitkv_meta m;
	int64_t first;

	assert_ok(gitkv_store_apply(sb->store, &mk, NULL, NULL));
	assert_ok(gitkv_store_set_ttl(sb->store, "services/api", 30, NULL, NULL));
	assert_type(sb->store, ".gitkv/meta/services/api/.gitkv", GITKV_TYPE_FILE);
	assert_ok(gitkv_store_meta(sb->store, "services/api", &m));
	assert_int_equal(m.ttl, 30);
	assert_int_equal(m.expires, 0); /* a prefix does not expire itself */

	set_str(sb->store, "services/api/host1", "10.0.0.1:80");
	first = gitkv_store_expiry(sb->store, "services/api/host1");
	assert_true(first >= time(NULL) + 29);
	assert_ok(gitkv_store_meta(sb->store, "services/api/host1", &m));
	assert_int_equal(m.ttl, 30);

	/* each write renews it (a heartbeat) */
	sandbox_wait_past(time(NULL));
	set_str(sb->store, "services/api/host1", "10.0.0.1:81");
	assert_true(gitkv_store_expiry(sb->store, "services/api/host1") > first);

	/* the nearest lease wins; values outside have none */
	assert_ok(gitkv_store_apply(sb->store, &(gitkv_op){ .type = GITKV_OP_MKDIR,
							     .key = "services/api/canary" },
				    NULL, NULL));
	assert_ok(gitkv_store_set_ttl(sb->store, "services/api/canary", 5, NULL, NULL));
	set_str(sb->store, "services/api/canary/h", "x");
	assert_ok(gitkv_store_meta(sb->store, "services/api/canary/h", &m));
	assert_int_equal(m.ttl, 5);
	set_str(sb->store, "services/other", "y");
	assert_int_equal(gitkv_store_expiry(sb->store, "services/other"), 0);

	/* renaming a value into a lease directory gives it the lease */
	assert_ok(gitkv_store_rename(sb->store, "services/other", "services/api/host2", NULL,
				     NULL));
	assert_true(gitkv_store_expiry(sb->store, "services/api/host2") > 0);

	/* removing the lease leaves the values' expiries alone */
	assert_ok(gitkv_store_set_ttl(sb->store, "services/api", 0, NULL, NULL));
	assert_type(sb->store, ".gitkv/meta/services/api/.gitkv", GITKV_TYPE_NONE);
	assert_true(gitkv_store_expiry(sb->store, "services/api/host1") > 0);
	assert_int_equal(sandbox_fsck(sb), 0);
}

static int64_t change_origin = -1;
static char change_paths[1024];

static void on_change(const gitkv_change_batch *batch, void *payload)
{
	(void)payload;
	change_origin = batch->origin;
	change_paths[0] = '\0';
	for (size_t i = 0; i < batch->count; i++) {
		strncat(change_paths, batch->changes[i].path,
			sizeof(change_paths) - strlen(change_paths) - 2);
		strcat(change_paths, ";");
	}
}

static void test_expire(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result r;
	size_t n = 99;
	int64_t exp;

	set_str(sb->store, "s/a", "1");
	set_str(sb->store, "s/b", "2");
	set_str(sb->store, "s/keep", "3");
	assert_ok(gitkv_store_set_ttl(sb->store, "s/a", 1, NULL, NULL));
	assert_ok(gitkv_store_set_ttl(sb->store, "s/b", 1, NULL, NULL));
	assert_ok(gitkv_store_set_ttl(sb->store, "s/keep", 3600, NULL, NULL));
	exp = gitkv_store_next_expiry(sb->store);
	assert_true(exp > 0 && exp <= time(NULL) + 2);

	/* nothing is due yet: no commit */
	assert_ok(gitkv_store_expire(sb->store, time(NULL) - 1, &n, &r));
	assert_int_equal(n, 0);
	assert_false(r.committed);

	assert_ok(gitkv_store_subscribe(sb->store, on_change, NULL));
	sandbox_wait_past(exp);
	assert_true(gitkv_store_is_expired(sb->store, "s/a", time(NULL)));
	assert_gitkv(gitkv_store_meta(sb->store, "s/a", &(gitkv_meta){ 0 }), GITKV_ENOTFOUND);
	assert_ok(gitkv_store_expire(sb->store, time(NULL), &n, &r));
	assert_int_equal(n, 2);
	assert_true(r.committed);
	assert_summary(sb, "expire s/a, s/b");
	assert_int_equal(change_origin, GITKV_ORIGIN_INDIRECT);
	assert_non_null(strstr(change_paths, "s/a;"));
	assert_type(sb->store, "s/a", GITKV_TYPE_NONE);
	assert_type(sb->store, "s/b", GITKV_TYPE_NONE);
	assert_type(sb->store, ".gitkv/meta/s/a", GITKV_TYPE_NONE);
	assert_value_str(sb->store, "s/keep", "3");
	assert_true(gitkv_store_next_expiry(sb->store) > time(NULL) + 3000);
	gitkv_store_unsubscribe(sb->store, on_change, NULL);
	assert_int_equal(sandbox_fsck(sb), 0);
}

static void test_expire_skips_renewed(void **state)
{
	struct sandbox *sb = *state;
	const char *keys[] = { "k" };
	gitkv_op op = { .type = GITKV_OP_EXPIRE, .key = "k", .keys = keys, .nkeys = 1,
			.flags = GITKV_OP_INDIRECT };
	gitkv_result r;

	set_str(sb->store, "k", "v");
	assert_ok(gitkv_store_set_ttl(sb->store, "k", 100, NULL, NULL));
	/* an expire computed from an older view: the value was renewed since */
	op.now = time(NULL) + 50;
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, &r));
	assert_false(r.committed);
	assert_value_str(sb->store, "k", "v");
	op.now = time(NULL) + 200;
	assert_ok(gitkv_store_apply(sb->store, &op, NULL, &r));
	assert_true(r.committed);
	assert_int_equal(r.count, 1);
	assert_type(sb->store, "k", GITKV_TYPE_NONE);
}

static void test_expired_value_is_absent_for_writers(void **state)
{
	struct sandbox *sb = *state;
	gitkv_op excl = { .type = GITKV_OP_SET, .key = "locks/db", .value = "me", .len = 2,
			  .flags = GITKV_OP_EXCL };
	gitkv_result r;

	set_str(sb->store, "locks/db", "other");
	assert_ok(gitkv_store_set_ttl(sb->store, "locks/db", 1, NULL, NULL));
	assert_gitkv(gitkv_store_apply(sb->store, &excl, NULL, NULL), GITKV_EEXISTS);
	sandbox_wait_past(gitkv_store_expiry(sb->store, "locks/db"));
	/* past its expiry, before any reaper: an exclusive create wins */
	assert_ok(gitkv_store_apply(sb->store, &excl, NULL, &r));
	assert_true(r.committed);
	assert_value_str(sb->store, "locks/db", "me");
	/* and the stale expiry went with the old value */
	assert_int_equal(gitkv_store_expiry(sb->store, "locks/db"), 0);
	assert_type(sb->store, ".gitkv", GITKV_TYPE_NONE);
}

static void test_index_survives_reopen(void **state)
{
	struct sandbox *sb = *state;
	int64_t exp;

	set_str(sb->store, "a", "1");
	assert_ok(gitkv_store_set_ttl(sb->store, "a", 500, NULL, NULL));
	exp = gitkv_store_expiry(sb->store, "a");
	sandbox_reopen(sb, NULL);
	assert_int_equal(gitkv_store_expiry(sb->store, "a"), exp);
	assert_int_equal(gitkv_store_next_expiry(sb->store), exp);

	/* another handle's change reaches this one's index through refresh */
	gitkv_store *other = sandbox_open(sb, NULL);
	assert_ok(gitkv_store_set_ttl(other, "a", 0, NULL, NULL));
	gitkv_store_free(other);
	assert_ok(gitkv_store_refresh(sb->store));
	assert_int_equal(gitkv_store_expiry(sb->store, "a"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_format),
		cmocka_unit_test_setup_teardown(test_reserved_component, sandbox_setup,
						sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_ttl_on_value, sandbox_setup, sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_ttl_errors, sandbox_setup, sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_set_with_ttl, sandbox_setup, sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_delete_and_rename_carry_metadata,
						sandbox_setup, sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_lease_directory, sandbox_setup,
						sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_expire, sandbox_setup, sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_expire_skips_renewed, sandbox_setup,
						sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_expired_value_is_absent_for_writers,
						sandbox_setup, sandbox_teardown),
		cmocka_unit_test_setup_teardown(test_index_survives_reopen, sandbox_setup,
						sandbox_teardown),
	};

	return cmocka_run_group_tests(tests, sandbox_group_setup, sandbox_group_teardown);
}
