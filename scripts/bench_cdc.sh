#!/usr/bin/env bash
# Benchmark: what the outbox's CDC trigger (sql/cdc.sql) costs the engine. run_due over N
# enrollments that each send one SMS (one outbox INSERT per batch), in a throwaway cluster of its
# own, alternating: the trigger present with settings.cdc_events off (it reads the setting once
# per statement) and the trigger disabled (ALTER TABLE ... DISABLE TRIGGER: no trigger at all);
# then with the setting on (one outbox_events row per message). Medians of RUNS runs each.
#
#   bash scripts/bench_cdc.sh [N] [RUNS]     (the installed journey; scripts/install.sh first)
#
# The last line printed is one markdown table row:
#   | CDC trigger, N sends: off vs no trigger | off ms | no trigger ms | ratio | on ms (ratio) |
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-50000}
RUNS=${2:-5}
source tests/cluster.sh
trap cluster_cleanup EXIT
cluster_start /tmp/journey-bench-cdc 5496 "journey.worker_enabled = off" "shared_buffers = 256MB"
export PGOPTIONS="-c client_min_messages=warning"
create_journey
q "INSERT INTO journey.groups (name) VALUES ('g')"
q "SELECT journey.create_flow('b', '{\"triggers\": [{\"type\": \"group_joined\", \"group\": \"g\"}], \"start\": \"s\",
   \"nodes\": {\"s\": {\"type\": \"send_sms\", \"text\": \"Hi {{ contact.first_name }}\"}}}')" >/dev/null
q "SELECT journey.activate_flow('b')" >/dev/null
q "INSERT INTO journey.contacts (first_name, phone) SELECT 'C' || i, '+1555' || lpad(i::text, 7, '0') FROM generate_series(1, $N) i"

# run ENABLE|DISABLE: a fresh enrollment of every contact, then the ms run_due takes to send
run() {
  q "ALTER TABLE journey.outbox $1 TRIGGER outbox_events"
  q "DELETE FROM journey.group_members; DELETE FROM journey.enrollments; DELETE FROM journey.outbox"
  q "DELETE FROM journey.outbox_events"
  q "VACUUM journey.outbox, journey.enrollments, journey.steps, journey.outbox_events"
  q "INSERT INTO journey.group_members (group_id, contact_id) SELECT 1, id FROM journey.contacts"
  psql -X -qAt -c '\timing on' -c "SELECT journey.run_due($N, now())" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p'
}
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }

run ENABLE >/dev/null; run DISABLE >/dev/null   # warm-up
off=(); none=()
for _ in $(seq "$RUNS"); do off+=("$(run ENABLE)"); none+=("$(run DISABLE)"); done
q "UPDATE journey.settings SET cdc_events = true"
on=(); for _ in $(seq "$RUNS"); do on+=("$(run ENABLE)"); done
echo "trigger present, cdc_events off (ms): ${off[*]}"
echo "trigger disabled (ms):                ${none[*]}"
echo "cdc_events on (ms):                   ${on[*]}"
OFF=$(median "${off[@]}"); NONE=$(median "${none[@]}"); ON=$(median "${on[@]}")
RATIO=$(awk -v a="$OFF" -v b="$NONE" 'BEGIN {printf "%.2f", a / b}')
RATIO_ON=$(awk -v a="$ON" -v b="$NONE" 'BEGIN {printf "%.2f", a / b}')
echo "| CDC trigger, run_due of $N SMS: cdc_events off vs no trigger | ${OFF%.*} ms | ${NONE%.*} ms | $RATIO | on: ${ON%.*} ms ($RATIO_ON) |"
