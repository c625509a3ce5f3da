/*
 * remote.c - fetch and push (see gitkv/remote.h).
 *
 * Fetch uses libgit2's transports for every URL kind. Push uses them for
 * network URLs, where the receiving git checks the old value of the ref;
 * for local repositories libgit2's local transport moves the remote ref
 * without such a check, so we do the local push ourselves: pack the
 * missing commits into the remote's objects/pack and move its ref with
 * git_reference_create_matching().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gitkv/remote.h"
#include "store_internal.h"

void gitkv_remote_redact(char *out, size_t size, const char *url)
{
	const char *scheme = strstr(url, "://");
	const char *at, *colon;

	snprintf(out, size, "%s", url);
	if (!scheme)
		return;
	at = strchr(scheme + 3, '@');
	if (!at || (strchr(scheme + 3, '/') && strchr(scheme + 3, '/') < at))
		return;
	colon = memchr(scheme + 3, ':', (size_t)(at - (scheme + 3)));
	if (!colon) {
		/* A lone user part over http(s) is usually a token: hide it too. */
		if (!strncmp(url, "http", 4))
			snprintf(out, size, "%.*s***%s", (int)(scheme + 3 - url), url, at);
		return;
	}
	snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
}

static bool is_local(const char *url)
{
	return !strstr(url, "://") || !strncmp(url, "file://", 7);
}

static const char *local_path(const char *url)
{
	return strncmp(url, "file://", 7) ? url : url + 7;
}

struct cred_ctx {
	const gitkv_remote_options *opts;
	int attempts;
};

static int credentials(git_credential **out, const char *url, const char *user_from_url,
		       unsigned int allowed, void *payload)
{
	struct cred_ctx *ctx = payload;
	const char *user = user_from_url ? user_from_url : "git";

	if (++ctx->attempts > 3)
		return GIT_EAUTH; /* stop libgit2 asking forever */
	if (allowed & GIT_CREDENTIAL_SSH_KEY) {
		if (ctx->opts && ctx->opts->ssh_key) {
			char pub[4096];

			snprintf(pub, sizeof(pub), "%s.pub", ctx->opts->ssh_key);
			return git_credential_ssh_key_new(out, user, access(pub, R_OK) ? NULL : pub,
							  ctx->opts->ssh_key, NULL);
		}
		if (ctx->attempts == 1)
			return git_credential_ssh_key_from_agent(out, user);
	}
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && ctx->opts &&
	    ctx->opts->credentials_file) {
		char line[1024];
		FILE *f = fopen(ctx->opts->credentials_file, "r");
		char *colon;

		if (!f)
			return GIT_EAUTH;
		if (!fgets(line, sizeof(line), f)) {
			fclose(f);
			return GIT_EAUTH;
		}
		fclose(f);
		line[strcspn(line, "\r\n")] = '\0';
		colon = strchr(line, ':');
		if (colon) {
			*colon = '\0';
			return git_credential_userpass_plaintext_new(out, line, colon + 1);
		}
		return git_credential_userpass_plaintext_new(out, user_from_url ? user_from_url : "x-access-token", line);
	}
	return GIT_PASSTHROUGH;
}

static int certificate_check(git_cert *cert, int valid, const char *host, void *payload)
{
	/* ssh host keys are not verified against known_hosts by libgit2 1.5. */
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2)
		return 0;
	return valid ? 0 : GIT_ECERTIFICATE;
}

static void set_callbacks(git_remote_callbacks *cb, struct cred_ctx *ctx)
{
	cb->credentials = credentials;
	cb->certificate_check = certificate_check;
	cb->payload = ctx;
}

static int open_repo(git_repository **out, gitkv_store *store)
{
	int error = git_repository_open_bare(out, store->path);

	return error < 0 ? gitkv_store__git_error(error, "cannot open the store") : 0;
}

int gitkv_remote_fetch(gitkv_store *store, const char *name, const char *url,
		       const gitkv_remote_options *opts, gitkv_oid *head_out)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	struct cred_ctx cctx = { opts, 0 };
	char spec[1024], tracking[512], redacted[1024];
	char *specs[1] = { spec };
	git_strarray refspecs = { specs, 1 };
	git_oid id;
	int error;

	memset(head_out, 0, sizeof(*head_out));
	snprintf(tracking, sizeof(tracking), "refs/remotes/%s/%s", name,
		 store->branch + strlen("refs/heads/"));
	snprintf(spec, sizeof(spec), "+%s:%s", store->branch, tracking);
	gitkv_remote_redact(redacted, sizeof(redacted), url);
	if (is_local(url) && access(local_path(url), F_OK) < 0)
		return gitkv_error_set(GITKV_ERROR, "cannot fetch from '%s': no repository there",
				       redacted);
	if ((error = open_repo(&repo, store)) < 0)
		return error;
	error = git_remote_create_anonymous(&remote, repo, is_local(url) ? local_path(url) : url);
	if (error < 0) {
		error = gitkv_store__git_error(error, "bad remote URL");
		goto out;
	}
	set_callbacks(&fo.callbacks, &cctx);
	fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	fo.prune = GIT_FETCH_NO_PRUNE;
	error = git_remote_fetch(remote, &refspecs, &fo, NULL);
	if (error < 0) {
		const git_error *e = git_error_last();

		error = gitkv_error_set(GITKV_ERROR, "cannot fetch from '%s': %s", redacted,
					e && e->message ? e->message : "unknown error");
		git_error_clear();
		goto out;
	}
	error = git_reference_name_to_id(&id, repo, tracking);
	if (error == GIT_ENOTFOUND) {
		git_error_clear();
		error = 0;
	} else if (error < 0) {
		error = gitkv_store__git_error(error, "cannot read the fetched branch");
	} else {
		*head_out = *git2gk(&id);
	}
