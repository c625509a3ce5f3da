/*
 * store.c - opening a store, following its branch, and reading from it.
 *
 * A store is a bare repository plus a snapshot of its branch's tree (see
 * snapshot.c). Opening builds the snapshot by "refreshing" from an empty
 * one: the same difference walk that later brings in commits made by other
 * processes (gitkv_store_refresh). The walk compares the snapshot's tree ids
 * with the new commit's trees and descends only where they differ, so a
 * refresh costs the size of the change, not of the store.
 *
 * With opts.mtimes, each path's time of last change is then resolved by
 * walking first-parent history from HEAD, diffing each commit with its
 * parent (again only where tree ids differ), until every path has a time.
 *
 * The write path is in commit.c, history in history.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gitkv/key.h"
#include "gitkv/meta.h"
#include "store_internal.h"

_Static_assert(sizeof(git_oid) == sizeof(gitkv_oid), "git_oid is a bare SHA-1");

static pthread_once_t libgit2_once = PTHREAD_ONCE_INIT;

static void libgit2_setup(void)
{
	git_libgit2_init();
	/* We write raw objects we built ourselves; skip libgit2's re-checks. */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_OBJECT_CREATION, 0);
}

int gitkv_store__git_error(int gerr, const char *what)
{
	const git_error *e = git_error_last();
	const char *msg = e && e->message ? e->message : "unknown error";
	int code;

	switch (gerr) {
	case GIT_ENOTFOUND:
		code = GITKV_ENOTFOUND;
		break;
	case GIT_EEXISTS:
		code = GITKV_EEXISTS;
		break;
	case GIT_EMODIFIED:
		code = GITKV_EMODIFIED;
		break;
	default:
		code = GITKV_ERROR;
		if (errno == ENOSPC || errno == EDQUOT || strstr(msg, "No space left"))
			code = GITKV_ENOSPC;
		break;
	}
	gitkv_error_set(code, "%s: %s", what, msg);
	git_error_clear();
	return code;
}

gitkv_type gitkv_store__type_from_mode(git_filemode_t mode)
{
	switch ((int)mode) {
	case GIT_FILEMODE_TREE:
		return GITKV_TYPE_DIR;
	case GIT_FILEMODE_BLOB_EXECUTABLE:
		return GITKV_TYPE_EXEC;
	case GIT_FILEMODE_LINK:
		return GITKV_TYPE_LINK;
	case GIT_FILEMODE_BLOB:
	case 0100664: /* legacy group-writable blobs */
		return GITKV_TYPE_FILE;
	default:
		return GITKV_TYPE_NONE; /* gitlinks are not keys */
	}
}

const char *gitkv_store__mode_str(gitkv_type type)
{
	switch (type) {
	case GITKV_TYPE_DIR:
		return "40000";
	case GITKV_TYPE_EXEC:
		return "100755";
	case GITKV_TYPE_LINK:
		return "120000";
	default:
		return "100644";
	}
}

/* ---- change lists ------------------------------------------------------ */

int gitkv_store__change_push(struct change_list *l, const char *path, const gitkv_entry *old,
			     const gitkv_entry *new, bool emit)
{
	static const gitkv_entry none;
	struct snap_change *c;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct snap_change *v = realloc(l->v, cap * sizeof(*v));

		if (!v)
			return gitkv_error_set(GITKV_ERROR, "out of memory");
		l->v = v;
		l->cap = cap;
	}
	c = &l->v[l->n];
	c->path = strdup(path);
	if (!c->path)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	c->old = old ? *old : none;
	c->new = new ? *new : none;
	c->emit = emit;
	l->n++;
	return 0;
}

