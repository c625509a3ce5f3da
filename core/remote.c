/*
 * remote.c - fetch and push (see gitkv/remote.h).
 *
 * Fetch uses libgit2's transports for every URL kind. Push uses them for
 * network URLs, where the receiving git checks the old value of the ref;
 * for local repositories libgit2's local transport moves the remote ref
 * without such a check, so we do the local push ourselves: pack the
 * missing commits into the remote's objects/pack and move its ref with
 * git_reference_create_matching().
 *
 * Network transports authenticate with the options' ssh key or credentials
 * file (never with anything from the command line) and verify the server:
 * see the comments above struct cred_ctx and certificate_check().
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
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

/*
 * Credentials. libgit2 asks again each time the server refuses what it was
 * given, so each candidate is offered once and the next request moves on;
 * when none is left the callback says what was refused instead of letting
 * libgit2 report a bare authentication failure.
 *
 * ssh: the key of ssh_key= alone; without it the agent (when SSH_AUTH_SOCK
 * is set), then ~/.ssh/id_ed25519, id_ecdsa and id_rsa, as ssh(1) would.
 * http(s): the first line of credentials_file=, "user:password" or a bare
 * token. The file must be readable by its owner only, as ssh(1) demands of
 * private keys: a secret that other users can read is refused rather than
 * sent. The secret lives on the stack for the one call and is wiped after.
 */
struct cred_ctx {
	const gitkv_remote_options *opts;
	int ssh_tries;	       /* ssh keys offered so far */
	bool userpass_offered; /* the credentials file was offered */
};

static const char *const default_ssh_keys[] = { "id_ed25519", "id_ecdsa", "id_rsa" };

#define NDEFAULT_SSH_KEYS (sizeof(default_ssh_keys) / sizeof(default_ssh_keys[0]))

/* The passwd entry of the user running the daemon (thread-safe; NULL if none). */
static struct passwd *own_passwd(struct passwd *pw, char *buf, size_t size)
{
	struct passwd *found = NULL;

	return getpwuid_r(geteuid(), pw, buf, size, &found) == 0 ? found : NULL;
}

/* Where ~ is: $HOME, else the passwd entry, as libgit2 decides it. */
static void home_dir(char *out, size_t size)
{
	const char *home = getenv("HOME");
	struct passwd pw, *found;
	char buf[4096];

	if (!home || !*home)
		home = (found = own_passwd(&pw, buf, sizeof(buf))) ? found->pw_dir : "/";
	snprintf(out, size, "%s", home);
}

/* A key file and its ".pub" beside it, if there is one (libssh2 derives it otherwise). */
static int ssh_key_credential(git_credential **out, const char *user, const char *key)
{
	char pub[PATH_MAX + 64];

	snprintf(pub, sizeof(pub), "%s.pub", key);
	return git_credential_ssh_key_new(out, user, access(pub, R_OK) ? NULL : pub, key, NULL);
}

static int ssh_credential(git_credential **out, struct cred_ctx *ctx, const char *user)
{
	const char *agent = getenv("SSH_AUTH_SOCK");
	int n = ctx->ssh_tries++;
	char home[PATH_MAX], path[PATH_MAX + 32];

	if (ctx->opts && ctx->opts->ssh_key) {
		if (n == 0)
			return ssh_key_credential(out, user, ctx->opts->ssh_key);
		git_error_set(GIT_ERROR_SSH, "the server refused the ssh key '%s' for user '%s'",
			      ctx->opts->ssh_key, user);
		return GIT_EAUTH;
	}
	if (agent && *agent) {
		if (n == 0)
			return git_credential_ssh_key_from_agent(out, user);
		n--;
	}
	home_dir(home, sizeof(home));
	for (size_t i = 0; i < NDEFAULT_SSH_KEYS; i++) {
		snprintf(path, sizeof(path), "%s/.ssh/%s", home, default_ssh_keys[i]);
		if (access(path, R_OK) < 0)
			continue;
		if (n-- == 0)
			return ssh_key_credential(out, user, path);
	}
	git_error_set(GIT_ERROR_SSH,
		      "the server accepted none of the ssh keys offered for user '%s' (%s%s/.ssh/"
		      "id_ed25519, id_ecdsa, id_rsa where they exist; ssh_key= names one)",
		      user, agent && *agent ? "the agent, " : "", home);
	return GIT_EAUTH;
}

