#!/bin/bash
# Sync across hosts, star topology: three nodes, each with its own store,
# share one bare hub. A write on one node shows on the others within a few
# sync intervals, and a program watching the mount with inotify on another
# node sees it (replay). Writes keep working while a remote is down (a
# git:// remote served by `git daemon`): /.gitkv/status counts the failures,
# and once the remote is back the writes made meanwhile reach it.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse
command -v inotifywait >/dev/null || fail "inotifywait (inotify-tools) is not installed"
[[ -x $(git --exec-path)/git-daemon ]] || fail "git daemon is not installed"

hub=$T/hub.git
"$GITKV" init "$hub"
for n in a b c; do
	"$GITKV" init "$T/$n.git"
	start_daemon "$T/$n.git" "$T/$n" node=$n remote=$hub sync_interval=1
done

# Processes this test starts besides the daemons, killed by pid on the way out.
declare -a HELPERS=()
GIT_DAEMON=
trap 'rc=$?; for p in "${HELPERS[@]}" $GIT_DAEMON; do kill "$p" 2>/dev/null; done; _cleanup $rc' EXIT

# shows PATH CONTENT - PATH holds CONTENT plus the newline echo wrote.
shows() {
	local got
	got=$(cat -- "$1" 2>/dev/null && printf x) || return 1
	[[ ${got%x} == "$2"$'\n' ]]
}

# status_of MNT EXPR - evaluate the python expression EXPR over the JSON of
# MNT/.gitkv/status (bound to `s`) and print the result.
status_of() {
	"$PYTHON" -c 'import json, sys; s = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$1/.gitkv/status" "$2"
}

# holds REPO KEY VALUE - the branch of bare repository REPO has KEY = VALUE.
holds() {
	[[ $(git -C "$1" show "main:$2" 2>/dev/null) == "$3" ]]
}

# net FIELD - FIELD of the remote named "net" in A's status.
net() {
	status_of "$T/a" "[r[\"$1\"] for r in s[\"remotes\"] if r[\"name\"] == \"net\"][0]"
}
net_failing() { (($(net failures) > 0)); }
net_healthy() { (($(net failures) == 0)); }
nothing_pending() { (($(status_of "$T/a" 's["pending_pushes"]') == 0)); }

# --- a write on A shows on B and C, with an inotify event on B ----------------------
inotifywait -m -r -e close_write,create,modify --format '%e %w%f' "$T/b" >"$T/b.events" \
	2>"$T/b.events.err" &
HELPERS+=($!)
wait_until 10 grep -q "Watches established" "$T/b.events.err" || fail "inotifywait did not start"

echo 5432 >"$T/a/db_port"
assert_eq 5432 "$(cat "$T/a/db_port")" "the value on A"
wait_until 15 shows "$T/b/db_port" 5432 || fail "B does not show A's write within 15 s"
wait_until 15 shows "$T/c/db_port" 5432 || fail "C does not show A's write within 15 s"
wait_until 5 grep -qE "^CLOSE_WRITE(,[A-Z_]+)* $T/b/db_port\$" "$T/b.events" ||
	fail "inotifywait on B saw no CLOSE_WRITE for db_port: $(cat "$T/b.events")"
assert_eq 5432 "$(git -C "$hub" show main:db_port)" "the hub holds A's write"
ok "a write on A reaches B and C through the hub, and B's inotify watcher sees it"

# --- SIGUSR1 runs a round now -----------------------------------------------------
# D would sync again only in an hour: the signal is what brings C's write.
"$GITKV" init "$T/d.git"
start_daemon "$T/d.git" "$T/d" node=d remote=$hub sync_interval=3600
wait_until 10 shows "$T/d/db_port" 5432 || fail "D does not sync when it starts"
sleep 1 # the round D's own merge asked for: let it pass, so that only the signal can help
echo 2 >"$T/c/replicas"
wait_until 10 holds "$hub" replicas 2 || fail "C's write does not reach the hub"
kill -USR1 "$(daemon_pid "$T/d")"
wait_until 5 shows "$T/d/replicas" 2 || fail "D does not show C's write within 5 s of SIGUSR1"
stop_daemon "$T/d"
ok "SIGUSR1 makes a node sync at once"

