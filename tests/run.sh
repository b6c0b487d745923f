#!/usr/bin/env bash
# Installs the extension into the machine's PostgreSQL 15 and runs every tests/*_test.sh
# against clusters they start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
log=target/install.log
mkdir -p target
if ! cargo pgrx install --release --pg-config /usr/lib/postgresql/15/bin/pg_config >"$log" 2>&1; then
  tail -50 "$log"; echo "install failed"; exit 1
fi
failed=0
for t in tests/*_test.sh; do
  echo "== $t"
  if ! bash "$t"; then echo "FAILED: $t"; failed=1; fi
done
exit $failed
