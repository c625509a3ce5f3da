/*
 * metrics.c - the Prometheus text of /.gitkv/metrics (see metrics.h).
 *
 * Every family has its HELP and TYPE lines; counters end in _total; label
 * values (remote names) are escaped as the format requires. Reads and
 * writes count the requests that reached the daemon: a read served from
 * the kernel's page cache never does.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gitkv/snapshot.h>
#include <gitkv/store.h>
#include <gitkv_sync/engine.h>
#include <gitkv_sync/reaper.h>

#include "fs.h"
#include "metrics.h"
#include "replay.h"

#define MAX_REMOTES 64

struct out {
	char *buf;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->oom = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = (o->cap + (size_t)n + 1) * 2;
		char *b = realloc(o->buf, cap);

		if (!b) {
			o->oom = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
	family(o, name, "counter", help);
	put(o, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(struct out *o, const char *name, const char *help, double v)
{
	family(o, name, "gauge", help);
	put(o, "%s %.17g\n", name, v);
}

/* `s` as a label value: backslash, double quote and newline escaped. */
static void label(struct out *o, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			put(o, "\\\\");
		else if (*s == '"')
			put(o, "\\\"");
		else if (*s == '\n')
			put(o, "\\n");
		else
			put(o, "%c", *s);
	}
}

static void per_remote(struct out *o, const sync_remote_status *rs, size_t n, const char *name,
		       const char *type, const char *help, double (*value)(const sync_remote_status *))
{
	family(o, name, type, help);
	for (size_t i = 0; i < n; i++) {
		put(o, "%s{remote=\"", name);
		label(o, rs[i].name);
		put(o, "\"} %.17g\n", value(&rs[i]));
	}
}

static double r_failures(const sync_remote_status *r) { return r->failures; }
static double r_lag(const sync_remote_status *r) { return r->lag_s; }
static double r_ahead(const sync_remote_status *r) { return (double)r->ahead; }
static double r_behind(const sync_remote_status *r) { return (double)r->behind; }
static double r_fetch(const sync_remote_status *r) { return (double)r->last_fetch; }
static double r_push(const sync_remote_status *r) { return (double)r->last_push; }
static double r_up(const sync_remote_status *r)
{
	return r->last_fetch && !r->last_fetch_error && !r->failures ? 1 : 0;
}

int fs_metrics_render(struct gitkvfs *fs, char **out, size_t *len_out)
{
	static const double bounds[GITKV_LATENCY_BUCKETS] = GITKV_LATENCY_BOUNDS;
	struct out o = { 0 };
	gitkv_store_stats st;
	uint64_t rounds = 0, failures = 0, conflicts = 0, batches, steps, fallbacks;
	sync_remote_status *rs = NULL;
	size_t nr = 0;

	gitkv_store_stats_get(fs->store, &st);
	sync_engine_counters(fs->engine, &rounds, &failures, &conflicts);
	fs_replay_counters(fs->replay, &batches, &steps, &fallbacks);
	if (fs->engine && (rs = calloc(MAX_REMOTES, sizeof(*rs))))
		nr = sync_engine_status(fs->engine, rs, MAX_REMOTES);
	if (nr > MAX_REMOTES)
		nr = MAX_REMOTES;

	counter(&o, "gitkv_reads_total", "Read requests that reached the daemon.",
		__atomic_load_n(&fs->stats.reads, __ATOMIC_RELAXED));
	counter(&o, "gitkv_read_bytes_total", "Bytes returned by those reads.",
		__atomic_load_n(&fs->stats.read_bytes, __ATOMIC_RELAXED));
	counter(&o, "gitkv_writes_total", "Write requests through the mount.",
		__atomic_load_n(&fs->stats.writes, __ATOMIC_RELAXED));
	counter(&o, "gitkv_written_bytes_total", "Bytes written through the mount.",
		__atomic_load_n(&fs->stats.write_bytes, __ATOMIC_RELAXED));
	counter(&o, "gitkv_commits_total", "Commits made by this daemon.", st.commits);
	counter(&o, "gitkv_operations_total", "Changes committed (several may share a commit).",
		st.ops);
	counter(&o, "gitkv_failed_operations_total", "Changes refused when they were committed.",
		st.failed_ops);
	counter(&o, "gitkv_committed_bytes_total", "Value bytes committed.", st.bytes_written);

	family(&o, "gitkv_commit_latency_seconds", "histogram",
	       "Time from a change's request to its commit on the branch.");
	for (int i = 0; i < GITKV_LATENCY_BUCKETS; i++)
		put(&o, "gitkv_commit_latency_seconds_bucket{le=\"%g\"} %llu\n", bounds[i],
		    (unsigned long long)st.latency_le[i]);
	put(&o, "gitkv_commit_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
	    (unsigned long long)st.latency_count);
	put(&o, "gitkv_commit_latency_seconds_sum %.9f\n", (double)st.latency_sum_ns / 1e9);
	put(&o, "gitkv_commit_latency_seconds_count %llu\n", (unsigned long long)st.latency_count);

	counter(&o, "gitkv_sync_rounds_total", "Sync rounds completed.", rounds);
	counter(&o, "gitkv_sync_failures_total", "Failed attempts to fetch from or push to a remote.",
		failures);
	counter(&o, "gitkv_conflicts_resolved_total",
		"Keys changed on both sides of a merge, resolved by the merge rule.", conflicts);
	per_remote(&o, rs, nr, "gitkv_remote_up", "gauge",
		   "1 if the last round with the remote succeeded.", r_up);
	per_remote(&o, rs, nr, "gitkv_remote_consecutive_failures", "gauge",
		   "Failed rounds with the remote since its last success.", r_failures);
	per_remote(&o, rs, nr, "gitkv_remote_lag_seconds", "gauge",
		   "Seconds since the remote last had every local commit.", r_lag);
	per_remote(&o, rs, nr, "gitkv_remote_ahead_commits", "gauge",
		   "Local commits the remote does not have.", r_ahead);
	per_remote(&o, rs, nr, "gitkv_remote_behind_commits", "gauge",
		   "Remote commits not merged here yet.", r_behind);
	per_remote(&o, rs, nr, "gitkv_remote_last_fetch_timestamp_seconds", "gauge",
		   "UTC time of the last fetch attempt (0: never).", r_fetch);
	per_remote(&o, rs, nr, "gitkv_remote_last_push_timestamp_seconds", "gauge",
		   "UTC time of the last push attempt (0: never).", r_push);

	counter(&o, "gitkv_keys_expired_total", "Keys deleted by the TTL reaper.",
		sync_reaper_expired(fs->reaper));
	counter(&o, "gitkv_replay_batches_total",
		"Changes from elsewhere replayed through the mount (one per new HEAD).", batches);
	counter(&o, "gitkv_replay_steps_total", "Paths replayed through the mount.", steps);
	counter(&o, "gitkv_replay_fallbacks_total",
		"Paths that could not be replayed and were invalidated instead.", fallbacks);
	counter(&o, "gitkv_cache_invalidations_total", "Kernel cache invalidations sent.",
		__atomic_load_n(&fs->stats.invalidations, __ATOMIC_RELAXED));
	gauge(&o, "gitkv_keys", "Paths in HEAD's tree.", (double)gitkv_snapshot_count(fs->snap));
	gauge(&o, "gitkv_start_time_seconds", "UTC time the daemon started.", (double)fs->started);
	free(rs);
	if (o.oom) {
		free(o.buf);
		return ENOMEM;
	}
	*out = o.buf ? o.buf : strdup("");
	*len_out = o.len;
	return *out ? 0 : ENOMEM;
}
