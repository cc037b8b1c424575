#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, ASan and UBSan into build-fuzz and runs
# each for a bounded time (or number of executions) over a seed corpus made from the fixtures,
# then prints per target: executions, seconds, executions per second, findings.
#
#   scripts/fuzz.sh                       every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh fuzz_uri
#   FUZZ_RUNS=10000000 scripts/fuzz.sh fuzz_server_management   10 M executions, no time bound
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_RUNS (executions per target: passes
# -runs= and lifts the time bound unless FUZZ_SECONDS is set too), FUZZ_BUILD_DIR (default
# <repo>/build-fuzz), FUZZ_JOBS (build parallelism, default 2), FUZZ_NO_BUILD=1 (reuse the
# build; scripts/sanitize.sh builds the targets in its own directory and runs them this way).
# Findings (crash-*, leak-*, timeout-*, oom-*) land in $FUZZ_BUILD_DIR/artifacts/<target>/;
# the corpus grows in $FUZZ_BUILD_DIR/corpus/<target>/ and is reused by the next run. Inputs
# that once failed live in tests/fuzz/regressions/<target>/ and are replayed before fuzzing
# (their fixes are tested in the gtest suites too: tests/regression/).
# Exit status: 1 when any target found something.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
runs="${FUZZ_RUNS:-}"
if [[ -n "$runs" ]]; then seconds="${FUZZ_SECONDS:-0}"; else seconds="${FUZZ_SECONDS:-60}"; fi
jobs="${FUZZ_JOBS:-2}"
all=(fuzz_syncml_decode fuzz_uri fuzz_session_exec fuzz_server_management fuzz_server_admin
     fuzz_server_enrollment)
if (($#)); then targets=("$@"); else targets=("${all[@]}"); fi

if [[ "${FUZZ_NO_BUILD:-0}" != "1" ]]; then
  "$root/scripts/setup-deps.sh" clang libclang-rt-dev llvm
  CC=clang CXX=clang++ cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DDMAGENT_FUZZ=ON -DDMAGENT_BUILD_TESTS=OFF \
    -DCMAKE_CXX_FLAGS="-Wno-unknown-warning-option" >/dev/null
  cmake --build "$build" -j"$jobs" --target "${targets[@]}"
fi

# Seed corpora. libFuzzer writes new inputs into the first corpus directory, so seeds are
# copied into the build tree and the repository is never written to.
xml_seeds=("$root"/tests/fixtures/*/*.xml "$root"/samples/profiles/*.xml)
seed() {  # seed <target> <files...>
  local dir="$build/corpus/$1"
  shift
  mkdir -p "$dir"
  for f in "$@"; do
    [[ -f "$f" ]] && cp -n "$f" "$dir/seed-$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  return 0
}
for t in "${targets[@]}"; do
  case "$t" in
    fuzz_syncml_decode | fuzz_session_exec) seed "$t" "${xml_seeds[@]}" ;;
    # Sessions whose user signed in: @USER_TOKEN@ becomes a valid token in the target.
    fuzz_server_management)
      seed "$t" "${xml_seeds[@]}" "$root"/tests/fuzz/seeds/server_management/*
      ;;
    fuzz_uri)
      seed "$t" "$root"/tests/fuzz/seeds/uri/*
      # Every LocURI the fixtures use, one file each.
      n=0
      while IFS= read -r uri; do
        n=$((n + 1))
        printf '%s' "$uri" >"$build/corpus/$t/seed-locuri-$n"
      done < <(grep -ho '<LocURI>[^<]*' "${xml_seeds[@]}" | sed 's/<LocURI>//' | sort -u)
      ;;
    fuzz_server_admin) seed "$t" "$root"/tests/fuzz/seeds/server_admin/* ;;
    fuzz_server_enrollment)
      # The real devices' requests, each behind a selector byte for its endpoint.
      mkdir -p "$build/corpus/$t"
      for f in "$root"/tests/fixtures/ms-mde2/*/*-0[234]-req-body.min.xml; do
        [[ -f "$f" ]] || continue
        n=$(basename "$f" | sed 's/.*-0\([234]\)-req.*/\1/')
        printf '%s' "$((n - 2))" | cat - "$f" >"$build/corpus/$t/seed-$(basename "$f")"
      done
      ;;
  esac
  seed "$t" "$root/tests/fuzz/regressions/$t"/*
done

dict_for() {
  case "$1" in
    fuzz_uri) echo "$root/tests/fuzz/uri.dict" ;;
    fuzz_server_admin) echo "" ;;
    *) echo "$root/tests/fuzz/syncml.dict" ;;
  esac
}

declare -A execs findings status took
failed=0
for t in "${targets[@]}"; do
  artifacts="$build/artifacts/$t"
  mkdir -p "$artifacts"
  log="$build/logs/$t.log"
  mkdir -p "$(dirname "$log")"
  before=$(find "$artifacts" -type f | wc -l)
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$artifacts/" "$build/corpus/$t")
  [[ -n "$runs" ]] && args=(-runs="$runs" "${args[@]}")
  d="$(dict_for "$t")"
  [[ -n "$d" ]] && args=(-dict="$d" "${args[@]}")
  echo "== $t (${runs:+$runs runs, }${seconds}s) log: $log"
  rc=0
  # Inputs that once failed (tests/fuzz/regressions/<target>/) first: each runs once.
  regressions=("$root/tests/fuzz/regressions/$t"/*)
  if [[ -e "${regressions[0]}" ]]; then
    "$build/tests/fuzz/$t" "${regressions[@]}" >"$log.regressions" 2>&1 || rc=$?
    if ((rc != 0)); then
      echo "   a regression input fails again: $log.regressions"
      execs[$t]=0
      findings[$t]=1
      status[$t]="REGRESSION (rc $rc)"
      failed=1
      continue
    fi
  fi
  t0=$(date +%s%N)
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}" \
    UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}" \
    "$build/tests/fuzz/$t" "${args[@]}" >"$log" 2>&1 || rc=$?
  took[$t]=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  execs[$t]=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  [[ -z "${execs[$t]}" ]] && execs[$t]=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  after=$(find "$artifacts" -type f | wc -l)
  findings[$t]=$((after - before))
  if ((rc != 0 || findings[$t] > 0)); then
    status[$t]="FOUND (rc $rc)"
    failed=1
    grep -m3 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' "$log" || true
  else
    status[$t]=ok
  fi
done

echo
printf '%-24s %12s %9s %10s %8s  %s\n' target executions seconds execs/s crashes status
for t in "${targets[@]}"; do
  secs="${took[$t]:-0}"
  rate=$(awk -v n="${execs[$t]:-0}" -v s="$secs" 'BEGIN { printf "%d", (s > 0) ? n / s : 0 }')
  printf '%-24s %12s %9s %10s %8s  %s\n' "$t" "${execs[$t]:-?}" "$secs" "$rate" \
    "${findings[$t]}" "${status[$t]}"
done
echo "artifacts: $build/artifacts/<target>/"
exit "$failed"
