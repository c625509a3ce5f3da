# tests/lib.sh - what every mounted test shares. Source it, then tell a story:
#
#	. "$(dirname "$0")/../lib.sh"
#	skip_unless_fuse
#	"$GITKV" init "$T/store.git"
#	start_daemon "$T/store.git" "$T/mnt" node=testnode
#	echo localhost > "$T/mnt/host"
#	assert_eq localhost "$(cat "$T/mnt/host")" "the value reads back"
#	ok "a written key reads back"
#	stop_daemon "$T/mnt"
#
# Each test gets its own temporary directory $T. start_daemon runs gitkvfs in
# the foreground (-f) in the background of the test, its output in a log file,
# and waits for the mount with a bound that also fails at once if the daemon
# died. On exit, whatever happened, a trap lazily unmounts what is still
# mounted, kills the daemons the test started (by pid), fails the test if a
# daemon log holds sanitizer reports, and removes $T.
#
# Environment: GITKVFS and GITKV name the binaries (CTest sets them; run by
# hand they default to the build tree beside the sources); PYTHON may name
# the python3 to use.
#
# Exit codes: 0 pass, 1 fail, 77 skip (no FUSE on this machine).

set -euo pipefail
umask 022
export LC_ALL=C

TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${GITKVFS:=$TESTS_DIR/../build/fs/gitkvfs}"
: "${GITKV:=$TESTS_DIR/../build/cli/gitkv}"
export GITKVFS GITKV

# Git must not read the machine's configuration.
export GIT_CONFIG_NOSYSTEM=1

# Python runs the system-call probes; the system's interpreter starts
# fastest, any python3 will do.
if [[ -z ${PYTHON:-} ]]; then
	if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi
fi

TEST_NAME=$(basename "$0" .sh)
T=$(mktemp -d "${TMPDIR:-/tmp}/gitkv-$TEST_NAME.XXXXXX")

declare -A DAEMON_PID=()	# mountpoint -> pid of its gitkvfs -f
declare -A DAEMON_LOG=()	# mountpoint -> log file
declare -a ALL_LOGS=()		# every daemon log of this test
DAEMON_SEQ=0

# ---- reporting -----------------------------------------------------------

ok() { printf 'ok - %s\n' "$*"; }

fail() {
	printf 'not ok - %s: %s\n' "$TEST_NAME" "$*" >&2
	exit 1
}

note() { printf '# %s\n' "$*"; }

# ---- cleanup ---------------------------------------------------------------

_scan_sanitizers() {
	local log found=0
	for log in "${ALL_LOGS[@]}"; do
		[[ -f $log ]] || continue
		if grep -qE 'ERROR: AddressSanitizer|runtime error:|LeakSanitizer|ERROR: ThreadSanitizer' "$log"; then
			printf 'not ok - %s: sanitizer report in %s:\n' "$TEST_NAME" "${log##*/}" >&2
			sed 's/^/#   /' "$log" | head -80 >&2
			found=1
		fi
	done
	return $found
}

_cleanup() {
	local rc=$1 mnt pid i
	set +e
	trap - EXIT
	# Lazily unmount everything still mounted below $T, deepest first.
	for mnt in $(awk -v t="$T" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r); do
		fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
	done
	for mnt in "${!DAEMON_PID[@]}"; do
		pid=${DAEMON_PID[$mnt]}
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < 100; i++)); do
			_alive "$pid" || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	# Daemons started without -f (daemonised): they exit once unmounted.
	for pid in $(_gitkvfs_pids_under "$T"); do
		for ((i = 0; i < 100; i++)); do
			_alive "$pid" || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null
	done
	if ! _scan_sanitizers; then
		[[ $rc -eq 0 || $rc -eq 77 ]] && rc=1
	fi
	if [[ $rc -ne 0 && $rc -ne 77 ]]; then
		for mnt in "${ALL_LOGS[@]}"; do
			[[ -s $mnt ]] || continue
			printf '# daemon log %s (last 40 lines):\n' "${mnt##*/}" >&2
			tail -n 40 "$mnt" | sed 's/^/#   /' >&2
		done
	fi
	cd /
	rm -rf "$T"
	exit "$rc"
}
trap '_cleanup $?' EXIT

# ---- processes -------------------------------------------------------------

