/*
 * ignore.h - which file names are editors' and tools' temporary files.
 *
 * A name matching one of the `ignore` patterns (fnmatch(3), matched against
 * the last path component only) is kept in memory by the daemon and never
 * committed: vim's swap files and its `4913` write probe, backups `name~`,
 * emacs' `.#name` locks, `*.tmp`, and `sed -i`'s `sedXXXXXX`.
 *
 * Threads: a pattern list is immutable once built; fs_ignore_match() may be
 * called from any thread without a lock.
 */
#ifndef GITKVFS_IGNORE_H
#define GITKVFS_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

/* The default list, in the `-o ignore=` syntax (patterns separated by ':'). */
#define FS_IGNORE_DEFAULT ".*.sw?:.*.sw?x:*~:.#*:4913:*.tmp:sed??????"

struct fs_ignore;

/*
 * Build a pattern list from `spec` (patterns separated by ':'; empty
 * patterns are skipped, so "" matches nothing). NULL means the defaults.
 * Returns 0 and the list in `*out` (free it with fs_ignore_free()), or
 * GITKV_ERROR on allocation failure.
 */
int fs_ignore_new(struct fs_ignore **out, const char *spec);

void fs_ignore_free(struct fs_ignore *ign);

/* True if the file name `name` (one component, `len` bytes) matches a pattern. */
bool fs_ignore_match(const struct fs_ignore *ign, const char *name, size_t len);

/* Number of patterns in the list. */
size_t fs_ignore_count(const struct fs_ignore *ign);

#endif
