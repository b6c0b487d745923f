#!/usr/bin/env bash
# Concurrent writers and runners: 8 sessions adding overlapping contacts to the same groups,
# submitting forms and emitting events while the worker runs enroll every contact exactly once
# per flow, with no deadlock or serialization error reaching a client; then three sessions
# calling journey.run_due on the same due rows, plus the worker, never run a step twice.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
dir=/tmp/journey-concurrency-test
cluster_start $dir 5475
JOBS=8
OPS=1000       # statements per session, each its own transaction
CONTACTS=1000  # the sessions pick contacts among these, all from the same sliding window
start=$SECONDS

create_journey
q "INSERT INTO journey.groups (name) VALUES ('g1'), ('g2'), ('g3'), ('due')"
q "INSERT INTO journey.forms (name, field_map, match_on) VALUES ('signup', '{\"email\": \"email\", \"name\": \"first_name\", \"city\": \"attributes.city\"}', 'email')"
q "SELECT journey.define_event('purchase', '[{\"name\": \"amount\", \"type\": \"number\", \"required\": true}, {\"name\": \"city\", \"type\": \"string\", \"contact_field\": \"attributes.city\"}]')" >/dev/null
flow() { q "SELECT journey.create_flow('$1', '$2')" >/dev/null; q "SELECT journey.activate_flow('$1')" >/dev/null; }
# grp stays active 2 s (a second join must not enroll again); fast completes at once (a join
# after it completed must not enroll again either: reentry is never)
flow grp '{"triggers": [{"type": "group_joined", "group": "g1"}, {"type": "group_joined", "group": "g2"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "grp {{ event.group }}", "ignore_quiet_hours": true, "next": {"to": "t", "delay": "2 seconds"}},
            "t": {"type": "send_sms", "text": "grp later", "ignore_quiet_hours": true}}}'
flow fast '{"triggers": [{"type": "group_joined", "group": "g2"}, {"type": "group_joined", "group": "g3"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "fast", "ignore_quiet_hours": true}}}'
flow form '{"triggers": [{"type": "form_submitted", "form": "signup"}], "start": "s",
  "nodes": {"s": {"type": "send_email", "subject": "Thanks", "body": "Thanks for signing up"}}}'
flow buy '{"triggers": [{"type": "event", "event": "purchase", "where": {"field": "event.amount", "op": ">", "value": 50}}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "big {{ event.amount }}", "ignore_quiet_hours": true}}}'
flow buyall '{"triggers": [{"type": "event", "event": "purchase"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "bought", "ignore_quiet_hours": true}}}'
q "INSERT INTO journey.contacts (email, phone, first_name) SELECT 'u' || g || '@example.com', '+1555' || lpad(g::text, 7, '0'), 'u' || g FROM generate_series(1, $CONTACTS) g"
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 15 "worker running"

# One session's statements, each its own transaction. Contacts come from a window of 16 that
# slides over the $CONTACTS contacts as the sessions go, so all sessions hit the same contacts
# at about the same time, most of them not yet enrolled: the first enrollment races.
gen_ops() {
  RANDOM=$1
  local i base c c2 c3 g amount
  for i in $(seq 1 $OPS); do
    base=$((i * (CONTACTS - 16) / OPS))
    c=$((base + RANDOM % 16 + 1)); g=g$((RANDOM % 3 + 1)); amount=$((RANDOM % 100))
    case $((RANDOM % 8)) in
      0) echo "SELECT journey.add_to_group($c, '$g');" ;;
      1) c2=$((base + RANDOM % 16 + 1)); c3=$((base + RANDOM % 16 + 1))
         echo "INSERT INTO journey.group_members (group_id, contact_id) SELECT g.id, c FROM journey.groups g, unnest(ARRAY[$c, $c2, $c3]::bigint[]) c WHERE g.name = '$g' ORDER BY c ON CONFLICT DO NOTHING;" ;;
      2) echo "SELECT journey.add_to_group(journey.upsert_contact('{\"email\": \"U$c@Example.com\"}'), '$g');" ;;
      3|4) if [ $((RANDOM % 4)) -eq 0 ]; then
           echo "SELECT journey.submit_form('signup', '{\"email\": \"new$((base / 4 + RANDOM % 4))@example.com\", \"name\": \"New\", \"city\": \"Oslo\"}');"
         else
           echo "SELECT journey.submit_form('signup', '{\"email\": \"u$c@example.com\", \"name\": \"U$c\", \"city\": \"Rome\"}');"
         fi ;;
      *) echo "SELECT journey.emit('purchase', $c, '{\"amount\": $amount, \"city\": \"Paris\"}');" ;;
    esac
  done
}

