#!/bin/bash
# Concurrency: many processes writing through the mount at once, a shared key
# rewritten by several of them, and the CLI committing into the same bare
# repository meanwhile. Every acknowledged write is in the history, the
# shared key ends with one writer's last value, nothing is lost to the ref
# race between the daemon and the CLI, and git fsck --strict stays clean.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
start_daemon "$store" "$M" node=testnode
mkdir -p "$M/c" "$M/cli"
echo start >"$M/c/shared"

WRITERS=8 KEYS=200 SHARERS=4 REWRITES=50 CLI_SETS=40
mkdir "$T/ack"

# The writers use the shell's own echo, as a user would. The shell cannot
# see a failed close() (the commit), but every write here must succeed: a
# commit that failed shows up below as a key missing from HEAD.
distinct_writer() {
	local j=$1 i
	mkdir -p "$M/c/p$j"
	for ((i = 1; i <= KEYS; i++)); do
		if echo "p$j-k$i" >"$M/c/p$j/k$i"; then
			echo "$i" >>"$T/ack/p$j"
		fi
	done
}
shared_writer() {
	local w=$1 n v
	for ((n = 1; n <= REWRITES; n++)); do
		printf -v v 'w%d-%02d' "$w" "$n"
		if echo "$v" >"$M/c/shared"; then
			echo "$v" >>"$T/ack/s$w"
		fi
	done
}
# The CLI commits straight into the bare repository while the daemon commits
# too; each of its writes must show through the mount within 2 s.
cli_writer() {
	local i
	for ((i = 1; i <= CLI_SETS; i++)); do
		if "$GITKV" -C "$store" set "cli/k$i" "v$i"; then
			echo "$i" >>"$T/ack/cli"
			if ! wait_until 2 grep -qx "v$i" "$M/cli/k$i"; then
				echo "cli/k$i not visible in the mount within 2 s" >>"$T/ack/cli-late"
			fi
		fi
	done
}

start=$SECONDS
pids=()
for ((j = 1; j <= WRITERS; j++)); do
	distinct_writer "$j" 2>"$T/ack/p$j.err" &
	pids+=($!)
done
for ((w = 1; w <= SHARERS; w++)); do
	shared_writer "$w" 2>"$T/ack/s$w.err" &
	pids+=($!)
done
cli_writer 2>"$T/ack/cli.err" &
pids+=($!)

all_done() {
	local p
	for p in "${pids[@]}"; do
		! _alive "$p" || return 1
	done
}
wait_until 150 all_done || fail "the writers did not finish within 150 s"
for p in "${pids[@]}"; do
	wait "$p" || true
done
note "$((WRITERS * KEYS + SHARERS * REWRITES)) writes through the mount and $CLI_SETS CLI sets in $((SECONDS - start)) s, $(commit_count "$store") commits"

# Every write was acknowledged (none failed under contention).
for ((j = 1; j <= WRITERS; j++)); do
	n=$(wc -l <"$T/ack/p$j" 2>/dev/null || echo 0)
	assert_eq "$KEYS" "$n" "acknowledged writes of writer p$j ($(head -c 300 "$T/ack/p$j.err"))"
done
for ((w = 1; w <= SHARERS; w++)); do
	n=$(wc -l <"$T/ack/s$w" 2>/dev/null || echo 0)
	assert_eq "$REWRITES" "$n" "acknowledged rewrites of shared writer $w ($(head -c 300 "$T/ack/s$w.err"))"
done
n=$(wc -l <"$T/ack/cli" 2>/dev/null || echo 0)
assert_eq "$CLI_SETS" "$n" "acknowledged gitkv set runs ($(head -c 300 "$T/ack/cli.err"))"
ok "every concurrent write succeeded"

# Every acknowledged write is at HEAD, and in the history of its key.
mkdir "$T/head"
git -C "$store" archive HEAD c cli | tar -x -C "$T/head"
git -C "$store" log --format= --name-only -- c cli | sort -u >"$T/changed"
"$PYTHON" - "$T/ack" "$T/head" "$M" "$T/changed" "$WRITERS" <<'PY' || fail "acknowledged writes are missing"
import os, sys
ack, head, mnt, changed, writers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
changed = set(l.strip() for l in open(changed))
problems = []
def check(path, want, also=None):
    for root, where in ((head, "HEAD"), (mnt, "the mount")):
        try:
            got = open(os.path.join(root, path), "rb").read()
        except OSError as e:
            problems.append("%s missing in %s (%s)" % (path, where, e.strerror))
            continue
        if got != want and got != also:
            problems.append("%s in %s is %r, expected %r" % (path, where, got, want))
    if path not in changed:
        problems.append("%s has no commit in git log -- %s" % (path, path))
for j in range(1, writers + 1):
    for line in open(os.path.join(ack, "p%d" % j)):
        i = line.strip()
        check("c/p%d/k%s" % (j, i), b"p%d-k%s\n" % (j, i.encode()))
for line in open(os.path.join(ack, "cli")):
    i = line.strip()
    check("cli/k%s" % i, b"v%s" % i.encode(), b"v%s\n" % i.encode())
if problems:
    print("%d problems, first ones:" % len(problems), file=sys.stderr)
    for p in problems[:20]:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
PY
ok "every acknowledged write is at HEAD, in the mount and in its key's history"

# The shared key ends with the last value one of its writers wrote.
final=$(git -C "$store" show HEAD:c/shared)
lasts=()
for ((w = 1; w <= SHARERS; w++)); do
	lasts+=("$(tail -n 1 "$T/ack/s$w")")
done
[[ " ${lasts[*]} " == *" $final "* ]] ||
	fail "c/shared at HEAD is '$final', not one of the writers' last values: ${lasts[*]}"
assert_content "$final" "$M/c/shared" "c/shared in the mount"
ok "the shared key holds one writer's last value ($final)"

# Every value the shared key ever held at a commit is a whole value (or
# empty: another writer's O_TRUNC may land between a write and its close).
bad=$(git -C "$store" log -p --format= -- c/shared | grep '^+' | grep -v '^+++' |
	sed 's/^+//' | grep -vxE 'start|w[0-9]-[0-9]{2}' | head -5 || true)
[[ -z $bad ]] || fail "c/shared held torn values in the history: $bad"
ok "the shared key never held a torn value in any commit"

if [[ -s $T/ack/cli-late ]]; then
	fail "CLI writes not visible through the mount within 2 s: $(head -5 "$T/ack/cli-late")"
fi
ok "each gitkv set made while writes go through the mount shows in the mount within 2 s"

# With the load gone, a CLI write still shows within 2 s and is never lost.
for i in 1 2 3; do
	"$GITKV" -C "$store" set "cli/after" "after$i"
	echo "mount$i" >"$M/cli/m$i"
	wait_until 2 grep -qx "after$i" "$M/cli/after" || fail "cli/after=after$i not visible in the mount within 2 s"
done
for i in 1 2 3; do
	assert_eq "mount$i" "$(git -C "$store" show "HEAD:cli/m$i")" "a mount write between CLI sets"
done
assert_eq after3 "$(git -C "$store" show HEAD:cli/after)" "the last CLI set"
ok "gitkv set interleaved with mount writes: nothing lost, visible within 2 s"

assert_fsck "$store"
stop_daemon "$M"
((SECONDS - start < 120)) || note "the concurrency test took $((SECONDS - start)) s"
ok "the store passes git fsck --strict after concurrent writes"
