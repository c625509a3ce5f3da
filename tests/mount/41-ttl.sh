#!/bin/bash
# TTLs and leases through the mount: user.gitkv.ttl on a value sets its
# expiry (user.gitkv.expires, ISO 8601), rewriting keeps it, setting it
# again renews it, 0 removes it; a TTL on a directory is a lease renewed by
# every write below it. A value past its expiry reads as absent at once -
# before any reaper, as a read-only mount (which runs none) and the CLI show -
# and the reaper deletes every expired value in one commit, replayed so
# that inotifywait sees DELETE on every node of a syncing pair. Names other
# than user.gitkv.* are ENOTSUP; the read-only ones are EPERM.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse
command -v inotifywait >/dev/null || fail "inotifywait (inotify-tools) is not installed"
command -v setfattr >/dev/null || fail "setfattr (attr) is not installed"

declare -a WATCHERS=()
trap 'rc=$?; for p in "${WATCHERS[@]}"; do kill "$p" 2>/dev/null; done; _cleanup $rc' EXIT

# watch DIR OUT - inotifywait -m -r on DIR, one change event a line.
watch() {
	inotifywait -m -r -e modify,close_write,create,delete,move \
		--format '%e %w%f' "$1" >"$2" 2>"$2.err" &
	WATCHERS+=($!)
	wait_until 10 grep -q "Watches established" "$2.err" ||
		fail "inotifywait did not start: $(cat "$2.err")"
}

xattr() { getfattr --only-values -n "$1" "$2" 2>/dev/null; }
epoch_of() { date -u -d "$1" +%s; }
past() { (($(date +%s) >= $1)); }
has_subject() { git -C "$1" log --format=%s | grep -qE "$2"; }
has_path() { tree_paths "$1" | grep -qxF "$2"; }
lists() { [[ "$(ls "$1" 2>/dev/null | tr '\n' ' ')" == "$2" ]]; }

hub=$T/hub.git
git init -q --bare "$hub"
"$GITKV" init "$T/a.git"
"$GITKV" init "$T/b.git"
A=$T/a
B=$T/b
start_daemon "$T/a.git" "$A" node=a remote=$hub sync_interval=1
start_daemon "$T/b.git" "$B" node=b remote=$hub sync_interval=1

# ---- xattrs on a value --------------------------------------------------------
echo "user=1" >"$A/session"
before=$(date +%s)
setfattr -n user.gitkv.ttl -v 600 "$A/session" || fail "setfattr user.gitkv.ttl failed"
assert_eq 600 "$(xattr user.gitkv.ttl "$A/session")" "user.gitkv.ttl reads back"
exp=$(xattr user.gitkv.expires "$A/session")
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$exp" "expires is ISO 8601 UTC"
e=$(epoch_of "$exp")
((e >= before + 600 && e <= $(date +%s) + 601)) || fail "expires $exp is not 600 s from now"
assert_eq "ttl session 600s" "$(git -C "$T/a.git" log -1 --format=%s)" "the TTL is a commit of its own"
assert_eq "$(git -C "$T/a.git" log -1 --format=%H -- session)" \
	"$(xattr user.gitkv.commit "$A/session")" "user.gitkv.commit is the last commit that changed the key"
names=$(getfattr -d -m - "$A/session" 2>/dev/null | grep -o '^user[^=]*' | sort | tr '\n' ' ')
assert_eq "user.gitkv.commit user.gitkv.expires user.gitkv.ttl " "$names" "getfattr -d -m - lists the three"
git -C "$T/a.git" cat-file -p HEAD:.gitkv/meta/session | grep -qx "expires $e" ||
	fail "the expiry is not stored under .gitkv/meta in the tree"
ok "user.gitkv.ttl sets an expiry stored under .gitkv/meta; expires and commit read back"

