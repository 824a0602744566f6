# Shared helpers of the client end-to-end tests (sourced): a throwaway server on an ephemeral
# loopback port in a temp directory, always killed on exit, and output assertions.
set -euo pipefail

server_bin=$1
client_bin=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/letterbox-e2e-XXXXXX")
server_pid=""

cleanup() {
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [[ -f $work/server.log ]]; then echo "--- server log (tail)" >&2; tail -20 "$work/server.log" >&2; fi
  exit 1
}

# Starts the server (with $server_flags) and writes server.info into each directory given.
server_flags=${server_flags:-}
start_server() {
  # shellcheck disable=SC2086
  "$server_bin" --port 0 --bind 127.0.0.1 --ready-file "$work/port" --db "$work/server.db" $server_flags \
    2>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 100); do  # at most 10 s
    [[ -s $work/port ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "server exited during start-up"
    sleep 0.1
  done
  [[ -s $work/port ]] || fail "server did not write its ready file within 10 s"
  local port
  port=$(tr -d '\n' <"$work/port")
  for dir in "$@"; do
    mkdir -p "$dir"
    echo "127.0.0.1:$port" >"$dir/server.info"
  done
}

# run_menu DIR INPUT: drives the menu of the client in DIR through a pipe (bounded in time);
# the output goes to stdout. $client_flags (e.g. --v1) go before the directory.
client_flags=${client_flags:-}
run_menu() {
  # shellcheck disable=SC2086
  printf '%b' "$2" | timeout 120 "$client_bin" $client_flags --dir "$1" --timeout 30 || fail "client in $1 exited with $?"
}

# expect_contains TEXT EXPECTED DESCRIPTION
expect_contains() {
  [[ $1 == *"$2"* ]] || { printf '%s\n' "$1" >&2; fail "$3: output lacks \"$2\""; }
}
