#!/bin/bash
# The gitkv command line over the bare repository, alone and while the store
# is mounted: init, get, set (argument or stdin), rm, ls [-r] [PREFIX],
# history. Exit codes: 0 ok, 1 key not found, 2 usage, 3 any other error;
# every error is one line on stderr.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

store=$T/store.git
M=$T/mnt
kv() { "$GITKV" -C "$store" "$@"; }

# expect_exit CODE WHAT CMD... - CMD exits with CODE; when CODE is not 0 it
# prints exactly one line on stderr and nothing on stdout.
expect_exit() {
	local want=$1 what=$2 rc=0 lines
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	assert_eq "$want" "$rc" "exit status of $what (stderr: $(cat "$T/err"))"
	if [[ $want -ne 0 ]]; then
		lines=$(wc -l <"$T/err")
		assert_eq 1 "$lines" "lines on stderr for $what ($(cat "$T/err"))"
		[[ ! -s $T/out ]] || fail "$what printed on stdout: $(cat "$T/out")"
	fi
}

# --- init ---------------------------------------------------------------------
expect_exit 0 "gitkv -C STORE init" kv init
assert_eq true "$(git -C "$store" rev-parse --is-bare-repository)" "gitkv -C STORE init makes a bare repository"
ok "gitkv -C STORE init creates a bare store"

# --- set / get on the bare repository -------------------------------------------
expect_exit 0 "gitkv set" kv set app/db/host localhost
assert_eq localhost "$(kv get app/db/host)" "gitkv get returns what gitkv set stored"
assert_eq 1 "$(commit_count "$store")" "one set, one commit"
assert_eq "set app/db/host" "$(git -C "$store" log -1 --format=%s)" "the CLI's commit message"
assert_eq localhost "$(git -C "$store" show HEAD:app/db/host)" "the blob holds the value"
ok "gitkv set KEY VALUE / get KEY round-trip on the bare repository"

printf 'from stdin' | kv set app/stdin || fail "gitkv set KEY < stdin failed"
assert_eq "from stdin" "$(kv get app/stdin)" "a value set from stdin"
assert_eq "from stdin" "$(git -C "$store" show HEAD:app/stdin)" "the stdin value is committed byte for byte"
printf 'two\nlines\n' | kv set app/multi
kv get app/multi >"$T/multi"
printf 'two\nlines\n' | cmp - "$T/multi" || fail "a multi-line value from stdin does not round-trip"
ok "gitkv set KEY reads the value from stdin"

head -c 100000 /dev/urandom >"$T/bin"
printf '\0\n\377' >>"$T/bin"
kv set app/bin <"$T/bin" || fail "gitkv set of a binary value failed"
kv get app/bin >"$T/bin.out" || fail "gitkv get of a binary value failed"
cmp "$T/bin" "$T/bin.out" || fail "a binary value does not round-trip through gitkv"
git -C "$store" cat-file blob HEAD:app/bin | cmp - "$T/bin" || fail "the binary blob differs"
: | kv set app/empty || fail "gitkv set of an empty value failed"
assert_eq 0 "$(kv get app/empty | wc -c)" "an empty value"
expect_exit 0 "gitkv get of an empty value" kv get app/empty
ok "binary and empty values round-trip through stdin"

before=$(commit_count "$store")
kv set app/db/host localhost
assert_eq "$before" "$(commit_count "$store")" "setting the same value commits nothing"
ok "gitkv set of an unchanged value makes no commit"

# --- ls --------------------------------------------------------------------------
kv set app/db/port 5432
kv set top v
strip() { sed 's:/$::' | sort; }
assert_eq "app top" "$(kv ls | strip | tr '\n' ' ' | sed 's/ $//')" "gitkv ls lists the top level"
assert_eq "bin db empty multi stdin" "$(kv ls app | strip | sed 's:^app/::' | tr '\n' ' ' | sed 's/ $//')" \
	"gitkv ls app lists a prefix"
assert_eq "app/bin app/db/host app/db/port app/empty app/multi app/stdin top" \
	"$(kv ls -r | strip | tr '\n' ' ' | sed 's/ $//')" "gitkv ls -r lists every key"
