/*
 * test_sync.c - remotes (gitkv/remote.h), the sync engine
 * (gitkv_sync/engine.h), and the history queries the engine relies on
 * (gitkv_store_lookup_at, gitkv_store_contains, gitkv_store_ahead_behind).
 *
 * The remotes are local bare repositories in the test's directory
 * (cluster.c): a hub that nodes push to and fetch from, or a path where no
 * repository is, for an unreachable remote. Engines run with a one-hour
 * interval, so a round happens when the test asks for one (or shortly after
 * a local commit); teardown stops every engine before the stores go.
 *
 * Timing: nothing waits a fixed time. Bounds are generous and only ever
 * checked from below (a timeout must not return early).
 */
#include "cluster.h"

#include <gitkv_sync/engine.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A bound for anything that should take well under a second. */
#define LONG_MS 30000

/* ---- fixture --------------------------------------------------------------- */

#define MAX_ENGINES 4
static sync_engine *engines[MAX_ENGINES];

static int sync_teardown(void **state)
{
	for (int i = 0; i < MAX_ENGINES; i++) {
		sync_engine_stop(engines[i], 5);
		engines[i] = NULL;
	}
	return cluster_teardown(state);
}

/* Start an engine on `n` with the one remote NAME -> URL; teardown stops it. */
static sync_engine *start_engine(struct node *n, const char *name, const char *url)
{
	sync_remote remote = {.name = name, .url = url};
	sync_options opts = {.remotes = &remote, .nremotes = 1, .interval_s = 3600};
	int slot;

	opts.remote.version = GITKV_REMOTE_OPTIONS_VERSION;
	for (slot = 0; slot < MAX_ENGINES && engines[slot]; slot++)
		;
	assert_true(slot < MAX_ENGINES);
	assert_ok(sync_engine_start(&engines[slot], n->store, &opts));
	assert_non_null(engines[slot]);
	return engines[slot];
}


static gitkv_oid set_key(struct node *n, const char *key, const char *value)
{
	gitkv_result r;

	assert_ok(gitkv_store_set(n->store, key, value, strlen(value), NULL, &r));
	assert_true(r.committed);
	return r.commit;
}

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static sync_remote_status status_of(sync_engine *e)
{
	sync_remote_status st;

	memset(&st, 0, sizeof(st));
	assert_int_equal(sync_engine_status(e, &st, 1), 1);
	return st;
}

/* Does the repository at `path` have `commit` in its branch's history? */
static bool repo_has(struct node *reader, const char *path, const gitkv_oid *commit)
{
	gitkv_oid head = repo_head(path);
	bool in = false;

	/* The reader's store must know the head: fetch it first. */
	assert_ok(gitkv_store_contains(reader->store, &head, commit, &in));
	return in;
}

/* ---- push and fetch ---------------------------------------------------------- */

static void test_sync__a_push_is_rejected_when_the_remote_moved_on(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	gitkv_oid first;

	set_key(a, "app/a", "from-a");
	assert_ok(node_push_url(a, "hub", hub));
	first = repo_head(hub);
	assert_oid_equal(first, node_head(a));

	set_key(b, "app/b", "from-b");
	assert_gitkv(node_push_url(b, "hub", hub), GITKV_EMODIFIED);
	assert_oid_equal(repo_head(hub), first); /* the hub kept a's commit */
	assert_int_equal(cluster_fsck(hub), 0);
}

static void test_sync__after_a_rejected_push_fetch_merge_and_push_succeed(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	gitkv_oid a_commit, b_commit;
	gitkv_merge_result mr;

	a_commit = set_key(a, "app/a", "from-a");
	assert_ok(node_push_url(a, "hub", hub));
	b_commit = set_key(b, "app/b", "from-b");
	assert_gitkv(node_push_url(b, "hub", hub), GITKV_EMODIFIED);

	assert_ok(node_pull_url(b, "hub", hub, &mr));
	assert_true(mr.changed);
	assert_false(mr.fast_forward);
	gitkv_merge_result_free(&mr);
	assert_ok(node_push_url(b, "hub", hub));
	assert_oid_equal(repo_head(hub), node_head(b));
	assert_true(repo_has(b, hub, &a_commit));
	assert_true(repo_has(b, hub, &b_commit));
	assert_int_equal(cluster_fsck(hub), 0);

	/* And a, behind now, catches up with a fast-forward. */
	assert_ok(node_pull_url(a, "hub", hub, &mr));
	assert_true(mr.fast_forward);
	gitkv_merge_result_free(&mr);
	assert_value_str(a->store, "app/b", "from-b");
}

