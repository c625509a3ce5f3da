/*
 * key.c - key validation and path helpers.
 *
 * Keys are checked once, at the API boundary, before anything is written:
 * a bad key gets GITKV_EINVALID or GITKV_ENAMETOOLONG and a message naming
 * the offending component, never a commit. See gitkv/key.h for the rules.
 */
#include <stdlib.h>
#include <string.h>

#include "gitkv/error.h"
#include "gitkv/key.h"

static int check_component(const char *name, size_t len, bool internal)
{
	if (len == 0)
		return gitkv_error_set(GITKV_EINVALID, "empty key component");
	if (len > GITKV_KEY_COMPONENT_MAX)
		return gitkv_error_set(GITKV_ENAMETOOLONG,
				       "key component longer than %d bytes",
				       GITKV_KEY_COMPONENT_MAX);
	if (memchr(name, '\0', len))
		return gitkv_error_set(GITKV_EINVALID, "NUL byte in a key component");
	if (memchr(name, '/', len))
		return gitkv_error_set(GITKV_EINVALID, "'/' in a key component");
	if ((len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2)))
		return gitkv_error_set(GITKV_EINVALID, "'.' or '..' in a key");
	if (len == 4 && !memcmp(name, ".git", 4))
		return gitkv_error_set(GITKV_EINVALID, "'.git' is not allowed in a key");
	if (!internal && len == strlen(GITKV_RESERVED) && !memcmp(name, GITKV_RESERVED, len))
		return gitkv_error_set(GITKV_EINVALID, "'%s' is reserved", GITKV_RESERVED);
	return 0;
}

int gitkv_key_validate_component(const char *name, size_t len)
{
	return check_component(name, len, false);
}

static int validate_path(const char *key, bool internal)
{
	size_t len = strlen(key);
	const char *p = key;

	if (len == 0)
		return gitkv_error_set(GITKV_EINVALID, "empty key");
	if (len > GITKV_KEY_MAX)
		return gitkv_error_set(GITKV_ENAMETOOLONG, "key longer than %d bytes",
				       GITKV_KEY_MAX);
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t clen = slash ? (size_t)(slash - p) : strlen(p);
		int error = check_component(p, clen, internal);

		if (error)
			return error;
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

int gitkv_key_validate(const char *key)
{
	return validate_path(key, false);
}

/* Validation for internal writes under the reserved tree. */
int gitkv_key__validate_internal(const char *key);
int gitkv_key__validate_internal(const char *key)
{
	return validate_path(key, true);
}

bool gitkv_key_is_reserved(const char *key)
{
	return gitkv_key_has_prefix(key, GITKV_RESERVED);
}

char *gitkv_key_join(const char *dir, const char *name)
{
	size_t dlen = strlen(dir), nlen = strlen(name);
	char *out = malloc(dlen + nlen + 2);

	if (!out)
		return NULL;
	if (dlen) {
		memcpy(out, dir, dlen);
		out[dlen++] = '/';
	}
	memcpy(out + dlen, name, nlen + 1);
	return out;
}

char *gitkv_key_parent(const char *key)
{
	const char *slash = strrchr(key, '/');

	return slash ? strndup(key, (size_t)(slash - key)) : strdup("");
}

const char *gitkv_key_basename(const char *key)
{
	const char *slash = strrchr(key, '/');

	return slash ? slash + 1 : key;
}

bool gitkv_key_has_prefix(const char *key, const char *prefix)
{
	size_t plen = strlen(prefix);

	if (!plen)
		return true;
	return !strncmp(key, prefix, plen) && (key[plen] == '\0' || key[plen] == '/');
}
