/*
 * sandbox.h - a fresh bare store per unit test, and the checks the tests share.
 *
 * Each test runs in its own temporary directory (mkdtemp under $TMPDIR or
 * /tmp), created by sandbox_setup() and removed with everything in it by
 * sandbox_teardown(), in the manner of libgit2's cl_git_sandbox_init. The
 * directory holds one bare store, "store.git", opened with node "n1".
 *
 * Tests look at the repository the way a user would, through libgit2 or the
 * git command, never through core's private state.
 *
 * Threads: the helpers assert with cmocka, so call them from the test's
 * thread only.
 */
#ifndef GITKV_TESTS_SANDBOX_H
#define GITKV_TESTS_SANDBOX_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <git2.h>
#include <gitkv/error.h>
#include <gitkv/key.h>
#include <gitkv/snapshot.h>
#include <gitkv/store.h>
#include <gitkv/types.h>

#define SANDBOX_NODE "n1"

struct sandbox {
	char dir[512];	    /* the temporary directory */
	char repo[600];	    /* dir + "/store.git", the bare store */
	gitkv_store *store; /* opened on repo with node SANDBOX_NODE */
};

/* cmocka setup/teardown: *state is a struct sandbox. */
int sandbox_setup(void **state);
int sandbox_teardown(void **state);

/* Group setup/teardown: libgit2's global state for the whole program. */
int sandbox_group_setup(void **state);
int sandbox_group_teardown(void **state);

/* Options with node SANDBOX_NODE and everything else at its default. */
gitkv_store_options sandbox_options(void);

/* Open another handle on the sandbox's store (asserts success). */
gitkv_store *sandbox_open(struct sandbox *sb, const gitkv_store_options *opts);

/* Free sb->store and open it again with `opts` (NULL: sandbox_options()). */
void sandbox_reopen(struct sandbox *sb, const gitkv_store_options *opts);

/* `git -C repo fsck --strict`: returns the command's exit status (problems go to stderr). */
int sandbox_fsck(struct sandbox *sb);

/* The repository through libgit2 (git_repository_free it). */
git_repository *sandbox_git(struct sandbox *sb);

/*
 * The commit the branch of `repo` points at (git_commit_free it before
 * freeing `repo`); NULL if the branch is unborn.
 */
git_commit *sandbox_head_commit(git_repository *repo);

/* Number of commits reachable from the branch (0 if unborn). */
size_t sandbox_count_commits(struct sandbox *sb);

/* The git file mode of `path` in the branch's tree (0 if absent). */
unsigned int sandbox_git_mode(struct sandbox *sb, const char *path);

/* The blob id git would give `len` bytes of `data`. */
gitkv_oid sandbox_blob_oid(const void *data, size_t len);

/* Convert between the two id types (same bytes). */
gitkv_oid sandbox_oid_from_git(const git_oid *oid);

/* Wait (bounded, 3 s) until time(NULL) is past `t`. */
void sandbox_wait_past(int64_t t);

/* Assertions that report the file and line of the test that called them. */
void sandbox_assert_code(int actual, int expected, const char *expr, const char *file, int line);
void sandbox_assert_value(gitkv_store *store, const char *key, const void *value, size_t len,
			  const char *file, int line);
void sandbox_assert_type(gitkv_store *store, const char *key, gitkv_type type, const char *file,
			 int line);

/* Assert that `expr` returns the GITKV_E* code `expected`, naming both. */
#define assert_gitkv(expr, expected)                                                               \
	sandbox_assert_code((expr), (expected), #expr, __FILE__, __LINE__)
#define assert_ok(expr) assert_gitkv((expr), GITKV_OK)

/* Assert that `key` holds exactly the string `str` (without its NUL). */
#define assert_value_str(store, key, str)                                                          \
	sandbox_assert_value((store), (key), (str), strlen(str), __FILE__, __LINE__)
#define assert_value_mem(store, key, buf, len)                                                     \
	sandbox_assert_value((store), (key), (buf), (len), __FILE__, __LINE__)

/* Assert the snapshot's type of `key` (GITKV_TYPE_NONE: absent). */
#define assert_type(store, key, type)                                                              \
	sandbox_assert_type((store), (key), (type), __FILE__, __LINE__)

/* Set `key` to the string `str` and assert that a commit was made. */
#define set_str(store, key, str)                                                                   \
	do {                                                                                       \
		gitkv_result r_;                                                                   \
		assert_ok(gitkv_store_set((store), (key), (str), strlen(str), NULL, &r_));         \
		assert_true(r_.committed);                                                         \
	} while (0)

/* Fail the test (at the caller's line) unless two ids, values not pointers, are equal. */
void sandbox_oid_equal_at(gitkv_oid a, gitkv_oid b, const char *file, int line);
#define assert_oid_equal(a, b) sandbox_oid_equal_at((a), (b), __FILE__, __LINE__)

#endif
