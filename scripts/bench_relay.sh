#!/usr/bin/env bash
# Benchmark row: journey-relay's throughput to a local HTTP gateway that answers at once
# (tests/relay_servers.py gateway: 200 and a sid), against a plain SQL loop that claims and
# marks the same number of rows without sending (journey.claim + journey.mark_sent, a commit
# per batch): the relay's overhead over the protocol. Prints one markdown table row
# (measure | figure | ratio | target | met); progress goes to stderr.
#   bash scripts/bench_relay.sh [N]     N SMS rows each way (default 5000); run after
#                                       scripts/install.sh (bench.sh does)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
source tests/cluster.sh
DIR=/tmp/journey-bench-relay
PORT=5498 GW=5796
cluster_start "$DIR" "$PORT" "journey.worker_enabled = off" >&2
python3 tests/relay_servers.py gateway $GW "$DIR/gw" >/dev/null 2>&1 &
GW_PID=$!
trap 'kill $GW_PID 2>/dev/null || true; cluster_cleanup' EXIT
cargo build --release -q -p journey-relay >&2
for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$GW) 2>/dev/null && break; sleep 0.1; done
export PGOPTIONS="-c client_min_messages=warning"
q "CREATE EXTENSION journey"
q "CREATE ROLE bench_relay LOGIN"
q "SELECT journey.grant_role('bench_relay', 'relay')" >/dev/null
cid=$(q "SELECT journey.upsert_contact('{\"phone\": \"+15550000000\"}')")
rows() { q "INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, sender, body)
            SELECT '$1:' || g, 'sms', $cid, '+1555' || lpad(g::text, 7, '0'), 'ACME', 'Hello number ' || g
              FROM generate_series(1, $N) g"; q "VACUUM ANALYZE journey.outbox"; }
now() { date +%s.%N; }

rows sql
echo "bench_relay: SQL loop claiming and marking $N rows" >&2
t0=$(now)
PGUSER=bench_relay psql -X -q -v ON_ERROR_STOP=1 -c "
DO \$\$
DECLARE
    r record;
    n integer;
BEGIN
    LOOP
        n := 0;
        FOR r IN SELECT id, lease_token FROM journey.claim(ARRAY['sms'], 1000, '5 minutes') LOOP
            PERFORM journey.mark_sent(r.id, 'SM' || r.id, r.lease_token);
            n := n + 1;
        END LOOP;
        COMMIT;
        EXIT WHEN n = 0;
    END LOOP;
END
\$\$"
t1=$(now)
[ "$(q "SELECT count(*) FROM journey.outbox WHERE status = 'sent'")" = "$N" ] || { echo "the SQL loop did not mark every row" >&2; exit 1; }

rows relay
echo "bench_relay: journey-relay sending $N SMS" >&2
t2=$(now)
target/release/journey-relay --database-url "host=$DIR port=$PORT user=bench_relay dbname=postgres" \
  --sms-url "http://127.0.0.1:$GW/Messages.json" --channels sms --sms-concurrency 16 --batch-size 1000 \
  --timeout 2 --poll-interval 0.05 --progress-interval 0 --until-idle 2>"$DIR/relay.log"
t3=$(now)
[ "$(q "SELECT count(*) FROM journey.outbox WHERE status = 'sent'")" = "$((2 * N))" ] || { echo "the relay did not send every row" >&2; cat "$DIR/relay.log" >&2; exit 1; }
[ "$(grep -c '"status": 200' "$DIR/gw/log.jsonl")" = "$N" ] || { echo "the gateway did not get every message once" >&2; exit 1; }

SQL_RATE=$(awk -v n="$N" -v a="$t0" -v b="$t1" 'BEGIN {printf "%.0f", n / (b - a)}')
RELAY_RATE=$(awk -v n="$N" -v a="$t2" -v b="$t3" 'BEGIN {printf "%.0f", n / (b - a)}')
RATIO=$(awk -v a="$RELAY_RATE" -v b="$SQL_RATE" 'BEGIN {printf "%.2f", a / b}')
echo "| 9. journey-relay, $N SMS to a local HTTP gateway (16 senders) vs a SQL loop claiming and marking them ($SQL_RATE rows/s) | $RELAY_RATE msg/s | $RATIO | | |"
