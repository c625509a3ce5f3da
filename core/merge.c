/*
 * merge.c - the per-key deterministic merge (see gitkv/merge.h).
 *
 * merge_dir() walks the three trees (base, ours, theirs) together and only
 * descends where they differ, so its cost is the size of the difference.
 * For each name:
 *   ours == theirs               -> that entry
 *   ours == base                 -> theirs (one-sided change)
 *   theirs == base               -> ours
 *   both trees (base tree/none)  -> recurse
 *   anything else                -> a conflict at this path: the side whose
 *                                   last change to the path is newer wins
 *                                   the whole path (value or subtree).
 * "Last change" of a path on a side is found by walking the commits that
 * side has and the base does not (newest first); a non-merge commit changes
 * the path if its entry differs from its parent's, a merge commit only if
 * it differs from every parent's (a merge that took one side did not author
 * the value). The winner is the larger (committer time, node name, commit
 * id), then the larger entry id: a total order both sides agree on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gitkv/key.h"
#include "gitkv/merge.h"
#include "store_internal.h"

struct side {
	git_oid head;
	git_oid *commits;	/* commits of this side not in the base, sorted by id */
	size_t n;
};

struct merge_ctx {
	git_repository *repo;
	struct side ours, theirs;
	char **conflicts;
	size_t nconflicts, cap;
};

struct stamp {
	int64_t time;
	char node[128];
	git_oid id;
	bool found;
};

static int cmp_oid_sort(const void *a, const void *b)
{
	return git_oid_cmp(a, b);
}

static int side_load(struct side *s, git_repository *repo, const git_oid *head,
		     const git_oid *base)
{
	git_revwalk *walk = NULL;
	git_oid id;
	size_t cap = 0;
	int error = git_revwalk_new(&walk, repo);

	if (error < 0)
		return error;
	git_revwalk_sorting(walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME);
	if ((error = git_revwalk_push(walk, head)) < 0 ||
	    (base && (error = git_revwalk_hide(walk, base)) < 0))
		goto out;
	while ((error = git_revwalk_next(&id, walk)) == 0) {
		if (s->n == cap) {
			git_oid *v;

			cap = cap ? cap * 2 : 16;
			v = realloc(s->commits, cap * sizeof(*v));
			if (!v) {
				error = -1;
				goto out;
			}
			s->commits = v;
		}
		s->commits[s->n++] = id;
	}
	if (error == GIT_ITEROVER)
		error = 0;
	s->head = *head;
	if (s->n)
		qsort(s->commits, s->n, sizeof(*s->commits), cmp_oid_sort);
out:
	git_revwalk_free(walk);
	return error;
}

/* The entry at `path` in commit `c` (NULL if none); caller frees. */
static int entry_in(git_tree_entry **out, git_commit *c, const char *path)
{
	git_tree *tree = NULL;
	int error = git_commit_tree(&tree, c);

	*out = NULL;
	if (error < 0)
		return error;
	error = git_tree_entry_bypath(out, tree, path);
	git_tree_free(tree);
	if (error == GIT_ENOTFOUND) {
		git_error_clear();
		error = 0;
	}
	return error;
}

static bool entries_equal(const git_tree_entry *a, const git_tree_entry *b)
{
	if (!a || !b)
		return a == b;
	return !git_oid_cmp(git_tree_entry_id(a), git_tree_entry_id(b)) &&
	       git_tree_entry_filemode(a) == git_tree_entry_filemode(b);
}

static void commit_node(git_commit *c, char *out, size_t size)
{
	const char *msg = git_commit_message(c);
	git_message_trailer_array arr = { 0 };
	const git_signature *sig = git_commit_committer(c);
	const char *at;

	out[0] = '\0';
	if (msg && git_message_trailers(&arr, msg) == 0) {
		for (size_t i = 0; i < arr.count; i++)
			if (!strcmp(arr.trailers[i].key, "Gitkv-Node"))
				snprintf(out, size, "%s", arr.trailers[i].value);
		git_message_trailer_array_free(&arr);
	}
	git_error_clear();
	if (!out[0] && sig && sig->email && (at = strchr(sig->email, '@')))
		snprintf(out, size, "%s", at + 1);
}

static int cmp_oid(const void *a, const void *b)
{
	return git_oid_cmp(a, b);
}

