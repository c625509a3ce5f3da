/*
 * history.c - the commits that changed a key.
 *
 * Walks first-parent history from the branch and keeps each commit whose
 * entry at the key (blob or tree id, and mode) differs from its first
 * parent's. It opens its own repository handle, so a long walk never holds
 * the store's commit lock and never races the committer's libgit2 objects.
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

int gitkv_store_history(gitkv_store *store, const char *key, size_t limit, gitkv_history_fn fn,
			void *payload)
{
	git_repository *repo = NULL;
	git_commit *c = NULL;
	git_oid id;
	size_t seen = 0;
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
	while (c && (!limit || seen < limit)) {
		git_commit *parent = NULL;
		git_tree_entry *mine = NULL, *theirs = NULL;

		if (git_commit_parentcount(c) > 0 && (error = git_commit_parent(&parent, c, 0)) < 0) {
			error = gitkv_store__git_error(error, "cannot walk history");
			break;
		}
		if ((error = entry_at(&mine, c, key)) < 0 ||
		    (parent && (error = entry_at(&theirs, parent, key)) < 0)) {
			git_tree_entry_free(mine);
			git_commit_free(parent);
			error = gitkv_store__git_error(error, "cannot read a tree");
			break;
		}
		if (!same_entry(mine, theirs)) {
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
			seen++;
			error = fn(&info, payload);
		}
		git_tree_entry_free(mine);
		git_tree_entry_free(theirs);
		git_commit_free(c);
		c = parent;
		if (error)
			break;
	}
out:
	git_commit_free(c);
	git_repository_free(repo);
	return error;
}

int gitkv_store_lookup_at(gitkv_store *store, const char *rev, const char *key,
			  gitkv_entry *entry_out, gitkv_oid *commit_out)
{
	git_repository *repo = NULL;
	git_object *obj = NULL;
	git_commit *c = NULL;
	git_tree_entry *te = NULL;
	int error = key[0] ? gitkv_key__validate_internal(key) : 0;

	memset(entry_out, 0, sizeof(*entry_out));
	if (error)
		return error;
	if ((error = git_repository_open_bare(&repo, store->path)) < 0)
		return gitkv_store__git_error(error, "cannot open the store");
	error = git_revparse_single(&obj, repo, rev);
	if (error == GIT_ENOTFOUND || error == GIT_EAMBIGUOUS || error == GIT_EINVALIDSPEC) {
		git_error_clear();
		error = gitkv_error_set(GITKV_ENOTFOUND, "unknown revision '%s'", rev);
		goto out;
	}
	if (error < 0 || (error = git_object_peel((git_object **)&c, obj, GIT_OBJECT_COMMIT)) < 0) {
		git_error_clear();
		error = gitkv_error_set(GITKV_ENOTFOUND, "'%s' is not a commit", rev);
		goto out;
	}
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
	entry_out->type = gitkv_store__type_from_mode(git_tree_entry_filemode(te));
	entry_out->oid = *git2gk(git_tree_entry_id(te));
	entry_out->mtime = git_commit_time(c);
	entry_out->size = GITKV_SIZE_UNKNOWN;
	if (entry_out->type != GITKV_TYPE_DIR) {
		size_t len;
		git_object_t type;

		if (git_odb_read_header(&len, &type, store->odb, git_tree_entry_id(te)) == 0)
			entry_out->size = len;
		git_error_clear();
	} else {
		git_tree *t = NULL;

		if (git_tree_lookup(&t, repo, git_tree_entry_id(te)) == 0)
			entry_out->size = git_tree_entrycount(t);
		git_tree_free(t);
		git_error_clear();
	}
out:
	git_tree_entry_free(te);
	git_commit_free(c);
	git_object_free(obj);
	git_repository_free(repo);
	return error;
}
