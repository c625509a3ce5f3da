#!/bin/bash
# History and time travel in the mount: /.gitkv/history/KEY lists the
# commits that changed KEY, newest first, one line each (what `gitkv
# history` prints, what `git log` says), and mirrors the keys of HEAD;
# /.gitkv/at/REV/ is the tree of any revision (full or abbreviated commit
# id, tag, HEAD~N), values read-only and byte for byte, symlinks and exec
# bits kept, the reserved metadata hidden; at/ lists nothing so `find`
# stays finite; an unknown REV is ENOENT; nothing under /.gitkv can be
# changed (EROFS), and nothing there ever makes a commit.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
H=$M/.gitkv/history
A=$M/.gitkv/at
"$GITKV" init "$store"
"$GITKV" -C "$store" set app/db/host value-1
"$GITKV" -C "$store" set app/db/port 5432
start_daemon "$store" "$M" node=testnode

# git_history KEY - what history/KEY must hold, from git itself.
git_history() {
	TZ=UTC git -C "$store" log --abbrev=12 --date=format-local:%Y-%m-%dT%H:%M:%SZ \
		--format='%h %cd %an %s' -- "$1"
}

# assert_shows EXPECTED PATH MSG - PATH reads exactly EXPECTED, with or
# without one trailing newline (the CLI stores a value as given, echo adds one).
assert_shows() {
	local got
	got=$(cat -- "$2" 2>&1 && printf x) || fail "$3: cannot read $2: $got"
	got=${got%x}
	[[ $got == "$1" || $got == "$1"$'\n' ]] || fail "$3: $2 holds '${got%$'\n'}', expected '$1'"
}

# names DIR - the names in DIR, one a line, sorted.
names() { ls -A -- "$1" | sort; }

# git_names REV DIR - the names git has in DIR ("" for the root) at REV, sorted.
git_names() { git -C "$store" ls-tree --name-only "$1:$2" | sort; }

# --- several commits to a key ----------------------------------------------------------
echo value-2 >"$M/app/db/host"
"$GITKV" -C "$store" set other x
echo value-3 >"$M/app/db/host"
"$GITKV" -C "$store" set app/db/host value-4
mkdir "$M/app/empty"
ln -s db/host "$M/app/link"
printf '#!/bin/sh\necho run\n' >"$M/app/run"
chmod +x "$M/app/run"
head -c 3000 /dev/urandom >"$T/bin.old"
head -c 5000 /dev/urandom >"$T/bin.new"
printf '\0\n\377' >>"$T/bin.old"
cp "$T/bin.old" "$M/app/blob"
cp "$T/bin.new" "$M/app/blob"
wait_until 2 test -e "$M/other" || fail "'other', set by the CLI, does not show in the mount"

hist=$(cat "$H/app/db/host")
assert_eq 4 "$(wc -l <<<"$hist")" "lines in history/app/db/host (four commits set it)"
assert_eq "$(git_history app/db/host)" "$hist" "history/app/db/host against git log"
assert_eq "$(git -C "$store" log --abbrev=12 --format=%h -- app/db/host)" \
	"$(cut -d' ' -f1 <<<"$hist")" "the short shas, newest first"
assert_eq "$("$GITKV" -C "$store" history app/db/host)" "$hist" "history/KEY against gitkv history"
assert_match '^[0-9a-f]{12} [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z .+ set app/db/host$' \
	"$(head -n1 <<<"$hist")" "a history line"
[[ $hist != *value-* ]] || fail "a history line holds a value: $hist"
assert_eq "$(git_history app/blob)" "$(cat "$H/app/blob")" "history/app/blob against git log"
ok "history/KEY lists each commit that changed KEY, newest first: sha, UTC time, author, message"

# --- history/ mirrors the keys of HEAD ----------------------------------------------------------
assert_eq "$(ls -A "$M" | grep -vxF .gitkv | sort)" "$(names "$H")" "ls history against ls of the mount"
assert_eq "$(names "$M/app")" "$(names "$H/app")" "ls history/app against ls app"
assert_eq "$(names "$M/app/db")" "$(names "$H/app/db")" "ls history/app/db against ls app/db"
[[ -d $H/app/empty && -f $H/app/link && ! -L $H/app/link && -f $H/app/run ]] ||
	fail "history/ shows a prefix as a directory and any value (a symlink too) as a file"