static void test_sync__pushing_an_ancestor_never_rewinds_the_remote(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a");
	gitkv_oid old, head;

	old = set_key(a, "k", "1");
	head = set_key(a, "k", "2");
	assert_ok(node_push_url(a, "hub", hub));
	assert_oid_equal(repo_head(hub), head);
	assert_gitkv(gitkv_remote_push(a->store, "hub", hub, &old, NULL), GITKV_EMODIFIED);
	assert_oid_equal(repo_head(hub), head);
}

static void test_sync__fetch_records_the_remote_branch_and_returns_its_head(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	gitkv_oid head, tracked = {{0}};
	git_repository *repo = NULL;
	git_oid id;

	/* An empty remote: nothing to fetch, a zero head, no error. */
	assert_ok(gitkv_remote_fetch(b->store, "hub", hub, NULL, &head));
	assert_true(gitkv_oid_is_zero(&head));

	set_key(a, "k", "v");
	assert_ok(node_push_url(a, "hub", hub));
	assert_ok(gitkv_remote_fetch(b->store, "hub", hub, NULL, &head));
	assert_oid_equal(head, node_head(a));
	assert_int_equal(git_repository_open_bare(&repo, b->path), 0);
	assert_int_equal(git_reference_name_to_id(&id, repo, "refs/remotes/hub/main"), 0);
	tracked = sandbox_oid_from_git(&id);
	git_repository_free(repo);
	assert_oid_equal(tracked, head);
	/* Fetching does not touch the branch. */
	head = repo_head(b->path);
	assert_true(gitkv_oid_is_zero(&head));
	head = node_head(b);
	assert_true(gitkv_oid_is_zero(&head));
	assert_type(b->store, "k", GITKV_TYPE_NONE);
}

static void test_sync__fetch_from_a_missing_path_names_the_path(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	char missing[1100], url[1200];
	gitkv_oid head;

	snprintf(missing, sizeof(missing), "%s", cluster_path(c, "no-such-store.git"));
	assert_gitkv(gitkv_remote_fetch(a->store, "gone", missing, NULL, &head), GITKV_ERROR);
	assert_non_null(strstr(gitkv_error_last(), missing));
	assert_true(gitkv_oid_is_zero(&head));

	snprintf(url, sizeof(url), "file://%s", missing);
	assert_gitkv(gitkv_remote_fetch(a->store, "gone", url, NULL, &head), GITKV_ERROR);
	assert_non_null(strstr(gitkv_error_last(), missing));
}

static void test_sync__a_push_to_a_missing_path_fails_with_an_error(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	char missing[1100];

	snprintf(missing, sizeof(missing), "%s", cluster_path(c, "no-such-store.git"));
	set_key(a, "k", "v");
	assert_gitkv(node_push_url(a, "gone", missing), GITKV_ERROR);
	assert_non_null(strstr(gitkv_error_last(), missing));
	assert_int_equal(access(missing, F_OK), -1); /* nothing was created there */
}

/* ---- a push racing commits in the remote ------------------------------------ */

#define RACE_COMMITS 40

struct committer {
	gitkv_store *store;
	gitkv_oid commits[RACE_COMMITS];
	int error;
	char msg[256];
};

static void *commit_in_hub(void *arg)
{
	struct committer *w = arg;

	for (int i = 0; i < RACE_COMMITS && !w->error; i++) {
		char key[32], value[32];
		gitkv_result r;

		snprintf(key, sizeof(key), "hub/k%d", i);
		snprintf(value, sizeof(value), "h%d", i);
		w->error = gitkv_store_set(w->store, key, value, strlen(value), NULL, &r);
		if (w->error)
			snprintf(w->msg, sizeof(w->msg), "%s", gitkv_error_last());
		else
			w->commits[i] = r.commit;
	}
	return NULL;
}

