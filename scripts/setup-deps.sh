#!/usr/bin/env bash
# Installs the Debian 12 packages dmagent builds and runs with, only those missing (idempotent).
# oathtool plays the user's authenticator app (TOTP codes) and jq reads --json output in the
# demo and the end-to-end tests; libsystemd-dev lets logs reach journald natively; curl calls dmserver's admin API in the demo; help2man makes the
# man pages from the binaries' --help. Arguments are
# more packages to install (scripts/sanitize.sh asks for clang and its sanitizer runtimes).
set -euo pipefail

packages=(cmake ninja-build g++ pkg-config openssl
          libboost-dev libtinyxml2-dev libsqlite3-dev sqlite3 libssl-dev libspdlog-dev libsystemd-dev
          libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev nlohmann-json3-dev
          oathtool jq curl help2man "$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "dmagent: missing packages: ${missing[*]} — run as root or install them with apt-get" >&2
  exit 1
fi
echo "dmagent: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