static int userpass_credential(git_credential **out, struct cred_ctx *ctx,
			       const char *user_from_url)
{
	const char *file = ctx->opts ? ctx->opts->credentials_file : NULL;
	char buf[8192];
	struct stat st;
	ssize_t len;
	char *colon;
	int fd, error;

	if (!file)
		return GIT_PASSTHROUGH; /* libgit2 reports that authentication is required */
	if (ctx->userpass_offered) {
		git_error_set(GIT_ERROR_HTTP, "the server refused the credentials in '%s'", file);
		return GIT_EAUTH;
	}
	ctx->userpass_offered = true;
	if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
		git_error_set(GIT_ERROR_OS, "cannot open credentials file '%s': %s", file,
			      strerror(errno));
		return GIT_EAUTH;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		git_error_set(GIT_ERROR_OS, "credentials file '%s' is not a regular file", file);
		return GIT_EAUTH;
	}
	if (st.st_mode & 077) {
		close(fd);
		git_error_set(GIT_ERROR_OS,
			      "credentials file '%s' is accessible by group or others (mode %03o); "
			      "refusing to use it (chmod 600)",
			      file, (unsigned)(st.st_mode & 0777));
		return GIT_EAUTH;
	}
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len < 0) {
		git_error_set(GIT_ERROR_OS, "cannot read credentials file '%s': %s", file,
			      strerror(errno));
		return GIT_EAUTH;
	}
	buf[len] = '\0';
	if (!strpbrk(buf, "\r\n") && (size_t)len == sizeof(buf) - 1) {
		git_error_set(GIT_ERROR_HTTP, "credentials file '%s': the first line is too long",
			      file);
		error = GIT_EAUTH;
		goto out;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!*buf) {
		git_error_set(GIT_ERROR_HTTP, "credentials file '%s' is empty", file);
		error = GIT_EAUTH;
	} else if ((colon = strchr(buf, ':'))) {
		*colon = '\0';
		error = git_credential_userpass_plaintext_new(out, buf, colon + 1);
	} else {
		/* A bare token: the user name matters little to servers that take tokens. */
		error = git_credential_userpass_plaintext_new(
		    out, user_from_url ? user_from_url : "x-access-token", buf);
	}
out:
	explicit_bzero(buf, sizeof(buf));
	return error;
}

static int credentials(git_credential **out, const char *url, const char *user_from_url,
		       unsigned int allowed, void *payload)
{
	struct cred_ctx *ctx = payload;
	const char *user = user_from_url;
	struct passwd pw, *found;
	char buf[4096];

	/* A URL without a user name logs in as the user running the daemon, as ssh(1) does. */
	if (!user)
		user = (found = own_passwd(&pw, buf, sizeof(buf))) ? found->pw_name : "git";
	if (allowed & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, user);
	if (allowed & GIT_CREDENTIAL_SSH_KEY)
		return ssh_credential(out, ctx, user);
	if (allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT)
		return userpass_credential(out, ctx, user_from_url);
	return GIT_PASSTHROUGH;
}

/*
 * Servers are verified, never taken on trust: a sync sends the whole store,
 * secrets included, to whoever answers. libgit2 (1.5.1 and later) looks an
 * ssh host key up in ~/.ssh/known_hosts of the user running the daemon
 * (entries "[host]:port" for a port other than 22; hashed entries too) and
 * checks a TLS certificate against the system's certificate authorities;
 * `valid` is its verdict, and we keep it. An unknown host key is refused
 * like a changed one, as ssh(1) does with StrictHostKeyChecking=yes: a
 * daemon has nobody to ask, and accepting the first key it sees would trust
 * whoever answered first. The callback only makes the refusal say what to do.
 */
