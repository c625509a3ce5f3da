/*
 * cluster.c - several stores that sync with each other (see cluster.h).
 *
 * forge() edits trees one path at a time with tree builders, rewriting the
 * trees on the path the way the store does, and keeps emptied prefixes as
 * empty trees, as the store does too.
 */
#include "cluster.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define BRANCH "refs/heads/" GITKV_DEFAULT_BRANCH

/* ---- the directory and its nodes --------------------------------------- */

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

int cluster_setup(void **state)
{
	struct cluster *c = calloc(1, sizeof(*c));
	const char *tmp = getenv("TMPDIR");

	if (!c)
		return -1;
	snprintf(c->dir, sizeof(c->dir), "%s/gitkv-unit-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(c->dir)) {
		free(c);
		return -1;
	}
	*state = c;
	return 0;
}

static void free_nodes(struct cluster *c)
{
	for (size_t i = 0; i < c->n; i++) {
		gitkv_store_free(c->nodes[i].store);
		recorder_reset(&c->nodes[i].rec);
		free(c->nodes[i].rec.batches);
		pthread_mutex_destroy(&c->nodes[i].rec.lock);
	}
	c->n = 0;
}

int cluster_teardown(void **state)
{
	struct cluster *c = *state;

	if (!c)
		return 0;
	free_nodes(c);
	nftw(c->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(c);
	*state = NULL;
	return 0;
}

void cluster_reset(struct cluster *c)
{
	free_nodes(c);
	nftw(c->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	assert_int_equal(mkdir(c->dir, 0700), 0);
	c->hub[0] = '\0';
}

static void record_batch(const gitkv_change_batch *batch, void *payload)
{
	struct recorder *rec = payload;
	struct rec_batch *b;

	pthread_mutex_lock(&rec->lock);
	if (rec->n == rec->cap) {
		size_t cap = rec->cap ? rec->cap * 2 : 16;
		struct rec_batch *v = realloc(rec->batches, cap * sizeof(*v));

		if (!v)
			goto out;
		rec->batches = v;
		rec->cap = cap;
	}
	b = &rec->batches[rec->n++];
	b->origin = batch->origin;
	b->old_head = batch->old_head;
	b->new_head = batch->new_head;
	b->count = 0;
	b->changes = calloc(batch->count ? batch->count : 1, sizeof(*b->changes));
	for (size_t i = 0; b->changes && i < batch->count; i++) {
		b->changes[i].path = strdup(batch->changes[i].path);
		b->changes[i].old = batch->changes[i].old;
		b->changes[i].new = batch->changes[i].new;
		b->count++;
	}
out:
	pthread_mutex_unlock(&rec->lock);
}

struct node *cluster_node(struct cluster *c, const char *name)
{
	gitkv_store_options opts = GITKV_STORE_OPTIONS_INIT;
	char path[sizeof(c->nodes[0].path)];
	struct node *n;

	assert_true(c->n < CLUSTER_MAX_NODES);
	n = &c->nodes[c->n];
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(path, sizeof(path), "%s/%s.git", c->dir, name);
	memcpy(n->path, path, sizeof(n->path));
	pthread_mutex_init(&n->rec.lock, NULL);
	assert_ok(gitkv_store_init(n->path));
	opts.node = n->name;
	assert_ok(gitkv_store_open(&n->store, n->path, &opts));
	c->n++; /* teardown frees it from here on */
	assert_ok(gitkv_store_subscribe(n->store, record_batch, &n->rec));
	return n;
}

const char *cluster_hub(struct cluster *c)
{
	if (!c->hub[0]) {
		snprintf(c->hub, sizeof(c->hub), "%s/hub.git", c->dir);
		assert_ok(gitkv_store_init(c->hub));
	}
	return c->hub;
}

const char *cluster_path(struct cluster *c, const char *name)
{
	static char buf[1024];

	snprintf(buf, sizeof(buf), "%s/%s", c->dir, name);
	return buf;
}

int cluster_fsck(const char *path)
{
	char cmd[1024];
	int status;

	snprintf(cmd, sizeof(cmd), "git -C '%s' fsck --strict --no-progress --no-dangling", path);
	status = system(cmd);
	return status == -1 ? -1 : WEXITSTATUS(status);
}

/* ---- reading repositories ---------------------------------------------- */

static git_repository *open_git(const char *path)
{
	git_repository *repo = NULL;

	assert_int_equal(git_repository_open_bare(&repo, path), 0);
	return repo;
}

gitkv_oid repo_head(const char *path)
{
	git_repository *repo = open_git(path);
	gitkv_oid out = {{0}};
	git_oid id;

	if (git_reference_name_to_id(&id, repo, BRANCH) == 0)
		out = sandbox_oid_from_git(&id);
	git_repository_free(repo);
	return out;
}

gitkv_oid repo_tree_of(const char *path, const gitkv_oid *commit)
{
	git_repository *repo;
	git_commit *c = NULL;
	gitkv_oid out = {{0}};

	if (gitkv_oid_is_zero(commit))
		return out;
	repo = open_git(path);
	assert_int_equal(git_commit_lookup(&c, repo, (const git_oid *)commit->id), 0);
	out = sandbox_oid_from_git(git_commit_tree_id(c));
	git_commit_free(c);
	git_repository_free(repo);
	return out;
}

gitkv_oid node_head(struct node *n)
{
	gitkv_oid head;
	uint64_t gen;

	gitkv_snapshot_head(gitkv_store_snapshot(n->store), &head, &gen);
	return head;
}

gitkv_oid node_tree(struct node *n)
{
	gitkv_oid head = node_head(n);

	return repo_tree_of(n->path, &head);
}

static git_commit *lookup_commit(git_repository *repo, const gitkv_oid *id)
{
	git_commit *c = NULL;

	assert_int_equal(git_commit_lookup(&c, repo, (const git_oid *)id->id), 0);
	return c;
}

int64_t node_commit_time(struct node *n, const gitkv_oid *commit)
{
	git_repository *repo = open_git(n->path);
	git_commit *c = lookup_commit(repo, commit);
	int64_t t = git_commit_time(c);

	git_commit_free(c);
	git_repository_free(repo);
	return t;
}

char *node_commit_message(struct node *n, const gitkv_oid *commit)
{
	git_repository *repo = open_git(n->path);
	git_commit *c = lookup_commit(repo, commit);
	char *msg = strdup(git_commit_message(c));

	assert_non_null(msg);
	git_commit_free(c);
	git_repository_free(repo);
	return msg;
}

unsigned int node_commit_parents(struct node *n, const gitkv_oid *commit, gitkv_oid *parents,
				 unsigned int max)
{
	git_repository *repo = open_git(n->path);
	git_commit *c = lookup_commit(repo, commit);
	unsigned int count = git_commit_parentcount(c);

	for (unsigned int i = 0; i < count && i < max; i++)
		parents[i] = sandbox_oid_from_git(git_commit_parent_id(c, i));
	git_commit_free(c);
	git_repository_free(repo);
	return count;
}

/* ---- forging commits --------------------------------------------------- */

unsigned int forge_salt;

/*
 * Write the tree that is `base` (NULL: empty) with `path` set to (id, mode),
 * or removed if `id` is NULL. Parents that are missing or values become
 * prefixes.
 */
static void tree_put(git_repository *repo, const git_oid *base, const char *path, const git_oid *id,
		     git_filemode_t mode, git_oid *out)
{
	git_tree *bt = NULL;
	git_treebuilder *bld = NULL;
	const char *slash = strchr(path, '/');

	if (base)
		assert_int_equal(git_tree_lookup(&bt, repo, base), 0);
	assert_int_equal(git_treebuilder_new(&bld, repo, bt), 0);
	if (!slash) {
		if (id)
			assert_int_equal(git_treebuilder_insert(NULL, bld, path, id, mode), 0);
		else
			assert_int_equal(git_treebuilder_remove(bld, path), 0);
	} else {
		char name[256];
		const git_tree_entry *e;
		git_oid sub, sub_base;
		bool have_base = false;

		snprintf(name, sizeof(name), "%.*s", (int)(slash - path), path);
		e = bt ? git_tree_entry_byname(bt, name) : NULL;
		if (e && git_tree_entry_type(e) == GIT_OBJECT_TREE) {
			git_oid_cpy(&sub_base, git_tree_entry_id(e));
			have_base = true;
		}
		tree_put(repo, have_base ? &sub_base : NULL, slash + 1, id, mode, &sub);
		assert_int_equal(git_treebuilder_insert(NULL, bld, name, &sub, GIT_FILEMODE_TREE),
				 0);
	}
	assert_int_equal(git_treebuilder_write(out, bld), 0);
	git_treebuilder_free(bld);
	git_tree_free(bt);
}

static bool tree_has(git_repository *repo, const git_oid *tree_id, const char *path)
{
	git_tree *t = NULL;
	git_tree_entry *e = NULL;
	bool found;

	assert_int_equal(git_tree_lookup(&t, repo, tree_id), 0);
	found = git_tree_entry_bypath(&e, t, path) == 0;
	git_tree_entry_free(e);
	git_tree_free(t);
	git_error_clear();
	return found;
}

static void forge_edit(git_repository *repo, git_oid *tree, const char *edit, char *msg,
		       size_t msgsize)
{
	git_oid id;
	char path[1024];
	size_t used = strlen(msg);

	if (!strncmp(edit, "set ", 4)) {
		const char *eq = strchr(edit + 4, '=');

		assert_non_null(eq);
		snprintf(path, sizeof(path), "%.*s", (int)(eq - (edit + 4)), edit + 4);
		assert_int_equal(git_blob_create_from_buffer(&id, repo, eq + 1, strlen(eq + 1)), 0);
		tree_put(repo, tree, path, &id, GIT_FILEMODE_BLOB, tree);
		snprintf(msg + used, msgsize - used, "set %s\n", path);
	} else if (!strncmp(edit, "del ", 4)) {
		snprintf(path, sizeof(path), "%s", edit + 4);
		if (!tree_has(repo, tree, path))
			fail_msg("forge: \"%s\": no such path", edit);
		tree_put(repo, tree, path, NULL, 0, tree);
		snprintf(msg + used, msgsize - used, "delete %s\n", path);
	} else if (!strncmp(edit, "mkdir ", 6)) {
		git_treebuilder *bld = NULL;

		snprintf(path, sizeof(path), "%s", edit + 6);
		assert_int_equal(git_treebuilder_new(&bld, repo, NULL), 0);
		assert_int_equal(git_treebuilder_write(&id, bld), 0);
		git_treebuilder_free(bld);
		tree_put(repo, tree, path, &id, GIT_FILEMODE_TREE, tree);
		snprintf(msg + used, msgsize - used, "mkdir %s\n", path);
	} else {
		fail_msg("forge: bad edit \"%s\"", edit);
	}
}

gitkv_oid forge(struct node *n, int64_t when, const char *who, ...)
{
	git_repository *repo = open_git(n->path);
	git_commit *parent = NULL;
	git_tree *tree = NULL;
	git_signature *sig = NULL;
	git_reference *ref = NULL;
	git_oid parent_id, tree_id, id;
	bool have_parent = git_reference_name_to_id(&parent_id, repo, BRANCH) == 0;
	char msg[4096] = "", email[128], full[4300];
	const char *edit;
	va_list ap;

	git_error_clear();
	if (have_parent) {
		assert_int_equal(git_commit_lookup(&parent, repo, &parent_id), 0);
		git_oid_cpy(&tree_id, git_commit_tree_id(parent));
	} else {
		git_treebuilder *bld = NULL;

		assert_int_equal(git_treebuilder_new(&bld, repo, NULL), 0);
		assert_int_equal(git_treebuilder_write(&tree_id, bld), 0);
		git_treebuilder_free(bld);
	}
	va_start(ap, who);
	while ((edit = va_arg(ap, const char *)))
		forge_edit(repo, &tree_id, edit, msg, sizeof(msg));
	va_end(ap);
	if (forge_salt)
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), "salt %u\n", forge_salt);
	snprintf(full, sizeof(full), "%s\nGitkv-Node: %s\n", msg, who);
	snprintf(email, sizeof(email), "gitkv@%s", who);
	assert_int_equal(git_signature_new(&sig, "gitkv", email, when, 0), 0);
	assert_int_equal(git_tree_lookup(&tree, repo, &tree_id), 0);
	assert_int_equal(git_commit_create(&id, repo, NULL, sig, sig, NULL, full, tree,
					   have_parent ? 1 : 0, (const git_commit **)&parent),
			 0);
	if (have_parent)
		assert_int_equal(
		    git_reference_create_matching(&ref, repo, BRANCH, &id, 1, &parent_id, "forge"),
		    0);
	else
		assert_int_equal(git_reference_create(&ref, repo, BRANCH, &id, 0, "forge"), 0);
	git_reference_free(ref);
	git_tree_free(tree);
	git_signature_free(sig);
	git_commit_free(parent);
	git_repository_free(repo);
	assert_ok(gitkv_store_refresh(n->store));
	return sandbox_oid_from_git(&id);
}

