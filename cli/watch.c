/*
 * watch.c - `gitkv watch`: a line for every change to a key, as it happens.
 *
 * What changed is always read from the branch. The store's change stream
 * (gitkv_store_subscribe) reports each movement of HEAD that a refresh finds
 * as a list of paths with their old and new entries; every value at or below
 * the watched prefix that appeared, changed or went becomes one line,
 * CREATED, CHANGED or DELETED. So a change is reported once however many
 * inotify events it raised (a write is IN_MODIFY then IN_CLOSE_WRITE), a
 * write of the bytes a key already holds (no commit) is not a change, an
 * editor's temporary file (never committed, whatever the mount's ignore
 * patterns) never shows, and a rename is a deletion and a creation.
 *
 * When to look comes from one of two sources:
 *
 *   the mount   If the store is mounted here (/proc/self/mountinfo lists a
 *               fuse.gitkvfs mount whose source, gitkvfs's fsname, is the
 *               store's path), libinotifytools watches the mounted tree below
 *               the prefix. Every change reaches the mount, including those
 *               from other nodes and processes, which the daemon replays
 *               through it; each event, and every second without one, makes
 *               the watch refresh the store and report what moved.
 *   the branch  Otherwise the ref watcher (gitkv_sync/watcher.h) refreshes
 *               the store when the repository's refs change (inotify on the
 *               bare repository), and every two seconds regardless.
 *
 * If the mount goes away while watched, the watch carries on with the branch.
 * Directories created in the mount are watched as they appear; one renamed
 * within the watched tree keeps its old name in libinotifytools' table, so
 * new directories below it are noticed by the periodic refresh only.
 * SIGINT and SIGTERM only set a flag: the loop notices it when the blocking
 * wait for events is interrupted (or within a second) and returns.
 */
#include "watch.h"

#include <gitkv/error.h>
#include <gitkv/key.h>
#include <gitkv_sync/watcher.h>

#include <errno.h>
#include <inotifytools/inotifytools.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546

/* Everything that can mean a change below a watched directory. */
#define WATCH_EVENTS                                                                               \
	(IN_CLOSE_WRITE | IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |          \
	 IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

struct watch {
	gitkv_store *store;
	const char *prefix; /* "" for the whole store */
	char *mount;	    /* the store's mount point, or NULL */
	char *root;	    /* the directory watched in the mount */
	bool recursive;	    /* its whole subtree is watched */
	int root_wd;
	volatile sig_atomic_t write_error; /* errno of a failed write to stdout */
};

/* ---- reporting ----------------------------------------------------------------- */

/* True if a component of `path` is the reserved name: metadata, not a key. */
static bool is_metadata(const char *path)
{
	size_t n = strlen(GITKV_RESERVED);
	const char *p = path;

	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (len == n && !memcmp(p, GITKV_RESERVED, n))
			return true;
		if (!slash)
			return false;
		p = slash + 1;
	}
}

/*
 * The subscriber: one line per value in scope that appeared, changed or went.
 * It runs on whichever thread refreshed the store (the main thread, or the
 * ref watcher's), with the store's commit lock held; this process never
 * writes to the store, so a slow reader of standard output holds up nothing
 * but the watch itself.
 */
static void report(const gitkv_change_batch *batch, void *payload)
{
	struct watch *w = payload;

	for (size_t i = 0; i < batch->count && !w->write_error; i++) {
		const gitkv_change *c = &batch->changes[i];
		bool was = gitkv_type_is_value(c->old.type), is = gitkv_type_is_value(c->new.type);
		const char *what;

		if (!gitkv_key_has_prefix(c->path, w->prefix) || is_metadata(c->path))
			continue;
		if (!was && is)
			what = "CREATED";
		else if (was && !is)
			what = "DELETED";
		else if (was &&
			 (c->old.type != c->new.type || !gitkv_oid_equal(&c->old.oid, &c->new.oid)))
			what = "CHANGED";
		else
			continue;
		if (printf("%s %s\n", what, c->path) < 0 || fflush(stdout) == EOF) {
			w->write_error = errno ? errno : EIO;
			kill(getpid(), SIGTERM); /* wake the main thread */
		}
	}
}

static void say_what(const struct watch *w, char *out, size_t size)
{
	if (*w->prefix)
		snprintf(out, size, "'%s'", w->prefix);
	else
		snprintf(out, size, "the whole store");
}

