#!/usr/bin/env bash
# Configures and builds dmagent out of tree in ./build (or $DMAGENT_BUILD_DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMAGENT_BUILD_DIR:-$root/build}"
"$root/scripts/setup-deps.sh"
extra=()
[[ "${CI:-}" == "true" ]] && extra+=(-DDMAGENT_WERROR=ON)
# ccache, when installed, makes rebuilds in several work trees cheap; nothing depends on it.
command -v ccache >/dev/null && extra+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" "$@" >/dev/null
cmake --build "$build" -j"$(nproc)"
