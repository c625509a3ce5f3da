#!/bin/bash
# Sync over ssh://. A real sshd listens on 127.0.0.1 with a throwaway host
# key and lets root in with one throwaway user key; two nodes, each with its
# own store, sync through it with one bare hub (-o ssh_key=). A write on one
# node shows on the other, the hub's history has both, and /.gitkv/status
# shows the remote's URL and its successful rounds. The server is verified:
# a node whose ~/.ssh/known_hosts lists another key for the host refuses to
# sync with it. A node offering a key the server does not authorise fails
# to sync, counts its failures, and keeps taking writes.
#
# sshd must run as root to let root log in with a key, so this test needs
# root; it fails (does not skip) without root or without openssh-server.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse
SSHD=/usr/sbin/sshd
[[ -x $SSHD ]] || fail "$SSHD is missing: install openssh-server (scripts/deps.sh does)"
command -v ssh-keygen >/dev/null || fail "ssh-keygen is missing: install openssh-client"
((EUID == 0)) || fail "this test runs sshd and logs in as root over ssh: run it as root"

# Processes this test starts besides the daemons, killed by pid on the way out.
SSHD_PID=
trap 'rc=$?; [[ -n $SSHD_PID ]] && kill "$SSHD_PID" 2>/dev/null; _cleanup $rc' EXIT

# Under AddressSanitizer: libgit2 1.5's ssh transport leaks a little on
# every connection (tests/lsan.supp); its suppression needs whole stacks.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0

# No agent and no personal ssh configuration: the keys below are the only ones.
unset SSH_AUTH_SOCK
S=$T/ssh
mkdir -m 700 "$S"
ssh-keygen -q -t ed25519 -N '' -C gitkv-test-host -f "$S/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C gitkv-test-user -f "$T/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C gitkv-test-stranger -f "$T/wrong_ed25519"
ssh-keygen -q -t ed25519 -N '' -C gitkv-test-impostor -f "$S/other_host_ed25519"
cp "$T/id_ed25519.pub" "$S/authorized_keys"

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
nothing_pending() { (($(status_of "$1" 's["pending_pushes"]') == 0)); }

# --- sshd on 127.0.0.1 -------------------------------------------------------------
# The privilege separation directory is normally made by the service's unit;
# sshd refuses to start without it.
[[ -d /run/sshd ]] || mkdir -m 755 /run/sshd

sshd_settled() { grep -q "Server listening on 127.0.0.1 port $SSH_PORT" "$S/sshd.log" || ! _alive "$SSHD_PID"; }

# Another process may take the free port before sshd binds it: try a few.
for try in 1 2 3; do
	SSH_PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	# SetEnv SHLVL=1: bash started by sshd reads ~/.bashrc only as a top-level
	# shell, and root's startup files are no business of this test.
	cat >"$S/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress 127.0.0.1
HostKey $S/host_ed25519
PidFile $S/sshd.pid
AuthorizedKeysFile $S/authorized_keys
StrictModes no
UsePAM no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers root
PermitUserRC no
PrintMotd no
SetEnv SHLVL=1
LogLevel VERBOSE
EOF
	"$SSHD" -t -f "$S/sshd_config" || fail "sshd rejects its configuration"
	"$SSHD" -D -e -f "$S/sshd_config" >"$S/sshd.log" 2>&1 &
	SSHD_PID=$!
	wait_until 10 sshd_settled || fail "sshd neither listens nor exits within 10 s: $(cat "$S/sshd.log")"
	_alive "$SSHD_PID" && break
	wait "$SSHD_PID" 2>/dev/null || true
	SSHD_PID=
	note "sshd could not listen on port $SSH_PORT (try $try): $(tail -n 3 "$S/sshd.log")"
done
[[ -n $SSHD_PID ]] || fail "sshd did not start: $(cat "$S/sshd.log")"

# The daemons' home: libgit2 checks host keys against ~/.ssh/known_hosts.
export HOME=$T/home
mkdir -p "$HOME/.ssh"
echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$S/host_ed25519.pub")" >"$HOME/.ssh/known_hosts"

hub=$T/hub.git
url=ssh://root@127.0.0.1:$SSH_PORT$hub
"$GITKV" init "$hub"
GIT_SSH_COMMAND="ssh -F /dev/null -i $T/id_ed25519 -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$HOME/.ssh/known_hosts" \
	git ls-remote "$url" >/dev/null 2>"$T/ls-remote.err" ||
	fail "git over ssh cannot reach the hub: $(cat "$T/ls-remote.err") / sshd: $(tail -n 5 "$S/sshd.log")"
ok "sshd serves the hub on 127.0.0.1:$SSH_PORT"

