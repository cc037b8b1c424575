#!/usr/bin/env bash
# Configures and builds dmagent out of tree in ./build (or $DMAGENT_BUILD_DIR): everything, or
# the targets in $DMAGENT_BUILD_TARGETS.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMAGENT_BUILD_DIR:-$root/build}"
"$root/scripts/setup-deps.sh"
extra=()
[[ "${CI:-}" == "true" ]] && extra+=(-DDMAGENT_WERROR=ON)
# ccache, when installed, makes rebuilds in several work trees cheap; nothing depends on it.
command -v ccache >/dev/null && extra+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "${extra[@]}" "$@" >/dev/null
# DMAGENT_BUILD_TARGETS: only these (the demo builds just the two binaries it runs).
targets=()
for t in ${DMAGENT_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j"$(nproc)" "${targets[@]}"