void gitkv_store__change_list_free(struct change_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

int gitkv_store__push_remove_subtree(struct change_list *l, struct snap_node *n)
{
	for (struct snap_node *c = n->child; c; c = c->next) {
		int error = gitkv_store__push_remove_subtree(l, c);

		if (error)
			return error;
	}
	return gitkv_store__change_push(l, n->path, &n->e, NULL, true);
}

bool gitkv_store__break_stale_lock(gitkv_store *store)
{
	char lock[4096];
	struct stat st;

	snprintf(lock, sizeof(lock), "%s/%s.lock", store->path, store->branch);
	if (stat(lock, &st) < 0 || time(NULL) - st.st_mtime < GITKV_STALE_LOCK_S)
		return false;
	if (unlink(lock) < 0)
		return false;
	fprintf(stderr, "gitkv: removed stale lock '%s' left by a process that died\n", lock);
	return true;
}

/* ---- following the branch ---------------------------------------------- */

int gitkv_store__read_branch(gitkv_store *store, gitkv_oid *out)
{
	git_oid id;
	int gerr = git_reference_name_to_id(&id, store->repo, store->branch);

	memset(out, 0, sizeof(*out));
	if (gerr == GIT_ENOTFOUND) {
		git_error_clear();
		return 0;
	}
	if (gerr < 0)
		return gitkv_store__git_error(gerr, "cannot read the branch");
	*out = *git2gk(&id);
	return 0;
}

struct diff_ctx {
	gitkv_store *store;
	struct change_list *list;
	int64_t mtime;
};

static int add_tree(struct diff_ctx *ctx, const char *path, const git_oid *tree_id);

/* Push the creation of one tree entry at `path` (and its contents). */
static int add_entry(struct diff_ctx *ctx, const char *path, const git_tree_entry *te)
{
	gitkv_type type = gitkv_store__type_from_mode(git_tree_entry_filemode(te));
	gitkv_entry e = { .type = type, .mtime = ctx->mtime, .size = GITKV_SIZE_UNKNOWN };
	int error;

	if (type == GITKV_TYPE_NONE)
		return 0;
	e.oid = *git2gk(git_tree_entry_id(te));
	if (type != GITKV_TYPE_DIR)
		return gitkv_store__change_push(ctx->list, path, NULL, &e, true);
	e.size = 0;
	error = gitkv_store__change_push(ctx->list, path, NULL, &e, true);
	if (!error)
		error = add_tree(ctx, path, git_tree_entry_id(te));
	return error;
}

static int add_tree(struct diff_ctx *ctx, const char *path, const git_oid *tree_id)
{
	git_tree *tree = NULL;
	size_t count, dir_index = ctx->list->n - 1;
	int error = git_tree_lookup(&tree, ctx->store->repo, tree_id);

	if (error < 0)
		return gitkv_store__git_error(error, "cannot read a tree");
	count = git_tree_entrycount(tree);
	ctx->list->v[dir_index].new.size = count;
	for (size_t i = 0; i < count && !error; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tree, i);
		char *child = gitkv_key_join(path, git_tree_entry_name(te));

		error = child ? add_entry(ctx, child, te) : gitkv_error_set(GITKV_ERROR, "out of memory");
		free(child);
	}
	git_tree_free(tree);
	return error;
}

/*
 * Compare the snapshot's directory `sn` with the tree `tree_id` and push the
 * steps that turn one into the other. `sn` is a directory node that exists.
 */
static int diff_dir(struct diff_ctx *ctx, struct snap_node *sn, const git_oid *tree_id)
{
	gitkv_snapshot *snap = ctx->store->snap;
	git_tree *tree = NULL;
	size_t count, dir_index = ctx->list->n - 1; /* our own step was pushed last */
	int error = git_tree_lookup(&tree, ctx->store->repo, tree_id);

	if (error < 0)
		return gitkv_store__git_error(error, "cannot read a tree");
	/* Removals first, children before their directory. */
	for (struct snap_node *c = sn->child; c && !error; c = c->next) {
		const git_tree_entry *te = git_tree_entry_byname(tree, c->name);

		if (!te || gitkv_store__type_from_mode(git_tree_entry_filemode(te)) == GITKV_TYPE_NONE)
			error = gitkv_store__push_remove_subtree(ctx->list, c);
	}
	count = git_tree_entrycount(tree);
	for (size_t i = 0; i < count && !error; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tree, i);
		gitkv_type type = gitkv_store__type_from_mode(git_tree_entry_filemode(te));
		char *path = gitkv_key_join(sn->path, git_tree_entry_name(te));
		struct snap_node *c;

		if (!path) {
			error = gitkv_error_set(GITKV_ERROR, "out of memory");
			break;
		}
		c = gitkv_snapshot__find(snap, path);
		if (c && c->e.type != type && (c->e.type == GITKV_TYPE_DIR || type == GITKV_TYPE_DIR)) {
			error = gitkv_store__push_remove_subtree(ctx->list, c);
			c = NULL;
		}
		if (error) {
		} else if (!c) {
			error = add_entry(ctx, path, te);
		} else if (!gitkv_oid_equal(&c->e.oid, git2gk(git_tree_entry_id(te))) ||
			   c->e.type != type) {
			gitkv_entry e = c->e;

			e.oid = *git2gk(git_tree_entry_id(te));
			e.type = type;
			e.mtime = ctx->mtime;
			if (type == GITKV_TYPE_DIR) {
				error = gitkv_store__change_push(ctx->list, path, &c->e, &e, false);
				if (!error)
					error = diff_dir(ctx, c, git_tree_entry_id(te));
			} else {
				if (!gitkv_oid_equal(&c->e.oid, &e.oid))
					e.size = GITKV_SIZE_UNKNOWN;
				error = gitkv_store__change_push(ctx->list, path, &c->e, &e, true);
			}
		}
		free(path);
	}
	if (!error)
		ctx->list->v[dir_index].new.size = count; /* entry counts follow the tree */
	git_tree_free(tree);
	return error;
}

