#!/bin/bash
# The configuration file (gitkvfs.conf(5)). The sample examples/gitkvfs.conf
# loads and mounts as it is, and with every default it shows switched on;
# the file's settings apply (node name, max_value_size, ignore patterns, ro,
# FUSE flags, the store when only the mount point is given, paths relative
# to the file); -o wins over the file; uid, gid and umask decide what every
# file shows, and chown / chmod to what is shown stay no-ops. A broken file
# (syntax error, unknown setting, wrong type, bad value, missing file) makes
# gitkvfs exit 2 with one line "gitkvfs: PATH:LINE: what is wrong", mounting
# nothing and committing nothing.
#
# Every mount here names its file with config=, so a /etc/gitkvfs.conf on
# the machine plays no part.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

EXAMPLE=$TESTS_DIR/../examples/gitkvfs.conf
[[ -f $EXAMPLE ]] || fail "examples/gitkvfs.conf is missing"

store=$T/store.git
hub=$T/hub.git
M=$T/mnt
"$GITKV" init "$store"
"$GITKV" init "$hub"
"$GITKV" init "$T/other.git"
mkdir -p "$M"
# gitkvfs resolves the paths it is given
hub_real=$(realpath "$hub")
other_real=$(realpath "$T/other.git")

# conf NAME - write stdin to $T/NAME.conf and print its path.
conf() {
	cat >"$T/$1.conf"
	echo "$T/$1.conf"
}

trailer() { # trailer KEY - the value of a trailer of HEAD's commit in the store
	git -C "$store" log -1 --format="%(trailers:key=$1,valueonly)" | sed '/^$/d'
}

# status_of MNT EXPR - the python expression EXPR over MNT/.gitkv/status (as `s`).
status_of() {
	"$PYTHON" -c 'import json, sys; s = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$1/.gitkv/status" "$2"
}

# mount_options MNT - the options /proc/mounts lists for MNT, one a line.
mount_options() {
	awk -v m="$1" '$2 == m { print $4 }' /proc/mounts | tr , '\n'
}

# holds REPO KEY VALUE - the branch of bare repository REPO has KEY = VALUE.
holds() {
	[[ $(git -C "$1" show "main:$2" 2>/dev/null) == "$3" ]]
}

# --- the sample loads and mounts -----------------------------------------------------
# It names a store under /var/lib and an ssh hub: the operand STORE wins over
# the one, -o remote= replaces the other.
start_daemon "$store" "$M" "config=$EXAMPLE" "remote=hub=$hub" sync_interval=1
assert_eq "[('hub', '$hub_real')]" "$(status_of "$M" '[(r["name"], r["url"]) for r in s["remotes"]]')" \
	"the remotes of a mount with the sample and -o remote="
assert_eq async "$(status_of "$M" 's["sync_mode"]')" "sync_mode with the sample"
mkdir "$M/app"
echo v1 >"$M/app/port"
assert_eq v1 "$(git -C "$store" show HEAD:app/port)" "the write is committed to the operand STORE"
wait_until 15 holds "$hub" app/port v1 || fail "the hub given with -o remote= did not get the write"
stop_daemon "$M"
ok "examples/gitkvfs.conf mounts as it is; the STORE operand and -o remote= win over its store and remotes"

# Each "#name = value;" line of the sample is a default: switched on, it
# changes nothing.
n=$(grep -cE '^#[a-z_]+ = ' "$EXAMPLE")
((n >= 15)) || fail "the sample shows only $n settings at their default"
sed -E 's/^#([a-z_]+ = )/\1/' "$EXAMPLE" >"$T/defaults.conf"
start_daemon "$store" "$M" "config=$T/defaults.conf" "remote=hub=$hub"
assert_eq "async 1" "$(status_of "$M" '"%s %s" % (s["sync_mode"], s["quorum"])')" \
	"sync_mode and quorum with every default of the sample"
