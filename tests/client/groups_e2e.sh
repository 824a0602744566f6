#!/usr/bin/env bash
# End-to-end groups with the real server (docs/PROTOCOL.md Part IV, §16a), five clients, no TTY
# (stdin is /dev/null or a pipe): a closed group with invite/join/leave/kick/ban, a message
# reaching every member, a member who joined later not reading earlier messages, a member who
# left or was kicked getting nothing sent after it, and, even when the operator puts such a
# message into the kicked member's mailbox (server.db), not able to open it ("not addressed to
# you": nothing was wrapped for it); an offline member receiving after it comes back; an open
# group (chat room); a group file stored once and received intact by every member; a text from
# stdin; a member whose keys the operator replaced refuses the group send (exit 4); the menu's
# group options through a pipe.
# Usage: groups_e2e.sh <server binary> <client binary>
source "$(dirname "$0")/e2e_lib.sh"

people=(alice bob carol dave erin)
start_server "${people[@]/#/$work/}"
port=$(tr -d '\n' <"$work/port")

cl() {
  local dir=$1
  shift
  set +e
  out=$(timeout 120 "$client_bin" --dir "$work/$dir" --timeout 30 "$@" 2>"$work/err" </dev/null)
  status=$?
  set -e
}
expect_status() { [[ $status == "$1" ]] || fail "$2: exit status $status, not $1 ($(cat "$work/err"); out: $out)"; }
expect_lacks() { [[ $1 != *"$2"* ]] || { printf '%s\n' "$1" >&2; fail "$3: output has \"$2\""; }; }

for p in "${people[@]}"; do
  cl "$p" register "$p"
  expect_status 0 "register $p"
done

