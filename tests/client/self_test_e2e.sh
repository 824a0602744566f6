#!/usr/bin/env bash
# End-to-end: `client test` against a real server that already has users and waiting
# messages; the self-test must pass, leave the user's files and other mailboxes alone, and
# clean up its temporary directory.
# Usage: self_test_e2e.sh <server binary> <client binary>
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
passed=$(printf '%s\n' "$out" | grep -c '^ok ')
((passed >= 17)) || fail "only $passed checks passed"

after=$(cd "$work/resident" && sha256sum me.info keyring.info)
[[ $before == "$after" ]] || fail "client test modified the user's me.info or keyring.info"
[[ -z $(ls -A "$TMPDIR") ]] || fail "client test left files in TMPDIR: $(ls -A "$TMPDIR")"

out=$(run_menu "$work/other" '2\n4\n0\n')
expect_contains "$out" $'From: resident\nContent:\nRequest for symmetric key\n-----<EOM>-----' \
  "the resident's waiting message survived the self-test"

# A self-test against a server that is not there fails with a non-zero status.
echo "127.0.0.1:1" >"$work/nowhere.info"
mkdir -p "$work/nowhere" && mv "$work/nowhere.info" "$work/nowhere/server.info"
if (cd "$work/nowhere" && timeout 60 "$client_bin" test >"$work/nowhere.out" 2>&1); then
  fail "client test passed without a server"
fi
grep -q " failed" "$work/nowhere.out" || fail "no summary line without a server"
echo "self_test_e2e: all good"
