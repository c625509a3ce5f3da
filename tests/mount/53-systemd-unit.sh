#!/bin/bash
# examples/gitkvfs@.service does what its comments say, run the way systemd
# runs it (there is no systemd to run it here): ExecStartPre makes the mount
# point, ExecStart mounts the store with the options of
# /etc/default/gitkvfs-NAME, ExecStartPost succeeds once the mount serves,
# and fails at once (not after its 30 s) when the daemon exits instead;
# KillSignal unmounts with exit status 0; after a crash, ExecStopPost
# removes the dead mount so that a restart mounts again.
#
# The unit is read from a copy in which /var/lib/gitkv, /srv/gitkv,
# /etc/default and /usr/bin/gitkvfs name places in the test's directory.
# Its command lines are split as systemd splits them (specifiers, $$,
# $VAR, quotes, EnvironmentFile=) by the small parser below, which knows
# what the unit uses.
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse
if ((EUID != 0)); then
	echo "skip - $TEST_NAME: the unit runs as root (allow_other needs root, or user_allow_other)"
	exit 77
fi

unit=$TESTS_DIR/../examples/gitkvfs@.service
[[ -f $unit ]] || fail "$unit is missing"
sed -e "s#/var/lib/gitkv/#$T/var/lib/gitkv/#g" -e "s#/srv/gitkv#$T/srv/gitkv#g" \
	-e "s#/etc/default/#$T/etc/default/#g" -e "s#/usr/bin/gitkvfs #$GITKVFS #g" \
	"$unit" >"$T/gitkvfs@.service"
mkdir -p "$T/var/lib/gitkv" "$T/etc/default"

cat >"$T/unit_command.py" <<'EOF'
# unit_command.py UNIT KEY INSTANCE - the unit's KEY= command for INSTANCE,
# as NUL-separated fields: "-" when the unit ignores the command's failure
# (else "+"), the number of variables its EnvironmentFile= sets, those
# variables as NAME=VALUE, then the argv.
import os, re, shlex, sys

path, key, instance = sys.argv[1:]


def specifiers(s):
    return re.sub(r"%(.)", lambda m: {"i": instance, "%": "%"}[m.group(1)], s)


section, value, envfiles = None, None, []
for line in open(path):
    line = line.strip()
    if line.startswith("["):
        section = line
    elif section == "[Service]" and line.startswith(key + "="):
        value = line[len(key) + 1:]
    elif section == "[Service]" and line.startswith("EnvironmentFile="):
        envfiles.append(specifiers(line[len("EnvironmentFile="):]))
if value is None:
    sys.exit("no %s= in [Service]" % key)

env = {}
for f in envfiles:  # NAME=VALUE lines; the value is the rest of the line
    optional = f.startswith("-")
    f = f.lstrip("-")
    if optional and not os.path.exists(f):
        continue
    for line in open(f):
        line = line.strip()
        if line and not line.startswith(("#", ";")):
            name, _, val = line.partition("=")
            val = val.strip()
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "'\"":
                val = val[1:-1]
            env[name.strip()] = val

ignore = "+"
while value and value[0] in "-@:+!":
    if value[0] == "-":
        ignore = "-"
    value = value[1:]
args = []
for word in shlex.split(specifiers(value).replace("$$", "\0")):
    m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
    if m:  # $VAR as a word: the variable's value, split at whitespace
        args += env.get(m.group(1), "").split()
        continue
    word = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word)
    args.append(word.replace("\0", "$"))
fields = [ignore, str(len(env))] + ["%s=%s" % kv for kv in env.items()] + args
sys.stdout.write("\0".join(fields) + "\0")
EOF

