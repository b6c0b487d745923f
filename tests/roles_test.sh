#!/usr/bin/env bash
# Roles: journey.grant_role gives admin, app and relay roles their documented access, and
# nothing more; PUBLIC gets nothing. Each role logs in and is tried at its limits. (Every cell
# of the matrix: tests/pg_regress/sql/roles_matrix.sql; the pg_temp attack on the definer
# functions: tests/pg_regress/sql/definer_attack.sql.)
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
cluster_start /tmp/journey-roles-test 5477 "journey.worker_enabled = off"
export PGOPTIONS="-c client_min_messages=warning"

create_journey
q "CREATE ROLE jadmin LOGIN; CREATE ROLE japp LOGIN; CREATE ROLE jrelay LOGIN; CREATE ROLE nobody LOGIN"
q "SELECT journey.grant_role('jadmin', 'admin')"
q "SELECT journey.grant_role('japp', 'app')"
q "SELECT journey.grant_role('jrelay', 'relay')"

as() { local role=$1; shift; PGUSER=$role psql -X -qAt -v ON_ERROR_STOP=1 -c "$1" 2>&1; }
ok() { # role sql message
  local out
  if out=$(as "$1" "$2"); then echo "  PASS $3"; else echo "  FAIL $3: $out"; exit 1; fi
}
denied() { # role sql message
  local out
  if out=$(as "$1" "$2"); then echo "  FAIL $3: allowed ($out)"; exit 1; fi
  if grep -q "permission denied" <<<"$out"; then echo "  PASS $3"; else echo "  FAIL $3: $out"; exit 1; fi
}

echo "grant_role: bad input is refused"
assert_eq 22023 "$(psql -X -qAt -c "\set VERBOSITY sqlstate" -c "SELECT journey.grant_role('jadmin', 'owner')" 2>&1 | tr -d 'ERROR: ')" "unknown kind: 22023"
assert_eq 42704 "$(psql -X -qAt -c "\set VERBOSITY sqlstate" -c "SELECT journey.grant_role('ghost', 'app')" 2>&1 | tr -d 'ERROR: ')" "unknown role: 42704"

echo "admin: defines flows, templates and settings, runs due steps"
ok jadmin "INSERT INTO journey.groups (name) VALUES ('newsletter')" "admin creates a group"
ok jadmin "INSERT INTO journey.templates (name, channel, subject, body) VALUES ('hi', 'email', 'Hi', 'Hello {{ contact.first_name }}')" "admin writes templates"
ok jadmin "UPDATE journey.settings SET admin_email = 'ops@example.com'" "admin changes settings"
ok jadmin "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"s\",
   \"nodes\": {\"s\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}\", \"ignore_quiet_hours\": true}}}')" "admin creates a flow"
ok jadmin "SELECT journey.activate_flow('welcome')" "admin activates it"

echo "app: writes the audience and enrolls, cannot change flows"
ok japp "SELECT journey.add_to_group(journey.upsert_contact('{\"first_name\": \"Dana\", \"phone\": \"+15550001\"}'), 'newsletter')" "app adds a contact to a group (the trigger enrolls)"
ok japp "INSERT INTO journey.contacts (first_name, phone, time_zone) VALUES ('Ion', '+40721000002', 'Europe/Bucharest')" "app inserts contacts"
ok japp "INSERT INTO journey.group_members (group_id, contact_id) SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE c.first_name = 'Ion'" "app inserts group members"
assert_eq 2 "$(q "SELECT count(*) FROM journey.enrollments")" "both contacts enrolled through the app's writes"
ok japp "SELECT journey.define_event('purchase', '[{\"name\": \"amount\", \"type\": \"number\"}]')" "app defines an event type"
ok japp "SELECT journey.emit('purchase', 1, '{\"amount\": 5}')" "app emits an event"
ok japp "SELECT * FROM journey.timeline(1)" "app reads a timeline"
ok japp "SELECT * FROM journey.flow_stats('welcome')" "app reads stats"
denied japp "SELECT journey.update_flow('welcome', '{}')" "app cannot update a flow"
denied japp "SELECT journey.pause_flow('welcome')" "app cannot pause a flow"
denied japp "UPDATE journey.flows SET status = 'paused', paused_reason = 'manual'" "app cannot write flows"
denied japp "DELETE FROM journey.flow_versions" "app cannot delete versions"
denied japp "UPDATE journey.settings SET admin_email = 'x@example.com'" "app cannot change settings"
denied japp "INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at) VALUES (1, 1, 1, 's', now())" "app cannot write enrollments directly"
denied japp "SELECT journey.run_due(10)" "app cannot run due steps"
denied japp "SELECT * FROM journey.claim()" "app cannot claim messages"
ok jadmin "SELECT journey.run_due(100)" "admin runs due steps"
for t in $(q "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'v') ORDER BY 1"); do
  denied jadmin "CREATE TRIGGER t BEFORE INSERT ON journey.$t FOR EACH STATEMENT EXECUTE FUNCTION journey._settings_replace()" "admin cannot create a trigger on journey.$t"
done
denied jadmin "TRUNCATE journey.steps" "admin cannot truncate"
denied jadmin "CREATE TABLE public.mine (id bigint, contact_id bigint, FOREIGN KEY (id, contact_id) REFERENCES journey.outbox (id, contact_id))" "admin cannot reference journey's tables"
denied jadmin "SELECT journey.grant_role('japp', 'admin')" "admin cannot grant kinds (grant_role is the owner's)"

