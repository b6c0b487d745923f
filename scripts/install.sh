#!/usr/bin/env bash
# Set-up, then a release build of journey installed into the machine's PostgreSQL 15; the build
# log goes to target/install.log and is shown only when the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
mkdir -p target
if ! cargo pgrx install --release --pg-config /usr/lib/postgresql/15/bin/pg_config >target/install.log 2>&1; then
  tail -50 target/install.log; echo "install failed"; exit 1
fi