# True while process $1 runs (a zombie counts as gone).
_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(awk '{ sub(/.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z ]]
}

# Pids of gitkvfs processes whose command line names a path below $1: the
# daemons this test started without -f. Used to wait for them and to clean
# up after them, never to signal anyone else's.
_gitkvfs_pids_under() {
	local dir=$1 p cmd
	for p in /proc/[0-9]*; do
		cmd=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
		[[ $cmd == *gitkvfs* && $cmd == *"$dir"* ]] || continue
		echo "${p#/proc/}"
	done
}

# ---- skipping --------------------------------------------------------------

# Exit 77 (skip) only when FUSE is truly absent from this machine.
skip_unless_fuse() {
	if [[ ! -c /dev/fuse ]]; then
		echo "skip - $TEST_NAME: /dev/fuse is absent"
		exit 77
	fi
	if ! command -v fusermount3 >/dev/null; then
		echo "skip - $TEST_NAME: fusermount3 is not installed"
		exit 77
	fi
	[[ -x $GITKVFS ]] || fail "gitkvfs binary not found at '$GITKVFS' (set GITKVFS)"
	[[ -x $GITKV ]] || fail "gitkv binary not found at '$GITKV' (set GITKV)"
}

# ---- the daemon ------------------------------------------------------------

# wait_for_mount MNT [PID] - wait (at most 10 s) until MNT is a mountpoint.
# Fails at once, printing the daemon's log, if the daemon exited first.
wait_for_mount() {
	local mnt=$1 pid=${2:-${DAEMON_PID[$1]:-}} i log=${DAEMON_LOG[$1]:-}
	for ((i = 0; i < 200; i++)); do
		if mountpoint -q "$mnt"; then
			return 0
		fi
		if [[ -n $pid ]] && ! _alive "$pid"; then
			local rc=0
			wait "$pid" 2>/dev/null || rc=$?
			unset 'DAEMON_PID[$mnt]'
			[[ -n $log ]] && sed 's/^/#   /' "$log" >&2
			fail "gitkvfs exited (status $rc) before $mnt was mounted"
		fi
		sleep 0.05
	done
	[[ -n $log ]] && sed 's/^/#   /' "$log" >&2
	fail "$mnt was not mounted within 10 s"
}

# start_daemon STORE MNT [OPTION...] - mount STORE at MNT with gitkvfs -f,
# each OPTION passed as `-o OPTION`. MNT is created if missing. Returns once
# the mount is up; the daemon's pid is in $DAEMON (and daemon_pid MNT).
start_daemon() {
	local store=$1 mnt=$2 opt log
	shift 2
	local -a args=(-f)
	for opt in "$@"; do
		args+=(-o "$opt")
	done
	mkdir -p "$mnt"
	DAEMON_SEQ=$((DAEMON_SEQ + 1))
	log=$T/daemon.$DAEMON_SEQ.log
	ALL_LOGS+=("$log")
	"$GITKVFS" "${args[@]}" "$store" "$mnt" </dev/null >"$log" 2>&1 &
	DAEMON=$!
	DAEMON_PID[$mnt]=$DAEMON
	DAEMON_LOG[$mnt]=$log
	wait_for_mount "$mnt" "$DAEMON"
}

daemon_pid() { echo "${DAEMON_PID[$1]}"; }
daemon_log() { echo "${DAEMON_LOG[$1]}"; }

