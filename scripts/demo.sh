#!/usr/bin/env bash
# Builds dmagent and dmserver and plays the end-to-end demo on loopback.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMAGENT_BUILD_DIR:-$root/build}"
DMAGENT_BUILD_TARGETS="dmagent dmserver" "$root/scripts/build.sh"
exec "$root/samples/demo/demo.sh" "$build"
