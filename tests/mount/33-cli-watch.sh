#!/bin/bash
# `gitkv watch KEY|PREFIX` prints CREATED, CHANGED or DELETED and the key,
# one line per change as it happens and exactly once: on node B's mount
# while node A writes through its own mount and both sync through a shared
# hub, for a single key, on a store that is not mounted while `gitkv set`
# changes it, and after the mount it watched goes away. An editor's
# temporary file and a write of unchanged bytes print nothing. SIGINT and
# SIGTERM end it with status 0.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

# Some assertions read standard error: under LeakSanitizer, keep the list of
# suppressions used (libgit2's known leaks) out of it.
if [[ -n ${LSAN_OPTIONS:-} ]]; then
	export LSAN_OPTIONS=$LSAN_OPTIONS:print_suppressions=0
fi

hub=$T/hub.git
"$GITKV" init "$hub"
for n in a b; do
	"$GITKV" init "$T/$n.git"
	start_daemon "$T/$n.git" "$T/$n" node=$n remote=$hub sync_interval=1
done
A=$T/a
B=$T/b

# The watches this test starts, killed by pid on the way out.
declare -A WATCH_PID=()
trap 'rc=$?; for p in "${WATCH_PID[@]}"; do kill "$p" 2>/dev/null; done; _cleanup $rc' EXIT

# start_watch NAME ARG... - run `gitkv ARG...` in the background, output in
# $T/NAME.out and $T/NAME.err; return once it says how it watches.
start_watch() {
	local name=$1
	shift
	"$GITKV" "$@" >"$T/$name.out" 2>"$T/$name.err" &
	WATCH_PID[$name]=$!
	wait_until 10 grep -q '^gitkv: watching' "$T/$name.err" ||
		fail "gitkv $* did not start watching: $(cat "$T/$name.err")"
}

# stop_watch NAME SIGNAL - send SIGNAL and assert the watch exits with 0.
stop_watch() {
	local name=$1 sig=$2 pid=${WATCH_PID[$1]} rc=0
	kill -"$sig" "$pid"
	wait_until 10 not _alive "$pid" || fail "gitkv watch ($name) still runs 10 s after SIG$sig"
	wait "$pid" || rc=$?
	unset 'WATCH_PID[$name]'
	assert_eq 0 "$rc" "exit status of gitkv watch after SIG$sig (stderr: $(cat "$T/$name.err"))"
}

# saw NAME LINE - the watch printed LINE.
saw() { grep -qxF "$2" "$T/$1.out"; }

# expect_once NAME LINE WHAT - the watch prints LINE within 20 s, and once.
expect_once() {
	wait_until 20 saw "$1" "$2" || fail "$3: no '$2' within 20 s: $(cat "$T/$1.out")"
}

# assert_output NAME LINE... - the watch printed exactly these lines, in order.
assert_output() {
	local name=$1
	shift
	printf '%s\n' "$@" | diff - "$T/$name.out" >"$T/diff" ||
		fail "gitkv watch ($name) printed other lines than expected: $(cat "$T/diff")"
}

# shows PATH CONTENT - PATH holds CONTENT plus the newline echo wrote.
shows() {
	local got
	got=$(cat -- "$1" 2>/dev/null && printf x) || return 1
	[[ ${got%x} == "$2"$'\n' ]]
}

# --- B's mount, changes made on A ------------------------------------------------------
mkdir "$A/app"
echo seed >"$A/app/seed"
wait_until 20 shows "$B/app/seed" seed || fail "B does not get A's first write"
start_watch b -C "$T/b.git" watch app
grep -qF "through the mount at $B" "$T/b.err" || fail "the watch does not use B's mount: $(cat "$T/b.err")"

echo 1 >"$A/app/x"
expect_once b "CREATED app/x" "a key created on A"
echo 2 >"$A/app/x"
expect_once b "CHANGED app/x" "a key changed on A"
echo elsewhere >"$A/outside"
mkdir -p "$A/app/sub"
echo s >"$A/app/sub/y"
expect_once b "CREATED app/sub/y" "a key created in a new prefix on A"
mv "$A/app/sub/y" "$A/app/z"
expect_once b "CREATED app/z" "the new name of a key renamed on A"
expect_once b "DELETED app/sub/y" "the old name of a key renamed on A"
rm "$A/app/x"
expect_once b "DELETED app/x" "a key removed on A"

