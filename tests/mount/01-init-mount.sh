#!/bin/bash
# A store is a bare git repository: `gitkv init` and `gitkvfs -o init` create
# one, `gitkvfs STORE MNT` mounts it, and both `fusermount3 -u` and `umount`
# unmount it with the daemon exiting 0.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/cli.git
mnt=$T/mnt

"$GITKV" init "$store" || fail "gitkv init $store failed"
assert_eq true "$(git -C "$store" rev-parse --is-bare-repository)" "gitkv init makes a bare repository"
assert_eq 0 "$(commit_count "$store")" "a new store has no commit"
ok "gitkv init STORE creates a bare repository"

"$GITKV" -C "$T/cli2.git" init || fail "gitkv -C STORE init failed"
assert_eq true "$(git -C "$T/cli2.git" rev-parse --is-bare-repository)" "gitkv -C STORE init makes a bare repository"
ok "gitkv -C STORE init creates a bare repository"

start_daemon "$store" "$mnt" node=testnode
mountpoint -q "$mnt" || fail "$mnt is not a mountpoint"
assert_eq "" "$(ls -A "$mnt" | grep -vx .gitkv || true)" "a new store mounts empty (but for .gitkv)"
echo hello >"$mnt/greeting"
assert_content hello "$mnt/greeting" "a key written to a fresh mount reads back"
assert_eq "hello" "$(git -C "$store" show HEAD:greeting)" "the key is on the branch"
ok "gitkvfs STORE MNT mounts the store and takes writes"

stop_daemon "$mnt" fusermount3 -u
ok "fusermount3 -u unmounts and the daemon exits 0"

start_daemon "$store" "$mnt"
assert_content hello "$mnt/greeting" "the key is back after remount"
stop_daemon "$mnt" umount
ok "umount unmounts and the daemon exits 0"

# -o init creates the store when it is missing.
fresh=$T/fresh.git
[[ ! -e $fresh ]] || fail "$fresh exists before the test"
start_daemon "$fresh" "$mnt" init
assert_eq true "$(git -C "$fresh" rev-parse --is-bare-repository)" "gitkvfs -o init makes a bare repository"
mkdir -p "$mnt/app/db"
echo localhost >"$mnt/app/db/host"
assert_eq localhost "$(git -C "$fresh" show HEAD:app/db/host)" "a write to an -o init store is committed"
stop_daemon "$mnt"
ok "gitkvfs -o init STORE MNT creates a bare repository and mounts it"

# -o init on an existing store keeps what it holds.
start_daemon "$fresh" "$mnt" init
assert_content localhost "$mnt/app/db/host" "-o init on an existing store keeps its keys"
stop_daemon "$mnt"
ok "gitkvfs -o init on an existing store keeps it"

# Without -f the daemon detaches once the mount is ready: when the command
# returns, the mount is there; unmounting ends the daemon.
rc=0
timeout 20 "$GITKVFS" "$store" "$mnt" </dev/null >"$T/bg.out" 2>&1 || rc=$?
assert_eq 0 "$rc" "gitkvfs without -f returns 0 ($(cat "$T/bg.out"))"
mountpoint -q "$mnt" || fail "$mnt is not mounted when gitkvfs (without -f) returned"
assert_content hello "$mnt/greeting" "the detached daemon serves the store"
pids=$(_gitkvfs_pids_under "$mnt")
[[ -n $pids ]] || fail "no detached gitkvfs process found for $mnt"
fusermount3 -u "$mnt" || fail "fusermount3 -u $mnt failed"
for pid in $pids; do
	wait_until 10 not _alive "$pid" || fail "detached gitkvfs $pid did not exit after unmount"
done
mountpoint -q "$mnt" && fail "$mnt still mounted"
ok "gitkvfs without -f detaches after mounting and exits on unmount"

assert_fsck "$store"
assert_fsck "$fresh"
ok "the stores pass git fsck --strict"
