#!/usr/bin/env bash
# Installs the extension into the machine's PostgreSQL 15 and runs every tests/*_test.sh
# against clusters they start themselves.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
failed=0
for t in tests/*_test.sh; do
  echo "== $t"
  if ! bash "$t"; then echo "FAILED: $t"; failed=1; fi
done
exit $failed