# On B itself: a vim swap file is never committed, an unchanged value is no change.
echo mine >"$B/app/local"
expect_once b "CREATED app/local" "a key created through B's own mount"
echo swap >"$B/app/.local.swp"
rm "$B/app/.local.swp"
echo mine >"$B/app/local"
echo again >"$B/app/local"
expect_once b "CHANGED app/local" "a key changed through B's own mount"
assert_eq elsewhere "$(cat "$B/outside")" "B has the key outside the prefix"

mapfile -t lines <"$T/b.out"
assert_output b "CREATED app/x" "CHANGED app/x" "CREATED app/sub/y" "${lines[3]}" "${lines[4]}" \
	"DELETED app/x" "CREATED app/local" "CHANGED app/local"
assert_eq "CREATED app/z|DELETED app/sub/y" "$(printf '%s\n' "${lines[3]}" "${lines[4]}" | sort | paste -sd'|')" \
	"a rename is a deletion and a creation"
stop_watch b INT
ok "gitkv watch on B's mount prints each change made on A, once, and nothing for temporary files"

# --- a single key -----------------------------------------------------------------------
echo 1 >"$A/app/cfg-other"
echo 1 >"$A/app/cfg"
wait_until 20 shows "$B/app/cfg" 1 || fail "B does not get app/cfg"
start_watch key -C "$T/b.git" watch app/cfg
echo 2 >"$A/app/cfg-other"
echo 2 >"$A/app/cfg"
expect_once key "CHANGED app/cfg" "the watched key changed on A"
wait_until 20 shows "$B/app/cfg-other" 2 || fail "B does not get app/cfg-other"
rm "$A/app/cfg"
expect_once key "DELETED app/cfg" "the watched key removed on A"
assert_output key "CHANGED app/cfg" "DELETED app/cfg"
stop_watch key TERM
ok "gitkv watch KEY prints the changes of that key only"

# --- a store that is not mounted -----------------------------------------------------------
kc() { "$GITKV" -C "$T/c.git" "$@"; }
kc init
start_watch c -C "$T/c.git" watch
grep -q "on the branch" "$T/c.err" || fail "the watch of an unmounted store does not poll the branch: $(cat "$T/c.err")"
kc set k v
expect_once c "CREATED k" "a key set with gitkv set"
kc set k v2
expect_once c "CHANGED k" "a key changed with gitkv set"
kc set k v2
kc set dir/k2 x
expect_once c "CREATED dir/k2" "a key in a new prefix"
kc rm k
expect_once c "DELETED k" "a key removed with gitkv rm"
assert_output c "CREATED k" "CHANGED k" "CREATED dir/k2" "DELETED k"
stop_watch c INT
ok "gitkv watch on a store that is not mounted follows the branch"

# --- the mount goes away ---------------------------------------------------------------------
start_watch gone -C "$T/b.git" watch app
grep -q "through the mount" "$T/gone.err" || fail "the watch does not use B's mount: $(cat "$T/gone.err")"
stop_daemon "$B"
wait_until 10 grep -q "went away" "$T/gone.err" ||
	fail "the watch does not notice that the mount went away: $(cat "$T/gone.err")"
"$GITKV" -C "$T/b.git" set app/after v
expect_once gone "CREATED app/after" "a key set after the unmount"
assert_output gone "CREATED app/after"
stop_watch gone INT
ok "when the mount goes away, gitkv watch carries on with the branch"

# --- usage -------------------------------------------------------------------------------------
rc=0
"$GITKV" -C "$T/c.git" watch a b 2>/dev/null || rc=$?
assert_eq 2 "$rc" "gitkv watch with two operands"
rc=0
"$GITKV" -C "$T/c.git" watch .git/x 2>/dev/null || rc=$?
assert_eq 3 "$rc" "gitkv watch of an invalid key"
stop_daemon "$A"
ok "gitkv watch: 2 for a usage error, 3 for an invalid key"
