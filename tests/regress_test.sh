#!/usr/bin/env bash
# pg_regress: every tests/pg_regress/sql/<name>.sql runs with psql against its own fresh
# database (extension created, quiet hours off, worker off) of a throwaway cluster, and its
# output must equal tests/pg_regress/expected/<name>.out. On a difference the diff is printed
# and the test fails. Roles are cluster-wide: each file creates its own, with its own prefix.
# Files run from the repository root: they include tests/pg_regress/include/*.sql by that path.
#   bash tests/regress_test.sh [name...]     (default: every file)
#   REGRESS_OUT=/tmp/r bash tests/regress_test.sh name    (keeps /tmp/r/name/results/name.out)
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
DIR=/tmp/journey-regress-test
PORT=5481
PG_REGRESS=${PG_REGRESS:-$("$PG_BIN/pg_config" --pkglibdir)/pgxs/src/test/regress/pg_regress}
# track_functions: the attack tests check that they reached every SECURITY DEFINER function.
cluster_start "$DIR" "$PORT" "journey.worker_enabled = off" "track_functions = all"
# REGRESS_OUT=dir keeps the results there (results/<name>.out: copy one to expected/ once right)
if [ -n "${REGRESS_OUT:-}" ]; then out=$REGRESS_OUT; rm -rf "$out"; mkdir -p "$out"; else
  out=$(mktemp -d /tmp/journey-regress-out.XXXXXX); trap 'cluster_cleanup; rm -rf "$out"' EXIT
fi

if [ $# -gt 0 ]; then tests=("$@"); else
  tests=(); for f in tests/pg_regress/sql/*.sql; do tests+=("$(basename "$f" .sql)"); done
fi
failed=0
for t in "${tests[@]}"; do
  db="regress_$t"
  q "CREATE DATABASE $db"
  PGDATABASE=$db create_journey
  mkdir -p "$out/$t"
  if "$PG_REGRESS" --use-existing --host "$DIR" --port "$PORT" --user postgres \
       --inputdir tests/pg_regress --outputdir "$out/$t" --dbname "$db" "$t" >"$out/$t/pg_regress.log" 2>&1; then
    echo "  PASS $t"
  else
    echo "  FAIL $t (- expected, + actual):"
    cat "$out/$t/regression.diffs" 2>/dev/null || cat "$out/$t/pg_regress.log"
    failed=1
  fi
done
[ $failed -eq 0 ] || { echo "regress_test: FAILED"; exit 1; }
echo "regress_test: ok"