echo "concurrency: $JOBS sessions x $OPS writes on $CONTACTS shared contacts, worker running"
pids=()
for j in $(seq 1 $JOBS); do
  gen_ops $((j * 7919)) >$dir/ops_$j.sql
  psql -X -qAt -v ON_ERROR_STOP=1 -f $dir/ops_$j.sql >$dir/out_$j 2>$dir/err_$j &
  pids+=($!)
done
failed=0
for j in $(seq 1 $JOBS); do
  if ! wait "${pids[$((j - 1))]}"; then failed=$((failed + 1)); echo "  session $j failed: $(head -c 600 $dir/err_$j)"; fi
done
assert_eq 0 $failed "every session exited 0"
assert_eq 0 "$(cat $dir/err_* | grep -c . || true)" "no error or warning reached a client"
echo "  (writes took $((SECONDS - start)) s)"
wait_for "SELECT count(*) = 0 FROM journey.enrollments WHERE status = 'active'" 60 "worker finished every enrollment"

flow_id() { q "SELECT id FROM journey.flows WHERE name = '$1'"; }
# expected SELECT of contact ids per flow, from what the sessions wrote
declare -A expected=(
  [grp]="SELECT m.contact_id FROM journey.group_members m JOIN journey.groups g ON g.id = m.group_id WHERE g.name IN ('g1', 'g2')"
  [fast]="SELECT m.contact_id FROM journey.group_members m JOIN journey.groups g ON g.id = m.group_id WHERE g.name IN ('g2', 'g3')"
  [form]="SELECT contact_id FROM journey.form_submissions"
  [buy]="SELECT contact_id FROM journey.events WHERE (payload->>'amount')::numeric > 50"
  [buyall]="SELECT contact_id FROM journey.events"
)
declare -A sends=([grp]=2 [fast]=1 [form]=1 [buy]=1 [buyall]=1)
total_sends=0
for f in grp fast form buy buyall; do
  id=$(flow_id $f)
  n=$(q "SELECT count(*) FROM journey.enrollments WHERE flow_id = $id")
  want=$(q "SELECT count(DISTINCT contact_id) FROM (${expected[$f]}) x")
  echo "  flow $f: $n enrollments, $want contacts expected"
  assert_eq "$n" "$(q "SELECT count(DISTINCT contact_id) FROM journey.enrollments WHERE flow_id = $id")" "$f: no contact enrolled twice"
  assert_eq 0 "$(q "SELECT count(*) FROM ((${expected[$f]}) EXCEPT SELECT contact_id FROM journey.enrollments WHERE flow_id = $id) x")" "$f: no enrollment lost"
  assert_eq 0 "$(q "SELECT count(*) FROM (SELECT contact_id FROM journey.enrollments WHERE flow_id = $id EXCEPT (${expected[$f]})) x")" "$f: no enrollment without its trigger"
  assert_eq "$n" "$(q "SELECT count(*) FROM journey.enrollments WHERE flow_id = $id AND status = 'completed'")" "$f: all completed"
  assert_eq $((n * ${sends[$f]})) "$(q "SELECT count(*) FROM journey.outbox WHERE flow_id = $id")" "$f: one outbox row per send"
  total_sends=$((total_sends + n * ${sends[$f]}))
done
assert_eq 0 "$(q "SELECT count(*) FROM (SELECT enrollment_id, node FROM journey.outbox GROUP BY 1, 2 HAVING count(*) > 1) d")" "no duplicate (enrollment, node) in the outbox"
assert_eq 0 "$(q "SELECT count(*) FROM journey.steps WHERE outcome <> 'sent'")" "no failed or suppressed step"
dup_contacts=$(q "SELECT count(*) FROM (SELECT lower(email) FROM journey.contacts GROUP BY 1 HAVING count(*) > 1) d")
echo "  (note: $dup_contacts e-mail addresses belong to more than one contact after concurrent submissions of a new address)"

echo "concurrency: 3 sessions calling run_due on the same due rows while the worker comes back"
q "ALTER SYSTEM SET journey.worker_enabled = off"
q "SELECT pg_reload_conf()" >/dev/null
sleep 1.5
N=5000
q "SELECT journey.create_flow('due', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"due\"}], \"start\": \"a\",
   \"nodes\": {\"a\": {\"type\": \"send_sms\", \"text\": \"a\", \"ignore_quiet_hours\": true, \"next\": {\"to\": \"b\", \"delay\": \"1 second\"}},
              \"b\": {\"type\": \"send_sms\", \"text\": \"b\", \"ignore_quiet_hours\": true, \"next\": \"c\"},
              \"c\": {\"type\": \"send_sms\", \"text\": \"c\", \"ignore_quiet_hours\": true}}}')" >/dev/null
