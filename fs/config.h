/*
 * config.h - gitkvfs's configuration file, read with libconfig.
 *
 * The file sets what -o sets, by the same names (`node = "web1";`,
 * `sync_interval = 5;`, `fsync = true;`), plus what only a file can say
 * well: `store`, the `remotes` as a list of groups ({ name, url }), the
 * `ignore` patterns as a list of strings, and the FUSE mount options
 * allow_other, default_permissions and auto_unmount. gitkvfs.conf(5) is the
 * reference; examples/gitkvfs.conf a complete sample.
 *
 * This module only reads: it turns the file into the fields of a struct
 * gitkvfs_options, checking names and types, and records each setting's
 * line in from[]. Whether a value is in range, and which of the file's
 * values -o overrides, is decided by options.c, for -o and the file alike.
 *
 * Threads: main thread only.
 */
#ifndef GITKVFS_CONFIG_H
#define GITKVFS_CONFIG_H

#include "options.h"

/*
 * Read the file `path` into `out`, which holds the defaults: each setting's
 * value goes to its field (paths as written), its line to out->from[], the
 * file's `store` to out->store, its FUSE options to out->fuse_opts; out's
 * remotes are the file's. Returns 0, or GITKV_EINVALID with the message
 * "PATH:LINE: what is wrong" (a syntax error, an unknown setting, a value of
 * the wrong type) or "PATH: why it cannot be read". `out` is left for
 * fs_options_release() either way.
 */
int fs_config_read(const char *path, struct gitkvfs_options *out);

#endif