void node_reset(struct node *n, const gitkv_oid *commit)
{
	git_repository *repo = open_git(n->path);
	git_reference *ref = NULL;

	assert_int_equal(
	    git_reference_create(&ref, repo, BRANCH, (const git_oid *)commit->id, 1, "reset"), 0);
	git_reference_free(ref);
	git_repository_free(repo);
	assert_ok(gitkv_store_refresh(n->store));
}

/* ---- moving commits between stores ------------------------------------- */

int node_pull_url(struct node *dst, const char *name, const char *src_url, gitkv_merge_result *out)
{
	gitkv_oid head;
	int rc;

	memset(out, 0, sizeof(*out));
	recorder_reset(&dst->rec);
	if ((rc = gitkv_remote_fetch(dst->store, name, src_url, NULL, &head)) != 0)
		return rc;
	if (gitkv_oid_is_zero(&head)) {
		out->commit = node_head(dst);
		return 0;
	}
	return gitkv_store_integrate(dst->store, &head, name, out);
}

int node_push_url(struct node *n, const char *name, const char *url)
{
	gitkv_oid head = node_head(n);

	return gitkv_remote_push(n->store, name, url, &head, NULL);
}

int node_sync_url(struct node *n, const char *name, const char *url)
{
	int rc = 0;

	for (int attempt = 0; attempt < 4; attempt++) {
		gitkv_merge_result mr;
		gitkv_oid remote, head;

		if ((rc = gitkv_remote_fetch(n->store, name, url, NULL, &remote)) != 0)
			return rc;
		if (!gitkv_oid_is_zero(&remote)) {
			rc = gitkv_store_integrate(n->store, &remote, name, &mr);
			if (rc == GITKV_EMODIFIED)
				continue;
			if (rc)
				return rc;
			gitkv_merge_result_free(&mr);
		}
		head = node_head(n);
		if (gitkv_oid_is_zero(&head) || gitkv_oid_equal(&head, &remote))
			return 0;
		rc = gitkv_remote_push(n->store, name, url, &head, NULL);
		if (rc != GITKV_EMODIFIED)
			return rc;
	}
	return rc;
}

