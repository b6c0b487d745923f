#!/usr/bin/env bash
# pg_upgrade of a cluster that preloads journey (issue #12, item 7): during the upgrade the
# new server runs in binary-upgrade mode, where the background worker must not start (it would
# run batches against a half-restored schema); afterwards the journeys continue.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
DIR=/tmp/journey-pg-upgrade-test
cluster_start "$DIR" 5486 "journey.worker_enabled = off"
export PGOPTIONS="-c client_min_messages=warning"
create_journey
q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"a\",
   \"nodes\": {\"a\": {\"type\": \"send_sms\", \"text\": \"Hi\", \"next\": {\"to\": \"b\", \"delay\": \"1 day\"}},
              \"b\": {\"type\": \"send_sms\", \"text\": \"Again\"}}}')" >/dev/null
q "SELECT journey.activate_flow('welcome')" >/dev/null
q "INSERT INTO journey.contacts (phone) SELECT '+1555000' || i FROM generate_series(1, 3) i"
q "INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, i FROM generate_series(1, 3) i"
q "SELECT journey.run_due(100)" >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null

echo "pg_upgrade: the worker does not start in binary-upgrade mode"
NEW=$DIR/new
as_pg "$PG_BIN/initdb" -D "$NEW" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
grep -E "^(shared_preload_libraries|journey\.)" "$DIR/data/postgresql.conf" | sed 's/worker_enabled = off/worker_enabled = on/' >>"$NEW/postgresql.conf"
echo "journey.database = 'postgres'" >>"$NEW/postgresql.conf"
( as_pg "$PG_BIN/pg_upgrade" -b "$PG_BIN" -B "$PG_BIN" -d "$DIR/data" -D "$NEW" \
    -s "$DIR" -p 5486 -P 5487 -U postgres --retain ) >"$DIR/pg_upgrade.out" 2>&1 \
  || { cat "$DIR/pg_upgrade.out"; echo "  FAIL pg_upgrade"; exit 1; }
rm -f /tmp/delete_old_cluster.sh   # (pg_upgrade writes it into its working directory)
echo "  PASS pg_upgrade completed"
log=$(ls "$NEW"/pg_upgrade_output.d/*/log/pg_upgrade_server.log)
grep -q "database system is ready to accept connections" "$log" || { echo "  FAIL no server log of the upgrade in $log"; exit 1; }
started=$(grep -c "journey worker started" "$log" || true)
assert_eq 0 "$started" "no journey worker started while the upgrade ran"

echo "pg_upgrade: the journeys continue on the new cluster, the worker with them"
as_pg "$PG_BIN/pg_ctl" -D "$NEW" -l "$DIR/new.log" -o "-p 5486 -k $DIR" -w start >/dev/null
CLUSTER_DIRS+=("$DIR")
cluster_stop() { as_pg "$PG_BIN/pg_ctl" -D "$NEW" -m fast -w stop >/dev/null 2>&1 || true; rm -rf "$DIR"; }
assert_eq "3|3" "$(q "SELECT count(*) || '|' || (SELECT count(*) FROM journey.outbox) FROM journey.enrollments WHERE status = 'active'")" "the enrollments and the outbox came over"
q "UPDATE journey.enrollments SET due_at = now()"
wait_for "SELECT count(*) = 6 FROM journey.outbox" 20 "the worker sends each second SMS"
echo "pg_upgrade_test: ok"
