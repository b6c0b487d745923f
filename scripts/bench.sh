#!/usr/bin/env bash
# Benchmark: the engine against hand-written set-based SQL on the same cluster, trigger
# overhead, wake-up latency, due lookup at scale, worker memory and the date pass. Prints one table of
# figures and ratios (measured in this run, never compared with fixed timings).
#
#   bash scripts/bench.sh [N]        N due steps for baseline and engine (default 100000)
#   BENCH_SMOKE=1 bash scripts/bench.sh 2000   small sizes everywhere (CI smoke run)
#
# Other sizes: BENCH_TRIGGER_ROWS (100000), BENCH_CONTACTS (1000000), BENCH_WAITING (100000),
# BENCH_LATENCY_SAMPLES (200). Results of full runs are kept in bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# --peers [N]: the engine against graphile-worker and the SQL baselines (not in CI)
if [ "${1:-}" = --peers ]; then shift; exec bash scripts/bench_peers.sh "$@"; fi

N=${1:-100000}
if [ -n "${BENCH_SMOKE:-}" ]; then
  : "${BENCH_TRIGGER_ROWS:=2000}" "${BENCH_CONTACTS:=20000}" "${BENCH_WAITING:=2000}" "${BENCH_LATENCY_SAMPLES:=20}"
fi
TRIGGER_ROWS=${BENCH_TRIGGER_ROWS:-100000}
CONTACTS=${BENCH_CONTACTS:-1000000}
WAITING=${BENCH_WAITING:-100000}
SAMPLES=${BENCH_LATENCY_SAMPLES:-200}
DUE=1000
REPS=5          # trigger overhead: median of 5
RUNS=5          # baseline and engine: median of 5 (this VM's speed drifts by +-20 %)
SCALE_REPS=7    # due lookup: median of 7 (after one warm-up run)
CONTACTS=$(( CONTACTS > N ? CONTACTS : N ))
CONTACTS=$(( CONTACTS > TRIGGER_ROWS ? CONTACTS : TRIGGER_ROWS ))
CONTACTS=$(( CONTACTS > WAITING + (SCALE_REPS + 1) * DUE * 2 ? CONTACTS : WAITING + (SCALE_REPS + 1) * DUE * 2 ))

echo "== building and installing journey (release)"
bash scripts/install.sh

source tests/cluster.sh
DIR=/tmp/journey-bench
trap cluster_cleanup EXIT
# cluster_start writes fsync = off and a short naptime for tests; the lines below override them.
SETTINGS=("fsync = on" "journey.naptime = 1000" "shared_buffers = 256MB" "max_wal_size = 4GB"
          "checkpoint_timeout = 30min")
cluster_start "$DIR" 5480 "${SETTINGS[@]}"
echo "== cluster $DIR: settings changed from the defaults: ${SETTINGS[*]}"
echo "== sizes: N=$N trigger_rows=$TRIGGER_ROWS contacts=$CONTACTS waiting=$WAITING due=$DUE latency_samples=$SAMPLES"

export PGOPTIONS="-c client_min_messages=warning"
psql_() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }
# ms SQL...: milliseconds the statements took on the server (psql \timing), summed
ms() {
  local out
  out=$(psql -X -q -v ON_ERROR_STOP=1 -c '\timing on' "${@/#/-c}" | grep '^Time:' | awk '{s += $2} END {printf "%.1f", s}')
  echo "$out"
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
worker() { q "ALTER SYSTEM SET journey.worker_enabled = $1" && q "SELECT pg_reload_conf()" >/dev/null; }
worker_pid() { q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'journey worker'"; }
rss_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

create_journey
sleep 1.5  # the worker notices the extension on its next poll
WPID=$(worker_pid)
RSS0=$(rss_kb "$WPID" VmRSS); ANON0=$(rss_kb "$WPID" RssAnon)
worker off

echo "== loading $CONTACTS contacts"
psql_ -v n="$CONTACTS" <<'SQL'
INSERT INTO journey.contacts (external_id, email, phone, first_name, attributes)
SELECT 'c' || i, 'c' || i || '@example.com', '+1555' || lpad(i::text, 7, '0'), 'Name' || i,
       jsonb_build_object('code', i)
FROM generate_series(1, :n) i;
INSERT INTO journey.groups (name) VALUES ('bench'), ('nobody'), ('trigger'), ('latency'), ('plain');
SQL
for f in bench trigger latency; do
  q "SELECT journey.create_flow('$f', jsonb_build_object(
       'triggers', jsonb_build_array(jsonb_build_object('type', 'group_joined', 'group', '$f')),
       'start', 'sms',
       'nodes', jsonb_build_object('sms', jsonb_build_object('type', 'send_sms', 'unsubscribe', false,
          'text', 'Hi {{ contact.first_name }}, your code is {{ contact.attributes.code }}'))))" >/dev/null
  q "SELECT journey.activate_flow('$f')" >/dev/null
