#!/bin/bash
# Sync over http:// with the credentials in a file (-o credentials_file=).
# A smart-HTTP git server on 127.0.0.1 (tests/git-http-server.py: git
# http-backend behind HTTP Basic auth) serves one bare hub. Two nodes with
# the right credentials converge through it. A node with a wrong password
# fails to sync, counts its failures, keeps taking writes, and syncs once
# the file holds the right password (it is read at each attempt). A node
# whose file other users could read refuses to send it at all. The password
# never shows in a daemon's log, in /.gitkv/status, on a daemon's command
# line or in a store's git configuration.
#
# Plain http: libgit2 trusts only the system's certificate authorities, so a
# throwaway TLS server could not be trusted without changing the machine.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse
[[ -x $(git --exec-path)/git-http-backend ]] || fail "git http-backend is not installed"

SERVER_PID=
trap 'rc=$?; [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null; _cleanup $rc' EXIT

# status_of MNT EXPR - evaluate the python expression EXPR over the JSON of
# MNT/.gitkv/status (bound to `s`; `r` is its first remote) and print it.
status_of() {
	"$PYTHON" -c 'import json, sys; s = json.load(open(sys.argv[1])); r = s["remotes"][0]; print(eval(sys.argv[2]))' \
		"$1/.gitkv/status" "$2"
}

# shows PATH CONTENT - PATH holds CONTENT plus the newline echo wrote.
shows() {
	local got
	got=$(cat -- "$1" 2>/dev/null && printf x) || return 1
	[[ ${got%x} == "$2"$'\n' ]]
}

# holds REPO KEY VALUE - the branch of bare repository REPO has KEY = VALUE.
holds() {
	[[ $(git -C "$1" show "main:$2" 2>/dev/null) == "$3" ]]
}

failing() { (($(status_of "$1" 'r["failures"]') >= 2)); }
healthy() { [[ $(status_of "$1" 'r["failures"], r["last_push_ok"]') == "(0, True)" ]]; }
nothing_pending() { (($(status_of "$1" 's["pending_pushes"]') == 0)); }

# Secrets no other text on this machine holds, so any match is a leak.
password=pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
wrong=wrong-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'gitkv:%s\n' "$password" >"$T/server.creds"
(
	umask 077
	printf 'gitkv:%s\n' "$password" >"$T/good.creds"
	printf 'gitkv:%s\n' "$wrong" >"$T/wrong.creds"
	printf 'gitkv:%s\n' "$password" >"$T/shared.creds"
)
chmod 640 "$T/shared.creds"

# --- the server ---------------------------------------------------------------------
srv=$T/srv
mkdir "$srv"
"$GITKV" init "$srv/hub.git"
hub=$srv/hub.git
"$PYTHON" "$TESTS_DIR/git-http-server.py" --root "$srv" --credentials "$T/server.creds" \
	--port-file "$T/http.port" --log "$T/http.log" 2>"$T/http.err" &
SERVER_PID=$!
server_settled() { [[ -s $T/http.port ]] || ! _alive "$SERVER_PID"; }
wait_until 10 server_settled || fail "the git HTTP server neither starts nor exits within 10 s"
_alive "$SERVER_PID" || fail "the git HTTP server exited: $(cat "$T/http.err")"
url=http://127.0.0.1:$(cat "$T/http.port")/hub.git
GIT_TERMINAL_PROMPT=0 git ls-remote "$url" >/dev/null 2>&1 &&
	fail "the server lets git in without credentials"
grep -q "401 user=-" "$T/http.log" || fail "the server logged no 401: $(cat "$T/http.log")"
ok "the git HTTP server on 127.0.0.1 refuses requests without credentials"

# --- two nodes with the right credentials converge ------------------------------------
for n in a b; do
	"$GITKV" init "$T/$n.git"
	start_daemon "$T/$n.git" "$T/$n" node=$n remote=hub="$url" credentials_file="$T/good.creds" \
		sync_interval=1
done
echo 5432 >"$T/a/db_port"
echo db1.example.com >"$T/b/db_host"
wait_until 20 shows "$T/b/db_port" 5432 || fail "B does not show A's write within 20 s: $(cat "$T/b/.gitkv/status")"
wait_until 20 shows "$T/a/db_host" db1.example.com ||
	fail "A does not show B's write within 20 s: $(cat "$T/a/.gitkv/status")"
wait_until 10 holds "$hub" db_port 5432 || fail "the hub does not hold A's write"
wait_until 10 holds "$hub" db_host db1.example.com || fail "the hub does not hold B's write"
for n in a b; do
	wait_until 10 nothing_pending "$T/$n" || fail "$n keeps pending pushes: $(cat "$T/$n/.gitkv/status")"
	assert_eq "hub $url True True None 0" \
		"$(status_of "$T/$n" '" ".join(str(r[k]) for k in ("name", "url", "last_fetch_ok", "last_push_ok", "last_error", "failures"))')" \
		"$n's status of its http remote"
