/*
 * gitkv/error.h - error codes of libgitkv and the per-thread last message.
 *
 * Every fallible function of libgitkv returns an int: 0 on success or one
 * of the negative GITKV_E* codes below. A human-readable message describing
 * the failure is recorded for the calling thread and can be read with
 * gitkv_error_last() until the next failing call on the same thread.
 * libgit2 codes never cross this API: core translates them on the thread
 * that saw them.
 *
 * Threads: every function here is thread-safe; the message is per thread.
 */
#ifndef GITKV_ERROR_H
#define GITKV_ERROR_H

enum gitkv_error_code {
	GITKV_OK = 0,
	GITKV_ERROR = -1,	    /* generic failure (I/O, corrupt repository...) */
	GITKV_ENOTFOUND = -2,	    /* key, revision or repository does not exist */
	GITKV_EEXISTS = -3,	    /* the key or directory exists already */
	GITKV_EMODIFIED = -4,	    /* compare-and-swap lost: the value changed */
	GITKV_EINVALID = -5,	    /* invalid key, argument or reserved name */
	GITKV_ENAMETOOLONG = -6,    /* key component > 255 bytes or key > 4096 */
	GITKV_ETOOBIG = -7,	    /* value larger than max_value_size */
	GITKV_ENOTDIR = -8,	    /* a parent of the key is a value, not a prefix */
	GITKV_EISDIR = -9,	    /* the key is a prefix (directory) */
	GITKV_ENOTEMPTY = -10,	    /* the prefix still holds keys */
	GITKV_EREADONLY = -11,	    /* the store or the path is read-only */
	GITKV_ENOSPC = -12,	    /* no space left on the device */
	GITKV_EPERM = -13,	    /* operation not permitted on this key */
	GITKV_EUNCHANGED = -14,	    /* internal: the operation changes nothing */
};

/*
 * The message of the last error on this thread, or "" if none. Owned by
 * the library; valid until the next libgitkv call on this thread.
 */
const char *gitkv_error_last(void);

/* Record a message for this thread (printf format) and return `code`. */
int gitkv_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Forget the last error of this thread. */
void gitkv_error_clear(void);

/*
 * Map a GITKV_E* code to a positive errno value (EIO for GITKV_ERROR and
 * anything unknown; EAGAIN for GITKV_EMODIFIED). 0 maps to 0.
 */
int gitkv_error_errno(int code);

/* A short English name for a code ("not found", "exists", ...). */
const char *gitkv_error_name(int code);

#endif
