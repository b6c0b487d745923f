#!/usr/bin/env bash
# Soak: journeys running for a while with retention on. Continuous enrollments (a two-SMS flow
# re-entered by contacts again and again), the worker, and a SQL relay loop claiming, marking
# sent and reporting deliveries; every minute it prints the sizes of the tables that grow, the
# worker's memory and the commit -> outbox latency (p50, p99) of probe enrollments. With
# retention on, the sizes and the memory are flat after the first minutes.
#
#   bash scripts/soak.sh [MINUTES]      default 10 (not in CI; CI runs SOAK_MINUTES=1 via test.sh)
# Retention in the run: keep_sent_messages and keep_ended_enrollments = SOAK_KEEP (default 1 minute).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-${SOAK_MINUTES:-10}}
KEEP=${SOAK_KEEP:-1 minute}
CONTACTS=20000
[ -n "${SOAK_NO_INSTALL:-}" ] || bash scripts/install.sh
source tests/cluster.sh
DIR=/tmp/journey-soak
# the background loops stop at their next turn once $DIR/stop exists; the cluster stops after them
trap 'touch "$DIR/stop" 2>/dev/null; wait; cp "$DIR/server.log" /tmp/journey-soak-server.log 2>/dev/null || true; cluster_cleanup' EXIT
cluster_start "$DIR" 5490 "fsync = on" "journey.naptime = 1000"
create_journey
q "UPDATE journey.settings SET keep_sent_messages = '$KEEP', keep_ended_enrollments = '$KEEP'"
q "INSERT INTO journey.contacts (first_name, phone) SELECT 'c' || i, '+1555' || lpad(i::text, 7, '0') FROM generate_series(1, $CONTACTS) i"
q "SELECT journey.create_flow('soak', '{\"triggers\": [{\"type\": \"manual\"}], \"reentry\": \"always\", \"start\": \"a\",
   \"nodes\": {\"a\": {\"type\": \"send_sms\", \"text\": \"a {{ contact.first_name }}\", \"next\": {\"to\": \"b\", \"delay\": \"5 seconds\"}},
              \"b\": {\"type\": \"send_sms\", \"text\": \"b {{ contact.first_name }}\"}}}')" >/dev/null
q "SELECT journey.create_flow('probe', '{\"triggers\": [{\"type\": \"manual\"}], \"reentry\": \"always\", \"start\": \"a\",
   \"nodes\": {\"a\": {\"type\": \"send_sms\", \"text\": \"probe\"}}}')" >/dev/null
q "SELECT journey.activate_flow('soak'); SELECT journey.activate_flow('probe')" >/dev/null
wait_for "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 30 "worker running"

# enrollments: 50 contacts every 100 ms, round the contacts
( i=0; while [ ! -e "$DIR/stop" ]; do
    q "SELECT count(journey.enroll('soak', c)) FROM generate_series($((i % CONTACTS + 1)), $((i % CONTACTS + 50))) c" >/dev/null
    i=$((i + 50)); sleep 0.1
  done ) &
# the relay: claim up to 1000, mark them sent, report half of them delivered
( while [ ! -e "$DIR/stop" ]; do
    psql -X -qAt -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
WITH sent AS (SELECT c.id, journey.mark_sent(c.id, 'p' || c.id, c.lease_token) AS ok FROM journey.claim(NULL, 1000, '1 minute') c)
SELECT count(journey.report('p' || id, 'delivered', 'ev' || id)) FROM sent WHERE ok AND id % 2 = 0;
SQL
    sleep 0.2
  done ) &

# probes: commit of an enrollment -> its outbox row visible, one every 2 s
declare -a LAT
probe() {
  local c=$((RANDOM % CONTACTS + 1)) id t0 t1
  id=$(q "SELECT journey.enroll('probe', $c)")
  t0=$(date +%s%N)
  [ -n "$id" ] || return 0
  for _ in $(seq 1 2000); do
    [ "$(q "SELECT count(*) FROM journey.outbox WHERE contact_id = $c AND enrollment_id = $id")" = 1 ] && break
    sleep 0.005
  done
  t1=$(date +%s%N)
  LAT+=("$(( (t1 - t0) / 1000000 ))")
}
pct() { printf '%s\n' "${LAT[@]}" | sort -n | awk -v p="$1" '{a[NR] = $1} END {i = int(NR * p / 100); if (i < 1) i = 1; print a[i]}'; }
mb() { q "SELECT round(pg_total_relation_size('journey.$1') / 1048576.0, 1)"; }
printf '%-6s %10s %10s %10s %12s %10s %8s %8s\n' minute outbox_mb steps_mb enroll_mb sent_total rss_mb p50_ms p99_ms
for m in $(seq 1 "$MINUTES"); do
  LAT=(); end=$((SECONDS + 60))
  while [ $SECONDS -lt $end ]; do probe; sleep 2; done
  pid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'journey worker'")
  rss=$(awk '$1 == "VmRSS:" {printf "%.0f", $2 / 1024}' "/proc/$pid/status")
  sent=$(q "SELECT count(*) FROM journey.delivery_reports")
  printf '%-6s %10s %10s %10s %12s %10s %8s %8s\n' "$m" "$(mb outbox)" "$(mb steps)" "$(mb enrollments)" \
    "$(q "SELECT coalesce(max(id), 0) FROM journey.outbox")" "$rss" "$(pct 50)" "$(pct 99)"
done
[ "$(q "SELECT count(*) FROM journey.enrollments WHERE status = 'failed'")" = 0 ] || { echo "soak: enrollments failed"; exit 1; }
echo "soak: ok"
