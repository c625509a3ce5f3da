/*
 * oid.c - object id helpers (formatting, parsing, comparison).
 */
#include <string.h>

#include "gitkv/error.h"
#include "gitkv/types.h"

char *gitkv_oid_fmt(char out[GITKV_OID_HEXSZ + 1], const gitkv_oid *oid)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < GITKV_OID_RAWSZ; i++) {
		out[2 * i] = hex[oid->id[i] >> 4];
		out[2 * i + 1] = hex[oid->id[i] & 15];
	}
	out[GITKV_OID_HEXSZ] = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int gitkv_oid_parse(gitkv_oid *out, const char *hexstr)
{
	if (strlen(hexstr) != GITKV_OID_HEXSZ)
		return gitkv_error_set(GITKV_EINVALID, "not a 40-digit object id");
	for (int i = 0; i < GITKV_OID_RAWSZ; i++) {
		int hi = hexval(hexstr[2 * i]), lo = hexval(hexstr[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return gitkv_error_set(GITKV_EINVALID, "not a 40-digit object id");
		out->id[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

bool gitkv_oid_equal(const gitkv_oid *a, const gitkv_oid *b)
{
	return !memcmp(a->id, b->id, GITKV_OID_RAWSZ);
}

bool gitkv_oid_is_zero(const gitkv_oid *oid)
{
	static const gitkv_oid zero;

	return gitkv_oid_equal(oid, &zero);
}
