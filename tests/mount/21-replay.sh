#!/bin/bash
# Changes that did not come through the mount are replayed through it: a
# program watching the mount with inotify sees a key changed, created or
# removed by the CLI or by a push into the store as if it had been done
# through the mount (IN_CLOSE_WRITE, IN_CREATE, IN_DELETE, IN_ATTRIB), reads
# the new value as soon as the event arrives, and the replay itself makes no
# commit. With -o noreplay (the negative control) the watcher sees nothing,
# though the new value still shows.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse
command -v inotifywait >/dev/null || fail "inotifywait (inotify-tools) is not installed"

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
"$GITKV" -C "$store" set app/port 80
"$GITKV" -C "$store" set app/old x
"$GITKV" -C "$store" set gone/a 1
"$GITKV" -C "$store" set gone/b 2
"$GITKV" -C "$store" set tool 'echo hi'
start_daemon "$store" "$M" node=testnode

# The watchers this test starts, killed by pid on the way out.
declare -a WATCHERS=()
trap 'rc=$?; for p in "${WATCHERS[@]}"; do kill "$p" 2>/dev/null; done; _cleanup $rc' EXIT

# watch DIR OUT - inotifywait -m -r on DIR, one change event a line ("EVENTS
# PATH") into OUT (reads and opens left out: the test's own cat makes those);
# returns once its watches are established.
watch() {
	inotifywait -m -r -e modify,close_write,create,delete,attrib,move \
		--format '%e %w%f' "$1" >"$2" 2>"$2.err" &
	WATCHERS+=($!)
	wait_until 10 grep -q "Watches established" "$2.err" ||
		fail "inotifywait did not start: $(cat "$2.err")"
}

# saw OUT EVENT PATH - OUT holds a line whose events include EVENT for PATH.
saw() {
	grep -qE "^([A-Z_]+,)*$2(,[A-Z_]+)* $3\$" "$1"
}

# shows PATH VALUE - PATH reads exactly VALUE (the CLI stores values as given).
shows() {
	local got
	got=$(cat -- "$1" 2>/dev/null && printf x) || return 1
	[[ ${got%x} == "$2" ]]
}

no_daemon_commits() {
	local n
	n=$(git -C "$store" log --format=%cn | grep -c '^gitkvfs$' || true)
	assert_eq 0 "$n" "commits made by gitkvfs (replay must not commit)"
}

# Make sure the kernel has the names cached, as a running application would.
cat "$M/app/port" "$M/app/old" "$M/gone/a" "$M/tool" >/dev/null
ev=$T/events
watch "$M" "$ev"
commits=$(commit_count "$store")

# --- a changed value ---------------------------------------------------------
start=$(now_us)
"$GITKV" -C "$store" set app/port 8080
wait_until 5 saw "$ev" CLOSE_WRITE "$M/app/port" ||
	fail "no CLOSE_WRITE for app/port within 5 s of gitkv set; events: $(cat "$ev")"
note "replay latency (gitkv set returned -> IN_CLOSE_WRITE seen): $((($(now_us) - start) / 1000)) ms"
saw "$ev" MODIFY "$M/app/port" || fail "no MODIFY for app/port; events: $(cat "$ev")"
shows "$M/app/port" 8080 || fail "app/port reads '$(cat "$M/app/port")' once the event arrived"
ok "a value changed by the CLI raises IN_MODIFY and IN_CLOSE_WRITE and reads back at once"

# --- a new value, a new directory ----------------------------------------------
"$GITKV" -C "$store" set app/new hello
wait_until 5 saw "$ev" CLOSE_WRITE "$M/app/new" ||
	fail "no CLOSE_WRITE for app/new; events: $(cat "$ev")"
saw "$ev" CREATE "$M/app/new" || fail "no CREATE for app/new; events: $(cat "$ev")"
shows "$M/app/new" hello || fail "app/new reads '$(cat "$M/app/new")'"
"$GITKV" -C "$store" set fresh/dir/k v
wait_until 5 saw "$ev" CREATE,ISDIR "$M/fresh" ||
	fail "no CREATE,ISDIR for fresh/; events: $(cat "$ev")"