done
q "CREATE SCHEMA bench"
q "VACUUM ANALYZE"

# ------------------------------------------------------------------ 3. trigger overhead
echo "== trigger overhead: INSERT ... SELECT of $TRIGGER_ROWS group_members rows, median of $REPS"
q "CREATE TABLE bench.group_members_plain (
     group_id bigint NOT NULL REFERENCES journey.groups (id) ON DELETE CASCADE,
     contact_id bigint NOT NULL REFERENCES journey.contacts (id) ON DELETE CASCADE,
     joined_at timestamptz NOT NULL DEFAULT now(),
     PRIMARY KEY (contact_id, group_id));
   CREATE INDEX ON bench.group_members_plain (group_id)"
insert_members() { # table group
  echo "INSERT INTO $1 (group_id, contact_id) SELECT (SELECT id FROM journey.groups WHERE name = '$2'), i FROM generate_series(1, $TRIGGER_ROWS) i"
}
declare -a T_PLAIN T_NOFLOW T_FLOW
# No checkpoint inside the measured loops: the first change to a page after a checkpoint writes
# a full-page image to WAL, which would charge whichever run comes first. One untimed warm-up
# insert takes those (the FK checks lock the contacts rows) for all three.
q "CHECKPOINT"
q "$(insert_members bench.group_members_plain plain)"
for _ in $(seq $REPS); do
  q "TRUNCATE bench.group_members_plain, journey.group_members, journey.enrollments, journey.steps CASCADE"
  q "VACUUM ANALYZE bench.group_members_plain"; q "VACUUM ANALYZE journey.group_members"
  T_PLAIN+=("$(ms "$(insert_members bench.group_members_plain plain)")")
  T_NOFLOW+=("$(ms "$(insert_members journey.group_members nobody)")")
  q "TRUNCATE journey.group_members"; q "VACUUM ANALYZE journey.group_members"
  T_FLOW+=("$(ms "$(insert_members journey.group_members trigger)")")
done
[ "$(q "SELECT count(*) FROM journey.enrollments")" = "$TRIGGER_ROWS" ] || { echo "trigger run did not enroll"; exit 1; }
TP=$(median "${T_PLAIN[@]}"); TB=$(median "${T_NOFLOW[@]}"); TC=$(median "${T_FLOW[@]}")
q "TRUNCATE bench.group_members_plain, journey.group_members, journey.enrollments, journey.steps CASCADE"

# ------------------------------------------------------------------ 3d. contact_updated
echo "== trigger overhead: UPDATE of $TRIGGER_ROWS contacts (a new last_name each), no flow vs one contact_updated flow, median of $REPS"
q "SELECT journey.create_flow('updated', jsonb_build_object(
     'triggers', jsonb_build_array(jsonb_build_object('type', 'contact_updated', 'fields', jsonb_build_array('last_name'))),
     'start', 'sms',
     'nodes', jsonb_build_object('sms', jsonb_build_object('type', 'send_sms', 'unsubscribe', false,
        'text', 'Hi {{ contact.first_name }}, now {{ event.changed.last_name.new }}'))))" >/dev/null
update_contacts() { # new last_name
  echo "UPDATE journey.contacts SET last_name = '$1' WHERE id <= $TRIGGER_ROWS"
}
declare -a T_UNOFLOW T_UFLOW
# As above: one untimed warm-up update after the checkpoint takes the full-page images; each
# timed update starts after a VACUUM, so both find the same free space for their new versions.
q "CHECKPOINT"
q "$(update_contacts warm-up)"
for r in $(seq $REPS); do
  q "TRUNCATE journey.enrollments, journey.steps"; q "VACUUM ANALYZE journey.contacts"
  T_UNOFLOW+=("$(ms "$(update_contacts "noflow-$r")")")
  q "SELECT journey.activate_flow('updated')" >/dev/null
  q "VACUUM ANALYZE journey.contacts"
  T_UFLOW+=("$(ms "$(update_contacts "flow-$r")")")
  q "SELECT journey.pause_flow('updated')" >/dev/null
