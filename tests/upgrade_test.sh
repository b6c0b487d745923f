#!/usr/bin/env bash
# Upgrades: a database created with each earlier release (sql/releases/journey--<old>.sql)
# and holding journeys mid-way is upgraded with ALTER EXTENSION journey UPDATE (through every
# upgrade script in between); afterwards its schema is exactly that of a fresh install of this
# version (tables, columns, constraints, indexes, functions and their bodies, triggers,
# comments, privileges, dump configuration), and the journeys continue.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
NEW=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
PREVIOUS=0.2.0
[ -f "sql/journey--$PREVIOUS--$NEW.sql" ] || { echo "  FAIL no upgrade script sql/journey--$PREVIOUS--$NEW.sql"; exit 1; }
EXTDIR=$("$PG_BIN/pg_config" --sharedir)/extension
cp sql/releases/journey--*.sql "$EXTDIR/"
cluster_start /tmp/journey-upgrade-test 5479 "journey.worker_enabled = off"
export PGOPTIONS="-c client_min_messages=warning"
q "CREATE DATABASE fresh"
PGDATABASE=fresh q "CREATE EXTENSION journey"

for OLD in 0.1.0 $PREVIOUS; do
echo "upgrade from $OLD"
export PGDATABASE=upgraded_${OLD//./_}
PGDATABASE=postgres q "CREATE DATABASE $PGDATABASE"
q "CREATE EXTENSION journey VERSION '$OLD'"
q "UPDATE journey.settings SET quiet_hours_start = '00:00', quiet_hours_end = '00:00'"
q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "SELECT journey.create_flow('welcome', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"newsletter\"}], \"start\": \"a\",
   \"nodes\": {\"a\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}\", \"ignore_quiet_hours\": true, \"next\": {\"to\": \"b\", \"delay\": \"1 day\"}},
              \"b\": {\"type\": \"send_sms\", \"text\": \"Again {{ contact.first_name }}\", \"ignore_quiet_hours\": true}}}')" >/dev/null
# Activated as the old version's activate_flow did: this version's library writes routing
# columns and tables (flow_triggers.pos, date_schedule) the old schema lacks until the upgrade.
q "UPDATE journey.flows SET status = 'active', start_node = 'a', activated_at = now() WHERE name = 'welcome';
   INSERT INTO journey.flow_triggers (flow_id, kind, key)
   SELECT f.id, 'group_joined', g.id::text FROM journey.flows f, journey.groups g
   WHERE f.name = 'welcome' AND g.name = 'newsletter'"
q "INSERT INTO journey.contacts (first_name, phone) SELECT 'C' || i, '+1555' || i FROM generate_series(1, 3) i"
q "INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, i FROM generate_series(1, 3) i"
# The first SMS of each as run_due writes it: run_due itself is this version's library, which
# reads columns the old schema lacks until the upgrade adds them.
q "INSERT INTO journey.outbox (idempotency_key, channel, flow_id, enrollment_id, node, contact_id, recipient, body)
   SELECT e.id || ':a:1', 'sms', e.flow_id, e.id, 'a', e.contact_id, c.phone, 'Hi ' || c.first_name
   FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id"
q "INSERT INTO journey.steps (enrollment_id, contact_id, flow_id, node, at, outcome)
   SELECT id, contact_id, flow_id, 'a', now(), 'sent' FROM journey.enrollments"
q "UPDATE journey.enrollments SET node = 'b', seq = 1, due_at = now() + interval '1 day'"
assert_eq "3|3" "$(q "SELECT count(*) || '|' || (SELECT count(*) FROM journey.outbox) FROM journey.enrollments WHERE status = 'active'")" "$OLD: three journeys waiting a day"

q "ALTER EXTENSION journey UPDATE TO '$NEW'"
assert_eq "$NEW" "$(q "SELECT extversion FROM pg_extension WHERE extname = 'journey'")" "upgraded to $NEW"

# Everything about the journey schema that a fresh install defines, one line per fact.
FINGERPRINT=$(cat <<'SQL'
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = 'journey')
SELECT line FROM (
  SELECT format('column %s.%s %s %s default %s identity %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                CASE WHEN a.attnotnull THEN 'not null' ELSE 'null' END, pg_get_expr(d.adbin, d.adrelid), a.attidentity) AS line
  FROM pg_class c JOIN ns ON c.relnamespace = ns.oid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
  WHERE c.relkind IN ('r', 'v')
  UNION ALL
  SELECT format('constraint %s.%s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN ns ON c.relnamespace = ns.oid
  UNION ALL
  SELECT format('index %s', pg_get_indexdef(i.indexrelid))
  FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN ns ON c.relnamespace = ns.oid
  UNION ALL
  SELECT format('function %s(%s) returns %s secdef %s volatile %s config %s acl %s body %s', p.proname,
                pg_get_function_identity_arguments(p.oid), pg_get_function_result(p.oid), p.prosecdef, p.provolatile,
                p.proconfig, p.proacl, md5(p.prosrc))
  FROM pg_proc p JOIN ns ON p.pronamespace = ns.oid
  UNION ALL
  SELECT format('trigger %s enabled %s', pg_get_triggerdef(t.oid), t.tgenabled)
  FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ns ON c.relnamespace = ns.oid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT format('view %s %s', c.relname, md5(pg_get_viewdef(c.oid))) FROM pg_class c JOIN ns ON c.relnamespace = ns.oid WHERE c.relkind = 'v'
  UNION ALL
  SELECT format('acl %s %s %s', c.relkind, c.relname, c.relacl) FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
  UNION ALL
  SELECT format('comment %s %s', c.relname, md5(obj_description(c.oid, 'pg_class'))) FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
   WHERE obj_description(c.oid, 'pg_class') IS NOT NULL
  UNION ALL
  SELECT format('comment %s(%s) %s', p.proname, pg_get_function_identity_arguments(p.oid), md5(obj_description(p.oid, 'pg_proc')))
  FROM pg_proc p JOIN ns ON p.pronamespace = ns.oid WHERE obj_description(p.oid, 'pg_proc') IS NOT NULL
  UNION ALL
  SELECT format('dumped %s', x::regclass) FROM pg_extension e, unnest(e.extconfig) x WHERE e.extname = 'journey'
) f ORDER BY line
SQL
)
q "$FINGERPRINT" >/tmp/journey-upgrade-test/upgraded.txt
PGDATABASE=fresh q "$FINGERPRINT" >/tmp/journey-upgrade-test/fresh.txt
if diff -u /tmp/journey-upgrade-test/fresh.txt /tmp/journey-upgrade-test/upgraded.txt; then
  echo "  PASS the upgraded schema equals a fresh $NEW install ($(wc -l </tmp/journey-upgrade-test/fresh.txt) facts)"
else
  echo "  FAIL the upgraded schema differs from a fresh install (- fresh, + upgraded)"; exit 1
fi

assert_eq 3 "$(q "SELECT journey.run_due(100, now() + interval '2 days')")" "the journeys started in $OLD continue"
assert_eq 6 "$(q "SELECT count(*) FROM journey.outbox")" "each sends its second SMS once"
assert_eq 3 "$(q "SELECT count(*) FROM journey.enrollments WHERE status = 'completed' AND occurrence = 'once'")" "old enrollments are marked once (never re-entered)"
q "DELETE FROM journey.group_members; INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, i FROM generate_series(1, 3) i"
assert_eq 3 "$(q "SELECT count(*) FROM journey.enrollments")" "and are not enrolled again"
done
