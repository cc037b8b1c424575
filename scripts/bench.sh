#!/usr/bin/env bash
# Builds a Release tree, runs dm_bench (tests/bench) and the footprint measurements, and prints
# one Markdown table: metric, value, floor, ratio, target, met?
#
#   scripts/bench.sh                  # build-bench/ (or $DMAGENT_BUILD_DIR)
#   BENCH_STATUS_RUNS=51 scripts/bench.sh
#
# Floors are measured in the same run: tinyxml2 parsing / printing the same bytes for the codec,
# an HTTPS POST to the same dmserver for sessions. Apply rows give the per-setting cost at each
# size; "ratio" there is that cost over the cost at the smallest size (linear: it does not grow).
# Footprint: `dmagent status` start to exit (median of BENCH_STATUS_RUNS runs), and `dmagent run`
# VmRSS once its first session against a local dmserver is done and it idles. The machine's load
# average is printed with the table: numbers taken on a busy machine are noisy.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DMAGENT_BUILD_DIR:-$root/build-bench}"
status_runs="${BENCH_STATUS_RUNS:-31}"
for tool in cmake jq; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required" >&2; exit 1; }
done

echo "bench: building $build (Release)" >&2
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target dm_bench dmagent dmserver >/dev/null
BENCH="$build/tests/bench/dm_bench"
DMAGENT="$build/agent/dmagent"
DMSERVER="$build/samples/server/dmserver"
[[ -x "$BENCH" ]] || { echo "bench: $BENCH was not built (libbenchmark-dev missing?)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/dmagent-bench.XXXXXX")"
server_pid="" agent_pid=""
cleanup() {
  [[ -n "$agent_pid" ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- dm_bench ----------------------------------------------------------------------------
echo "bench: running dm_bench (about a minute)" >&2
"$BENCH" --benchmark_out="$work/bench.json" --benchmark_out_format=json \
  --benchmark_counters_tabular=true >&2

# ---- footprint ---------------------------------------------------------------------------
echo "bench: footprint (dmserver on loopback, one enrolled device)" >&2
srv() { "$DMSERVER" --state-dir "$work/server" --test-kdf --log-level warn "$@"; }
agent() { "$DMAGENT" --state-dir "$work/device" --log-level warn "$@"; }
srv init >/dev/null
srv tenant add Fabrikam --id 72f988bf-86f1-41af-91ab-2d7cd011db47 \
  --token-file "$work/enroll-token" >/dev/null
"$DMSERVER" --state-dir "$work/server" --log-level warn serve --listen 127.0.0.1 --port 0 --admin-port 0 \
  --port-file "$work/port" >/dev/null &
server_pid=$!
for _ in $(seq 1 100); do [[ -s "$work/port" ]] && break; sleep 0.1; done
[[ -s "$work/port" ]] || { echo "bench: dmserver did not start" >&2; exit 1; }
agent enroll --email bench@fabrikam.test --token-file "$work/enroll-token" \
  --discovery-url "https://127.0.0.1:$(cat "$work/port")/EnrollmentServer/Discovery.svc" \
  --ca "$work/server/ca.pem" >/dev/null

# dmagent status, start to exit: the median of many runs (one warm-up run first).
agent status >/dev/null
times=()
for _ in $(seq 1 "$status_runs"); do
  t0=$(date +%s%N)
  agent status >/dev/null
  t1=$(date +%s%N)
  times+=($(((t1 - t0) / 1000)))
done
status_us="$(printf '%s\n' "${times[@]}" | sort -n | sed -n "$(((status_runs + 1) / 2))p")"

# dmagent run: idle resident memory after the first session.
"$DMAGENT" --state-dir "$work/device" --log-level info run --poll-seconds 3600 \
  2>"$work/run.log" >/dev/null &
agent_pid=$!
for _ in $(seq 1 200); do
  grep -q "session .* done" "$work/run.log" 2>/dev/null && break
  sleep 0.05
done
grep -q "session .* done" "$work/run.log" || {
  echo "bench: dmagent run did not complete a session:" >&2
  cat "$work/run.log" >&2
  exit 1
}
sleep 2  # idle
rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")"
hwm_kb="$(awk '/^VmHWM:/ {print $2}' "/proc/$agent_pid/status")"
anon_kb="$(awk '/^RssAnon:/ {print $2}' "/proc/$agent_pid/status")"
file_kb="$(awk '/^RssFile:/ {print $2}' "/proc/$agent_pid/status")"
pss_kb="$(awk '/^Pss:/ {print $2}' "/proc/$agent_pid/smaps_rollup" 2>/dev/null || echo 0)"
kill "$agent_pid"
wait "$agent_pid" || true
agent_pid=""
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# ---- the table ---------------------------------------------------------------------------
# bm NAME FIELD: a field of the benchmark run named NAME (the first with that prefix).
bm() {
  jq -r --arg n "$1" --arg f "$2" \
    '[.benchmarks[] | select(.name | startswith($n))][0][$f] // empty' "$work/bench.json"
}
fmt() { LC_ALL=C printf "%.${2:-2}f" "$1"; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a <= b) }'; }
met() { if le "$1" "$2"; then echo "yes"; else echo "**no**"; fi; }

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }

codec_row() {  # label benchmark
  local t floor ratio
  t="$(bm "$2" real_time)"
  floor="$(bm "$2" floor_us)"
  ratio="$(bm "$2" ratio)"
  [[ -n "$t" ]] || { row "$1" "failed" "" "" "≤ 1.5×" "**no**"; return; }
  row "$1" "$(fmt "$t" 1) µs" "$(fmt "$floor" 1) µs" "$(fmt "$ratio")×" "≤ 1.5×" \
    "$(met "$ratio" 1.5)"
}
codec_row "SyncML decode, 20-setting profile ($(bm BM_Decode/profile20 bytes | cut -d. -f1) B)" \
  BM_Decode/profile20
codec_row "SyncML decode, 1,000 commands ($(bm BM_Decode/package1000 bytes | cut -d. -f1) B)" \
  BM_Decode/package1000
codec_row "SyncML encode, 20-setting profile" BM_Encode/profile20
codec_row "SyncML encode, 1,000 commands" BM_Encode/package1000

apply_rows() {  # label benchmark-prefix
  local base="" n cost ratio
  local -A label=([100]="100" [1000]="1,000" [10000]="10,000")
  for n in 100 1000 10000; do
    cost="$(bm "$2/$n/" us_per_setting)"
    [[ -n "$cost" ]] || { row "$1, $n settings" "failed" "" "" "" "**no**"; continue; }
    [[ -n "$base" ]] || base="$cost"
    ratio="$(awk -v a="$cost" -v b="$base" 'BEGIN { print a / b }')"
    row "$1, ${label[$n]} settings" "$(fmt "$cost" 1) µs/setting" "—" \
      "$(fmt "$ratio")× of 100" "linear (≤ 1.5×)" "$(met "$ratio" 1.5)"
  done
}
apply_rows "Apply via exec: PassportForWork policies into SQLite + engine" \
  BM_ApplyPackage/policy
apply_rows "Apply via exec: DMClient nodes into SQLite" BM_ApplyPackage/provider
profile_cost="$(bm BM_ApplyProfile us_per_setting)"
profile_ms="$(bm BM_ApplyProfile real_time)"
row "Apply Hello profile (20 settings) through the engine to the container" \
  "$(fmt "$profile_cost" 1) µs/setting ($(fmt "$profile_ms" 1) ms)" "—" "—" "—" "—"

sessions="$(bm BM_Session sessions_per_s)"
floor_new="$(bm BM_Session floor_new_conn_ms)"
floor_kept="$(bm BM_Session floor_keepalive_ms)"
session_ms="$(bm BM_Session real_time)"
row "Full session, 20-setting profile, mTLS loopback ($(fmt "$(bm BM_Session messages)" 0) POSTs)" \
  "$(fmt "$sessions" 1) sessions/s ($(fmt "$session_ms" 1) ms)" \
  "$(fmt "$(awk -v m="$floor_new" 'BEGIN { print 1000 / m }')" 0) req/s new connection ($(fmt "$floor_new") ms)" \
  "$(fmt "$(bm BM_Session ratio_new_conn)")×" "—" "—"
row "… same, against the kept-alive floor" "" \
  "$(fmt "$(awk -v m="$floor_kept" 'BEGIN { print 1000 / m }')" 0) req/s kept alive ($(fmt "$floor_kept" 3) ms)" \
  "$(fmt "$(bm BM_Session ratio_keepalive)" 0)×" "—" "—"
row "\`dmagent status\` start to exit (median of $status_runs)" \
  "$(fmt "$(awk -v u="$status_us" 'BEGIN { print u / 1000 }')" 1) ms" "—" "—" "—" "—"
mb() { fmt "$(awk -v k="$1" 'BEGIN { print k / 1024 }')" 1; }
rss_mb="$(awk -v k="$rss_kb" 'BEGIN { print k / 1024 }')"
row "\`dmagent run\` idle VmRSS after its first session (peak $(mb "$hwm_kb") MB)" \
  "$(mb "$rss_kb") MB: $(mb "$anon_kb") MB anonymous + $(mb "$file_kb") MB mapped files (PSS $(mb "$pss_kb") MB)" \
  "—" "—" "≤ 8 MB" "$(met "$rss_mb" 8)"

echo
echo "dm_bench $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $load_before (start)" \
  "/ $load_after (end)"
echo
echo "| metric | value | floor | ratio | target | met? |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "ratio: codec = our time / tinyxml2's on the same bytes in the same iterations; apply = cost"
echo "per setting / cost per setting at 100 settings; session = session time / one HTTPS POST to the"
echo "same server (new connection, and kept alive), measured in the same iterations."
