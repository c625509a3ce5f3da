/*
 * gitkv/merge.h - bringing another line of history into the branch.
 *
 * The merge is per key and deterministic. Against the merge base, a key
 * changed on one side takes that side; a key changed on both sides to
 * different results takes the side whose last change to that key is newer
 * (committer time), ties broken by node name, then by commit id. A clash
 * between a value and a prefix at the same path follows the same rule for
 * the whole path, and metadata under .gitkv/meta is merged as keys are.
 * Every node computes the same tree from the same two commits, whichever
 * side it stands on, so a fleet converges.
 *
 * Threads: like the store's write functions (any thread; serialised on the
 * store's commit lock).
 */
#ifndef GITKV_MERGE_H
#define GITKV_MERGE_H

#include <gitkv/store.h>

typedef struct gitkv_merge_result {
	bool changed;		/* the branch moved */
	bool fast_forward;	/* it moved to `theirs` without a merge commit */
	gitkv_oid commit;	/* the branch's commit afterwards */
	char **conflicts;	/* keys changed on both sides (owned; see _free) */
	size_t nconflicts;
} gitkv_merge_result;

/*
 * Bring commit `theirs` (already in the object database, e.g. fetched) into
 * the branch: nothing if it is already contained, a fast-forward if the
 * branch is contained in it, else a merge commit "merge FROM" whose parents
 * are the branch and `theirs`, naming the conflicted keys. The snapshot is
 * updated and subscribers see the change with origin GITKV_ORIGIN_EXTERNAL.
 * Returns 0, GITKV_ENOTFOUND (theirs unknown) or an error code.
 */
int gitkv_store_integrate(gitkv_store *store, const gitkv_oid *theirs, const char *from,
			  gitkv_merge_result *out);

void gitkv_merge_result_free(gitkv_merge_result *result);

/*
 * Set `*out` to whether `commit` is `ancestor` or one of its descendants.
 * Zero ids: a zero `ancestor` is contained in everything; a zero `commit`
 * contains only zero. Returns 0 or an error code. Takes no store lock.
 */
int gitkv_store_contains(gitkv_store *store, const gitkv_oid *commit, const gitkv_oid *ancestor,
			 bool *out);

/*
 * Count the commits `local` has that `upstream` lacks (ahead) and the
 * reverse (behind). Zero ids count as empty histories. Takes no store lock.
 */
int gitkv_store_ahead_behind(gitkv_store *store, const gitkv_oid *local, const gitkv_oid *upstream,
			     size_t *ahead, size_t *behind);

#endif
