#!/usr/bin/env bash
# The launcher: with journey.database not created yet it says so once in the log (no FATAL
# every second) and starts the workers once the database exists; journey.workers = 2 runs two
# workers whose claims never overlap (every step once); a worker stopped with
# pg_terminate_backend is replaced, and there are never more than journey.workers.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
dir=/tmp/journey-launcher-test
cluster_start $dir 5488 "journey.database = 'later'" "journey.workers = 2"
workers() { q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'journey worker'"; }

echo "launcher: journey.database does not exist yet"
sleep 5
assert_eq 1 "$(grep -c 'does not exist; the worker starts once it does' $dir/server.log || true)" "said once in 5 s"
assert_eq 0 "$(grep -c 'FATAL' $dir/server.log || true)" "no FATAL in the log"
assert_eq 0 "$(workers)" "no worker yet"
assert_eq 1 "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'journey launcher'")" "the launcher runs"

echo "launcher: the database appears"
q "CREATE DATABASE later"
export PGDATABASE=later
create_journey
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'journey worker' AND datname = 'later'" 90 "two workers in it"

echo "launcher: two workers, every step once"
q "INSERT INTO journey.groups (name) VALUES ('g')"
q "SELECT journey.create_flow('two', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"g\"}], \"start\": \"a\",
   \"nodes\": {\"a\": {\"type\": \"send_sms\", \"text\": \"a\", \"ignore_quiet_hours\": true, \"next\": \"b\"},
              \"b\": {\"type\": \"send_sms\", \"text\": \"b\", \"ignore_quiet_hours\": true}}}')" >/dev/null
q "SELECT journey.activate_flow('two')" >/dev/null
q "ALTER SYSTEM SET journey.batch_size = 20" && q "SELECT pg_reload_conf()" >/dev/null
q "INSERT INTO journey.contacts (phone) SELECT '+1555' || lpad(g::text, 7, '0') FROM generate_series(1, 4000) g"
# enrolled in batches, so both workers find work
for i in $(seq 0 7); do
  q "INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, g FROM generate_series($((i * 500 + 1)), $((i * 500 + 500))) g"
done
wait_for "SELECT count(*) = 0 FROM journey.enrollments WHERE status = 'active'" 90 "all done"
assert_eq 8000 "$(q "SELECT count(*) FROM journey.outbox")" "8000 messages"
assert_eq 8000 "$(q "SELECT count(DISTINCT idempotency_key) FROM journey.outbox")" "none twice"

echo "launcher: a stopped worker is replaced"
old=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'journey worker' ORDER BY pid LIMIT 1")
q "SELECT pg_terminate_backend($old)" >/dev/null
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'journey worker' AND pid <> $old" 15 "two workers again"
sleep 2
assert_eq 2 "$(workers)" "never more than journey.workers"

echo "launcher: the launcher stopped stops its workers, and comes back with them"
launcher=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'journey launcher'")
q "SELECT pg_terminate_backend($launcher)" >/dev/null
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'journey launcher' AND pid <> $launcher" 15 "a new launcher"
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 15 "two workers"
sleep 2
assert_eq 2 "$(workers)" "still two"
echo "launcher_test: ok"