out:
	git_remote_free(remote);
	git_repository_free(repo);
	return error;
}

/* Push into a repository on this machine, with a compare-and-swap on its ref. */
static int push_local(gitkv_store *store, git_repository *repo, const char *path,
		      const gitkv_oid *commit)
{
	git_repository *dst = NULL;
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	git_reference *ref = NULL;
	git_oid theirs;
	bool have_theirs = true;
	char packdir[4096];
	int error = git_repository_open_bare(&dst, path);

	if (error < 0)
		return gitkv_error_set(GITKV_ERROR, "cannot open remote '%s': %s", path,
				       git_error_last() ? git_error_last()->message : "not a repository");
	error = git_reference_name_to_id(&theirs, dst, store->branch);
	if (error == GIT_ENOTFOUND) {
		have_theirs = false;
		error = 0;
	}
	if (error < 0)
		goto git_fail;
	if (have_theirs && !git_oid_cmp(&theirs, gk2git(commit)))
		goto out; /* up to date */
	if (have_theirs) {
		/* A fast-forward only if their commit is ours or an ancestor of it. */
		if (git_odb_exists(store->odb, &theirs) != 1 ||
		    git_graph_descendant_of(repo, gk2git(commit), &theirs) != 1) {
			error = gitkv_error_set(GITKV_EMODIFIED, "remote '%s' has new commits", path);
			goto out;
		}
	}
	if ((error = git_packbuilder_new(&pb, repo)) < 0 || (error = git_revwalk_new(&walk, repo)) < 0 ||
	    (error = git_revwalk_push(walk, gk2git(commit))) < 0 ||
	    (have_theirs && (error = git_revwalk_hide(walk, &theirs)) < 0) ||
	    (error = git_packbuilder_insert_walk(pb, walk)) < 0)
		goto git_fail;
	snprintf(packdir, sizeof(packdir), "%s/objects/pack", git_repository_path(dst));
	if (git_packbuilder_object_count(pb) > 0 &&
	    (error = git_packbuilder_write(pb, packdir, 0444, NULL, NULL)) < 0)
		goto git_fail;
	if (!have_theirs)
		memset(&theirs, 0, sizeof(theirs)); /* zero: the ref must still not exist */
	error = git_reference_create_matching(&ref, dst, store->branch, gk2git(commit), 1, &theirs,
					      "gitkv push");
	if (error == GIT_EMODIFIED || error == GIT_EEXISTS || error == GIT_ELOCKED) {
		git_error_clear();
		error = gitkv_error_set(GITKV_EMODIFIED, "remote '%s' moved during the push", path);
		goto out;
	}
	if (error < 0)
		goto git_fail;
	goto out;
git_fail:
	error = gitkv_store__git_error(error, "cannot push");
out:
	git_reference_free(ref);
	git_revwalk_free(walk);
	git_packbuilder_free(pb);
	git_repository_free(dst);
	return error;
}

struct push_status {
	bool rejected;
	char why[256];
};

struct push_ctx {
	struct cred_ctx cred;	/* first: the credentials callback's payload */
	struct push_status st;
};

static int push_update_cb(const char *refname, const char *status, void *data)
{
	struct push_ctx *ctx = data;

	if (status) {
		ctx->st.rejected = true;
		snprintf(ctx->st.why, sizeof(ctx->st.why), "%s: %s", refname, status);
	}
	return 0;
}

