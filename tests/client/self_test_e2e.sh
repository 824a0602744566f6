#!/usr/bin/env bash
# End-to-end: `client test` against a real server that already has users and waiting
# messages; the self-test must pass, leave the user's files and other mailboxes alone, and
# clean up its temporary directory.
# Usage: self_test_e2e.sh <server binary> <client binary>   (LETTERBOX_SERVER_V1=1: a v1-only
# server binary, e.g. main's before v2: the fallback is expected instead of the v2 checks)
source "$(dirname "$0")/e2e_lib.sh"
# The menus here are those of v1 clients (the original design's key exchange, --v1), which a
# v2 server keeps serving; v2 menus are in v2_e2e.sh.
client_flags=--v1

start_server "$work/resident" "$work/other"
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"

# Residents: two users, one waiting message for "other".
out=$(run_menu "$work/resident" '1\nresident\n0\n')
expect_contains "$out" "Registered as resident." "register resident"
out=$(run_menu "$work/other" '1\nother\n0\n')
expect_contains "$out" "Registered as other." "register other"
out=$(run_menu "$work/resident" '51\nother\n0\n')
expect_contains "$out" "Request for symmetric key sent." "resident leaves a message"
before=$(cd "$work/resident" && sha256sum me.info keyring.info)

# The self-test runs from the resident's directory (it reads server.info there).
if ! out=$(cd "$work/resident" && timeout 240 "$client_bin" test 2>&1); then
  printf '%s\n' "$out" >&2
  fail "client test exited non-zero"
fi
printf '%s\n' "$out"
expect_contains "$out" " passed, 0 failed" "self-test summary"
if [[ ${LETTERBOX_SERVER_V1:-0} == 1 ]]; then  # run by hand against a v1-only server binary
  expect_contains "$out" "protocol v1: the server speaks only v1 (fallback" "fallback against the v1 server"
else
  [[ $out == *"protocol v2 (the v2 checks run"* ]] || fail "client test did not run its v2 checks against the v2 server"
fi
passed=$(printf '%s\n' "$out" | grep -c '^ok ')
((passed >= 17)) || fail "only $passed checks passed"

after=$(cd "$work/resident" && sha256sum me.info keyring.info)
[[ $before == "$after" ]] || fail "client test modified the user's me.info or keyring.info"
[[ -z $(ls -A "$TMPDIR") ]] || fail "client test left files in TMPDIR: $(ls -A "$TMPDIR")"

out=$(run_menu "$work/other" '2\n4\n0\n')
expect_contains "$out" $'From: resident\nContent:\nRequest for symmetric key\n-----<EOM>-----' \
  "the resident's waiting message survived the self-test"


# The same self-test against a v1-only server (the v2 server behind a filter that answers v2
# requests as an old server does): the v1 checks pass and the fallback is said once.
python3 "$(dirname "$0")/v1_only_proxy.py" 0 "$(tr -d '\n' <"$work/port")" "$work/proxy.ready" &
proxy_pid=$!
trap 'kill "$proxy_pid" 2>/dev/null || true; cleanup' EXIT
for _ in $(seq 50); do [[ -s $work/proxy.ready ]] && break; sleep 0.1; done
mkdir -p "$work/old" && echo "127.0.0.1:$(cat "$work/proxy.ready")" >"$work/old/server.info"
if ! v1_out=$(cd "$work/old" && timeout 240 "$client_bin" test --file-size-mib 4 2>&1); then
  printf '%s\n' "$v1_out" >&2
  fail "client test against the v1-only server exited non-zero"
fi
expect_contains "$v1_out" "protocol v1: the server speaks only v1 (fallback" "v1 fallback in the self-test"
expect_contains "$v1_out" "ok    fallback to v1 said once" "the fallback note"
expect_contains "$v1_out" " passed, 0 failed" "self-test against the v1-only server"

# A self-test against a server that is not there fails with a non-zero status.
echo "127.0.0.1:1" >"$work/nowhere.info"
mkdir -p "$work/nowhere" && mv "$work/nowhere.info" "$work/nowhere/server.info"
if (cd "$work/nowhere" && timeout 60 "$client_bin" test >"$work/nowhere.out" 2>&1); then
  fail "client test passed without a server"
fi
grep -q " failed" "$work/nowhere.out" || fail "no summary line without a server"
echo "self_test_e2e: all good"