# --- writes on every node converge ------------------------------------------------
echo from-a >"$T/a/who_a"
echo from-b >"$T/b/who_b"
echo from-c >"$T/c/who_c"
echo a-wins-or-not >"$T/a/same"
echo b-wins-or-not >"$T/b/same"
converged() {
	local n k
	for n in a b c; do
		for k in who_a who_b who_c; do
			[[ -f $T/$n/$k ]] || return 1
		done
		[[ $(cat "$T/$n/same") == "$(cat "$T/a/same")" ]] || return 1
	done
}
wait_until 20 converged || fail "the nodes do not converge within 20 s: $(ls "$T/a" "$T/b" "$T/c")"
for n in a b c; do
	assert_eq 0 "$(status_of "$T/$n" 'sum(r["failures"] for r in s["remotes"])')" "failures on $n"
done
ok "concurrent writes on three nodes converge to the same tree"

# --- status ----------------------------------------------------------------------
wait_until 10 nothing_pending || fail "A keeps pending pushes"
assert_eq "r1 $hub True True None" \
	"$(status_of "$T/a" '" ".join(str(s["remotes"][0][k]) for k in ("name", "url", "last_fetch_ok", "last_push_ok", "last_error"))')" \
	"A's status of its remote"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "$(status_of "$T/a" 's["remotes"][0]["last_push"]')" \
	"last_push is ISO-8601 UTC"
assert_eq async "$(status_of "$T/a" 's["sync_mode"]')" "sync_mode"
ok "/.gitkv/status reports each remote's last sync, failures and pending pushes"

for n in a b c; do stop_daemon "$T/$n"; done
for p in "${HELPERS[@]}"; do kill "$p" 2>/dev/null || true; done
HELPERS=()

# --- a git:// remote that goes away and comes back ----------------------------------
srv=$T/srv
mkdir "$srv"
"$GITKV" init "$srv/net.git"
port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
start_git_daemon() {
	git daemon --export-all --enable=receive-pack --base-path="$srv" --listen=127.0.0.1 \
		--port="$port" --reuseaddr "$srv" >>"$T/git-daemon.log" 2>&1 &
	GIT_DAEMON=$!
	wait_until 10 git ls-remote "git://127.0.0.1:$port/net.git" ||
		fail "git daemon did not start on port $port: $(cat "$T/git-daemon.log")"
}
stop_git_daemon() {
	kill "$GIT_DAEMON"
	wait "$GIT_DAEMON" 2>/dev/null || true
	GIT_DAEMON=
}
start_git_daemon
start_daemon "$T/a.git" "$T/a" node=a remote=hub=$hub remote=net=git://127.0.0.1:$port/net.git \
	sync_interval=1 sync_timeout=3
echo 1 >"$T/a/online"
wait_until 15 holds "$srv/net.git" online 1 ||
	fail "the git:// remote does not get A's write"
ok "a git:// remote receives A's writes"

stop_git_daemon
for i in 1 2 3; do
	echo "$i" >"$T/a/offline" || fail "a write on A failed while a remote is down"
done
assert_eq 3 "$(git -C "$T/a.git" show main:offline)" "A commits locally while a remote is down"
wait_until 15 net_failing ||
	fail "the status shows no failure for the unreachable remote: $(cat "$T/a/.gitkv/status")"
assert_eq False "$(net last_fetch_ok)" "the down remote's last fetch is not ok"
[[ $(net last_error) != None ]] || fail "the status names no error for the unreachable remote"
wait_until 10 holds "$hub" offline 3 ||
	fail "the reachable remote does not get the writes while the other is down"
ok "writes succeed while a remote is down; the status counts its failures"

start_git_daemon
wait_until 20 holds "$srv/net.git" offline 3 ||
	fail "the writes made while the git:// remote was down do not reach it within 20 s"
wait_until 10 net_healthy ||
	fail "the failures of the remote are not reset after it came back"
ok "once the remote is back, the writes made meanwhile reach it"

stop_daemon "$T/a"
stop_git_daemon
assert_fsck "$hub"
assert_fsck "$srv/net.git"