done
[ "$(q "SELECT count(*) FROM journey.enrollments")" = "$TRIGGER_ROWS" ] || { echo "contact_updated run did not enroll"; exit 1; }
TU=$(median "${T_UNOFLOW[@]}"); TV=$(median "${T_UFLOW[@]}")
q "TRUNCATE journey.enrollments, journey.steps"
q "VACUUM ANALYZE journey.contacts"

# ------------------------------------------------------------------ 3f. an attached app table
echo "== trigger overhead: INSERT and UPDATE of $TRIGGER_ROWS rows of an app table: plain, attached with no flow, attached with one record flow, median of $REPS"
# (an app's table as apps write them: a key, a foreign key to its customers, an index on it)
q "CREATE TABLE bench.orders_plain (id bigint PRIMARY KEY, contact_id bigint NOT NULL REFERENCES journey.contacts (id),
                                    status text, amount int, created_at timestamptz NOT NULL DEFAULT now());
   CREATE INDEX ON bench.orders_plain (contact_id);
   CREATE TABLE bench.orders (LIKE bench.orders_plain INCLUDING ALL);
   ALTER TABLE bench.orders ADD FOREIGN KEY (contact_id) REFERENCES journey.contacts (id);
   SELECT journey.attach_table('bench.orders', 'contact_id')" >/dev/null
q "SELECT journey.create_flow('orders_in', jsonb_build_object(
     'triggers', jsonb_build_array(jsonb_build_object('type', 'record', 'record', 'orders', 'on', jsonb_build_array('insert'))),
     'start', 's', 'nodes', jsonb_build_object('s', jsonb_build_object('type', 'send_sms', 'unsubscribe', false,
        'text', 'Order {{ record.id }}: {{ record.amount }}'))));
   SELECT journey.create_flow('orders_up', jsonb_build_object(
     'triggers', jsonb_build_array(jsonb_build_object('type', 'record', 'record', 'orders', 'on', jsonb_build_array('update'),
                                                      'changed', jsonb_build_array('status'))),
     'start', 's', 'nodes', jsonb_build_object('s', jsonb_build_object('type', 'send_sms', 'unsubscribe', false,
        'text', 'Order {{ record.id }} is {{ record.status }}'))))" >/dev/null
insert_orders() { echo "INSERT INTO $1 (id, contact_id, status, amount) SELECT i, i, 'new', i % 100 FROM generate_series(1, $TRIGGER_ROWS) i"; }
update_orders() { echo "UPDATE $1 SET status = '$2'"; }
declare -a R_IP R_IN R_IF R_UP R_UN R_UF
q "CHECKPOINT"
for r in $(seq $REPS); do
  q "TRUNCATE bench.orders_plain, bench.orders, journey.enrollments, journey.steps"
  q "VACUUM ANALYZE bench.orders_plain"; q "VACUUM ANALYZE bench.orders"
  R_IP+=("$(ms "$(insert_orders bench.orders_plain)")")
  R_IN+=("$(ms "$(insert_orders bench.orders)")")
  R_UP+=("$(ms "$(update_orders bench.orders_plain "p$r")")")
  R_UN+=("$(ms "$(update_orders bench.orders "n$r")")")
  q "TRUNCATE bench.orders"; q "VACUUM ANALYZE bench.orders"
  q "SELECT journey.activate_flow('orders_in')" >/dev/null
  R_IF+=("$(ms "$(insert_orders bench.orders)")")
  q "SELECT journey.pause_flow('orders_in')" >/dev/null
  q "SELECT journey.activate_flow('orders_up')" >/dev/null
  q "VACUUM ANALYZE bench.orders"
  R_UF+=("$(ms "$(update_orders bench.orders "f$r")")")
  q "SELECT journey.pause_flow('orders_up')" >/dev/null