static void test_sync__a_push_racing_a_commit_in_the_remote_loses_neither(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a");
	gitkv_store_options opts = GITKV_STORE_OPTIONS_INIT;
	struct committer w = {0};
	gitkv_oid mine[RACE_COMMITS / 2];
	pthread_t thread;
	int rc = 0, tries;

	opts.node = "hub";
	assert_ok(gitkv_store_open(&w.store, hub, &opts));
	assert_int_equal(pthread_create(&thread, NULL, commit_in_hub, &w), 0);
	for (int i = 0; i < RACE_COMMITS / 2; i++) {
		char key[32];

		snprintf(key, sizeof(key), "a/k%d", i);
		mine[i] = set_key(a, key, "a");
		rc = node_sync_url(a, "hub", hub);
		if (rc != 0 && rc != GITKV_EMODIFIED)
			break; /* a rejected push is fine: the next round retries */
	}
	pthread_join(thread, NULL);
	if (w.error)
		fail_msg("the hub's own commit failed: %s", w.msg);
	assert_true(rc == 0 || rc == GITKV_EMODIFIED);
	for (tries = 0; tries < 10 && (rc = node_sync_url(a, "hub", hub)) != 0; tries++)
		;
	assert_ok(rc);

	assert_oid_equal(repo_head(hub), node_head(a));
	for (int i = 0; i < RACE_COMMITS; i++)
		assert_true(repo_has(a, hub, &w.commits[i]));
	for (int i = 0; i < RACE_COMMITS / 2; i++)
		assert_true(repo_has(a, hub, &mine[i]));
	assert_ok(gitkv_store_refresh(w.store));
	assert_value_str(w.store, "hub/k0", "h0");
	assert_value_str(w.store, "hub/k39", "h39");
	assert_value_str(w.store, "a/k0", "a");
	assert_value_str(w.store, "a/k19", "a");
	gitkv_store_free(w.store);
	assert_int_equal(cluster_fsck(hub), 0);
}

/* ---- redaction and the remotes in the config ----------------------------------- */

static void test_sync__redact_hides_the_password(void **state)
{
	char out[256];

	gitkv_remote_redact(out, sizeof(out), "https://user:secret@host/x");
	assert_null(strstr(out, "secret"));
	assert_non_null(strstr(out, "user"));
	assert_non_null(strstr(out, "@host/x"));

	gitkv_remote_redact(out, sizeof(out), "https://user:secret@host:8443/x.git");
	assert_null(strstr(out, "secret"));
	assert_non_null(strstr(out, "host:8443/x.git"));

	gitkv_remote_redact(out, sizeof(out), "https://user:sec:ret@host/x");
	assert_null(strstr(out, "sec"));
	assert_null(strstr(out, "ret@"));
}

static void test_sync__redact_never_leaks_a_piece_of_the_password_when_truncating(void **state)
{
	const char *url = "https://user:secret@host/x";

	for (size_t size = 1; size <= strlen(url) + 1; size++) {
		char out[64];

		memset(out, 'Z', sizeof(out));
		gitkv_remote_redact(out, size, url);
		assert_true(strlen(out) < size);
		assert_int_equal(out[size], 'Z'); /* wrote nothing past `size` */
		assert_null(strstr(out, "sec"));
	}
}

static void test_sync__redact_leaves_urls_without_a_password_alone(void **state)
{
	static const char *const urls[] = {
	    "/var/lib/gitkv/app.git", "file:///var/lib/gitkv/app.git",
	    "ssh://git@host/x.git",   "git://host/x.git",
	    "https://host/x@y",	      "https://host/x",
	};
	char out[256];

	for (size_t i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		gitkv_remote_redact(out, sizeof(out), urls[i]);
		assert_string_equal(out, urls[i]);
	}
}

static const char *url_of(char **names, char **urls, size_t count, const char *name)
{
	for (size_t i = 0; i < count; i++)
		if (!strcmp(names[i], name))
			return urls[i];
	return NULL;
}

static void free_list(char **names, char **urls, size_t count)
{
	for (size_t i = 0; i < count; i++) {
		free(names[i]);
		free(urls[i]);
	}
	free(names);
	free(urls);
}

static void test_sync__saved_remotes_are_listed_back(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	char **names = NULL, **urls = NULL;
	size_t count = 0;

	assert_ok(gitkv_remote_list(a->store, &names, &urls, &count));
	assert_int_equal(count, 0);
	free_list(names, urls, count);

	assert_ok(gitkv_remote_save(a->store, "hub", "/var/lib/gitkv/hub.git"));
	assert_ok(gitkv_remote_save(a->store, "peer-1.b_c", "ssh://git@peer/x.git"));
	assert_ok(gitkv_remote_list(a->store, &names, &urls, &count));
	assert_int_equal(count, 2);
	assert_string_equal(url_of(names, urls, count, "hub"), "/var/lib/gitkv/hub.git");
	assert_string_equal(url_of(names, urls, count, "peer-1.b_c"), "ssh://git@peer/x.git");
	free_list(names, urls, count);

	/* Saving a name again replaces its URL. */
	assert_ok(gitkv_remote_save(a->store, "hub", "/srv/hub.git"));
	assert_ok(gitkv_remote_save(a->store, "hub", "/srv/hub.git"));
	assert_ok(gitkv_remote_list(a->store, &names, &urls, &count));
	assert_int_equal(count, 2);
	assert_string_equal(url_of(names, urls, count, "hub"), "/srv/hub.git");
	free_list(names, urls, count);
}

