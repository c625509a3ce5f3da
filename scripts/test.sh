#!/usr/bin/env bash
# Build gitkv and run its whole test suite with CTest.
#
#   ./scripts/test.sh              build into build/ and run every test
#   ./scripts/test.sh --sanitize   the same with AddressSanitizer and
#                                  UndefinedBehaviorSanitizer, in build-san/
#
# Mounted tests need /dev/fuse (and root or fusermount3); without it they
# report themselves skipped.
set -euo pipefail

cd "$(dirname "$0")/.."

build=build
cmake_args=(-DGITKV_BUILD_TESTS=ON)
case "${1:-}" in
"") ;;
--sanitize)
	build=build-san
	cmake_args+=(-DGITKV_SANITIZE=ON)
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
	export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}"
	export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
	;;
-h | --help)
	sed -n '2,10s/^# \{0,1\}//p' "$0"
	exit 0
	;;
*)
	echo "usage: $0 [--sanitize]" >&2
	exit 2
	;;
esac

./scripts/deps.sh

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B "$build" "${cmake_args[@]}"
cmake --build "$build" -j "$jobs"

cd "$build"
ctest --output-on-failure --timeout 300 -j1 --no-tests=error
