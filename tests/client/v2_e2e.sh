#!/usr/bin/env bash
# End-to-end with the real v2 server: v2 registration and files, sealed texts and files, v1
# peers (legacy, through --v1 clients) both ways, and the three attacks of issue 9 as far as a
# client sees them, each also tried against what v1 gives:
#  (a) a flipped byte in a stored envelope in server.db (a text) or its spool (a file) -> "could
#      not be verified", never shown, no file kept (the same flip in a v1 text is shown:
#      "... before Nriday.");
#  (b) the operator replaces a peer's keys in server.db -> refused (ID/key mismatch; a new
#      registration under a pinned name -> the pin) until `trust`; v1 takes a replaced key silently;
#  (c) a v1-only server where a v2 server was -> exit 3, no fallback (a new client falls back).
# Usage: v2_e2e.sh <server binary> <client binary>
source "$(dirname "$0")/e2e_lib.sh"
here=$(dirname "$0")
proxy_pid=""
trap 'if [[ -n $proxy_pid ]]; then kill "$proxy_pid" 2>/dev/null || true; fi; cleanup' EXIT

people=(alice bob carol dave mallory erin frank bob2)
start_server "${people[@]/#/$work/}"
port=$(tr -d '\n' <"$work/port")

# cl DIR ARGS...: runs the client; stdout in $out, status in $status, stderr in $work/err.
cl() {
  local dir=$1
  shift
  set +e
  out=$(timeout 120 "$client_bin" --dir "$work/$dir" --timeout 30 "$@" 2>"$work/err" </dev/null)
  status=$?
  set -e
}
expect_status() { [[ $status == "$1" ]] || fail "$2: exit status $status, not $1 ($(cat "$work/err"))"; }

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
# restart_server PORT: the same database on the given port.
restart_server() {
  rm -f "$work/port"
  "$server_bin" --port "$1" --bind 127.0.0.1 --ready-file "$work/port" --db "$work/server.db" 2>>"$work/server.log" &
  server_pid=$!
  for _ in $(seq 100); do
    [[ -s $work/port ]] && return
    kill -0 "$server_pid" 2>/dev/null || fail "server exited during restart"
    sleep 0.1
  done
  fail "server did not restart within 10 s"
}
# db PYTHON: runs python3 code with `db` an sqlite3 connection to server.db (server stopped).
db() {
  python3 -c "import sqlite3, sys
db = sqlite3.connect('$work/server.db')
$1
db.commit()"
}

# --- registration, directory, sealed texts and files
cl alice register alice
expect_status 0 "register alice"
[[ $out == *" protocol=v2" ]] || fail "alice is not a v2 identity: $out"
[[ $(stat -c %a "$work/alice/me.v2") == 600 ]] || fail "me.v2 is not owner-only"
grep -qx "127.0.0.1:$port" "$work/alice/servers.v2" || fail "servers.v2 does not list the server"
cl bob register bob
cl mallory register mallory
cl carol --v1 register carol
expect_status 0 "register carol (v1)"
[[ $out == *" protocol=v1" ]] || fail "carol is not a v1 identity: $out"
[[ ! -e $work/carol/me.v2 ]] || fail "a v1 client wrote me.v2"

cl alice list
expect_contains "$out" "kind=v2 name=bob" "bob listed as v2"
expect_contains "$out" "kind=legacy name=carol" "carol listed as legacy"
out=$(run_menu "$work/alice" '2\n51\nbob\n0\n')
expect_contains "$out" $'carol (legacy, unauthenticated)\n' "the menu marks the legacy conversation"
expect_contains "$out" "Not needed: bob is a v2 peer" "51 to a v2 peer is not needed"

