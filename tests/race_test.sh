#!/usr/bin/env bash
# Races and failures, each made deterministic: a never-re-entered flow enrolls a contact once
# even when concurrent writers' enrollments commit and complete in between; a lock held by a
# client makes an update_contact step retry with backoff (the batch neither waits nor fails);
# a step that violates a constraint fails only its enrollment; a terminated worker comes back.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
cluster_start /tmp/journey-race-test 5476 "journey.worker_enabled = off"
export PGOPTIONS="-c client_min_messages=warning"

create_journey
q "INSERT INTO journey.groups (name) VALUES ('g1'), ('g2')"
q "SELECT journey.create_flow('fast', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"g1\"}, {\"type\": \"group_joined\", \"group\": \"g2\"}],
   \"start\": \"s\", \"nodes\": {\"s\": {\"type\": \"send_sms\", \"text\": \"fast\", \"ignore_quiet_hours\": true}}}')" >/dev/null
q "SELECT journey.activate_flow('fast')" >/dev/null
q "INSERT INTO journey.contacts (phone, first_name) SELECT '+1555000' || i, 'C' || i FROM generate_series(1, 4) i"

echo "race: a flow never re-entered enrolls a contact once under concurrent writers"
# A holds an uncommitted enrollment of contact 1; B adds contacts 1 and 2 in one statement and
# blocks on contact 1; meanwhile contact 2 is enrolled and completes; then A commits. B's
# statement snapshot predates contact 2's enrollment: only the unique index can stop it.
psql -X -qAt -v ON_ERROR_STOP=1 -c "BEGIN" -c "SELECT journey.add_to_group(1, 'g1')" -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null &
sleep 0.5
psql -X -qAt -v ON_ERROR_STOP=1 -c "INSERT INTO journey.group_members (group_id, contact_id)
  SELECT (SELECT id FROM journey.groups WHERE name = 'g2'), c FROM unnest(ARRAY[1, 2]::bigint[]) c" >/dev/null &
sleep 0.5
q "SELECT journey.add_to_group(2, 'g1')" >/dev/null
q "SELECT journey.run_due(100)" >/dev/null
wait
q "SELECT journey.run_due(100)" >/dev/null
assert_eq "1|1 2|1" "$(q "SELECT contact_id || '|' || count(*) FROM journey.enrollments GROUP BY contact_id ORDER BY contact_id" | tr '\n' ' ' | sed 's/ $//')" "one enrollment per contact"
assert_eq 2 "$(q "SELECT count(*) FROM journey.outbox")" "one SMS per contact"

echo "retry: a row lock held by a client makes update_contact retry with backoff"
q "SELECT journey.create_flow('upd', '{\"triggers\": [{\"type\": \"manual\"}], \"start\": \"u\",
   \"nodes\": {\"u\": {\"type\": \"update_contact\", \"set\": {\"attributes.seen\": true}, \"next\": \"s\"},
              \"s\": {\"type\": \"send_sms\", \"text\": \"updated {{ contact.first_name }}\", \"ignore_quiet_hours\": true}}}')" >/dev/null
