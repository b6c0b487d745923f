#!/usr/bin/env bash
# Crashes while the workers run lose no step and send nothing twice: 20,000 contacts enter a
# two-step SMS flow run by two workers (journey.workers = 2: claims that must never overlap); a
# worker backend is SIGKILLed several times (the postmaster reinitialises every backend and the
# launcher starts the workers again) and the cluster is stopped once with -m immediate and
# started again. Afterwards every enrollment completed with exactly one outbox row per send.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
dir=/tmp/journey-crash-test
N=20000
cluster_start $dir 5474 "journey.batch_size = 50" "fsync = on" "journey.workers = 2"

# waits until the cluster accepts connections again (after crash recovery or a restart)
wait_up() {
  for _ in $(seq 1 300); do q "SELECT 1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "  FAIL the cluster does not accept connections"; exit 1
}
worker_pid() { q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'journey worker' ORDER BY random() LIMIT 1" 2>/dev/null || true; }
sent() { q "SELECT count(*) FROM journey.outbox" 2>/dev/null || echo "?"; }
active() { q "SELECT count(*) FROM journey.enrollments WHERE status = 'active'" 2>/dev/null || echo "?"; }

create_journey
q "INSERT INTO journey.groups (name) VALUES ('crash')"
q "SELECT journey.create_flow('two_sms', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"crash\"}], \"start\": \"a\",
   \"nodes\": {\"a\": {\"type\": \"send_sms\", \"text\": \"a {{ contact.first_name }}\", \"ignore_quiet_hours\": true, \"next\": {\"to\": \"b\", \"delay\": \"1 second\"}},
              \"b\": {\"type\": \"send_sms\", \"text\": \"b {{ contact.first_name }}\", \"ignore_quiet_hours\": true}}}')" >/dev/null
q "SELECT journey.activate_flow('two_sms')" >/dev/null
q "INSERT INTO journey.contacts (first_name, phone) SELECT 'c' || g, '+1555' || lpad(g::text, 7, '0') FROM generate_series(1, $N) g"
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 15 "two workers running"

echo "crash: $N enrollments, 4 SIGKILLs of the worker and one immediate stop while it runs"
start=$SECONDS
q "INSERT INTO journey.group_members (group_id, contact_id) SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE g.name = 'crash'"
assert_eq $N "$(q "SELECT count(*) FROM journey.enrollments")" "$N enrolled in the joining transaction"

# Each crash waits for the (restarted) worker to make progress, lets it run a moment longer,
# then crashes it in the middle of its batches.
interrupted=0   # crashes that hit while steps were still to run
crash() {
  local kind=$1 pid="" p0 before_sent before_active
  for _ in $(seq 1 150); do pid=$(worker_pid); [ -n "$pid" ] && break; sleep 0.1; done
  [ -n "$pid" ] || { echo "  FAIL no worker backend before crash ($kind)"; exit 1; }
  p0=$(sent)
  for _ in $(seq 1 100); do [ "$(sent)" != "$p0" ] && break; sleep 0.05; done
  sleep "0.$((RANDOM % 3 + 1))"
  before_sent=$(sent); before_active=$(active)
  if [ "$kind" = kill ]; then
    kill -9 "$pid"
    echo "  kill -9 of worker $pid (outbox rows $before_sent, active $before_active)"
    sleep 0.3
  else
    as_pg "$PG_BIN/pg_ctl" -D $dir/data -m immediate -w stop >/dev/null
    echo "  pg_ctl stop -m immediate (outbox rows $before_sent, active $before_active)"
    as_pg "$PG_BIN/pg_ctl" -D $dir/data -l $dir/server.log -w -t 60 start >/dev/null
  fi
  if [ "$before_active" != 0 ] && [ "$before_sent" -lt $((2 * N)) ]; then interrupted=$((interrupted + 1)); fi
  wait_up
}
crash kill; crash kill; crash immediate; crash kill; crash kill
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 15 "two workers back after the last crash"
[ $interrupted -eq 5 ] || { echo "  FAIL only $interrupted of 5 crashes hit while steps were due (make the run longer)"; exit 1; }
echo "  PASS all 5 crashes hit while steps were still due"

wait_for "SELECT count(*) = 0 FROM journey.enrollments WHERE status = 'active'" 90 "no enrollment left active"
echo "  (all done $((SECONDS - start)) s after enrolling)"

echo "crash: nothing lost, nothing twice"
assert_eq "$N" "$(q "SELECT count(*) FROM journey.enrollments WHERE status = 'completed' AND node = 'b' AND last_error IS NULL")" "every enrollment completed at b"
assert_eq "$N" "$(q "SELECT count(*) FROM journey.enrollments")" "no enrollment added or lost"
assert_eq $((2 * N)) "$(q "SELECT count(*) FROM journey.outbox")" "exactly one outbox row per send step"
assert_eq 0 "$(q "SELECT count(*) FROM (SELECT enrollment_id, node FROM journey.outbox GROUP BY 1, 2 HAVING count(*) > 1) d")" "no duplicate (enrollment, node) in the outbox"
assert_eq 0 "$(q "SELECT count(*) FROM (SELECT idempotency_key FROM journey.outbox GROUP BY 1 HAVING count(*) > 1) d")" "no duplicate idempotency key"
assert_eq 0 "$(q "SELECT count(*) FROM journey.enrollments e WHERE (SELECT array_agg(o.node ORDER BY o.node) FROM journey.outbox o WHERE o.enrollment_id = e.id) IS DISTINCT FROM ARRAY['a', 'b']")" "every enrollment has its a and b rows"
assert_eq 0 "$(q "SELECT count(*) FROM journey.outbox o JOIN journey.enrollments e ON e.id = o.enrollment_id
                  WHERE o.idempotency_key <> e.id || ':' || o.node || ':' || CASE o.node WHEN 'a' THEN 1 ELSE 2 END
                     OR o.contact_id <> e.contact_id OR o.recipient IS NULL OR o.status <> 'pending'")" "keys enrollment:node:seq, pending, with a recipient"
assert_eq 0 "$(q "SELECT count(*) FROM journey.outbox o JOIN journey.contacts c ON c.id = o.contact_id WHERE o.body <> o.node || ' ' || c.first_name")" "each body rendered for its own contact"
assert_eq "$((2 * N))|$N|$N" "$(q "SELECT count(*) || '|' || count(*) FILTER (WHERE node = 'a') || '|' || count(*) FILTER (WHERE node = 'b') FROM journey.steps WHERE outcome = 'sent'")" "one step row per node entered (no step re-run)"
assert_eq 0 "$(q "SELECT count(*) FROM journey.steps WHERE outcome <> 'sent'")" "no failed or suppressed step"
assert_eq 0 "$(q "SELECT count(*) FROM (SELECT enrollment_id, node FROM journey.steps GROUP BY 1, 2 HAVING count(*) > 1) d")" "no duplicate step history"
assert_eq 0 "$(q "SELECT count(*) FROM journey.counter_differences()")" "every stats counter equals a recount from the tables"
assert_eq 0 "$(grep -c 'batch failed' $dir/server.log || true)" "no failed batch in the server log"
assert_eq 0 "$(grep -Ec 'PANIC|could not|corrupt' $dir/server.log || true)" "no PANIC or corruption in the server log"
echo "  ($(grep -c 'was terminated by signal 9' $dir/server.log || true) SIGKILLs and $(grep -c 'database system was interrupted' $dir/server.log || true) recoveries in the log, $((SECONDS - start)) s)"
echo "crash_test: ok"