cl alice send bob "hello bob, grüße"
expect_status 0 "sealed text"
[[ $out == *"sealed=yes" ]] || fail "the text to bob was not sealed: $out"
printf 'file body %.0s' $(seq 20000) >"$work/Quarterly report (draft).pdf"
cl alice send-file bob "$work/Quarterly report (draft).pdf"
expect_status 0 "sealed file"
cl bob pull
expect_status 0 "bob pulls"
expect_contains "$out" "from=alice kind=text authenticated=yes legacy=no hello bob, grüße" "sealed text authenticated"
expect_contains "$out" "name=Quarterly\\x20report\\x20(draft).pdf" "the file's name travels"
[[ -f "$work/bob/downloads/Quarterly report (draft).pdf" ]] || fail "the file is not saved under its name"
cmp -s "$work/bob/downloads/Quarterly report (draft).pdf" "$work/Quarterly report (draft).pdf" || fail "file differs"
cl alice verify bob
number_at_alice=${out#safety-number name=bob }
cl bob verify alice
[[ ${out#safety-number name=alice } == "$number_at_alice" && $number_at_alice =~ ^([0-9]{5}\ ){11}[0-9]{5}$ ]] ||
  fail "safety numbers differ or are malformed: $number_at_alice / $out"

# --- legacy peers, both ways
out=$(run_menu "$work/alice" '52\ncarol\n0\n')
expect_contains "$out" "Symmetric key sent." "alice sends carol a v1 key"
out=$(client_flags=--v1 run_menu "$work/carol" '4\n5\nalice\nhi from v1\n0\n')
expect_contains "$out" $'From: alice\nContent:\nsymmetric key received' "carol (v1) gets the key"
cl alice pull
expect_contains "$out" "from=carol kind=text authenticated=no legacy=yes hi from v1" "a v1 sender is marked legacy"
cl alice send carol "to a legacy peer"
[[ $out == *"sealed=no" ]] || fail "a text to a legacy peer claims to be sealed: $out"
head -c 150000 /dev/urandom >"$work/legacy.bin"
cl alice send-file carol "$work/legacy.bin"
[[ $status == 0 && $out == *"sealed=no" ]] || fail "a file to a legacy peer: $status $out"
out=$(client_flags=--v1 run_menu "$work/carol" '4\n50\nalice\n'"$work/legacy.bin"'\n0\n')
expect_contains "$out" $'From: alice\nContent:\nto a legacy peer' "carol (v1) reads alice's text"
from_alice=$(printf '%s\n' "$out" | grep "^$work/carol/downloads/letterbox-alice-" || true)
cmp -s "$from_alice" "$work/legacy.bin" || fail "carol (v1) did not get alice's file intact ($from_alice)"
cl alice pull
expect_contains "$out" "from=carol kind=file authenticated=no legacy=yes path=" "alice gets carol's v1 file, marked legacy"
from_carol=$(printf '%s\n' "$out" | grep -o 'path=[^ ]*' | cut -d= -f2)
cmp -s "$from_carol" "$work/legacy.bin" || fail "alice did not get carol's file intact ($from_carol)"

# --- (a) a flipped byte in a stored message
cl alice send bob "Pay this amount: 100 dollars to Bob before Friday."
head -c 300000 /dev/urandom >"$work/Secret plan.bin"  # over the inline limit: a spool file
cl alice send-file bob "$work/Secret plan.bin"
expect_status 0 "a file to alter in the spool"
out=$(client_flags=--v1 run_menu "$work/carol" '5\nalice\nPay this amount: 100 dollars to Bob before Friday.\n0\n')
stop_server
db "
for type in (16, 3):
    row, content = db.execute('SELECT ID, Content FROM messages WHERE Type = ? ORDER BY ID DESC LIMIT 1', (type,)).fetchone()
    content = bytearray(content)
    content[300 if type == 16 else 27] ^= ord('F') ^ ord('N')  # v1: block 2's F becomes N (CBC)
    db.execute('UPDATE messages SET Content = ? WHERE ID = ?', (bytes(content), row))"
spool=$(python3 -c "import sqlite3; print(sqlite3.connect('$work/server.db').execute('SELECT ContentFile FROM messages WHERE Type = 17 ORDER BY ID DESC LIMIT 1').fetchone()[0])")
[[ -f $work/server.db.spool/$spool ]] || fail "the sealed file is not in the spool ($spool)"
python3 -c "
f = open('$work/server.db.spool/$spool', 'r+b'); f.seek(150000); b = f.read(1); f.seek(150000); f.write(bytes([b[0] ^ 0x20]))"
restart_server "$port"
cl bob pull
expect_status 0 "bob pulls the tampered envelope"
expect_contains "$out" "kind=unverified could not be verified: a chunk failed authentication" "the altered file is refused"
[[ ! -e "$work/bob/downloads/Secret plan.bin" && -z $(find "$work/bob/downloads" -name '*.part') ]] ||
  fail "something of the altered file was kept: $(ls -A "$work/bob/downloads")"
expect_contains "$out" "kind=unverified" "the flipped envelope is reported"
[[ $out != *"Pay this amount"* && $out != *"dollars"* ]] || fail "something of the tampered envelope was shown: $out"
out=$(run_menu "$work/bob" '4\n0\n')
expect_contains "$out" "No waiting messages." "the refused envelope was acknowledged"
cl alice pull  # the v1 text through the same flip: v1 cannot tell
expect_contains "$out" "before Nriday." "v1 (old behaviour): the altered text is delivered as genuine"
[[ $out != *$'\x1b'* && $out == *'\x'* ]] || fail "the garbage bytes were not escaped: $out"

# --- (b) the operator replaces bob's keys with mallory's
cl dave register dave
cl alice send bob "still pinned"  # alice has bob pinned (first use above)
expect_status 0 "alice sends before the swap"
stop_server
db "
keys = db.execute(\"SELECT IdentityKey, AgreementKey, KeySignature, PublicKey FROM clients WHERE Name = 'mallory'\").fetchone()
open('$work/bob.keys', 'w').write(repr(db.execute(\"SELECT IdentityKey, AgreementKey, KeySignature, PublicKey FROM clients WHERE Name = 'bob'\").fetchone()))
db.execute(\"UPDATE clients SET IdentityKey = ?, AgreementKey = ?, KeySignature = ?, PublicKey = ? WHERE Name = 'bob'\", keys)
db.execute(\"UPDATE clients SET PublicKey = ? WHERE Name = 'carol'\", (keys[3],))"
restart_server "$port"
cl dave send bob "to the operator?"
expect_status 4 "a fresh client sending to the swapped keys"
grep -q "does not belong to its client ID" "$work/err" || fail "dave: $(cat "$work/err")"
cl alice send bob "to the operator?"
expect_status 4 "alice sending to the swapped keys"
cl bob pull  # bob's proof no longer matches the key the server holds for him: refused
expect_status 1 "bob authenticating against his replaced key"
grep -q "authentication_failed" "$work/err" || fail "bob: $(cat "$work/err")"
out=$(client_flags=--v1 run_menu "$work/erin" '1\nerin\n3\ncarol\n0\n')  # v1 (old behaviour): accepted
expect_contains "$out" "Public key of carol received." "v1 takes a replaced key without a word"
mallory_legacy=$(python3 -c "import sqlite3, base64; print(base64.b64encode(sqlite3.connect('$work/server.db').execute(\"SELECT PublicKey FROM clients WHERE Name = 'mallory'\").fetchone()[0]).decode())")
grep -q "$mallory_legacy" "$work/erin/keyring.info" || fail "erin's keyring does not hold the replaced key"

# The operator instead gives the name to a new registration (new keys, new ID, all signed):
# only the pin notices.
stop_server
db "
keys = eval(open('$work/bob.keys').read())
db.execute(\"UPDATE clients SET IdentityKey = ?, AgreementKey = ?, KeySignature = ?, PublicKey = ?, Name = 'bob-old' WHERE Name = 'bob'\", keys)"
restart_server "$port"
cl bob2 register bob
expect_status 0 "an impostor registers the name bob"
cl alice send bob "who are you?"
expect_status 4 "a pinned name with a new key"
grep -q "the key of bob changed" "$work/err" || fail "no key-change refusal: $(cat "$work/err")"
set +e
printf 'no\n' | timeout 60 "$client_bin" --dir "$work/alice" trust bob >"$work/trust.out" 2>"$work/trust.err"
status=$?
set -e
expect_status 4 "trust declined"
grep -q "new safety number:" "$work/trust.err" || fail "trust does not show the new safety number"
cl alice send bob "who are you?"
expect_status 4 "still refused after a declined trust"
cl alice trust bob --yes
expect_status 0 "trust --yes"
cl alice send bob "after trust"
expect_status 0 "send after trust"

# --- (c) downgrade: a v1-only server where the v2 server was
stop_server
restart_server 0
upstream=$(tr -d '\n' <"$work/port")
python3 "$here/v1_only_proxy.py" "$port" "$upstream" "$work/proxy.ready" &
proxy_pid=$!
for _ in $(seq 50); do [[ -s $work/proxy.ready ]] && break; sleep 0.1; done
[[ -s $work/proxy.ready ]] || fail "the v1-only proxy did not start"
cl alice list
expect_status 3 "a downgrade"
grep -q "refusing to fall back to v1" "$work/err" || fail "downgrade: $(cat "$work/err")"
out=$(printf '2\n0\n' | "$client_bin" --dir "$work/alice" 2>&1) && fail "the menu went on after a downgrade"
cl alice --allow-v1 whoami
expect_status 0 "whoami needs no server"
cl frank register frank  # never saw this server: falls back, says so once
expect_status 0 "a new client falls back"
[[ $out == *" protocol=v1" ]] || fail "frank: $out"
[[ $(grep -c "falling back to v1" "$work/err") == 1 ]] || fail "the fallback is not said once: $(cat "$work/err")"
echo "v2_e2e: all good"