q "SELECT journey.activate_flow('due')" >/dev/null
due_id=$(flow_id due)
q "INSERT INTO journey.contacts (phone) SELECT '+1666' || lpad(g::text, 7, '0') FROM generate_series(1, $N) g"
q "INSERT INTO journey.group_members (group_id, contact_id) SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE g.name = 'due' AND c.phone LIKE '+1666%'"
sleep 1
assert_eq "$N|0" "$(q "SELECT count(*) || '|' || count(*) FILTER (WHERE seq > 0) FROM journey.enrollments WHERE flow_id = $due_id")" "$N enrolled, none advanced with the worker off"

# runner K: calls run_due(100) until it returns 0 and nothing is active (or 60 s passed)
runner() {
  local total=0 n deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    n=$(q "SELECT journey.run_due(100)") || { echo "run_due failed" >&2; return 1; }
    total=$((total + n))
    if [ "$n" = 0 ]; then
      [ "$(q "SELECT count(*) FROM journey.enrollments WHERE status = 'active'")" = 0 ] && break
      sleep 0.05
    fi
  done
  echo $total >$dir/runner_$1
}
rpids=()
for r in 1 2 3; do runner $r 2>$dir/runner_err_$r & rpids+=($!); done
sleep 0.2
q "ALTER SYSTEM SET journey.worker_enabled = on"
q "SELECT pg_reload_conf()" >/dev/null
failed=0
for r in 1 2 3; do wait "${rpids[$((r - 1))]}" || { failed=$((failed + 1)); cat $dir/runner_err_$r; }; done
assert_eq 0 $failed "every run_due session exited 0"
assert_eq 0 "$(cat $dir/runner_err_* | grep -c . || true)" "no error reached a run_due session"
runs="$(cat $dir/runner_1) + $(cat $dir/runner_2) + $(cat $dir/runner_3)"
echo "  (enrollments advanced by the sessions: $runs of $((2 * N)); the worker did the rest)"
busy=0; for r in 1 2 3; do [ "$(cat $dir/runner_$r)" -gt 0 ] && busy=$((busy + 1)); done
[ $busy -ge 2 ] || { echo "  FAIL only $busy session(s) advanced anything: no contention"; exit 1; }
[ $(($runs)) -le $((2 * N)) ] || { echo "  FAIL the sessions advanced $(($runs)) > $((2 * N)) (a step ran twice)"; exit 1; }
echo "  PASS $busy sessions competed for the same rows"
assert_eq "$N" "$(q "SELECT count(*) FROM journey.enrollments WHERE flow_id = $due_id AND status = 'completed' AND seq = 3")" "every enrollment completed after exactly 3 nodes"
assert_eq $((3 * N)) "$(q "SELECT count(*) FROM journey.outbox WHERE flow_id = $due_id")" "outbox rows = 3 per enrollment exactly"
assert_eq $((3 * N)) "$(q "SELECT count(*) FROM journey.steps WHERE flow_id = $due_id")" "step rows = 3 per enrollment (no step ran twice)"
assert_eq 0 "$(q "SELECT count(*) FROM (SELECT idempotency_key FROM journey.outbox GROUP BY 1 HAVING count(*) > 1) d")" "no duplicate idempotency key"
assert_eq 0 "$(q "SELECT count(*) FROM (SELECT enrollment_id, node FROM journey.steps GROUP BY 1, 2 HAVING count(*) > 1) d")" "no duplicate step"
assert_eq $((total_sends + 3 * N)) "$(q "SELECT count(*) FROM journey.outbox")" "outbox holds exactly the expected rows overall"

echo "concurrency: server log"
assert_eq 0 "$(grep -c 'deadlock detected' $dir/server.log || true)" "no deadlock"
assert_eq 0 "$(grep -c 'could not serialize' $dir/server.log || true)" "no serialization failure"
assert_eq 0 "$(grep -c 'batch failed' $dir/server.log || true)" "no failed worker batch"
assert_eq 0 "$(grep -Ec '(ERROR|PANIC|FATAL):' $dir/server.log || true)" "no ERROR, FATAL or PANIC"
echo "concurrency_test: ok ($((SECONDS - start)) s)"