wait_until 5 shows "$M/fresh/dir/k" v || fail "fresh/dir/k does not read back"
ok "a key and a directory created by the CLI raise IN_CREATE"

# --- a removed value -------------------------------------------------------------
"$GITKV" -C "$store" rm app/old
wait_until 5 saw "$ev" DELETE "$M/app/old" || fail "no DELETE for app/old; events: $(cat "$ev")"
[[ ! -e $M/app/old ]] || fail "app/old still exists after its DELETE event"
ok "a key removed by the CLI raises IN_DELETE and is gone"

# --- a push: a directory removed, an exec bit, a symlink --------------------------------
git clone -q "$store" "$T/clone"
(
	cd "$T/clone"
	git rm -rq gone
	chmod +x tool
	ln -s app/port link
	git add -A
	git -c user.name=tester -c user.email=tester@example.invalid commit -qm "from a clone"
	git push -q origin HEAD 2>"$T/push.err"
) || fail "git push into the store failed: $(cat "$T/push.err")"
wait_until 5 saw "$ev" DELETE,ISDIR "$M/gone" || fail "no DELETE,ISDIR for gone/; events: $(cat "$ev")"
saw "$ev" DELETE "$M/gone/a" || fail "no DELETE for gone/a before its directory; events: $(cat "$ev")"
wait_until 5 saw "$ev" ATTRIB "$M/tool" || fail "no ATTRIB for tool; events: $(cat "$ev")"
[[ -x $M/tool ]] || fail "tool is not executable after its ATTRIB event"
wait_until 5 saw "$ev" CREATE "$M/link" || fail "no CREATE for link; events: $(cat "$ev")"
assert_eq app/port "$(readlink "$M/link")" "the replayed symlink's target"
[[ ! -e $M/gone ]] || fail "gone/ still exists after its DELETE event"
ok "a push's removed directory, exec bit and symlink raise IN_DELETE, IN_ATTRIB, IN_CREATE"

# --- a burst of changes ------------------------------------------------------------
for i in $(seq 1 20); do "$GITKV" -C "$store" set burst "v$i"; done
wait_until 10 shows "$M/burst" v20 || fail "burst reads '$(cat "$M/burst")' after 20 sets"
wait_until 5 saw "$ev" CLOSE_WRITE "$M/burst" || fail "no CLOSE_WRITE for burst"
ok "a burst of outside changes ends with the last value and its events"

# --- replay makes no commit ---------------------------------------------------------
assert_eq $((commits + 4 + 1 + 20)) "$(commit_count "$store")" "commits after 24 CLI changes and one push"
no_daemon_commits
assert_fsck "$store"
ok "replaying outside changes makes no commit"

# --- a local write still commits on top ---------------------------------------------
echo local >"$M/app/port"
assert_eq local "$(git -C "$store" show HEAD:app/port)" "a write through the mount after replays"
saw "$ev" CLOSE_WRITE "$M/app/port" || fail "the local write raised no event"
ok "writes through the mount still commit after replays"

for p in "${WATCHERS[@]}"; do kill "$p" 2>/dev/null || true; done
WATCHERS=()
stop_daemon "$M"

# --- the negative control: -o noreplay ---------------------------------------------------
start_daemon "$store" "$M" node=testnode noreplay
cat "$M/app/port" >/dev/null
ev=$T/events.noreplay
watch "$M" "$ev"
"$GITKV" -C "$store" set app/port 9090
"$GITKV" -C "$store" set app/other 1
wait_until 5 shows "$M/app/port" 9090 || fail "with noreplay, app/port reads '$(cat "$M/app/port")'"
wait_until 5 shows "$M/app/other" 1 || fail "with noreplay, app/other does not read back"
sleep 0.5 # the events of a replay would have come with the new value; give them a moment
[[ ! -s $ev ]] || fail "with -o noreplay inotifywait saw events: $(cat "$ev")"
ok "with -o noreplay outside changes show but raise no inotify event (negative control)"

for p in "${WATCHERS[@]}"; do kill "$p" 2>/dev/null || true; done
WATCHERS=()
stop_daemon "$M"
