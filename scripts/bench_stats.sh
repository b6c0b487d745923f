#!/usr/bin/env bash
# Benchmark: journey.flow_stats on a flow with a long history (1M enrollments, 5M steps) against
# the same call on a flow with 1,000 enrollments (5,000 steps), in a throwaway cluster of its own.
# The stats read the counters (sql/counters.sql), so the two should take about the same time:
# targets <= 10 ms and <= 2x. Also times the same stats counted from steps and enrollments (the
# query flow_stats ran before the counters) on both flows, for reference.
#
#   bash scripts/bench_stats.sh            (the installed journey; scripts/install.sh first)
#   BENCH_STATS_ENROLLMENTS=100000 bash scripts/bench_stats.sh     (a smaller big flow)
#
# The history is written straight into the tables with generate_series (the engine would take
# minutes for 5M steps): enrollments through an INSERT, so their counters come from the
# enrollments' trigger; steps without the engine, so their counters (reached) are added from a
# count of the steps written. The last line printed is one markdown table row:
#   | flow_stats, 1M enrollments / 5M steps vs 1,000 | big ms | small ms | ratio | met |
set -euo pipefail
cd "$(dirname "$0")/.."
BIG=${BENCH_STATS_ENROLLMENTS:-1000000}
SMALL=1000
CALLS=${BENCH_STATS_CALLS:-15}

source tests/cluster.sh
DIR=/tmp/journey-bench-stats
trap cluster_cleanup EXIT
cluster_start "$DIR" 5483 "journey.worker_enabled = off" "shared_buffers = 256MB" "max_wal_size = 4GB"
export PGOPTIONS="-c client_min_messages=warning"
create_journey

echo "== flows big ($BIG enrollments, $((5 * BIG)) steps) and small ($SMALL, $((5 * SMALL)))" >&2
psql -X -qAt -v ON_ERROR_STOP=1 -v big="$BIG" -v small="$SMALL" >/dev/null <<'SQL'
-- five nodes: an SMS, a day, an e-mail, a goal, the exit; every enrollment went through all five
SELECT journey.create_flow(f, '{"triggers": [{"type": "manual"}], "start": "sms", "nodes": {
  "sms":  {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "next": "wait"},
  "wait": {"type": "wait", "delay": "1 day", "next": "mail"},
  "mail": {"type": "send_email", "subject": "News", "body": "Hello", "next": "won"},
  "won":  {"type": "goal", "name": "engaged", "next": "bye"},
  "bye":  {"type": "exit"}}}') FROM unnest(ARRAY['big', 'small']) f;
SELECT journey.activate_flow(f) FROM unnest(ARRAY['big', 'small']) f;
CREATE TEMP TABLE sizes AS SELECT f.id AS flow_id, s.n FROM journey.flows f
  JOIN (VALUES ('big', :big), ('small', :small)) s (name, n) ON s.name = f.name;
-- enrollments (their counters come from the INSERT's trigger)
INSERT INTO journey.enrollments (flow_id, version, contact_id, status, node, entered_at, updated_at)
SELECT z.flow_id, 1, i, 'exited', 'bye', now() - interval '30 days', now() - interval '29 days'
  FROM sizes z, generate_series(1, z.n) i;
-- five steps each, and their counters
INSERT INTO journey.steps (enrollment_id, contact_id, flow_id, node, at, outcome)
SELECT e.id, e.contact_id, e.flow_id, s.node, e.entered_at, s.outcome
  FROM journey.enrollments e
 CROSS JOIN (VALUES ('sms', 'sent'), ('wait', 'waited'), ('mail', 'sent'), ('won', 'goal'), ('bye', 'exited')) s (node, outcome);
INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
SELECT s.flow_id, s.node, 'reached', '', count(*) FROM journey.steps s GROUP BY s.flow_id, s.node
UNION ALL
SELECT s.flow_id, '', 'goal', 'engaged', count(*) FROM journey.steps s WHERE s.outcome = 'goal' GROUP BY s.flow_id;
DO $$ BEGIN WHILE journey.compact_counters(100000) > 0 LOOP END LOOP; END $$;
-- a few deltas not yet compacted, as between two passes of the worker
INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
SELECT z.flow_id, 'wait', 'waiting', '', 0 FROM sizes z, generate_series(1, 20);
VACUUM ANALYZE;
SQL

# median milliseconds of CALLS calls, each timed on the server
psql -X -qAt -v ON_ERROR_STOP=1 -v calls="$CALLS" >/tmp/journey-bench-stats.out <<'SQL'
-- the stats as flow_stats counted them before the counters (from steps and enrollments)
CREATE FUNCTION pg_temp.recounted(name text) RETURNS TABLE (node text, reached bigint, waiting bigint)
LANGUAGE sql STABLE AS $$
    WITH f AS (SELECT id FROM journey.flows WHERE flows.name = recounted.name),
    branches AS (SELECT e.id, e.parent_id FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NOT NULL),
    reach AS (SELECT s.node, count(DISTINCT coalesce(b.parent_id, s.enrollment_id)) AS n
                FROM journey.steps s CROSS JOIN f LEFT JOIN branches b ON b.id = s.enrollment_id
               WHERE s.flow_id = f.id GROUP BY s.node),
    wait AS (SELECT e.node, count(*) AS n FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.status = 'active' GROUP BY e.node)
    SELECT r.node, r.n, coalesce(w.n, 0) FROM reach r LEFT JOIN wait w ON w.node = r.node
$$;
CREATE FUNCTION pg_temp.median_ms(stmt text, calls integer) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
    t0 timestamptz;
    ms numeric[] := '{}';
BEGIN
    EXECUTE stmt;   -- warm-up
    FOR i IN 1 .. calls LOOP
        t0 := clock_timestamp();
        EXECUTE stmt;
        ms := ms || (extract(epoch FROM clock_timestamp() - t0) * 1000)::numeric;
    END LOOP;
    RETURN (SELECT round(percentile_disc(0.5) WITHIN GROUP (ORDER BY m), 2) FROM unnest(ms) m);
END $$;
-- the counts must be right before they are timed
SELECT 1 / ((SELECT reached FROM journey.flow_stats('big') WHERE node = 'sms')
             = (SELECT count(*) FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'big'))::integer
       AS counts_right;
SELECT pg_temp.median_ms('SELECT count(*) FROM journey.flow_stats(''big'')', :calls),
       pg_temp.median_ms('SELECT count(*) FROM journey.flow_stats(''small'')', :calls),
       pg_temp.median_ms('SELECT count(*) FROM pg_temp.recounted(''big'')', 3),
       pg_temp.median_ms('SELECT count(*) FROM pg_temp.recounted(''small'')', :calls);
SQL
IFS='|' read -r big small rbig rsmall < <(tail -1 /tmp/journey-bench-stats.out)
ratio=$(awk -v a="$big" -v b="$small" 'BEGIN {printf "%.2f", a / b}')
met=$(awk -v a="$big" -v r="$ratio" 'BEGIN {print (a <= 10 && r <= 2) ? "yes" : "NO"}')
size() { awk -v n="$1" 'BEGIN {print (n >= 1000000) ? (n / 1000000) "M" : (n / 1000) "k"}'; }
echo "== counted from steps (before the counters): big $rbig ms, small $rsmall ms" >&2
echo "| flow_stats, $(size "$BIG") enrollments / $(size $((5 * BIG))) steps vs 1,000 (median of $CALLS) | $big ms | $small ms | $ratio | <= 10 ms, <= 2x | $met |"
