/*
 * buffer.h - the bytes of one key while it is open.
 *
 * Every open handle of a key shares one buffer, attached to the key's inode
 * (inode.h): writes from any handle land in it, reads are served from it,
 * and flush/fsync commit it when dirty. A buffer is created by the first
 * open, loaded from the snapshot's blob, and freed when the last handle is
 * released. The in-memory temporary files (ignored names) keep their
 * content in a buffer for as long as they exist.
 *
 * Threads: FUSE worker threads use a buffer concurrently; `lock` guards
 * every field but `commit_lock`. `commit_lock` is held across one commit of
 * the buffer's bytes, so two flushes of the same key commit one after the
 * other and neither returns before the bytes it saw are on the branch.
 * Lock order: commit_lock, then the inode table's lock, then `lock`. No
 * buffer lock is held while calling gitkv_store_apply() except commit_lock.
 */
#ifndef GITKVFS_BUFFER_H
#define GITKVFS_BUFFER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <gitkv/types.h>

struct fs_buf {
	pthread_mutex_t commit_lock; /* see "Threads" above */
	pthread_mutex_t lock;	     /* guards the fields below */
	char *data;
	size_t size;	  /* bytes of the value */
	size_t cap;	  /* bytes allocated at data */
	bool loaded;	  /* data holds the value (or a new file's bytes) */
	bool dirty;	  /* changed since loaded or last committed */
	bool written;	  /* dirty by write(), not only by truncation */
	bool stale;	  /* the key changed outside the mount: reload when clean */
	int error;	  /* a write failed (errno): the next flush drops the changes */
	gitkv_oid oid;	  /* the blob `data` was loaded from; zero if none */
	gitkv_type vtype; /* FILE, EXEC or LINK */
	int64_t mtime;	  /* last change through the mount, UTC seconds */
};

/* A new, empty, not yet loaded buffer; NULL when out of memory. */
struct fs_buf *fs_buf_new(void);

void fs_buf_free(struct fs_buf *buf);

/*
 * With buf->lock held: write `len` bytes at `off`, growing the value (the
 * gap reads as zero bytes). Returns 0, EFBIG when the value would exceed
 * `max` bytes, or ENOMEM. Marks the buffer dirty.
 */
int fs_buf_write(struct fs_buf *buf, const void *data, size_t len, off_t off, size_t max);

/*
 * With buf->lock held: set the size of the value to `size` (zero-filled
 * when it grows). Returns 0, EFBIG past `max`, EINVAL for a negative
 * size, or ENOMEM. Marks the buffer dirty.
 */
int fs_buf_truncate(struct fs_buf *buf, off_t size, size_t max);

/*
 * With buf->lock held: replace the value by `data` (malloc'd; the buffer
 * takes it) loaded from blob `oid`. The buffer is then loaded and clean.
 */
void fs_buf_replace(struct fs_buf *buf, char *data, size_t len, const gitkv_oid *oid);

/*
 * With buf->lock held: forget every change: the buffer is empty, clean and
 * not loaded (the next user loads the value again).
 */
void fs_buf_discard(struct fs_buf *buf);

/*
 * With buf->lock held: a malloc'd copy of the value in `*out` (never NULL
 * on success, even when empty). Returns 0 or ENOMEM.
 */
int fs_buf_copy(const struct fs_buf *buf, char **out, size_t *len_out);

#endif
