#!/usr/bin/env bash
# Manual measurement (not run by CTest): two clients, driven only through the menu, exchange
# a text and a large file (default 1024 MiB) through a throwaway server (v2: sealed; with
# LETTERBOX_V1=1 the clients are v1 clients (--v1) and exchange keys first); prints both
# SHA-256 sums and each client's peak RSS (/usr/bin/time -v), and fails if either peak RSS is
# 64 MiB or more. Needs ~3x the file size on disk
# under $TMPDIR; everything is deleted at the end.
# Usage: big_file_exchange.sh <server binary> <client binary> [MiB]
source "$(dirname "$0")/e2e_lib.sh"
mib=${3:-1024}
if [[ ${LETTERBOX_V1:-0} == 1 ]]; then client_flags=--v1; fi

start_server "$work/a" "$work/b"
export TMPDIR=$work/tmp
mkdir -p "$TMPDIR"
run_menu "$work/a" '1\nalice\n0\n' >/dev/null
run_menu "$work/b" '1\nbob\n0\n' >/dev/null
if [[ -n $client_flags ]]; then
  expect_contains "$(run_menu "$work/a" '52\nbob\n0\n')" "Symmetric key sent." "alice sends her key"
  expect_contains "$(run_menu "$work/b" '2\n4\n0\n')" "symmetric key received" "bob stores it"
fi

head -c $((mib * 1024 * 1024)) /dev/urandom >"$work/big.bin"
sent=$(sha256sum <"$work/big.bin" | cut -d' ' -f1)

printf '5\nbob\nhere comes a big file\n50\nbob\n%s\n0\n' "$work/big.bin" |
  /usr/bin/time -v "$client_bin" $client_flags --dir "$work/a" --timeout 120 >"$work/send.out" 2>"$work/send.time" ||
  fail "sending client failed"
expect_contains "$(cat "$work/send.out")" "File sent." "file sent"
rm "$work/big.bin"

printf '4\n0\n' | /usr/bin/time -v "$client_bin" $client_flags --dir "$work/b" --timeout 120 >"$work/pull.out" 2>"$work/pull.time" ||
  fail "receiving client failed"
expect_contains "$(cat "$work/pull.out")" $'From: alice\nContent:\nhere comes a big file\n' "text received"
received_path=$(grep "^$work/b/downloads/" "$work/pull.out" || true)
[[ -f $received_path ]] || fail "no received file"
received=$(sha256sum <"$received_path" | cut -d' ' -f1)

rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
wall() { sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$1"; }
echo "file size:        $mib MiB"
echo "sent sha256:      $sent"
echo "received sha256:  $received"
echo "sender   (50):    peak RSS $(rss "$work/send.time") KiB, wall $(wall "$work/send.time")"
echo "receiver (4):     peak RSS $(rss "$work/pull.time") KiB, wall $(wall "$work/pull.time")"
[[ $sent == "$received" ]] || fail "checksums differ"
# The issue's bound: a 1 GiB transfer in under 64 MiB of RSS on either side.
for side in send pull; do
  (($(rss "$work/$side.time") < 64 * 1024)) || fail "$side: peak RSS $(rss "$work/$side.time") KiB is not under 64 MiB"
done
echo "big_file_exchange: identical"