assert_fails_with EISDIR cat "$H/app"
assert_fails_with ENOENT cat "$H/app/never-was"
assert_errno ENOENT read "$H/app/db/never-was"
assert_eq "$(cd "$M" && find . -path ./.gitkv -prune -o \( -type f -o -type l \) -printf '%P\n' | sort)" \
	"$(cd "$H" && find . -type f -printf '%P\n' | sort)" "the files below history/ against the keys"
ok "history/ mirrors the keys of HEAD; a prefix is a directory (EISDIR), a name never used ENOENT"

# --- the history of deleted keys ---------------------------------------------------------------
"$GITKV" -C "$store" set gone/a 1
rm "$M/app/db/port"
wait_until 2 test -e "$M/gone/a" || fail "gone/a, set by the CLI, does not show in the mount"
rm -r "$M/gone"
assert_eq "host" "$(names "$H/app/db")" "ls history/app/db after deleting port"
assert_eq "$(git_history app/db/port)" "$(cat "$H/app/db/port")" "history of the deleted app/db/port"
assert_match ' delete app/db/port$' "$(head -n1 "$H/app/db/port")" "the newest change of a deleted key"
[[ -d $H/gone ]] || fail "history/gone, a deleted prefix, is not a directory"
assert_eq "$(git_history gone/a)" "$(cat "$H/gone/a")" "history of gone/a, in a deleted prefix"
assert_eq "" "$(ls -A "$H/gone")" "ls of a deleted prefix in history/"
ok "a deleted key's history still reads at history/KEY (not listed), a deleted prefix's keys too"

# --- at/REV: commit ids, tags, HEAD~N ----------------------------------------------------------
# the commit that set app/db/host to value-2, and its neighbours
c2=$(git -C "$store" log --format=%H --grep='^set app/db/host$' -- app/db/host | sed -n 3p)
assert_eq value-2 "$(git -C "$store" show "$c2:app/db/host")" "the commit chosen for value-2"
assert_content value-2 "$A/$c2/app/db/host" "at/<full sha>/app/db/host"
assert_content value-2 "$A/${c2:0:7}/app/db/host" "at/<abbreviated sha>/app/db/host"
git -C "$store" tag v2 "$c2"
git -C "$store" -c user.name=t -c user.email=t@example.com tag -a -m 'annotated' v2-annotated "$c2"
assert_content value-2 "$A/v2/app/db/host" "at/<tag>/app/db/host"
assert_content value-2 "$A/v2-annotated/app/db/host" "at/<annotated tag>/app/db/host"
for rev in HEAD HEAD~2 HEAD~5 "$c2"; do
	cmp -s <(git -C "$store" show "$rev:app/db/host") "$A/$rev/app/db/host" ||
		fail "at/$rev/app/db/host differs from git show $rev:app/db/host"
done
assert_eq "$(git_names HEAD~2 app)" "$(names "$A/HEAD~2/app")" "ls at/HEAD~2/app against git ls-tree"
assert_eq "$(git_names v2 app/db)" "$(names "$A/v2/app/db")" "ls at/v2/app/db against git ls-tree"
assert_eq "$(git_names HEAD "")" "$(names "$A/HEAD")" "ls at/HEAD against git ls-tree"
assert_fails_with EISDIR cat "$A/HEAD/app"
ok "at/REV/KEY is the value at a full or abbreviated id, a tag or HEAD~N; at/REV/DIR lists that tree"

# --- values at a revision: read-only, byte for byte, modes and symlinks kept ------------------------------
b_new=$(git -C "$store" log -1 --format=%H -- app/blob)
cmp "$T/bin.new" "$A/HEAD/app/blob" || fail "at/HEAD/app/blob differs from the value written"
cmp "$T/bin.old" "$A/$b_new~1/app/blob" || fail "at/<sha>~1/app/blob differs from the older value"
assert_eq "$(git -C "$store" cat-file -s "$b_new~1:app/blob")" "$(stat -c %s "$A/$b_new~1/app/blob")" \
	"the size of at/<sha>~1/app/blob"
