#!/bin/bash
# Bad input gets a clear errno and never a commit: a .git component, anything
# under the read-only .gitkv control directory, a name over 255 bytes, a value
# over max_value_size, hard links, special files, chown to another user, and
# a path through a file.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
start_daemon "$store" "$M" node=testnode max_value_size=1000
mkdir -p "$M/app"
echo a >"$M/a"
echo v >"$M/app/k"

# unchanged WHAT - HEAD did not move since the last `arm`.
arm() { ARMED_HEAD=$(head_of "$store"); }
unchanged() {
	assert_eq "$ARMED_HEAD" "$(head_of "$store")" "$1 left the repository unchanged"
}

# --- .git as a key component -----------------------------------------------
arm
assert_fails_with EINVAL mkdir "$M/.git"
assert_fails_with EINVAL mkdir "$M/app/.git"
assert_fails_with EINVAL bash -c 'echo x >"$1"' bash "$M/.git"
assert_fails_with EINVAL bash -c 'echo x >"$1"' bash "$M/app/.git"
assert_errno EINVAL mkdir "$M/.git"
assert_errno EINVAL write "$M/app/.git" x
assert_errno EINVAL symlink a "$M/.git"
assert_errno EINVAL rename "$M/a" "$M/.git"
assert_errno EINVAL rename "$M/app" "$M/.git"
[[ ! -e $M/.git ]] || fail ".git exists in the mount"
unchanged ".git as a key"
assert_content a "$M/a" "a after the refused rename to .git"
ok "a key component .git is refused with EINVAL (Invalid argument)"

# --- the .gitkv control directory is read-only -------------------------------
arm
[[ -d $M/.gitkv ]] || fail "the .gitkv control directory is missing"
assert_fails_with EROFS\|EPERM bash -c 'echo x >"$1"' bash "$M/.gitkv/foo"
assert_errno EROFS\|EPERM write "$M/.gitkv/foo" x
assert_errno EROFS\|EPERM mkdir "$M/.gitkv/dir"
assert_errno EROFS\|EPERM symlink a "$M/.gitkv/link"
assert_errno EROFS\|EPERM rename "$M/a" "$M/.gitkv/a"
assert_errno EROFS\|EPERM\|EBUSY\|ENOTEMPTY rmdir "$M/.gitkv"
assert_errno EROFS\|EPERM\|EBUSY\|EINVAL rename "$M/.gitkv" "$M/gitkv2"
[[ -d $M/.gitkv && ! -e $M/gitkv2 ]] || fail ".gitkv was removed or renamed"
if [[ -e $M/.gitkv/status ]]; then
	assert_errno EROFS\|EPERM write "$M/.gitkv/status" x
	assert_errno EROFS\|EPERM unlink "$M/.gitkv/status"
fi
[[ ! -e $M/.gitkv/foo ]] || fail ".gitkv/foo exists after a refused write"
assert_content a "$M/a" "a after the refused rename into .gitkv"
unchanged "writing under .gitkv"
ok "anything under .gitkv is refused with EROFS or EPERM"

# --- a component over 255 bytes --------------------------------------------------
arm
long=$(printf 'n%.0s' $(seq 256))
assert_fails_with ENAMETOOLONG bash -c 'echo x >"$1"' bash "$M/$long"
assert_fails_with ENAMETOOLONG mkdir "$M/app/$long"
assert_errno ENAMETOOLONG write "$M/app/$long" x
assert_errno ENAMETOOLONG rename "$M/a" "$M/$long"
unchanged "a 256-byte name"
ok "a key component of 256 bytes is refused with ENAMETOOLONG (File name too long)"
name255=${long:1}
echo x >"$M/$name255" || fail "a 255-byte name was refused"
assert_eq x "$(git -C "$store" show "HEAD:$name255")" "a 255-byte name is committed"
rm "$M/$name255"
ok "a key component of exactly 255 bytes is accepted"

# --- a value over max_value_size -------------------------------------------------
arm
assert_errno EFBIG overwritesize "$M/a" 1001
assert_fails_with EFBIG truncate -s 1001 "$M/a"
unchanged "writing 1001 bytes with max_value_size=1000"
assert_content a "$M/a" "a keeps its value after refused oversize writes"
ok "a value over max_value_size is refused with EFBIG (File too large)"

head -c 600 /dev/zero >>"$M/app/k" || fail "an append within max_value_size was refused"
arm
assert_fails_with EFBIG bash -c 'head -c 600 /dev/zero >>"$1"' bash "$M/app/k"
unchanged "an append past max_value_size"
assert_eq 602 "$(git -C "$store" cat-file -s HEAD:app/k)" "app/k holds the append that fit"
assert_eq 602 "$(stat -c %s "$M/app/k")" "app/k's size in the mount"
ok "an append past max_value_size is refused with EFBIG and the key is unchanged"

head -c 1000 /dev/zero >"$M/exact" || fail "a value of exactly max_value_size was refused"
assert_eq 1000 "$(git -C "$store" cat-file -s HEAD:exact)" "a 1000-byte value is committed"
ok "a value of exactly max_value_size is accepted"

# --- hard links, special files, chown ------------------------------------------------
arm
assert_fails_with EPERM ln "$M/a" "$M/b"
assert_errno EPERM link "$M/a" "$M/app/b"
[[ ! -e $M/b ]] || fail "ln created b"
assert_fails_with EPERM mknod "$M/p" p
assert_fails_with EPERM mkfifo "$M/fifo"
assert_errno EPERM mknod "$M/p2"
[[ ! -e $M/p && ! -e $M/fifo ]] || fail "a special file was created"
assert_fails_with EPERM chown 1234 "$M/a"
assert_fails_with EPERM chown :1234 "$M/a"
assert_errno EPERM chown "$M/app" 1234 1234
unchanged "ln, mknod, mkfifo and chown to another user"
ok "hard links, mknod/mkfifo and chown to another user are refused with EPERM"

chown 0:0 "$M/a" || fail "chown to the current owner was refused"
unchanged "chown to the current owner"
ok "chown to the current owner and group is accepted and commits nothing"

# --- a path through a file -----------------------------------------------------------
arm
assert_fails_with ENOTDIR bash -c 'echo x >"$1"' bash "$M/a/b"
assert_fails_with ENOTDIR mkdir -p "$M/a/b/c"
assert_errno ENOTDIR mkdir "$M/a/b"
assert_errno ENOTDIR rename "$M/app/k" "$M/a/k"
assert_content a "$M/a" "a is still a file"
unchanged "writing below a file"
ok "writing into a path whose parent is a file is refused with ENOTDIR (Not a directory)"

# The way a user writes a value: the shell truncates, the write fails. The
# failed write must not replace the value with the truncated one.
arm
assert_fails_with EFBIG bash -c 'head -c 1001 /dev/zero >"$1"' bash "$M/a"
assert_errno EFBIG writesize "$M/a" 1001
unchanged "head -c 1001 > a with max_value_size=1000"
assert_content a "$M/a" "a keeps its value after head -c 1001 > a failed"
ok "head -c 1001 > key fails with EFBIG and the key keeps its value"

arm
assert_errno EFBIG writesize "$M/newbig" 1001
unchanged "a new key of 1001 bytes"
git -C "$store" cat-file -e HEAD:newbig 2>/dev/null && fail "a refused new key was committed"
ok "a new key over max_value_size is refused with EFBIG and not committed"

assert_fsck "$store"
stop_daemon "$M"
ok "the store passes git fsck --strict"
