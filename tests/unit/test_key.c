/*
 * test_key.c - what a key is (gitkv/key.h), the error codes and their errno
 * mapping (gitkv/error.h), and the object id helpers (gitkv/types.h).
 *
 * The key rules are checked twice: by gitkv_key_validate() itself, and
 * through the store, where a bad key must be refused with the same code and
 * never become a commit.
 */
#include "sandbox.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* A key of `ncomp` components of `clen` bytes each ('a'...), '/'-separated. */
static char *make_long_key(size_t ncomp, size_t clen)
{
	size_t len = ncomp * clen + (ncomp - 1);
	char *key = malloc(len + 1);
	size_t i, pos = 0;

	assert_non_null(key);
	for (i = 0; i < ncomp; i++) {
		if (i)
			key[pos++] = '/';
		memset(key + pos, 'a' + (int)(i % 26), clen);
		pos += clen;
	}
	key[pos] = '\0';
	return key;
}

static const char *const invalid_keys[] = {
    "",	     "/a",     "a/",   "a//b",	   ".",	     "..",
    "a/./b", "a/../b", ".git", "a/.git/b", ".gitkv", ".gitkv/meta/x",
    "/",     "a/.",    "../a", ".git/x",   "//",
};

static void test_key__plain_and_nested_keys_are_valid(void **state)
{
	assert_ok(gitkv_key_validate("a"));
	assert_ok(gitkv_key_validate("a/b/c"));
	assert_ok(gitkv_key_validate("app/db/host"));
	assert_ok(gitkv_key_validate(".hidden"));
	assert_ok(gitkv_key_validate("..."));
	assert_ok(gitkv_key_validate(".gitx"));
	assert_ok(gitkv_key_validate("a.git"));
}

static void test_key__binary_bytes_are_valid_in_a_key(void **state)
{
	assert_ok(gitkv_key_validate("\x01\x7f\xff\xfe/\x80 tab\there\n"));
	assert_ok(gitkv_key_validate("caf\xc3\xa9/\xe2\x98\x83"));
}

static void test_key__a_255_byte_component_is_valid(void **state)
{
	char *key = make_long_key(1, GITKV_KEY_COMPONENT_MAX);

	assert_ok(gitkv_key_validate(key));
	assert_ok(gitkv_key_validate_component(key, strlen(key)));
	free(key);
}

static void test_key__a_4096_byte_key_is_valid(void **state)
{
	char *key = make_long_key(17, 240);

	assert_int_equal(strlen(key), GITKV_KEY_MAX);
	assert_ok(gitkv_key_validate(key));
	free(key);
}

static void test_key__malformed_keys_are_einvalid(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(invalid_keys) / sizeof(invalid_keys[0]); i++) {
		int rc;

		gitkv_error_clear();
		rc = gitkv_key_validate(invalid_keys[i]);
		if (rc != GITKV_EINVALID || !*gitkv_error_last())
			fail_msg("key \"%s\": %d (\"%s\"), expected EINVALID with a message",
				 invalid_keys[i], rc, gitkv_error_last());
	}
}

static void test_key__a_256_byte_component_is_enametoolong(void **state)
{
	char *key = make_long_key(1, GITKV_KEY_COMPONENT_MAX + 1);
	char *nested = make_long_key(3, GITKV_KEY_COMPONENT_MAX + 1);

	assert_gitkv(gitkv_key_validate(key), GITKV_ENAMETOOLONG);
	assert_gitkv(gitkv_key_validate(nested), GITKV_ENAMETOOLONG);
	assert_gitkv(gitkv_key_validate_component(key, strlen(key)), GITKV_ENAMETOOLONG);
	free(key);
	free(nested);
}

static void test_key__a_4097_byte_key_is_enametoolong(void **state)
{
	char *key = make_long_key(17, 240);
	size_t len = strlen(key);

	key = realloc(key, len + 2);
	assert_non_null(key);
	key[len] = 'z'; /* the last component becomes 241 bytes: still a valid component */
	key[len + 1] = '\0';
	assert_gitkv(gitkv_key_validate(key), GITKV_ENAMETOOLONG);
	free(key);
}