static void test_sync__a_saved_remote_is_known_to_git(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	char cmd[1024], line[512] = "";
	FILE *p;

	assert_ok(gitkv_remote_save(a->store, "hub", "/srv/hub.git"));
	snprintf(cmd, sizeof(cmd), "git -C '%s' config remote.hub.url", a->path);
	p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	assert_int_equal(pclose(p), 0);
	line[strcspn(line, "\n")] = '\0';
	assert_string_equal(line, "/srv/hub.git");
}

static void test_sync__a_bad_remote_name_returns_einvalid(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	char **names = NULL, **urls = NULL;
	size_t count = 0;

	assert_gitkv(gitkv_remote_save(a->store, "", "/srv/x.git"), GITKV_EINVALID);
	assert_gitkv(gitkv_remote_save(a->store, "two words", "/srv/x.git"), GITKV_EINVALID);
	assert_gitkv(gitkv_remote_save(a->store, "a/b", "/srv/x.git"), GITKV_EINVALID);
	assert_gitkv(gitkv_remote_save(a->store, "x]y", "/srv/x.git"), GITKV_EINVALID);
	assert_ok(gitkv_remote_list(a->store, &names, &urls, &count));
	assert_int_equal(count, 0);
	free_list(names, urls, count);
}

/* ---- the engine -------------------------------------------------------------- */

static void test_sync__engine_rounds_carry_a_change_from_node_to_node(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	sync_engine *ea = start_engine(a, "hub", hub), *eb = start_engine(b, "hub", hub);

	set_key(a, "app/db/host", "db1");
	assert_ok(sync_engine_round(ea, LONG_MS));
	assert_ok(sync_engine_round(eb, LONG_MS));
	assert_value_str(b->store, "app/db/host", "db1");
	assert_oid_equal(repo_head(hub), node_head(a));
}

static void test_sync__wait_pushed_returns_once_the_hub_has_the_commit(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a");
	sync_engine *e = start_engine(a, "hub", hub);
	gitkv_oid commit = set_key(a, "k", "v");
	sync_remote_status st;

	assert_ok(sync_engine_wait_pushed(e, &commit, 1, LONG_MS));
	assert_true(repo_has(a, hub, &commit));
	st = status_of(e);
	assert_int_equal(st.failures, 0);
	assert_ok(sync_engine_wait_pushed(e, &commit, 1, LONG_MS)); /* again: at once */
}

static void test_sync__wait_pushed_with_no_quorum_or_no_engine_returns_at_once(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	sync_engine *e = start_engine(a, "gone", cluster_path(c, "no-such-store.git"));
	gitkv_oid commit = set_key(a, "k", "v");

	assert_ok(sync_engine_wait_pushed(e, &commit, 0, LONG_MS));
	assert_ok(sync_engine_wait_pushed(NULL, &commit, 1, LONG_MS));
}

static void test_sync__wait_pushed_times_out_when_the_remote_is_unreachable(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	sync_engine *e = start_engine(a, "gone", cluster_path(c, "no-such-store.git"));
	gitkv_oid commit = set_key(a, "k", "v");
	double start, elapsed;

	start = now_mono();
	assert_gitkv(sync_engine_wait_pushed(e, &commit, 1, 1500), GITKV_ERROR);
	elapsed = now_mono() - start;
	/* Not before its timeout (a few ms of slack between the two clocks). */
	if (elapsed < 1.5 - 0.005)
		fail_msg("wait_pushed gave up after %.3f s, before its 1.5 s timeout", elapsed);
	/* The commit stays local. */
	assert_oid_equal(node_head(a), commit);
}

