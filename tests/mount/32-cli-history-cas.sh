#!/bin/bash
# The gitkv command line's past and its compare-and-swap: history [--json],
# get --rev, revert KEY --to REV (a new commit), ls [-r] --values [--json];
# cas (exit 0 swapped, 1 mismatch with the current value on stderr, 2 usage,
# 3 error), eight processes incrementing one counter fifty times each through
# cas while the store is mounted and written through the mount, and a
# cluster-wide cas that the shared hub decides.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

# Some assertions read a command's standard error: under LeakSanitizer,
# keep the list of suppressions used (libgit2's known leaks) out of it.
if [[ -n ${LSAN_OPTIONS:-} ]]; then
	export LSAN_OPTIONS=$LSAN_OPTIONS:print_suppressions=0
fi

store=$T/store.git
M=$T/mnt
kv() { "$GITKV" -C "$store" "$@"; }

# nap MS - wait MS milliseconds (< 1000) without starting a process: a read
# with a timeout on a FIFO that nobody writes.
mkfifo "$T/nap"
exec {NAP}<>"$T/nap"
nap() {
	local ms
	printf -v ms %03d "$1"
	read -r -t "0.$ms" -u "$NAP" || true
}

# backoff FAILURES - after that many lost swaps in a row, wait a random
# while that doubles with each (40 ms, 80 ms, ... up to a second), so that
# the contenders spread out instead of all retrying at once.
backoff() {
	local cap=$((40 << ($1 < 5 ? $1 : 5)))
	((cap < 1000)) || cap=999
	nap $((RANDOM % cap))
}

# json EXPR < DOC - evaluate the python expression EXPR over the JSON
# document on stdin (bound to `d`) and print the result.
json() {
	"$PYTHON" -c 'import base64, json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"
}

# expect_exit CODE WHAT CMD... - CMD exits with CODE, stdout in $T/out,
# stderr in $T/err.
expect_exit() {
	local want=$1 what=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	assert_eq "$want" "$rc" "exit status of $what (stderr: $(cat "$T/err"))"
}

kv init
kv set app/flag on
kv set app/other x
kv set app/flag off
kv set app/flag broken

# --- history ---------------------------------------------------------------------------
kv history app/flag >"$T/hist"
assert_eq 3 "$(wc -l <"$T/hist")" "gitkv history: one line per commit that changed the key"
kv history --json app/flag >"$T/hist.json" || fail "gitkv history --json failed"
assert_eq "$(git -C "$store" log --format=%H -- app/flag | tr '\n' ' ')" \
	"$(json '" ".join(c["commit"] for c in d) + " "' <"$T/hist.json")" \
	"history --json names the commits that changed the key, newest first"
assert_eq "$(git -C "$store" log --format=%ct -- app/flag | while read -r t; do date -u -d "@$t" +%Y-%m-%dT%H:%M:%SZ; done | tr '\n' ' ')" \
	"$(json '" ".join(c["time"] for c in d) + " "' <"$T/hist.json")" \
	"history --json gives each commit's time as ISO 8601 in UTC"
assert_eq "$(git -C "$store" log -1 --format='%an <%ae>')" \
	"$(json 'd[0]["author"] + " <" + d[0]["email"] + ">"' <"$T/hist.json")" "author and email"
assert_eq "set app/flag" "$(json 'd[0]["summary"]' <"$T/hist.json")" "summary"
assert_eq "$(git -C "$store" cat-file commit HEAD | sed '1,/^$/d' | md5sum)" \
	"$(json 'd[0]["message"]' <"$T/hist.json" | head -c -1 | md5sum)" "message is the whole commit message"
assert_eq False "$(json 'any("broken" in c["message"] for c in d)' <"$T/hist.json")" \
	"no value in any message"
assert_eq 1 "$(kv history -n 1 --json app/flag | json 'len(d)')" "history -n 1 --json"
expect_exit 1 "history --json of a key that never existed" kv history --json no/such
[[ ! -s $T/out ]] || fail "history --json of a missing key printed: $(cat "$T/out")"
ok "gitkv history [--json] KEY lists the commits that changed the key"