static bool side_has(const struct side *s, const git_oid *id)
{
	return s->n && bsearch(id, s->commits, s->n, sizeof(*s->commits), cmp_oid);
}

static int stamp_cmp(const struct stamp *a, const struct stamp *b);

/*
 * The commit that introduced the entry this side holds at `path`: from
 * `from`, follow the parents whose entry is the same (at a merge, the
 * parent the value came from - git's TREESAME rule) and stop at the first
 * commit whose entry differs from every parent's. When several parents
 * hold the same entry, the newest introduction among them counts, so the
 * answer does not depend on which node made the merge. Only the side's own
 * commits (not in the base) count.
 */
static int last_change_from(struct stamp *st, git_repository *repo, const struct side *s,
			    const char *path, const git_oid *from, int depth)
{
	git_oid cur = *from;
	int error = 0;

	memset(st, 0, sizeof(*st));
	while (side_has(s, &cur) && depth < 64) {
		git_commit *c = NULL;
		git_tree_entry *mine = NULL;
		git_oid same[8];
		unsigned int np, nsame = 0;

		if ((error = git_commit_lookup(&c, repo, &cur)) < 0 ||
		    (error = entry_in(&mine, c, path)) < 0) {
			git_commit_free(c);
			return error;
		}
		np = git_commit_parentcount(c);
		for (unsigned int i = 0; i < np && !error; i++) {
			git_commit *p = NULL;
			git_tree_entry *theirs = NULL;

			if ((error = git_commit_parent(&p, c, i)) == 0 &&
			    (error = entry_in(&theirs, p, path)) == 0 && entries_equal(mine, theirs) &&
			    nsame < 8)
				same[nsame++] = *git_commit_id(p);
			git_tree_entry_free(theirs);
			git_commit_free(p);
		}
		if (!error && !nsame && (mine || np)) {
			st->found = true;
			st->time = git_commit_time(c);
			st->id = cur;
			commit_node(c, st->node, sizeof(st->node));
		}
		git_tree_entry_free(mine);
		git_commit_free(c);
		if (error < 0 || !nsame)
			return error;
		if (nsame == 1) {
			cur = same[0];
			continue;
		}
		for (unsigned int i = 0; i < nsame; i++) {
			struct stamp sub;

			if ((error = last_change_from(&sub, repo, s, path, &same[i], depth + 1)) < 0)
				return error;
			if (stamp_cmp(&sub, st) > 0)
				*st = sub;
		}
		return 0;
	}
	return 0;
}

static int last_change(struct stamp *st, git_repository *repo, const struct side *s,
		       const char *path)
{
	return last_change_from(st, repo, s, path, &s->head, 0);
}

/* > 0 if `a` wins over `b`. */
static int stamp_cmp(const struct stamp *a, const struct stamp *b)
{
	int cmp;

	if (a->found != b->found)
		return a->found ? 1 : -1;
	if (a->time != b->time)
		return a->time > b->time ? 1 : -1;
	if ((cmp = strcmp(a->node, b->node)))
		return cmp;
	return git_oid_cmp(&a->id, &b->id);
}

static int add_conflict(struct merge_ctx *ctx, const char *path)
{
	if (ctx->nconflicts == ctx->cap) {
		size_t cap = ctx->cap ? ctx->cap * 2 : 8;
		char **v = realloc(ctx->conflicts, cap * sizeof(*v));

		if (!v)
			return -1;
		ctx->conflicts = v;
		ctx->cap = cap;
	}
	if (!(ctx->conflicts[ctx->nconflicts] = strdup(path)))
		return -1;
	ctx->nconflicts++;
	return 0;
}

/* Pick the winner of a conflict at `path`: returns the winning entry (borrowed). */
static int resolve(const git_tree_entry **out, struct merge_ctx *ctx, const char *path,
		   const git_tree_entry *oe, const git_tree_entry *te)
{
	struct stamp so, st;
	int error, cmp;

	if ((error = last_change(&so, ctx->repo, &ctx->ours, path)) < 0 ||
	    (error = last_change(&st, ctx->repo, &ctx->theirs, path)) < 0)
		return error;
	cmp = stamp_cmp(&so, &st);
	if (!cmp) {
		/* Same stamp on both sides: order by the entries themselves. */
		if (!oe || !te)
			cmp = oe ? 1 : -1;
		else
			cmp = git_oid_cmp(git_tree_entry_id(oe), git_tree_entry_id(te));
	}
	*out = cmp >= 0 ? oe : te;
	return add_conflict(ctx, path) < 0 ? -1 : 0;
}

