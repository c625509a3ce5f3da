#!/bin/bash
# Editors just work: vim (swap file, the 4913 probe, backup, write-then-rename),
# sed -i and write-to-temp-then-mv each leave exactly one commit holding the
# new value, and their temporary names never reach the history. Names that
# match the ignore patterns are visible while they exist and never committed.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse
command -v vim >/dev/null || fail "vim is not installed"

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
start_daemon "$store" "$M" node=testnode
mkdir -p "$M/app/db"
echo localhost >"$M/app/db/host"
echo keep >"$M/app/db/port"

# Paths that name an editor's temporary file.
TEMP_NAMES='(^|/)(\.[^/]*\.sw.|[^/]*~|\.#[^/]*|4913|[^/]*\.tmp|sed[^/]{6})$'

# no_temp_names_in_history WHAT - no commit ever touched a temporary name.
no_temp_names_in_history() {
	local bad
	bad=$(git -C "$store" log --all --format= --name-only | grep -E "$TEMP_NAMES" | sort -u || true)
	[[ -z $bad ]] || fail "$1: temporary names in the history: $bad"
	bad=$(tree_paths "$store" | grep -E "$TEMP_NAMES" || true)
	[[ -z $bad ]] || fail "$1: temporary names in the tree: $bad"
}

# one_commit_edit NAME EXPECTED CMD... - CMD changes app/db/host to EXPECTED
# in exactly one commit, and leaves no temporary file behind.
one_commit_edit() {
	local name=$1 want=$2 before out
	shift 2
	before=$(commit_count "$store")
	out=$(cd "$M/app/db" && "$@" 2>&1 </dev/null) || fail "$name failed: $out"
	assert_eq $((before + 1)) "$(commit_count "$store")" "$name makes exactly one commit"
	assert_eq "$want" "$(git -C "$store" show HEAD:app/db/host)" "$name: the value at HEAD"
	assert_content "$want" "$M/app/db/host" "$name: the value in the mount"
	assert_eq keep "$(git -C "$store" show HEAD:app/db/port)" "$name: the neighbour key is untouched"
	assert_eq "host port " "$(ls -A "$M/app/db" | tr '\n' ' ')" "$name: no file left over in the directory"
	no_temp_names_in_history "$name"
}

one_commit_edit "vim -u NONE -es" db1 \
	vim -u NONE -i NONE -es -c '%s/localhost/db1/' -c wq "$M/app/db/host"
assert_eq "set app/db/host" "$(git -C "$store" log -1 --format=%s)" "vim's commit message"
ok "vim -u NONE -i NONE -es edits a key in one commit, no swap/4913/backup committed"

one_commit_edit "vim -es" db1b vim -es -c '%s/db1/db1b/' -c wq "$M/app/db/host"
ok "vim -es (silent Ex mode) edits a key in one commit"

# vim's write-then-rename way of saving: the original is renamed to host~
# and a new host is written.
one_commit_edit "vim backupcopy=no" db1c vim -u NONE -i NONE -es \
	-c 'set nocompatible nobackup writebackup backupcopy=no swapfile' \
	-c '%s/db1b/db1c/' -c wq "$M/app/db/host"
ok "vim with backupcopy=no (rename, then write) edits a key in one commit"

# A relative path, run from inside the directory (swap file beside the file).
one_commit_edit "vim relative path" db1d vim -u NONE -i NONE -es \
	-c 'set nobackup writebackup backupcopy=yes' -c '%s/db1c/db1d/' -c wq host
ok "vim with backupcopy=yes edits a key in one commit"

one_commit_edit "sed -i" db2 sed -i s/db1d/db2/ "$M/app/db/host"
ok "sed -i edits a key in one commit, its temporary file never committed"

one_commit_edit "sed -i (relative)" db3 sed -i s/db2/db3/ host
ok "sed -i on a relative path edits a key in one commit"

