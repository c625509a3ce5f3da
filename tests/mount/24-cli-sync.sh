#!/bin/bash
# `gitkv sync` runs one round of fetch, merge and push for the remotes a
# store records in its git config: two stores and a hub converge, a key
# changed on both sides goes to the newer change, an unreachable remote is
# reported on stderr with exit status 3, and a store without remotes says so.
. "$(dirname "$0")/../lib.sh"

kv() { local s=$1; shift; "$GITKV" -C "$T/$s.git" "$@"; }

for s in hub a b; do kv "$s" init; done
git -C "$T/a.git" config remote.hub.url "$T/hub.git"
git -C "$T/b.git" config remote.hub.url "$T/hub.git"

kv a set app/x from-a
kv a sync >"$T/out"
assert_eq "hub	$T/hub.git	ok" "$(cat "$T/out")" "gitkv sync reports the remote"
kv b sync >/dev/null
assert_eq from-a "$(kv b get app/x)" "b has a's key after one sync each"
ok "gitkv sync brings a store's keys to another through the hub"

kv a set app/y only-a
sleep 1 # the conflict rule compares commit times (seconds): make b's change newer
kv a set app/x older
sleep 1
kv b set app/x newer
for s in b a b; do kv "$s" sync >/dev/null; done
assert_eq newer "$(kv a get app/x)" "the newer change wins on a"
assert_eq newer "$(kv b get app/x)" "the newer change wins on b"
assert_eq only-a "$(kv b get app/y)" "a one-sided change is taken"
assert_eq "$(git -C "$T/a.git" rev-parse 'main^{tree}')" "$(git -C "$T/b.git" rev-parse 'main^{tree}')" \
	"a and b hold the same tree"
git -C "$T/a.git" log -1 --format=%B main | grep -q '^merge' ||
	git -C "$T/b.git" log --format=%B main | grep -q '^merge hub' || fail "no merge commit names the remote"
assert_fsck "$T/a.git"
assert_fsck "$T/b.git"
ok "a key changed on both sides goes to the newer change; both stores converge"

git -C "$T/a.git" config remote.gone.url "$T/nowhere.git"
rc=0
kv a sync >"$T/out" 2>"$T/err" || rc=$?
assert_eq 3 "$rc" "exit status with an unreachable remote"
grep -q "gone" "$T/err" || fail "the unreachable remote is not named: $(cat "$T/err")"
grep -q "hub	.*ok" "$T/out" || fail "the reachable remote is not reported ok"
ok "an unreachable remote is reported on stderr with exit status 3; the others still sync"

kv hub init 2>/dev/null || true
rc=0
"$GITKV" -C "$T/hub.git" sync 2>"$T/err" || rc=$?
assert_eq 3 "$rc" "exit status for a store without remotes"
grep -q "no remotes" "$T/err" || fail "unexpected message: $(cat "$T/err")"
ok "a store without remotes says so"
