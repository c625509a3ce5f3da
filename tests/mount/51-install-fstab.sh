#!/bin/bash
# Installing: `cmake --install` puts gitkvfs, gitkv, the manual pages, the
# sample configuration and the systemd units in their places and nothing in
# /etc; `cpack -G DEB` makes the package gitkv, whose Depends names the
# package of every shared library the binaries load, and fuse3; and the
# packaged gitkvfs mounts a store from an fstab line and unmounts with
# umount.
#
# Nothing is installed on the machine: the package is unpacked with
# dpkg -x into the test's directory, and mount.fuse3 finds the unpacked
# gitkvfs through a link in /usr/local/sbin, in a private mount namespace
# (why, see 50-fstab.sh). GITKV_BUILD_DIR names the build tree to install
# and package (CTest sets it).
if [[ -z ${GITKV_MOUNT_NS:-} && -c /dev/fuse ]]; then
	if ((EUID != 0)); then
		echo "skip - $(basename "$0" .sh): mount -T and a private mount namespace need root"
		exit 77
	fi
	exec unshare --mount --propagation private env GITKV_MOUNT_NS=1 bash "$0" "$@"
fi
. "$(dirname "$0")/../lib.sh"
skip_unless_fuse

: "${GITKV_BUILD_DIR:=$TESTS_DIR/../build}"
[[ -f $GITKV_BUILD_DIR/CPackConfig.cmake ]] ||
	fail "no CPackConfig.cmake in '$GITKV_BUILD_DIR' (set GITKV_BUILD_DIR to the build tree)"
for tool in cmake cpack dpkg-deb dpkg-shlibdeps dpkg-query objdump; do
	command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/deps.sh installs it)"
done

