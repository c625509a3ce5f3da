#!/usr/bin/env bash
# The man pages are clean under mandoc's linter, and every gitkvfs option
# that --help lists is documented in gitkvfs(8); every gitkv command in
# gitkv(1).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "not ok - $*"; exit 1; }

command -v mandoc >/dev/null || { echo "mandoc is not installed"; exit 77; }
mandoc -Tlint -W warning "$top"/man/*.[0-9] || fail "mandoc -Tlint reports problems"
echo "ok - mandoc -Tlint is clean"

opts=$("$GITKVFS" --help 2>&1 | sed -n '/^gitkvfs options:/,/^FUSE options:/s/^ *-o \([a-z_]*\).*/\1/p' | sort -u)
[ -n "$opts" ] || fail "gitkvfs --help lists no -o options"
for o in $opts; do
	grep -q "$o" "$top/man/gitkvfs.8" || fail "option '$o' from --help is missing in gitkvfs(8)"
done
echo "ok - every -o option of --help is in gitkvfs(8): $(echo $opts | tr '\n' ' ')"

cmds=$("$GITKV" --help 2>&1 | sed -n '/^commands:/,/^$/s/^  \([a-z]*\).*/\1/p')
[ -n "$cmds" ] || fail "gitkv --help lists no commands"
for c in $cmds; do
	grep -q "^\.B.*$c\|^\.SS.*$c\|^\.IP.*$c\|\\\\fB$c" "$top/man/gitkv.1" || fail "command '$c' is missing in gitkv(1)"
done
echo "ok - every gitkv command is in gitkv(1): $(echo $cmds | tr '\n' ' ')"
