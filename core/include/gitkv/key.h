/*
 * gitkv/key.h - what a key is.
 *
 * A key is a relative path: components separated by '/', each 1-255 bytes,
 * no NUL, not "." or "..", not ".git"; the whole key at most 4096 bytes; no
 * leading, trailing or doubled '/'. The top-level name ".gitkv" is reserved
 * for metadata (in the tree) and control files (in the mount).
 *
 * Threads: pure functions, callable from any thread.
 */
#ifndef GITKV_KEY_H
#define GITKV_KEY_H

#include <stdbool.h>
#include <stddef.h>

#define GITKV_KEY_MAX 4096
#define GITKV_KEY_COMPONENT_MAX 255
#define GITKV_RESERVED ".gitkv"

/*
 * Check that `key` is a valid user key. Returns 0, GITKV_EINVALID (empty,
 * bad component, a component named ".gitkv") or GITKV_ENAMETOOLONG.
 * Records a message naming the problem.
 */
int gitkv_key_validate(const char *key);

/*
 * Check a single path component (a file name). Same codes as above.
 * ".gitkv" is reserved at every level: at the top it holds the store's
 * metadata (and the mount's control tree), and below it names a prefix's
 * own metadata (gitkv/meta.h).
 */
int gitkv_key_validate_component(const char *name, size_t len);

/* True if `key` is ".gitkv" or lies below it. */
bool gitkv_key_is_reserved(const char *key);

/*
 * Join `dir` ("" for the root) and `name` into a newly allocated key.
 * Returns NULL on allocation failure. The caller frees it with free().
 */
char *gitkv_key_join(const char *dir, const char *name);

/*
 * The parent prefix of `key` ("" for a top-level key), newly allocated.
 */
char *gitkv_key_parent(const char *key);

/* Pointer to the last component of `key` (borrowed from `key`). */
const char *gitkv_key_basename(const char *key);

/* True if `key` equals `prefix` or lies below it ("" is every key's prefix). */
bool gitkv_key_has_prefix(const char *key, const char *prefix);

#endif