int gitkv_store__publish(gitkv_store *store, struct snap_change *changes, size_t count,
			 const gitkv_oid *old_head, const gitkv_oid *new_head, gitkv_origin origin)
{
	gitkv_change *out = NULL;
	size_t n = 0;
	int error = gitkv_snapshot__apply(store->snap, changes, count, new_head);

	if (error)
		return error;
	gitkv_store__meta_update(store, changes, count);
	if (!store->nsubs)
		return 0;
	out = calloc(count ? count : 1, sizeof(*out));
	if (!out)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	for (size_t i = 0; i < count; i++) {
		if (!changes[i].emit)
			continue;
		out[n].path = changes[i].path;
		out[n].old = changes[i].old;
		out[n].new = changes[i].new;
		n++;
	}
	gitkv_change_batch batch = {
		.origin = origin,
		.old_head = *old_head,
		.new_head = *new_head,
		.changes = out,
		.count = n,
	};
	for (int i = 0; i < store->nsubs; i++)
		store->subs[i].fn(&batch, store->subs[i].payload);
	free(out);
	return 0;
}

int gitkv_store__refresh_locked(gitkv_store *store, gitkv_origin origin)
{
	gitkv_oid head, old_head;
	git_commit *commit = NULL;
	struct change_list list = { 0 };
	struct diff_ctx ctx = { .store = store, .list = &list };
	struct snap_node *root = gitkv_snapshot__root(store->snap);
	gitkv_entry root_new;
	int error = gitkv_store__read_branch(store, &head);

	if (error)
		return error;
	gitkv_snapshot_head(store->snap, &old_head, NULL);
	if (gitkv_oid_equal(&head, &old_head))
		return 0;
	root_new = root->e;
	if (gitkv_oid_is_zero(&head)) {
		/* The branch was deleted: everything goes. */
		for (struct snap_node *c = root->child; c && !error; c = c->next)
			error = gitkv_store__push_remove_subtree(&list, c);
		memset(&root_new.oid, 0, sizeof(root_new.oid));
		root_new.size = 0;
		if (!error)
			error = gitkv_store__change_push(&list, "", &root->e, &root_new, false);
		goto publish;
	}
	error = git_commit_lookup(&commit, store->repo, gk2git(&head));
	if (error < 0) {
		error = gitkv_store__git_error(error, "cannot read the branch's commit");
		goto out;
	}
	ctx.mtime = git_commit_time(commit);
	root_new.oid = *git2gk(git_commit_tree_id(commit));
	root_new.mtime = ctx.mtime;
	error = gitkv_store__change_push(&list, "", &root->e, &root_new, false);
	if (!error && !gitkv_oid_equal(&root->e.oid, &root_new.oid))
		error = diff_dir(&ctx, root, git_commit_tree_id(commit));
publish:
	if (!error)
		error = gitkv_store__publish(store, list.v, list.n, &old_head, &head, origin);
out:
	git_commit_free(commit);
	gitkv_store__change_list_free(&list);
	return error;
}

int gitkv_store_refresh(gitkv_store *store)
{
	int error;

	pthread_mutex_lock(&store->commit_lock);
	error = gitkv_store__refresh_locked(store, GITKV_ORIGIN_EXTERNAL);
	pthread_mutex_unlock(&store->commit_lock);
	return error;
}

/* ---- last-change times ------------------------------------------------- */