/* The id of the empty tree: a prefix removed on one side and emptied on the other goes. */
static const git_oid empty_tree_id = { { 0x4b, 0x82, 0x5d, 0xc6, 0x42, 0xcb, 0x6e, 0xb9, 0xa0, 0x60,
					 0xe5, 0x4b, 0xf8, 0xd6, 0x92, 0x88, 0xfb, 0xee, 0x49, 0x04 } };

static const git_tree_entry *by_name(git_tree *t, const char *name)
{
	return t ? git_tree_entry_byname(t, name) : NULL;
}

static bool is_tree(const git_tree_entry *e)
{
	return e && git_tree_entry_type(e) == GIT_OBJECT_TREE;
}

static int lookup_tree(git_tree **out, git_repository *repo, const git_tree_entry *e)
{
	*out = NULL;
	if (!e || !is_tree(e))
		return 0;
	return git_tree_lookup(out, repo, git_tree_entry_id(e));
}

static int add_name(char ***names, size_t *n, size_t *cap, const char *name)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*names)[i], name))
			return 0;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 32;
		char **v = realloc(*names, c * sizeof(*v));

		if (!v)
			return -1;
		*names = v;
		*cap = c;
	}
	(*names)[(*n)++] = (char *)name;
	return 0;
}

static int merge_dir(git_oid *out, struct merge_ctx *ctx, const char *path, git_tree *b,
		     git_tree *o, git_tree *t)
{
	git_treebuilder *bld = NULL;
	char **names = NULL;
	size_t n = 0, cap = 0;
	git_tree *trees[3] = { b, o, t };
	int error = git_treebuilder_new(&bld, ctx->repo, NULL);

	if (error < 0)
		return error;
	for (int k = 0; k < 3; k++)
		for (size_t i = 0; trees[k] && i < git_tree_entrycount(trees[k]); i++)
			if (add_name(&names, &n, &cap,
				     git_tree_entry_name(git_tree_entry_byindex(trees[k], i))) < 0) {
				error = -1;
				goto out;
			}
	for (size_t i = 0; i < n && !error; i++) {
		const git_tree_entry *be = by_name(b, names[i]), *oe = by_name(o, names[i]),
				     *te = by_name(t, names[i]), *pick;
		char *child = gitkv_key_join(path, names[i]);

		if (!child) {
			error = -1;
			break;
		}
		if (entries_equal(oe, te) || entries_equal(te, be)) {
			pick = oe;
		} else if (entries_equal(oe, be)) {
			pick = te;
		} else if ((is_tree(oe) || !oe) && (is_tree(te) || !te) && (!be || is_tree(be))) {
			/*
			 * Both sides changed a prefix (one may have removed it
			 * whole): merge it key by key, an absent side being empty.
			 */
			git_tree *bt = NULL, *ot = NULL, *tt = NULL;
			git_oid id;

			if (!(error = lookup_tree(&bt, ctx->repo, be)) &&
			    !(error = lookup_tree(&ot, ctx->repo, oe)) &&
			    !(error = lookup_tree(&tt, ctx->repo, te)) &&
			    !(error = merge_dir(&id, ctx, child, bt, ot, tt)) &&
			    ((oe && te) || !git_oid_equal(&id, &empty_tree_id)))
				error = git_treebuilder_insert(NULL, bld, names[i], &id,
							       GIT_FILEMODE_TREE);
			git_tree_free(bt);
			git_tree_free(ot);
			git_tree_free(tt);
			free(child);
			continue;
		} else {
			error = resolve(&pick, ctx, child, oe, te);
		}
		if (!error && pick)
			error = git_treebuilder_insert(NULL, bld, names[i], git_tree_entry_id(pick),
						       git_tree_entry_filemode(pick));
		free(child);
	}
	if (!error)
		error = git_treebuilder_write(out, bld);
out:
	free(names);
	git_treebuilder_free(bld);
	return error;
}