static void test_sync__failures_grow_while_the_remote_is_away_and_reset_after(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a");
	sync_engine *e = start_engine(a, "hub", hub);
	char away[1100];
	sync_remote_status st;
	unsigned int first;
	uint64_t rounds, failures, conflicts;

	snprintf(away, sizeof(away), "%s", cluster_path(c, "hub-away.git"));
	set_key(a, "k", "1");
	assert_ok(sync_engine_round(e, LONG_MS));
	st = status_of(e);
	assert_string_equal(st.name, "hub");
	assert_string_equal(st.url, hub);
	assert_int_equal(st.failures, 0);
	assert_string_equal(st.last_error, "");

	assert_int_equal(rename(hub, away), 0);
	set_key(a, "k", "2");
	assert_ok(sync_engine_round(e, LONG_MS));
	st = status_of(e);
	first = st.failures;
	assert_true(first >= 1);
	assert_int_not_equal(st.last_fetch_error, 0);
	assert_string_not_equal(st.last_error, "");
	assert_true(st.next_attempt > st.last_fetch);
	sync_engine_counters(e, &rounds, &failures, &conflicts);
	assert_true(failures >= 1);

	assert_ok(sync_engine_round(e, LONG_MS)); /* an explicit round ignores the backoff */
	st = status_of(e);
	assert_true(st.failures > first);

	assert_int_equal(rename(away, hub), 0);
	assert_ok(sync_engine_round(e, LONG_MS));
	st = status_of(e);
	assert_int_equal(st.failures, 0);
	assert_int_equal(st.last_fetch_error, 0);
	assert_int_equal(st.last_push_error, 0);
	assert_string_equal(st.last_error, "");
	assert_oid_equal(st.pushed, node_head(a));
	assert_oid_equal(repo_head(hub), node_head(a));
	assert_int_equal(st.ahead, 0);
	assert_int_equal(st.behind, 0);
}

static void test_sync__status_redacts_the_password_of_a_remote(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	sync_remote remote = {.name = "web", .url = "https://user:secret@127.0.0.1:1/x.git"};
	sync_options opts = {.remotes = &remote, .nremotes = 1, .interval_s = 3600};
	sync_remote_status st;

	opts.remote.version = GITKV_REMOTE_OPTIONS_VERSION;
	opts.remote.timeout_s = 2;
	assert_ok(sync_engine_start(&engines[0], a->store, &opts));
	st = status_of(engines[0]);
	assert_null(strstr(st.url, "secret"));
	assert_non_null(strstr(st.url, "127.0.0.1:1/x.git"));
}

/* ---- the cluster-wide exclusive create -------------------------------------- */

struct racer {
	struct node *n;
	sync_engine *e;
	pthread_barrier_t *barrier;
	const char *key;
	char value[64];
	int rc;
	char msg[256];
};

static void *race(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->barrier);
	r->rc = sync_engine_create_exclusive(r->e, r->n->store, r->key, r->value, strlen(r->value),
					     NULL, LONG_MS, NULL);
	snprintf(r->msg, sizeof(r->msg), "%s", r->rc ? gitkv_error_last() : "");
	return NULL;
}

