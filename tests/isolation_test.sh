#!/usr/bin/env bash
# Isolation specs (tests/isolation/specs/*.spec, expected output in tests/isolation/expected/):
# races between sessions as deterministic permutations, run by PostgreSQL's
# pg_isolation_regress against a throwaway cluster with the worker off. Each spec's setup
# creates the extension and its data, its teardown drops them, so every permutation starts
# from the same ids. Usage: bash tests/isolation_test.sh [spec names...] (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
REGRESS=$("$PG_BIN/pg_config" --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress
[ -x "$REGRESS" ] || { echo "  FAIL $REGRESS is missing (apt-get install postgresql-server-dev-15)"; exit 1; }
DIR=/tmp/journey-isolation-test
cluster_start "$DIR" 5483 "journey.worker_enabled = off" "max_connections = 20"
export PGOPTIONS="-c client_min_messages=warning"

q "CREATE DATABASE isolation"
# The app role the specs' app sessions SET ROLE to (granted in each spec's setup, after CREATE
# EXTENSION).
q "CREATE ROLE journey_app NOLOGIN"

if [ $# -gt 0 ]; then specs=("$@"); else
  specs=(); for f in tests/isolation/specs/*.spec; do specs+=("$(basename "$f" .spec)"); done
fi
OUT=$DIR/out
mkdir -p "$OUT"
if "$REGRESS" --use-existing --host "$DIR" --port 5483 --user postgres --dbname isolation \
     --inputdir tests/isolation --outputdir "$OUT" "${specs[@]}"; then
  echo "  PASS ${#specs[@]} isolation spec(s): ${specs[*]}"
else
  find "$OUT" -name regression.diffs -exec cat {} +
  rm -rf /tmp/journey-isolation-results && cp -r "$OUT" /tmp/journey-isolation-results
  echo "  FAIL isolation specs (diff above; output kept in /tmp/journey-isolation-results)"
  exit 1
fi