assert_eq 644 "$(stat -c %a "$M/app/port")" "a value's mode with the sample's defaults"
assert_eq "$(id -u) $(id -g)" "$(stat -c '%u %g' "$M/app/port")" "the owner with the sample's defaults"
echo v2 >"$M/app/port"
echo swap >"$M/app/.port.swp"
assert_eq v2 "$(git -C "$store" show HEAD:app/port)" "a write with every default switched on"
[[ -z $(tree_paths "$store" | grep -F .port.swp) ]] || fail "the default ignore list did not keep .port.swp out"
stop_daemon "$M"
ok "every default the sample shows ($n settings) loads and behaves as the default"

# --- the file's settings apply; -o wins over them ---------------------------------------------
cfg=$(conf values <<'EOF'
// a node, a smaller value limit, and an ignore list of its own
node = "filenode";
max_value_size = 16;
ignore = [ "*.bak" ];
entry_timeout = 5;
attr_timeout = 2.5;
EOF
)
start_daemon "$store" "$M" "config=$cfg"
echo one >"$M/a"
assert_eq filenode "$(trailer Gitkv-Node)" "Gitkv-Node with node set in the file"
assert_eq filenode "$(status_of "$M" 's["node"]')" "the node in .gitkv/status"
assert_errno OK writesize "$M/sixteen" 16
assert_errno EFBIG writesize "$M/seventeen" 17
echo tmp >"$M/notes.bak"
echo kept >"$M/b~"
tree_paths "$store" | grep -qx 'b~' || fail "b~ was not committed: the file's ignore list must replace the defaults"
tree_paths "$store" | grep -qx 'notes.bak' && fail "notes.bak was committed despite ignore = [ \"*.bak\" ]"
stop_daemon "$M"
ok "the file's node, max_value_size and ignore apply"

start_daemon "$store" "$M" "config=$cfg" node=clinode
echo two >"$M/a"
assert_eq clinode "$(trailer Gitkv-Node)" "Gitkv-Node with node= in the file and -o node="
assert_eq clinode "$(status_of "$M" 's["node"]')" "the node in .gitkv/status with -o node="
assert_errno EFBIG writesize "$M/seventeen" 17
stop_daemon "$M"
ok "-o node= wins over the file's node; the file's other settings still apply"

# A read-only mount and FUSE's flags, from the file.
cfg=$(conf flags <<'EOF'
ro = true;
default_permissions = true;
EOF
)
start_daemon "$store" "$M" "config=$cfg"
mount_options "$M" | grep -qx ro || fail "ro = true did not make the mount read-only: $(mount_options "$M" | tr '\n' ,)"
mount_options "$M" | grep -qx default_permissions ||
	fail "default_permissions = true did not reach the mount: $(mount_options "$M" | tr '\n' ,)"
assert_errno EROFS write "$M/a" three
assert_content two "$M/a" "a key of a read-only mount"
stop_daemon "$M"
ok "ro and default_permissions in the file reach the mount"

# --- STORE from the file; paths relative to the file ---------------------------------
mkdir -p "$T/etc" "$T/mnt2"
cat >"$T/etc/app.conf" <<'EOF'
store = "../other.git";
remotes = ( { name = "up"; url = "../hub.git"; } );
EOF
rc=0
timeout 20 "$GITKVFS" -o config="$T/etc/app.conf" "$T/mnt2" </dev/null >"$T/out" 2>"$T/err" || rc=$?
assert_eq 0 "$rc" "gitkvfs -o config=FILE MOUNTPOINT (the store from the file): exit status ($(cat "$T/err"))"
mountpoint -q "$T/mnt2" || fail "gitkvfs -o config=FILE MOUNTPOINT did not mount"
assert_eq "$other_real" "$(awk -v m="$T/mnt2" '$2 == m { print $1 }' /proc/mounts)" \
	"the source of the mount (the file's store, relative to the file)"
assert_eq "[('up', '$hub_real')]" \
	"$(status_of "$T/mnt2" '[(r["name"], r["url"]) for r in s["remotes"]]')" \
	"a remote given as a path relative to the file"
