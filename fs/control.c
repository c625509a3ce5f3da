/*
 * control.c - the virtual /.gitkv tree.
 *
 * A fixed table of nodes. File contents are generated from the store each
 * time they are opened (the handle keeps them, and they are served with
 * direct_io so the kernel never caches a stale copy); getattr generates
 * them too so that the size it reports is the size a read returns. Every
 * document is built with json-c: a node name or path may hold any byte.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

static int status_json(gitkv_store *store, char **out, size_t *len_out)
{
	gitkv_snapshot *snap = gitkv_store_snapshot(store);
	char hex[GITKV_OID_HEXSZ + 1] = "";
	json_object *obj = json_object_new_object();
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
	if (json_object_object_add(obj, "head", json_object_new_string(hex)) ||
	    json_object_object_add(obj, "keys",
				   json_object_new_int64((int64_t)gitkv_snapshot_count(snap))) ||
	    json_object_object_add(obj, "node", json_object_new_string(gitkv_store_node(store))) ||
	    json_object_object_add(obj, "store", json_object_new_string(gitkv_store_path(store))))
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

int fs_control_content(gitkv_store *store, fuse_ino_t ino, char **out, size_t *len_out)
{
	switch (ino) {
	case FS_INO_STATUS:
		return status_json(store, out, len_out);
	case FS_INO_CONTROL:
		return EISDIR;
	default:
		return ENOENT;
	}
}

int fs_control_stat(gitkv_store *store, fuse_ino_t ino, struct stat *st)
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
		if (fs_control_content(store, ino, &text, &len) == 0)
			free(text);
		st->st_size = (off_t)len;
		st->st_blocks = (blkcnt_t)((len + 511) / 512);
		return 0;
	default:
		return ENOENT;
	}
}
