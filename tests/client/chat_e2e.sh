#!/usr/bin/env bash
# End-to-end live chat (docs/PROTOCOL.md Part V, docs/CLIENT.md): two real clients in
# `client chat NAME` without a TTY (stdin from a FIFO, stable lines on stdout) exchange texts
# live through the real server; each sees the other's message pushed, 'sent' after the 2005, and
# what was shown is acknowledged (a later pull finds nothing). The end of stdin ends a chat.
# Then `client chat '#GROUP'`: two members chat live in a group; a non-member is refused.
# Usage: chat_e2e.sh <server binary> <client binary>
source "$(dirname "$0")/e2e_lib.sh"
chat_pids=()
trap 'for p in "${chat_pids[@]}"; do kill "$p" 2>/dev/null || true; done; cleanup' EXIT

start_server "$work/alice" "$work/bob" "$work/carol"
cl() {
  local dir=$1
  shift
  timeout 60 "$client_bin" --dir "$work/$dir" --timeout 30 "$@" </dev/null 2>>"$work/err"
}
cl alice register alice >/dev/null || fail "register alice"
cl bob register bob >/dev/null || fail "register bob"

# wait_for FILE PATTERN: up to 10 s for a line matching PATTERN (grep -E).
wait_for() {
  for _ in $(seq 200); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  fail "no line matching '$2' in $1: $(cat "$1" 2>/dev/null)"
}

mkfifo "$work/alice.in" "$work/bob.in"
timeout 60 "$client_bin" --dir "$work/alice" --timeout 30 chat bob <"$work/alice.in" >"$work/alice.out" 2>>"$work/err" &
chat_pids+=($!)
alice_pid=$!
timeout 60 "$client_bin" --dir "$work/bob" --timeout 30 chat alice <"$work/bob.in" >"$work/bob.out" 2>>"$work/err" &
chat_pids+=($!)
bob_pid=$!
exec 3>"$work/alice.in" 4>"$work/bob.in"
wait_for "$work/alice.out" '^chat with=bob state=subscribed$'
wait_for "$work/bob.out" '^chat with=alice state=subscribed$'

# Presence in list: bob is online (his chat's connections are open), last seen known.
out=$(cl alice list)
[[ $out =~ kind=v2\ name=bob\ online=yes\ last_seen=[1-9][0-9]* ]] || fail "presence of bob in list: $out"
# ... and in the menu's list (option 2).
out=$(printf '2\n0\n' | timeout 60 "$client_bin" --dir "$work/alice" --timeout 30 2>>"$work/err")
[[ $out == *$'bob (online)\n'* ]] || fail "presence of bob in menu 2: $out"

echo "hello bob, live" >&3
wait_for "$work/alice.out" '^sent id=[0-9]+ to=bob sealed=yes$'
wait_for "$work/bob.out" '^message id=[0-9]+ from=alice kind=text authenticated=yes legacy=no hello bob, live$'
echo "hi alice" >&4
echo "second line" >&4
wait_for "$work/alice.out" 'from=bob kind=text authenticated=yes legacy=no hi alice$'
wait_for "$work/alice.out" 'from=bob kind=text authenticated=yes legacy=no second line$'
# A control character is shown escaped, never raw.
printf 'bell\a here\n' >&3
wait_for "$work/bob.out" 'from=alice kind=text .* bell\\x07 here$'
grep -q $'\a' "$work/bob.out" && fail "a raw control character reached the output"

exec 3>&- 4>&-  # the end of input ends both chats
wait "$alice_pid" || fail "alice's chat exited with $?"
wait "$bob_pid" || fail "bob's chat exited with $?"
chat_pids=()
grep -q '^chat with=bob state=ended$' "$work/alice.out" || fail "alice: no end line"
grep -q '^chat with=alice state=ended$' "$work/bob.out" || fail "bob: no end line"

# Presence: offline once his connections closed (the list waits for the server to see the close).
for _ in $(seq 50); do
  out=$(cl alice list)
  [[ $out =~ kind=v2\ name=bob\ online=no\ last_seen=[1-9] ]] && break
  sleep 0.1
done
[[ $out =~ kind=v2\ name=bob\ online=no\ last_seen=[1-9] ]] || fail "bob still online after his chat: $out"
out=$(printf '2\n0\n' | timeout 60 "$client_bin" --dir "$work/alice" --timeout 30 2>>"$work/err")
[[ $out =~ bob\ \(offline,\ last\ seen\ 20[0-9]{2}-[0-9]{2}-[0-9]{2}\ [0-9:]{8}\ UTC\) ]] || fail "bob's last seen in menu 2: $out"

