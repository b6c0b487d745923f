#!/usr/bin/env bash
# The whole suite: set-up, `cargo pgrx test` (SQL-level tests in a real cluster with the worker
# preloaded), then the integration tests in tests/ against a cluster this script starts.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Postgres refuses to run as root: run test clusters as `postgres`.
RUNAS=()
PGDATA_DIR=${JOURNEY_TEST_PGDATA:-$PWD/target/pgrx-test-data}
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --create-home postgres
  mkdir -p "$PGDATA_DIR"; chown -R postgres "$PGDATA_DIR"
  chmod o+rx "$PWD" "$PWD/target" 2>/dev/null || true
  RUNAS=(--runas postgres --pgdata "$PGDATA_DIR")
fi

echo "== cargo pgrx test"
cargo pgrx test pg15 "${RUNAS[@]}"

echo "== integration tests"
bash tests/run.sh

echo "== benchmark smoke run (small sizes; asserts only that it completes)"
BENCH_SMOKE=1 bash scripts/bench.sh 2000
echo "== all tests passed"