done
grep -qE "^POST /hub.git/git-receive-pack 200 user=gitkv$" "$T/http.log" ||
	fail "the server logged no authenticated push: $(tail -n 5 "$T/http.log")"
ok "with the credentials file, two nodes fetch and push through the server and converge"

# --- a wrong password -------------------------------------------------------------------
"$GITKV" init "$T/c.git"
start_daemon "$T/c.git" "$T/c" node=c remote=hub="$url" credentials_file="$T/wrong.creds" sync_interval=1
echo from-c >"$T/c/who" || fail "a write on C failed while its credentials are refused"
wait_until 20 failing "$T/c" || fail "C's status counts no failures: $(cat "$T/c/.gitkv/status")"
assert_eq "False False" "$(status_of "$T/c" '" ".join(str(r[k]) for k in ("last_fetch_ok", "last_push_ok"))')" \
	"C's last fetch and push failed"
assert_match "refused the credentials in '$T/wrong.creds'" "$(status_of "$T/c" 'r["last_error"]')" \
	"C's status says its credentials were refused"
for i in 1 2 3; do
	echo "$i" >"$T/c/offline" || fail "write $i on C failed while its credentials are refused"
done
assert_content 3 "$T/c/offline" "C's mount"
assert_eq 3 "$(git -C "$T/c.git" show main:offline)" "C commits locally"
git -C "$hub" cat-file -e main:who 2>/dev/null && fail "the hub got C's write with a wrong password"
ok "with a wrong password the remote fails, failures are counted, and the mount takes writes"

# The file is read at every attempt: fixing it is enough, no restart.
(umask 077 && printf 'gitkv:%s\n' "$password" >"$T/wrong.creds.new")
mv "$T/wrong.creds.new" "$T/wrong.creds"
kill -USR1 "$(daemon_pid "$T/c")"
wait_until 20 holds "$hub" offline 3 || fail "C's writes do not reach the hub once its file is right"
wait_until 10 healthy "$T/c" || fail "C's failures are not reset: $(cat "$T/c/.gitkv/status")"
ok "once the file holds the right password, the writes made meanwhile reach the hub"

# --- the secret stays secret ---------------------------------------------------------------
leaks() {
	local where=$1 what=$2
	grep -qF -e "$password" -e "$wrong" <<<"$what" && fail "a password shows in $where"
	return 0
}
for n in a b c; do
	cmdline=$(tr '\0' ' ' <"/proc/$(daemon_pid "$T/$n")/cmdline")
	[[ $cmdline == *"credentials_file=$T/"* ]] || fail "$n's command line is not what it should be: $cmdline"
	leaks "$n's command line" "$cmdline"
	leaks "$n's status" "$(cat "$T/$n/.gitkv/status")"
	leaks "$n's git configuration" "$(git -C "$T/$n.git" config --list)"
done
# Unmount them at once, then each daemon must exit with status 0.
for n in a b c; do fusermount3 -u "$T/$n" || fail "cannot unmount $n"; done
for n in a b c; do stop_daemon "$T/$n" true; done

# --- a file other users can read is refused -----------------------------------------------
# The right password, but group-readable: it is never sent.
"$GITKV" init "$T/d.git"
before=$(wc -l <"$T/http.log")
start_daemon "$T/d.git" "$T/d" node=d remote=hub="$url" credentials_file="$T/shared.creds" sync_interval=1
echo from-d >"$T/d/who" || fail "a write on D failed"
wait_until 20 failing "$T/d" || fail "D's status counts no failures: $(cat "$T/d/.gitkv/status")"
assert_match "credentials file '$T/shared.creds' is accessible by group or others \(mode 640\)" \
	"$(status_of "$T/d" 'r["last_error"]')" "D's status says why the file is refused"
new=$(tail -n "+$((before + 1))" "$T/http.log")
[[ -n $new ]] || fail "D never contacted the server"
grep -qv "^GET .* 401 user=-$" <<<"$new" && fail "D sent credentials from a group-readable file: $new"
[[ $(git -C "$hub" show main:who 2>/dev/null) != from-d ]] || fail "the hub got D's write"
leaks "D's status" "$(cat "$T/d/.gitkv/status")"
stop_daemon "$T/d"
ok "a credentials file readable by group or others is refused, and nothing is sent"

for log in "${ALL_LOGS[@]}"; do
	leaks "daemon log ${log##*/}" "$(cat "$log")"
done
ok "the password shows in no daemon log, status, command line or git configuration"

kill "$SERVER_PID"
wait "$SERVER_PID" 2>/dev/null || true
SERVER_PID=
assert_fsck "$hub"
for n in a b c d; do assert_fsck "$T/$n.git"; done
