#!/usr/bin/env bash
# The background worker moves journeys with nobody calling run_due, survives a failing
# enrollment, a crash and pg_terminate_backend, and waits quietly where the extension is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
cluster_start /tmp/journey-worker-test 5471

create_journey
q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "INSERT INTO journey.templates (name, channel, subject, body) VALUES ('welcome_email', 'email', 'Welcome {{ contact.first_name }}', 'Hello {{ contact.first_name }}')"
q "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"sms\",
   \"nodes\": {\"sms\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}\", \"sender\": \"ACME\", \"next\": {\"to\": \"mail\", \"delay\": \"3 seconds\"}},
              \"mail\": {\"type\": \"send_email\", \"template\": \"welcome_email\", \"next\": \"won\"},
              \"won\": {\"type\": \"goal\", \"name\": \"welcomed\"}}}')" >/dev/null
q "SELECT journey.activate_flow('welcome')" >/dev/null

echo "worker: group join -> SMS, delayed email, goal, without run_due"
dana=$(q "SELECT journey.upsert_contact('{\"first_name\": \"Dana\", \"phone\": \"+15550001\", \"email\": \"dana@example.com\"}')")
q "SELECT journey.add_to_group($dana, 'newsletter')" >/dev/null
wait_for "SELECT count(*) = 1 FROM journey.outbox WHERE channel = 'sms' AND body = 'Hi Dana'" 10 "SMS outbox row written by the worker"
assert_eq 0 "$(q "SELECT count(*) FROM journey.outbox WHERE channel = 'email'")" "no email before the delay"
wait_for "SELECT count(*) = 1 FROM journey.outbox WHERE channel = 'email' AND subject = 'Welcome Dana'" 15 "email after the delay"
wait_for "SELECT status = 'completed' FROM journey.enrollments WHERE contact_id = $dana" 10 "enrollment completed"
# the worker reports its table statistics (only it writes steps): autovacuum and the planner
# see its inserts and deletes
wait_for "SELECT n_tup_ins = 3 FROM pg_stat_user_tables WHERE relid = 'journey.steps'::regclass" 10 "the worker's steps are in the table statistics"

echo "worker: a failing enrollment does not stop it"
q "SELECT journey.create_flow('broken', '{\"triggers\": [{\"type\": \"manual\"}], \"start\": \"s\", \"nodes\": {\"s\": {\"type\": \"send_sms\", \"text\": \"{{ event.missing.deep }}\"}}}')" >/dev/null
q "SELECT journey.create_flow('fine', '{\"triggers\": [{\"type\": \"manual\"}], \"start\": \"s\", \"nodes\": {\"s\": {\"type\": \"send_sms\", \"text\": \"fine\"}}}')" >/dev/null
q "SELECT journey.activate_flow('broken'); SELECT journey.activate_flow('fine')" >/dev/null
psql -X -qAt -v ON_ERROR_STOP=1 >/dev/null <<SQL
BEGIN;
SELECT journey.enroll('broken', $dana);
SELECT journey.enroll('fine', journey.upsert_contact('{"first_name": "Eli", "phone": "+15550002"}'));
COMMIT;
SQL
wait_for "SELECT count(*) = 1 FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'broken' AND e.status = 'failed' AND e.last_error IS NOT NULL" 10 "broken enrollment failed with its error"
wait_for "SELECT count(*) = 1 FROM journey.outbox WHERE body = 'fine'" 10 "the rest of the batch went on"

echo "worker: restarts after a crash"
pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'journey worker'")
[ -n "$pid" ] || { echo "  FAIL no worker backend"; exit 1; }
kill -9 "$pid"
# SIGKILL of a backend makes the postmaster reinitialise; wait until it accepts connections
for _ in $(seq 1 100); do q "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 15 "worker is back"
q "SELECT journey.enroll('fine', journey.upsert_contact('{\"first_name\": \"Fay\", \"phone\": \"+15550003\"}'))" >/dev/null
wait_for "SELECT count(*) = 2 FROM journey.outbox WHERE body = 'fine'" 15 "restarted worker runs new enrollments"

echo "worker: pg_terminate_backend stops it, the postmaster starts it again"
old=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'journey worker'")
[ -n "$old" ] || { echo "  FAIL no worker backend"; exit 1; }
q "SELECT pg_terminate_backend($old)" >/dev/null
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'journey worker' AND pid <> $old" 10 "a new worker started"
q "SELECT journey.enroll('fine', journey.upsert_contact('{\"first_name\": \"Gil\", \"phone\": \"+15550004\"}'))" >/dev/null
wait_for "SELECT count(*) = 3 FROM journey.outbox WHERE body = 'fine'" 10 "and it runs steps"

echo "worker: enrolls due date occurrences by itself (the date pass, every 10 s)"
q "SELECT journey.create_flow('bday', '{\"triggers\": [{\"type\": \"date\", \"field\": \"birthday\"}], \"start\": \"s\",
   \"nodes\": {\"s\": {\"type\": \"send_sms\", \"text\": \"happy birthday\"}}}')" >/dev/null
q "UPDATE journey.contacts SET birthday = '1990-06-01' WHERE id = $dana"
q "SELECT journey.activate_flow('bday')" >/dev/null
assert_eq 1 "$(q "SELECT count(*) FROM journey.date_schedule")" "Dana's next birthday scheduled"
# as if its time had come a few seconds ago
q "UPDATE journey.date_schedule SET fire_at = now() - interval '5 seconds'"
wait_for "SELECT count(*) = 1 FROM journey.outbox WHERE body = 'happy birthday'" 25 "the worker enrolled and ran it"
assert_eq "1" "$(q "SELECT count(*) FROM journey.date_schedule WHERE fire_at > now() + interval '1 day'")" "and moved the schedule to the next occurrence"

echo "worker: deletes what retention says, by itself"
q "UPDATE journey.outbox SET status = 'sent', created_at = now() - interval '2 days' WHERE body = 'happy birthday'"
q "UPDATE journey.settings SET keep_sent_messages = '1 day'"
wait_for "SELECT count(*) = 0 FROM journey.outbox WHERE body = 'happy birthday'" 25 "the old sent message is gone"
assert_eq 3 "$(q "SELECT count(*) FROM journey.outbox WHERE body = 'fine'")" "the others stay"

echo "worker: waits quietly where the extension is not created"
cluster_start /tmp/journey-worker-test-empty 5472
sleep 2
assert_eq 1 "$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'journey worker'")" "worker runs"
assert_eq 0 "$(grep -c 'ERROR' /tmp/journey-worker-test-empty/server.log || true)" "no errors in the log"
echo "worker_test: ok"
