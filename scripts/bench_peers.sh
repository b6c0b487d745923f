#!/usr/bin/env bash
# Peers in the benchmark (not in CI): the engine's one-step job against graphile-worker 0.17.3
# and two hand-written SQL baselines, on one cluster, in one run, runs alternating:
#   - plain move: claim 1000 due queue rows with SKIP LOCKED, insert one row each into a plain
#     outbox (the rendered text, the contact's phone), mark them done, commit
#   - same writes: bench.sh's baseline (an outbox with journey.outbox's indexes, the contacts
#     join, ON CONFLICT)
#   - graphile-worker tuned and classic (scripts/bench_peers_graphile.js): each job reads its
#     contact, renders the same two-variable text and inserts the outbox row (a copy of
#     journey.outbox with its indexes)
#   - journey: the worker alone, N enrollments of a one-node send_sms flow (bench.sh's 2a); then,
#     after a restart with journey.workers = 2, the same with two workers (graphile-worker's
#     tuned mode uses both cores too)
#
#   bash scripts/bench_peers.sh [N]     (or bash scripts/bench.sh --peers [N]); N default 100000
#
# graphile-worker is installed with npm into PEERS_DIR (default /tmp/journey-peers), outside the
# repository. PEERS_RUNS (3) runs of each, median; PEERS_CONCURRENCY (24) jobs at once and
# PEERS_LOCAL_QUEUE (500) for the tuned mode. Needs the CPU alone: run it under the build lock.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
RUNS=${PEERS_RUNS:-3}
PEERS_DIR=${PEERS_DIR:-/tmp/journey-peers}
GW_VERSION=0.17.3

echo "== graphile-worker $GW_VERSION in $PEERS_DIR (npm)"
have=$(node -p "require('$PEERS_DIR/node_modules/graphile-worker/package.json').version" 2>/dev/null || true)
if [ "$have" != "$GW_VERSION" ]; then
  mkdir -p "$PEERS_DIR"
  (cd "$PEERS_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } &&
   npm install --no-audit --no-fund --silent "graphile-worker@$GW_VERSION")
fi
export NODE_PATH=$PEERS_DIR/node_modules
gw() { node scripts/bench_peers_graphile.js "$@"; }

echo "== building and installing journey (release)"
bash scripts/install.sh

source tests/cluster.sh
DIR=/tmp/journey-peers-bench
trap cluster_cleanup EXIT
SETTINGS=("fsync = on" "journey.naptime = 1000" "shared_buffers = 256MB" "max_wal_size = 4GB"
          "checkpoint_timeout = 30min")
cluster_start "$DIR" 5481 "${SETTINGS[@]}"
export DATABASE_URL="postgres://postgres@/postgres?host=$DIR&port=5481"
echo "== cluster $DIR: ${SETTINGS[*]}; N=$N, $RUNS runs each"
export PGOPTIONS="-c client_min_messages=warning"
psql_() { psql -X -qAt -v ON_ERROR_STOP=1 "$@"; }
ms() { psql -X -q -v ON_ERROR_STOP=1 -c '\timing on' -c "$1" | awk '/^Time:/ {s += $2} END {printf "%.1f", s}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
worker() { q "ALTER SYSTEM SET journey.worker_enabled = $1" && q "SELECT pg_reload_conf()" >/dev/null; }

create_journey
worker off
psql_ -v n="$N" >/dev/null <<'SQL'
INSERT INTO journey.contacts (external_id, email, phone, first_name, attributes)
SELECT 'c' || i, 'c' || i || '@example.com', '+1555' || lpad(i::text, 7, '0'), 'Name' || i,
       jsonb_build_object('code', i)
FROM generate_series(1, :n) i;
INSERT INTO journey.groups (name) VALUES ('bench');
SELECT journey.create_flow('bench', jsonb_build_object(
  'triggers', jsonb_build_array(jsonb_build_object('type', 'group_joined', 'group', 'bench')),
  'start', 'sms',
  'nodes', jsonb_build_object('sms', jsonb_build_object('type', 'send_sms', 'unsubscribe', false,
     'text', 'Hi {{ contact.first_name }}, your code is {{ contact.attributes.code }}'))));
SELECT journey.activate_flow('bench');
CREATE SCHEMA bench;
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
CREATE TABLE bench.peer_outbox (LIKE journey.outbox INCLUDING ALL);
CREATE TABLE bench.plain_outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    queue_id bigint NOT NULL,
    recipient text NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
-- the same writes as the engine's (bench.sh's baseline)
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
-- the plain move a user writes first
CREATE PROCEDURE bench.plain_move() LANGUAGE plpgsql AS $$
DECLARE moved integer;
BEGIN
    LOOP
        WITH due AS (
            UPDATE bench.queue q SET status = 'completed'
            WHERE q.id = ANY (ARRAY(SELECT id FROM bench.queue WHERE status = 'active' AND due_at <= now()
                                    LIMIT 1000 FOR UPDATE SKIP LOCKED))
            RETURNING q.id, q.contact_id)
        INSERT INTO bench.plain_outbox (queue_id, recipient, body)
        SELECT d.id, c.phone, 'Hi ' || c.first_name || ', your code is ' || (c.attributes->>'code')
        FROM due d JOIN journey.contacts c ON c.id = d.contact_id;
        GET DIAGNOSTICS moved = ROW_COUNT;
        COMMIT;
        EXIT WHEN moved = 0;
    END LOOP;
