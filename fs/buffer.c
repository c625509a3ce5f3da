/*
 * buffer.c - the shared bytes of an open key.
 *
 * A plain growable byte array with the flags the flush logic needs. The
 * capacity grows by doubling so a file written in 4 KiB pieces costs
 * O(log n) reallocations; the value's ceiling (max_value_size) is checked
 * before anything grows, so a runaway writer gets EFBIG, not the daemon's
 * memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buffer.h"

struct fs_buf *fs_buf_new(void)
{
	struct fs_buf *buf = calloc(1, sizeof(*buf));

	if (!buf)
		return NULL;
	pthread_mutex_init(&buf->commit_lock, NULL);
	pthread_mutex_init(&buf->lock, NULL);
	buf->vtype = GITKV_TYPE_FILE;
	buf->mtime = time(NULL);
	return buf;
}

void fs_buf_free(struct fs_buf *buf)
{
	if (!buf)
		return;
	pthread_mutex_destroy(&buf->lock);
	pthread_mutex_destroy(&buf->commit_lock);
	free(buf->data);
	free(buf);
}

static int reserve(struct fs_buf *buf, size_t need)
{
	size_t cap;
	char *p;

	if (need <= buf->cap)
		return 0;
	cap = buf->cap ? buf->cap : 4096;
	while (cap < need)
		cap *= 2;
	p = realloc(buf->data, cap);
	if (!p)
		return ENOMEM;
	buf->data = p;
	buf->cap = cap;
	return 0;
}

static void touch(struct fs_buf *buf)
{
	buf->dirty = true;
	buf->loaded = true;
	buf->mtime = time(NULL);
}

int fs_buf_write(struct fs_buf *buf, const void *data, size_t len, off_t off, size_t max)
{
	size_t end;
	int err;

	if (off < 0)
		return EINVAL;
	if ((uint64_t)off > max || len > max - (size_t)off)
		return EFBIG;
	end = (size_t)off + len;
	if ((err = reserve(buf, end)) != 0)
		return err;
	if ((size_t)off > buf->size)
		memset(buf->data + buf->size, 0, (size_t)off - buf->size);
	memcpy(buf->data + off, data, len);
	if (end > buf->size)
		buf->size = end;
	touch(buf);
	buf->written = true;
	return 0;
}

int fs_buf_truncate(struct fs_buf *buf, off_t size, size_t max)
{
	int err;

	if (size < 0)
		return EINVAL;
	if ((uint64_t)size > max)
		return EFBIG;
	if ((err = reserve(buf, (size_t)size)) != 0)
		return err;
	if ((size_t)size > buf->size)
		memset(buf->data + buf->size, 0, (size_t)size - buf->size);
	buf->size = (size_t)size;
	touch(buf);
	return 0;
}

void fs_buf_replace(struct fs_buf *buf, char *data, size_t len, const gitkv_oid *oid)
{
	free(buf->data);
	buf->data = data;
	buf->size = len;
	buf->cap = len;
	buf->loaded = true;
	buf->dirty = false;
	buf->written = false;
	buf->stale = false;
	if (oid)
		buf->oid = *oid;
	else
		memset(&buf->oid, 0, sizeof(buf->oid));
}

void fs_buf_discard(struct fs_buf *buf)
{
	free(buf->data);
	buf->data = NULL;
	buf->size = buf->cap = 0;
	buf->loaded = buf->dirty = buf->written = buf->stale = false;
	buf->error = 0;
	memset(&buf->oid, 0, sizeof(buf->oid));
}

int fs_buf_copy(const struct fs_buf *buf, char **out, size_t *len_out)
{
	char *p = malloc(buf->size ? buf->size : 1);

	if (!p)
		return ENOMEM;
	if (buf->size)
		memcpy(p, buf->data, buf->size);
	*out = p;
	*len_out = buf->size;
	return 0;
}