done
[ "$(q "SELECT count(*) FROM journey.enrollments")" = "$((2 * TRIGGER_ROWS))" ] || { echo "record flows did not enroll every row"; exit 1; }
RIP=$(median "${R_IP[@]}"); RIN=$(median "${R_IN[@]}"); RIF=$(median "${R_IF[@]}")
RUP=$(median "${R_UP[@]}"); RUN=$(median "${R_UN[@]}"); RUF=$(median "${R_UF[@]}")
# single-row writes, as an app makes them: one UPDATE statement per row (in a DO loop, so the
# client's round trips are not measured), each fires the record trigger once; other rows each
# repetition, so each enrolls
SINGLE=$(( TRIGGER_ROWS / 50 )); SINGLE=$(( SINGLE > 2000 ? 2000 : SINGLE ))
single_updates() { echo "DO \$\$ BEGIN FOR i IN $(( $3 * SINGLE + 1 ))..$(( ($3 + 1) * SINGLE )) LOOP UPDATE $1 SET status = '$2' WHERE id = i; END LOOP; END \$\$"; }
declare -a R_SP R_SF
q "TRUNCATE journey.enrollments, journey.steps"
q "SELECT journey.activate_flow('orders_up')" >/dev/null
for r in $(seq $REPS); do
  R_SP+=("$(ms "$(single_updates bench.orders_plain "s$r" "$r")")")
  R_SF+=("$(ms "$(single_updates bench.orders "s$r" "$r")")")
done
q "SELECT journey.pause_flow('orders_up')" >/dev/null
[ "$(q "SELECT count(*) FROM journey.enrollments")" = "$((REPS * SINGLE))" ] || { echo "single-row writes did not enroll every row"; exit 1; }
RSP=$(median "${R_SP[@]}"); RSF=$(median "${R_SF[@]}")
q "TRUNCATE bench.orders_plain, bench.orders, journey.enrollments, journey.steps"

# ------------------------------------------------------------------ 1. baseline
echo "== baseline and engine: $N due rows, median of $RUNS alternating runs"
psql_ -v n="$N" <<'SQL'
CREATE TABLE bench.queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contact_id bigint NOT NULL,
    status text NOT NULL DEFAULT 'active',
    node text NOT NULL DEFAULT 'sms',
    seq integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON bench.queue (due_at) WHERE status = 'active';
CREATE TABLE bench.outbox (LIKE journey.outbox INCLUDING ALL);
INSERT INTO bench.queue (contact_id) SELECT i FROM generate_series(1, :n) i;
CREATE PROCEDURE bench.baseline() LANGUAGE plpgsql AS $$
DECLARE moved integer;
BEGIN
    LOOP
        WITH due AS (
            UPDATE bench.queue q SET status = 'completed', seq = q.seq + 1, updated_at = now()
            WHERE q.id = ANY (ARRAY(SELECT id FROM bench.queue WHERE status = 'active' AND due_at <= now()
                                    ORDER BY due_at LIMIT 1000 FOR UPDATE SKIP LOCKED))
            RETURNING q.id, q.contact_id, q.node, q.seq)
        INSERT INTO bench.outbox (idempotency_key, channel, flow_id, enrollment_id, node, contact_id, recipient, body)
        SELECT d.id || ':' || d.node || ':' || d.seq, 'sms', 1, d.id, d.node, c.id, c.phone,
               'Hi ' || c.first_name || ', your code is ' || (c.attributes->>'code')
        FROM due d JOIN journey.contacts c ON c.id = d.contact_id
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS moved = ROW_COUNT;
        COMMIT;
        EXIT WHEN moved = 0;
    END LOOP;
END $$;
CREATE PROCEDURE bench.run_due_loop() LANGUAGE plpgsql AS $$
BEGIN
    WHILE journey.run_due(1000) > 0 LOOP
        COMMIT;
    END LOOP;