assert_eq "app/db/host app/db/port" "$(kv ls -r app/db | strip | tr '\n' ' ' | sed 's/ $//')" \
	"gitkv ls -r PREFIX lists the keys below PREFIX"
ok "gitkv ls [-r] [PREFIX] lists keys"

# --- rm ------------------------------------------------------------------------------
expect_exit 0 "gitkv rm" kv rm top
assert_eq "delete top" "$(git -C "$store" log -1 --format=%s)" "the CLI's rm message"
expect_exit 1 "gitkv get of a removed key" kv get top
ok "gitkv rm KEY removes a key"

# --- history ---------------------------------------------------------------------------
kv set app/db/host db1
kv set other x
kv set app/db/host db2
kv history app/db/host >"$T/hist" || fail "gitkv history failed"
assert_eq 3 "$(wc -l <"$T/hist")" "gitkv history prints one line per commit that changed the key"
mapfile -t commits < <(git -C "$store" log --format=%H -- app/db/host)
for n in 0 1 2; do
	short=${commits[$n]:0:7}
	sed -n "$((n + 1))p" "$T/hist" | grep -q "$short" ||
		fail "history line $((n + 1)) does not name commit $short (newest first): $(cat "$T/hist")"
done
ok "gitkv history KEY prints one line per commit, newest first"

# --- exit codes and errors --------------------------------------------------------------
expect_exit 1 "gitkv get of a missing key" kv get no/such/key
expect_exit 1 "gitkv rm of a missing key" kv rm no/such/key
grep -q 'no/such/key' "$T/err" || fail "the not-found message does not name the key: $(cat "$T/err")"
expect_exit 1 "gitkv history of a missing key" kv history no/such/key
expect_exit 2 "an unknown command" kv frobnicate
expect_exit 2 "gitkv get without a key" kv get
expect_exit 2 "gitkv rm without a key" kv rm
# No command at all asks for the usage, like git: exit 2, usage on stderr.
rc=0
kv >"$T/out" 2>"$T/err" || rc=$?
assert_eq 2 "$rc" "exit status of gitkv without a command"
grep -qi usage "$T/err" || fail "gitkv without a command prints no usage: $(cat "$T/err")"
expect_exit 2 "gitkv set with too many arguments" kv set a b c
mkdir "$T/plain"
expect_exit 3 "gitkv -C on a directory that is not a repository" "$GITKV" -C "$T/plain" get k
expect_exit 3 "gitkv -C on a missing path" "$GITKV" -C "$T/missing" get k
[[ ! -e $T/missing ]] || fail "gitkv get created the missing store"
rc=0
kv set .git/x v 2>"$T/err" || rc=$?
[[ $rc -ne 0 ]] || fail "gitkv set .git/x succeeded"
assert_eq 1 "$(wc -l <"$T/err")" "lines on stderr for an invalid key"
git -C "$store" cat-file -e HEAD:.git/x 2>/dev/null && fail "an invalid key was committed"
ok "exit codes: 1 not found, 2 usage, 3 other errors; each error one line on stderr"

# --- while mounted ----------------------------------------------------------------------
start_daemon "$store" "$M" node=testnode
assert_eq db2 "$(cat "$M/app/db/host")" "the mount shows what the CLI set"
cmp "$T/bin" "$M/app/bin" || fail "the mount shows a different binary value"
echo via-mount >"$M/app/m"
assert_eq via-mount "$(kv get app/m)" "gitkv get sees a mount write at once"
kv set app/c via-cli
wait_until 2 grep -qx via-cli "$M/app/c" || fail "a gitkv set is not visible in the mount within 2 s"
kv rm app/c
wait_until 2 not test -e "$M/app/c" || fail "a gitkv rm is not visible in the mount within 2 s"
kv history app/m >"$T/hist"
assert_eq 1 "$(wc -l <"$T/hist")" "gitkv history of a key written through the mount"
ls_cli=$(kv ls -r app | strip | tr '\n' ' ')
ls_mnt=$(cd "$M" && find app -type f | sort | tr '\n' ' ')
assert_eq "$ls_mnt" "$ls_cli" "gitkv ls -r and find on the mount agree"
expect_exit 1 "gitkv get of a missing key while mounted" kv get no/such/key
assert_fsck "$store"
stop_daemon "$M"
ok "gitkv works on the store while it is mounted, and the two agree"