/* ---- the recorder ------------------------------------------------------ */

void recorder_reset(struct recorder *rec)
{
	pthread_mutex_lock(&rec->lock);
	for (size_t i = 0; i < rec->n; i++) {
		for (size_t j = 0; j < rec->batches[i].count; j++)
			free(rec->batches[i].changes[j].path);
		free(rec->batches[i].changes);
	}
	rec->n = 0;
	pthread_mutex_unlock(&rec->lock);
}

bool recorder_find(struct recorder *rec, gitkv_origin origin, const char *path,
		   struct rec_change *out)
{
	bool found = false;

	pthread_mutex_lock(&rec->lock);
	for (size_t i = 0; i < rec->n; i++) {
		if (rec->batches[i].origin != origin)
			continue;
		for (size_t j = 0; j < rec->batches[i].count; j++)
			if (!strcmp(rec->batches[i].changes[j].path, path)) {
				*out = rec->batches[i].changes[j];
				out->path = NULL; /* not ours to hand out */
				found = true;
			}
	}
	pthread_mutex_unlock(&rec->lock);
	return found;
}

size_t recorder_count(struct recorder *rec, gitkv_origin origin)
{
	size_t count = 0;

	pthread_mutex_lock(&rec->lock);
	for (size_t i = 0; i < rec->n; i++)
		count += rec->batches[i].origin == origin;
	pthread_mutex_unlock(&rec->lock);
	return count;
}

