#!/usr/bin/env bash
# Change data capture of the outbox (settings.cdc_events, journey.outbox_events, the publication
# journey_outbox_events) on a cluster with wal_level = logical. The welcome journey runs for a
# group of contacts with a relay's SQL loop (claim, mark_sent, report); logical replication
# slots see, on journey.outbox_events, exactly one INSERT per message and no UPDATE or DELETE
# (test_decoding sees every table; pgoutput through the publication), and nothing at all while
# the setting is off. Pruning deletes are not published.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
DIR=/tmp/journey-cdc-test
cluster_start "$DIR" 5495 "journey.worker_enabled = off" "wal_level = logical" \
  "max_replication_slots = 4" "max_wal_senders = 4"
export PGOPTIONS="-c client_min_messages=warning"
create_journey

q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "INSERT INTO journey.templates (name, channel, subject, body) VALUES ('welcome_email', 'email', 'Welcome', 'Hello {{ contact.first_name }}')"
q "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"sms\",
   \"nodes\": {\"sms\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}\", \"next\": {\"to\": \"mail\", \"delay\": \"1 hour\"}},
              \"mail\": {\"type\": \"send_email\", \"template\": \"welcome_email\", \"next\": \"won\"},
              \"won\": {\"type\": \"goal\", \"name\": \"welcomed\"}}}')" >/dev/null
q "SELECT journey.activate_flow('welcome')" >/dev/null
q "INSERT INTO journey.contacts (first_name, phone, email)
   SELECT 'C' || i, '+1555000' || lpad(i::text, 4, '0'), 'c' || i || '@example.com' FROM generate_series(1, 30) i"

