#!/usr/bin/env bash
# Smoke run of the benchmark tools with tiny parameters: every loadgen scenario against a real
# server (each must exit 0 and print its BENCH_RESULT line with errors 0), the limits, the
# null_server ceiling, and the report writer over the collected results.
#   loadgen_smoke.sh SERVER LOADGEN LIMITS NULL_SERVER WRITE_REPORT_PY BUILD_DIR
set -euo pipefail
SERVER=$1 LOADGEN=$2 LIMITS=$3 NULL_SERVER=$4 WRITE_REPORT=$5 BUILD_DIR=$6
WORK=$(mktemp -d "${TMPDIR:-/tmp}/letterbox-bench-smoke.XXXXXX")
PID=""
cleanup() {
  if [[ -n "$PID" ]]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
RESULTS=$WORK/results.jsonl
: >"$RESULTS"

start() {  # start NAME BINARY ARGS...
  local dir=$WORK/$1 binary=$2
  shift 2
  mkdir -p "$dir"
  "$binary" --port 0 --bind 127.0.0.1 --ready-file "$dir/port" "$@" 2>"$dir/log" &
  PID=$!
  for _ in $(seq 100); do [[ -s "$dir/port" ]] && break; sleep 0.1; done
  [[ -s "$dir/port" ]] || { cat "$dir/log"; echo "FAIL: $1 did not start"; exit 1; }
  PORT=$(cat "$dir/port")
}
stop() {
  kill -TERM "$PID"
  wait "$PID" || { echo "FAIL: server exit status $?"; exit 1; }
  PID=""
}
run() {  # run SCENARIO ARGS...: the loadgen must succeed and report errors 0
  local scenario=$1
  shift
  local out=$WORK/$scenario-$RANDOM.out
  if ! timeout 60 "$LOADGEN" --port "$PORT" --server-pid "$PID" "$@" >"$out" 2>&1; then
    cat "$out"; echo "FAIL: loadgen $*"; exit 1
  fi
  grep -q "^BENCH_RESULT {\"scenario\":\"$scenario\".*\"errors\":0" "$out" || { cat "$out"; echo "FAIL: no clean result for $scenario"; exit 1; }
  grep '^BENCH_RESULT' "$out" | sed 's/^BENCH_RESULT //' >>"$RESULTS"
}

timeout 60 "$LIMITS" --dir "$WORK" --seconds 0.05 --seq-bytes $((1 << 20)) >"$WORK/limits.out"
[[ $(grep -c "^BENCH_RESULT {\"scenario\":\"limit-" "$WORK/limits.out") == 11 ]] || { cat "$WORK/limits.out"; echo "FAIL: limits"; exit 1; }
grep '^BENCH_RESULT' "$WORK/limits.out" | sed 's/^BENCH_RESULT //' >>"$RESULTS"

start null "$NULL_SERVER"
run send --duration 0.2 --label ceiling send --connections 4
run send-legacy --duration 0.2 --label ceiling send-legacy --connections 2
run latency --duration 0.3 --label fixed-null latency --rate 200 --connections 4
stop

start real "$SERVER" --db "$WORK/real/server.db" --log-level warn --timeout 60 --max-connections 1000
run send --duration 0.3 send --connections 4
run send-legacy --duration 0.3 send-legacy --connections 2
run pull pull --connections 2 --messages-per-mailbox 30 --preload-connections 3
run send-v2 --duration 0.3 --label ab1 send-v2 --connections 4
run pull-v2 --label ab1 pull-v2 --connections 2 --messages-per-mailbox 30 --preload-connections 3
run file file --file-size $((3 << 20))
run idle idle --idle-connections 50 --fresh-samples 3
run latency --duration 0.3 --label fixed latency --rate 200 --connections 4
run latency --duration 0.3 latency --rate 200 --connections 4
run long-reader --duration 0.8 --content-size 8192 long-reader --rate 200 --connections 4 --db "$WORK/real/server.db" \
  --reader-start 0.2 --reader-seconds 0.3
stop

# list on its own server; the per-IP registration rate (per minute), where the server has one, is raised.
LIST_FLAGS=()
if [[ $("$SERVER" --help) == *--registration-rate* ]]; then LIST_FLAGS=(--registration-rate 100000000); fi
start list "$SERVER" --db "$WORK/list/server.db" --log-level warn --timeout 60 "${LIST_FLAGS[@]}"
run list --duration 0.3 list --clients 500 --register-connections 4 --connections 4 --warmup-seconds 0.1
stop

# group-send (docs/PROTOCOL.md Part IV) on its own server, where the server has groups: 20
# members register at once (the registration rate raised as for list), 3 delivery rounds.
if [[ $("$SERVER" --help) == *--max-group-members* ]]; then
  start groups "$SERVER" --db "$WORK/groups/server.db" --log-level warn --timeout 60 "${LIST_FLAGS[@]}"
  run group-send --duration 0.3 group-send --connections 20 --rounds 3
  stop
fi

# push (Part V) on its own server, where the server has live delivery (--heartbeat-timeout).
if [[ $("$SERVER" --help) == *--heartbeat-timeout* ]]; then
  start push "$SERVER" --db "$WORK/push/server.db" --log-level warn --timeout 60 "${LIST_FLAGS[@]}"
  run push --duration 0.3 push --connections 20
  stop
fi

# python3 is in the README's install line: a missing one is a failure, not a skip.
command -v python3 >/dev/null || { echo "FAIL: python3 (for the report writer) is not installed"; exit 1; }
python3 "$WRITE_REPORT" --results "$RESULTS" --output "$WORK/BENCHMARKS.md" --build-dir "$BUILD_DIR" \
  --work-dir "$WORK" --repo "$(dirname "$WRITE_REPORT")/.." --quick
for figure in "send, 64 keep-alive" "send-legacy, 16 clients" "file 1 GiB send" "latency at half of max" \
  "long reader" "101 with 500 clients" "sends while 101s run"; do
  grep -q "$figure" "$WORK/BENCHMARKS.md" || { echo "FAIL: report lacks '$figure'"; exit 1; }
done
grep -q "server vs null_server (issue 8.13)" "$WORK/BENCHMARKS.md" || { echo "FAIL: report lacks the fixed-rate pair"; exit 1; }
echo "bench smoke: every scenario, the limits and the report ran clean"
