#!/bin/bash
# Plain file use: the mount behaves like a directory tree to the usual tools,
# and each change lands in the store as the matching git object.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
start_daemon "$store" "$M" node=testnode

# --- write and read ---------------------------------------------------------
mkdir -p "$M/app/db"
echo localhost >"$M/app/db/host"
assert_eq localhost "$(cat "$M/app/db/host")" "cat prints what echo wrote"
assert_eq localhost "$(git -C "$store" show HEAD:app/db/host)" "the value is the blob at HEAD"
ok "mkdir -p, echo > key and cat read back a value"

# --- listing ----------------------------------------------------------------
echo 5432 >"$M/app/db/port"
echo info >"$M/app/loglevel"
got=$(cd "$M" && find app | sort | tr '\n' ' ')
assert_eq "app app/db app/db/host app/db/port app/loglevel " "$got" "find lists keys and prefixes"
got=$(ls "$M/app/db" | tr '\n' ' ')
assert_eq "host port " "$got" "ls lists a prefix's keys"
ls -R "$M/app" >"$T/lsR" || fail "ls -R failed"
grep -qx 'loglevel' "$T/lsR" || fail "ls -R misses loglevel: $(cat "$T/lsR")"
grep -qx "$M/app/db:" "$T/lsR" || fail "ls -R misses the app/db section: $(cat "$T/lsR")"
[[ -d $M/app/db && -f $M/app/db/host ]] || fail "test -d / test -f disagree with the tree"
ok "ls, ls -R and find show keys as files and prefixes as directories"

# --- stat: size, modes, mtime -----------------------------------------------
assert_eq 10 "$(stat -c %s "$M/app/db/host")" "stat size is the value's length"
assert_eq 644 "$(stat -c %a "$M/app/db/host")" "a key is mode 0644"
assert_eq 755 "$(stat -c %a "$M/app/db")" "a prefix is mode 0755"
assert_eq "regular file" "$(stat -c %F "$M/app/db/host")" "a key is a regular file"
assert_eq "directory" "$(stat -c %F "$M/app/db")" "a prefix is a directory"
ok "stat shows sizes and modes 0644 / 0755"

# mtime is the committer time of the key's last change, not of HEAD.
# Make the two differ by committing something else a second or more later.
ct_host=$(git -C "$store" log -1 --format=%ct -- app/db/host)
clock_after() { (($(date +%s) > $1)); }
wait_until 3 clock_after "$ct_host" || fail "the clock did not move"
echo other >"$M/app/other"
ct_other=$(git -C "$store" log -1 --format=%ct -- app/other)
[[ $ct_other -gt $ct_host ]] || fail "the second commit is not later (test setup)"
assert_eq "$ct_host" "$(stat -c %Y "$M/app/db/host")" "mtime of app/db/host is its last commit's committer time"
assert_eq "$ct_other" "$(stat -c %Y "$M/app/other")" "mtime of app/other is its last commit's committer time"
ok "mtime is the committer time of the key's last change"

# --- exec bit -----------------------------------------------------------------
printf '#!/bin/sh\necho hi\n' >"$M/app/run"
before=$(commit_count "$store")
chmod +x "$M/app/run"
assert_eq $((before + 1)) "$(commit_count "$store")" "chmod +x makes one commit"
assert_eq 755 "$(stat -c %a "$M/app/run")" "an executable key is mode 0755"
assert_match '^100755 blob ' "$(git -C "$store" ls-tree HEAD app/run)" "git ls-tree shows the key as 100755"
assert_eq hi "$("$M/app/run")" "the executable key runs"
chmod -x "$M/app/run"
assert_eq 644 "$(stat -c %a "$M/app/run")" "chmod -x makes the key 0644 again"
assert_match '^100644 blob ' "$(git -C "$store" ls-tree HEAD app/run)" "git ls-tree shows 100644 after chmod -x"
chmod +x "$M/app/run"
echo 'echo hello' >>"$M/app/run"
assert_match '^100755 blob ' "$(git -C "$store" ls-tree HEAD app/run)" "a write keeps the exec bit"
ok "chmod +x / -x toggles git's 100755 and the mode"

