/*
 * encode.h - how the gitkv command shows values that may hold any bytes.
 *
 * A value is bytes. JSON output carries a value as a string when it is
 * valid UTF-8 and in base64 otherwise (json_add_bytes); text output shows
 * it on one line with C-style escapes (escape_print).
 *
 * Threads: pure functions over their arguments.
 */
#ifndef GITKV_CLI_ENCODE_H
#define GITKV_CLI_ENCODE_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* True if the `len` bytes at `s` are well-formed UTF-8 (RFC 3629). */
bool utf8_valid(const char *s, size_t len);

/* The standard base64 (RFC 4648, padded) of `len` bytes, malloc'd; NULL if out of memory. */
char *base64_encode(const void *data, size_t len);

/*
 * Add the `len` bytes at `data` to `obj` as `name` (a JSON string) when they
 * are valid UTF-8, else as `name`_base64 (their base64). Returns 0 or -1
 * (out of memory).
 */
int json_add_bytes(json_object *obj, const char *name, const char *data, size_t len);

/*
 * Write the `len` bytes at `s` to `f` on one line: backslash, newline,
 * carriage return and tab as \\ \n \r \t, other control bytes, DEL and
 * bytes that are not part of valid UTF-8 as \xHH.
 */
void escape_print(FILE *f, const char *s, size_t len);

#endif
