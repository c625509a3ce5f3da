#!/usr/bin/env bash
# The systemd units in examples/ load cleanly: `systemd-analyze verify`
# says nothing about them (an unknown key, a bad value, a mount unit whose
# name does not match its mount point, a command that does not exist), and
# every Documentation= page is one of ours.
#
# verify insists that the commands exist, so it reads a copy of the units
# in which /usr/bin/gitkvfs (where the package installs it) names the
# gitkvfs under test. verify runs no manager and starts nothing; it needs
# the systemd package, not a running systemd.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
fail() {
	echo "not ok - $*"
	exit 1
}

if ! command -v systemd-analyze >/dev/null; then
	echo "skip - systemd-analyze is not installed (Debian package systemd; scripts/deps.sh installs it)"
	exit 77
fi
[[ -x ${GITKVFS:-} ]] || fail "gitkvfs binary not found at '${GITKVFS:-}' (set GITKVFS)"

units=("$top"/examples/*.service "$top"/examples/*.mount)
[[ -f ${units[0]} ]] || fail "no .service unit in examples/"
[[ -f $top/examples/gitkvfs@.service ]] || fail "examples/gitkvfs@.service is missing"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gitkv-lint-systemd.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

for unit in "${units[@]}"; do
	name=${unit##*/}
	grep -q '^ExecStart=/usr/bin/gitkvfs \|^Type=fuse.gitkvfs$' "$unit" ||
		fail "$name neither runs /usr/bin/gitkvfs nor mounts fuse.gitkvfs"
	sed "s#/usr/bin/gitkvfs #$GITKVFS #" "$unit" >"$tmp/$name"

	# Documentation=man:PAGE(SECTION) must be a page of man/.
	while read -r page; do
		file="$top/man/${page%%(*}.$(sed 's/.*(\(.*\))/\1/' <<<"$page")"
		[[ -f $file ]] || fail "$name: Documentation=man:$page is not in man/"
	done < <(sed -n 's/^Documentation=.*man:\([^ ]*\).*/\1/p' "$unit")
done

# A template is verified through an instance of it.
targets=()
for unit in "$tmp"/*; do
	name=${unit##*/}
	case $name in
	*@.service) targets+=("$tmp/${name%@.service}@app.service") ;;
	*) targets+=("$unit") ;;
	esac
done

rc=0
out=$(systemd-analyze verify --man=no "${targets[@]}" 2>&1) || rc=$?
out=${out//$tmp\//}
if [[ $rc -ne 0 || -n $out ]]; then
	printf '%s\n' "$out" | sed 's/^/#   /'
	fail "systemd-analyze verify reports problems with the units (status $rc)"
fi
echo "ok - systemd-analyze verify is silent on: $(cd "$top/examples" && ls ./*.service ./*.mount | sed 's#^\./##' | tr '\n' ' ')"