/* ---- checks ------------------------------------------------------------ */

static gitkv_type type_of_mode(git_filemode_t mode)
{
	switch (mode) {
	case GIT_FILEMODE_BLOB:
		return GITKV_TYPE_FILE;
	case GIT_FILEMODE_BLOB_EXECUTABLE:
		return GITKV_TYPE_EXEC;
	case GIT_FILEMODE_LINK:
		return GITKV_TYPE_LINK;
	case GIT_FILEMODE_TREE:
		return GITKV_TYPE_DIR;
	default:
		return GITKV_TYPE_NONE;
	}
}

struct walk_ctx {
	gitkv_snapshot *snap;
	char problem[1024];
};

static int check_git_entry(const char *root, const git_tree_entry *te, void *payload)
{
	struct walk_ctx *ctx = payload;
	char path[4200];
	gitkv_entry e;

	snprintf(path, sizeof(path), "%s%s", root, git_tree_entry_name(te));
	if (gitkv_snapshot_lookup(ctx->snap, path, &e) != 0) {
		snprintf(ctx->problem, sizeof(ctx->problem),
			 "\"%.900s\" is in git, not in the snapshot", path);
		return -1;
	}
	if (e.type != type_of_mode(git_tree_entry_filemode(te)) ||
	    memcmp(e.oid.id, git_tree_entry_id(te)->id, GITKV_OID_RAWSZ)) {
		snprintf(ctx->problem, sizeof(ctx->problem),
			 "\"%.900s\": the snapshot's type or id differs from git's", path);
		return -1;
	}
	return 0;
}