echo "user=2" >"$A/session"
assert_eq "$exp" "$(xattr user.gitkv.expires "$A/session")" "rewriting a value keeps its expiry"
wait_until 3 past $((e - 600)) # a second later than the first TTL was set
setfattr -n user.gitkv.ttl -v 600 "$A/session"
e2=$(epoch_of "$(xattr user.gitkv.expires "$A/session")")
((e2 > e)) || fail "setting the TTL again did not renew it ($e2 <= $e)"
ok "rewriting keeps the expiry; setting the TTL again renews it"

setfattr -n user.gitkv.ttl -v 0 "$A/session"
assert_errno OK read "$A/session"
out=$(getfattr -n user.gitkv.expires "$A/session" 2>&1) && fail "user.gitkv.expires still there after ttl 0"
[[ $out == *"No such attribute"* ]] || fail "getfattr of a cleared expiry: $out"
names=$(getfattr -d -m - "$A/session" 2>/dev/null | grep -o '^user[^=]*' | tr '\n' ' ')
assert_eq "user.gitkv.commit " "$names" "after ttl 0 only user.gitkv.commit is listed"
git -C "$T/a.git" cat-file -e HEAD:.gitkv 2>/dev/null && fail "ttl 0 left metadata in the tree"
ok "ttl 0 removes the expiry and its metadata"

# ---- bad input ------------------------------------------------------------------------
mkdir "$A/dir"
h=$(head_of "$T/a.git")
assert_fails_with ENOTSUP setfattr -n user.other -v x "$A/session"
assert_fails_with ENOTSUP getfattr -n user.other "$A/session"
assert_fails_with ENOTSUP setfattr -n trusted.x -v x "$A/session"
assert_fails_with EPERM setfattr -n user.gitkv.expires -v 1 "$A/session"
assert_fails_with EPERM setfattr -n user.gitkv.commit -v 1 "$A/session"
assert_fails_with EINVAL setfattr -n user.gitkv.ttl -v abc "$A/session"
assert_fails_with EINVAL setfattr -n user.gitkv.ttl -v " -5" "$A/session"
assert_fails_with EINVAL setfattr -n user.gitkv.ttl -v 99999999999999 "$A/session"
out=$(setfattr -x user.gitkv.ttl "$A/session" 2>&1) && fail "removing a missing ttl succeeded"
[[ $out == *"No such attribute"* ]] || fail "setfattr -x of a missing ttl: $out"
assert_fails_with EROFS setfattr -n user.gitkv.ttl -v 5 "$A/.gitkv/status"
assert_fails_with EINVAL mkdir "$A/dir/.gitkv"
assert_fails_with EINVAL bash -c 'echo x >"$1"' bash "$A/dir/.gitkv"
assert_eq "$h" "$(head_of "$T/a.git")" "refused xattrs commit nothing"
ok "other xattr names are ENOTSUP, read-only ones EPERM, bad TTLs EINVAL, nothing committed"

# ---- expiry, the reaper and replay on both nodes ---------------------------------------
mkdir "$A/tmp"
echo v >"$A/tmp/one"
echo v >"$A/tmp/two"
echo keep >"$A/tmp/keep"
wait_until 20 test -f "$B/tmp/two" || fail "tmp/two did not reach b"
watch "$A" "$T/ev.a"
watch "$B" "$T/ev.b"
# both due in the same second, so that one expire commit takes both
for ((i = 0; i < 5; i++)); do
	setfattr -n user.gitkv.ttl -v 2 "$A/tmp/one"
	setfattr -n user.gitkv.ttl -v 2 "$A/tmp/two"
	[[ $(xattr user.gitkv.expires "$A/tmp/one") == $(xattr user.gitkv.expires "$A/tmp/two") ]] && break
