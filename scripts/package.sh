#!/usr/bin/env bash
# Builds the Debian packages dmagent and dmserver (CPack, cmake/Packaging.cmake) from a build
# without tests, so the weak test-only KDF settings are compiled out, into build-package/:
#   scripts/package.sh && ls build-package/*.deb
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMAGENT_PACKAGE_DIR:-$root/build-package}"
"$root/scripts/setup-deps.sh" dpkg-dev file
DMAGENT_BUILD_DIR="$build" DMAGENT_BUILD_TARGETS="dmagent dmserver" "$root/scripts/build.sh" \
  -DDMAGENT_BUILD_TESTS=OFF -DCMAKE_INSTALL_PREFIX=/usr
(cd "$build" && cpack --config "$build/CPackConfig.cmake" -B "$build")
ls -l "$build"/*.deb