assert_eq "444 555 555" "$(stat -c %a "$A/HEAD/app/blob" "$A/HEAD/app/run" "$A/HEAD/app" | xargs)" \
	"modes of a value, an executable and a prefix at a revision"
[[ -L $A/HEAD/app/link ]] || fail "at/HEAD/app/link is not a symlink"
assert_eq db/host "$(readlink "$A/HEAD/app/link")" "readlink at/HEAD/app/link"
assert_shows value-4 "$A/HEAD/app/link" "cat through the symlink at HEAD"
assert_eq "$(git -C "$store" log -1 --format=%ct "$b_new~1")" "$(stat -c %Y "$A/$b_new~1/app/blob")" \
	"the mtime of a value at a revision is its commit's time"
ok "values at a revision read byte for byte, with their size, exec bit and symlinks"

# --- the reserved metadata never shows ---------------------------------------------------------
# Commit metadata for 'other' from outside, as another writer's TTL would.
meta=$(printf 'ttl 3600\nexpires 4102444800\n' | git -C "$store" hash-object -w --stdin)
idx=$T/index
GIT_INDEX_FILE=$idx git -C "$store" read-tree HEAD
GIT_INDEX_FILE=$idx git -C "$store" update-index --add --cacheinfo "100644,$meta,.gitkv/meta/other"
tree=$(GIT_INDEX_FILE=$idx git -C "$store" write-tree)
old=$(head_of "$store")
new=$(git -C "$store" -c user.name=t -c user.email=t@example.com commit-tree "$tree" -p "$old" -m 'ttl other')
git -C "$store" update-ref refs/heads/main "$new" "$old"
git -C "$store" ls-tree --name-only HEAD | grep -qxF .gitkv || fail "the metadata commit holds no .gitkv"
assert_eq "$(git_names HEAD "" | grep -vxF .gitkv)" "$(names "$A/HEAD")" "ls at/HEAD hides .gitkv"
assert_errno ENOENT read "$A/HEAD/.gitkv/meta/other"
[[ ! -e $H/.gitkv ]] || fail "history/.gitkv exists"
ok "the reserved .gitkv shows neither in at/REV nor in history/"

# --- at/HEAD~N follows HEAD ---------------------------------------------------------------------
ino_then=$(stat -c %i "$A/HEAD/app/db/host")
assert_eq "$ino_then" "$(stat -c %i "$A/HEAD/app/db/host")" "the inode of at/HEAD/app/db/host, twice"
exec 7<"$A/HEAD/app/db/host"
echo value-5 >"$M/app/db/host"
assert_content value-5 "$A/HEAD/app/db/host" "at/HEAD/app/db/host after a commit"
assert_shows value-4 "$A/HEAD~2/app/db/host" "at/HEAD~2/app/db/host after a commit"
assert_ne "$ino_then" "$(stat -c %i "$A/HEAD/app/db/host")" "the inode of at/HEAD/app/db/host once HEAD moved"
assert_eq value-4 "$(cat <&7)" "a file opened at the old HEAD"
exec 7<&-
"$GITKV" -C "$store" set app/db/host value-6
assert_shows value-6 "$A/HEAD/app/db/host" "at/HEAD/app/db/host after a commit by the CLI"
assert_content value-5 "$A/HEAD~1/app/db/host" "at/HEAD~1/app/db/host after a commit by the CLI"
assert_match ' set app/db/host$' "$(head -n1 "$H/app/db/host")" "history/app/db/host after the CLI's commit"
assert_eq "$(git_history app/db/host)" "$(cat "$H/app/db/host")" "history/app/db/host after more commits"
# (stat, not find's %i: that may be readdir's d_ino of a name not looked up yet)
real=$(cd "$M" && find . -path ./.gitkv -prune -o -print0 | xargs -0 stat -c %i | sort -u)
virt=$(cd "$M/.gitkv" && find . "$A/HEAD" "$A/HEAD~1" -print0 | xargs -0 stat -c %i | sort -u)
assert_eq "" "$(comm -12 <(echo "$real") <(echo "$virt"))" "inode numbers shared by keys and /.gitkv"
ok "at/HEAD and at/HEAD~N follow HEAD as it moves; their inodes are not the keys'"

