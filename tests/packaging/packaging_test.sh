#!/usr/bin/env bash
# The Debian packages as a packager and an operator meet them: CPack builds dmagent and dmserver
# from this build tree, they are unpacked into a temporary root, and this checks their
# contents, maintainer scripts, dependencies, that the binaries run from there (--version), the
# units (systemd-analyze verify, and security at 2.0 or lower), and lintian where installed.
#   packaging_test.sh <build dir> <source dir>
set -euo pipefail
build="$1"
src="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

(cd "$work" && cpack --config "$build/CPackConfig.cmake" -B "$work/out" >"$work/cpack.log" 2>&1) ||
  { cat "$work/cpack.log" >&2; fail "cpack"; }
version="$(sed -n 's/^project(dmagent VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")"
for pkg in dmagent dmserver; do
  deb="$work/out/${pkg}_${version}_amd64.deb"
  [[ -f "$deb" ]] || fail "no $deb"
  root="$work/root-$pkg"
  dpkg-deb -x "$deb" "$root"
  dpkg-deb -e "$deb" "$root/DEBIAN"

  # Contents: the binary, its unit, its configuration as a conffile, docs and changelog.
  for f in "usr/bin/$pkg" "usr/lib/systemd/system/$pkg.service" "etc/$pkg/$pkg.conf" \
           "usr/share/doc/$pkg/README.md" "usr/share/doc/$pkg/SECURITY.md" \
           "usr/share/doc/$pkg/json-output.md" \
           "usr/share/doc/$pkg/changelog.gz" "usr/share/man/man8/$pkg.8.gz"; do
    [[ -e "$root/$f" ]] || fail "$pkg lacks /$f"
  done
  grep -qx "/etc/$pkg/$pkg.conf" "$root/DEBIAN/conffiles" || fail "$pkg: config is not a conffile"
  for script in postinst prerm; do
    [[ -x "$root/DEBIAN/$script" ]] || fail "$pkg: $script missing or not executable"
    sh -n "$root/DEBIAN/$script" || fail "$pkg: $script does not parse"
  done
  depends="$(dpkg-deb -f "$deb" Depends)"
  for lib in libssl3 libsqlite3-0 libtinyxml2; do
    [[ "$depends" == *"$lib"* ]] || fail "$pkg: Depends lacks $lib: $depends"
  done
  # The binary runs from the unpacked tree and names its version.
  out="$("$root/usr/bin/$pkg" --version)"
  [[ "$out" == "$pkg $version (git "*")" ]] || fail "$pkg --version said: $out"
  grep -q "ExecStart=/usr/bin/$pkg " "$root/usr/lib/systemd/system/$pkg.service" ||
    fail "$pkg.service does not start /usr/bin/$pkg"
  # The man page is made from --help: every command and the exit statuses are in it.
  page="$(zcat "$root/usr/share/man/man8/$pkg.8.gz")"
  commands="$("$root/usr/bin/$pkg" --help | sed -n '/^Subcommands:/,$p' | awk 'NR > 1 { print $1 }')"
  [[ -n "$commands" ]] || fail "$pkg --help lists no commands"
  for c in $commands; do
    grep -q "^\.SS $c\$" <<<"$page" || fail "$pkg.8 lacks the command $c"
  done
  grep -q '^\.SH "EXIT STATUS"' <<<"$page" || fail "$pkg.8 lacks EXIT STATUS"
done
# dmserver's package brings its system user and state directory.
grep -q '^u dmserver ' "$work/root-dmserver/usr/lib/sysusers.d/dmserver.conf" || fail "sysusers"
grep -q '^d /var/lib/dmserver 0700 dmserver dmserver' \
  "$work/root-dmserver/usr/lib/tmpfiles.d/dmserver.conf" || fail "tmpfiles"
grep -q 'systemd-sysusers /usr/lib/sysusers.d/dmserver.conf' "$work/root-dmserver/DEBIAN/postinst" ||
  fail "the postinst does not create the user"
[[ "$(dpkg-deb -f "$work/out/dmserver_${version}_amd64.deb" Depends)" == *adduser* ]] ||
  fail "dmserver's postinst falls back to adduser but the package does not depend on it"

if command -v systemd-analyze >/dev/null; then
  for pkg in dmagent dmserver; do
    # verify checks that ExecStart exists: point it into the unpacked tree.
    sed "s#/usr/bin/#$work/root-$pkg/usr/bin/#g" \
      "$work/root-$pkg/usr/lib/systemd/system/$pkg.service" >"$work/$pkg.service"
    systemd-analyze verify "$work/$pkg.service" || fail "systemd-analyze verify $pkg.service"
    systemd-analyze security --offline=yes --threshold=20 "$work/$pkg.service" >"$work/sec.txt" ||
      { tail -1 "$work/sec.txt" >&2; fail "$pkg.service is exposed above 2.0"; }
    echo "$pkg.service: $(grep -o 'exposure level for .*' "$work/sec.txt")"
  done
else
  echo "systemd-analyze not installed: units not verified"
fi

if command -v lintian >/dev/null; then
  # Remaining tags, each with its reason (README "Install"):
  #   no-copyright-file  the project has not chosen its licence yet
  explained='no-copyright-file'
  lintian --tag-display-limit 0 "$work"/out/*.deb 2>/dev/null | tee "$work/lintian.txt" || true
  if grep -E '^[EW]: ' "$work/lintian.txt" | grep -vE " ($explained)( |$)"; then
    fail "lintian tags above are neither fixed nor explained"
  fi
else
  echo "lintian not installed: packages not linted"
fi
echo "packaging ok"