q "SELECT journey.activate_flow('upd')" >/dev/null
q "SELECT journey.enroll('upd', c) FROM generate_series(1, 3) c" >/dev/null
psql -X -qAt -v ON_ERROR_STOP=1 -c "BEGIN" -c "SELECT 1 FROM journey.contacts WHERE id = 2 FOR UPDATE" -c "SELECT pg_sleep(3)" -c "COMMIT" >/dev/null &
holder=$!
sleep 0.5
t0=$SECONDS
assert_eq 3 "$(q "SELECT journey.run_due(100)")" "run_due advanced all three"
[ $((SECONDS - t0)) -lt 2 ] && echo "  PASS run_due did not wait for the client's lock" || { echo "  FAIL run_due waited"; exit 1; }
assert_eq "completed active completed" "$(q "SELECT e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'upd' ORDER BY contact_id" | tr '\n' ' ' | sed 's/ $//')" "only the locked contact's enrollment waits"
assert_eq "1|u|true|true" "$(q "SELECT attempts || '|' || node || '|' || (last_error LIKE '%lock%') || '|' || (due_at > now()) FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'upd' AND contact_id = 2")" "attempts counted, error kept, retried later"
assert_eq 1 "$(q "SELECT count(*) FROM journey.timeline(2) WHERE kind = 'step' AND detail LIKE 'retry:%'")" "the retry is in the timeline"
wait $holder
q "SELECT journey.run_due(100, now() + interval '10 seconds')" >/dev/null
assert_eq "completed|0" "$(q "SELECT e.status || '|' || attempts FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'upd' AND contact_id = 2")" "the retry completes"
assert_eq 1 "$(q "SELECT count(*) FROM journey.outbox WHERE contact_id = 2 AND body = 'updated C2'")" "its SMS is written once"

echo "retry: after settings.max_attempts transient failures in a row the enrollment fails"
q "UPDATE journey.settings SET max_attempts = 1"
q "SELECT journey.enroll('upd', 4)" >/dev/null
psql -X -qAt -v ON_ERROR_STOP=1 -c "BEGIN" -c "SELECT 1 FROM journey.contacts WHERE id = 4 FOR UPDATE" -c "SELECT pg_sleep(2)" -c "COMMIT" >/dev/null &
holder=$!
sleep 0.5
q "SELECT journey.run_due(100)" >/dev/null
assert_eq "failed|1|true" "$(q "SELECT e.status || '|' || e.attempts || '|' || (e.last_error LIKE '%lock%') FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'upd' AND contact_id = 4")" "no more retries: failed, the error kept"
wait $holder
q "UPDATE journey.settings SET max_attempts = 5"

echo "poison: a step violating a constraint fails only its enrollment"
q "SELECT journey.create_flow('bad', '{\"triggers\": [{\"type\": \"manual\"}], \"start\": \"u\",
   \"nodes\": {\"u\": {\"type\": \"update_contact\", \"set\": {\"birthday\": \"not a date\"}}}}')" >/dev/null
q "SELECT journey.create_flow('good', '{\"triggers\": [{\"type\": \"manual\"}], \"start\": \"s\",
   \"nodes\": {\"s\": {\"type\": \"send_sms\", \"text\": \"good\", \"ignore_quiet_hours\": true}}}')" >/dev/null
q "SELECT journey.activate_flow('bad')" >/dev/null
q "SELECT journey.activate_flow('good')" >/dev/null
q "SELECT journey.enroll('bad', 4)" >/dev/null
q "SELECT journey.enroll('good', c) FROM generate_series(3, 4) c" >/dev/null
assert_eq 3 "$(q "SELECT journey.run_due(100)")" "the batch ran"
assert_eq "failed|0" "$(q "SELECT e.status || '|' || e.attempts FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'bad'")" "the poisoned enrollment failed, not retried"
assert_eq "completed completed" "$(q "SELECT e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'good' ORDER BY contact_id" | tr '\n' ' ' | sed 's/ $//')" "the rest of the batch advanced"
assert_eq 1 "$(q "SELECT count(*) FROM journey.timeline(4) WHERE kind = 'failed' AND detail LIKE '%not a date%'")" "the error is in the timeline"

echo "worker: pg_terminate_backend pauses it, it comes back"
q "ALTER SYSTEM SET journey.worker_enabled = on"; q "SELECT pg_reload_conf()" >/dev/null
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 10 "worker running"
old=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'journey worker'")
q "SELECT pg_terminate_backend($old)" >/dev/null
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'journey worker' AND pid <> $old" 10 "a new worker started"
q "SELECT journey.enroll('good', 1)" >/dev/null
wait_for "SELECT count(*) = 1 FROM journey.outbox o JOIN journey.flows f ON f.id = o.flow_id WHERE f.name = 'good' AND o.contact_id = 1" 10 "and it runs steps"
