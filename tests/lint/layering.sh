#!/usr/bin/env bash
# core/ knows nothing of FUSE; fs/, sync/ and cli/ reach git only through core.
exec "$(dirname "$0")/../../scripts/check-layering.sh"