echo "relay: claim, mark_sent, mark_failed, report and nothing else"
ok jrelay "SELECT count(*) FROM journey.claim(NULL, 1)" "relay claims"
read -r id token <<<"$(as jrelay "SELECT id || ' ' || lease_token FROM journey.claim(NULL, 1)")"
[ -n "$id" ] || { echo "  FAIL relay got nothing to claim"; exit 1; }
assert_eq t "$(as jrelay "SELECT journey.mark_sent($id, 'prov-1', '$token')")" "relay marks sent with its lease token"
assert_eq t "$(as jrelay "SELECT journey.report('prov-1', 'delivered', 'ev-1')")" "relay reports delivery"
id2=$(q "SELECT id FROM journey.outbox WHERE status = 'leased' LIMIT 1")
token2=$(q "SELECT lease_token FROM journey.outbox WHERE id = $id2")
assert_eq t "$(as jrelay "SELECT journey.mark_failed($id2, 'provider down', true, '$token2')")" "relay marks failed with the lease token"
assert_eq "delivered" "$(q "SELECT status FROM journey.outbox WHERE id = $id")" "the relay's calls took effect"
denied jrelay "SELECT * FROM journey.contacts" "relay cannot read contacts"
denied jrelay "SELECT * FROM journey.outbox" "relay cannot read the outbox table directly"
denied jrelay "UPDATE journey.outbox SET status = 'sent'" "relay cannot write the outbox directly"
denied jrelay "SELECT journey.activate_flow('welcome')" "relay cannot change a flow"
denied jrelay "UPDATE journey.flows SET status = 'archived'" "relay cannot write flows"
denied jrelay "SELECT journey.upsert_contact('{\"phone\": \"+10000000000\"}')" "relay cannot write contacts"
denied jrelay "SELECT * FROM journey.timeline(1)" "relay cannot read timelines"

echo "PUBLIC: nothing"
denied nobody "SELECT * FROM journey.claim()" "a role without a grant cannot claim"
denied nobody "SELECT * FROM journey.contacts" "nor read contacts"
denied nobody "SELECT journey.enroll('welcome', 1)" "nor enroll"

echo "an app's own table, attached: its writes enroll with no grant on journey"
q "CREATE ROLE shop LOGIN; GRANT CREATE ON SCHEMA public TO shop"
as shop "CREATE TABLE public.orders (id int PRIMARY KEY, contact_id bigint, total int)" >/dev/null
denied shop "SELECT journey.attach_table('public.orders', 'contact_id')" "the app role cannot attach its table"
denied japp "SELECT journey.attach_table('public.orders', 'contact_id')" "nor can the app kind"
denied jadmin "SELECT journey.attach_table('public.orders', 'contact_id')" "an admin without SELECT and TRIGGER on it cannot either"
q "SELECT journey.attach_table('public.orders', 'contact_id')" >/dev/null
q "SELECT journey.create_flow('order_placed', '{\"triggers\": [{\"type\": \"record\", \"record\": \"orders\"}], \"start\": \"s\", \"nodes\": {\"s\": {\"type\": \"send_sms\", \"text\": \"Order {{ record.id }}: {{ record.total }}\"}}}'); SELECT journey.activate_flow('order_placed')" >/dev/null
ok shop "INSERT INTO public.orders VALUES (1, 1, 40), (2, 1, 50)" "the app role inserts into its attached table"
assert_eq 2 "$(q "SELECT count(*) FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'order_placed'")" "and its contact is enrolled once per record"
denied shop "SELECT * FROM journey.enrollments" "while the app role still cannot read journey's tables"

echo "SECURITY DEFINER functions all pin search_path, pg_temp last"
assert_eq 0 "$(q "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                  WHERE n.nspname = 'journey' AND p.prosecdef
                    AND NOT coalesce('search_path=pg_catalog, journey, pg_temp' = ANY (p.proconfig), false)")" "every SECURITY DEFINER function has SET search_path = pg_catalog, journey, pg_temp"
assert_eq "_branch_ended _contact_key_changed _contact_keys_deleted _contact_keys_inserted _count_batch _count_deleted _count_goals _count_message_status _count_moved _counts _date_pass _date_schedule _date_schedule_flow _delete_contact_enrollments _delete_flow_counters _delete_steps _delete_version_enrollments _enroll _enroll_occurrences _event_arrived _insert_contact _on_contact_created _on_contact_phone _on_contact_updated _on_contacts_dated _on_contacts_redated _on_event _on_event_inserted _on_form_submission _on_form_submitted _on_group_joined _on_group_left _on_record_written _on_settings_redated _outbox_events _outbox_events_deleted _quota_exhausted _quota_raised _recount _retention_pass allow_writes attach_table claim compact_counters counter_differences detach_table enroll flow_stats goal_stats link mark_failed mark_sent message_stats node_stats receive_sms report split_stats" \
  "$(q "SELECT string_agg(p.proname, ' ' ORDER BY p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'journey' AND p.prosecdef")" \
  "and they are exactly the 57 intended (relay protocol, audience, record and contact_keys triggers, upsert_contact's insert, enrolling, dates, quotas, forks, retention, counters and the stats reading them, attaching tables, inbound SMS, CDC)"