# --- a closed group: only invited users join
cl alice group create team
expect_status 0 "create team"
expect_contains "$out" "group-created id=" "create prints the ID"
team_id=$(sed -n 's/.*group-created id=\([0-9a-f]*\).*/\1/p' <<<"$out")
[[ ${#team_id} == 32 ]] || fail "no group ID in: $out"
cl dave group join "$team_id"  # a closed group is not listed to him: by ID
expect_status 1 "dave joins a closed group uninvited"
expect_contains "$(cat "$work/err")" "not_invited" "the server refuses"
cl alice group invite team bob
expect_status 0 "invite bob"
cl alice group invite team carol
expect_status 0 "invite carol"
cl bob group list
expect_contains "$out" "name=team" "bob sees his invitation"
expect_contains "$out" "invited=yes" "as an invitation"
cl bob group join team
expect_status 0 "bob joins"
cl carol group join "$team_id"
expect_status 0 "carol joins by ID"
cl bob group invite team dave
expect_status 1 "a member who is not the admin cannot invite"
expect_contains "$(cat "$work/err")" "not_admin" "not_admin"
cl carol group members '#team'
expect_status 0 "members"
expect_contains "$out" "name=alice admin=yes" "alice is the admin"
expect_contains "$out" "name=bob admin=no" "bob listed"
expect_contains "$out" "name=carol admin=no" "carol listed"

# --- one message reaches every member
cl alice send '#team' "hello team"
expect_status 0 "send to #team"
expect_contains "$out" "delivered=2" "both other members got it"
expect_contains "$out" "sealed-for=3" "sealed for the three members"
for p in bob carol; do
  cl "$p" pull
  expect_status 0 "$p pulls"
  expect_contains "$out" "#team <alice>: hello team" "$p reads the group message"
  expect_contains "$out" "authenticated=yes" "$p: authenticated"
done
cl carol send '#team' $'escape \e[2J here'
expect_status 0 "carol sends a text with an ESC"
cl alice pull
expect_contains "$out" "#team <carol>: escape \\x1b[2J here" "alice sees it escaped"
[[ $out != *$'\e'* ]] || fail "a raw ESC reached the output"
cl bob pull  # carol's message

# --- a member who joins later cannot read earlier messages
cl alice send '#team' "before dave"
expect_status 0 "send before dave"
cl alice group invite team dave
cl dave group join team
expect_status 0 "dave joins"
cl dave pull
expect_status 0 "dave pulls"
expect_lacks "$out" "before dave" "dave gets nothing from before he joined"
expect_contains "$out" "pulled count=0" "dave's mailbox is empty"
cl alice send '#team' "welcome dave"
cl dave pull
expect_contains "$out" "#team <alice>: welcome dave" "dave reads what came after he joined"

# --- leave: nothing after it
cl bob group leave team
expect_status 0 "bob leaves"
cl bob pull  # "before dave", "welcome dave"
expect_contains "$out" "#team <alice>: before dave" "bob got what was sent while he was a member"
cl alice send '#team' "after bob left"
cl bob pull
expect_lacks "$out" "after bob left" "bob gets nothing after he left"

# --- kick: nothing after it, not even through the operator
cl carol pull  # drain: before dave, welcome dave, after bob left
expect_contains "$out" "after bob left" "carol still a member"
cl alice group kick team carol
expect_status 0 "alice kicks carol"
cl carol send '#team' "am I still in?"
expect_status 1 "a kicked member cannot send"
expect_contains "$(cat "$work/err")" "not_a_member" "not_a_member"
cl alice send '#team' "secret after the kick"
expect_contains "$out" "delivered=1" "only dave gets it"
expect_contains "$out" "sealed-for=2" "sealed for alice and dave only"
cl carol pull
expect_lacks "$out" "secret after the kick" "carol gets nothing after the kick"
# The operator copies dave's copy of that message into carol's mailbox: carol still cannot open it.
cl carol whoami
carol_id=$(sed -n 's/.* id=\([0-9a-f]*\).*/\1/p' <<<"$out")
cl dave whoami
dave_id=$(sed -n 's/.* id=\([0-9a-f]*\).*/\1/p' <<<"$out")
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
python3 - "$work/server.db" "$carol_id" "$dave_id" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
carol, dave = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
row = db.execute("SELECT FromClient, Type, Content, ContentSize, ContentFile, SentAt, GroupID, ContentRef FROM messages "
                 "WHERE ToClient = ? AND Type = 18 ORDER BY ID DESC LIMIT 1", (dave,)).fetchone()
assert row is not None, "dave has no group message waiting"
next_id = (db.execute("SELECT MAX(MessageID) FROM messages WHERE ToClient = ?", (carol,)).fetchone()[0] or 0) + 1000
db.execute("INSERT INTO messages (ToClient, FromClient, Type, Content, ContentSize, ContentFile, SentAt, MessageID, GroupID, ContentRef) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", (carol, *row[:6], next_id, *row[6:]))
if row[7] is not None:
    db.execute("UPDATE contents SET Refs = Refs + 1 WHERE ID = ?", (row[7],))
db.commit()
EOF
"$server_bin" --port "$port" --bind 127.0.0.1 --ready-file "$work/port2" --db "$work/server.db" 2>>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do [[ -s $work/port2 ]] && break; sleep 0.1; done
[[ -s $work/port2 ]] || fail "server did not restart"
cl carol pull
expect_status 0 "carol pulls the operator's copy"
expect_contains "$out" "not addressed to you" "the kicked member is not in the member list"
expect_lacks "$out" "secret after the kick" "and reads nothing of it"
cl dave pull
expect_contains "$out" "#team <alice>: secret after the kick" "dave reads it"

# --- ban: cannot rejoin, cannot be invited
cl alice group ban team dave
expect_status 0 "alice bans dave"
cl dave group join team
expect_status 1 "a banned member cannot rejoin"
expect_contains "$(cat "$work/err")" "banned" "banned"
cl alice group invite team dave
expect_status 1 "a banned user cannot be invited"
cl alice group members team
expect_lacks "$out" "name=dave" "dave is no longer a member"

# --- an offline member receives after it comes back
cl alice group invite team erin
cl erin group join team
expect_status 0 "erin joins"
# erin's client does not run while these are sent
cl alice send '#team' "while erin was away 1"
cl alice send '#team' "while erin was away 2"
printf 'group payload %s\n' $(seq 1 20000) >"$work/groupfile.txt"
cl alice send-file '#team' "$work/groupfile.txt"
expect_status 0 "send a file to #team"
expect_contains "$out" "delivered=1" "file delivered to erin"
cl erin pull
expect_status 0 "erin comes back and pulls"
expect_contains "$out" "#team <alice>: while erin was away 1" "first message"
expect_contains "$out" "#team <alice>: while erin was away 2" "second message"
expect_contains "$out" "kind=file" "the file"
path=$(sed -n 's/.*group-message.*kind=file.* path=\([^ ]*\) .*/\1/p' <<<"$out" | sed 's/\\x20/ /g')
[[ -f $path ]] || fail "no received file at '$path' ($out)"
cmp -s "$path" "$work/groupfile.txt" || fail "the group file differs"

# --- an open group (chat room): anyone joins, one message reaches everyone
cl bob group create lobby --open
expect_status 0 "create an open group"
for p in alice carol dave erin; do
  cl "$p" group join lobby
  expect_status 0 "$p joins the open lobby"
done
cl bob send '#lobby' "hi everyone"
expect_contains "$out" "delivered=4" "everyone in the room"
for p in alice carol dave erin; do
  cl "$p" pull
  expect_contains "$out" "#lobby <bob>: hi everyone" "$p reads the room"
done
# a file stored once on the server for four mailboxes
head -c 300000 /dev/urandom >"$work/roomfile.bin"
cl bob send-file '#lobby' "$work/roomfile.bin"
expect_status 0 "file to the room"
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
stored=$(python3 -c "import sqlite3; db=sqlite3.connect('$work/server.db'); print(db.execute('SELECT COUNT(*) FROM contents WHERE ContentSize > 300000').fetchone()[0], db.execute('SELECT COUNT(*) FROM messages WHERE Type = 19 AND ContentRef IS NOT NULL').fetchone()[0])")
[[ $stored == "1 4" ]] || fail "the room file is not stored once for 4 mailboxes: contents/messages = $stored"
rm -f "$work/port2"
"$server_bin" --port "$port" --bind 127.0.0.1 --ready-file "$work/port2" --db "$work/server.db" 2>>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do [[ -s $work/port2 ]] && break; sleep 0.1; done
for p in alice carol dave erin; do
  cl "$p" pull
  path=$(sed -n 's/.*group-message.*kind=file.* path=\([^ ]*\) .*/\1/p' <<<"$out" | sed 's/\\x20/ /g')
  cmp -s "$path" "$work/roomfile.bin" || fail "$p: the room file differs ($out)"
done

# --- a group text from stdin (a pipe, no TTY)
set +e
out=$(printf 'piped to the room\n' | timeout 120 "$client_bin" --dir "$work/carol" --timeout 30 send '#lobby' 2>"$work/err")
status=$?
set -e
expect_status 0 "send #lobby from stdin"
cl dave pull
expect_contains "$out" "#lobby <carol>: piped to the room" "the piped text arrives (its line end dropped)"
expect_lacks "$out" "piped to the room\\x0a" "without the line end"

# --- the menu's group options through a pipe (no TTY)
menu=$(printf '67\n68\nlobby\nfrom the menu\n66\nlobby\n0\n' | timeout 120 "$client_bin" --dir "$work/alice" --timeout 30 2>&1) ||
  fail "menu exited with $?"
expect_contains "$menu" "67) List groups" "menu lists the group options"
expect_contains "$menu" "#lobby" "67 lists the room"
expect_contains "$menu" "Message sent to #lobby (4 delivered" "68 sends"
expect_contains "$menu" "bob (admin)" "66 shows the members"
cl erin pull
expect_contains "$out" "#lobby <alice>: from the menu" "the menu's message arrives"
menu=$(printf '4\n0\n' | timeout 120 "$client_bin" --dir "$work/dave" --timeout 30 2>&1) || fail "menu exited"
expect_contains "$menu" "#lobby <alice>: from the menu" "the menu shows group messages as #group <sender>: text"

# --- the operator replaces a member's keys: the group send is refused (exit 4), nothing is sent
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
python3 - "$work/server.db" <<'EOF2'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
keys = db.execute("SELECT IdentityKey, AgreementKey, KeySignature FROM clients WHERE Name = 'dave'").fetchone()
db.execute("UPDATE clients SET IdentityKey = ?, AgreementKey = ?, KeySignature = ? WHERE Name = 'erin'", keys)
db.commit()
EOF2
rm -f "$work/port2"
"$server_bin" --port "$port" --bind 127.0.0.1 --ready-file "$work/port2" --db "$work/server.db" 2>>"$work/server.log" &
server_pid=$!
for _ in $(seq 100); do [[ -s $work/port2 ]] && break; sleep 0.1; done
cl alice send '#lobby' "must not be sent"
expect_status 4 "a member's replaced keys refuse the group send"
cl dave pull
expect_lacks "$out" "must not be sent" "nothing was sent to the group"

echo "groups e2e: ok"
