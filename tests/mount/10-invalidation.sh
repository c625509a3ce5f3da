#!/bin/bash
# Kernel caching with exact invalidation: the kernel may cache entries,
# attributes and pages, but a change made outside the mount (the CLI, a git
# push into the bare repository) shows through the mount within 2 s - new
# content, new size, new and removed names, even a name the kernel had
# cached as missing.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
"$GITKV" -C "$store" set k old
"$GITKV" -C "$store" set dir/a 1
start_daemon "$store" "$M" node=testnode

# shows PATH CONTENT - PATH reads as exactly CONTENT (one optional trailing
# newline aside: the CLI stores the value as given).
shows() {
	local got
	got=$(cat -- "$1" 2>/dev/null && printf x) || return 1
	got=${got%x}
	[[ $got == "$2" || $got == "$2"$'\n' ]]
}

# --- cached content -------------------------------------------------------------
for i in 1 2 3; do cat "$M/k" >/dev/null; done
stat "$M/k" >/dev/null
shows "$M/k" old || fail "k does not read 'old' before the change: $(cat "$M/k")"
"$GITKV" -C "$store" set k new
wait_until 2 shows "$M/k" new || fail "cat k still shows '$(cat "$M/k")' 2 s after gitkv set k new"
ok "a cached value changed by the CLI shows its new content within 2 s"

# A longer value: a stale cached size would cut it short.
"$GITKV" -C "$store" set k "a much longer value than before"
wait_until 2 shows "$M/k" "a much longer value than before" ||
	fail "after a longer value, cat k shows '$(cat "$M/k")' (stale size?)"
want=$(git -C "$store" cat-file -s HEAD:k)
assert_eq "$want" "$(stat -c %s "$M/k")" "stat size after the change"
assert_eq "$(git -C "$store" log -1 --format=%ct -- k)" "$(stat -c %Y "$M/k")" "stat mtime after the change"
"$GITKV" -C "$store" set k short
wait_until 2 shows "$M/k" short || fail "after a shorter value, cat k shows '$(cat "$M/k")'"
ok "a value's size and mtime follow a change made by the CLI"

# Through a file descriptor kept open across the change (page cache).
exec 7<"$M/k"
cat <&7 >/dev/null
"$GITKV" -C "$store" set k reopened
wait_until 2 shows "$M/k" reopened || fail "a new open does not see the new value: $(cat "$M/k")"
exec 7<&-
ok "a value cached by an open file shows its new content to the next open"

# --- negative entries -------------------------------------------------------------
for i in 1 2 3; do
	cat "$M/n" 2>/dev/null && fail "n exists before the test"
	[[ ! -e $M/n ]] || fail "n exists before the test"
done
"$GITKV" -C "$store" set n v
in_ls() { ls -A "$M/${2:-}" | grep -qxF "$1"; }
wait_until 2 in_ls n || fail "n does not appear in ls within 2 s of gitkv set n v"
wait_until 2 shows "$M/n" v || fail "cat n fails 2 s after gitkv set n v (negative dentry kept?)"
ok "a key created by the CLI appears (ls, cat) within 2 s even after failed lookups"

for i in 1 2 3; do [[ ! -e $M/newdir/x ]] || fail "newdir/x exists before the test"; done
[[ ! -e $M/newdir ]] || fail "newdir exists before the test"
"$GITKV" -C "$store" set newdir/x 1
wait_until 2 test -d "$M/newdir" || fail "newdir does not appear within 2 s"
wait_until 2 shows "$M/newdir/x" 1 || fail "newdir/x does not read within 2 s"
ok "a new directory made by the CLI appears within 2 s after failed lookups"

# --- removals and directory contents ------------------------------------------------
ls "$M/dir" >/dev/null
cat "$M/dir/a" >/dev/null
"$GITKV" -C "$store" set dir/b 2
wait_until 2 in_ls b dir || fail "dir/b does not appear in ls dir within 2 s"
"$GITKV" -C "$store" rm dir/a
wait_until 2 not test -e "$M/dir/a" || fail "dir/a still exists 2 s after gitkv rm"
wait_until 2 not in_ls a dir || fail "dir/a is still listed 2 s after gitkv rm"
"$GITKV" -C "$store" rm n
wait_until 2 not test -e "$M/n" || fail "n still exists 2 s after gitkv rm n"
ok "keys added and removed by the CLI appear and vanish in ls within 2 s"

# --- a push into the bare repository ------------------------------------------------
git clone -q "$store" "$T/clone"
(
	cd "$T/clone"
	echo pushed >k
	mkdir -p pushed/deep
	echo p >pushed/deep/file
	git rm -q dir/b
	git add -A
	git -c user.name=tester -c user.email=tester@example.invalid commit -qm "edit from a clone"
	git push -q origin HEAD 2>"$T/push.err"
) || fail "git push into the store failed: $(cat "$T/push.err")"
wait_until 2 shows "$M/k" pushed || fail "k does not show a pushed value within 2 s: $(cat "$M/k")"
wait_until 2 shows "$M/pushed/deep/file" p || fail "a pushed new key does not appear within 2 s"
wait_until 2 not test -e "$M/dir/b" || fail "a key removed by a push is still there after 2 s"
ok "a git push into the bare repository shows through the mount within 2 s"

# The mount's own writes still commit on top of what came from outside.
echo local >"$M/local"
git -C "$store" cat-file -e HEAD:pushed/deep/file || fail "a mount write lost the pushed commit"
assert_eq local "$(git -C "$store" show HEAD:local)" "a mount write after outside changes"
assert_fsck "$store"
stop_daemon "$M"
ok "mount writes after outside changes keep them; fsck is clean"