# --- get --rev -----------------------------------------------------------------------------
good=$(git -C "$store" rev-parse HEAD~1)
git -C "$store" tag v1 HEAD~3
assert_eq off "$(kv get --rev HEAD~1 app/flag)" "get --rev HEAD~1"
assert_eq off "$(kv get --rev "$good" app/flag)" "get --rev with a full commit id"
assert_eq off "$(kv get --rev "${good:0:10}" app/flag)" "get --rev with an abbreviated id"
assert_eq on "$(kv get app/flag --rev v1)" "get KEY --rev TAG (the option after the key)"
assert_eq broken "$(kv get app/flag)" "get without --rev still reads HEAD"
expect_exit 1 "get --rev of a key absent at that revision" kv get --rev v1 app/other
assert_eq 1 "$(wc -l <"$T/err")" "one line on stderr ($(cat "$T/err"))"
grep -q "app/other" "$T/err" || fail "the message does not name the key: $(cat "$T/err")"
expect_exit 3 "get --rev of an unknown revision" kv get --rev no-such-rev app/flag
grep -q "no-such-rev" "$T/err" || fail "the message does not name the revision: $(cat "$T/err")"
expect_exit 3 "get --rev of a prefix" kv get --rev HEAD app
expect_exit 2 "get --rev without a revision" kv get app/flag --rev
ok "gitkv get --rev REV KEY reads the value at any revision"

# --- revert -------------------------------------------------------------------------------
before=$(commit_count "$store")
expect_exit 0 "revert --to a good commit" kv revert app/flag --to "$good"
assert_eq off "$(kv get app/flag)" "the reverted value"
assert_eq $((before + 1)) "$(commit_count "$store")" "a revert is one new commit"
assert_eq "set app/flag" "$(git -C "$store" log -1 --format=%s)" "a revert's message is a set's"
git -C "$store" log -1 --format=%B | grep -q off && fail "the revert's message holds the value"
assert_eq broken "$(git -C "$store" show HEAD~1:app/flag)" "the bad value stays in history"
assert_eq "$good" "$(git -C "$store" rev-parse HEAD~2)" "history is not rewritten"
kv revert --to HEAD app/flag
assert_eq $((before + 1)) "$(commit_count "$store")" "reverting to the current value commits nothing"
kv set app/new n
expect_exit 0 "revert of a key that did not exist at REV" kv revert app/new --to HEAD~1
expect_exit 1 "get of a key reverted to its absence" kv get app/new
assert_eq "delete app/new" "$(git -C "$store" log -1 --format=%s)" "reverting to absence deletes"
expect_exit 0 "revert of a key absent at REV and now" kv revert app/new --to v1
expect_exit 2 "revert without --to" kv revert app/flag
expect_exit 2 "revert without a key" kv revert --to v1
expect_exit 3 "revert --to an unknown revision" kv revert app/flag --to no-such-rev
expect_exit 3 "revert of a prefix" kv revert app --to HEAD
expect_exit 3 "revert of an invalid key" kv revert .git/x --to HEAD
ok "gitkv revert KEY --to REV restores the value as a new commit"

# --- ls --values / --json ---------------------------------------------------------------------
kv set cfg/a plain
printf 'two\nlines\n' | kv set cfg/b
printf '\377\000\001' | kv set cfg/bin
kv set cfg/sub/c $'tab\there'
kv set 'cfg/q"uote' 'back\slash'
kv ls -r --values cfg >"$T/ls"
printf '%s\n' 'cfg/a	plain' 'cfg/b	two\nlines\n' 'cfg/bin	\xff\x00\x01' \
	'cfg/q"uote	back\\slash' 'cfg/sub/c	tab\there' | diff - "$T/ls" ||
	fail "ls -r --values: one line per key, the value escaped after a tab"
kv ls --values cfg >"$T/ls"
printf '%s\n' 'a	plain' 'b	two\nlines\n' 'bin	\xff\x00\x01' 'q"uote	back\\slash' 'sub/' |
	diff - "$T/ls" || fail "ls --values lists the children, values beside the keys"
kv ls --json cfg >"$T/ls.json"
assert_eq "[('cfg/a', 'file'), ('cfg/b', 'file'), ('cfg/bin', 'file'), ('cfg/q\"uote', 'file'), ('cfg/sub', 'dir')]" \
	"$(json '[(e["key"], e["type"]) for e in d]' <"$T/ls.json")" "ls --json: full keys and types"
assert_eq False "$(json 'any("value" in e or "value_base64" in e for e in d)' <"$T/ls.json")" \
	"ls --json without --values carries no values"
kv ls -r --json --values cfg >"$T/ls.json"
value_of() { json "repr({e['key']: e.get('value') for e in d}['$1'])" <"$T/ls.json"; }
assert_eq "'plain'" "$(value_of cfg/a)" "ls -r --json --values: a value"
assert_eq "'two\nlines\n'" "$(value_of cfg/b)" "a value with newlines, as a JSON string"
assert_eq "'tab\there'" "$(value_of cfg/sub/c)" "a value with a tab"
assert_eq "'back\\\\slash'" "$(value_of 'cfg/q"uote')" "a key with a quote, a value with a backslash"
assert_eq "b'\\xff\\x00\\x01' False" \
	"$(json '[str(base64.b64decode(e["value_base64"])) + " " + str("value" in e) for e in d if e["key"] == "cfg/bin"][0]' <"$T/ls.json")" \
	"a value that is not UTF-8 comes as value_base64, and only so"
