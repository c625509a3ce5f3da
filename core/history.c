/*
 * history.c - the store's past: the commits that changed a key, and the
 * tree of any revision.
 *
 * History walks first-parent history from the branch and keeps each commit
 * whose entry at the key (blob or tree id, and mode) differs from its first
 * parent's. Each commit's entry is looked up once: a parent's entry is the
 * next step's own. The revision functions resolve a revision with git's
 * syntax (git_revparse_single, peeled to a commit) and read its trees.
 * Every function here opens its own repository handle, so a long walk
 * never holds the store's commit lock and never races the committer's
 * libgit2 objects.
 */
#include <stdlib.h>
#include <string.h>

#include "gitkv/key.h"
#include "store_internal.h"

static int entry_at(git_tree_entry **out, git_commit *c, const char *key)
{
	git_tree *tree = NULL;
	int error = git_commit_tree(&tree, c);

	*out = NULL;
	if (error < 0)
		return error;
	error = git_tree_entry_bypath(out, tree, key);
	git_tree_free(tree);
	if (error == GIT_ENOTFOUND) {
		git_error_clear();
		return 0;
	}
	return error;
}

static bool same_entry(const git_tree_entry *a, const git_tree_entry *b)
{
	if (!a || !b)
		return a == b;
	return !git_oid_cmp(git_tree_entry_id(a), git_tree_entry_id(b)) &&
	       git_tree_entry_filemode(a) == git_tree_entry_filemode(b);
}

static int report(git_commit *c, gitkv_history_fn fn, void *payload)
{
	const git_signature *author = git_commit_author(c);
	gitkv_commit_info info = {
	    .time = git_commit_time(c),
	    .tz_offset = git_commit_time_offset(c),
	    .author_name = author->name,
	    .author_email = author->email,
	    .summary = git_commit_summary(c),
	    .message = git_commit_message(c),
	};

	info.id = *git2gk(git_commit_id(c));
	return fn(&info, payload);
}

int gitkv_store_history_bounded(gitkv_store *store, const char *key, size_t limit,
				size_t max_commits, gitkv_history_fn fn, void *payload)
{
	git_repository *repo = NULL;
	git_commit *c = NULL, *parent = NULL;
	git_tree_entry *mine = NULL, *theirs = NULL;
	git_oid id;
	size_t seen = 0, walked = 0;
	int error = gitkv_key__validate_internal(key);

	if (error)
		return error;
	error = git_repository_open_bare(&repo, store->path);
	if (error < 0)
		return gitkv_store__git_error(error, "cannot open the store");
	error = git_reference_name_to_id(&id, repo, store->branch);
	if (error == GIT_ENOTFOUND) {
		git_error_clear();
		error = 0;
		goto out;
	}
	if (error < 0 || (error = git_commit_lookup(&c, repo, &id)) < 0) {
		error = gitkv_store__git_error(error, "cannot read the branch");
		goto out;
	}
	if ((error = entry_at(&mine, c, key)) < 0) {
		error = gitkv_store__git_error(error, "cannot read a tree");
		goto out;
	}
	while (c && (!limit || seen < limit) && (!max_commits || walked < max_commits)) {
		if (git_commit_parentcount(c) > 0 &&
		    (error = git_commit_parent(&parent, c, 0)) < 0) {
			error = gitkv_store__git_error(error, "cannot walk history");
			break;
		}
		if (parent && (error = entry_at(&theirs, parent, key)) < 0) {
			error = gitkv_store__git_error(error, "cannot read a tree");
			break;
		}
		walked++;
		if (!same_entry(mine, theirs)) {
			seen++;
			if ((error = report(c, fn, payload)) != 0)
				break;
		}
		git_tree_entry_free(mine);
		mine = theirs;
		theirs = NULL;
		git_commit_free(c);
		c = parent;
		parent = NULL;
	}
out:
	git_tree_entry_free(mine);
	git_tree_entry_free(theirs);
	git_commit_free(parent);
	git_commit_free(c);
	git_repository_free(repo);
	return error;
}

int gitkv_store_history(gitkv_store *store, const char *key, size_t limit, gitkv_history_fn fn,
			void *payload)
{
	return gitkv_store_history_bounded(store, key, limit, 0, fn, payload);
}

/* ---- revisions --------------------------------------------------------------- */

/* The commit `rev` names in `repo`; 0 or GITKV_ENOTFOUND (message recorded). */
static int resolve_commit(git_commit **out, git_repository *repo, const char *rev)
{
	git_object *obj = NULL;
	int error = git_revparse_single(&obj, repo, rev);

	*out = NULL;
	if (error < 0) {
		git_error_clear();
		return gitkv_error_set(GITKV_ENOTFOUND, "unknown revision '%s'", rev);
	}
	error = git_object_peel((git_object **)out, obj, GIT_OBJECT_COMMIT);
	git_object_free(obj);
	if (error < 0) {
		git_error_clear();
		return gitkv_error_set(GITKV_ENOTFOUND, "'%s' is not a commit", rev);
	}
	return 0;
}