/*
 * Give every snapshot path that `tree` (at commit time `t`) holds with a
 * different id than `parent` (NULL: none) the time `t`, where it has none yet.
 */
static int stamp_changes(gitkv_store *store, const char *path, const git_oid *tree_id,
			 const git_oid *parent_id, int64_t t, size_t *remaining)
{
	git_tree *tree = NULL, *ptree = NULL;
	size_t count;
	int error = git_tree_lookup(&tree, store->repo, tree_id);

	if (error < 0)
		return gitkv_store__git_error(error, "cannot read a tree");
	if (parent_id && (error = git_tree_lookup(&ptree, store->repo, parent_id)) < 0) {
		git_tree_free(tree);
		return gitkv_store__git_error(error, "cannot read a tree");
	}
	count = git_tree_entrycount(tree);
	for (size_t i = 0; i < count && *remaining; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(tree, i);
		const git_tree_entry *pe = ptree ? git_tree_entry_byname(ptree, git_tree_entry_name(te)) : NULL;
		char *child;
		struct snap_node *n;

		if (pe && !git_oid_cmp(git_tree_entry_id(te), git_tree_entry_id(pe)) &&
		    git_tree_entry_filemode(te) == git_tree_entry_filemode(pe))
			continue;
		child = gitkv_key_join(path, git_tree_entry_name(te));
		if (!child) {
			error = gitkv_error_set(GITKV_ERROR, "out of memory");
			break;
		}
		n = gitkv_snapshot__find(store->snap, child);
		if (n && !n->e.mtime && gitkv_oid_equal(&n->e.oid, git2gk(git_tree_entry_id(te)))) {
			n->e.mtime = t; /* committer-only write, see snapshot_internal.h */
			(*remaining)--;
		}
		if (n && git_tree_entry_type(te) == GIT_OBJECT_TREE) {
			const git_oid *pid = pe && git_tree_entry_type(pe) == GIT_OBJECT_TREE
						     ? git_tree_entry_id(pe) : NULL;

			error = stamp_changes(store, child, git_tree_entry_id(te), pid, t, remaining);
		}
		free(child);
	}
	git_tree_free(ptree);
	git_tree_free(tree);
	return error;
}

static int resolve_mtimes(gitkv_store *store)
{
	gitkv_oid head;
	git_commit *commit = NULL;
	size_t remaining;
	int64_t t = 0;
	int error;

	gitkv_snapshot_head(store->snap, &head, NULL);
	if (gitkv_oid_is_zero(&head))
		return 0;
	/* Start from scratch: everything unresolved (the root is always fresh). */
	remaining = gitkv_snapshot__unresolved(store->snap);
	error = git_commit_lookup(&commit, store->repo, gk2git(&head));
	if (error < 0)
		return gitkv_store__git_error(error, "cannot read the branch's commit");
	while (!error && commit && remaining) {
		git_commit *parent = NULL;
		const git_oid *ptree = NULL;
		struct snap_node *root = gitkv_snapshot__root(store->snap);

		t = git_commit_time(commit);
		if (!root->e.mtime) {
			root->e.mtime = t;
			remaining--;
		}
		if (git_commit_parentcount(commit) > 0) {
			error = git_commit_parent(&parent, commit, 0);
			if (error < 0) {
				error = gitkv_store__git_error(error, "cannot walk history");
				break;
			}
			ptree = git_commit_tree_id(parent);
		}
		error = stamp_changes(store, "", git_commit_tree_id(commit), ptree, t, &remaining);
		git_commit_free(commit);
		commit = parent;
	}
	git_commit_free(commit);
	if (error < 0)
		return error;
	gitkv_snapshot__fill_mtimes(store->snap, t);
	return 0;
}

/* Zero every mtime (they were set to the head's time by the initial load). */
static void clear_mtimes(struct snap_node *n)
{
	n->e.mtime = 0;
	for (struct snap_node *c = n->child; c; c = c->next)
		clear_mtimes(c);
}

/* ---- open / init / free ------------------------------------------------ */

static int blob_size(void *payload, const gitkv_oid *oid, uint64_t *size_out)
{
	gitkv_store *store = payload;
	size_t len;
	git_object_t type;
	int error = git_odb_read_header(&len, &type, store->odb, gk2git(oid));

	if (error < 0) {
		git_error_clear();
		return -1;
	}
	*size_out = len;
	return 0;
}

