#!/usr/bin/env bash
# CTest entry fuzz_requests: configures a separate build of tests/fuzz/ with clang++-14
# (-fsanitize=fuzzer,address,undefined), builds both fuzz targets and runs them side by side
# for a bounded time, starting from the seed corpus in tests/fuzz/corpus/. Fails on any crash,
# leak, UB report, broken invariant or stalled input, and when clang++-14 or its libFuzzer
# runtime is missing (never skips).
#
#   run_fuzz.sh BUILD_DIR
# Environment: FUZZ_DECODERS_SECONDS (default 20), FUZZ_SESSION_SECONDS (default 40),
# FUZZ_JOBS (build parallelism, default 2). Longer runs by hand: docs/TESTING.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_fuzz.sh BUILD_DIR}
decoders_seconds=${FUZZ_DECODERS_SECONDS:-20}
session_seconds=${FUZZ_SESSION_SECONDS:-40}
jobs=${FUZZ_JOBS:-2}
started=$(date +%s)

if ! command -v clang++-14 > /dev/null; then
  echo "FAIL: clang++-14 not found; install the Debian packages clang-14 and libclang-rt-14-dev (README quick start)" >&2
  exit 1
fi
runtime=$(clang++-14 -print-file-name=libclang_rt.fuzzer-x86_64.a)
if [[ ! -f $runtime ]]; then
  echo "FAIL: clang++-14 has no libFuzzer runtime ($runtime); install libclang-rt-14-dev" >&2
  exit 1
fi

mkdir -p "$build"
cmake -S "$here" -B "$build" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build/configure.log" 2>&1 ||
  { cat "$build/configure.log" >&2; echo "FAIL: configuring the fuzz build" >&2; exit 1; }
cmake --build "$build" -j"$jobs" --target fuzz_decoders fuzz_session
built=$(date +%s)

symbolizer=$(command -v llvm-symbolizer-14 || true)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}${symbolizer:+:external_symbolizer_path=$symbolizer}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}${symbolizer:+:external_symbolizer_path=$symbolizer}

# name | seconds | max_len | extra flags
run_target() {
  local name=$1 seconds=$2 max_len=$3
  shift 3
  local work=$build/corpus/$name artifacts=$build/artifacts/$name/
  mkdir -p "$work" "$artifacts"
  "$build/$name" -max_total_time="$seconds" -timeout=10 -max_len="$max_len" -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$artifacts" "$@" "$work" "$here/corpus/${name#fuzz_}" > "$build/$name.log" 2>&1
}

run_target fuzz_decoders "$decoders_seconds" 2048 & decoders=$!
run_target fuzz_session "$session_seconds" 8192 -dict="$here/corpus/session.dict" & session=$!
declare -A failed=([fuzz_decoders]=0 [fuzz_session]=0)
wait $decoders || failed[fuzz_decoders]=1
wait $session || failed[fuzz_session]=1

status=0
for name in fuzz_decoders fuzz_session; do
  log=$build/$name.log
  echo "== $name: $(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1)"
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$log" || true
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|libFuzzer)|runtime error:|invariant broken|Assertion .* failed' "$log"; then
    failed[$name]=1
  fi
  if [[ ${failed[$name]} -ne 0 ]]; then
    status=1
    echo "-- $log (last 60 lines):"
    tail -60 "$log"
    ls -l "$build/artifacts/$name/" 2>/dev/null || true
  fi
done
echo "fuzz_requests: build $((built - started)) s, fuzzing $(( $(date +%s) - built )) s"
if [[ $status -ne 0 ]]; then
  echo "FAIL: a fuzz target found a problem; the input is in $build/artifacts/ (reproduce: docs/TESTING.md)" >&2
fi
exit $status