static int certificate_check(git_cert *cert, int valid, const char *host, void *payload)
{
	char home[PATH_MAX];

	(void)payload;
	if (valid)
		return 0;
	home_dir(home, sizeof(home));
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2)
		git_error_set(GIT_ERROR_SSH,
			      "the ssh host key of '%s' is not the one in %s/.ssh/known_hosts "
			      "(unknown or changed; add the verified key, e.g. from ssh-keyscan)",
			      host, home);
	else
		git_error_set(GIT_ERROR_SSL, "the TLS certificate of '%s' is not trusted", host);
	return GIT_ECERTIFICATE;
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

/*
 * Local transfers (a path or file:// remote) build their pack themselves:
 * libgit2's packbuilder walk, like its local transport, reads every tree and
 * blob of the commits the other side has in order to leave them out, so one
 * new commit would cost a read of the whole store. Here each new commit
 * adds only what differs from its first parent, path by path: the trees on
 * the changed paths and the new blobs. Every object reachable from a new
 * commit is covered (by induction over the first parents, down to a commit
 * the other side has); one reachable elsewhere under another path may be
 * sent again, which is harmless.
 */
static int insert_tree_diff(git_packbuilder *pb, git_repository *repo, const git_oid *new_id,
			    const git_oid *old_id)
{
	git_tree *nt = NULL, *ot = NULL;
	int error;

	if (old_id && !git_oid_cmp(new_id, old_id))
		return 0;
	if ((error = git_packbuilder_insert(pb, new_id, NULL)) < 0 ||
	    (error = git_tree_lookup(&nt, repo, new_id)) < 0 ||
	    (old_id && (error = git_tree_lookup(&ot, repo, old_id)) < 0))
		goto out;
	for (size_t i = 0, n = git_tree_entrycount(nt); i < n && !error; i++) {
		const git_tree_entry *ne = git_tree_entry_byindex(nt, i);
		const git_tree_entry *oe = ot ? git_tree_entry_byname(ot, git_tree_entry_name(ne)) : NULL;
		const git_oid *nid = git_tree_entry_id(ne);

		if (oe && !git_oid_cmp(nid, git_tree_entry_id(oe)))
			continue; /* the same object at the same path: they have it */
		switch (git_tree_entry_type(ne)) {
		case GIT_OBJECT_TREE:
			error = insert_tree_diff(pb, repo, nid,
						 oe && git_tree_entry_type(oe) == GIT_OBJECT_TREE
							 ? git_tree_entry_id(oe)
							 : NULL);
			break;
		case GIT_OBJECT_BLOB:
			error = git_packbuilder_insert(pb, nid, NULL);
			break;
		default:
			break; /* a submodule's commit is not ours to send */
		}
	}
out:
	git_tree_free(nt);
	git_tree_free(ot);
	return error;
}

/*
 * Write into `packdir` a pack of what `src` must send for `tip` to a
 * repository holding the commits `have` (those `src` does not know are
 * ignored). Returns 0 or a libgit2 error.
 */
