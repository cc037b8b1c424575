#!/usr/bin/env bash
# Configures and builds dmagent out of tree in ./build (or $DMAGENT_BUILD_DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMAGENT_BUILD_DIR:-$root/build}"
"$root/scripts/setup-deps.sh"
extra=()
[[ "${CI:-}" == "true" ]] && extra+=(-DDMAGENT_WERROR=ON)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
