/*
 * gitkv/types.h - the small value types shared by every libgitkv module:
 * object ids, entry types and entries.
 *
 * Threads: plain values; the helpers are pure and callable from any thread.
 */
#ifndef GITKV_TYPES_H
#define GITKV_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GITKV_OID_RAWSZ 20
#define GITKV_OID_HEXSZ 40

/* A git object id (SHA-1). All zeroes means "none". */
typedef struct gitkv_oid {
	unsigned char id[GITKV_OID_RAWSZ];
} gitkv_oid;

/* What a path in the tree is. */
typedef enum gitkv_type {
	GITKV_TYPE_NONE = 0, /* absent */
	GITKV_TYPE_FILE,     /* a value, git mode 100644 */
	GITKV_TYPE_EXEC,     /* a value with the exec bit, git mode 100755 */
	GITKV_TYPE_LINK,     /* a symlink, git mode 120000; the value is the target */
	GITKV_TYPE_DIR,	     /* a prefix (directory), a git tree */
} gitkv_type;

/* An entry's size when it has not been read yet (see gitkv_entry.size). */
#define GITKV_SIZE_UNKNOWN UINT64_MAX

/* What the snapshot knows about one path. */
typedef struct gitkv_entry {
	gitkv_type type;
	gitkv_oid oid;	/* blob id, or tree id for a directory */
	uint64_t size;	/* value size in bytes; number of entries for a directory.
			   Lookups always resolve it; in a gitkv_change it may be
			   GITKV_SIZE_UNKNOWN */
	int64_t mtime;	/* UTC seconds of the commit that last changed the path */
} gitkv_entry;

/* Format `oid` as 40 hex digits plus NUL into `out`; returns `out`. */
char *gitkv_oid_fmt(char out[GITKV_OID_HEXSZ + 1], const gitkv_oid *oid);

/* Parse 40 hex digits. Returns 0 or GITKV_EINVALID. */
int gitkv_oid_parse(gitkv_oid *out, const char *hex);

bool gitkv_oid_equal(const gitkv_oid *a, const gitkv_oid *b);
bool gitkv_oid_is_zero(const gitkv_oid *oid);

/* True for FILE, EXEC and LINK (anything with a blob). */
static inline bool gitkv_type_is_value(gitkv_type t)
{
	return t == GITKV_TYPE_FILE || t == GITKV_TYPE_EXEC || t == GITKV_TYPE_LINK;
}

#endif