static int send_pack(git_repository *src, const git_oid *tip, const git_oid *have, size_t nhave,
		     const char *packdir)
{
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	git_odb *odb = NULL;
	git_oid id;
	int error;

	if ((error = git_repository_odb(&odb, src)) < 0 || (error = git_packbuilder_new(&pb, src)) < 0 ||
	    (error = git_revwalk_new(&walk, src)) < 0 || (error = git_revwalk_push(walk, tip)) < 0)
		goto out;
	for (size_t i = 0; i < nhave; i++)
		if (git_odb_exists(odb, &have[i]) == 1 && (error = git_revwalk_hide(walk, &have[i])) < 0)
			goto out;
	while (!error && (error = git_revwalk_next(&id, walk)) == 0) {
		git_commit *c = NULL, *parent = NULL;

		if ((error = git_commit_lookup(&c, src, &id)) < 0)
			break;
		if (git_commit_parentcount(c) > 0 && (error = git_commit_parent(&parent, c, 0)) < 0) {
			git_commit_free(c);
			break;
		}
		if ((error = git_packbuilder_insert(pb, &id, NULL)) == 0)
			error = insert_tree_diff(pb, src, git_commit_tree_id(c),
						 parent ? git_commit_tree_id(parent) : NULL);
		git_commit_free(parent);
		git_commit_free(c);
	}
	if (error == GIT_ITEROVER) {
		git_error_clear();
		error = 0;
	}
	if (!error && git_packbuilder_object_count(pb) > 0)
		error = git_packbuilder_write(pb, packdir, 0444, NULL, NULL);
out:
	git_revwalk_free(walk);
	git_packbuilder_free(pb);
	git_odb_free(odb);
	return error;
}

/* Fetch from a repository on this machine: its branch into `tracking`. */
static int fetch_local(gitkv_store *store, git_repository *repo, const char *path,
		       const char *tracking, gitkv_oid *head_out)
{
	git_repository *src = NULL;
	git_reference *ref = NULL;
	git_oid theirs, have[2];
	size_t nhave = 0;
	char packdir[4096];
	int error = git_repository_open_bare(&src, path);

	if (error < 0)
		return gitkv_error_set(GITKV_ERROR, "cannot fetch from '%s': %s", path,
				       git_error_last() ? git_error_last()->message
							: "not a repository");
	error = git_reference_name_to_id(&theirs, src, store->branch);
	if (error == GIT_ENOTFOUND) { /* an empty remote: nothing to fetch */
		git_error_clear();
		error = 0;
		goto out;
	}
	if (error < 0)
		goto git_fail;
	if (git_reference_name_to_id(&have[nhave], repo, tracking) == 0)
		nhave++;
	if (git_reference_name_to_id(&have[nhave], repo, store->branch) == 0)
		nhave++;
	git_error_clear();
	if (git_odb_exists(store->odb, &theirs) != 1) {
		snprintf(packdir, sizeof(packdir), "%s/objects/pack", git_repository_path(repo));
		if ((error = send_pack(src, &theirs, have, nhave, packdir)) < 0)
			goto git_fail;
		/* the store's object database must see the new pack */
		if ((error = git_odb_refresh(store->odb)) < 0)
			goto git_fail;
	}
	if ((error = git_reference_create(&ref, repo, tracking, &theirs, 1, "gitkv fetch")) < 0)
		goto git_fail;
	*head_out = *git2gk(&theirs);
	goto out;
git_fail:
	error = gitkv_store__git_error(error, "cannot fetch");
out:
	git_reference_free(ref);
	git_repository_free(src);
	return error;
}

int gitkv_remote_fetch(gitkv_store *store, const char *name, const char *url,
		       const gitkv_remote_options *opts, gitkv_oid *head_out)
{
	git_repository *repo = NULL;
	git_remote *remote = NULL;
	git_fetch_options fo = GIT_FETCH_OPTIONS_INIT;
	struct cred_ctx cctx = { .opts = opts };
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
	if (is_local(url)) {
		error = fetch_local(store, repo, local_path(url), tracking, head_out);
		goto out;
	}
	error = git_remote_create_anonymous(&remote, repo, url);
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
	snprintf(packdir, sizeof(packdir), "%s/objects/pack", git_repository_path(dst));
	if ((error = send_pack(repo, gk2git(commit), &theirs, have_theirs ? 1 : 0, packdir)) < 0)
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
	struct push_ctx ctx = { .cred = { .opts = opts } };
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