# --- two nodes converge through the hub over ssh --------------------------------------
for n in a b; do
	"$GITKV" init "$T/$n.git"
	start_daemon "$T/$n.git" "$T/$n" node=$n remote=hub="$url" ssh_key="$T/id_ed25519" sync_interval=1
done
echo 5432 >"$T/a/db_port"
echo db1.example.com >"$T/b/db_host"
wait_until 20 shows "$T/b/db_port" 5432 || fail "B does not show A's write within 20 s: $(cat "$T/b/.gitkv/status")"
wait_until 20 shows "$T/a/db_host" db1.example.com ||
	fail "A does not show B's write within 20 s: $(cat "$T/a/.gitkv/status")"
ok "a write on A reads back on B's mount, and B's on A's"

wait_until 10 holds "$hub" db_port 5432 || fail "the hub does not hold A's write"
wait_until 10 holds "$hub" db_host db1.example.com || fail "the hub does not hold B's write"
subjects=$(git -C "$hub" log --format=%s main)
grep -qx "set db_port" <<<"$subjects" || fail "the hub's history lacks A's commit: $subjects"
grep -qx "set db_host" <<<"$subjects" || fail "the hub's history lacks B's commit: $subjects"
ok "git log in the hub has both commits"

for n in a b; do
	wait_until 10 nothing_pending "$T/$n" || fail "$n keeps pending pushes: $(cat "$T/$n/.gitkv/status")"
	assert_eq "hub $url True True None 0" \
		"$(status_of "$T/$n" '" ".join(str(r[k]) for k in ("name", "url", "last_fetch_ok", "last_push_ok", "last_error", "failures"))')" \
		"$n's status of its ssh remote"
	assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "$(status_of "$T/$n" 'r["last_push"]')" \
		"$n's last push is an ISO-8601 time"
done
grep -q "Accepted publickey for root from 127.0.0.1" "$S/sshd.log" ||
	fail "sshd logged no key login: $(tail -n 5 "$S/sshd.log")"
ok "/.gitkv/status shows the ssh URL and a successful fetch and push"

# --- a key the server does not know; a server the node does not know --------------------
# C offers an unauthorised key. D has the right key, but its known_hosts
# lists another key for [127.0.0.1]:PORT: to D the server is an impostor.
mkdir -p "$T/home-d/.ssh"
echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$S/other_host_ed25519.pub")" >"$T/home-d/.ssh/known_hosts"
"$GITKV" init "$T/c.git"
"$GITKV" init "$T/d.git"
start_daemon "$T/c.git" "$T/c" node=c remote=hub="$url" ssh_key="$T/wrong_ed25519" sync_interval=1
HOME=$T/home-d start_daemon "$T/d.git" "$T/d" node=d remote=hub="$url" ssh_key="$T/id_ed25519" sync_interval=1
for n in c d; do
	echo "from-$n" >"$T/$n/who" || fail "a write on $n failed while its remote is refused"
done
for n in c d; do
	wait_until 20 failing "$T/$n" || fail "$n's status counts no failures: $(cat "$T/$n/.gitkv/status")"
	assert_eq "False False" "$(status_of "$T/$n" '" ".join(str(r[k]) for k in ("last_fetch_ok", "last_push_ok"))')" \
		"$n's last fetch and push failed"
done
assert_match "refused the ssh key '$T/wrong_ed25519'" "$(status_of "$T/c" 'r["last_error"]')" \
	"C's status names the refused key"
grep -q "Failed publickey for root from 127.0.0.1" "$S/sshd.log" ||
	fail "sshd logged no refused key: $(tail -n 5 "$S/sshd.log")"
assert_match "host key of '127.0.0.1'.*known_hosts" "$(status_of "$T/d" 'r["last_error"]')" \
	"D's status says the host key is not the known one"
ok "an unauthorised key and an unknown host key make the remote fail, with failures counted"

for i in 1 2 3; do
	echo "$i" >"$T/c/offline" || fail "write $i on C failed while its remote is refused"
done
assert_content 3 "$T/c/offline" "C's mount"
assert_eq 3 "$(git -C "$T/c.git" show main:offline)" "C commits locally"
assert_eq "from-c" "$(git -C "$T/c.git" show main:who)" "C's first write is committed"
for k in who offline; do
	git -C "$hub" cat-file -e "main:$k" 2>/dev/null && fail "the hub got '$k' from a refused node"
done
ok "the mount keeps taking writes while its remote refuses it, and the hub gets none of them"

# Unmount every node at once, then each daemon must exit with status 0.
for n in a b c d; do fusermount3 -u "$T/$n" || fail "cannot unmount $n"; done
for n in a b c d; do stop_daemon "$T/$n" true; done
kill "$SSHD_PID"
wait "$SSHD_PID" 2>/dev/null || true
SSHD_PID=
assert_fsck "$hub"
for n in a b c d; do assert_fsck "$T/$n.git"; done
