/*
 * error.c - GITKV_E* codes, their errno mapping, and the per-thread message.
 *
 * Every failing libgitkv call records one line describing the failure in a
 * thread-local buffer (like libgit2's git_error_last()), and returns a code
 * from gitkv/error.h. Callers at the boundary (fs/, cli/) print the message
 * once and map the code with gitkv_error_errno().
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "gitkv/error.h"

static __thread char last_message[512];

const char *gitkv_error_last(void)
{
	return last_message;
}

int gitkv_error_set(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	return code;
}

void gitkv_error_clear(void)
{
	last_message[0] = '\0';
}

int gitkv_error_errno(int code)
{
	switch (code) {
	case GITKV_OK:
		return 0;
	case GITKV_ENOTFOUND:
		return ENOENT;
	case GITKV_EEXISTS:
		return EEXIST;
	case GITKV_EMODIFIED:
		return EAGAIN;
	case GITKV_EINVALID:
		return EINVAL;
	case GITKV_ENAMETOOLONG:
		return ENAMETOOLONG;
	case GITKV_ETOOBIG:
		return EFBIG;
	case GITKV_ENOTDIR:
		return ENOTDIR;
	case GITKV_EISDIR:
		return EISDIR;
	case GITKV_ENOTEMPTY:
		return ENOTEMPTY;
	case GITKV_EREADONLY:
		return EROFS;
	case GITKV_ENOSPC:
		return ENOSPC;
	case GITKV_EPERM:
		return EPERM;
	default:
		return EIO;
	}
}

const char *gitkv_error_name(int code)
{
	switch (code) {
	case GITKV_OK:
		return "ok";
	case GITKV_ENOTFOUND:
		return "not found";
	case GITKV_EEXISTS:
		return "exists";
	case GITKV_EMODIFIED:
		return "modified concurrently";
	case GITKV_EINVALID:
		return "invalid";
	case GITKV_ENAMETOOLONG:
		return "name too long";
	case GITKV_ETOOBIG:
		return "value too large";
	case GITKV_ENOTDIR:
		return "not a directory";
	case GITKV_EISDIR:
		return "is a directory";
	case GITKV_ENOTEMPTY:
		return "directory not empty";
	case GITKV_EREADONLY:
		return "read-only";
	case GITKV_ENOSPC:
		return "no space left";
	case GITKV_EPERM:
		return "not permitted";
	case GITKV_EUNCHANGED:
		return "unchanged";
	default:
		return "error";
	}
}
