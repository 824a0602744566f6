#!/usr/bin/env bash
# The one layering rule the include directories cannot enforce, because SQLiteCpp's headers are
# installed system-wide: SQLite is included only by server/storage/sqlite/ (and by tests and
# bench/limits, which measure SQLite itself). Fails listing every offending line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
offenders=$(grep -rnE '#include *[<"](SQLiteCpp/|sqlite3\.h)' "$ROOT/server" "$ROOT/common" "$ROOT/client" \
  | grep -v "^$ROOT/server/storage/sqlite/" || true)
if [[ -n "$offenders" ]]; then
  echo "FAIL: SQLite included outside server/storage/sqlite/:"
  echo "$offenders"
  exit 1
fi
echo "layering: SQLite is included only in server/storage/sqlite/"
