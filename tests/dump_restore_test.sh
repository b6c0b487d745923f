#!/usr/bin/env bash
# Dump and restore: a database with flows, contacts, enrollments mid-journey and outbox rows is
# dumped with pg_dump and restored into a fresh database (the README's procedure); nothing is
# enrolled or sent twice, settings come back, and the journeys continue there.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
DIR=/tmp/journey-dump-test
cluster_start "$DIR" 5478 "journey.worker_enabled = off"
export PGOPTIONS="-c client_min_messages=warning"

q "CREATE DATABASE src"
q "CREATE DATABASE dst"
export PGDATABASE=src
create_journey
q "UPDATE journey.settings SET admin_email = 'ops@example.com'"
q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "INSERT INTO journey.templates (name, channel, subject, body) VALUES ('mail', 'email', 'Hi', 'Hello {{ contact.first_name }}')"
q "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"sms\",
   \"nodes\": {\"sms\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}\", \"ignore_quiet_hours\": true, \"next\": {\"to\": \"mail\", \"delay\": \"1 day\"}},
              \"mail\": {\"type\": \"send_email\", \"template\": \"mail\", \"next\": \"won\"},
              \"won\": {\"type\": \"goal\", \"name\": \"welcomed\"}}}')" >/dev/null
q "SELECT journey.activate_flow('welcome')" >/dev/null
q "INSERT INTO journey.contacts (first_name, phone, email) SELECT 'C' || i, '+1555000' || i, 'c' || i || '@example.com' FROM generate_series(1, 5) i"
q "INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, i FROM generate_series(1, 5) i"
q "SELECT journey.run_due(100)" >/dev/null
id=$(q "SELECT min(id) FROM journey.outbox")
token=$(q "SELECT lease_token FROM journey.claim(NULL, 1) WHERE id = $id")
q "SELECT journey.mark_sent($id, 'prov-1', '$token')" >/dev/null
before=$(q "SELECT count(*) || '/' || count(*) FILTER (WHERE status = 'active') FROM journey.enrollments")
assert_eq "5/5" "$before" "source: five enrollments waiting a day for their email"

echo "dump src, restore into dst with session_replication_role = replica"
as_pg "$PG_BIN/pg_dump" -h "$DIR" -p 5478 -U postgres -Fc -f "$DIR/src.dump" src
as_pg env PGOPTIONS="-c session_replication_role=replica" "$PG_BIN/pg_restore" -h "$DIR" -p 5478 -U postgres --exit-on-error -d dst "$DIR/src.dump"
export PGDATABASE=dst

assert_eq "5/5" "$(q "SELECT count(*) || '/' || count(*) FILTER (WHERE status = 'active') FROM journey.enrollments")" "enrollments restored once, mid-journey"
assert_eq 5 "$(q "SELECT count(*) FROM journey.outbox")" "outbox rows restored once"
assert_eq "sent|prov-1" "$(q "SELECT status || '|' || provider_message_id FROM journey.outbox WHERE id = $id")" "relay state restored"
assert_eq "ops@example.com|00:00:00" "$(q "SELECT admin_email || '|' || quiet_hours_start FROM journey.settings")" "settings restored (one row)"
assert_eq 1 "$(q "SELECT count(*) FROM journey.settings")" "still exactly one settings row"
assert_eq "active|1" "$(q "SELECT status || '|' || (SELECT count(*) FROM journey.flow_triggers) FROM journey.flows")" "the flow and its trigger route restored"

echo "the journeys continue in dst"
assert_eq 5 "$(q "SELECT journey.run_due(100, now() + interval '2 days')")" "run_due advances the restored enrollments"
assert_eq 5 "$(q "SELECT count(*) FROM journey.outbox WHERE channel = 'email' AND subject = 'Hi'")" "each gets its email once"
assert_eq "5|100.0" "$(q "SELECT reached || '|' || reached_pct FROM journey.goal_stats('welcome')")" "goal stats count them"
new=$(q "INSERT INTO journey.contacts (first_name, phone) VALUES ('New', '+19990000000') RETURNING id")
assert_eq 6 "$new" "identity sequences restored (new ids follow the dumped ones)"
q "SELECT journey.add_to_group($new, 'newsletter')" >/dev/null
assert_eq 1 "$(q "SELECT count(*) FROM journey.enrollments WHERE contact_id = $new")" "group triggers enroll in dst"
assert_eq 1 "$(q "SELECT journey.run_due(100)")" "and the new enrollment runs"
assert_eq 11 "$(q "SELECT count(*) FROM journey.outbox")" "outbox ids and keys do not collide"
