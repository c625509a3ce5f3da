#!/usr/bin/env bash
# The man pages are clean under mandoc's linter; every gitkvfs option that
# --help lists is documented in gitkvfs(8), and (but config=, which names
# the file) as a setting in gitkvfs.conf(5) and in the sample
# examples/gitkvfs.conf; every setting gitkvfs.conf(5) documents is one
# gitkvfs has; every gitkv command is in gitkv(1).
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

# A setting of gitkvfs.conf(5) is an entry `.BR name " (type; default ...)"`.
conf=$top/man/gitkvfs.conf.5
example=$top/examples/gitkvfs.conf
for o in $opts; do
	[ "$o" = config ] && continue
	grep -qE "^\.BR? $o \" \(" "$conf" || fail "option '$o' from --help is not a setting in gitkvfs.conf(5)"
	grep -qE "^#?[[:space:]]*$o = " "$example" || fail "option '$o' from --help is missing in examples/gitkvfs.conf"
done
echo "ok - every -o option of --help but config= is a setting in gitkvfs.conf(5) and in examples/gitkvfs.conf"

# Settings only the file has: the store, the remotes as a list, FUSE's mount flags.
file_only="store remotes allow_other default_permissions auto_unmount"
settings=$(sed -n 's/^\.BR\{0,1\} \([a-z_]*\) " (.*/\1/p' "$conf" | sort -u)
[ -n "$settings" ] || fail "gitkvfs.conf(5) documents no setting"
for s in $settings; do
	case " $(echo $opts) $file_only " in
	*" $s "*) ;;
	*) fail "gitkvfs.conf(5) documents '$s', which gitkvfs does not have" ;;
	esac
done
echo "ok - every setting of gitkvfs.conf(5) is an option of --help or a file-only setting"

cmds=$("$GITKV" --help 2>&1 | sed -n '/^commands:/,/^$/s/^  \([a-z]*\).*/\1/p')
[ -n "$cmds" ] || fail "gitkv --help lists no commands"
for c in $cmds; do
	grep -q "^\.B.*$c\|^\.SS.*$c\|^\.IP.*$c\|\\\\fB$c" "$top/man/gitkv.1" || fail "command '$c' is missing in gitkv(1)"
done
echo "ok - every gitkv command is in gitkv(1): $(echo $cmds | tr '\n' ' ')"
