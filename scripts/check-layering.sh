#!/usr/bin/env bash
# The include graph is the architecture: core/ knows git and nothing of FUSE,
# fs/ reaches git only through core's API, sync/ and cli/ use core's headers
# only. Exits non-zero, naming the file, when a module includes what it must not.
set -u
cd "$(dirname "$0")/.."
status=0
bad() { echo "layering: $1"; status=1; }
for f in $(grep -rlE '#include *[<"]fuse' core sync cli 2>/dev/null); do bad "$f includes a FUSE header"; done
for f in $(grep -rlE '#include *[<"]git2' fs sync cli 2>/dev/null); do bad "$f includes libgit2 directly"; done
for f in $(grep -rlE '#include *"(\.\./)*(core/)?[a-z_]+_internal\.h"' fs sync cli 2>/dev/null); do bad "$f includes a core-internal header"; done
[ $status -eq 0 ] && echo "layering: ok (core/ fs/ sync/ cli/)"
exit $status
