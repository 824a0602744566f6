#!/usr/bin/env bash
# End-to-end: two clients driven only through the menu over a pipe exchange keys, texts and
# a file through the real server; the received file must have the sent file's checksum.
# Usage: menu_pipe_e2e.sh <server binary> <client binary>
source "$(dirname "$0")/e2e_lib.sh"
# The menus here are those of v1 clients (the original design's key exchange, --v1), which a
# v2 server keeps serving; v2 menus are in v2_e2e.sh.
client_flags=--v1

start_server "$work/a" "$work/b" "$work/c"
export TMPDIR=$work/tmp  # nothing may land here: received files go to <dir>/downloads
mkdir -p "$TMPDIR"
file_mib=${LETTERBOX_E2E_FILE_MIB:-3}
head -c $((file_mib * 1024 * 1024 + 5)) /dev/urandom >"$work/payload.bin"

out=$(run_menu "$work/a" '1\nalice\n0\n')
expect_contains "$out" "MessageU client at your service." "banner"
expect_contains "$out" "Registered as alice." "register alice"
[[ $(stat -c %a "$work/a/me.info") == 600 ]] || fail "me.info is not owner-only"
out=$(run_menu "$work/b" '1\nbob\n0\n')
expect_contains "$out" "Registered as bob." "register bob"
out=$(run_menu "$work/a" '1\nalice2\n0\n')
expect_contains "$out" "already registered" "second registration refused"
out=$(run_menu "$work/c" '1\nalice\n0\n')
expect_contains "$out" "server responded with an error" "duplicate name gets 9000"

# Bob lists and asks Alice for a key; Alice never listed, her client learns Bob's name itself.
out=$(run_menu "$work/b" '2\n51\nalice\n0\n')
expect_contains "$out" $'?\nalice\n' "bob's list shows alice"
expect_contains "$out" "Request for symmetric key sent." "bob asks for a key"
out=$(run_menu "$work/a" '4\n')  # ends at EOF, no "0"
expect_contains "$out" $'From: bob\nContent:\nRequest for symmetric key\n-----<EOM>-----\n\n' "alice gets the request"

# Alice fetches Bob's public key and sends her symmetric key.
out=$(run_menu "$work/a" '3\nbob\n52\nbob\n0\n')
expect_contains "$out" "Public key of bob received." "alice gets bob's key"
expect_contains "$out" "Symmetric key sent." "alice sends her key"
out=$(run_menu "$work/b" '4\n4\n0\n')
expect_contains "$out" $'From: alice\nContent:\nsymmetric key received\n-----<EOM>-----' "bob stores the key"
expect_contains "$out" "No waiting messages." "mailbox empty after pull"
[[ $(stat -c %a "$work/b/keyring.info") == 600 ]] || fail "keyring.info is not owner-only"

# Texts and files both ways, each client a fresh process (the keyring survives restarts).
out=$(run_menu "$work/a" '5\nbob\nHello Bob, grüße 🙂\n50\nbob\n'"$work/payload.bin"'\n50\nbob\n'"$work/missing.bin"'\n0\n')
expect_contains "$out" "Message sent." "alice sends a text"
expect_contains "$out" "File sent." "alice sends a file"
expect_contains "$out" "file not found" "missing file"
out=$(run_menu "$work/b" 'nonsense\n77\n\n4\n5\nalice\nHi Alice\n0\n')
expect_contains "$out" "Unknown option" "bad input is survived"
expect_contains "$out" $'From: alice\nContent:\nHello Bob, grüße 🙂\n-----<EOM>-----\n\n' "bob reads the text"
received=$(printf '%s\n' "$out" | grep "^$work/b/downloads/letterbox-" || true)
[[ -n $received && -f $received ]] || fail "no received file path in bob's output"
sent_sum=$(sha256sum <"$work/payload.bin" | cut -d' ' -f1)
received_sum=$(sha256sum <"$received" | cut -d' ' -f1)
[[ $sent_sum == "$received_sum" ]] || fail "checksum differs: sent $sent_sum, received $received_sum"
echo "file of $(stat -c %s "$work/payload.bin") bytes received intact, sha256 $received_sum"
[[ $(stat -c %a "$work/b/downloads") == 700 ]] || fail "the download directory is not private"
[[ -z $(ls -A "$TMPDIR") ]] || fail "files left in TMPDIR: $(ls -A "$TMPDIR")"

out=$(run_menu "$work/a" '4\n0\n')
expect_contains "$out" $'From: bob\nContent:\nHi Alice\n-----<EOM>-----' "alice reads bob's reply"

# A stranger's text cannot be decrypted without a key; an unknown name is refused locally.
out=$(run_menu "$work/c" '1\ncarol\n5\nbob\nhi\n5\nnobody\nhi\n0\n')
expect_contains "$out" "error: no symmetric key for bob" "text without a key refused"
expect_contains "$out" "no user named \"nobody\"" "unknown user"

# Without its keyring (the legacy in-RAM behaviour after a restart) bob cannot decrypt.
out=$(run_menu "$work/a" '5\nbob\nsecret\n0\n')
expect_contains "$out" "Message sent." "alice sends another text"
rm "$work/b/keyring.info"
out=$(run_menu "$work/b" '4\n0\n')
expect_contains "$out" $'Content:\ncan\'t decrypt message\n-----<EOM>-----' "no key, no plaintext"
echo "menu_pipe_e2e: all good"