# --- rm, rmdir ------------------------------------------------------------------
before=$(commit_count "$store")
rm "$M/app/other"
[[ ! -e $M/app/other ]] || fail "app/other still exists after rm"
assert_eq $((before + 1)) "$(commit_count "$store")" "rm makes one commit"
git -C "$store" cat-file -e HEAD:app/other 2>/dev/null && fail "app/other is still at HEAD after rm"
assert_eq "delete app/other" "$(git -C "$store" log -1 --format=%s)" "rm's commit message"
ok "rm removes a key with one commit"

assert_fails_with ENOTEMPTY rmdir "$M/app/db"
assert_errno ENOTEMPTY rmdir "$M/app/db"
[[ -f $M/app/db/host ]] || fail "rmdir of a non-empty prefix removed something"
mkdir "$M/gone"
rmdir "$M/gone"
[[ ! -e $M/gone ]] || fail "rmdir did not remove the empty directory"
git -C "$store" cat-file -e HEAD:gone 2>/dev/null && fail "gone is still in the tree after rmdir"
ok "rmdir removes an empty prefix and refuses a non-empty one with ENOTEMPTY"

# --- mv -------------------------------------------------------------------------
echo a >"$M/a"
before=$(commit_count "$store")
mv "$M/a" "$M/b"
assert_eq $((before + 1)) "$(commit_count "$store")" "mv of a key makes one commit"
assert_eq "rename a -> b" "$(git -C "$store" log -1 --format=%s)" "mv's commit message"
[[ ! -e $M/a ]] || fail "a still exists after mv"
assert_content a "$M/b" "b holds a's value"
assert_eq a "$(git -C "$store" show HEAD:b)" "b is at HEAD"
ok "mv of a key is one commit 'rename a -> b'"

echo c >"$M/c"
before=$(commit_count "$store")
mv -f "$M/c" "$M/b"
assert_eq $((before + 1)) "$(commit_count "$store")" "mv over an existing key makes one commit"
assert_content c "$M/b" "mv over an existing key replaces its value"
ok "mv over an existing key replaces it in one commit"

before=$(commit_count "$store")
mv "$M/app" "$M/service"
assert_eq $((before + 1)) "$(commit_count "$store")" "mv of a directory makes one commit"
assert_eq "rename app -> service" "$(git -C "$store" log -1 --format=%s)" "mv of a directory's commit message"
[[ ! -e $M/app ]] || fail "app still exists after mv"
assert_content localhost "$M/service/db/host" "the moved tree keeps its values"
assert_eq "service/db/host service/db/port service/loglevel service/run " \
	"$(tree_paths "$store" | grep -v '^b$' | tr '\n' ' ')" "the tree at HEAD after mv of a directory"
mv "$M/service" "$M/app"
ok "mv of a whole directory is one commit"

# --- cp -r, rsync -a ------------------------------------------------------------
src=$T/src
mkdir -p "$src/etc/nginx/sites" "$src/etc/empty-not" "$src/bin"
echo 'worker_processes 4;' >"$src/etc/nginx/nginx.conf"
printf 'server {\n  listen 80;\n}\n' >"$src/etc/nginx/sites/default"
head -c 5000 /dev/urandom >"$src/etc/blob"
echo x >"$src/etc/empty-not/x"
: >"$src/etc/zero"
printf '#!/bin/sh\ntrue\n' >"$src/bin/tool"
chmod 755 "$src/bin/tool"
cp -r "$src" "$M/cp"
diff -r "$src" "$M/cp" >"$T/diff" || fail "cp -r copy differs: $(cat "$T/diff")"
assert_eq 755 "$(stat -c %a "$M/cp/bin/tool")" "cp -r keeps the exec bit"
git -C "$store" cat-file -e HEAD:cp/etc/nginx/sites/default || fail "cp -r did not commit cp/etc/nginx/sites/default"
ok "cp -r into the mount copies a tree (diff -r clean)"

rsync -a "$src/" "$M/rs/" 2>"$T/rsync.err" || fail "rsync -a failed: $(cat "$T/rsync.err")"
diff -r "$src" "$M/rs" >"$T/diff" || fail "rsync -a copy differs: $(cat "$T/diff")"
assert_eq 755 "$(stat -c %a "$M/rs/bin/tool")" "rsync -a keeps the exec bit"
# A second rsync over an identical tree changes nothing.
before=$(commit_count "$store")
rsync -a --checksum "$src/" "$M/rs/" 2>"$T/rsync.err" || fail "second rsync -a failed: $(cat "$T/rsync.err")"
assert_eq "$before" "$(commit_count "$store")" "rsync over an identical tree commits nothing"
ok "rsync -a into the mount copies a tree (diff -r clean)"

