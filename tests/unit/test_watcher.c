/*
 * test_watcher.c - the ref watcher (gitkv_sync/watcher.h): a commit made by
 * someone else reaches the store's subscribers without anyone asking.
 *
 * Each test starts a watcher on the sandbox's store, subscribes to its change
 * stream, and commits behind its back: through a second store handle (what
 * the gitkv command does) or with the git command itself. The watcher's
 * periodic refresh runs every two seconds, so a change seen well within that
 * proves inotify did the work.
 */
#include "sandbox.h"

#include <gitkv_sync/watcher.h>

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* Faster than the watcher's 2 s tick: only an inotify event can be this quick. */
#define PROMPT_MS 1000

/* What the subscriber saw; written on the publishing thread. */
struct seen {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int external; /* batches with origin EXTERNAL; under lock */
	gitkv_oid last_head;   /* new_head of the last one; under lock */
};

/*
 * What a test started, kept here so that teardown can stop it even when an
 * assertion ended the test early: the watcher must stop before the store is
 * freed, and the subscriber's record must outlive both.
 */
static sync_watcher *watcher;
static gitkv_store *other;
static struct seen seen = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static int watcher_teardown(void **state)
{
	sync_watcher_stop(watcher);
	watcher = NULL;
	gitkv_store_free(other);
	other = NULL;
	return sandbox_teardown(state);
}

static void on_change(const gitkv_change_batch *batch, void *payload)
{
	struct seen *seen = payload;

	if (batch->origin != GITKV_ORIGIN_EXTERNAL)
		return;
	pthread_mutex_lock(&seen->lock);
	seen->external++;
	seen->last_head = batch->new_head;
	pthread_cond_broadcast(&seen->cond);
	pthread_mutex_unlock(&seen->lock);
}

static void seen_init(struct seen *seen, gitkv_store *store)
{
	pthread_mutex_lock(&seen->lock);
	seen->external = 0;
	memset(&seen->last_head, 0, sizeof(seen->last_head));
	pthread_mutex_unlock(&seen->lock);
	assert_ok(gitkv_store_subscribe(store, on_change, seen));
}

/* Wait up to `ms` for more than `before` external batches; returns the count. */
static unsigned int wait_external(struct seen *seen, unsigned int before, long ms)
{
	struct timespec until;
	unsigned int n;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&seen->lock);
	while (seen->external <= before &&
	       pthread_cond_timedwait(&seen->cond, &seen->lock, &until) == 0)
		;
	n = seen->external;
	pthread_mutex_unlock(&seen->lock);
	return n;
}

static unsigned int external_count(struct seen *seen)
{
	unsigned int n;

	pthread_mutex_lock(&seen->lock);
	n = seen->external;
	pthread_mutex_unlock(&seen->lock);
	return n;
}

static int run(const char *fmt, const char *arg)
{
	char cmd[2048];
	int status;

	snprintf(cmd, sizeof(cmd), fmt, arg, arg, arg, arg);
	status = system(cmd);
	return status == -1 ? -1 : WEXITSTATUS(status);
}

static void test_watcher__a_commit_by_another_handle_reaches_the_subscribers(void **state)
{
	struct sandbox *sb = *state;
	gitkv_result r;
	unsigned int before;

	seen_init(&seen, sb->store);
	assert_ok(sync_watcher_start(&watcher, sb->store));
	other = sandbox_open(sb, NULL);
	usleep(100 * 1000); /* let the first refresh pass */

	before = external_count(&seen);
	assert_ok(gitkv_store_set(other, "app/db/host", "db1", 3, NULL, &r));
	assert_true(r.committed);
	assert_true(wait_external(&seen, before, PROMPT_MS) > before);
	pthread_mutex_lock(&seen.lock);
	assert_true(gitkv_oid_equal(&seen.last_head, &r.commit));
	pthread_mutex_unlock(&seen.lock);
	assert_value_str(sb->store, "app/db/host", "db1");

	before = external_count(&seen);
	assert_ok(gitkv_store_delete(other, "app/db/host", NULL, &r));
	assert_true(wait_external(&seen, before, PROMPT_MS) > before);
	assert_type(sb->store, "app/db/host", GITKV_TYPE_NONE);
}

static void test_watcher__a_commit_by_the_git_command_is_noticed(void **state)
{
	struct sandbox *sb = *state;
	unsigned int before;

	seen_init(&seen, sb->store);
	assert_ok(sync_watcher_start(&watcher, sb->store));
	usleep(100 * 1000);

	before = external_count(&seen);
	assert_int_equal(
	    run("cd '%s' && blob=$(printf 'from git' | git hash-object -w --stdin) && "
		"tree=$(printf '100644 blob %%s\\tnote\\n' $blob | git mktree) && "
		"commit=$(git -c user.name=t -c user.email=t@t commit-tree -m 'set note' "
		"$tree) && git update-ref refs/heads/main $commit",
		sb->repo),
	    0);
	assert_true(wait_external(&seen, before, PROMPT_MS) > before);
	assert_value_str(sb->store, "note", "from git");

	assert_int_equal(sandbox_fsck(sb), 0);
}

static void test_watcher__packing_the_refs_loses_nothing(void **state)
{
	struct sandbox *sb = *state;
	unsigned int before;

	set_str(sb->store, "a", "1");
	seen_init(&seen, sb->store);
	assert_ok(sync_watcher_start(&watcher, sb->store));
	other = sandbox_open(sb, NULL);
	usleep(100 * 1000);

	/* The loose ref goes away, the branch lives on in packed-refs. */
	assert_int_equal(run("git -C '%s' pack-refs --all --prune", sb->repo), 0);
	before = external_count(&seen);
	set_str(other, "b", "2");
	assert_true(wait_external(&seen, before, PROMPT_MS) > before);
	assert_value_str(sb->store, "a", "1");
	assert_value_str(sb->store, "b", "2");
}