echo here >"$T/mnt2/from-file"
assert_eq here "$(git -C "$T/other.git" show HEAD:from-file)" "the write lands in the file's store"
pid=$(_gitkvfs_pids_under "$T/mnt2")
[[ -n $pid ]] || fail "no gitkvfs process serves $T/mnt2"
fusermount3 -u "$T/mnt2"
wait_until 10 not _alive "$pid" || fail "gitkvfs (pid $pid) still runs 10 s after the unmount"
ok "with one operand, the store comes from the file; the file's relative paths are relative to it"

# --- uid, gid, umask -----------------------------------------------------------------
cfg=$(conf owner <<'EOF'
uid = 1234;
gid = 2345;
umask = "027";
EOF
)
start_daemon "$store" "$M" "config=$cfg"
mkdir "$M/dir"
echo v >"$M/dir/key"
echo '#!/bin/sh' >"$M/run"
chmod +x "$M/run"
ln -s dir/key "$M/link"
for path in "$M" "$M/dir" "$M/dir/key" "$M/run" "$M/.gitkv" "$M/.gitkv/status"; do
	assert_eq "1234 2345" "$(stat -c '%u %g' "$path")" "the owner of ${path#$T/}"
done
assert_eq 750 "$(stat -c %a "$M")" "the mode of the root under umask 027"
assert_eq 750 "$(stat -c %a "$M/dir")" "the mode of a directory under umask 027"
assert_eq 640 "$(stat -c %a "$M/dir/key")" "the mode of a value under umask 027"
assert_eq 750 "$(stat -c %a "$M/run")" "the mode of an executable value under umask 027"
assert_eq 777 "$(stat -c %a "$M/link")" "the mode of a symbolic link"
assert_eq 550 "$(stat -c %a "$M/.gitkv")" "the mode of the control directory under umask 027"
assert_eq 440 "$(stat -c %a "$M/.gitkv/status")" "the mode of a control file under umask 027"
assert_eq 100755 "$(git -C "$store" ls-tree HEAD run | awk '{ print $1 }')" "chmod +x under the umask commits the exec bit"
before=$(commit_count "$store")
assert_errno OK chown "$M/dir/key" 1234 2345
assert_errno OK chmod "$M/dir/key" 640
assert_errno OK chmod "$M/run" 750
assert_eq "$before" "$(commit_count "$store")" "commits after chown and chmod to what is shown"
assert_eq "640 750" "$(stat -c %a "$M/dir/key") $(stat -c %a "$M/run")" "the modes after chmod to what is shown"
assert_errno EPERM chown "$M/dir/key" 0 0
assert_errno EPERM chown "$M/dir/key" 1234 0
assert_errno EPERM chmod "$M/dir/key" 600
stop_daemon "$M"
ok "uid, gid and umask from the file: every file shows them; chown and chmod to them change nothing"

# -o wins: a user by name, another umask.
user=$(getent passwd | awk -F: -v me="$(id -u)" '$3 != me && $3 != 1234 { print $1 ":" $3; exit }')
if [[ -n $user ]]; then
	start_daemon "$store" "$M" "config=$cfg" "uid=${user%%:*}" umask=077
	assert_eq "${user#*:} 2345" "$(stat -c '%u %g' "$M/dir/key")" "the owner with -o uid=${user%%:*} over the file's uid"
	assert_eq "600 700" "$(stat -c %a "$M/dir/key") $(stat -c %a "$M/dir")" "the modes with -o umask=077 over the file's"
	assert_errno OK chown "$M/dir/key" "${user#*:}" 2345
	stop_daemon "$M"
	ok "-o uid=NAME and -o umask= win over the file's uid and umask"
else
	note "no other user in the password database: -o uid=NAME not tried"
fi

# --- config= alone reads no file -------------------------------------------------------------
start_daemon "$store" "$M" config= node=nofile
echo x >"$M/c"
assert_eq nofile "$(trailer Gitkv-Node)" "a write with config= alone"
stop_daemon "$M"
ok "-o config= alone mounts without reading a file"