# stop_daemon MNT [UNMOUNT-COMMAND...] - unmount MNT (fusermount3 -u by
# default, or the given command, e.g. `umount`) and assert that its daemon
# exits with status 0 within 10 s.
stop_daemon() {
	local mnt=$1 pid rc=0 i
	shift
	pid=${DAEMON_PID[$mnt]:-}
	[[ -n $pid ]] || fail "stop_daemon: no daemon recorded for $mnt"
	if [[ $# -eq 0 ]]; then
		set -- fusermount3 -u
	fi
	local out
	if ! out=$("$@" "$mnt" 2>&1); then
		fail "'$* $mnt' failed: $out"
	fi
	for ((i = 0; i < 200; i++)); do
		_alive "$pid" || break
		sleep 0.05
	done
	if _alive "$pid"; then
		fail "gitkvfs (pid $pid) still runs 10 s after '$* $mnt'"
	fi
	wait "$pid" 2>/dev/null || rc=$?
	unset 'DAEMON_PID[$mnt]'
	mountpoint -q "$mnt" && fail "$mnt is still mounted after '$* $mnt'"
	[[ $rc -eq 0 ]] || fail "gitkvfs exited with status $rc after '$* $mnt' (expected 0)"
	return 0
}

# kill_daemon MNT - kill -9 the daemon of MNT and lazily unmount what it
# leaves behind (the mount answers ENOTCONN until then).
kill_daemon() {
	local mnt=$1 pid i
	pid=${DAEMON_PID[$mnt]:-}
	[[ -n $pid ]] || fail "kill_daemon: no daemon recorded for $mnt"
	kill -KILL "$pid"
	for ((i = 0; i < 200; i++)); do
		_alive "$pid" || break
		sleep 0.05
	done
	wait "$pid" 2>/dev/null || true
	unset 'DAEMON_PID[$mnt]'
	fusermount3 -uz "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
	wait_until 10 not mountpoint -q "$mnt" || fail "$mnt still mounted after lazy unmount"
}

# ---- waiting ---------------------------------------------------------------

not() { ! "$@"; }

# now_us - microseconds since the epoch.
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }

# wait_until TIMEOUT_S CMD... - run CMD every 0.05 s until it succeeds (0) or
# TIMEOUT_S seconds (decimals allowed) have passed (1).
wait_until() {
	local limit start
	limit=$(awk -v t="$1" 'BEGIN { printf "%d", t * 1000000 }')
	shift
	start=$(now_us)
	while true; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if (($(now_us) - start >= limit)); then
			return 1
		fi
		sleep 0.05
	done
}

# ---- git -------------------------------------------------------------------

# commit_count STORE - commits on HEAD's branch, 0 while it is unborn.
commit_count() {
	git -C "$1" rev-list --count HEAD 2>/dev/null || echo 0
}

# head_of STORE - the commit HEAD names, or "unborn".
head_of() {
	git -C "$1" rev-parse -q --verify HEAD 2>/dev/null || echo unborn
}

# assert_fsck STORE - git fsck --strict finds nothing wrong.
assert_fsck() {
	local out
	out=$(git -C "$1" fsck --strict --no-progress 2>&1) ||
		fail "git fsck --strict failed on $1: $out"
	if grep -qiE '^(error|warning|missing|broken|dangling blob .*corrupt)' <<<"$out"; then
		fail "git fsck --strict reported problems on $1: $out"
	fi
}

# tree_paths STORE [REV] - every path of the tree at REV (HEAD), one a line.
tree_paths() {
	git -C "$1" ls-tree -r --name-only "${2:-HEAD}" 2>/dev/null
}

# ---- assertions ------------------------------------------------------------

# assert_eq EXPECTED ACTUAL MSG
assert_eq() {
	if [[ "$1" != "$2" ]]; then
		fail "$3: expected '$1', got '$2'"
	fi
}

assert_ne() {
	if [[ "$1" == "$2" ]]; then
		fail "$3: expected anything but '$1'"
	fi
}

# assert_match REGEX ACTUAL MSG
assert_match() {
	if ! [[ "$2" =~ $1 ]]; then
		fail "$3: '$2' does not match /$1/"
	fi
}

# assert_content EXPECTED PATH MSG - PATH holds exactly EXPECTED followed
# by one newline (what `echo EXPECTED > PATH` writes).
assert_content() {
	local got
	[[ -f $2 ]] || fail "$3: $2 does not exist"
	if ! got=$(cat -- "$2" 2>&1 && printf x); then
		fail "$3: cannot read $2: $got"
	fi
	got=${got%x}
	[[ "$got" == "$1"$'\n' ]] || fail "$3: $2 holds '${got%$'\n'}', expected '$1'"
}

# strerror NAME - the C library's text for errno NAME (EINVAL -> Invalid argument).
strerror() {
	"$PYTHON" -c 'import errno, os, sys; print(os.strerror(getattr(errno, sys.argv[1])))' "$1"
}

# assert_fails_with ERRNO_NAME[|ERRNO_NAME...] CMD... - CMD fails (non-zero
# exit) and its stderr names one of the errors by its C library text.
#   assert_fails_with EINVAL mkdir "$M/.git"
#   assert_fails_with EROFS\|EPERM bash -c 'echo x > "$1"' bash "$M/.gitkv/x"
assert_fails_with() {
	local names=$1 err rc=0 name text
	local -a alts
	shift
	err=$("$@" 2>&1 >/dev/null) || rc=$?
	[[ $rc -ne 0 ]] || fail "'$*' succeeded; expected it to fail with $names"
	IFS='|' read -ra alts <<<"$names"
	for name in "${alts[@]}"; do
		text=$(strerror "$name")
		if [[ $err == *"$text"* ]]; then
			return 0
		fi
	done
	fail "'$*' failed (status $rc) but not with $names: $err"
}

# errno_of OP ARGS... - perform one system call and print OK or the errno
# name it failed with. OPs:
#   write PATH DATA      open(O_WRONLY|O_CREAT|O_TRUNC), write, close
#   append PATH DATA     the same with O_APPEND
#   create PATH          open(O_WRONLY|O_CREAT|O_TRUNC), close
#   read PATH            open(O_RDONLY), read, close
#   mkdir PATH | rmdir PATH | unlink PATH | mkfifo PATH
#   mknod PATH           a FIFO via mknod(2)
#   link SRC DST | symlink TARGET PATH | rename SRC DST
#   chown PATH UID GID | chmod PATH OCTAL | truncate PATH LEN
#   writesize PATH N     write N bytes of 'x' in one go (O_TRUNC)
#   overwritesize PATH N the same at offset 0 of an existing file, no O_TRUNC
errno_of() {
	"$PYTHON" - "$@" <<'EOF'
import errno, os, stat, sys

op, args = sys.argv[1], sys.argv[2:]

def wr(path, data, flags):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
    finally:
        os.close(fd)

try:
    if op == "write":
        wr(args[0], args[1].encode(), os.O_TRUNC)
    elif op == "append":
        wr(args[0], args[1].encode(), os.O_APPEND)
    elif op == "writesize":
        wr(args[0], b"x" * int(args[1]), os.O_TRUNC)
    elif op == "overwritesize":
        fd = os.open(args[0], os.O_WRONLY)
        try:
            os.write(fd, b"x" * int(args[1]))
        finally:
            os.close(fd)
    elif op == "create":
        os.close(os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644))
    elif op == "read":
        fd = os.open(args[0], os.O_RDONLY)
        try:
            os.read(fd, 1 << 20)
        finally:
            os.close(fd)
    elif op == "mkdir":
        os.mkdir(args[0])
    elif op == "rmdir":
        os.rmdir(args[0])
    elif op == "unlink":
        os.unlink(args[0])
    elif op == "mkfifo":
        os.mkfifo(args[0])
    elif op == "mknod":
        os.mknod(args[0], 0o644 | stat.S_IFIFO)
    elif op == "link":
        os.link(args[0], args[1])
    elif op == "symlink":
        os.symlink(args[0], args[1])
    elif op == "rename":
        os.rename(args[0], args[1])
    elif op == "chown":
        os.chown(args[0], int(args[1]), int(args[2]))
    elif op == "chmod":
        os.chmod(args[0], int(args[1], 8))
    elif op == "truncate":
        os.truncate(args[0], int(args[1]))
    else:
        print("bad op " + op, file=sys.stderr)
        sys.exit(2)
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)))
else:
    print("OK")
EOF
}

# assert_errno EXPECTED[|EXPECTED...] OP ARGS... - the system call fails
# with one of the named errnos (or succeeds, for EXPECTED=OK).
assert_errno() {
	local want=$1 got
	shift
	got=$(errno_of "$@")
	[[ "|$want|" == *"|$got|"* ]] || fail "$* gave $got, expected $want"
}

# listing DIR - a canonical listing of a mounted tree, leaving out the
# virtual .gitkv control directory: path, type, mode, size (files) and
# the md5 of each value / the target of each symlink.
listing() {
	local dir=$1
	(
		cd "$dir"
		find . -path ./.gitkv -prune -o -mindepth 1 -printf '%P %y %m\n' | sort
		find . -path ./.gitkv -prune -o -type f -printf '%P\0' | sort -z |
			xargs -0r md5sum
		find . -path ./.gitkv -prune -o -type l -printf '%P -> %l\n' | sort
	)
}