END $$;
VACUUM ANALYZE bench.queue;
SQL
# ------------------------------------------------------------------ 2. engine
enroll_bench() {
  worker off
  q "CHECKPOINT"
  q "TRUNCATE journey.group_members, journey.enrollments, journey.steps, journey.outbox RESTART IDENTITY CASCADE"
  q "INSERT INTO journey.group_members (group_id, contact_id)
     SELECT (SELECT id FROM journey.groups WHERE name = 'bench'), i FROM generate_series(1, $N) i"
  q "VACUUM ANALYZE journey.enrollments"; q "VACUUM ANALYZE journey.outbox"; q "VACUUM ANALYZE journey.steps"
}
# time_worker: ms from turning the worker on until the last outbox row is committed (the worker
# runs batches in order, so the highest visible id is the last batch's). The client polls every
# 10 ms between statements: a poll inside one statement (pg_sleep in a loop) would hold a
# snapshot, and that keeps the claim from marking finished enrollments' index entries dead;
# it waits with read's timeout, as forking sleep(1) 100 times a second takes CPU from the run.
time_worker() {
  local t0 t1
  coproc POLL { psql -X -qAt -v ON_ERROR_STOP=1; }
  echo "SELECT 1;" >&"${POLL[1]}"; read -r _ <&"${POLL[0]}"   # connected
  t0=$(date +%s%N)
  echo "ALTER SYSTEM SET journey.worker_enabled = on; SELECT pg_reload_conf();" >&"${POLL[1]}"
  read -r _ <&"${POLL[0]}"
  poll_until "SELECT coalesce(max(id), 0) >= $N FROM journey.outbox"
  # with several workers a lower id may commit after the highest: wait for the last one too
  if [ -n "${1:-}" ]; then
    poll_until "SELECT NOT EXISTS (SELECT 1 FROM journey.enrollments WHERE status = 'active')"
  fi
  t1=$(date +%s%N)
  eval "exec ${POLL[1]}>&-"; wait "$POLL_PID" 2>/dev/null || true
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}'
}
check_engine() {
  [ "$(q "SELECT count(*) FROM journey.outbox")" = "$N" ] || { echo "engine wrote the wrong number of outbox rows"; exit 1; }
  [ "$(q "SELECT count(*) FROM journey.enrollments WHERE status <> 'completed'")" = 0 ] || { echo "engine left enrollments"; exit 1; }
}
# Baseline and engine runs alternate (this VM's disk speed drifts), and each measured run starts
# after a checkpoint taken before its set-up: the set-up dirties the pages the run changes, so
# no run pays full-page images that another does not.
declare -a T_BASES T_WORKERS T_LOOPS
for r in $(seq $RUNS); do
  echo "== baseline (run $r of $RUNS)"
  q "CHECKPOINT"
  if [ "$r" -gt 1 ]; then
    q "TRUNCATE bench.queue, bench.outbox"
    q "INSERT INTO bench.queue (contact_id) SELECT i FROM generate_series(1, $N) i"
  fi
  q "VACUUM ANALYZE bench.queue"; q "VACUUM ANALYZE bench.outbox"
  T_BASES+=("$(ms "CALL bench.baseline()")")
  [ "$(q "SELECT count(*) FROM bench.outbox")" = "$N" ] || { echo "baseline moved the wrong number of rows"; exit 1; }
  echo "== engine (a): the worker alone, $N enrollments of a one-node send_sms flow (run $r of $RUNS)"
  enroll_bench
  T_WORKERS+=("$(time_worker)")
  check_engine
  echo "== engine (b): CALL run_due(1000) in a loop, a commit per batch (run $r of $RUNS)"
  enroll_bench
  T_LOOPS+=("$(ms "CALL bench.run_due_loop()")")
  check_engine
done
T_BASE=$(median "${T_BASES[@]}")
T_WORKER=$(median "${T_WORKERS[@]}"); T_LOOP=$(median "${T_LOOPS[@]}")
q "CHECKPOINT"

# ------------------------------------------------------------------ 4. latency
echo "== latency: commit of one group_members insert -> outbox row visible, $SAMPLES inserts, worker idle"
worker on
psql_ <<'SQL'
CREATE TABLE bench.latency (i integer, ms double precision);
CREATE PROCEDURE bench.latency(samples integer) LANGUAGE plpgsql AS $$
DECLARE
    g bigint := (SELECT id FROM journey.groups WHERE name = 'latency');
    f bigint := (SELECT id FROM journey.flows WHERE name = 'latency');
    e bigint;
    t0 timestamptz;
BEGIN
    FOR i IN 1..samples LOOP
        PERFORM pg_sleep(0.02 + random() * 0.03);   -- the worker is idle when the insert commits
        INSERT INTO journey.group_members (group_id, contact_id) VALUES (g, i);
        SELECT id INTO e FROM journey.enrollments WHERE flow_id = f AND contact_id = i;
        t0 := clock_timestamp();
        COMMIT;
        WHILE NOT EXISTS (SELECT 1 FROM journey.outbox WHERE enrollment_id = e) LOOP
            PERFORM pg_sleep(0.0002);
        END LOOP;
        INSERT INTO bench.latency VALUES (i, extract(epoch FROM clock_timestamp() - t0) * 1000);
        COMMIT;
    END LOOP;
END $$;
SQL
q "CALL bench.latency($SAMPLES)"
read -r P50 P99 < <(q "SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) || ' ' ||
                             round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) FROM bench.latency")

