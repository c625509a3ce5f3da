#!/usr/bin/env bash
# Build gitkv, mount a demo store and show it working.
#
#   ./scripts/demo.sh
#
# The store is GITKV_DEMO_STORE (default /var/lib/gitkv/demo.git), the mount
# point GITKV_DEMO_MNT (default /mnt/gitkv-demo). A demo mount left by an
# earlier run is unmounted first; the store and its history are kept. The
# new mount stays up at the end, and the script prints how to unmount it.
set -euo pipefail

cd "$(dirname "$0")/.."

STORE=${GITKV_DEMO_STORE:-/var/lib/gitkv/demo.git}
MNT=${GITKV_DEMO_MNT:-/mnt/gitkv-demo}

sudo=()
if ((EUID != 0)); then
	sudo=(sudo)
fi

as_root() {
	"${sudo[@]}" "$@"
}

# Show a shell command, then run it as root.
show() {
	printf '\n$ %s\n' "$*"
	as_root sh -c "$*"
}

wait_for() {
	local what=$1 tries=100
	shift
	until "$@"; do
		if ((--tries == 0)); then
			echo "demo.sh: timed out waiting for $what" >&2
			return 1
		fi
		sleep 0.1
	done
}

./scripts/deps.sh

echo "== building"
cmake -S . -B build >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
GITKVFS=$PWD/build/fs/gitkvfs
GITKV=$PWD/build/cli/gitkv
for bin in "$GITKVFS" "$GITKV"; do
	if [[ ! -x "$bin" ]]; then
		echo "demo.sh: $bin was not built" >&2
		exit 1
	fi
done

if mountpoint -q "$MNT"; then
	fstype=$(findmnt -n -o FSTYPE --target "$MNT" || true)
	if [[ "$fstype" != fuse.gitkvfs ]]; then
		echo "demo.sh: $MNT is already mounted ($fstype); set GITKV_DEMO_MNT" >&2
		exit 1
	fi
	echo "== unmounting the previous demo at $MNT"
	as_root fusermount3 -u "$MNT"
fi

echo "== mounting $STORE on $MNT"
as_root mkdir -p "$MNT" "$(dirname "$STORE")"
if [[ ! -e "$STORE" ]]; then
	as_root "$GITKV" init "$STORE"
fi
as_root "$GITKVFS" "$STORE" "$MNT"
wait_for "the mount" mountpoint -q "$MNT"

echo
echo "== every key is a file, every prefix a directory"
show "mkdir -p $MNT/app/db"
show "echo db1.example.com > $MNT/app/db/host"
show "echo 5432 > $MNT/app/db/port"
show "cat $MNT/app/db/host"
show "ls -l $MNT/app/db"
show "echo db2.example.com > $MNT/app/db/host"

echo
echo "== every change is a commit in the bare repository"
show "git -C $STORE --no-pager log -n 4 --format='%h %ad %an: %s' --date=iso"
show "git -C $STORE --no-pager show -s --format=%B HEAD"
show "git -C $STORE fsck --strict --no-progress && echo fsck clean"

echo
echo "== the gitkv command works on the same store, mounted or not"
show "$GITKV -C $STORE get app/db/host"
show "echo on | $GITKV -C $STORE set app/feature/search"
wait_for "the mount to show app/feature/search" as_root test -e "$MNT/app/feature/search"
show "cat $MNT/app/feature/search"
show "$GITKV -C $STORE history app/db/host"
show "$GITKV -C $STORE ls -r app"

echo
echo "== the control directory"
show "cat $MNT/.gitkv/status"

cat <<EOM

The store $STORE stays mounted on $MNT.
Unmount it with:
    ${sudo[*]:+${sudo[*]} }fusermount3 -u $MNT
EOM