/*
 * Fill `e` for tree entry `te` of commit `c`: a value's size is its blob's,
 * a prefix's the number of its entries (GITKV_SIZE_UNKNOWN if unreadable).
 */
static void fill_entry(gitkv_entry *e, git_repository *repo, git_odb *odb, git_commit *c,
		       const git_tree_entry *te)
{
	memset(e, 0, sizeof(*e));
	e->type = gitkv_store__type_from_mode(git_tree_entry_filemode(te));
	e->oid = *git2gk(git_tree_entry_id(te));
	e->mtime = git_commit_time(c);
	e->size = GITKV_SIZE_UNKNOWN;
	if (e->type != GITKV_TYPE_DIR) {
		size_t len;
		git_object_t type;

		if (git_odb_read_header(&len, &type, odb, git_tree_entry_id(te)) == 0)
			e->size = len;
	} else {
		git_tree *t = NULL;

		if (git_tree_lookup(&t, repo, git_tree_entry_id(te)) == 0)
			e->size = git_tree_entrycount(t);
		git_tree_free(t);
	}
	git_error_clear();
}

int gitkv_store_lookup_at(gitkv_store *store, const char *rev, const char *key,
			  gitkv_entry *entry_out, gitkv_oid *commit_out)
{
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_tree_entry *te = NULL;
	int error = key[0] ? gitkv_key__validate_internal(key) : 0;

	memset(entry_out, 0, sizeof(*entry_out));
	if (error)
		return error;
	if ((error = git_repository_open_bare(&repo, store->path)) < 0)
		return gitkv_store__git_error(error, "cannot open the store");
	if ((error = resolve_commit(&c, repo, rev)) < 0)
		goto out;
	if (commit_out)
		*commit_out = *git2gk(git_commit_id(c));
	if (!key[0]) {
		entry_out->type = GITKV_TYPE_DIR;
		entry_out->oid = *git2gk(git_commit_tree_id(c));
		entry_out->mtime = git_commit_time(c);
		goto out;
	}
	if ((error = entry_at(&te, c, key)) < 0) {
		error = gitkv_store__git_error(error, "cannot read a tree");
		goto out;
	}
	if (!te) {
		error = gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found at '%s'", key, rev);
		goto out;
	}
	fill_entry(entry_out, repo, store->odb, c, te);
out:
	git_tree_entry_free(te);
	git_commit_free(c);
	git_repository_free(repo);
	return error;
}

int gitkv_store_list_at(gitkv_store *store, const char *rev, const char *dir, gitkv_list_fn fn,
			void *payload)
{
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_tree_entry *te = NULL;
	git_tree *tree = NULL;
	git_odb *odb = NULL;
	gitkv_entry e;
	int error = dir[0] ? gitkv_key__validate_internal(dir) : 0;

	if (error)
		return error;
	if ((error = git_repository_open_bare(&repo, store->path)) < 0)
		return gitkv_store__git_error(error, "cannot open the store");
	if ((error = resolve_commit(&c, repo, rev)) < 0)
		goto out;
	if (dir[0]) {
		if ((error = entry_at(&te, c, dir)) < 0) {
			error = gitkv_store__git_error(error, "cannot read a tree");
			goto out;
		}
		if (!te) {
			error =
			    gitkv_error_set(GITKV_ENOTFOUND, "'%s' not found at '%s'", dir, rev);
			goto out;
		}
		if (git_tree_entry_type(te) != GIT_OBJECT_TREE) {
			error = gitkv_error_set(GITKV_ENOTDIR, "'%s' is a value at '%s'", dir, rev);
			goto out;
		}
		error = git_tree_lookup(&tree, repo, git_tree_entry_id(te));
	} else {
		error = git_commit_tree(&tree, c);
	}
	if (error < 0 || (error = git_repository_odb(&odb, repo)) < 0) {
		error = gitkv_store__git_error(error, "cannot read a tree");
		goto out;
	}
	for (size_t i = 0; i < git_tree_entrycount(tree); i++) {
		const git_tree_entry *child = git_tree_entry_byindex(tree, i);

		fill_entry(&e, repo, odb, c, child);
		if (e.type == GITKV_TYPE_NONE)
			continue; /* a gitlink is no key */
		if ((error = fn(git_tree_entry_name(child), &e, payload)) != 0)
			break;
	}
out:
	git_odb_free(odb);
	git_tree_free(tree);
	git_tree_entry_free(te);
	git_commit_free(c);
	git_repository_free(repo);
	return error;
}