# ------------------------------------------------------------------ 5. scale
echo "== scale: run_due($DUE) with $WAITING enrollments waiting far ahead vs 0 waiting, $CONTACTS contacts"
worker off
q "TRUNCATE journey.group_members, journey.enrollments, journey.steps, journey.outbox CASCADE"
# Runs alternate between 0 and $WAITING waiting enrollments (the disk's speed drifts): each
# makes 1000 enrollments due now, VACUUM ANALYZE, then times run_due inside the server; all in
# one warm session, after one uncounted warm-up run.
q "CREATE FUNCTION bench.time_run_due(kind text, n integer) RETURNS text LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz := clock_timestamp();
   BEGIN PERFORM journey.run_due(n); RETURN kind || ' ' || round(extract(epoch FROM clock_timestamp() - t0) * 1000, 1); END \$\$"
due_now() { # first contact id
  echo "INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at)
        SELECT f.id, f.version, i, 'sms', now() - interval '1 second'
        FROM journey.flows f, generate_series($1, $1 + $DUE - 1) i WHERE f.name = 'bench';
        VACUUM ANALYZE journey.enrollments;"
}
sql="$(due_now $((WAITING + 1))) SELECT bench.time_run_due('warm-up', $DUE);"
for r in $(seq $SCALE_REPS); do
  sql+="
$(due_now $((WAITING + (2 * r - 1) * DUE + 1))) SELECT bench.time_run_due('zero', $DUE);
INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at)
  SELECT f.id, f.version, i, 'sms', now() + interval '365 days'
  FROM journey.flows f, generate_series(1, $WAITING) i WHERE f.name = 'bench';
$(due_now $((WAITING + 2 * r * DUE + 1))) SELECT bench.time_run_due('waiting', $DUE);
DELETE FROM journey.enrollments WHERE due_at > now() + interval '300 days';"
done
q "CHECKPOINT"
SCALE_OUT=$(psql_ <<<"$sql")
mapfile -t S_ZERO < <(awk '$1 == "zero" {print $2}' <<<"$SCALE_OUT")
mapfile -t S_WAIT < <(awk '$1 == "waiting" {print $2}' <<<"$SCALE_OUT")
[ "${#S_WAIT[@]}" = "$SCALE_REPS" ] || { echo "scale runs missing: $SCALE_OUT"; exit 1; }
SZ=$(median "${S_ZERO[@]}"); SW=$(median "${S_WAIT[@]}")
[ "$(q "SELECT count(*) FROM journey.enrollments WHERE status = 'active'")" = 0 ] || { echo "scale run left due rows"; exit 1; }

# ------------------------------------------------------------------ 7. date pass
echo "== date pass: a yearly birthday flow over $CONTACTS contacts with random birthdays"
worker off
q "TRUNCATE journey.enrollments, journey.steps, journey.outbox CASCADE"
q "UPDATE journey.contacts SET birthday = DATE '1950-01-01' + (random() * 20000)::integer"
q "SELECT journey.create_flow('birthday', jsonb_build_object(
     'triggers', jsonb_build_array(jsonb_build_object('type', 'date', 'field', 'birthday', 'at', '09:00')),
     'start', 'sms', 'nodes', jsonb_build_object('sms', jsonb_build_object('type', 'send_sms', 'text', 'Happy birthday'))))" >/dev/null
q "VACUUM ANALYZE journey.contacts"
T_ACTIVATE=$(ms "SELECT journey.activate_flow('birthday')")
q "VACUUM ANALYZE journey.date_schedule"
# the pass a day from now takes every occurrence of the next 24 hours (1/365 of the contacts);
# the passes after it find nothing due: an index probe
q "CREATE FUNCTION bench.time_date_pass(kind text) RETURNS text LANGUAGE plpgsql AS \$\$
   DECLARE t0 timestamptz := clock_timestamp(); n integer;
   BEGIN n := journey._date_pass(now() + interval '1 day', 100000);
         RETURN kind || ' ' || round(extract(epoch FROM clock_timestamp() - t0) * 1000, 2) || ' ' || n; END \$\$"
DATE_OUT=$(psql_ <<<"SELECT bench.time_date_pass('daily'); $(for _ in $(seq 20); do echo "SELECT bench.time_date_pass('idle');"; done)")
T_DAILY=$(awk '$1 == "daily" {print $2}' <<<"$DATE_OUT"); N_DAILY=$(awk '$1 == "daily" {print $3}' <<<"$DATE_OUT")
mapfile -t T_IDLE < <(awk '$1 == "idle" {print $2}' <<<"$DATE_OUT")
T_IDLE_MED=$(median "${T_IDLE[@]}")
[ "$(q "SELECT count(*) FROM journey.enrollments")" = "$N_DAILY" ] || { echo "the idle date passes enrolled: $DATE_OUT"; exit 1; }