static void test_key__the_reserved_top_level_name_is_einvalid(void **state)
{
	assert_gitkv(gitkv_key_validate(".gitkv"), GITKV_EINVALID);
	assert_gitkv(gitkv_key_validate(".gitkv/meta/x"), GITKV_EINVALID);
	assert_true(gitkv_key_is_reserved(".gitkv"));
	assert_true(gitkv_key_is_reserved(".gitkv/meta/x"));
}

static void test_key__the_reserved_name_is_reserved_at_every_level(void **state)
{
	/* below the top it names a prefix's own metadata (gitkv/meta.h) */
	assert_gitkv(gitkv_key_validate("a/.gitkv"), GITKV_EINVALID);
	assert_gitkv(gitkv_key_validate("a/.gitkv/meta/x"), GITKV_EINVALID);
	assert_ok(gitkv_key_validate(".gitkvx"));
	assert_ok(gitkv_key_validate("a/x.gitkv"));
	assert_false(gitkv_key_is_reserved("a/.gitkv"));
	assert_false(gitkv_key_is_reserved(".gitkvx"));
	assert_false(gitkv_key_is_reserved(".gitk"));
}

static void test_key__component_rules_match_the_key_rules(void **state)
{
	assert_ok(gitkv_key_validate_component("abc", 3));
	assert_ok(gitkv_key_validate_component("abcdef", 3)); /* only `len` bytes count */
	assert_gitkv(gitkv_key_validate_component(".gitkv", 6), GITKV_EINVALID);
	assert_ok(gitkv_key_validate_component(".gitkv7", 6 + 1));
	assert_gitkv(gitkv_key_validate_component("", 0), GITKV_EINVALID);
	assert_gitkv(gitkv_key_validate_component(".", 1), GITKV_EINVALID);
	assert_gitkv(gitkv_key_validate_component("..", 2), GITKV_EINVALID);
	assert_gitkv(gitkv_key_validate_component(".git", 4), GITKV_EINVALID);
	assert_gitkv(gitkv_key_validate_component("a/b", 3), GITKV_EINVALID);
}

static void test_key__a_component_holding_nul_is_einvalid(void **state)
{
	assert_gitkv(gitkv_key_validate_component("a\0b", 3), GITKV_EINVALID);
	assert_gitkv(gitkv_key_validate_component("\0", 1), GITKV_EINVALID);
}

static void test_key__join_puts_a_slash_between_dir_and_name(void **state)
{
	char *k;

	k = gitkv_key_join("", "a");
	assert_string_equal(k, "a");
	free(k);
	k = gitkv_key_join("a", "b");
	assert_string_equal(k, "a/b");
	free(k);
	k = gitkv_key_join("a/b", "c");
	assert_string_equal(k, "a/b/c");
	free(k);
}

static void test_key__parent_of_a_top_level_key_is_the_root(void **state)
{
	char *p;

	p = gitkv_key_parent("a");
	assert_string_equal(p, "");
	free(p);
	p = gitkv_key_parent("a/b");
	assert_string_equal(p, "a");
	free(p);
	p = gitkv_key_parent("a/b/c");
	assert_string_equal(p, "a/b");
	free(p);
}

static void test_key__basename_points_into_the_key(void **state)
{
	const char *key = "a/bc/def";
	const char *top = "top";

	assert_ptr_equal(gitkv_key_basename(key), key + 5);
	assert_string_equal(gitkv_key_basename(key), "def");
	assert_ptr_equal(gitkv_key_basename(top), top);
}

static void test_key__has_prefix_matches_whole_components(void **state)
{
	assert_true(gitkv_key_has_prefix("a", "a"));
	assert_true(gitkv_key_has_prefix("a/b", "a"));
	assert_true(gitkv_key_has_prefix("a/b/c", "a/b"));
	assert_true(gitkv_key_has_prefix("a", ""));
	assert_true(gitkv_key_has_prefix("a/b", ""));
	assert_false(gitkv_key_has_prefix("ab", "a"));
	assert_false(gitkv_key_has_prefix("a/bc", "a/b"));
	assert_false(gitkv_key_has_prefix("a", "a/b"));
	assert_false(gitkv_key_has_prefix("b/a", "a"));
}

