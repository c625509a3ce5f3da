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