/*
 * The commit to merge `one` and `two` against. Criss-cross merges (two
 * nodes merging each other's branch at once, usual in a mesh) leave several
 * best common ancestors, each missing changes the others have; against any
 * single one of them an old value or a deleted key looks like a one-sided
 * change and comes back. Like git's recursive strategy, merge the bases by
 * the same rule into a virtual base: a commit written to the object
 * database (never referenced) with a fixed signature, so that every node
 * computes the same one. GIT_ENOTFOUND when the histories are unrelated.
 */
static int virtual_merge(git_oid *out, git_repository *repo, const git_oid *one,
			 const git_oid *two, const git_signature *sig, int depth);

static int merge_base_of(git_oid *out, git_repository *repo, const git_oid *one,
			 const git_oid *two, const git_signature *sig, int depth)
{
	git_oidarray bases = { 0 };
	int error = git_merge_bases(&bases, repo, one, two);

	if (error < 0)
		return error;
	*out = bases.ids[0];
	for (size_t i = 1; i < bases.count && !error; i++) {
		git_oid merged;

		if (!(error = virtual_merge(&merged, repo, out, &bases.ids[i], sig, depth + 1)))
			*out = merged;
	}
	git_oidarray_dispose(&bases);
	return error;
}

/*
 * Merge commits `one` (ours) and `two` (theirs) by the rule into the tree
 * `*tree_out`, against their merge base (virtual if need be); the conflicts
 * are left in `ctx` (ctx->repo set by the caller). `depth` bounds the
 * recursion through virtual bases. Returns 0 or a libgit2 error.
 */
static int merge_commits(git_oid *tree_out, struct merge_ctx *ctx, const git_oid *one,
			 const git_oid *two, int depth)
{
	git_repository *repo = ctx->repo;
	git_commit *oc = NULL, *tc = NULL, *bc = NULL;
	git_tree *bt = NULL, *ot = NULL, *tt = NULL;
	git_signature *sig = NULL;
	git_oid base;
	bool have_base = true;
	int error;

	if (depth > 16)
		return git_error_set_str(GIT_ERROR_INVALID, "merge bases nest too deep"), -1;
	/* a fixed signature: every node computes the same virtual bases */
	if ((error = git_signature_new(&sig, "gitkv", "gitkv@merge-base", 0, 0)) == 0)
		error = merge_base_of(&base, repo, one, two, sig, depth);
	git_signature_free(sig);
	if (error == GIT_ENOTFOUND) {
		git_error_clear();
		have_base = false;
		error = 0;
	}
	if (error < 0 || (error = git_commit_lookup(&oc, repo, one)) < 0 ||
	    (error = git_commit_lookup(&tc, repo, two)) < 0 ||
	    (have_base && (error = git_commit_lookup(&bc, repo, &base)) < 0) ||
	    (error = git_commit_tree(&ot, oc)) < 0 || (error = git_commit_tree(&tt, tc)) < 0 ||
	    (have_base && (error = git_commit_tree(&bt, bc)) < 0) ||
	    (error = side_load(&ctx->ours, repo, one, have_base ? &base : NULL)) < 0 ||
	    (error = side_load(&ctx->theirs, repo, two, have_base ? &base : NULL)) < 0)
		goto out;
	error = merge_dir(tree_out, ctx, "", bt, ot, tt);
out:
	git_tree_free(bt);
	git_tree_free(ot);
	git_tree_free(tt);
	git_commit_free(bc);
	git_commit_free(oc);
	git_commit_free(tc);
	return error;
}

static void merge_ctx_release(struct merge_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nconflicts; i++)
		free(ctx->conflicts[i]);
	free(ctx->conflicts);
	free(ctx->ours.commits);
	free(ctx->theirs.commits);
	ctx->conflicts = NULL;
	ctx->nconflicts = 0;
	ctx->ours.commits = ctx->theirs.commits = NULL;
}

static int virtual_merge(git_oid *out, git_repository *repo, const git_oid *one,
			 const git_oid *two, const git_signature *sig, int depth)
{
	struct merge_ctx ctx = { .repo = repo };
	git_commit *oc = NULL, *tc = NULL;
	git_tree *merged = NULL;
	git_oid tree_id;
	int error;

	if ((error = merge_commits(&tree_id, &ctx, one, two, depth)) < 0 ||
	    (error = git_tree_lookup(&merged, repo, &tree_id)) < 0 ||
	    (error = git_commit_lookup(&oc, repo, one)) < 0 ||
	    (error = git_commit_lookup(&tc, repo, two)) < 0)
		goto out;
	{
		const git_commit *parents[2] = { oc, tc };

		error = git_commit_create(out, repo, NULL, sig, sig, NULL, "virtual merge base\n",
					  merged, 2, parents);
	}
out:
	merge_ctx_release(&ctx);
	git_tree_free(merged);
	git_commit_free(oc);
	git_commit_free(tc);
	return error;
}