static void test_key__invalid_keys_are_refused_by_the_store_without_a_commit(void **state)
{
	struct sandbox *sb = *state;
	gitkv_snapshot *snap = gitkv_store_snapshot(sb->store);
	char *too_long = make_long_key(1, GITKV_KEY_COMPONENT_MAX + 1);
	uint64_t gen_before, gen_after;
	gitkv_oid head;
	size_t i;

	gitkv_snapshot_head(snap, &head, &gen_before);
	for (i = 0; i < sizeof(invalid_keys) / sizeof(invalid_keys[0]); i++) {
		int rc = gitkv_store_set(sb->store, invalid_keys[i], "v", 1, NULL, NULL);

		if (rc != GITKV_EINVALID)
			fail_msg("set \"%s\": %d, expected EINVALID", invalid_keys[i], rc);
	}
	assert_gitkv(gitkv_store_set(sb->store, too_long, "v", 1, NULL, NULL), GITKV_ENAMETOOLONG);
	gitkv_snapshot_head(snap, &head, &gen_after);
	assert_int_equal(gen_after, gen_before);
	assert_true(gitkv_oid_is_zero(&head));
	assert_int_equal(sandbox_count_commits(sb), 0);
	free(too_long);
}

static void test_key__the_reserved_name_below_the_top_is_refused_by_the_store(void **state)
{
	struct sandbox *sb = *state;

	assert_gitkv(gitkv_store_set(sb->store, "a/.gitkv", "no", 2, NULL, NULL), GITKV_EINVALID);
	assert_int_equal(sandbox_count_commits(sb), 0);
}

static void test_error__codes_map_to_errno(void **state)
{
	assert_int_equal(gitkv_error_errno(GITKV_OK), 0);
	assert_int_equal(gitkv_error_errno(GITKV_ENOTFOUND), ENOENT);
	assert_int_equal(gitkv_error_errno(GITKV_EEXISTS), EEXIST);
	assert_int_equal(gitkv_error_errno(GITKV_EINVALID), EINVAL);
	assert_int_equal(gitkv_error_errno(GITKV_ENAMETOOLONG), ENAMETOOLONG);
	assert_int_equal(gitkv_error_errno(GITKV_ETOOBIG), EFBIG);
	assert_int_equal(gitkv_error_errno(GITKV_ENOTDIR), ENOTDIR);
	assert_int_equal(gitkv_error_errno(GITKV_EISDIR), EISDIR);
	assert_int_equal(gitkv_error_errno(GITKV_ENOTEMPTY), ENOTEMPTY);
	assert_int_equal(gitkv_error_errno(GITKV_EREADONLY), EROFS);
	assert_int_equal(gitkv_error_errno(GITKV_ENOSPC), ENOSPC);
	assert_int_equal(gitkv_error_errno(GITKV_EPERM), EPERM);
	assert_int_equal(gitkv_error_errno(GITKV_EMODIFIED), EAGAIN);
	assert_int_equal(gitkv_error_errno(GITKV_ERROR), EIO);
	assert_int_equal(gitkv_error_errno(-1000), EIO);
}

static void test_error__every_code_has_a_name(void **state)
{
	int code;

	for (code = GITKV_OK; code >= GITKV_EUNCHANGED; code--) {
		assert_non_null(gitkv_error_name(code));
		assert_true(strlen(gitkv_error_name(code)) > 0);
	}
	assert_string_not_equal(gitkv_error_name(GITKV_ENOTFOUND), gitkv_error_name(GITKV_EEXISTS));
}

static void test_error__set_records_the_message_and_returns_the_code(void **state)
{
	assert_int_equal(gitkv_error_set(GITKV_ENOTFOUND, "no key '%s'", "x"), GITKV_ENOTFOUND);
	assert_string_equal(gitkv_error_last(), "no key 'x'");
	gitkv_error_clear();
	assert_string_equal(gitkv_error_last(), "");
}