# --- write a temporary name, then mv it over ---------------------------------
before=$(commit_count "$store")
echo v >"$M/app/x.tmp"
assert_eq "$before" "$(commit_count "$store")" "writing x.tmp commits nothing"
mv "$M/app/x.tmp" "$M/app/x"
assert_eq $((before + 1)) "$(commit_count "$store")" "mv x.tmp x makes exactly one commit"
assert_content v "$M/app/x" "x holds the value written to x.tmp"
assert_eq v "$(git -C "$store" show HEAD:app/x)" "x is at HEAD"
[[ ! -e $M/app/x.tmp ]] || fail "x.tmp still exists after mv"
git -C "$store" log --all --stat >"$T/log"
grep -q 'x\.tmp' "$T/log" && fail "x.tmp appears in the history: $(grep 'x\.tmp' "$T/log")"
no_temp_names_in_history "mv x.tmp x"
ok "echo v > x.tmp; mv x.tmp x is one commit and x.tmp never appears in history"

# Replacing an existing key that way too.
before=$(commit_count "$store")
echo w >"$M/app/x.tmp"
mv -f "$M/app/x.tmp" "$M/app/x"
assert_eq $((before + 1)) "$(commit_count "$store")" "mv x.tmp over an existing x makes one commit"
assert_eq w "$(git -C "$store" show HEAD:app/x)" "x has the new value"
no_temp_names_in_history "mv x.tmp over x"
ok "mv of a temporary name over an existing key is one commit"

# --- ignored names: visible while they exist, never committed ----------------
before=$(commit_count "$store")
head=$(head_of "$store")
names=(.host.swp .host.swx host~ .#host 4913 notes.tmp sedAb12Cd)
for n in "${names[@]}"; do
	echo "temp $n" >"$M/app/$n"
done
for n in "${names[@]}"; do
	ls -A "$M/app" | grep -qxF -- "$n" || fail "ls does not show the ignored name $n while it exists"
	assert_content "temp $n" "$M/app/$n" "the ignored file $n reads back"
done
echo more >>"$M/app/host~"
assert_eq "temp host~ more " "$(tr '\n' ' ' <"$M/app/host~")" "an ignored file takes appends"
mv "$M/app/.#host" "$M/app/.#host2"
[[ -f $M/app/.#host2 ]] || fail "an ignored file cannot be renamed to another ignored name"
assert_eq "$head" "$(head_of "$store")" "ignored names make no commit"
for n in .host.swp .host.swx host~ .#host2 4913 notes.tmp sedAb12Cd; do
	rm "$M/app/$n"
	[[ ! -e $M/app/$n ]] || fail "rm did not remove the ignored file $n"
done
assert_eq "$head" "$(head_of "$store")" "removing ignored names makes no commit"
no_temp_names_in_history "ignored names"
ok "names matching the default ignore patterns are visible in ls but never committed"

echo gone >"$M/app/lost~"
stop_daemon "$M"
assert_eq "$head" "$(head_of "$store")" "unmounting commits no ignored name"
start_daemon "$store" "$M" node=testnode
[[ ! -e $M/app/lost~ ]] || fail "an ignored file survived a remount"
ok "ignored files live in memory only: they are gone after a remount"
stop_daemon "$M"

# --- -o ignore replaces the set ------------------------------------------------
start_daemon "$store" "$M" node=testnode 'ignore=*.bak'
before=$(commit_count "$store")
echo t >"$M/app/y.tmp"
assert_eq $((before + 1)) "$(commit_count "$store")" "with ignore=*.bak, x.tmp is committed"
assert_eq t "$(git -C "$store" show HEAD:app/y.tmp)" "y.tmp is at HEAD"
before=$(commit_count "$store")
echo b >"$M/app/y.bak"
ls -A "$M/app" | grep -qx y.bak || fail "ls does not show y.bak"
assert_content b "$M/app/y.bak" "y.bak reads back"
assert_eq "$before" "$(commit_count "$store")" "with ignore=*.bak, y.bak is not committed"
git -C "$store" log --all --format= --name-only | grep -q 'y\.bak' && fail "y.bak is in the history"
rm "$M/app/y.bak"
ok "-o ignore=*.bak changes the set: *.tmp is committed, *.bak is not"

assert_fsck "$store"
stop_daemon "$M"
ok "the store passes git fsck --strict"