/* Every path the snapshot lists below `dir` must be in git's tree. */
static void check_snapshot_dir(gitkv_snapshot *snap, git_tree *tree, const char *dir,
			       struct walk_ctx *ctx)
{
	gitkv_dirent *ents = NULL;
	size_t count = 0;

	if (ctx->problem[0])
		return;
	if (gitkv_snapshot_list(snap, dir, &ents, &count) != 0) {
		snprintf(ctx->problem, sizeof(ctx->problem), "cannot list \"%s\"", dir);
		return;
	}
	for (size_t i = 0; i < count && !ctx->problem[0]; i++) {
		char *path = gitkv_key_join(dir, ents[i].name);
		git_tree_entry *te = NULL;

		if (!tree || git_tree_entry_bypath(&te, tree, path) != 0)
			snprintf(ctx->problem, sizeof(ctx->problem),
				 "\"%s\" is in the snapshot, not in git", path);
		else if (ents[i].entry.type == GITKV_TYPE_DIR)
			check_snapshot_dir(snap, tree, path, ctx);
		git_tree_entry_free(te);
		free(path);
	}
	git_error_clear();
	gitkv_dirents_free(ents, count);
}

void node_assert_snapshot_is_head(struct node *n, const char *file, int line)
{
	git_repository *repo = open_git(n->path);
	gitkv_snapshot *snap = gitkv_store_snapshot(n->store);
	struct walk_ctx ctx = {.snap = snap};
	gitkv_oid head = node_head(n), git_head = repo_head(n->path);
	git_commit *c = NULL;
	git_tree *tree = NULL;

	if (!gitkv_oid_equal(&head, &git_head))
		snprintf(ctx.problem, sizeof(ctx.problem),
			 "the snapshot is not at the branch's commit");
	if (!ctx.problem[0] && !gitkv_oid_is_zero(&head)) {
		assert_int_equal(git_commit_lookup(&c, repo, (const git_oid *)head.id), 0);
		assert_int_equal(git_commit_tree(&tree, c), 0);
		git_tree_walk(tree, GIT_TREEWALK_PRE, check_git_entry, &ctx);
		git_error_clear();
	}
	if (!ctx.problem[0])
		check_snapshot_dir(snap, tree, "", &ctx);
	git_tree_free(tree);
	git_commit_free(c);
	git_repository_free(repo);
	if (ctx.problem[0]) {
		print_error("node %s: %s\n", n->name, ctx.problem);
		_fail(file, line);
	}
}