# Everything shown was acknowledged: nothing is waiting.
[[ $(cl bob pull) == "pulled count=0" ]] || fail "bob still has mail after the chat"
[[ $(cl alice pull) == "pulled count=0" ]] || fail "alice still has mail after the chat"

# A message sent while bob is not chatting waits, and comes with a pull (offline recipient).
cl alice send bob "while you were away" >/dev/null || fail "send"
out=$(cl bob pull)
[[ $out == *"from=alice kind=text authenticated=yes legacy=no while you were away"* ]] || fail "offline message: $out"

# --- client chat '#GROUP'
cl carol register carol >/dev/null || fail "register carol"
cl alice group create room >/dev/null || fail "group create"
cl alice group invite room bob >/dev/null || fail "invite bob"
cl bob group join room >/dev/null || fail "bob joins"
# carol is not a member: refused before anything is sent, with a clear error (a closed group is
# not even listed to her; an open one she has not joined is).
if cl carol chat '#room' >"$work/carol.out"; then fail "carol chatted in a closed group she is not in"; fi
grep -q 'no group named "room" is listed for you' "$work/err" || fail "carol, closed group: $(tail -2 "$work/err")"
[[ -s $work/carol.out ]] && fail "carol's refused chat in #room printed: $(cat "$work/carol.out")"
cl alice group create lobby --open >/dev/null || fail "group create --open"
if cl carol chat '#lobby' >"$work/carol.out"; then fail "carol chatted in an open group she has not joined"; fi
grep -q "not a member of group lobby: join it first" "$work/err" || fail "carol, open group: $(tail -2 "$work/err")"
[[ -s $work/carol.out ]] && fail "carol's refused chat in #lobby printed: $(cat "$work/carol.out")"
# The menu's option 10 refuses her too, and goes on (its input is still the menu's).
out=$(printf '10\n#lobby\n8\n0\n' | timeout 60 "$client_bin" --dir "$work/carol" --timeout 30 2>&1)
[[ $out == *"not a member of group lobby: join it first"* ]] || fail "menu 10, non-member: $out"
[[ $out == *"Name: carol"* ]] || fail "the menu did not go on after a refused chat: $out"
: >"$work/alice.out"
: >"$work/bob.out"
timeout 60 "$client_bin" --dir "$work/alice" --timeout 30 chat '#room' <"$work/alice.in" >"$work/alice.out" 2>>"$work/err" &
chat_pids+=($!)
alice_pid=$!
timeout 60 "$client_bin" --dir "$work/bob" --timeout 30 chat '#room' <"$work/bob.in" >"$work/bob.out" 2>>"$work/err" &
chat_pids+=($!)
bob_pid=$!
exec 3>"$work/alice.in" 4>"$work/bob.in"
wait_for "$work/alice.out" '^chat group=room state=subscribed$'
wait_for "$work/bob.out" '^chat group=room state=subscribed$'
echo "hello room" >&3
wait_for "$work/alice.out" '^group-sent group=room id=[0-9a-f]{32} delivered=1 skipped=0 sealed-for=2$'
wait_for "$work/bob.out" '^group-message id=[0-9]+ group=room from=alice kind=text authenticated=yes #room <alice>: hello room$'
echo "bob here" >&4
wait_for "$work/alice.out" '^group-message id=[0-9]+ group=room from=bob kind=text authenticated=yes #room <bob>: bob here$'
# A direct message during a group chat is shown too (the subscription is the whole mailbox).
cl carol send alice "direct to alice" >/dev/null || fail "carol's direct send"
wait_for "$work/alice.out" 'from=carol kind=text authenticated=yes legacy=no direct to alice$'
exec 3>&- 4>&-
wait "$alice_pid" || fail "alice's group chat exited with $?"
wait "$bob_pid" || fail "bob's group chat exited with $?"
chat_pids=()
grep -q '^chat group=room state=ended$' "$work/alice.out" || fail "alice: no group chat end line"
# Menu 10 with a #group: bob's lines go to the group, the end of input ends the chat and the menu.
out=$(printf '10\n#room\nfrom the menu\n' | timeout 60 "$client_bin" --dir "$work/bob" --timeout 30 2>&1)
[[ $out == *"Chat in #room: type lines"* ]] || fail "menu 10 #room: no banner: $out"
[[ $out == *"(sent to 1 member)"* ]] || fail "menu 10 #room: not sent: $out"
[[ $out == *"Chat ended."* ]] || fail "menu 10 #room: no end: $out"
out=$(cl alice pull)
[[ $out == *"#room <bob>: from the menu"* ]] || fail "alice did not get bob's menu line: $out"
[[ $(cl bob pull) == "pulled count=0" ]] || fail "bob still has mail after the group chat"
[[ $(cl alice pull) == "pulled count=0" ]] || fail "alice still has mail after the group chat"
echo "chat e2e: ok"