int gitkv_remote_push(gitkv_store *store, const char *name, const char *url,
		      const gitkv_oid *commit, const gitkv_remote_options *opts)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_push_options po = GIT_PUSH_OPTIONS_INIT;
	struct push_ctx ctx = { { opts, 0 }, { 0 } };
	char spec[1024], hex[GITKV_OID_HEXSZ + 1], redacted[1024], tmpref[512];
	char *specs[1] = { spec };
	git_strarray refspecs = { specs, 1 };
	git_reference *ref = NULL;
	int error;

	gitkv_remote_redact(redacted, sizeof(redacted), url);
	if ((error = open_repo(&repo, store)) < 0)
		return error;
	if (is_local(url)) {
		error = push_local(store, repo, local_path(url), commit);
		goto out;
	}
	/*
	 * libgit2 1.5 pushes references, not bare ids: point a private ref at
	 * the commit (one per remote) and push that onto the remote's branch.
	 */
	snprintf(tmpref, sizeof(tmpref), "refs/gitkv/push/%s", name);
	if ((error = git_reference_create(&ref, repo, tmpref, gk2git(commit), 1, NULL)) < 0) {
		error = gitkv_store__git_error(error, "cannot prepare the push");
		goto out;
	}
	snprintf(spec, sizeof(spec), "%s:%s", tmpref, store->branch);
	(void)hex;
	error = git_remote_create_anonymous(&remote, repo, url);
	if (error < 0) {
		error = gitkv_store__git_error(error, "bad remote URL");
		goto out;
	}
	set_callbacks(&po.callbacks, &ctx.cred);
	po.callbacks.payload = &ctx;
	po.callbacks.push_update_reference = push_update_cb;
	error = git_remote_push(remote, &refspecs, &po);
	if (error == GIT_ENONFASTFORWARD) {
		git_error_clear();
		error = gitkv_error_set(GITKV_EMODIFIED, "remote '%s' has new commits", redacted);
	} else if (error < 0) {
		const git_error *e = git_error_last();

		error = gitkv_error_set(GITKV_ERROR, "cannot push to '%s': %s", redacted,
					e && e->message ? e->message : "unknown error");
		git_error_clear();
	} else if (ctx.st.rejected) {
		error = gitkv_error_set(GITKV_EMODIFIED, "push to '%s' rejected (%s)", redacted,
					ctx.st.why);
	}
out:
	if (ref) {
		git_reference_delete(ref);
		git_reference_free(ref);
		git_error_clear();
	}
	git_remote_free(remote);
	git_repository_free(repo);
	return error;
}

int gitkv_remote_save(gitkv_store *store, const char *name, const char *url)
{
	git_repository *repo = NULL;
	git_config *cfg = NULL;
	char var[512];
	const char *cur = NULL;
	git_buf buf = { 0 };
	int error;

	if (!*name || strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != strlen(name))
		return gitkv_error_set(GITKV_EINVALID, "bad remote name '%s'", name);
	if ((error = open_repo(&repo, store)) < 0)
		return error;
	if ((error = git_repository_config(&cfg, repo)) < 0)
		goto fail;
	snprintf(var, sizeof(var), "remote.%s.url", name);
	if (git_config_get_string_buf(&buf, cfg, var) == 0)
		cur = buf.ptr;
	git_error_clear();
	if (!cur || strcmp(cur, url))
		if ((error = git_config_set_string(cfg, var, url)) < 0)
			goto fail;
	goto out;
fail:
	error = gitkv_store__git_error(error, "cannot record the remote");
out:
	git_buf_dispose(&buf);
	git_config_free(cfg);
	git_repository_free(repo);
	return error;
}

int gitkv_remote_list(gitkv_store *store, char ***names_out, char ***urls_out, size_t *count_out)
{
	git_repository *repo = NULL;
	git_strarray names = { 0 };
	char **n = NULL, **u = NULL;
	size_t k = 0;
	int error;

	*names_out = *urls_out = NULL;
	*count_out = 0;
	if ((error = open_repo(&repo, store)) < 0)
		return error;
	if ((error = git_remote_list(&names, repo)) < 0) {
		error = gitkv_store__git_error(error, "cannot list the remotes");
		goto out;
	}
	n = calloc(names.count + 1, sizeof(*n));
	u = calloc(names.count + 1, sizeof(*u));
	if (!n || !u) {
		error = gitkv_error_set(GITKV_ERROR, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < names.count; i++) {
		git_remote *r = NULL;

		if (git_remote_lookup(&r, repo, names.strings[i]) < 0 || !git_remote_url(r)) {
			git_error_clear();
			git_remote_free(r);
			continue;
		}
		n[k] = strdup(names.strings[i]);
		u[k] = strdup(git_remote_url(r));
		git_remote_free(r);
		if (!n[k] || !u[k]) {
			free(n[k]);
			free(u[k]);
			error = gitkv_error_set(GITKV_ERROR, "out of memory");
			goto out;
		}
		k++;
	}
out:
	git_strarray_dispose(&names);
	git_repository_free(repo);
	if (error) {
		for (size_t i = 0; i < k; i++) {
			free(n[i]);
			free(u[i]);
		}
		free(n);
		free(u);
		return error;
	}
	*names_out = n;
	*urls_out = u;
	*count_out = k;
	return 0;
}
