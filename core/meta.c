/*
 * meta.c - per-key metadata (gitkv/meta.h): the blob format, the expiry
 * index, and the TTL and expiry entry points.
 *
 * The expiry index maps a value's key to its expiry. It is rebuilt from the
 * change stream: gitkv_store__publish() hands every change below
 * .gitkv/meta/ to gitkv_store__meta_update() (commit lock held), which
 * reads the new blob; readers look keys up under the index's own mutex.
 * Only values with an expiry are in it, so a store without TTLs pays one
 * relaxed load per lookup. The earliest expiry is cached and recomputed (a
 * scan of the index, not of the store) only after a change removed it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gitkv/key.h"
#include "gitkv/meta.h"
#include "store_internal.h"

struct meta_ent {
	char *key;
	int64_t expires;
	uint64_t hash;
	struct meta_ent *next;
};

/* ---- the blob format ---------------------------------------------------- */

static int parse_int(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;

	if (!len || len > 18)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int gitkv_meta_parse(gitkv_meta *out, const char *buf, size_t len)
{
	const char *p = buf, *end = buf + len;

	memset(out, 0, sizeof(*out));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *eol = nl ? nl : end;
		const char *sp = memchr(p, ' ', (size_t)(eol - p));
		int64_t v;

		if (eol == p) {
			p = eol + 1;
			continue;
		}
		if (!sp)
			return gitkv_error_set(GITKV_EINVALID, "malformed metadata line");
		if (sp - p == 7 && !memcmp(p, "expires", 7)) {
			if (parse_int(sp + 1, (size_t)(eol - sp - 1), &v) < 0)
				return gitkv_error_set(GITKV_EINVALID, "malformed expiry");
			out->expires = v;
		} else if (sp - p == 3 && !memcmp(p, "ttl", 3)) {
			if (parse_int(sp + 1, (size_t)(eol - sp - 1), &v) < 0)
				return gitkv_error_set(GITKV_EINVALID, "malformed ttl");
			out->ttl = v;
		}
		p = eol + 1;
	}
	return 0;
}

size_t gitkv_meta_format(char *out, size_t size, const gitkv_meta *m)
{
	size_t n = 0;

	out[0] = '\0';
	if (m->expires)
		n += (size_t)snprintf(out + n, size - n, "expires %lld\n", (long long)m->expires);
	if (m->ttl && n < size)
		n += (size_t)snprintf(out + n, size - n, "ttl %lld\n", (long long)m->ttl);
	return n < size ? n : size - 1;
}

int gitkv_meta__path(char *out, size_t size, const char *key, bool dir)
{
	int n;

	if (dir)
		n = *key ? snprintf(out, size, "%s/%s/%s", GITKV_META_PREFIX, key, GITKV_RESERVED)
			 : snprintf(out, size, "%s/%s", GITKV_META_PREFIX, GITKV_RESERVED);
	else
		n = snprintf(out, size, "%s/%s", GITKV_META_PREFIX, key);
	if (n < 0 || (size_t)n >= size)
		return gitkv_error_set(GITKV_ENAMETOOLONG, "key too long for its metadata");
	return 0;
}

/* ---- the expiry index ---------------------------------------------------- */