done
wait_until 10 not test -e "$A/tmp/one" || fail "tmp/one did not expire on a"
wait_until 10 not test -e "$A/tmp/two" || fail "tmp/two did not expire on a" # a second later, maybe
assert_errno ENOENT read "$A/tmp/one"
listing_a=$(ls "$A/tmp" | tr '\n' ' ')
assert_eq "keep " "$listing_a" "expired values are not listed"
wait_until 10 has_subject "$T/a.git" '^expire tmp/(one, tmp/two|two, tmp/one)$' ||
	fail "no single expire commit: $(git -C "$T/a.git" log --format=%s | head -3)"
wait_until 10 grep -qE '^([A-Z_]+,)*DELETE(,[A-Z_]+)* .*/tmp/one$' "$T/ev.a" ||
	fail "inotifywait on a saw no DELETE of tmp/one: $(cat "$T/ev.a")"
wait_until 20 grep -qE '^([A-Z_]+,)*DELETE(,[A-Z_]+)* .*/tmp/two$' "$T/ev.b" ||
	fail "inotifywait on b saw no DELETE of tmp/two: $(cat "$T/ev.b")"
assert_errno ENOENT read "$B/tmp/two"
assert_eq keep "$(cat "$B/tmp/keep")" "the value without a TTL stays"
ok "expired values vanish at once, the reaper deletes them in one commit, DELETE on both nodes"

# ---- leases ---------------------------------------------------------------------------
mkdir -p "$A/services/api"
setfattr -n user.gitkv.ttl -v 3 "$A/services/api" || fail "setfattr on a directory failed"
assert_eq 3 "$(xattr user.gitkv.ttl "$A/services/api")" "a lease reads back on the directory"
echo 10.0.0.2 >"$A/services/api/host2" # registers once, never again
for ((i = 0; i < 12; i++)); do         # host1 heartbeats every 0.5 s for 6 s
	echo 10.0.0.1 >"$A/services/api/host1"
	sleep 0.5
done
assert_eq "host1 " "$(ls "$A/services/api" | tr '\n' ' ')" "a host that stopped heartbeating is gone"
wait_until 20 lists "$B/services/api" "host1 " ||
	fail "b still lists $(ls "$B/services/api" | tr '\n' ' ')"
wait_until 10 not test -e "$A/services/api/host1" || fail "host1 did not expire after it stopped"
wait_until 20 not test -e "$B/services/api/host1" || fail "host1 did not expire on b"
test -d "$A/services/api" || fail "the lease directory itself went"
ok "a lease directory keeps heartbeating hosts and drops the silent ones, on every node"

# ---- absent before the reaper: a read-only mount and the CLI --------------------------
stop_daemon "$B"
echo v >"$A/offline"
setfattr -n user.gitkv.ttl -v 2 "$A/offline"
exp=$(epoch_of "$(xattr user.gitkv.expires "$A/offline")")
stop_daemon "$A" # no reaper from here on
start_daemon "$T/a.git" "$A" node=a ro
assert_eq v "$(cat "$A/offline")" "the value reads before its expiry"
wait_until 5 past "$exp" || fail "the clock did not pass $exp"
assert_errno ENOENT read "$A/offline"
ls "$A" | grep -qx offline && fail "an expired value is listed by a read-only mount"
assert_eq 1 "$(rc=0; "$GITKV" -C "$T/a.git" get offline >/dev/null 2>&1 || rc=$?; echo $rc)" \
	"gitkv get of an expired value exits 1 (not found)"
has_path "$T/a.git" offline || fail "something deleted offline: no reaper should run"
ok "a value past its expiry is absent before any reaper commits (read-only mount, CLI)"
stop_daemon "$A"

# a writable mount reaps what expired while nobody ran
start_daemon "$T/a.git" "$A" node=a
wait_until 10 not has_path "$T/a.git" offline || fail "offline was not reaped at start"
assert_eq "expire offline" "$(git -C "$T/a.git" log -1 --format=%s)" "the start-up expire commit"
stop_daemon "$A"
ok "a daemon started after an expiry reaps it at once"
assert_fsck "$T/a.git"
assert_fsck "$T/b.git"
