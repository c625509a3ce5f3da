/*
 * control.c - the virtual /.gitkv tree.
 *
 * A fixed table of nodes. File contents are generated from the store each
 * time they are opened (the handle keeps them, and they are served with
 * direct_io so the kernel never caches a stale copy); getattr generates
 * them too so that the size it reports is the size a read returns. Every
 * document is built with json-c: a node name or path may hold any byte.
 * Times are ISO-8601 in UTC; what has not happened yet (a remote never
 * fetched, an unborn branch) is null rather than a made-up value.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include <gitkv/key.h>
#include <gitkv/snapshot.h>

#include "control.h"

static const struct fs_control_dirent control_root[] = {
    {"status", FS_INO_STATUS, S_IFREG},
};

bool fs_control_is(fuse_ino_t ino)
{
	return ino == FS_INO_CONTROL || ino == FS_INO_STATUS;
}

fuse_ino_t fs_control_lookup(fuse_ino_t parent, const char *name)
{
	size_t n;
	const struct fs_control_dirent *ents = fs_control_list(parent, &n);

	if (parent == FUSE_ROOT_ID && strcmp(name, GITKV_RESERVED) == 0)
		return FS_INO_CONTROL;
	for (size_t i = 0; ents && i < n; i++) {
		if (strcmp(ents[i].name, name) == 0)
			return ents[i].ino;
	}
	return 0;
}

const struct fs_control_dirent *fs_control_list(fuse_ino_t ino, size_t *count_out)
{
	if (ino != FS_INO_CONTROL)
		return NULL;
	*count_out = sizeof(control_root) / sizeof(control_root[0]);
	return control_root;
}

/* `t` (UTC seconds) as ISO-8601 ("2024-05-01T12:00:00Z"), or JSON null for 0: never. */
static json_object *json_time(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) || !strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return NULL;
	return json_object_new_string(buf);
}

/* A commit id as hex, or JSON null for the zero id. */
static json_object *json_oid(const gitkv_oid *oid)
{
	char hex[GITKV_OID_HEXSZ + 1];

	if (gitkv_oid_is_zero(oid))
		return NULL;
	return json_object_new_string(gitkv_oid_fmt(hex, oid));
}

/* Add `v` (NULL: JSON null) to `obj` as `k`; 0 or -1. */
static int add(json_object *obj, const char *k, json_object *v)
{
	return json_object_object_add(obj, k, v);
}

static json_object *remote_json(const sync_remote_status *st)
{
	json_object *r = json_object_new_object();

	if (!r)
		return NULL;
	if (add(r, "name", json_object_new_string(st->name)) ||
	    add(r, "url", json_object_new_string(st->url)) ||
	    add(r, "last_fetch", json_time(st->last_fetch)) ||
	    add(r, "last_push", json_time(st->last_push)) ||
	    add(r, "last_fetch_ok",
		json_object_new_boolean(st->last_fetch && !st->last_fetch_error)) ||
	    add(r, "last_push_ok",
		json_object_new_boolean(st->last_push && !st->last_push_error)) ||
	    add(r, "last_error",
		st->last_error[0] ? json_object_new_string(st->last_error) : NULL) ||
	    add(r, "failures", json_object_new_int64(st->failures)) ||
	    add(r, "ahead", json_object_new_int64((int64_t)st->ahead)) ||
	    add(r, "behind", json_object_new_int64((int64_t)st->behind)) ||
	    add(r, "lag_s", json_object_new_double(st->lag_s)) ||
	    add(r, "remote_head", json_oid(&st->remote_head))) {
		json_object_put(r);
		return NULL;
	}
	return r;
}

/* "remotes" and "pending_pushes" from the sync engine's status. */
static int add_sync(json_object *obj, const struct fs_control_source *src)
{
	sync_remote_status *st = NULL;
	json_object *remotes = json_object_new_array(), *r;
	size_t n = sync_engine_status(src->engine, NULL, 0), got = 0;
	int64_t pending = 0;
	int err = -1;

	if (!remotes)
		return -1;
	if (n && !(st = calloc(n, sizeof(*st))))
		goto out;
	if (n)
		got = sync_engine_status(src->engine, st, n);
	for (size_t i = 0; i < got && i < n; i++) {
		if (!(r = remote_json(&st[i])) || json_object_array_add(remotes, r)) {
			json_object_put(r);
			goto out;
		}
		pending += (int64_t)st[i].ahead;
	}
	err = add(obj, "remotes", remotes);
	remotes = NULL;
	if (!err)
		err = add(obj, "pending_pushes", json_object_new_int64(pending));
out:
	json_object_put(remotes);
	free(st);
	return err;
}

static int status_json(const struct fs_control_source *src, char **out, size_t *len_out)
{
	gitkv_store *store = src->store;
	gitkv_snapshot *snap = gitkv_store_snapshot(store);
	json_object *obj = json_object_new_object();
	char hex[GITKV_OID_HEXSZ + 1] = ""; /* an unborn branch: "" */
	const char *text;
	gitkv_oid head;
	uint64_t gen;
	size_t len;
	int err = ENOMEM;

	if (!obj)
		return ENOMEM;
	gitkv_snapshot_head(snap, &head, &gen);
	if (!gitkv_oid_is_zero(&head))
		gitkv_oid_fmt(hex, &head);
	if (add(obj, "head", json_object_new_string(hex)) ||
	    add(obj, "keys", json_object_new_int64((int64_t)gitkv_snapshot_count(snap))) ||
	    add(obj, "node", json_object_new_string(gitkv_store_node(store))) ||
	    add(obj, "store", json_object_new_string(gitkv_store_path(store))) ||
	    add(obj, "sync_mode",
		json_object_new_string(src->sync_mode ? src->sync_mode : "async")) ||
	    add(obj, "quorum", json_object_new_int(src->quorum)) || add_sync(obj, src))
		goto out;
	text = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
						       JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!text)
		goto out;
	len = strlen(text);
	*out = malloc(len + 2);
	if (!*out)
		goto out;
	memcpy(*out, text, len);
	(*out)[len++] = '\n';
	(*out)[len] = '\0';
	*len_out = len;
	err = 0;
out:
	json_object_put(obj);
	return err;
}

int fs_control_content(const struct fs_control_source *src, fuse_ino_t ino, char **out,
		       size_t *len_out)
{
	switch (ino) {
	case FS_INO_STATUS:
		return status_json(src, out, len_out);
	case FS_INO_CONTROL:
		return EISDIR;
	default:
		return ENOENT;
	}
}

int fs_control_stat(const struct fs_control_source *src, fuse_ino_t ino, struct stat *st)
{
	char *text;
	size_t len = 0;

	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	switch (ino) {
	case FS_INO_CONTROL:
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return 0;
	case FS_INO_STATUS:
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
		if (fs_control_content(src, ino, &text, &len) == 0)
			free(text);
		st->st_size = (off_t)len;
		st->st_blocks = (blkcnt_t)((len + 511) / 512);
		return 0;
	default:
		return ENOENT;
	}
}
