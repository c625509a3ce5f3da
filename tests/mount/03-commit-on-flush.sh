#!/bin/bash
# Commit on flush: every close() after a write is exactly one commit, on the
# branch by the time close() returns, saying who changed which key; writing
# the bytes HEAD already holds commits nothing. The history stays valid for
# every git tool.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
"$GITKV" init "$store"
start_daemon "$store" "$M" node=testnode

trailer() { # trailer KEY [REV] - the value of a trailer of a commit
	git -C "$store" log -1 --format="%(trailers:key=$1,valueonly)" "${2:-HEAD}" | sed '/^$/d'
}

# --- one close, one commit, on the branch when close returns ---------------
mkdir -p "$M/app/db"
before=$(commit_count "$store")
echo localhost >"$M/app/db/host"
assert_eq localhost "$(git -C "$store" show HEAD:app/db/host)" "the value is at HEAD when echo returns"
assert_eq $((before + 1)) "$(commit_count "$store")" "echo > key makes exactly one commit"
for i in $(seq 1 20); do
	echo "v$i" >"$M/app/db/host"
	got=$(git -C "$store" show HEAD:app/db/host)
	[[ $got == "v$i" ]] || fail "after write $i, HEAD:app/db/host is '$got', expected 'v$i'"
done
assert_eq $((before + 21)) "$(commit_count "$store")" "21 writes make 21 commits"
ok "each echo > key is one commit, on the branch when echo returns"

# Many write() calls before one close(): one commit with all of them.
before=$(commit_count "$store")
"$PYTHON" - "$M/app/chunks" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
for i in range(10):
    os.write(fd, b"chunk%d\n" % i)
os.close(fd)
PY
assert_eq $((before + 1)) "$(commit_count "$store")" "ten write()s and one close() make one commit"
assert_eq 10 "$(git -C "$store" show HEAD:app/chunks | wc -l)" "the commit holds all ten writes"
ok "many writes before one close are one commit"

# fsync commits what was written so far; close commits the rest.
before=$(commit_count "$store")
"$PYTHON" - "$M/app/synced" "$store" <<'PY'
import os, subprocess, sys
path, store = sys.argv[1], sys.argv[2]
def head_value():
    return subprocess.run(["git", "-C", store, "show", "HEAD:app/synced"],
                          capture_output=True).stdout
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"first\n")
os.fsync(fd)
got = head_value()
if got != b"first\n":
    sys.exit("after fsync HEAD:app/synced is %r, expected b'first\\n'" % got)
os.write(fd, b"second\n")
os.close(fd)
got = head_value()
if got != b"first\nsecond\n":
    sys.exit("after close HEAD:app/synced is %r" % got)
PY
assert_eq $((before + 2)) "$(commit_count "$store")" "write, fsync, write, close make two commits"
ok "fsync commits the dirty value; close commits the rest"

# --- no change, no commit --------------------------------------------------------
before=$(commit_count "$store")
head=$(head_of "$store")
echo v20 >"$M/app/db/host"
assert_eq "$before" "$(commit_count "$store")" "rewriting identical bytes commits nothing"
printf 'v20\n' | cp /dev/stdin "$M/app/db/host"
assert_eq "$head" "$(head_of "$store")" "cp of identical bytes leaves HEAD alone"
: >>"$M/app/db/host"
"$PYTHON" -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_WRONLY))' "$M/app/db/host"
cat "$M/app/db/host" >/dev/null
assert_eq "$head" "$(head_of "$store")" "opening for write and closing without writing commits nothing"
ok "writing the bytes HEAD holds (or nothing) makes no commit"

: >"$M/app/chunks"
assert_eq 0 "$(git -C "$store" cat-file -s HEAD:app/chunks)" ": > key empties an existing key"
assert_eq $((before + 1)) "$(commit_count "$store")" ": > key on a non-empty key is one commit"
ok ": > existing key commits the empty value"