export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer
export UBSAN_OPTIONS=${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer

version=$("$GITKVFS" --version)
version=${version#gitkvfs }
[[ -n $version ]] || fail "gitkvfs --version printed no version"

# ---- cmake --install -------------------------------------------------------

inst=$T/inst
cmake --install "$GITKV_BUILD_DIR" --prefix "$inst" >"$T/install.log" 2>&1 ||
	fail "cmake --install failed: $(tail -n 20 "$T/install.log")"
for f in bin/gitkvfs bin/gitkv; do
	[[ -x $inst/$f ]] || fail "cmake --install did not install an executable $f"
done
# every manual page of man/, in the section its name ends with
man_pages=()
for page in "$TESTS_DIR"/../man/*.[1-9]; do
	man_pages+=("share/man/man${page##*.}/${page##*/}")
done
[[ ${#man_pages[@]} -ge 2 ]] || fail "man/ holds ${#man_pages[@]} manual pages"
for f in "${man_pages[@]}" \
	share/doc/gitkv/examples/gitkvfs.conf share/doc/gitkv/examples/gitkvfs@.service \
	share/doc/gitkv/examples/srv-gitkv-app.mount lib/systemd/system/gitkvfs@.service; do
	[[ -f $inst/$f ]] || fail "cmake --install did not install $f"
done
[[ ! -e $inst/etc ]] || fail "cmake --install put files in etc/: $(find "$inst/etc" | head)"
assert_eq "gitkvfs $version" "$("$inst/bin/gitkvfs" --version)" "the installed gitkvfs runs"
assert_match "^ExecStart=$inst/bin/gitkvfs -f " \
	"$(grep '^ExecStart=' "$inst/lib/systemd/system/gitkvfs@.service")" \
	"the installed unit runs the installed gitkvfs"
ok "cmake --install installs the binaries, manual pages, examples and unit, nothing in etc/"

# ---- cpack -G DEB ----------------------------------------------------------

cpack -G DEB --config "$GITKV_BUILD_DIR/CPackConfig.cmake" -B "$T/pkg" >"$T/cpack.log" 2>&1 ||
	fail "cpack -G DEB failed: $(tail -n 20 "$T/cpack.log")"
debs=("$T"/pkg/*.deb)
[[ ${#debs[@]} -eq 1 && -f ${debs[0]} ]] || fail "cpack made ${#debs[@]} .deb files: ${debs[*]}"
deb=${debs[0]}

field() { dpkg-deb -f "$deb" "$1"; }
assert_eq gitkv "$(field Package)" "the package's name"
assert_eq "$version" "$(field Version)" "the package's version is the project's"
assert_eq "$(dpkg --print-architecture)" "$(field Architecture)" "the package's architecture"
assert_match '^.+ <.+@.+>$' "$(field Maintainer)" "the package names a maintainer"
[[ -n $(field Description) ]] || fail "the package has no description"
depends=$(field Depends)
assert_match '(^|, )fuse3(,|$| )' "$depends" "the package depends on fuse3 (mount.fuse3, fusermount3)"
assert_match '(^|, )git(,|$| )' "$(field Recommends)" "the package recommends git"

contents=$(dpkg-deb -c "$deb" | awk '{ print $NF }')
for f in ./usr/bin/gitkvfs ./usr/bin/gitkv "${man_pages[@]/#/./usr/}" \
	./usr/share/doc/gitkv/examples/gitkvfs.conf ./usr/lib/systemd/system/gitkvfs@.service; do
	grep -qxF "$f" <<<"$contents" || fail "the package lacks $f"
done
if grep -q '^\./etc/' <<<"$contents"; then
	fail "the package installs into /etc: $(grep '^\./etc/' <<<"$contents")"
fi
ok "cpack -G DEB makes the package gitkv $version: binaries, manual pages, examples, unit, nothing in /etc"

root=$T/root
dpkg-deb -x "$deb" "$root" || fail "dpkg-deb -x failed"
assert_match '^ExecStart=/usr/bin/gitkvfs -f ' \
	"$(grep '^ExecStart=' "$root/usr/lib/systemd/system/gitkvfs@.service")" \
	"the packaged unit runs the packaged gitkvfs"

# The package of every shared library the binaries link (their NEEDED
# entries) is in Depends, at a version this machine has (so the package
# installs here).
dep_packages=$(sed 's/([^)]*)//g; s/|/,/g' <<<"$depends" | tr ',' '\n' | tr -d ' ' | sort -u)
declare -A needed_by=() # library path -> the binaries that link it
for bin in "$root/usr/bin/gitkvfs" "$root/usr/bin/gitkv"; do
	needed=$(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }')
	[[ -n $needed ]] || fail "${bin##*/} links no shared library"
	resolved=$(ldd "$bin")
	for soname in $needed; do
		lib=$(awk -v n="$soname" '
			$1 == n && $2 == "=>" { print $3 }
			$1 ~ "^/" && $1 ~ ("/" n "$") { print $1 }' <<<"$resolved")
		[[ $lib == /* ]] || fail "${bin##*/} needs $soname, which ldd does not find"
		needed_by[$(readlink -f "$lib")]+=" ${bin##*/}"
	done
done
# One query for all (dpkg-query reads its whole database each time); the
# database may name a file with or without /usr in front.
declare -A owner=() # path -> package
candidates=()
for lib in "${!needed_by[@]}"; do
	candidates+=("$lib" "${lib#/usr}" "/usr$lib")
done
while IFS= read -r line; do
	pkg=${line%%: /*}
	pkg=${pkg%%:*}
	owner[${line#*: }]=$pkg
done < <(dpkg-query -S "${candidates[@]}" 2>/dev/null || true)
for lib in "${!needed_by[@]}"; do
	pkg=${owner[$lib]:-${owner[${lib#/usr}]:-${owner[/usr$lib]:-}}}
	[[ -n $pkg ]] || fail "no package owns $lib (needed by${needed_by[$lib]})"
	grep -qxF "$pkg" <<<"$dep_packages" ||
		fail "$lib (needed by${needed_by[$lib]}) is in $pkg, which Depends lacks: $depends"
done
while read -r name op want; do
	have=$(dpkg-query -W -f='${Version}' "$name" 2>/dev/null) ||
		fail "Depends names $name, which is not installed here"
	if [[ -n $op ]]; then
		dpkg --compare-versions "$have" "${op#(}" "${want%)}" ||
			fail "Depends wants $name $op $want, this machine has $have"
	fi
done < <(tr ',' '\n' <<<"$depends" | sed 's/^ *//')
ok "Depends covers every shared library of gitkvfs and gitkv, at versions this machine has"

# ---- the packaged gitkvfs, from fstab --------------------------------------

mount -t tmpfs -o mode=0755,size=1m gitkv-test /usr/local/sbin ||
	fail "cannot mount a tmpfs on /usr/local/sbin in the test's mount namespace"
ln -s "$root/usr/bin/gitkvfs" /usr/local/sbin/gitkvfs

gitkv=$root/usr/bin/gitkv
store=$T/store.git
mnt=$T/mnt
mkdir -p "$mnt"
"$gitkv" init "$store" >/dev/null
echo hello | "$gitkv" -C "$store" set greeting
printf '%s %s fuse.gitkvfs defaults,_netdev,allow_other 0 0\n' "$store" "$mnt" >"$T/fstab"

err=$(mount -T "$T/fstab" "$mnt" 2>&1) || fail "mount from the fstab line failed: $err"
mountpoint -q "$mnt" || fail "mount returned 0 but $mnt is not mounted"
assert_content hello "$mnt/greeting" "the key, read as soon as mount returned"
pid=
for p in /proc/[0-9]*; do
	[[ $(readlink "$p/exe" 2>/dev/null) == "$root/usr/bin/gitkvfs" ]] && pid=${p#/proc/}
done
[[ -n $pid ]] || fail "no process runs the packaged gitkvfs"
echo world >"$mnt/written"
assert_eq world "$("$gitkv" -C "$store" get written)" "the packaged gitkv reads what the mount wrote"
umount "$mnt" || fail "umount $mnt failed"
wait_until 10 not _alive "$pid" || fail "the packaged gitkvfs ($pid) still runs 10 s after umount"
mountpoint -q "$mnt" && fail "$mnt is still mounted after umount"
assert_fsck "$store"
for f in "$T"/sanitizer.*; do
	[[ -f $f ]] && ALL_LOGS+=("$f")
done
ok "the packaged gitkvfs mounts from an fstab line through mount.fuse3, and umount unmounts it"