# ------------------------------------------------------------------ 6. memory
[ "$(worker_pid)" = "$WPID" ] || { echo "the worker restarted during the run"; exit 1; }
RSS1=$(rss_kb "$WPID" VmRSS); ANON1=$(rss_kb "$WPID" RssAnon)

# ------------------------------------------------------------------ 8. two workers
# journey.workers is read at server start: restart with 2, one warm-up run, then the median of
# 3 (the first runs of a restarted server pay for its empty caches; 2a ran warm).
echo "== two workers: journey.workers = 2, the engine (a) run again"
worker off
q "ALTER SYSTEM SET journey.workers = 2"
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 restart >/dev/null
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 30 "two workers running"
declare -a T_TWOS
for r in 0 1 2 3; do
  enroll_bench
  t=$(time_worker all); check_engine
  [ "$r" = 0 ] || T_TWOS+=("$t")
done
worker off
T_TWO=$(median "${T_TWOS[@]}")

# ------------------------------------------------------------------ table
rate() { awk -v n="$1" -v ms="$2" 'BEGIN {printf "%.0f", n / (ms / 1000)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
ok() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {r = (op == "<=") ? v <= t : v >= t; print r ? "yes" : "NO"}'; }
R_BASE=$(rate "$N" "$T_BASE"); R_WORKER=$(rate "$N" "$T_WORKER"); R_LOOP=$(rate "$N" "$T_LOOP")
Q_WORKER=$(ratio "$R_WORKER" "$R_BASE"); Q_LOOP=$(ratio "$R_LOOP" "$R_BASE")
R_TWO=$(rate "$N" "$T_TWO"); Q_TWO=$(ratio "$R_TWO" "$R_WORKER")
Q_RIN=$(ratio "$RIN" "$RIP"); Q_RIF=$(ratio "$RIF" "$RIP"); Q_RUN=$(ratio "$RUN" "$RUP"); Q_RUF=$(ratio "$RUF" "$RUP")
Q_RSF=$(ratio "$RSF" "$RSP")
Q_B=$(ratio "$TB" "$TP"); Q_C=$(ratio "$TC" "$TP"); Q_S=$(ratio "$SW" "$SZ"); Q_U=$(ratio "$TV" "$TU")
GROWTH=$(( (ANON1 - ANON0) / 1024 ))
echo
echo "journey benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores  $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo)  PostgreSQL $(q "SHOW server_version")"
printf '%-58s %16s %10s %8s %4s\n' "measure" "figure" "ratio" "target" "met"
printf '%-58s %16s %10s %8s %4s\n' "1. baseline: hand-written SQL, 1000/batch, SKIP LOCKED" "$R_BASE rows/s" "1.00" "" ""
printf '%-58s %16s %10s %8s %4s\n' "2a. engine, worker alone" "$R_WORKER steps/s" "$Q_WORKER" ">= 0.50" "$(ok "$Q_WORKER" ">=" 0.5)"
printf '%-58s %16s %10s %8s %4s\n' "2b. engine, run_due(1000) loop" "$R_LOOP steps/s" "$Q_LOOP" ">= 0.50" "$(ok "$Q_LOOP" ">=" 0.5)"
printf '%-58s %16s %10s %8s %4s\n' "3a. INSERT..SELECT $TRIGGER_ROWS rows, plain table" "$TP ms" "1.00" "" ""
printf '%-58s %16s %10s %8s %4s\n' "3b. same into group_members, no flow on the group" "$TB ms" "$Q_B" "<= 1.30" "$(ok "$Q_B" "<=" 1.3)"
printf '%-58s %16s %10s %8s %4s\n' "3c. same, one active flow on the group (enrolls all)" "$TC ms" "$Q_C" "<= 3.00" "$(ok "$Q_C" "<=" 3)"
printf '%-58s %16s %10s %8s %4s\n' "3d. UPDATE $TRIGGER_ROWS contacts, no contact_updated flow" "$TU ms" "1.00" "" ""
printf '%-58s %16s %10s %8s %4s\n' "3e. same, one contact_updated flow (enrolls all)" "$TV ms" "$Q_U" "<= 3.00" "$(ok "$Q_U" "<=" 3)"
printf '%-58s %16s %10s %8s %4s\n' "3f. INSERT $TRIGGER_ROWS rows into a plain app table" "$RIP ms" "1.00" "" ""
printf '%-58s %16s %10s %8s %4s\n' "3g. same into an attached table, no flow" "$RIN ms" "$Q_RIN" "<= 1.30" "$(ok "$Q_RIN" "<=" 1.3)"
printf '%-58s %16s %10s %8s %4s\n' "3h. same, one record flow on insert (enrolls all)" "$RIF ms" "$Q_RIF" "<= 3.00" "$(ok "$Q_RIF" "<=" 3)"
printf '%-58s %16s %10s %8s %4s\n' "3i. UPDATE $TRIGGER_ROWS rows of a plain app table" "$RUP ms" "1.00" "" ""
printf '%-58s %16s %10s %8s %4s\n' "3j. same of an attached table, no flow" "$RUN ms" "$Q_RUN" "<= 1.30" "$(ok "$Q_RUN" "<=" 1.3)"
printf '%-58s %16s %10s %8s %4s\n' "3k. same, one record flow on changed status (enrolls all)" "$RUF ms" "$Q_RUF" "<= 3.00" "$(ok "$Q_RUF" "<=" 3)"
printf '%-58s %16s %10s %8s %4s\n' "3l. $SINGLE single-row UPDATEs of a plain app table" "$RSP ms" "1.00" "" ""
printf '%-58s %16s %10s %8s %4s\n' "3m. same, attached, one record flow (each enrolls)" "$RSF ms" "$Q_RSF" "" ""
printf '%-58s %16s %10s %8s %4s\n' "4. latency commit -> outbox row, p50" "$P50 ms" "" "" ""
printf '%-58s %16s %10s %8s %4s\n' "4. latency commit -> outbox row, p99 (naptime 1000 ms)" "$P99 ms" "" "<= 50 ms" "$(ok "$P99" "<=" 50)"
printf '%-58s %16s %10s %8s %4s\n' "5. run_due($DUE), 0 waiting" "$SZ ms" "1.00" "" ""
printf '%-58s %16s %10s %8s %4s\n' "5. run_due($DUE), $WAITING waiting far ahead" "$SW ms" "$Q_S" "<= 1.50" "$(ok "$Q_S" "<=" 1.5)"
printf '%-58s %16s %10s %8s %4s\n' "6. worker private memory (RssAnon) start -> end" "$((ANON0 / 1024)) -> $((ANON1 / 1024)) MB" "+$GROWTH MB" "< 10 MB" "$(ok "$GROWTH" "<=" 9.999)"
printf '%-58s %16s %10s %8s %4s\n' "6. worker VmRSS incl. shared buffers touched" "$((RSS0 / 1024)) -> $((RSS1 / 1024)) MB" "" "" ""
printf '%-58s %16s %10s %8s %4s\n' "7. activate a birthday flow: schedule $CONTACTS contacts" "$T_ACTIVATE ms" "" "" ""
printf '%-58s %16s %10s %8s %4s\n' "7. daily date pass, $N_DAILY occurrences due" "$T_DAILY ms" "" "<= 1000" "$(ok "$T_DAILY" "<=" 1000)"
printf '%-58s %16s %10s %8s %4s\n' "7. date pass with nothing due, median of 20" "$T_IDLE_MED ms" "" "<= 5" "$(ok "$T_IDLE_MED" "<=" 5)"
printf '%-58s %16s %10s %8s %4s\n' "8. engine, two workers (journey.workers = 2) vs 2a" "$R_TWO steps/s" "$Q_TWO" "" ""
echo "runs (ms, in order): baseline ${T_BASES[*]} | worker ${T_WORKERS[*]} | loop ${T_LOOPS[*]} | two workers ${T_TWOS[*]} | update no flow ${T_UNOFLOW[*]} | update flow ${T_UFLOW[*]}"

# ------------------------------------------------------------------ rows of their own scripts
# (full runs only; each starts a cluster of its own, so this one stops first)
if [ -z "${BENCH_SMOKE:-}" ]; then
  cluster_cleanup; trap - EXIT
  echo "== rows measured by scripts/bench_stats.sh, bench_cdc.sh and bench_relay.sh"
  bash scripts/bench_stats.sh 2>&1 | tail -1
  bash scripts/bench_cdc.sh 2>&1 | tail -1
  bash scripts/bench_relay.sh 2>&1 | tail -1
fi
