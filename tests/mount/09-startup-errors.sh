#!/bin/bash
# Starting gitkvfs: --help and --version answer and exit 0; every start-up
# failure (missing store, a directory that is not a git repository, a missing
# or busy mountpoint, an unknown option) exits non-zero with one clear line
# on stderr and leaves nothing mounted.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
mkdir -p "$M"

# --- help and version ----------------------------------------------------------
rc=0
timeout 10 "$GITKVFS" --help >"$T/help" 2>&1 || rc=$?
assert_eq 0 "$rc" "gitkvfs --help's exit status"
grep -qi 'usage' "$T/help" || fail "gitkvfs --help prints no usage: $(head -5 "$T/help")"
grep -q 'gitkvfs' "$T/help" || fail "gitkvfs --help does not name gitkvfs"
grep -qE -- '-o' "$T/help" || fail "gitkvfs --help does not describe -o options"
grep -qE 'STORE|store' "$T/help" || fail "gitkvfs --help does not mention the store argument"
ok "gitkvfs --help exits 0 and prints a usage"

rc=0
timeout 10 "$GITKVFS" --version >"$T/version" 2>&1 || rc=$?
assert_eq 0 "$rc" "gitkvfs --version's exit status"
grep -qE '[0-9]+\.[0-9]+' "$T/version" || fail "gitkvfs --version prints no version: $(cat "$T/version")"
grep -qi 'gitkv' "$T/version" || fail "gitkvfs --version does not name the program: $(cat "$T/version")"
ok "gitkvfs --version exits 0 and prints a version ($(head -1 "$T/version"))"

# start_fails WHAT CAUSE_REGEX ARGS... - gitkvfs ARGS exits non-zero within
# 20 s with exactly one line on stderr that matches CAUSE_REGEX.
start_fails() {
	local what=$1 cause=$2 rc=0
	shift 2
	timeout 20 "$GITKVFS" "$@" </dev/null >"$T/out" 2>"$T/err" || rc=$?
	[[ $rc -ne 124 ]] || fail "$what: gitkvfs did not exit within 20 s"
	[[ $rc -ne 0 ]] || fail "$what: gitkvfs exited 0"
	assert_eq 1 "$(wc -l <"$T/err")" "$what: lines on stderr ($(cat "$T/err"))"
	grep -qiE "$cause" "$T/err" || fail "$what: the message does not name the cause (/$cause/): $(cat "$T/err")"
}

# nothing_mounted MNT WHAT
nothing_mounted() {
	if mountpoint -q "$1" 2>/dev/null; then
		fusermount3 -uz "$1" 2>/dev/null || true
		fail "$2 left $1 mounted"
	fi
	assert_eq 0 "$(awk -v m="$1" '$2 == m' /proc/mounts | wc -l)" "$2: entries in /proc/mounts for $1"
}

for mode in detached foreground; do
	fg=()
	[[ $mode == foreground ]] && fg=(-f)

	start_fails "a missing store ($mode)" 'nope\.git|no such|not exist|not found' \
		"${fg[@]}" "$T/nope.git" "$M"
	nothing_mounted "$M" "a missing store"
	[[ ! -e $T/nope.git ]] || fail "gitkvfs created the missing store without -o init"
	ok "a missing STORE: non-zero exit, one line on stderr, nothing mounted ($mode)"

	mkdir -p "$T/plain"
	echo data >"$T/plain/file"
	start_fails "a directory that is not a repository ($mode)" 'plain|git|repositor|store' \
		"${fg[@]}" "$T/plain" "$M"
	nothing_mounted "$M" "a non-git STORE"
	[[ ! -e $T/plain/HEAD ]] || fail "gitkvfs turned a plain directory into a repository"
	ok "a directory that is not a git repository: non-zero exit, one line, nothing mounted ($mode)"

	start_fails "a missing mountpoint ($mode)" 'mnt-missing|mountpoint|mount point|no such|not exist' \
		"${fg[@]}" "$store" "$T/mnt-missing"
	[[ ! -e $T/mnt-missing ]] || fail "gitkvfs created the missing mountpoint"
	ok "a missing mountpoint: non-zero exit, one line on stderr ($mode)"

	start_fails "an unknown option ($mode)" 'bogus' "${fg[@]}" -o bogus=1 "$store" "$M"
	nothing_mounted "$M" "an unknown option"
	ok "an unknown option -o bogus=1: non-zero exit, one line naming it, nothing mounted ($mode)"
done

# A missing argument is a usage error, not a crash.
rc=0
timeout 10 "$GITKVFS" "$store" >"$T/out" 2>"$T/err" </dev/null || rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || fail "gitkvfs with no mountpoint exited $rc"
[[ -s $T/err ]] || fail "gitkvfs with no mountpoint printed nothing on stderr"
nothing_mounted "$M" "a missing mountpoint argument"
ok "gitkvfs STORE without a mountpoint fails with a message"

# --- a busy mountpoint ---------------------------------------------------------------
start_daemon "$store" "$M" node=testnode
echo first >"$M/who"
for second in "$store" "$T/other.git"; do
	[[ $second == "$store" ]] || "$GITKV" init "$second"
	start_fails "a busy mountpoint" 'busy|already|mounted|in use' "$second" "$M"
	assert_eq 1 "$(awk -v m="$M" '$2 == m' /proc/mounts | wc -l)" "mounts at $M after a second gitkvfs"
	assert_content first "$M/who" "the first mount still serves the store"
	_alive "$(daemon_pid "$M")" || fail "the first daemon died"
done
echo second >"$M/who"
assert_eq second "$(git -C "$store" show HEAD:who)" "the first mount still commits"
stop_daemon "$M"
nothing_mounted "$M" "unmounting the first mount"
ok "a busy mountpoint: non-zero exit, one line on stderr, only the first mount stays"