static uint64_t hash_key(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

int gitkv_store__meta_init(gitkv_store *store)
{
	struct gitkv_meta_index *ix = &store->meta;

	ix->nbuckets = 64;
	ix->buckets = calloc(ix->nbuckets, sizeof(*ix->buckets));
	if (!ix->buckets)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	pthread_mutex_init(&ix->lock, NULL);
	ix->ready = true;
	return 0;
}

void gitkv_store__meta_free(gitkv_store *store)
{
	struct gitkv_meta_index *ix = &store->meta;

	if (!ix->ready)
		return;
	for (size_t i = 0; i < ix->nbuckets; i++) {
		struct meta_ent *e = ix->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	}
	free(ix->buckets);
	pthread_mutex_destroy(&ix->lock);
	ix->ready = false;
}

static struct meta_ent **find_locked(struct gitkv_meta_index *ix, const char *key, uint64_t h)
{
	struct meta_ent **pp = &ix->buckets[h & (ix->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && !strcmp((*pp)->key, key))
			return pp;
	return pp;
}

static void grow_locked(struct gitkv_meta_index *ix)
{
	size_t nb = ix->nbuckets * 2;
	struct meta_ent **b = calloc(nb, sizeof(*b));

	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < ix->nbuckets; i++) {
		struct meta_ent *e = ix->buckets[i], *next;

		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(ix->buckets);
	ix->buckets = b;
	ix->nbuckets = nb;
}

/* Set (expires > 0) or drop the expiry of `key`. */
static void index_set(struct gitkv_meta_index *ix, const char *key, int64_t expires)
{
	uint64_t h = hash_key(key);
	struct meta_ent **pp, *e;

	pthread_mutex_lock(&ix->lock);
	pp = find_locked(ix, key, h);
	e = *pp;
	if (e && expires) {
		if (e->expires == ix->min)
			ix->min_stale = true;
		e->expires = expires;
	} else if (e) {
		*pp = e->next;
		if (e->expires == ix->min)
			ix->min_stale = true;
		free(e->key);
		free(e);
		__atomic_store_n(&ix->count, ix->count - 1, __ATOMIC_RELAXED);
	} else if (expires) {
		/* out of memory: the key is not indexed (it does not expire here) */
		if ((e = calloc(1, sizeof(*e))) && (e->key = strdup(key))) {
			e->expires = expires;
			e->hash = h;
			*pp = e;
			__atomic_store_n(&ix->count, ix->count + 1, __ATOMIC_RELAXED);
			if (ix->count > ix->nbuckets)
				grow_locked(ix);
		} else {
			free(e);
		}
	}
	if (expires && !ix->min_stale && (!ix->min || expires < ix->min))
		ix->min = expires;
	pthread_mutex_unlock(&ix->lock);
}

/* The key a metadata path describes, or NULL for a prefix's metadata. */
static const char *meta_key(const char *path)
{
	size_t plen = strlen(GITKV_META_PREFIX);

	if (strncmp(path, GITKV_META_PREFIX "/", plen + 1) != 0)
		return NULL;
	if (!strcmp(gitkv_key_basename(path), GITKV_RESERVED))
		return NULL;
	return path + plen + 1;
}

void gitkv_store__meta_update(gitkv_store *store, const struct snap_change *changes, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		const struct snap_change *c = &changes[i];
		const char *key = meta_key(c->path);
		gitkv_meta m = { 0 };

		if (!key)
			continue;
		if (gitkv_type_is_value(c->new.type)) {
			char *buf = NULL;
			size_t len;

			if (gitkv_store_read_blob(store, &c->new.oid, &buf, &len) == 0)
				(void)gitkv_meta_parse(&m, buf, len); /* malformed: no expiry */
			free(buf);
		} else if (!gitkv_type_is_value(c->old.type)) {
			continue; /* a prefix of metadata: its values are listed one by one */
		}
		index_set(&store->meta, key, m.expires);
	}
}

int64_t gitkv_store_expiry(gitkv_store *store, const char *key)
{
	struct gitkv_meta_index *ix = &store->meta;
	int64_t t = 0;
	uint64_t h;

	if (!__atomic_load_n(&ix->count, __ATOMIC_RELAXED))
		return 0;
	h = hash_key(key);
	pthread_mutex_lock(&ix->lock);
	struct meta_ent *e = *find_locked(ix, key, h);
	if (e)
		t = e->expires;
	pthread_mutex_unlock(&ix->lock);
	return t;
}

bool gitkv_store_is_expired(gitkv_store *store, const char *key, int64_t now)
{
	int64_t t = gitkv_store_expiry(store, key);

	return t && t <= now;
}

int64_t gitkv_store_next_expiry(gitkv_store *store)
{
	struct gitkv_meta_index *ix = &store->meta;
	int64_t min;

	pthread_mutex_lock(&ix->lock);
	if (ix->min_stale) {
		ix->min = 0;
		for (size_t i = 0; i < ix->nbuckets; i++)
			for (struct meta_ent *e = ix->buckets[i]; e; e = e->next)
				if (!ix->min || e->expires < ix->min)
					ix->min = e->expires;
		ix->min_stale = false;
	}
	min = ix->min;
	pthread_mutex_unlock(&ix->lock);
	return min;
}

/* ---- reading and writing metadata ------------------------------------------ */

int gitkv_store_meta(gitkv_store *store, const char *key, gitkv_meta *out)
{
	char path[GITKV_KEY_MAX + 64];
	gitkv_entry e, me;
	char *buf = NULL;
	size_t len;
	int error;

	memset(out, 0, sizeof(*out));
	if (*key && (error = gitkv_key_validate(key)) < 0)
		return error;
	if (gitkv_snapshot_lookup(store->snap, key, &e) != 0 ||
	    (e.type != GITKV_TYPE_DIR && gitkv_store_is_expired(store, key, time(NULL))))
		return gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found", key);
	if ((error = gitkv_meta__path(path, sizeof(path), key, e.type == GITKV_TYPE_DIR)) < 0)
		return error;
	if (gitkv_snapshot_lookup(store->snap, path, &me) != 0 || !gitkv_type_is_value(me.type))
		return 0;
	if ((error = gitkv_store_read_blob(store, &me.oid, &buf, &len)) < 0)
		return error;
	error = gitkv_meta_parse(out, buf, len);
	free(buf);
	return error;
}

int gitkv_store_set_ttl(gitkv_store *store, const char *key, int64_t ttl,
			const gitkv_writer *writer, gitkv_result *result)
{
	gitkv_op op = { .type = GITKV_OP_TTL, .key = key, .ttl = ttl };

	return gitkv_store_apply(store, &op, writer, result);
}

struct expired {
	const char **keys;
	size_t n, cap;
	int64_t now;
};

int gitkv_store_expire(gitkv_store *store, int64_t now, size_t *count_out, gitkv_result *result)
{
	struct gitkv_meta_index *ix = &store->meta;
	struct expired x = { .now = now };
	gitkv_op op = { .type = GITKV_OP_EXPIRE, .flags = GITKV_OP_INDIRECT, .now = now };
	int error = 0;

	if (count_out)
		*count_out = 0;
	if (result) {
		result->committed = false;
		gitkv_snapshot_head(store->snap, &result->commit, NULL);
	}
	pthread_mutex_lock(&ix->lock);
	for (size_t i = 0; i < ix->nbuckets && !error; i++)
		for (struct meta_ent *e = ix->buckets[i]; e && !error; e = e->next) {
			if (e->expires > now)
				continue;
			if (x.n == x.cap) {
				size_t cap = x.cap ? 2 * x.cap : 16;
				const char **v = realloc(x.keys, cap * sizeof(*v));

				if (!v) {
					error = gitkv_error_set(GITKV_ERROR, "out of memory");
					break;
				}
				x.keys = v;
				x.cap = cap;
			}
			if (!(x.keys[x.n] = strdup(e->key)))
				error = gitkv_error_set(GITKV_ERROR, "out of memory");
			else
				x.n++;
		}
	pthread_mutex_unlock(&ix->lock);
	if (!error && x.n) {
		op.keys = x.keys;
		op.nkeys = x.n;
		op.key = x.keys[0];
		gitkv_result r;

		error = gitkv_store_apply(store, &op, NULL, &r);
		if (!error && count_out)
			*count_out = r.committed ? r.count : 0;
		if (!error && result)
			*result = r;
	}
	for (size_t i = 0; i < x.n; i++)
		free((char *)x.keys[i]);
	free(x.keys);
	return error;
}