static int merge_commit_msg(char **out, const char *from, struct merge_ctx *ctx, const char *node)
{
	size_t len = 256 + strlen(from) + strlen(node);
	char *msg, *p;

	for (size_t i = 0; i < ctx->nconflicts; i++)
		len += strlen(ctx->conflicts[i]) + 4;
	msg = p = malloc(len);
	if (!msg)
		return -1;
	p += sprintf(p, "merge %s\n\n", from);
	if (ctx->nconflicts) {
		p += sprintf(p, "Conflicts resolved by last change:\n");
		for (size_t i = 0; i < ctx->nconflicts; i++)
			p += sprintf(p, "  %s\n", ctx->conflicts[i]);
		p += sprintf(p, "\n");
	}
	sprintf(p, "Gitkv-Node: %s\n", node);
	*out = msg;
	return 0;
}

int gitkv_store_integrate(gitkv_store *store, const gitkv_oid *theirs, const char *from,
			  gitkv_merge_result *out)
{
	struct merge_ctx ctx = { 0 };
	git_commit *oc = NULL, *tc = NULL;
	git_signature *sig = NULL;
	git_oid tree_id, commit_id;
	gitkv_oid head;
	char *msg = NULL, ident[300];
	int error;

	memset(out, 0, sizeof(*out));
	if (store->readonly)
		return gitkv_error_set(GITKV_EREADONLY, "the store is read-only");
	pthread_mutex_lock(&store->commit_lock);
	ctx.repo = store->repo;
	for (int attempt = 0; attempt < 100; attempt++) {
		if ((error = gitkv_store__refresh_locked(store, GITKV_ORIGIN_EXTERNAL)) < 0)
			goto out;
		gitkv_snapshot_head(store->snap, &head, NULL);
		out->commit = head;
		if (git_odb_exists(store->odb, gk2git(theirs)) != 1) {
			error = gitkv_error_set(GITKV_ENOTFOUND, "commit to merge not found");
			goto out;
		}
		if (gitkv_oid_equal(&head, theirs) ||
		    (!gitkv_oid_is_zero(&head) &&
		     git_graph_descendant_of(store->repo, gk2git(&head), gk2git(theirs)) == 1))
			goto out; /* already contained */
		if (gitkv_oid_is_zero(&head) ||
		    git_graph_descendant_of(store->repo, gk2git(theirs), gk2git(&head)) == 1) {
			git_reference *ref = NULL;

			error = git_reference_create_matching(&ref, store->repo, store->branch,
							      gk2git(theirs), 1, gk2git(&head), NULL);
			git_reference_free(ref);
			if (error == GIT_EMODIFIED || error == GIT_EEXISTS || error == GIT_ELOCKED) {
				git_error_clear();
				if (error == GIT_ELOCKED && !gitkv_store__break_stale_lock(store))
					usleep(1000);
				continue;
			}
			if (error < 0) {
				error = gitkv_store__git_error(error, "cannot move the branch");
				goto out;
			}
			out->changed = out->fast_forward = true;
			out->commit = *theirs;
			error = gitkv_store__refresh_locked(store, GITKV_ORIGIN_EXTERNAL);
			goto out;
		}
		break;
	}
	/* A true merge. */
	if ((error = merge_commits(&tree_id, &ctx, gk2git(&head), gk2git(theirs), 0)) < 0 ||
	    (error = git_commit_lookup(&oc, store->repo, gk2git(&head))) < 0 ||
	    (error = git_commit_lookup(&tc, store->repo, gk2git(theirs))) < 0) {
		error = gitkv_store__git_error(error, "cannot merge");
		goto out;
	}
	snprintf(ident, sizeof(ident), "%s@%s", store->committer, store->node);
	if ((error = git_signature_now(&sig, store->committer, ident)) < 0 ||
	    merge_commit_msg(&msg, from ? from : "remote", &ctx, store->node) < 0) {
		error = gitkv_store__git_error(error, "cannot write the merge commit");
		goto out;
	}
	{
		git_tree *merged = NULL;
		const git_commit *parents[2] = { oc, tc };
		git_reference *ref = NULL;

		if ((error = git_tree_lookup(&merged, store->repo, &tree_id)) < 0 ||
		    (error = git_commit_create(&commit_id, store->repo, NULL, sig, sig, NULL, msg,
					       merged, 2, parents)) < 0) {
			git_tree_free(merged);
			error = gitkv_store__git_error(error, "cannot write the merge commit");
			goto out;
		}
		git_tree_free(merged);
		error = git_reference_create_matching(&ref, store->repo, store->branch, &commit_id,
						      1, gk2git(&head), NULL);
		git_reference_free(ref);
		if (error == GIT_EMODIFIED || error == GIT_ELOCKED) {
			/* Someone committed meanwhile: the caller's next round merges again. */
			error = gitkv_error_set(GITKV_EMODIFIED, "the branch moved during the merge");
			goto out;
		}
		if (error < 0) {
			error = gitkv_store__git_error(error, "cannot move the branch");
			goto out;
		}
	}
	out->changed = true;
	out->commit = *git2gk(&commit_id);
	out->conflicts = ctx.conflicts;
	out->nconflicts = ctx.nconflicts;
	ctx.conflicts = NULL;
	ctx.nconflicts = 0;
	error = gitkv_store__refresh_locked(store, GITKV_ORIGIN_EXTERNAL);
out:
	pthread_mutex_unlock(&store->commit_lock);
	merge_ctx_release(&ctx);
	free(msg);
	git_signature_free(sig);
	git_commit_free(oc);
	git_commit_free(tc);
	return error;
}