# --- truncate, append -----------------------------------------------------------
echo hello-world >"$M/t"
truncate -s 5 "$M/t"
assert_eq 5 "$(stat -c %s "$M/t")" "truncate -s 5 sets the size"
assert_eq hello "$(cat "$M/t")" "truncate -s 5 keeps the first 5 bytes"
assert_eq hello "$(git -C "$store" show HEAD:t)" "the truncated value is committed"
truncate -s 8 "$M/t"
assert_eq "68656c6c6f000000" "$(od -An -tx1 "$M/t" | tr -d ' \n')" "truncate -s 8 pads with zero bytes"
truncate -s 0 "$M/t"
assert_eq 0 "$(git -C "$store" cat-file -s HEAD:t)" "truncate -s 0 commits an empty value"
ok "truncate -s shrinks, extends and empties a value"

echo one >"$M/log"
echo two >>"$M/log"
before=$(commit_count "$store")
echo three >>"$M/log"
assert_eq $((before + 1)) "$(commit_count "$store")" "an append makes one commit"
assert_eq "one two three " "$(tr '\n' ' ' <"$M/log")" "appends accumulate"
assert_eq "one two three " "$(git -C "$store" show HEAD:log | tr '\n' ' ')" "the appended value is committed"
ok ">> appends to a value"

# --- empty and binary values ----------------------------------------------------
: >"$M/empty"
[[ -f $M/empty ]] || fail ": > key did not create the key"
assert_eq 0 "$(stat -c %s "$M/empty")" "an empty key has size 0"
assert_eq e69de29bb2d1d6434b8b29ae775ad8c2e48c5391 "$(git -C "$store" rev-parse HEAD:empty)" "an empty key is the empty blob"
touch "$M/touched"
git -C "$store" cat-file -e HEAD:touched || fail "touch did not create a key"
ok ": > key and touch create an empty key that exists"

head -c 200000 /dev/urandom >"$T/bin"
cp "$T/bin" "$M/bin"
cmp "$T/bin" "$M/bin" || fail "the binary value reads back different"
git -C "$store" cat-file blob HEAD:bin | cmp - "$T/bin" || fail "the binary blob differs"
head -c 200000 /dev/urandom >"$T/bin2"
cat "$T/bin2" >"$M/bin"
cmp "$T/bin2" "$M/bin" || fail "the rewritten binary value reads back different"
ok "binary values (200000 random bytes) round-trip exactly"

# --- symlinks ---------------------------------------------------------------------
ln -s app/db/host "$M/link"
assert_eq app/db/host "$(readlink "$M/link")" "readlink returns the target"
assert_eq localhost "$(cat "$M/link")" "a symlink resolves inside the mount"
assert_match '^120000 blob ' "$(git -C "$store" ls-tree HEAD link)" "git ls-tree shows the link as 120000"
assert_eq app/db/host "$(git -C "$store" cat-file blob HEAD:link)" "the link's blob is its target"
ln -s /nowhere/at/all "$M/dangling"
assert_eq /nowhere/at/all "$(readlink "$M/dangling")" "a dangling symlink keeps its target"
[[ -L $M/dangling ]] || fail "test -L fails on a symlink"
rm "$M/dangling"
[[ ! -L $M/dangling ]] || fail "rm did not remove the symlink"
ok "ln -s makes a symlink stored as mode 120000"

# --- empty directories survive a remount ------------------------------------------
mkdir "$M/emptydir"
mkdir -p "$M/deep/er/still"
snapshot_before=$(listing "$M")
stop_daemon "$M"
start_daemon "$store" "$M"
[[ -d $M/emptydir ]] || fail "the empty directory did not survive a remount"
[[ -d $M/deep/er/still ]] || fail "the empty nested directory did not survive a remount"
assert_eq "$snapshot_before" "$(listing "$M")" "the whole tree after a remount"
ok "mkdir of an empty directory survives unmount/remount"

assert_fsck "$store"
stop_daemon "$M"
ok "the store passes git fsck --strict"