# --- what a commit says -------------------------------------------------------------
echo localhost >"$M/app/db/host"
assert_eq "set app/db/host" "$(git -C "$store" log -1 --format=%s)" "the message of a write"
git -C "$store" log -1 --stat >"$T/stat"
grep -q 'app/db/host | ' "$T/stat" || fail "git log --stat does not show app/db/host: $(cat "$T/stat")"
git -C "$store" log -1 --format=%B | grep -q localhost && fail "the commit message leaks the value"
assert_eq root "$(git -C "$store" log -1 --format=%an)" "the author is the writing user"
assert_eq gitkvfs "$(git -C "$store" log -1 --format=%cn)" "the committer name"
assert_eq gitkvfs@testnode "$(git -C "$store" log -1 --format=%ce)" "the committer email names the node"
assert_eq 0 "$(trailer Gitkv-Uid)" "trailer Gitkv-Uid"
assert_eq testnode "$(trailer Gitkv-Node)" "trailer Gitkv-Node"
assert_eq bash "$(trailer Gitkv-Command)" "trailer Gitkv-Command of a write by bash's echo"
assert_match '^[0-9]+$' "$(trailer Gitkv-Pid)" "trailer Gitkv-Pid"
ok "a write commits 'set KEY' by root, committed by gitkvfs@testnode"

# The pid and command are those of the process that wrote.
pid=$(bash -c 'echo $$; echo db1 >"$1"' bash "$M/app/db/host")
assert_eq "$pid" "$(trailer Gitkv-Pid)" "Gitkv-Pid is the writing process"
assert_eq bash "$(trailer Gitkv-Command)" "Gitkv-Command of bash"
echo db2 >"$T/value"
cp "$T/value" "$M/app/db/host"
assert_eq cp "$(trailer Gitkv-Command)" "Gitkv-Command of cp"
out=$("$PYTHON" -c '
import os, sys
print(os.getpid(), open("/proc/self/comm").read().strip(), flush=True)
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_TRUNC)
os.write(fd, b"db3\n")
os.close(fd)' "$M/app/db/host")
read -r pid comm <<<"$out"
assert_eq "$pid" "$(trailer Gitkv-Pid)" "Gitkv-Pid of $comm"
assert_eq "$comm" "$(trailer Gitkv-Command)" "Gitkv-Command of $comm"
git -C "$store" log -1 --format=%B >"$T/body"
for want in "Gitkv-Uid: 0" "Gitkv-Pid: $pid" "Gitkv-Command: $comm" "Gitkv-Node: testnode"; do
	grep -qx "$want" "$T/body" || fail "the commit body lacks '$want': $(cat "$T/body")"
done
ok "trailers Gitkv-Uid, Gitkv-Pid, Gitkv-Command, Gitkv-Node name the writer"

rm "$M/app/db/host"
assert_eq "delete app/db/host" "$(git -C "$store" log -1 --format=%s)" "the message of rm"
assert_eq 0 "$(trailer Gitkv-Uid)" "trailer Gitkv-Uid of rm"
assert_eq rm "$(trailer Gitkv-Command)" "Gitkv-Command of rm"
[[ -d $M/app/db ]] || fail "rm of the last key of app/db removed the directory too"
rmdir "$M/app/db"
echo a >"$M/a"
mv "$M/a" "$M/b"
assert_eq "rename a -> b" "$(git -C "$store" log -1 --format=%s)" "the message of mv"
assert_eq mv "$(trailer Gitkv-Command)" "Gitkv-Command of mv"
git -C "$store" log --stat >"$T/log"
grep -q '    set app/db/host' "$T/log" || fail "git log --stat lacks 'set app/db/host'"
grep -q '    delete app/db/host' "$T/log" || fail "git log --stat lacks 'delete app/db/host'"
grep -q '    rename a -> b' "$T/log" || fail "git log --stat lacks 'rename a -> b'"
ok "rm and mv commit 'delete KEY' and 'rename a -> b'"

# --- the history is a valid git repository -------------------------------------------
mkdir -p "$M/etc/app" "$M/bin"
for i in 1 2 3; do echo "value $i" >"$M/etc/app/k$i"; done
head -c 3000 /dev/urandom >"$M/etc/blob"
printf '#!/bin/sh\n' >"$M/bin/x"
chmod +x "$M/bin/x"
ln -s ../etc/app/k1 "$M/bin/link"
assert_fsck "$store"
git clone -q "$store" "$T/clone" 2>"$T/clone.err" || fail "git clone failed: $(cat "$T/clone.err")"
diff -r --no-dereference --exclude=.git --exclude=.gitkv "$M" "$T/clone" >"$T/diff" ||
	fail "the clone's working tree differs from the mount: $(cat "$T/diff")"
assert_eq 755 "$(stat -c %a "$T/clone/bin/x")" "the clone checks out the exec bit"
assert_eq ../etc/app/k1 "$(readlink "$T/clone/bin/link")" "the clone checks out the symlink"
ok "git fsck --strict is clean and git clone gives the mount's tree"

stop_daemon "$M"