static void *set_message_on_other_thread(void *arg)
{
	gitkv_error_set(GITKV_ERROR, "from another thread");
	return NULL;
}

static void test_error__the_message_is_per_thread(void **state)
{
	pthread_t t;

	gitkv_error_set(GITKV_EINVALID, "mine");
	assert_int_equal(pthread_create(&t, NULL, set_message_on_other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(gitkv_error_last(), "mine");
}

static void test_oid__format_and_parse_round_trip(void **state)
{
	const char *hex = "0123456789abcdef0123456789abcdef01234567";
	char out[GITKV_OID_HEXSZ + 1];
	gitkv_oid oid, zero = {{0}};

	assert_ok(gitkv_oid_parse(&oid, hex));
	assert_int_equal(oid.id[0], 0x01);
	assert_int_equal(oid.id[19], 0x67);
	assert_ptr_equal(gitkv_oid_fmt(out, &oid), out);
	assert_string_equal(out, hex);
	assert_true(gitkv_oid_equal(&oid, &oid));
	assert_false(gitkv_oid_equal(&oid, &zero));
	assert_true(gitkv_oid_is_zero(&zero));
	assert_false(gitkv_oid_is_zero(&oid));
}

static void test_oid__parse_refuses_what_is_not_40_hex_digits(void **state)
{
	gitkv_oid oid;

	assert_gitkv(gitkv_oid_parse(&oid, ""), GITKV_EINVALID);
	assert_gitkv(gitkv_oid_parse(&oid, "0123"), GITKV_EINVALID);
	assert_gitkv(gitkv_oid_parse(&oid, "g123456789abcdef0123456789abcdef01234567"),
		     GITKV_EINVALID);
	assert_gitkv(gitkv_oid_parse(&oid, "0123456789abcdef0123456789abcdef012345678"),
		     GITKV_EINVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key__plain_and_nested_keys_are_valid),
	    cmocka_unit_test(test_key__binary_bytes_are_valid_in_a_key),
	    cmocka_unit_test(test_key__a_255_byte_component_is_valid),
	    cmocka_unit_test(test_key__a_4096_byte_key_is_valid),
	    cmocka_unit_test(test_key__malformed_keys_are_einvalid),
	    cmocka_unit_test(test_key__a_256_byte_component_is_enametoolong),
	    cmocka_unit_test(test_key__a_4097_byte_key_is_enametoolong),
	    cmocka_unit_test(test_key__the_reserved_top_level_name_is_einvalid),
	    cmocka_unit_test(test_key__the_reserved_name_is_reserved_at_every_level),
	    cmocka_unit_test(test_key__component_rules_match_the_key_rules),
	    cmocka_unit_test(test_key__a_component_holding_nul_is_einvalid),
	    cmocka_unit_test(test_key__join_puts_a_slash_between_dir_and_name),
	    cmocka_unit_test(test_key__parent_of_a_top_level_key_is_the_root),
	    cmocka_unit_test(test_key__basename_points_into_the_key),
	    cmocka_unit_test(test_key__has_prefix_matches_whole_components),
	    cmocka_unit_test_setup_teardown(
		test_key__invalid_keys_are_refused_by_the_store_without_a_commit, sandbox_setup,
		sandbox_teardown),
	    cmocka_unit_test_setup_teardown(
		test_key__the_reserved_name_below_the_top_is_refused_by_the_store, sandbox_setup,
		sandbox_teardown),
	    cmocka_unit_test(test_error__codes_map_to_errno),
	    cmocka_unit_test(test_error__every_code_has_a_name),
	    cmocka_unit_test(test_error__set_records_the_message_and_returns_the_code),
	    cmocka_unit_test(test_error__the_message_is_per_thread),
	    cmocka_unit_test(test_oid__format_and_parse_round_trip),
	    cmocka_unit_test(test_oid__parse_refuses_what_is_not_40_hex_digits),
	};

	return cmocka_run_group_tests_name("key", tests, sandbox_group_setup,
					   sandbox_group_teardown);
}
