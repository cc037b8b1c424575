#!/usr/bin/env bash
# Builds everything and runs the whole test suite (unit, golden, end-to-end) with ctest.
# Long crash-consistency and fuzz runs carry the label "long" and are excluded unless
# DMAGENT_LONG_TESTS=1.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMAGENT_BUILD_DIR:-$root/build}"
# The packaging test builds .deb files (dpkg-dev, file for CPack) and checks them with
# systemd-analyze and lintian.
"$root/scripts/setup-deps.sh" dpkg-dev file systemd lintian
"$root/scripts/build.sh"
label_args=(-LE long)
[[ "${DMAGENT_LONG_TESTS:-0}" == "1" ]] && label_args=()
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "${label_args[@]}" "$@"