# --- broken files ------------------------------------------------------------------------
# config_fails WHAT LINE REGEX FILE [OPTION...] - gitkvfs -f -o config=FILE
# STORE MNT (and -o OPTION...) exits 2 within 20 s with exactly one line on
# stderr, "gitkvfs: FILE:LINE: ..." (LINE empty: "gitkvfs: FILE: ...")
# matching REGEX; nothing is mounted and nothing committed.
config_fails() {
	local what=$1 line=$2 cause=$3 file=$4 rc=0 before err prefix o
	shift 4
	local -a args=(-o "config=$file")
	for o in "$@"; do
		args+=(-o "$o")
	done
	before=$(head_of "$store")
	timeout 20 "$GITKVFS" -f "${args[@]}" "$store" "$M" </dev/null >"$T/out" 2>"$T/err" || rc=$?
	[[ $rc -ne 124 ]] || fail "$what: gitkvfs did not exit within 20 s"
	err=$(cat "$T/err")
	assert_eq 2 "$rc" "$what: exit status ($err)"
	assert_eq 1 "$(wc -l <"$T/err")" "$what: lines on stderr ($err)"
	prefix="gitkvfs: $file:${line:+$line: }"
	[[ $err == "$prefix"* ]] || fail "$what: '$err' does not start with '$prefix'"
	[[ $err =~ $cause ]] || fail "$what: '$err' does not match /$cause/"
	if mountpoint -q "$M"; then
		fusermount3 -uz "$M"
		fail "$what: $M was mounted"
	fi
	assert_eq "$before" "$(head_of "$store")" "$what: HEAD of the store"
}

f=$(conf syntax <<'EOF'
node = "a";
sync_interval = 5;
quorum = = 2;
EOF
)
config_fails "a syntax error" 3 'syntax error' "$f"
ok "a syntax error: exit 2, 'gitkvfs: FILE:3: syntax error', nothing mounted"

f=$(conf unknown <<'EOF'
# the interval, misspelt
node = "a";
sync_intervall = 5;
EOF
)
config_fails "an unknown setting" 3 "unknown setting 'sync_intervall'" "$f"
f=$(conf unknown2 <<'EOF'
remotes = ( { name = "hub"; url = "/srv/hub.git"; branch = "main"; } );
EOF
)
config_fails "an unknown setting in a remote" 1 "unknown setting 'branch'" "$f"
f=$(conf inner <<'EOF'
config = "other.conf";
EOF
)
config_fails "config inside the file" 1 'config cannot be set' "$f"
ok "an unknown setting (at the top, in a remote, config itself): exit 2, its line, nothing mounted"

# wrong_type NAME LINE-TEXT REGEX
wrong_type() {
	local f
	f=$(printf '# %s\n%s\n' "$1" "$2" | conf "type-$1")
	config_fails "a wrong type ($2)" 2 "$3" "$f"
}
wrong_type sync_interval 'sync_interval = "5";' 'sync_interval must be an integer, not a string'
wrong_type fsync 'fsync = 1;' 'fsync must be true or false, not an integer'
wrong_type entry_timeout 'entry_timeout = "1h";' 'entry_timeout must be a number, not a string'
wrong_type node 'node = [ "a" ];' 'node must be a string, not an array'
wrong_type umask 'umask = 027;' 'umask must be a string of octal digits'
wrong_type remotes 'remotes = "hub";' 'remotes must be a list of remotes, not a string'
wrong_type ignore 'ignore = [ 1, 2 ];' 'ignore: a pattern must be a string'
wrong_type uid 'uid = true;' 'uid must be a number or a name, not a boolean'
ok "a value of the wrong type: exit 2, 'gitkvfs: FILE:LINE: NAME must be ...', nothing mounted"