static bool is_repository(const char *path)
{
	git_repository *repo = NULL;
	int error = git_repository_open_ext(&repo, path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL);

	git_repository_free(repo);
	git_error_clear();
	return error == 0;
}

int gitkv_store_init(const char *path)
{
	git_repository_init_options opts = GIT_REPOSITORY_INIT_OPTIONS_INIT;
	git_repository *repo = NULL;
	int error;

	pthread_once(&libgit2_once, libgit2_setup);
	if (is_repository(path))
		return gitkv_error_set(GITKV_EEXISTS, "'%s' is a repository already", path);
	opts.flags = GIT_REPOSITORY_INIT_BARE | GIT_REPOSITORY_INIT_MKPATH |
		     GIT_REPOSITORY_INIT_NO_REINIT;
	opts.initial_head = GITKV_DEFAULT_BRANCH;
	opts.description = "gitkv store\n";
	error = git_repository_init_ext(&repo, path, &opts);
	if (error < 0)
		return gitkv_store__git_error(error, "cannot create the store");
	git_repository_free(repo);
	return 0;
}

static char *default_node(void)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0 || !host[0])
		return strdup("localhost");
	host[sizeof(host) - 1] = '\0';
	return strdup(host);
}

static int find_branch(gitkv_store *store)
{
	git_reference *head = NULL;
	int error = git_reference_lookup(&head, store->repo, "HEAD");

	if (error < 0)
		return gitkv_store__git_error(error, "cannot read HEAD");
	if (git_reference_type(head) != GIT_REFERENCE_SYMBOLIC) {
		git_reference_free(head);
		return gitkv_error_set(GITKV_EINVALID, "HEAD of '%s' is detached", store->path);
	}
	store->branch = strdup(git_reference_symbolic_target(head));
	git_reference_free(head);
	return store->branch ? 0 : gitkv_error_set(GITKV_ERROR, "out of memory");
}

int gitkv_store_open(gitkv_store **out, const char *path, const gitkv_store_options *opts)
{
	gitkv_store_options defaults = GITKV_STORE_OPTIONS_INIT;
	gitkv_store *store;
	int error;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	pthread_once(&libgit2_once, libgit2_setup);
	if (!is_repository(path)) {
		struct stat st;

		if (!opts->create)
			return gitkv_error_set(GITKV_ENOTFOUND, "'%s' is not a git repository", path);
		if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
			return gitkv_error_set(GITKV_EINVALID, "'%s' is not a directory", path);
		if ((error = gitkv_store_init(path)) < 0)
			return error;
	}
	if (opts->fsync)
		git_libgit2_opts(GIT_OPT_ENABLE_FSYNC_GITDIR, 1);

	store = calloc(1, sizeof(*store));
	if (!store)
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	pthread_mutex_init(&store->commit_lock, NULL);
	pthread_mutex_init(&store->qlock, NULL);
	pthread_mutex_init(&store->name_lock, NULL);
	pthread_cond_init(&store->qcond, NULL);
	store->qtail = &store->qhead;
	store->name_uid = (uid_t)-1;
	store->path = realpath(path, NULL);
	store->node = opts->node ? strdup(opts->node) : default_node();
	store->committer = strdup(opts->committer ? opts->committer : "gitkv");
	store->max_value_size = opts->max_value_size ? opts->max_value_size
						     : GITKV_DEFAULT_MAX_VALUE_SIZE;
	store->readonly = opts->readonly;
	if (!store->path || !store->node || !store->committer) {
		error = gitkv_error_set(GITKV_ERROR, "out of memory");
		goto fail;
	}
	error = git_repository_open_ext(&store->repo, store->path, GIT_REPOSITORY_OPEN_NO_SEARCH,
					NULL);
	if (error < 0) {
		error = gitkv_store__git_error(error, "cannot open the store");
		goto fail;
	}
	if (!git_repository_is_bare(store->repo)) {
		error = gitkv_error_set(GITKV_EINVALID, "'%s' is not a bare repository", path);
		goto fail;
	}
	if ((error = git_repository_odb(&store->odb, store->repo)) < 0) {
		error = gitkv_store__git_error(error, "cannot open the object database");
		goto fail;
	}
	if ((error = find_branch(store)) < 0)
		goto fail;
	store->snap = gitkv_snapshot__new(blob_size, store);
	if (!store->snap) {
		error = gitkv_error_set(GITKV_ERROR, "out of memory");
		goto fail;
	}
	if ((error = gitkv_store__meta_init(store)) < 0)
		goto fail;
	if ((error = gitkv_store__refresh_locked(store, GITKV_ORIGIN_EXTERNAL)) < 0)
		goto fail;
	if (opts->mtimes) {
		clear_mtimes(gitkv_snapshot__root(store->snap));
		if ((error = resolve_mtimes(store)) < 0)
			goto fail;
	}
	*out = store;
	return 0;
fail:
	gitkv_store_free(store);
	return error;
}

