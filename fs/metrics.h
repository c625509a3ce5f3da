/*
 * metrics.h - /.gitkv/metrics: the daemon's counters in the Prometheus text
 * exposition format (version 0.0.4).
 *
 * Threads: rendering reads counters that other threads update atomically
 * (fs/, core, the sync engine, the reaper, the replay thread) and takes only
 * the short locks of the engine's status; any thread may render.
 */
#ifndef GITKVFS_METRICS_H
#define GITKVFS_METRICS_H

#include <stddef.h>

struct gitkvfs;

/*
 * Render the metrics of `fs` into a new malloc'd buffer. Returns 0 or
 * ENOMEM. The same counters back the HTTP API's /metrics.
 */
int fs_metrics_render(struct gitkvfs *fs, char **out, size_t *len_out);

#endif
