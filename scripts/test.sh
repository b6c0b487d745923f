#!/usr/bin/env bash
# The whole suite: set-up, `cargo pgrx test` (the unit tests, and the #[pg_test]s in a real
# cluster with the worker preloaded), then tests/run.sh (the release build installed, then every
# tests/*_test.sh: the pg_regress files, the isolation specs and the integration scripts, each
# against a cluster it starts), then a small benchmark run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

# Postgres refuses to run as root: run test clusters as `postgres`, with their data outside the
# clone (a clone may sit in a directory `postgres` cannot enter, e.g. one made by mktemp -d).
RUNAS=()
PGDATA_DIR=${JOURNEY_TEST_PGDATA:-/var/tmp/journey-pgrx-test-data-$(id -u)}
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --create-home postgres
  mkdir -p "$PGDATA_DIR"; chown -R postgres "$PGDATA_DIR"
  RUNAS=(--runas postgres --pgdata "$PGDATA_DIR")
fi

echo "== cargo pgrx test"
# (it writes its debug build over the installed library: give that a new inode first, so a
# running server of someone else's keeps its copy; scripts/library.sh)
source scripts/library.sh
detach_library
cargo pgrx test pg15 "${RUNAS[@]}"
echo "== journey-relay unit tests"
cargo test --release -p journey-relay

echo "== integration tests"
bash tests/run.sh

echo "== benchmark smoke run (small sizes; asserts only that it completes)"
BENCH_SMOKE=1 bash scripts/bench.sh 2000
echo "== soak, one minute (scripts/soak.sh; the 10-minute run is not in CI)"
SOAK_NO_INSTALL=1 bash scripts/soak.sh 1
echo "== all tests passed"