void gitkv_store_free(gitkv_store *store)
{
	if (!store)
		return;
	gitkv_snapshot__free(store->snap);
	gitkv_store__meta_free(store);
	git_odb_free(store->odb);
	git_repository_free(store->repo);
	pthread_mutex_destroy(&store->commit_lock);
	pthread_mutex_destroy(&store->qlock);
	pthread_mutex_destroy(&store->name_lock);
	pthread_cond_destroy(&store->qcond);
	free(store->path);
	free(store->node);
	free(store->committer);
	free(store->branch);
	free(store);
}

const char *gitkv_store_path(const gitkv_store *store)
{
	return store->path;
}

const char *gitkv_store_node(const gitkv_store *store)
{
	return store->node;
}

size_t gitkv_store_max_value_size(const gitkv_store *store)
{
	return store->max_value_size;
}

gitkv_snapshot *gitkv_store_snapshot(gitkv_store *store)
{
	return store->snap;
}

int gitkv_store_subscribe(gitkv_store *store, gitkv_change_fn fn, void *payload)
{
	int error = 0;

	pthread_mutex_lock(&store->commit_lock);
	if (store->nsubs == GITKV_MAX_SUBSCRIBERS) {
		error = gitkv_error_set(GITKV_ERROR, "too many subscribers");
	} else {
		store->subs[store->nsubs].fn = fn;
		store->subs[store->nsubs].payload = payload;
		store->nsubs++;
	}
	pthread_mutex_unlock(&store->commit_lock);
	return error;
}

void gitkv_store_unsubscribe(gitkv_store *store, gitkv_change_fn fn, void *payload)
{
	pthread_mutex_lock(&store->commit_lock);
	for (int i = 0; i < store->nsubs; i++) {
		if (store->subs[i].fn == fn && store->subs[i].payload == payload) {
			memmove(&store->subs[i], &store->subs[i + 1],
				(size_t)(store->nsubs - i - 1) * sizeof(store->subs[0]));
			store->nsubs--;
			break;
		}
	}
	pthread_mutex_unlock(&store->commit_lock);
}

/* ---- reading ----------------------------------------------------------- */

int gitkv_store_read_blob(gitkv_store *store, const gitkv_oid *oid, char **buf_out,
			  size_t *len_out)
{
	git_odb_object *obj = NULL;
	size_t len;
	char *buf;
	int error = git_odb_read(&obj, store->odb, gk2git(oid));

	*buf_out = NULL;
	*len_out = 0;
	if (error < 0)
		return gitkv_store__git_error(error, "cannot read a value");
	len = git_odb_object_size(obj);
	buf = malloc(len + 1);
	if (!buf) {
		git_odb_object_free(obj);
		return gitkv_error_set(GITKV_ERROR, "out of memory");
	}
	memcpy(buf, git_odb_object_data(obj), len);
	buf[len] = '\0';
	git_odb_object_free(obj);
	*buf_out = buf;
	*len_out = len;
	return 0;
}

int gitkv_store_get(gitkv_store *store, const char *key, char **buf_out, size_t *len_out,
		    gitkv_entry *entry_out)
{
	gitkv_entry e;
	int error = gitkv_key__validate_internal(key);

	*buf_out = NULL;
	*len_out = 0;
	if (error)
		return error;
	if (gitkv_snapshot_lookup(store->snap, key, &e) < 0 ||
	    (e.type != GITKV_TYPE_DIR && gitkv_store_is_expired(store, key, time(NULL))))
		return gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found", key);
	if (e.type == GITKV_TYPE_DIR)
		return gitkv_error_set(GITKV_EISDIR, "'%s' is a directory", key);
	if (entry_out)
		*entry_out = e;
	return gitkv_store_read_blob(store, &e.oid, buf_out, len_out);
}
