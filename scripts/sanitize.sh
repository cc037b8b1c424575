#!/usr/bin/env bash
# CI's sanitizer pass: one clang build directory (build-sanitize) holds the GoogleTest suites
# and the libFuzzer targets, all with AddressSanitizer and UndefinedBehaviorSanitizer (the
# libraries also carry libFuzzer's coverage instrumentation, which the tests do not mind). It
# runs the test label "unit" (every unit, server, CLI, security and regression suite; not e2e,
# not long) under the sanitizers, then each fuzz target for SANITIZE_FUZZ_SECONDS through
# scripts/fuzz.sh. Any sanitizer report, test failure or fuzz finding fails it.
#
#   scripts/sanitize.sh                         what .ci/run calls
#   SANITIZE_FUZZ_SECONDS=0 scripts/sanitize.sh   tests only
# Environment: SANITIZE_BUILD_DIR (default <repo>/build-sanitize), SANITIZE_FUZZ_SECONDS (30),
# SANITIZE_JOBS (build and ctest parallelism, default nproc), SANITIZE_LABELS (ctest -L regex,
# default "unit").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${SANITIZE_BUILD_DIR:-$root/build-sanitize}"
fuzz_seconds="${SANITIZE_FUZZ_SECONDS:-30}"
jobs="${SANITIZE_JOBS:-$(nproc)}"
labels="${SANITIZE_LABELS:-unit}"
# clang with its ASan/UBSan/libFuzzer runtimes, on top of what every build needs.
"$root/scripts/setup-deps.sh" clang libclang-rt-dev llvm

start=$SECONDS
extra=()
command -v ccache >/dev/null && extra+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
# -Werror stays with the GCC build (scripts/test.sh); clang has its own warning set.
CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDMAGENT_SANITIZE=ON -DDMAGENT_FUZZ=ON -DDMAGENT_BUILD_TESTS=ON \
  -DCMAKE_CXX_FLAGS="-Wno-unknown-warning-option" "${extra[@]}" >/dev/null
cmake --build "$build" -j"$jobs"
echo "sanitize: built in $((SECONDS - start)) s"

t=$SECONDS
# A sanitizer report ends the process with an error, which fails its test.
ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
  ctest --test-dir "$build" --output-on-failure -j"$jobs" -L "$labels" -LE long --timeout 900
echo "sanitize: tests (label $labels) under ASan+UBSan in $((SECONDS - t)) s"

if ((fuzz_seconds > 0)); then
  t=$SECONDS
  FUZZ_BUILD_DIR="$build" FUZZ_NO_BUILD=1 FUZZ_SECONDS="$fuzz_seconds" "$root/scripts/fuzz.sh"
  echo "sanitize: fuzzing in $((SECONDS - t)) s"
fi
echo "sanitize: done in $((SECONDS - start)) s"