expect_exit 1 "ls --json of a missing prefix" kv ls --json no/such
[[ ! -s $T/out ]] || fail "ls --json of a missing prefix printed: $(cat "$T/out")"
ok "gitkv ls [-r] --values [--json] shows keys with their values"

# --- cas ------------------------------------------------------------------------------------
kv set n 5
expect_exit 0 "cas with the current value" kv cas n 5 6
assert_eq 6 "$(kv get n)" "the swapped value"
assert_eq "set n" "$(git -C "$store" log -1 --format=%s)" "a cas commit is a set"
before=$(commit_count "$store")
expect_exit 1 "cas with a stale value" kv cas n 5 7
printf 6 | cmp - "$T/err" || fail "a mismatch writes the current value on stderr, byte for byte: $(cat "$T/err")"
assert_eq 6 "$(kv get n)" "a failed cas changes nothing"
assert_eq "$before" "$(commit_count "$store")" "a failed cas commits nothing"
expect_exit 0 "cas to the same value" kv cas n 6 6
assert_eq "$before" "$(commit_count "$store")" "a cas that changes nothing commits nothing"
expect_exit 0 "cas --absent of a missing key" kv cas --absent lock me
expect_exit 1 "cas --absent of an existing key" kv cas --absent lock you
assert_eq me "$(cat "$T/err")" "cas --absent reports the value that is there"
assert_eq me "$(kv get lock)" "the first holder keeps the lock"
expect_exit 1 "cas of a missing key" kv cas no/such a b
assert_eq 1 "$(wc -l <"$T/err")" "an absent key is one line on stderr"
grep -q "absent" "$T/err" || fail "the mismatch does not say the key is absent: $(cat "$T/err")"
printf 'from\nstdin\0' | kv cas n 6 || fail "cas KEY EXPECTED < NEW failed"
kv get n | cmp - <(printf 'from\nstdin\0') || fail "cas takes NEW from standard input"
expect_exit 0 "cas with a value starting with '-'" kv cas lock me -1
assert_eq -1 "$(kv get lock)" "a value may start with '-'"
expect_exit 2 "cas without operands" kv cas
expect_exit 2 "cas with one operand" kv cas n
expect_exit 2 "cas --absent without a key" kv cas --absent
expect_exit 2 "cas with too many operands" kv cas n a b c
expect_exit 2 "cas --sync --local" kv cas --sync --local n a b
expect_exit 3 "cas of a prefix" kv cas cfg a b
expect_exit 3 "cas of an invalid key" kv cas .git/x a b
expect_exit 3 "cas --sync without remotes" kv cas --sync lock -1 0
assert_eq -1 "$(kv get lock)" "a refused cas --sync changes nothing"
ok "gitkv cas: 0 swapped, 1 mismatch with the current value on stderr, 2 usage, 3 error"

# --- eight processes, fifty increments each, while mounted --------------------------------------
start_daemon "$store" "$M" node=testnode
kv set counter 0
mkdir -p "$M/noise"

# increment ID N - add one to counter N times through cas, retrying with the
# value a mismatch reports. A failure leaves $T/failed.ID. The store has no
# remotes, so --local changes nothing but sparing each of the thousand-odd
# runs the lookup of remotes in the store's config. Under LeakSanitizer only
# worker 1 checks for leaks at every exit: the others run the same code, and
# the check costs more than the swap.
increment() {
	local id=$1 n=$2 cur i rc tries=0 lost asan=${ASAN_OPTIONS:-}
	[[ -z $asan || $id == 1 ]] || asan=$asan:detect_leaks=0
	cur=$(kv get counter)
	for ((i = 0; i < n; i++)); do
		lost=0
		while true; do
			if ((++tries > 100000)); then
				echo "worker $id: no progress" >"$T/failed.$id"
				return 1
			fi
			rc=0
			ASAN_OPTIONS=$asan "$GITKV" -C "$store" cas --local counter "$cur" $((cur + 1)) \
				2>"$T/cas.$id" || rc=$?
			case $rc in
			0) cur=$((cur + 1)) && break ;;
			1) cur=$(<"$T/cas.$id") && backoff $((++lost)) ;;
			*)
				echo "worker $id: exit $rc: $(cat "$T/cas.$id")" >"$T/failed.$id"
				return 1
				;;
			esac
		done
	done
}

