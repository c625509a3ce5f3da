#!/bin/bash
# Restart and crash: a remount shows exactly the committed state, and a
# daemon killed with SIGKILL in the middle of a stream of writes loses no
# acknowledged write, commits no half-written value and leaves a repository
# that git fsck --strict accepts and the next daemon can write to.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
start_daemon "$store" "$M" node=testnode

# --- a clean restart shows exactly the committed state --------------------
mkdir -p "$M/app/db" "$M/app/empty" "$M/bin"
echo localhost >"$M/app/db/host"
echo 5432 >"$M/app/db/port"
: >"$M/app/blank"
head -c 70000 /dev/urandom >"$M/app/blob"
printf '#!/bin/sh\n' >"$M/bin/tool"
chmod +x "$M/bin/tool"
ln -s ../app/db/host "$M/bin/host-link"
echo gone >"$M/app/deleted"
rm "$M/app/deleted"
echo tmp >"$M/app/scratch.tmp"
before=$(listing "$M" | grep -v scratch.tmp)
head=$(head_of "$store")

stop_daemon "$M"
assert_eq "$head" "$(head_of "$store")" "unmounting makes no commit"
start_daemon "$store" "$M" node=testnode
assert_eq "$before" "$(listing "$M")" "the tree after a remount (paths, types, modes, contents)"
assert_content localhost "$M/app/db/host" "a value after remount"
git clone -q "$store" "$T/clone"
diff -r --no-dereference --exclude=.git --exclude=.gitkv --exclude=empty "$M" "$T/clone" >"$T/diff" ||
	fail "the remounted tree differs from HEAD's: $(cat "$T/diff")"
ok "unmount and remount shows exactly the committed state"

# SIGTERM is a graceful stop too: exit 0, unmounted, nothing lost.
echo term >"$M/app/term"
pid=$(daemon_pid "$M")
kill -TERM "$pid"
wait_until 10 not _alive "$pid" || fail "gitkvfs did not exit within 10 s of SIGTERM"
rc=0
wait "$pid" || rc=$?
unset 'DAEMON_PID[$M]'
assert_eq 0 "$rc" "gitkvfs's exit status after SIGTERM"
wait_until 5 not mountpoint -q "$M" || fail "$M still mounted after SIGTERM"
start_daemon "$store" "$M" node=testnode
assert_content term "$M/app/term" "the last write before SIGTERM after restart"
assert_eq "$before" "$(listing "$M" | grep -v '^app/term \|  app/term$')" "the rest of the tree after SIGTERM and restart"
ok "SIGTERM stops the daemon with status 0 and a restart shows the committed state"

# --- kill -9 during a write loop --------------------------------------------------
# Each round kills the daemon at a different point of a stream of writes
# (the kill can land anywhere in a commit: object writes, the ref update),
# then checks the store and that the next daemon and the CLI can write.
acked_count() { (($(wc -l <"$acked") >= $1)); }

crash_round() {
	local round=$1 kill_after=$2 writer n_acked before locks
	local dir=crash$round
	acked=$T/acked.$round
	: >"$acked"
	mkdir "$M/$dir"
	# The writer records a write as acknowledged only once close() - the
	# commit - returned 0 (the shell's echo cannot see a failed close). It
	# writes as fast as one process can, so the kill lands anywhere in a
	# commit: object writes, the ref update, the snapshot.
	"$PYTHON" - "$M/$dir" "$acked" 2>"$T/writer.err" <<'PY' &
import os, sys, time
d, acked = sys.argv[1], sys.argv[2]
log = open(acked, "a", buffering=1)
fails, end = 0, time.monotonic() + 60
for i in range(1, 20001):
    if time.monotonic() > end:
        break
    try:
        fd = os.open("%s/key%d" % (d, i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, b"v%d\n" % i)
        finally:
            os.close(fd)
    except OSError:
        fails += 1
        if fails >= 3:
            break
        continue
    fails = 0
    log.write("%d\n" % i)
PY
	writer=$!
	wait_until 30 acked_count "$kill_after" ||
		fail "round $round: fewer than $kill_after acknowledged writes in 30 s"
	kill -KILL "$(daemon_pid "$M")"
	wait_until 70 not _alive "$writer" || fail "round $round: the writer did not stop after the daemon died"
	wait "$writer" || true
	n_acked=$(wc -l <"$acked")
	note "round $round: killed the daemon after $n_acked acknowledged writes"
	wait "$(daemon_pid "$M")" 2>/dev/null || true
	unset 'DAEMON_PID[$M]'
	fusermount3 -uz "$M"
	wait_until 10 not mountpoint -q "$M" || fail "$M still mounted after lazy unmount"
	[[ -z $(ls -A "$M") ]] || fail "writes went to the directory under the mount: $(ls -A "$M" | head)"

	assert_fsck "$store"
	ok "round $round: after kill -9 during writes git fsck --strict is clean"

	start_daemon "$store" "$M" node=testnode
	# Every acknowledged key holds exactly v$i; every other key that made it
	# (in flight at the kill) is whole too: never empty, never cut short.
	"$PYTHON" - "$M/$dir" "$acked" <<'PY' || fail "round $round: the keys after kill -9 are not what was acknowledged"
import os, sys
d, acked = sys.argv[1], sys.argv[2]
ok = True
want = [int(l) for l in open(acked) if l.strip()]
missing = [i for i in want if not os.path.isfile(os.path.join(d, "key%d" % i))]
if missing:
    print("acknowledged writes lost: %s" % ["key%d" % i for i in missing[:20]], file=sys.stderr)
    ok = False
bad = []
for name in sorted(os.listdir(d)):
    if not name.startswith("key"):
        bad.append("%s (unexpected name)" % name)
        continue
    with open(os.path.join(d, name), "rb") as f:
        v = f.read()
    if v != b"v%s\n" % name[3:].encode():
        bad.append("%s=%r" % (name, v))
if bad:
    print("wrong or partial values: %s" % bad[:20], file=sys.stderr)
    ok = False
print("# %d acknowledged, %d present" % (len(want), len(os.listdir(d))))
sys.exit(0 if ok else 1)
PY
	ok "round $round: every acknowledged write ($n_acked) survives kill -9 with its value"
	local bad
	bad=$(git -C "$store" ls-tree -r HEAD "$dir/" | awk '$1 != "100644" { print }')
	[[ -z $bad ]] || fail "round $round: unexpected entries under $dir/: $bad"
	ok "round $round: no key holds a partial value after kill -9"

	# The store takes writes again, from the mount and from the CLI.
	locks=$(cd "$store" && find . -name '*.lock' | tr '\n' ' ')
	[[ -z $locks ]] || note "round $round: lock files left by the killed daemon: $locks"
	before=$(commit_count "$store")
	/bin/echo after >"$M/$dir/after" || fail "round $round: a write through the mount after the crash failed"
	assert_eq after "$(git -C "$store" show "HEAD:$dir/after")" "round $round: a write after the crash is committed"
	"$GITKV" -C "$store" set "$dir/cli" after-cli || fail "round $round: gitkv set after the crash failed"
	assert_eq after-cli "$(git -C "$store" show "HEAD:$dir/cli")" "round $round: a CLI write after the crash"
	assert_eq $((before + 2)) "$(commit_count "$store")" "round $round: two writes after the crash, two commits"
	ok "round $round: after kill -9 and remount the store takes writes again"
}

for round in 1 2 3 4 5; do
	crash_round "$round" $((30 + RANDOM % 300))
done
assert_fsck "$store"
stop_daemon "$M"
ok "the store passes git fsck --strict after five crashes"