static void test_sync__exclusive_creates_racing_on_three_nodes_have_one_winner(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *n[3] = {cluster_node(c, "a"), cluster_node(c, "b"), cluster_node(c, "c")};
	sync_engine *e[3];
	pthread_barrier_t barrier;

	for (int i = 0; i < 3; i++)
		e[i] = start_engine(n[i], "hub", hub);
	for (int round = 0; round < 10; round++) {
		struct racer r[3];
		pthread_t t[3];
		char key[32];
		int winner = -1;

		snprintf(key, sizeof(key), "locks/r%d", round);
		assert_int_equal(pthread_barrier_init(&barrier, NULL, 3), 0);
		for (int i = 0; i < 3; i++) {
			r[i] =
			    (struct racer){.n = n[i], .e = e[i], .barrier = &barrier, .key = key};
			snprintf(r[i].value, sizeof(r[i].value), "owner-%s-%d", n[i]->name, round);
			assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
		}
		for (int i = 0; i < 3; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&barrier);
		for (int i = 0; i < 3; i++) {
			if (r[i].rc == 0) {
				if (winner >= 0)
					fail_msg("round %d: both %s and %s created %s", round,
						 n[winner]->name, n[i]->name, key);
				winner = i;
			} else if (r[i].rc != GITKV_EEXISTS) {
				fail_msg("round %d: %s got %s (%s), want 0 or EEXISTS", round,
					 n[i]->name, gitkv_error_name(r[i].rc), r[i].msg);
			}
		}
		if (winner < 0)
			fail_msg("round %d: nobody created %s", round, key);
		/* A loser's branch holds the winner's value at once. */
		for (int i = 0; i < 3; i++)
			assert_value_str(n[i]->store, key, r[winner].value);
		for (int pass = 0; pass < 2; pass++)
			for (int i = 0; i < 3; i++)
				assert_ok(sync_engine_round(e[i], LONG_MS));
		for (int i = 0; i < 3; i++)
			assert_value_str(n[i]->store, key, r[winner].value);
	}
	assert_int_equal(cluster_fsck(hub), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(cluster_fsck(n[i]->path), 0);
}

static void test_sync__an_exclusive_create_of_a_key_the_hub_has_returns_eexists(void **state)
{
	struct cluster *c = *state;
	const char *hub = cluster_hub(c);
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	sync_engine *eb;

	set_key(a, "locks/x", "owner-a");
	assert_ok(node_push_url(a, "hub", hub));
	eb = start_engine(b, "hub", hub);
	assert_gitkv(sync_engine_create_exclusive(eb, b->store, "locks/x", "owner-b", 7, NULL,
						  LONG_MS, NULL),
		     GITKV_EEXISTS);
	assert_value_str(b->store, "locks/x", "owner-a");
}

static void test_sync__an_exclusive_create_with_the_hub_away_fails_and_creates_nothing(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a");
	sync_engine *e = start_engine(a, "gone", cluster_path(c, "no-such-store.git"));

	assert_gitkv(
	    sync_engine_create_exclusive(e, a->store, "locks/x", "owner-a", 7, NULL, 1000, NULL),
	    GITKV_ERROR);
	assert_type(a->store, "locks/x", GITKV_TYPE_NONE);
}

/* ---- revisions and history ------------------------------------------------- */

struct three_commits {
	gitkv_oid c1, c2, c3; /* k=v1; k=v2; other=x */
};

static struct three_commits three_commits(struct node *a)
{
	struct three_commits t;

	t.c1 = set_key(a, "k", "v1");
	t.c2 = set_key(a, "k", "v2");
	t.c3 = set_key(a, "other", "x");
	return t;
}

static void test_sync__lookup_at_a_full_commit_id(void **state)
{
	struct node *a = cluster_node(*state, "a");
	struct three_commits t = three_commits(a);
	gitkv_entry e;
	gitkv_oid at;
	char hex[GITKV_OID_HEXSZ + 1];

	assert_ok(gitkv_store_lookup_at(a->store, gitkv_oid_fmt(hex, &t.c1), "k", &e, &at));
	assert_int_equal(e.type, GITKV_TYPE_FILE);
	assert_oid_equal(e.oid, sandbox_blob_oid("v1", 2));
	assert_int_equal(e.size, 2);
	assert_int_equal(e.mtime, node_commit_time(a, &t.c1));
	assert_oid_equal(at, t.c1);
	/* The snapshot still shows HEAD. */
	assert_value_str(a->store, "k", "v2");
}

static void test_sync__lookup_at_an_abbreviated_id(void **state)
{
	struct node *a = cluster_node(*state, "a");
	struct three_commits t = three_commits(a);
	gitkv_entry e;
	gitkv_oid at;
	char hex[GITKV_OID_HEXSZ + 1];

	gitkv_oid_fmt(hex, &t.c1);
	hex[12] = '\0';
	assert_ok(gitkv_store_lookup_at(a->store, hex, "k", &e, &at));
	assert_oid_equal(e.oid, sandbox_blob_oid("v1", 2));
	assert_oid_equal(at, t.c1);
}

static void test_sync__lookup_at_head_relative_revisions(void **state)
{
	struct node *a = cluster_node(*state, "a");
	struct three_commits t = three_commits(a);
	gitkv_entry e;
	gitkv_oid at;

	assert_ok(gitkv_store_lookup_at(a->store, "HEAD~1", "k", &e, &at));
	assert_oid_equal(at, t.c2);
	assert_oid_equal(e.oid, sandbox_blob_oid("v2", 2));
	assert_ok(gitkv_store_lookup_at(a->store, "HEAD~2", "k", &e, &at));
	assert_oid_equal(at, t.c1);
	assert_oid_equal(e.oid, sandbox_blob_oid("v1", 2));
	assert_ok(gitkv_store_lookup_at(a->store, "HEAD", "other", &e, &at));
	assert_oid_equal(at, t.c3);
	assert_ok(gitkv_store_lookup_at(a->store, "main~1", "k", &e, NULL));
	assert_oid_equal(e.oid, sandbox_blob_oid("v2", 2));
}

static void test_sync__lookup_at_an_unknown_revision_returns_enotfound(void **state)
{
	struct node *a = cluster_node(*state, "a");
	gitkv_entry e;

	three_commits(a);
	assert_gitkv(gitkv_store_lookup_at(a->store, "0123456789abcdef0123456789abcdef01234567",
					   "k", &e, NULL),
		     GITKV_ENOTFOUND);
	assert_gitkv(gitkv_store_lookup_at(a->store, "no-such-branch", "k", &e, NULL),
		     GITKV_ENOTFOUND);
	assert_gitkv(gitkv_store_lookup_at(a->store, "HEAD~3", "k", &e, NULL), GITKV_ENOTFOUND);
	assert_int_equal(e.type, GITKV_TYPE_NONE);
}

static void test_sync__lookup_at_a_key_absent_from_the_revision_returns_enotfound(void **state)
{
	struct node *a = cluster_node(*state, "a");
	gitkv_entry e;

	three_commits(a);
	assert_gitkv(gitkv_store_lookup_at(a->store, "HEAD~1", "other", &e, NULL), GITKV_ENOTFOUND);
	assert_gitkv(gitkv_store_lookup_at(a->store, "HEAD", "k/below", &e, NULL), GITKV_ENOTFOUND);
}

static void test_sync__lookup_at_with_a_bad_key_returns_einvalid(void **state)
{
	struct node *a = cluster_node(*state, "a");
	gitkv_entry e;

	three_commits(a);
	assert_gitkv(gitkv_store_lookup_at(a->store, "HEAD", "../k", &e, NULL), GITKV_EINVALID);
	assert_gitkv(gitkv_store_lookup_at(a->store, "HEAD", "a//b", &e, NULL), GITKV_EINVALID);
}

static void test_sync__lookup_at_a_prefix_gives_a_directory(void **state)
{
	struct node *a = cluster_node(*state, "a");
	gitkv_entry e;

	set_key(a, "app/db/host", "db1");
	set_key(a, "app/db/port", "5432");
	assert_ok(gitkv_store_lookup_at(a->store, "HEAD", "app/db", &e, NULL));
	assert_int_equal(e.type, GITKV_TYPE_DIR);
	assert_int_equal(e.size, 2);
}

static void test_sync__contains_follows_ancestry(void **state)
{
	struct node *a = cluster_node(*state, "a");
	struct three_commits t = three_commits(a);
	gitkv_oid zero = {{0}}, unknown;
	bool in;

	assert_ok(gitkv_oid_parse(&unknown, "0123456789abcdef0123456789abcdef01234567"));
	assert_ok(gitkv_store_contains(a->store, &t.c3, &t.c1, &in));
	assert_true(in);
	assert_ok(gitkv_store_contains(a->store, &t.c1, &t.c3, &in));
	assert_false(in);
	assert_ok(gitkv_store_contains(a->store, &t.c2, &t.c2, &in));
	assert_true(in);
	assert_ok(gitkv_store_contains(a->store, &t.c1, &zero, &in));
	assert_true(in);
	assert_ok(gitkv_store_contains(a->store, &zero, &t.c1, &in));
	assert_false(in);
	assert_ok(gitkv_store_contains(a->store, &zero, &zero, &in));
	assert_true(in);
	assert_ok(gitkv_store_contains(a->store, &unknown, &t.c1, &in));
	assert_false(in);
	assert_ok(gitkv_store_contains(a->store, &t.c3, &unknown, &in));
	assert_false(in);
}

static void test_sync__ahead_behind_counts_each_sides_commits(void **state)
{
	struct cluster *c = *state;
	struct node *a = cluster_node(c, "a"), *b = cluster_node(c, "b");
	struct three_commits t = three_commits(a);
	gitkv_oid zero = {{0}}, a_head, b_head, fetched;
	gitkv_merge_result mr;
	size_t ahead, behind;

	assert_ok(gitkv_store_ahead_behind(a->store, &t.c3, &t.c1, &ahead, &behind));
	assert_int_equal(ahead, 2);
	assert_int_equal(behind, 0);
	assert_ok(gitkv_store_ahead_behind(a->store, &t.c1, &t.c3, &ahead, &behind));
	assert_int_equal(ahead, 0);
	assert_int_equal(behind, 2);
	assert_ok(gitkv_store_ahead_behind(a->store, &t.c3, &zero, &ahead, &behind));
	assert_int_equal(ahead, 3);
	assert_int_equal(behind, 0);
	assert_ok(gitkv_store_ahead_behind(a->store, &zero, &t.c3, &ahead, &behind));
	assert_int_equal(ahead, 0);
	assert_int_equal(behind, 3);
	assert_ok(gitkv_store_ahead_behind(a->store, &zero, &zero, &ahead, &behind));
	assert_int_equal(ahead, 0);
	assert_int_equal(behind, 0);

	/* Diverged: b has one commit a lacks, a has two that b lacks. */
	assert_ok(node_pull_url(b, "a", a->path, &mr));
	gitkv_merge_result_free(&mr);
	b_head = set_key(b, "from-b", "1");
	set_key(a, "from-a", "1");
	a_head = set_key(a, "from-a", "2");
	assert_ok(gitkv_remote_fetch(b->store, "a", a->path, NULL, &fetched));
	assert_oid_equal(fetched, a_head);
	assert_ok(gitkv_store_ahead_behind(b->store, &b_head, &a_head, &ahead, &behind));
	assert_int_equal(ahead, 1);
	assert_int_equal(behind, 2);
}

#define SYNC_TEST(name) cmocka_unit_test_setup_teardown(name, cluster_setup, sync_teardown)

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
	    SYNC_TEST(test_sync__a_push_is_rejected_when_the_remote_moved_on),
	    SYNC_TEST(test_sync__after_a_rejected_push_fetch_merge_and_push_succeed),
	    SYNC_TEST(test_sync__pushing_an_ancestor_never_rewinds_the_remote),
	    SYNC_TEST(test_sync__fetch_records_the_remote_branch_and_returns_its_head),
	    SYNC_TEST(test_sync__fetch_from_a_missing_path_names_the_path),
	    SYNC_TEST(test_sync__a_push_to_a_missing_path_fails_with_an_error),
	    SYNC_TEST(test_sync__a_push_racing_a_commit_in_the_remote_loses_neither),
	    SYNC_TEST(test_sync__redact_hides_the_password),
	    SYNC_TEST(test_sync__redact_never_leaks_a_piece_of_the_password_when_truncating),
	    SYNC_TEST(test_sync__redact_leaves_urls_without_a_password_alone),
	    SYNC_TEST(test_sync__saved_remotes_are_listed_back),
	    SYNC_TEST(test_sync__a_saved_remote_is_known_to_git),
	    SYNC_TEST(test_sync__a_bad_remote_name_returns_einvalid),
	    SYNC_TEST(test_sync__engine_rounds_carry_a_change_from_node_to_node),
	    SYNC_TEST(test_sync__wait_pushed_returns_once_the_hub_has_the_commit),
	    SYNC_TEST(test_sync__wait_pushed_with_no_quorum_or_no_engine_returns_at_once),
	    SYNC_TEST(test_sync__wait_pushed_times_out_when_the_remote_is_unreachable),
	    SYNC_TEST(test_sync__failures_grow_while_the_remote_is_away_and_reset_after),
	    SYNC_TEST(test_sync__status_redacts_the_password_of_a_remote),
	    SYNC_TEST(test_sync__exclusive_creates_racing_on_three_nodes_have_one_winner),
	    SYNC_TEST(test_sync__an_exclusive_create_of_a_key_the_hub_has_returns_eexists),
	    SYNC_TEST(test_sync__an_exclusive_create_with_the_hub_away_fails_and_creates_nothing),
	    SYNC_TEST(test_sync__lookup_at_a_full_commit_id),
	    SYNC_TEST(test_sync__lookup_at_an_abbreviated_id),
	    SYNC_TEST(test_sync__lookup_at_head_relative_revisions),
	    SYNC_TEST(test_sync__lookup_at_an_unknown_revision_returns_enotfound),
	    SYNC_TEST(test_sync__lookup_at_a_key_absent_from_the_revision_returns_enotfound),
	    SYNC_TEST(test_sync__lookup_at_with_a_bad_key_returns_einvalid),
	    SYNC_TEST(test_sync__lookup_at_a_prefix_gives_a_directory),
	    SYNC_TEST(test_sync__contains_follows_ancestry),
	    SYNC_TEST(test_sync__ahead_behind_counts_each_sides_commits),
	};

	(void)argc;
	(void)argv;
	return cmocka_run_group_tests_name("sync", tests, sandbox_group_setup,
					   sandbox_group_teardown);
}