/* ---- finding the mount ---------------------------------------------------------- */

/* Undo the octal escapes of /proc/self/mountinfo ("\040" for a space) in place. */
static void unescape(char *s)
{
	char *o = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 4;
		} else {
			*o++ = *s++;
		}
	}
	*o = '\0';
}

/* True if `mnt` is a FUSE mount this process may read and search. */
static bool usable(const char *mnt)
{
	struct statfs sf;

	return statfs(mnt, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC &&
	       access(mnt, R_OK | X_OK) == 0;
}

/*
 * The mount point of a gitkvfs mount of the store at `store_path` that this
 * process can use (malloc'd), or NULL. gitkvfs mounts with type
 * fuse.gitkvfs and the store's resolved path as its source (fsname).
 * A line of mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
 * [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS.
 */
static char *find_mount(const char *store_path)
{
	char *real = realpath(store_path, NULL), *line = NULL, *found = NULL;
	size_t cap = 0;
	FILE *f;

	if (!real)
		return NULL;
	f = fopen("/proc/self/mountinfo", "re");
	while (f && !found && getline(&line, &cap, f) > 0) {
		char *fields[5], *sep = strstr(line, " - "), *save = NULL, *type, *source;
		int n = 0;

		if (!sep)
			continue;
		*sep = '\0';
		for (char *tok = strtok_r(line, " ", &save); tok && n < 5;
		     tok = strtok_r(NULL, " ", &save))
			fields[n++] = tok;
		type = strtok_r(sep + 3, " \n", &save);
		source = type ? strtok_r(NULL, " \n", &save) : NULL;
		if (n < 5 || !source || strcmp(type, "fuse.gitkvfs"))
			continue;
		unescape(fields[3]);
		unescape(fields[4]);
		unescape(source);
		if (!strcmp(fields[3], "/") && !strcmp(source, real) && usable(fields[4]))
			found = strdup(fields[4]);
	}
	if (f)
		fclose(f);
	free(line);
	free(real);
	return found;
}

/* ---- watching the mount ---------------------------------------------------------- */

static bool is_dir(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * What to watch in the mount: the prefix when it is a directory (with its
 * subtree), the directory of a key (alone), or the nearest directory above a
 * prefix that does not exist yet (with its subtree, to see it appear).
 */
static char *watch_root(const char *mount, const char *prefix, bool *recursive)
{
	size_t mlen = strlen(mount);
	char *path = malloc(mlen + strlen(prefix) + 2);
	struct stat st;

	if (!path)
		return NULL;
	sprintf(path, "%s%s%s", mount, *prefix ? "/" : "", prefix);
	*recursive = true;
	if (*prefix && lstat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
		*strrchr(path, '/') = '\0';
		*recursive = false;
		return path;
	}
	while (strlen(path) > mlen && !is_dir(path))
		*strrchr(path, '/') = '\0';
	return path;
}

/* Set up the inotify watches; 0, or GITKV_ERROR with the reason. */
static int add_watches(struct watch *w)
{
	char *control = NULL, *slashed = NULL;
	const char *exclude[2] = {NULL, NULL};
	int ok;

	free(w->root);
	w->root = watch_root(w->mount, w->prefix, &w->recursive);
	if (!w->root || asprintf(&control, "%s/%s", w->mount, GITKV_RESERVED) < 0 ||
	    asprintf(&slashed, "%s/", w->root) < 0) {
		free(control);
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	}
	if (!inotifytools_initialize()) {
		free(control);
		free(slashed);
		return gitkv_error_set(GITKV_ERROR, "inotify: %s", strerror(inotifytools_error()));
	}
	exclude[0] = control; /* the mount's virtual control tree */
	if (w->recursive)
		ok = inotifytools_watch_recursively_with_exclude(w->root, WATCH_EVENTS, exclude);
	else
		ok = inotifytools_watch_file(w->root, WATCH_EVENTS);
	w->root_wd = inotifytools_wd_from_filename(slashed);
	if (w->root_wd < 0)
		w->root_wd = inotifytools_wd_from_filename(w->root);
	free(control);
	free(slashed);
	if (!ok) {
		int err = inotifytools_error();

		inotifytools_cleanup();
		return gitkv_error_set(GITKV_ERROR, "cannot watch '%s': %s", w->root,
				       strerror(err));
	}
	return 0;
}

enum event_meaning {
	EVENT_OK,
	EVENT_ROOT_GONE,  /* the watched directory was removed or moved */
	EVENT_MOUNT_GONE, /* the file system was unmounted */
};

static enum event_meaning on_event(struct watch *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_UNMOUNT)
		return EVENT_MOUNT_GONE;
	if (ev->wd == w->root_wd && (ev->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF)))
		return EVENT_ROOT_GONE;
	if (w->recursive && ev->len && (ev->mask & IN_ISDIR) &&
	    (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
		const char *dir = inotifytools_filename_from_wd(ev->wd);
		char *path;

		/* A new directory: watch it, so that what is written in it is seen at once. */
		if (dir && asprintf(&path, "%s%s", dir, ev->name) >= 0) {
			inotifytools_watch_recursively(path, WATCH_EVENTS);
			free(path);
		}
	}
	return EVENT_OK;
}

/*
 * Watch through the mount until a signal (0), until the mount goes away (1:
 * go on with the branch), or an error (GITKV_ERROR).
 */
static int watch_mount(struct watch *w)
{
	char what[GITKV_KEY_MAX + 32];
	int error;

	if ((error = add_watches(w)) < 0) {
		fprintf(stderr, "gitkv: %s; watching the branch instead\n", gitkv_error_last());
		return 1;
	}
	say_what(w, what, sizeof(what));
	fprintf(stderr, "gitkv: watching %s through the mount at %s\n", what, w->mount);
	error = gitkv_store_refresh(w->store); /* what happened since the store was opened */
	while (!error && !stop_signal && !w->write_error) {
		struct inotify_event *ev = inotifytools_next_event(1);
		enum event_meaning meaning = EVENT_OK;

		if (!ev && inotifytools_error() && inotifytools_error() != EINTR) {
			error = gitkv_error_set(GITKV_ERROR, "inotify: %s",
						strerror(inotifytools_error()));
			break;
		}
		if (ev)
			meaning = on_event(w, ev);
		if (meaning == EVENT_ROOT_GONE && usable(w->mount)) {
			inotifytools_cleanup();
			if (add_watches(w) < 0)
				meaning = EVENT_MOUNT_GONE;
		}
		if (meaning != EVENT_OK && !usable(w->mount)) {
			inotifytools_cleanup();
			fprintf(stderr, "gitkv: the mount at %s went away; watching the branch\n",
				w->mount);
			return gitkv_store_refresh(w->store) < 0 ? GITKV_ERROR : 1;
		}
		error = gitkv_store_refresh(w->store);
	}
	inotifytools_cleanup();
	return error;
}

/* ---- watching the branch ---------------------------------------------------------- */

static int watch_branch(struct watch *w, bool announce)
{
	sync_watcher *refs = NULL;
	sigset_t stops, old, wait;
	char what[GITKV_KEY_MAX + 32];
	int error;

	if (announce) {
		say_what(w, what, sizeof(what));
		fprintf(stderr,
			"gitkv: watching %s on the branch (the store is not mounted here)\n", what);
	}
	sigemptyset(&stops);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &stops, &old);
	error = sync_watcher_start(&refs, w->store);
	if (!error)
		error = gitkv_store_refresh(w->store);
	wait = old;
	sigdelset(&wait, SIGINT);
	sigdelset(&wait, SIGTERM);
	while (!error && !stop_signal && !w->write_error)
		sigsuspend(&wait);
	sync_watcher_stop(refs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return error;
}

/* ---- the command ----------------------------------------------------------------- */

int cli_watch(gitkv_store *store, const char *prefix)
{
	struct watch w = {.store = store, .prefix = prefix, .root_wd = -1};
	struct sigaction sa = {.sa_handler = on_stop_signal}, old_int, old_term;
	int error;

	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: the wait for events must return */
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	if ((error = gitkv_store_subscribe(store, report, &w)) < 0)
		goto out;
	w.mount = find_mount(gitkv_store_path(store));
	error = w.mount ? watch_mount(&w) : 1;
	if (error == 1)
		error = watch_branch(&w, !w.mount);
	gitkv_store_unsubscribe(store, report, &w);
	if (!error && w.write_error)
		error = gitkv_error_set(GITKV_ERROR, "cannot write to standard output: %s",
					strerror(w.write_error));
out:
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	free(w.mount);
	free(w.root);
	return error;
}