END $$;
SQL
gw migrate
q "VACUUM ANALYZE"

# Each measured run starts after a checkpoint taken after its set-up (bench.sh's rule: no run
# pays full-page images another does not).
queue_fill() {
  q "TRUNCATE bench.queue, bench.outbox, bench.plain_outbox"
  q "INSERT INTO bench.queue (contact_id) SELECT i FROM generate_series(1, $N) i"
  q "VACUUM ANALYZE bench.queue"; q "VACUUM ANALYZE bench.outbox"; q "VACUUM ANALYZE bench.plain_outbox"
  q "CHECKPOINT"
}
count_is() { # table what
  [ "$(q "SELECT count(*) FROM $1")" = "$N" ] || { echo "$2 wrote the wrong number of rows"; exit 1; }
}
run_plain() { queue_fill; ms "CALL bench.plain_move()"; count_is bench.plain_outbox "the plain move" >&2; }
run_same() { queue_fill; ms "CALL bench.baseline()"; count_is bench.outbox "the same-writes baseline" >&2; }
run_graphile() { # mode
  q "TRUNCATE bench.peer_outbox, graphile_worker._private_jobs"
  q "SELECT count(*) FROM graphile_worker.add_jobs((SELECT array_agg(ROW('send', json_build_object('id', i),
       NULL, NULL, NULL, NULL, NULL, NULL)::graphile_worker.job_spec) FROM generate_series(1, $N) i))" >/dev/null
  q "VACUUM ANALYZE graphile_worker._private_jobs"; q "VACUUM ANALYZE bench.peer_outbox"
  q "CHECKPOINT"
  gw "$1" "$N"
  count_is bench.peer_outbox "graphile-worker $1" >&2
  [ "$(q "SELECT count(*) FROM bench.peer_outbox WHERE body = 'Hi Name7, your code is 7'")" = 1 ] || { echo "graphile-worker rendered differently" >&2; exit 1; }
}
# the engine: bench.sh's 2a (ms from turning the worker on until the last outbox row commits;
# the client polls every 10 ms between statements, waiting with read's timeout)
run_engine() {
  local t0 t1
  worker off
  q "TRUNCATE journey.group_members, journey.enrollments, journey.steps, journey.outbox RESTART IDENTITY CASCADE"
  q "INSERT INTO journey.group_members (group_id, contact_id)
     SELECT (SELECT id FROM journey.groups WHERE name = 'bench'), i FROM generate_series(1, $N) i"
  q "VACUUM ANALYZE journey.enrollments"; q "VACUUM ANALYZE journey.outbox"; q "VACUUM ANALYZE journey.steps"
  q "CHECKPOINT"
  coproc POLL { psql -X -qAt -v ON_ERROR_STOP=1; }
  echo "SELECT 1;" >&"${POLL[1]}"; read -r _ <&"${POLL[0]}"
  t0=$(date +%s%N)
  echo "ALTER SYSTEM SET journey.worker_enabled = on; SELECT pg_reload_conf();" >&"${POLL[1]}"
  read -r _ <&"${POLL[0]}"
  poll_until "SELECT coalesce(max(id), 0) >= $N FROM journey.outbox"
  # with two workers a lower id may commit after the highest: wait for the last one too
  poll_until "SELECT NOT EXISTS (SELECT 1 FROM journey.enrollments WHERE status = 'active')"
  t1=$(date +%s%N)
  eval "exec ${POLL[1]}>&-"; wait "$POLL_PID" 2>/dev/null || true
  worker off
  count_is journey.outbox "the engine" >&2
  [ "$(q "SELECT count(*) FROM journey.enrollments WHERE status <> 'completed'")" = 0 ] || { echo "the engine left enrollments" >&2; exit 1; }
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", (b - a) / 1e6}'
}