void gitkv_merge_result_free(gitkv_merge_result *result)
{
	for (size_t i = 0; i < result->nconflicts; i++)
		free(result->conflicts[i]);
	free(result->conflicts);
	memset(result, 0, sizeof(*result));
}

int gitkv_store_contains(gitkv_store *store, const gitkv_oid *commit, const gitkv_oid *ancestor,
			 bool *out)
{
	git_repository *repo = NULL;
	int error;

	*out = false;
	if (gitkv_oid_is_zero(ancestor) || gitkv_oid_equal(commit, ancestor)) {
		*out = true;
		return 0;
	}
	if (gitkv_oid_is_zero(commit) || git_odb_exists(store->odb, gk2git(commit)) != 1 ||
	    git_odb_exists(store->odb, gk2git(ancestor)) != 1)
		return 0; /* an unknown commit is simply not contained */
	if ((error = git_repository_open_bare(&repo, store->path)) < 0)
		return gitkv_store__git_error(error, "cannot open the store");
	error = git_graph_descendant_of(repo, gk2git(commit), gk2git(ancestor));
	git_repository_free(repo);
	if (error < 0) {
		/* An unknown commit is simply not contained. */
		git_error_clear();
		return 0;
	}
	*out = error == 1;
	return 0;
}

static int count_walk(git_repository *repo, const gitkv_oid *from, const gitkv_oid *hide,
		      size_t *count)
{
	git_revwalk *walk = NULL;
	git_oid id;
	int error;

	*count = 0;
	if (gitkv_oid_is_zero(from))
		return 0;
	if ((error = git_revwalk_new(&walk, repo)) < 0)
		return error;
	if ((error = git_revwalk_push(walk, gk2git(from))) == 0 &&
	    (gitkv_oid_is_zero(hide) || (error = git_revwalk_hide(walk, gk2git(hide))) == 0)) {
		while ((error = git_revwalk_next(&id, walk)) == 0)
			(*count)++;
		if (error == GIT_ITEROVER)
			error = 0;
	}
	git_revwalk_free(walk);
	return error;
}

int gitkv_store_ahead_behind(gitkv_store *store, const gitkv_oid *local, const gitkv_oid *upstream,
			     size_t *ahead, size_t *behind)
{
	git_repository *repo = NULL;
	int error;

	*ahead = *behind = 0;
	if ((error = git_repository_open_bare(&repo, store->path)) < 0)
		return gitkv_store__git_error(error, "cannot open the store");
	if ((error = count_walk(repo, local, upstream, ahead)) == 0)
		error = count_walk(repo, upstream, local, behind);
	git_repository_free(repo);
	if (error < 0)
		return gitkv_store__git_error(error, "cannot compare histories");
	return 0;
}