static void test_watcher__a_branch_moved_in_packed_refs_is_noticed(void **state)
{
	struct sandbox *sb = *state;
	unsigned int before;

	set_str(sb->store, "a", "1");
	assert_int_equal(run("git -C '%s' pack-refs --all --prune", sb->repo), 0);
	seen_init(&seen, sb->store);
	assert_ok(sync_watcher_start(&watcher, sb->store));
	usleep(100 * 1000);

	/* No loose ref at all: the branch moves by a rename over packed-refs. */
	before = external_count(&seen);
	assert_int_equal(run("cd '%s' && blob=$(printf 2 | git hash-object -w --stdin) && "
			     "tree=$(printf '100644 blob %%s\tb\n' $blob | git mktree) && "
			     "commit=$(git -c user.name=t -c user.email=t@t commit-tree "
			     "-p refs/heads/main -m 'set b' $tree) && "
			     "printf '# pack-refs with: peeled fully-peeled sorted \n%%s "
			     "refs/heads/main\n' $commit > packed-refs.new && "
			     "mv packed-refs.new packed-refs && test ! -e refs/heads/main",
			     sb->repo),
			 0);
	assert_true(wait_external(&seen, before, PROMPT_MS) > before);
	assert_value_str(sb->store, "b", "2");
	assert_type(sb->store, "a", GITKV_TYPE_NONE);
}

static void test_watcher__its_own_commits_are_not_reported_twice(void **state)
{
	struct sandbox *sb = *state;

	seen_init(&seen, sb->store);
	assert_ok(sync_watcher_start(&watcher, sb->store));
	usleep(100 * 1000);

	set_str(sb->store, "k", "v");
	/* The ref moved, the watcher refreshed; HEAD was already known. */
	assert_int_equal(wait_external(&seen, 0, 300), 0);
}

/* The SigBlk mask of thread `tid`, from /proc. */
static unsigned long long blocked_mask(pid_t tid)
{
	char path[64], line[256];
	unsigned long long mask = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigBlk: %llx", &mask) == 1)
			break;
	fclose(f);
	return mask;
}

/* Thread ids of this process, into `tids`; returns how many. */
static size_t list_threads(pid_t *tids, size_t max)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) && n < max)
		if (e->d_name[0] != '.')
			tids[n++] = (pid_t)atoi(e->d_name);
	closedir(d);
	return n;
}

static bool contains(const pid_t *tids, size_t n, pid_t tid)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (tids[i] == tid)
			return true;
	return false;
}

static void test_watcher__its_thread_blocks_the_process_signals(void **state)
{
	struct sandbox *sb = *state;
	const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1};
	pid_t before[64], after[64];
	size_t nbefore, nafter, i, j, found = 0;
	sigset_t mine;

	nbefore = list_threads(before, 64);
	assert_ok(sync_watcher_start(&watcher, sb->store));
	nafter = list_threads(after, 64);

	for (i = 0; i < nafter; i++) {
		unsigned long long mask;

		if (contains(before, nbefore, after[i]))
			continue;
		found++;
		mask = blocked_mask(after[i]);
		for (j = 0; j < sizeof(sigs) / sizeof(sigs[0]); j++)
			assert_true(mask & (1ULL << (sigs[j] - 1)));
	}
	assert_true(found >= 1);

	/* The caller's own mask is as it was. */
	pthread_sigmask(SIG_BLOCK, NULL, &mine);
	for (j = 0; j < sizeof(sigs) / sizeof(sigs[0]); j++)
		assert_false(sigismember(&mine, sigs[j]));
}

static void test_watcher__stop_accepts_null(void **state)
{
	sync_watcher_stop(NULL);
}

static void test_watcher__start_and_stop_leave_no_descriptor_behind(void **state)
{
	struct sandbox *sb = *state;
	int i, probe_before, probe_after;

	/* One round first, so that whatever the store opens lazily is open. */
	assert_ok(sync_watcher_start(&watcher, sb->store));
	usleep(100 * 1000);
	sync_watcher_stop(watcher);
	watcher = NULL;
	probe_before = dup(0);
	close(probe_before);
	for (i = 0; i < 20; i++) {
		assert_ok(sync_watcher_start(&watcher, sb->store));
		sync_watcher_stop(watcher);
		watcher = NULL;
	}
	probe_after = dup(0);
	close(probe_after);
	assert_int_equal(probe_after, probe_before);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(
		test_watcher__a_commit_by_another_handle_reaches_the_subscribers, sandbox_setup,
		watcher_teardown),
	    cmocka_unit_test_setup_teardown(test_watcher__a_commit_by_the_git_command_is_noticed,
					    sandbox_setup, watcher_teardown),
	    cmocka_unit_test_setup_teardown(test_watcher__packing_the_refs_loses_nothing,
					    sandbox_setup, watcher_teardown),
	    cmocka_unit_test_setup_teardown(test_watcher__a_branch_moved_in_packed_refs_is_noticed,
					    sandbox_setup, watcher_teardown),
	    cmocka_unit_test_setup_teardown(test_watcher__its_own_commits_are_not_reported_twice,
					    sandbox_setup, watcher_teardown),
	    cmocka_unit_test_setup_teardown(test_watcher__its_thread_blocks_the_process_signals,
					    sandbox_setup, watcher_teardown),
	    cmocka_unit_test(test_watcher__stop_accepts_null),
	    cmocka_unit_test_setup_teardown(test_watcher__start_and_stop_leave_no_descriptor_behind,
					    sandbox_setup, watcher_teardown),
	};

	return cmocka_run_group_tests_name("watcher", tests, sandbox_group_setup,
					   sandbox_group_teardown);
}
