/*
 * ignore.c - the `ignore` patterns: which names are temporary files.
 *
 * The spec string is split once at start-up into an array of fnmatch(3)
 * patterns; matching a name tries each in turn (the list is short). No
 * FNM_PERIOD: `*~` must match `.bashrc~` too. Matching works on a copy of
 * the name when it is not NUL-terminated at `len`.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include <gitkv/error.h>
#include <gitkv/key.h>

#include "ignore.h"

struct fs_ignore {
	char **patterns;
	size_t count;
};

void fs_ignore_free(struct fs_ignore *ign)
{
	if (!ign)
		return;
	for (size_t i = 0; i < ign->count; i++)
		free(ign->patterns[i]);
	free(ign->patterns);
	free(ign);
}

int fs_ignore_new(struct fs_ignore **out, const char *spec)
{
	struct fs_ignore *ign;
	const char *p, *end;

	if (!spec)
		spec = FS_IGNORE_DEFAULT;
	ign = calloc(1, sizeof(*ign));
	if (!ign)
		goto oom;
	/* At most one pattern per ':' plus one. */
	ign->patterns = calloc(strlen(spec) / 2 + 2, sizeof(char *));
	if (!ign->patterns)
		goto oom;
	for (p = spec; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		if (end == p)
			continue;
		ign->patterns[ign->count] = strndup(p, end - p);
		if (!ign->patterns[ign->count])
			goto oom;
		ign->count++;
	}
	*out = ign;
	return 0;
oom:
	fs_ignore_free(ign);
	return gitkv_error_set(GITKV_ERROR, "out of memory");
}

bool fs_ignore_match(const struct fs_ignore *ign, const char *name, size_t len)
{
	char copy[GITKV_KEY_COMPONENT_MAX + 1];

	if (!ign || !ign->count || len == 0 || len > GITKV_KEY_COMPONENT_MAX)
		return false;
	if (name[len] != '\0') {
		memcpy(copy, name, len);
		copy[len] = '\0';
		name = copy;
	}
	for (size_t i = 0; i < ign->count; i++) {
		if (fnmatch(ign->patterns[i], name, 0) == 0)
			return true;
	}
	return false;
}

size_t fs_ignore_count(const struct fs_ignore *ign)
{
	return ign ? ign->count : 0;
}