# unit_argv KEY INSTANCE [MAINPID] - set $ignore ("-" when the unit ignores
# the command's failure) and $argv: the command under env(1), with the
# environment systemd would give it.
unit_argv() {
	local -a fields
	mapfile -d '' fields < <("$PYTHON" "$T/unit_command.py" "$T/gitkvfs@.service" "$1" "$2")
	[[ ${#fields[@]} -ge 3 ]] || fail "cannot read $1= from the unit"
	ignore=${fields[0]}
	local n=${fields[1]}
	argv=(env "${fields[@]:2:n}")
	if [[ -n ${3:-} ]]; then
		argv+=("MAINPID=$3")
	fi
	argv+=("${fields[@]:2+n}")
}

# run_unit_command KEY INSTANCE [MAINPID] - run the command; its exit
# status, 0 when the unit ignores its failure.
run_unit_command() {
	local rc=0
	unit_argv "$@"
	"${argv[@]}" || rc=$?
	[[ $ignore == - ]] && return 0
	return $rc
}

# start_unit INSTANCE - ExecStartPre, then ExecStart in the background
# (pid in $main, output in $T/NAME.log), as systemd starts a Type=simple
# service; ExecStartPost is left to the caller.
start_unit() {
	local name=$1 log=$T/$1.log
	run_unit_command ExecStartPre "$name" || fail "ExecStartPre failed for $name"
	unit_argv ExecStart "$name"
	ALL_LOGS+=("$log")
	"${argv[@]}" </dev/null >"$log" 2>&1 &
	main=$!
	DAEMON_PID[$T/srv/gitkv/$name]=$main
	DAEMON_LOG[$T/srv/gitkv/$name]=$log
}

assert_eq "SIGTERM" "$(sed -n 's/^KillSignal=//p' "$unit")" "the unit stops gitkvfs with SIGTERM"
assert_eq "simple" "$(sed -n 's/^Type=//p' "$unit")" "the unit is Type=simple"

store=$T/var/lib/gitkv/app.git
mnt=$T/srv/gitkv/app
"$GITKV" init "$store" >/dev/null
echo hello | "$GITKV" -C "$store" set greeting
echo 'GITKVFS_OPTIONS=-o node=unitnode' >"$T/etc/default/gitkvfs-app"

# ---- start -----------------------------------------------------------------

start_unit app
[[ -d $mnt ]] || fail "ExecStartPre did not make the mount point $mnt"
rc=0
run_unit_command ExecStartPost app "$main" 2>"$T/post.err" || rc=$?
assert_eq 0 "$rc" "ExecStartPost with the daemon up ($(cat "$T/post.err"))"
assert_content hello "$mnt/greeting" "the key, read as soon as ExecStartPost succeeded"
echo world >"$mnt/written"
assert_match 'Gitkv-Node: unitnode' "$(git -C "$store" show -s --format=%B HEAD)" \
	"the options of /etc/default/gitkvfs-NAME reached gitkvfs"
ok "the unit mounts /var/lib/gitkv/NAME.git on /srv/gitkv/NAME; ExecStartPost waits for the mount"

# ---- stop ------------------------------------------------------------------

# stop_daemon's way to stop: the unit's KillSignal to the main process.
sigterm() { kill -TERM "${DAEMON_PID[$1]}"; }
stop_daemon "$mnt" sigterm
run_unit_command ExecStopPost app || fail "ExecStopPost failed although its failure is to be ignored"
assert_eq world "$(git -C "$store" show HEAD:written)" "the write is committed after stop"
ok "SIGTERM (KillSignal) unmounts and gitkvfs exits 0; ExecStopPost is harmless then"

# ---- a daemon that cannot start ---------------------------------------------

start_unit missing
rc=0
run_unit_command ExecStartPost missing "$main" 2>"$T/post.err" || rc=$?
[[ $rc -ne 0 ]] || fail "ExecStartPost succeeded although gitkvfs could not start"
if grep -q 'not mounted after' "$T/post.err"; then
	fail "ExecStartPost waited for its bound although gitkvfs had exited"
fi
wait "$main" 2>/dev/null || true
unset "DAEMON_PID[$T/srv/gitkv/missing]"
assert_match "cannot open store '$T/var/lib/gitkv/missing.git'" "$(cat "$T/missing.log")" \
	"gitkvfs says why, in the service's log"
ok "ExecStartPost fails as soon as gitkvfs exits (a missing store)"

# ---- a crash, then the restart ------------------------------------------------

start_unit app
run_unit_command ExecStartPost app "$main" || fail "ExecStartPost failed on the second start"
kill -KILL "$main"
wait "$main" 2>/dev/null || true
unset "DAEMON_PID[$mnt]"
assert_errno ENOTCONN read "$mnt/greeting"
run_unit_command ExecStopPost app
mountpoint -q "$mnt" && fail "ExecStopPost left the dead mount on $mnt"
start_unit app
run_unit_command ExecStartPost app "$main" || fail "ExecStartPost failed after the restart"
assert_content hello "$mnt/greeting" "the key after the restart"
stop_daemon "$mnt" sigterm
assert_fsck "$store"
ok "after a crash ExecStopPost removes the dead mount and the restart mounts again"
