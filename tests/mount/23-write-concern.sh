#!/bin/bash
# Write concern, sync_mode=sync: a write returns only once the remote holds
# it; with the remote unreachable, close() fails with EIO within
# sync_timeout and the commit stays local (and leaves once the remote is
# back). An exclusive create (`set -C; echo me > lock`) is a cluster-wide
# lock: of three nodes racing for it, exactly one wins, the others get
# EEXIST at open(), and every node ends up showing the winner's content.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

hub=$T/hub.git
"$GITKV" init "$hub"
for n in a b c; do "$GITKV" init "$T/$n.git"; done
# A long interval: only the write concern can explain a write on the hub at once.
start_daemon "$T/a.git" "$T/a" node=a remote=$hub sync_mode=sync quorum=1 sync_timeout=2 \
	sync_interval=60

# holds REPO KEY VALUE - the branch of bare repository REPO has KEY = VALUE.
holds() {
	[[ $(git -C "$1" show "main:$2" 2>/dev/null) == "$3" ]]
}

# shows PATH CONTENT - PATH holds CONTENT plus the newline echo wrote.
shows() {
	local got
	got=$(cat -- "$1" 2>/dev/null && printf x) || return 1
	[[ ${got%x} == "$2"$'\n' ]]
}

# --- a write returns once the remote has it -------------------------------------------
for i in 1 2 3 4 5; do
	echo "v$i" >"$T/a/key"
	holds "$hub" key "v$i" || fail "the hub does not hold key=v$i when echo returns: $(git -C "$hub" show main:key 2>&1)"
done
assert_eq sync "$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["sync_mode"])' "$T/a/.gitkv/status")" \
	"sync_mode in the status"
ok "in sync mode a write returns only once the remote holds it"

# --- an unreachable remote: EIO within sync_timeout, the commit stays local -------------
mv "$hub" "$T/hub.away"
start=$(now_us)
assert_errno EIO write "$T/a/key2" v2
elapsed=$((($(now_us) - start) / 1000))
note "close() failed after $elapsed ms (sync_timeout=2)"
((elapsed >= 1500 && elapsed < 6000)) || fail "close() failed after $elapsed ms, expected about 2000"
assert_eq v2 "$(git -C "$T/a.git" show main:key2)" "the unacknowledged commit stays local"
grep -q "write of 'key2' not acknowledged by 1 remote within 2 s; it stays local and will be pushed later" \
	"$(daemon_log "$T/a")" || fail "no log line for the unacknowledged write: $(cat "$(daemon_log "$T/a")")"
assert_fails_with EIO sh -c 'exec /bin/echo v3 >"$1"' sh "$T/a/key3"
assert_eq v3 "$(git -C "$T/a.git" show main:key3)" "the second unacknowledged commit stays local"
ok "with the remote unreachable, close() fails with EIO within sync_timeout; the commit stays"

mv "$T/hub.away" "$hub"
echo v4 >"$T/a/key4" # acknowledged: its push carries the earlier commits too
holds "$hub" key4 v4 || fail "the hub does not hold key4 once it is back"
holds "$hub" key2 v2 && holds "$hub" key3 v3 || fail "the commits kept local do not reach the hub"
ok "the commits kept local reach the remote once it is back"

# --- three nodes race for one lock --------------------------------------------------------
for n in b c; do
	start_daemon "$T/$n.git" "$T/$n" node=$n remote=$hub sync_mode=sync quorum=1 sync_timeout=5 \
		sync_interval=60
done
mkdir "$T/a/locks"

kick_all() {
	local n
	for n in a b c; do kill -USR1 "$(daemon_pid "$T/$n")"; done
}
# all_show CONTENT - every node shows locks/db holding CONTENT (kicking them first).
all_show() {
	local n
	kick_all
	for n in a b c; do shows "$T/$n/locks/db" "$1" || return 1; done
}
none_has() {
	local n
	kick_all
	for n in a b c; do [[ ! -e $T/$n/locks/db ]] || return 1; done
}
all_have_dir() {
	local n
	kick_all
	for n in a b c; do [[ -d $T/$n/locks ]] || return 1; done
}
wait_until 10 all_have_dir || fail "locks/ does not reach every node"

for round in $(seq 1 20); do
	won=$T/won.$round
	: >"$won"
	pids=()
	for n in a b c; do
		(
			set -C
			echo "$n" >"$T/$n/locks/db"
		) 2>"$T/lose.$round.$n" && echo "$n" >>"$won" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || true; done
	assert_eq 1 "$(wc -l <"$won")" "winners of round $round ($(tr '\n' ' ' <"$won"))"
	winner=$(cat "$won")
	for n in a b c; do
		[[ $n == "$winner" ]] && continue
		grep -qiE "exists|cannot overwrite" "$T/lose.$round.$n" ||
			fail "round $round: $n lost without EEXIST: $(cat "$T/lose.$round.$n")"
	done
	wait_until 10 all_show "$winner" || fail "round $round: not every node shows $winner's lock"
	rm "$T/$winner/locks/db"
	wait_until 10 none_has || fail "round $round: the lock's removal does not reach every node"
done
ok "20 rounds of three nodes racing for set -C; echo > lock: one winner each, seen by all"

for n in a b c; do stop_daemon "$T/$n"; done
assert_fsck "$hub"
for n in a b c; do assert_fsck "$T/$n.git"; done