# A relay, in SQL: claims everything claimable, marks it sent, reports it delivered (each a
# statement of its own, as a relay's round trips are).
relay() {
  local n
  n=$(q "WITH c AS (SELECT id, lease_token FROM journey.claim(NULL, 1000))
         SELECT count(*) FILTER (WHERE journey.mark_sent(id, 'prov-' || id, lease_token)) FROM c")
  q "SELECT count(*) FILTER (WHERE journey.report('prov-' || id, 'delivered', 'ev-' || id)) FROM journey.outbox WHERE status = 'sent'" >/dev/null
  echo "$n"
}
# Runs the journeys of contacts [$1, $2]: enrollment, the SMS, the relay, an hour later the
# e-mail, the relay.
journeys() {
  q "INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, i FROM generate_series($1, $2) i"
  q "SELECT journey.run_due(1000, now())" >/dev/null
  relay >/dev/null
  q "SELECT journey.run_due(1000, now() + interval '2 hours')" >/dev/null
  relay >/dev/null
}
# Counts, in what slot $1 has, the changes of table $2 of each kind: "INSERT UPDATE DELETE".
decoded() {
  q "SELECT count(*) FILTER (WHERE data LIKE 'table $2: INSERT:%') || ' ' ||
            count(*) FILTER (WHERE data LIKE 'table $2: UPDATE:%') || ' ' ||
            count(*) FILTER (WHERE data LIKE 'table $2: DELETE:%')
     FROM pg_logical_slot_peek_changes('$1', NULL, NULL)"
}
# pgoutput messages through the publication in slot $1, by type: "INSERT UPDATE DELETE".
published() {
  q "SELECT count(*) FILTER (WHERE get_byte(data, 0) = ascii('I')) || ' ' ||
            count(*) FILTER (WHERE get_byte(data, 0) = ascii('U')) || ' ' ||
            count(*) FILTER (WHERE get_byte(data, 0) = ascii('D'))
     FROM pg_logical_slot_peek_binary_changes('$1', NULL, NULL, 'proto_version', '1',
                                              'publication_names', 'journey_outbox_events')"
}

echo "setting off: the journeys of 10 contacts"
q "SELECT pg_create_logical_replication_slot('off_all', 'test_decoding')" >/dev/null
q "SELECT pg_create_logical_replication_slot('off_pub', 'pgoutput')" >/dev/null
journeys 1 10
assert_eq "20|20" "$(q "SELECT count(*) || '|' || count(*) FILTER (WHERE status = 'delivered') FROM journey.outbox")" "20 messages sent and delivered"
assert_eq "20" "$(decoded off_all journey.outbox | cut -d' ' -f1)" "the slot sees the 20 outbox inserts"
assert_eq "0 0 0" "$(decoded off_all journey.outbox_events)" "and no change of outbox_events"
assert_eq "0 0 0" "$(published off_pub)" "the publication sends nothing"
assert_eq 0 "$(q "SELECT count(*) FROM journey.outbox_events")" "no event rows"

echo "setting on: the journeys of 20 contacts"
q "UPDATE journey.settings SET cdc_events = true"
q "SELECT pg_create_logical_replication_slot('on_all', 'test_decoding')" >/dev/null
q "SELECT pg_create_logical_replication_slot('on_pub', 'pgoutput')" >/dev/null
first=$(q "SELECT coalesce(max(id), 0) FROM journey.outbox")
journeys 11 30
assert_eq "40|40" "$(q "SELECT count(*) || '|' || count(*) FILTER (WHERE status = 'delivered') FROM journey.outbox WHERE id > $first")" "40 more messages sent and delivered"
assert_eq "40 0 0" "$(decoded on_all journey.outbox_events)" "test_decoding: 40 inserts into outbox_events, no update or delete"
assert_eq "40 0 0" "$(published on_pub)" "pgoutput through the publication: 40 inserts, no update or delete"
# one event per message: the decoded payloads name each new outbox id exactly once
ids=$(q "SELECT data FROM pg_logical_slot_peek_changes('on_all', NULL, NULL) WHERE data LIKE 'table journey.outbox_events: INSERT:%'" \
      | grep -o "payload\[jsonb\]:'{\"id\": [0-9]*" | grep -o '[0-9]*$' | sort -n | tr '\n' ' ')
expected=$(q "SELECT string_agg(id::text, ' ' ORDER BY id) FROM journey.outbox WHERE id > $first")
assert_eq "$expected " "$ids" "each message's event, once"
assert_eq "40" "$(q "SELECT count(*) FROM journey.outbox_events WHERE aggregatetype = 'journey.message' AND type IN ('sms', 'email')")" "40 event rows, router-shaped"
# the slot that started while the setting was off sees the same 40 events and nothing earlier
assert_eq "40 0 0" "$(decoded off_all journey.outbox_events)" "the earlier slot: the same 40 inserts"

echo "pruning"
assert_eq 40 "$(q "SELECT journey.prune_outbox_events('0')")" "prune_outbox_events deletes the events"
assert_eq "40 0 40" "$(decoded on_all journey.outbox_events)" "test_decoding sees the deletes"
assert_eq "40 0 0" "$(published on_pub)" "the publication does not publish them"

echo "setting off again"
q "UPDATE journey.settings SET cdc_events = false"
q "INSERT INTO journey.contacts (first_name, phone, email) VALUES ('Late', '+15559999999', 'late@example.com')"
q "INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, id FROM journey.contacts WHERE first_name = 'Late'"
q "SELECT journey.run_due(1000, now())" >/dev/null
assert_eq "40 0 40" "$(decoded on_all journey.outbox_events)" "a message written with the setting off has no event"
for s in off_all off_pub on_all on_pub; do q "SELECT pg_drop_replication_slot('$s')" >/dev/null; done

echo "dump and restore (the README's procedure): CREATE EXTENSION brings the publication back"
q "UPDATE journey.settings SET cdc_events = true"
as_pg "$PG_BIN/pg_dump" -h "$DIR" -p 5495 -U postgres -Fc -f "$DIR/src.dump" postgres
q "CREATE DATABASE dst"
as_pg env PGOPTIONS="-c session_replication_role=replica" "$PG_BIN/pg_restore" -h "$DIR" -p 5495 -U postgres \
  --exit-on-error -d dst "$DIR/src.dump"
export PGDATABASE=dst
assert_eq "journey|outbox_events" "$(q "SELECT schemaname || '|' || tablename FROM pg_publication_tables WHERE pubname = 'journey_outbox_events'")" "the restored publication publishes outbox_events"
assert_eq "true|61" "$(q "SELECT cdc_events || '|' || (SELECT count(*) FROM journey.outbox) FROM journey.settings")" "settings.cdc_events and the outbox restored"
q "INSERT INTO journey.contacts (first_name, phone) VALUES ('After', '+15559999998')"
q "INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, id FROM journey.contacts WHERE first_name = 'After'"
q "SELECT journey.run_due(1000, now())" >/dev/null
assert_eq "1|sms" "$(q "SELECT count(*) || '|' || min(type) FROM journey.outbox_events")" "the restored database writes events"
q "DROP EXTENSION journey"
assert_eq 0 "$(q "SELECT count(*) FROM pg_publication")" "DROP EXTENSION drops the publication"
echo "cdc_test: ok"
