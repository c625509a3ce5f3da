#!/usr/bin/env bash
# Install the Debian packages gitkv needs to build, test and run, and only
# those that are missing. Used by demo.sh and test.sh; safe to run again.
set -euo pipefail

PACKAGES=(
	build-essential cmake pkg-config
	libgit2-dev libfuse3-dev fuse3 libjson-c-dev libconfig-dev
	libcmocka-dev libinotifytools0-dev inotify-tools libmicrohttpd-dev
	mandoc attr git rsync vim-nox psmisc util-linux procps python3
	# The ssh sync test runs an sshd of its own on 127.0.0.1 (it neither needs
	# nor touches the service the package may start on port 22).
	openssh-server openssh-client
	# Packaging (cpack -G DEB runs dpkg-shlibdeps), the unit lint
	# (systemd-analyze verify needs the package, not a running systemd), and
	# strace to inject a failure into a mount's start-up.
	dpkg-dev systemd strace
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [[ "$status" != "install ok installed" ]]; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	if ! command -v sudo >/dev/null; then
		echo "deps.sh: missing packages (${missing[*]}), and not root and no sudo" >&2
		exit 1
	fi
	sudo=(sudo)
fi

echo "deps.sh: installing ${missing[*]}" >&2
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	"${missing[@]}"