void node_assert_stream_reported(struct node *n, const gitkv_oid *old_head,
				 const gitkv_oid *new_head, const char *file, int line)
{
	git_repository *repo = open_git(n->path);
	git_commit *oc = NULL, *nc = NULL;
	git_tree *ot = NULL, *nt = NULL;
	git_diff *diff = NULL;
	char problem[1024] = "";

	if (!gitkv_oid_is_zero(old_head)) {
		assert_int_equal(git_commit_lookup(&oc, repo, (const git_oid *)old_head->id), 0);
		assert_int_equal(git_commit_tree(&ot, oc), 0);
	}
	assert_int_equal(git_commit_lookup(&nc, repo, (const git_oid *)new_head->id), 0);
	assert_int_equal(git_commit_tree(&nt, nc), 0);
	assert_int_equal(git_diff_tree_to_tree(&diff, repo, ot, nt, NULL), 0);
	for (size_t i = 0; i < git_diff_num_deltas(diff) && !problem[0]; i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);
		struct rec_change ch;

		if (d->status == GIT_DELTA_DELETED) {
			if (!recorder_find(&n->rec, GITKV_ORIGIN_EXTERNAL, d->old_file.path, &ch))
				snprintf(problem, sizeof(problem), "removal of \"%s\" not reported",
					 d->old_file.path);
			else if (gitkv_type_is_value(ch.new.type))
				snprintf(problem, sizeof(problem),
					 "\"%s\" reported with a value, but it is gone",
					 d->old_file.path);
			continue;
		}
		if (!recorder_find(&n->rec, GITKV_ORIGIN_EXTERNAL, d->new_file.path, &ch))
			snprintf(problem, sizeof(problem), "change of \"%s\" not reported",
				 d->new_file.path);
		else if (!gitkv_type_is_value(ch.new.type) ||
			 memcmp(ch.new.oid.id, d->new_file.id.id, GITKV_OID_RAWSZ))
			snprintf(problem, sizeof(problem),
				 "\"%s\" reported with the wrong new value", d->new_file.path);
	}
	git_diff_free(diff);
	git_tree_free(ot);
	git_tree_free(nt);
	git_commit_free(oc);
	git_commit_free(nc);
	git_repository_free(repo);
	if (problem[0]) {
		print_error("node %s: %s\n", n->name, problem);
		_fail(file, line);
	}
}