declare -a T_PLAIN T_SAME T_TUNED T_CLASSIC T_ENGINE
for r in $(seq "$RUNS"); do
  echo "== run $r of $RUNS: plain move, same writes, graphile-worker tuned and classic, journey"
  T_PLAIN+=("$(run_plain)")
  T_SAME+=("$(run_same)")
  T_TUNED+=("$(run_graphile tuned)")
  T_CLASSIC+=("$(run_graphile classic)")
  T_ENGINE+=("$(run_engine)")
  echo "   ms: ${T_PLAIN[-1]} ${T_SAME[-1]} ${T_TUNED[-1]} ${T_CLASSIC[-1]} ${T_ENGINE[-1]}"
done

# journey with two workers (journey.workers = 2, read at server start): graphile-worker's tuned
# mode runs 24 jobs at once over both cores; one journey worker uses one. A warm-up run after the
# restart, then RUNS runs.
echo "== journey with journey.workers = 2 (restart, a warm-up run, then $RUNS runs)"
q "ALTER SYSTEM SET journey.workers = 2"
as_pg "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 restart >/dev/null
wait_for "SELECT count(*) = 2 FROM pg_stat_activity WHERE backend_type = 'journey worker'" 30 "two workers running"
declare -a T_TWO
run_engine >/dev/null
for r in $(seq "$RUNS"); do T_TWO+=("$(run_engine)"); echo "   ms: ${T_TWO[-1]}"; done

rate() { awk -v n="$N" -v ms="$1" 'BEGIN {printf "%.0f", n / (ms / 1000)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
R_PLAIN=$(rate "$(median "${T_PLAIN[@]}")"); R_SAME=$(rate "$(median "${T_SAME[@]}")")
R_TUNED=$(rate "$(median "${T_TUNED[@]}")"); R_CLASSIC=$(rate "$(median "${T_CLASSIC[@]}")")
R_ENGINE=$(rate "$(median "${T_ENGINE[@]}")"); R_TWO=$(rate "$(median "${T_TWO[@]}")")
X_TUNED=$(ratio "$R_ENGINE" "$R_TUNED"); X_CLASSIC=$(ratio "$R_ENGINE" "$R_CLASSIC")
X_TWO=$(ratio "$R_TWO" "$R_TUNED")
met=$(awk -v x="$X_TUNED" 'BEGIN {print (x >= 8) ? "yes" : "NO"}')
met_two=$(awk -v x="$X_TWO" 'BEGIN {print (x >= 8) ? "yes" : "NO"}')
echo
echo "journey peers  $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) cores  PostgreSQL $(q "SHOW server_version")  node $(node --version)  graphile-worker $GW_VERSION  N=$N  median of $RUNS"
printf '%-62s %16s %12s %12s\n' "measure" "figure" "÷ plain" "÷ same"
row() { printf '%-62s %16s %12s %12s\n' "$1" "$2 $3" "$(ratio "$2" "$R_PLAIN")" "$(ratio "$2" "$R_SAME")"; }
row "SQL plain move (1000/batch, SKIP LOCKED, plain outbox)" "$R_PLAIN" rows/s
row "SQL same writes (bench.sh 1: outbox indexes, ON CONFLICT)" "$R_SAME" rows/s
row "graphile-worker tuned (local queue, batched completion)" "$R_TUNED" jobs/s
row "graphile-worker classic (a query per fetch and completion)" "$R_CLASSIC" jobs/s
row "journey engine, worker alone (bench.sh 2a)" "$R_ENGINE" steps/s
row "journey engine, two workers (journey.workers = 2)" "$R_TWO" steps/s
printf '%-62s %16s %12s %12s\n' "journey ÷ graphile-worker tuned (target >= 8)" "${X_TUNED}x" "$met" ""
printf '%-62s %16s %12s %12s\n' "journey, two workers ÷ graphile-worker tuned (both cores)" "${X_TWO}x" "$met_two" ""
printf '%-62s %16s\n' "journey ÷ graphile-worker classic" "${X_CLASSIC}x"
echo "peers row: graphile-worker tuned $R_TUNED jobs/s, classic $R_CLASSIC jobs/s | journey $R_ENGINE steps/s, two workers $R_TWO | journey ÷ graphile-worker tuned ${X_TUNED}x (>= 8: $met), two workers ${X_TWO}x (>= 8: $met_two), classic ${X_CLASSIC}x | journey ÷ SQL plain move $(ratio "$R_ENGINE" "$R_PLAIN"), ÷ same writes $(ratio "$R_ENGINE" "$R_SAME")"
echo "runs (ms, in order): plain ${T_PLAIN[*]} | same ${T_SAME[*]} | tuned ${T_TUNED[*]} | classic ${T_CLASSIC[*]} | journey ${T_ENGINE[*]} | two workers ${T_TWO[*]}"