# bad_value NAME LINE-TEXT REGEX
bad_value() {
	local f
	f=$(printf '# %s\nfsync = false;\n%s\n' "$1" "$2" | conf "value-$1")
	config_fails "a bad value ($2)" 3 "$3" "$f"
}
bad_value sync_interval 'sync_interval = -1;' 'sync_interval must be between 1 and 86400'
bad_value sync_timeout 'sync_timeout = 0;' 'sync_timeout must be between 1 and 86400'
bad_value sync_mode 'sync_mode = "later";' "sync_mode must be 'async' or 'sync', not 'later'"
bad_value max_value_size 'max_value_size = 0;' 'max_value_size must be between 1 and'
bad_value max_value_size_wrap 'max_value_size = 4294967297;' 'max_value_size: the integer is too large'
bad_value entry_timeout 'entry_timeout = -0.5;' 'entry_timeout must be a number >= 0'
bad_value quorum 'quorum = 0;' 'quorum must be between 1 and'
bad_value umask 'umask = "0999";' "umask '0999' must be octal"
bad_value uid 'uid = "no-such-user-gitkv";' "uid 'no-such-user-gitkv' is neither a user nor a number"
bad_value gid 'gid = 4294967295;' 'gid: the integer is too large \(libconfig needs the suffix L'
bad_value gid64 'gid = 4294967295L;' "gid '4294967295' is neither a group nor a number from 0 to 4294967294"
bad_value node 'node = "web 1";' "node 'web 1' must not hold spaces"
bad_value ignore 'ignore = [ "a:b" ];' "ignore: pattern 'a:b' is not allowed to contain ':'"
bad_value credentials 'credentials_file = "no-such-file";' "credentials_file '$T/no-such-file': No such file"
bad_value remote_url 'remotes = ( { name = "hub"; } );' 'a remote needs a url'
bad_value remote_name 'remotes = ( { name = "my hub"; url = "/srv/hub.git"; } );' "remote name 'my hub' may hold only"
bad_value remote_password 'remote = "https://me:secret@example.com/app.git";' 'a password does not belong in the URL'
ok "a bad value: exit 2, 'gitkvfs: FILE:LINE: ...' naming the setting, nothing mounted"

# Problems between settings are reported at the setting that breaks the rule.
f=$(conf quorum <<EOF
sync_mode = "sync";
remotes = (
	{ name = "hub"; url = "$hub"; }
);
quorum = 2;
EOF
)
config_fails "a quorum larger than the remotes" 5 'quorum=2 is more than the 1 remote given' "$f"
f=$(conf sync-alone <<'EOF'
node = "a";
sync_mode = "sync";
EOF
)
config_fails "sync mode without a remote" 2 'sync_mode=sync needs at least one remote' "$f"
f=$(conf twice <<EOF
remotes = (
	{ name = "hub"; url = "$hub"; },
	{ name = "hub"; url = "$T/other.git"; }
);
EOF
)
config_fails "two remotes with one name" 3 "two remotes are named 'hub'" "$f"
f=$(conf both <<EOF
remote = "$hub";
remotes = ( "$T/other.git" );
EOF
)
config_fails "remote and remotes" 2 'the remotes are given already, at line 1' "$f"
ok "a quorum beyond the remotes, sync mode without one, a name twice, remote and remotes: exit 2 at the line"

# The file is checked whole, even where -o overrides it.
f=$(conf overridden <<'EOF'
sync_interval = -1;
EOF
)
config_fails "a bad value -o overrides" 1 'sync_interval must be between 1 and 86400' "$f" sync_interval=5
ok "a bad value in the file is an error even when -o overrides it"

# A file that is not there, or not a file.
config_fails "a missing file" "" 'No such file or directory' "$T/nope.conf"
config_fails "a directory" "" 'Is a directory' "$T/etc"
ok "config= naming a missing file or a directory: exit 2, 'gitkvfs: PATH: why', nothing mounted"

# Detached (no -f) the same: the error comes before anything else.
f=$T/unknown.conf
rc=0
timeout 20 "$GITKVFS" -o "config=$f" "$store" "$M" </dev/null >"$T/out" 2>"$T/err" || rc=$?
assert_eq 2 "$rc" "a broken file without -f: exit status ($(cat "$T/err"))"
assert_eq "gitkvfs: $f:3: unknown setting 'sync_intervall'" "$(cat "$T/err")" "a broken file without -f: stderr"
mountpoint -q "$M" && fail "a broken file without -f left $M mounted"
ok "without -f, a broken file fails the same way, before detaching"

assert_fsck "$store"