# --- at/ lists nothing; find terminates ------------------------------------------------------------
assert_eq "" "$(ls -A "$A")" "ls at"
timeout 60 find "$M" >"$T/find.out" 2>"$T/find.err" || fail "find over the mount failed: $(cat "$T/find.err")"
grep -qxF "$A" "$T/find.out" || fail "find does not list at/"
! grep -qF "$A/" "$T/find.out" || fail "find descended into at/: $(grep -F "$A/" "$T/find.out" | head -3)"
grep -qxF "$H/app/db/host" "$T/find.out" || fail "find does not list history/app/db/host"
ok "at/ lists nothing, so find over the whole mount terminates and does not enter it"

# --- unknown revisions -------------------------------------------------------------------------
assert_fails_with ENOENT cat "$A/no-such-rev/app/db/host"
assert_errno ENOENT read "$A/0123456789abcdef0123456789abcdef01234567/app/db/host"
assert_errno ENOENT read "$A/HEAD~1000/app/db/host"
assert_errno ENOENT read "$A/HEAD/app/db/no-such-key"
[[ ! -e $A/no-such-rev ]] || fail "at/no-such-rev exists"
[[ ! -e $A/later ]] || fail "at/later exists before the tag"
git -C "$store" tag later HEAD
assert_shows value-6 "$A/later/app/db/host" "a tag created after a failed lookup of its name"
ok "an unknown revision or key at a revision is ENOENT, and a new tag resolves at once"

# --- the control tree is read-only and commits nothing ---------------------------------------------
head=$(head_of "$store")
commits=$(commit_count "$store")
assert_fails_with EROFS bash -c 'echo x >"$1"' bash "$A/HEAD/app/db/host"
assert_fails_with EROFS bash -c 'echo x >"$1"' bash "$H/app/db/host"
assert_fails_with EROFS bash -c 'echo x >"$1"' bash "$A/HEAD/app/new"
assert_fails_with EROFS touch "$M/.gitkv/status"
assert_fails_with EROFS touch "$A/HEAD/app/db/host"
assert_fails_with EROFS touch "$H/app/new"
assert_fails_with EROFS mkdir "$A/HEAD/app/newdir"
assert_fails_with EROFS mkdir "$H/newdir"
assert_fails_with EROFS mkdir "$A/newrev"
assert_fails_with EROFS rm -f "$A/HEAD/app/db/host"
assert_fails_with EROFS rm -f "$H/app/db/host"
assert_fails_with EROFS mv "$A/HEAD/app/db/host" "$A/HEAD/app/db/moved"
assert_fails_with EROFS mv "$H/app" "$H/moved"
assert_fails_with EROFS mv "$M/other" "$A/HEAD/app/"
assert_fails_with EROFS mv "$A/HEAD/app/run" "$M/stolen"
assert_errno EROFS truncate "$A/HEAD/app/db/host" 0
assert_errno EROFS chmod "$A/HEAD/app/run" 644
assert_errno EROFS symlink x "$H/app/newlink"
assert_errno EROFS rmdir "$A/HEAD/app/empty"
assert_errno EROFS unlink "$H/app/db/port"
"$PYTHON" - "$A/HEAD/app/db/host" "$H/app/db/host" <<'EOF' || fail "setxattr in the control tree was not EROFS"
import errno, os, sys
for path in sys.argv[1:]:
    try:
        os.setxattr(path, "user.gitkv.ttl", b"60")
    except OSError as e:
        if e.errno != errno.EROFS:
            sys.exit("%s: %s" % (path, os.strerror(e.errno)))
    else:
        sys.exit("%s: setxattr succeeded" % path)
EOF
assert_eq "$head" "$(head_of "$store")" "HEAD after the refused changes"
assert_eq "$commits" "$(commit_count "$store")" "commits after the refused changes"
assert_shows value-6 "$M/app/db/host" "app/db/host after the refused changes"
[[ -x $M/app/run && -e $M/other && ! -e $M/stolen ]] || fail "a refused change touched the keys"
assert_fsck "$store"
ok "writes, create, mkdir, rm, mv, chmod, truncate and setxattr in /.gitkv fail with EROFS; nothing commits"

stop_daemon "$M"