# Other keys change through the mount all along.
(
	i=0
	while [[ ! -e $T/stop ]]; do
		echo "$i" >"$M/noise/k$((i % 7))" || exit 1
		i=$((i + 1))
		nap 50
	done
) &
writer=$!
declare -a workers=()
for w in 1 2 3 4 5 6 7 8; do
	increment "$w" 50 &
	workers+=($!)
done
for p in "${workers[@]}"; do wait "$p" || true; done
touch "$T/stop"
wait "$writer" || fail "writing through the mount failed during the cas storm"
for f in "$T"/failed.*; do
	[[ -e $f ]] && fail "$(cat "$f")"
done
assert_eq 400 "$(kv get counter)" "8 x 50 increments through cas"
assert_eq 401 "$(git -C "$store" log --format=%H -- counter | wc -l)" \
	"one commit per successful cas, no lost and no extra increment"
(($(git -C "$store" log --format=%H -- noise | wc -l) > 1)) ||
	fail "the mount wrote nothing while the counter was incremented"
wait_until 10 grep -qx 400 "$M/counter" || fail "the mount does not show 400: $(cat "$M/counter")"
assert_fsck "$store"
stop_daemon "$M"
ok "8 processes x 50 increments through cas while the store is mounted and written: 400"

# --- cluster-wide -----------------------------------------------------------------------------
hub=$T/hub.git
for s in hub a b; do "$GITKV" init "$T/$s.git"; done
for s in a b; do git -C "$T/$s.git" config remote.hub.url "$hub"; done
ka() { "$GITKV" -C "$T/a.git" "$@"; }
kb() { "$GITKV" -C "$T/b.git" "$@"; }

expect_exit 0 "cluster-wide cas --absent" ka cas --absent ctr 0
assert_eq 0 "$(git -C "$hub" show main:ctr)" "a cluster-wide cas reaches the hub before it returns"
kb sync >/dev/null
expect_exit 0 "cluster-wide cas on a" ka cas ctr 0 1
assert_eq 0 "$(git -C "$T/b.git" show main:ctr)" "b has not synced since"
expect_exit 1 "cluster-wide cas on b with the value b holds locally" kb cas ctr 0 2
assert_eq 1 "$(cat "$T/err")" "the mismatch reports the hub's value, not b's stale one"
assert_eq 1 "$(git -C "$hub" show main:ctr)" "the losing cas leaves the hub alone"
assert_eq 1 "$(kb get ctr)" "b takes the hub's value"
expect_exit 0 "cas --local" kb cas --local --absent mine x
git -C "$hub" cat-file -e main:mine 2>/dev/null && fail "cas --local pushed to the hub"
expect_exit 0 "cas --sync" kb cas --sync ctr 1 2
assert_eq 2 "$(git -C "$hub" show main:ctr)" "cas --sync goes through the hub"

# cincrement STORE ID N - increment ctr N times through cluster-wide cas
# (only worker a1 checks for leaks under LeakSanitizer, as above).
cincrement() {
	local s=$1 id=$2 n=$3 cur i rc tries=0 lost asan=${ASAN_OPTIONS:-}
	[[ -z $asan || $id == a1 ]] || asan=$asan:detect_leaks=0
	cur=$("$GITKV" -C "$T/$s.git" get ctr)
	for ((i = 0; i < n; i++)); do
		lost=0
		while true; do
			if ((++tries > 10000)); then
				echo "worker $id: no progress" >"$T/failed.$id"
				return 1
			fi
			rc=0
			ASAN_OPTIONS=$asan "$GITKV" -C "$T/$s.git" cas ctr "$cur" $((cur + 1)) \
				2>"$T/cas.$id" || rc=$?
			case $rc in
			0) cur=$((cur + 1)) && break ;;
			1) cur=$(<"$T/cas.$id") && backoff $((++lost)) ;;
			*)
				echo "worker $id: exit $rc: $(cat "$T/cas.$id")" >"$T/failed.$id"
				return 1
				;;
			esac
		done
	done
}
workers=()
for w in 1 2; do
	cincrement a "a$w" 6 &
	workers+=($!)
	cincrement b "b$w" 6 &
	workers+=($!)
done
for p in "${workers[@]}"; do wait "$p" || true; done
for f in "$T"/failed.*; do
	[[ -e $f ]] && fail "$(cat "$f")"
done
assert_eq 26 "$(git -C "$hub" show main:ctr)" "4 processes on two stores x 6 increments through the hub"
ka sync >/dev/null
kb sync >/dev/null
assert_eq 26 "$(ka get ctr)" "a converges on the hub's count"
assert_eq 26 "$(kb get ctr)" "b converges on the hub's count"
for s in hub a b; do assert_fsck "$T/$s.git"; done
ok "a cluster-wide cas is decided by the hub: 24 increments from two stores, none lost"
