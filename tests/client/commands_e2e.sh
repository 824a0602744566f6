#!/usr/bin/env bash
# End-to-end: the scriptable subcommands against the real server: output lines, --json,
# exit codes (2 usage, 3 downgrade refused), texts from stdin, files saved under their
# download names, and hostile names escaped. Works against a v1-only server (fallback) and
# a v2 server alike; the v2-only parts are in v2_e2e.sh.
# Usage: commands_e2e.sh <server binary> <client binary>
source "$(dirname "$0")/e2e_lib.sh"

server_flags="--timeout 1"  # idle connections are closed after 1 s (the menu must reconnect)
start_server "$work/a" "$work/b"
run() {  # run DIR ARGS...: the client's stdout; its status in $status, stderr in $work/err
  local dir=$1
  shift
  set +e
  out=$(timeout 120 "$client_bin" --dir "$dir" --timeout 30 "$@" 2>"$work/err")
  status=$?
  set -e
}

run "$work/a" bogus-command
[[ $status == 2 ]] || fail "an unknown subcommand exits $status, not 2"
run "$work/a" send
[[ $status == 2 ]] || fail "send without NAME exits $status, not 2"
run "$work/a" --help
[[ $status == 0 ]] || fail "--help exits $status"
run "$work/a" whoami
[[ $status == 1 ]] || fail "whoami before registering exits $status, not 1"
grep -q "not registered yet" "$work/err" || fail "whoami before registering: $(cat "$work/err")"

run "$work/a" register alice
[[ $status == 0 ]] || fail "register alice: $status $(cat "$work/err")"
[[ $out =~ ^registered\ name=alice\ id=[0-9a-f]{32}\ protocol=v[12]$ ]] || fail "register output: $out"
protocol=${out##*protocol=}
echo "server speaks $protocol"
run "$work/b" register "bob builder"
[[ $out == "registered name=bob\\x20builder "* ]] || fail "a name with a space is escaped: $out"
run "$work/a" whoami
[[ $out =~ ^me\ name=alice\ id=[0-9a-f]{32}\ identity=$protocol$ ]] || fail "whoami: $out"
run "$work/a" --json whoami
[[ $out =~ ^\{\"event\":\"me\",\"name\":\"alice\",\"id\":\"[0-9a-f]{32}\",\"identity\":\"$protocol\"\}$ ]] || fail "whoami --json: $out"
run "$work/a" list
# (a v2 peer on a server with live delivery also gets its presence, docs/PROTOCOL.md §30)
[[ $out =~ ^client\ id=[0-9a-f]{32}\ kind=(v1|v2)\ name=bob\\x20builder(\ online=(yes|no)\ last_seen=[0-9]+)?$ ]] || fail "list: $out"
# A menu left idle longer than the server's timeout: the next choice works (a new session).
out=$({ printf '2\n'; sleep 2.5; printf '2\n0\n'; } | timeout 60 "$client_bin" --dir "$work/a" 2>&1)
# (menu 2 adds a v2 peer's presence after the name: "(online)", "(offline, last seen ...)")
[[ $(grep -cE '^bob builder( \((online|offline)[^)]*\))?$' <<<"$out") == 2 ]] || fail "the menu failed after an idle period: $out"

if [[ $protocol == v1 ]]; then  # v1 peers need the key exchange first
  printf '52\nbob builder\n0\n' | "$client_bin" --dir "$work/a" >/dev/null 2>&1
  printf '4\n0\n' | "$client_bin" --dir "$work/b" >/dev/null 2>&1
fi
printf 'line one\nline two\x1b[2J\n' | { run "$work/a" send "bob builder" -; echo "$status $out" >"$work/sent"; }
read -r sent_status sent_line <"$work/sent"
[[ $sent_status == 0 && $sent_line =~ ^sent\ id=[0-9]+\ to=bob\\x20builder\ sealed=(yes|no)$ ]] || fail "send from stdin: $sent_status $sent_line"
run "$work/a" send "bob builder" "second text"
[[ $status == 0 ]] || fail "send TEXT: $(cat "$work/err")"
head -c 200000 /dev/urandom >"$work/report v1.bin"
run "$work/a" send-file "bob builder" "$work/report v1.bin"
[[ $status == 0 ]] || fail "send-file: $(cat "$work/err")"
run "$work/a" send nobody hi
[[ $status == 1 ]] && grep -q 'no user named "nobody"' "$work/err" || fail "unknown user: $status $(cat "$work/err")"
run "$work/a" send $'evil\x1b[2Jname' hi  # a name echoed in an error is escaped too
grep -qF 'no user named "evil\x1b[2Jname"' "$work/err" && ! grep -q $'\x1b' "$work/err" || fail "raw escape in an error: $(cat -v "$work/err")"

run "$work/b" pull
[[ $status == 0 ]] || fail "pull: $(cat "$work/err")"
printf '%s\n' "$out"
expect_contains "$out" 'kind=text' "pull shows texts"
expect_contains "$out" 'line one\x0aline two\x1b[2J' "a pulled text is one escaped line"
[[ $out != *'line two\x1b[2J\x0a'* ]] || fail "the line end that ended stdin was sent as part of the text"
expect_contains "$out" ' second text' "the second text"
expect_contains "$out" 'pulled count=' "pull summary"
[[ $out != *$'\x1b'* ]] || fail "an escape character reached the output"
path=$(printf '%s\n' "$out" | grep -o 'path=[^ ]*' | head -1 | cut -d= -f2 | sed 's/\\x20/ /g')
[[ -f $path ]] || fail "no saved file in the pull output ($path)"
[[ $path == "$work/b/downloads/"* ]] || fail "the file is not in the download directory: $path"
cmp -s "$path" "$work/report v1.bin" || fail "the received file differs"
[[ $(stat -c %a "$work/b/downloads") == 700 ]] || fail "download directory not 0700"
[[ $(stat -c %a "$path") == 600 ]] || fail "received file not 0600"
run "$work/b" --json pull
[[ $out == '{"event":"pulled","count":"0"}' ]] || fail "empty pull --json: $out"

# Downgrade: a server this client saw speak v2 that now answers v1 only is refused (exit 3);
# --allow-v1 lets it through once. With a v1-only server, pretend it spoke v2 before.
if [[ $protocol == v1 ]]; then
  cp "$work/a/server.info" "$work/a/servers.v2"
  run "$work/a" list
  [[ $status == 3 ]] || fail "a downgrade exits $status, not 3"
  grep -q "refusing to fall back to v1" "$work/err" || fail "downgrade message: $(cat "$work/err")"
  printf '2\n0\n' | { set +e; "$client_bin" --dir "$work/a" >"$work/menu.out" 2>&1; echo $? >"$work/menu.status"; }
  [[ $(cat "$work/menu.status") == 3 ]] || fail "the menu goes on after a downgrade: $(cat "$work/menu.out")"
  run "$work/a" --allow-v1 list
  [[ $status == 0 ]] || fail "--allow-v1 list: $status $(cat "$work/err")"
  grep -q "falling back to v1" "$work/err" || fail "no fallback note with --allow-v1"
  [[ $(grep -c "falling back" "$work/err") == 1 ]] || fail "the fallback is said more than once"
fi
echo "commands_e2e: all good"
