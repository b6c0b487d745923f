#!/usr/bin/env bash
# Demo: builds and installs journey, starts a throwaway cluster with the worker preloaded,
# defines a welcome journey and lets the background worker run it, then stops the cluster.
#   bash scripts/demo.sh            # stops the cluster at the end
#   bash scripts/demo.sh --keep     # leaves it running (and says how to connect and stop it)
set -euo pipefail
cd "$(dirname "$0")/.."
KEEP=${JOURNEY_DEMO_KEEP:-0}
[ "${1:-}" = "--keep" ] && KEEP=1
echo "== building and installing journey (release)"
bash scripts/install.sh

source tests/cluster.sh
DIR=/tmp/journey-demo
PORT=5499
[ -d "$DIR/data" ] && cluster_stop "$DIR"
cluster_start "$DIR" "$PORT" "journey.naptime = 1000"
[ "$KEEP" = 1 ] || trap cluster_cleanup EXIT
echo "== cluster running: data $DIR/data, socket $DIR, port $PORT"

q "CREATE EXTENSION journey"
q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "INSERT INTO journey.templates (name, channel, subject, body)
   VALUES ('welcome_email', 'email', 'Welcome aboard, {{ contact.first_name }}', 'Hello {{ contact.first_name }}, glad you joined.')"
cat <<'JSON' >"$DIR/welcome.json"
{
  "triggers": [{"type": "group_joined", "group": "newsletter"}],
  "start": "sms",
  "nodes": {
    "sms":  {"type": "send_sms", "text": "Hi {{ contact.first_name }}, welcome to ACME!", "sender": "ACME",
             "ignore_quiet_hours": true, "next": {"to": "mail", "delay": "5 seconds"}},
    "mail": {"type": "send_email", "template": "welcome_email", "next": "won"},
    "won":  {"type": "goal", "name": "welcomed"}
  }
}
JSON
echo "== the welcome journey"
cat "$DIR/welcome.json"
psql -X -qAt -v ON_ERROR_STOP=1 -v def="$(cat "$DIR/welcome.json")" <<'SQL' >/dev/null
SELECT journey.create_flow('welcome', :'def');
SELECT journey.activate_flow('welcome');
SQL
echo "== validate_flow: $(q "SELECT count(*) FROM journey.validate_flow('welcome')") problems; status $(q "SELECT status FROM journey.flows")"

echo "== three contacts join the group (the worker does the rest; nobody calls run_due)"
for who in 'Dana|+15550001|dana@example.com' 'Ion|+40721000002|ion@example.ro' 'Noa|+972500000003|noa@example.co.il'; do
  IFS='|' read -r name phone email <<<"$who"
  psql -X -qAt -v ON_ERROR_STOP=1 -v name="$name" -v phone="$phone" -v email="$email" >/dev/null <<'SQL'
SELECT journey.add_to_group(journey.upsert_contact(jsonb_build_object('first_name', :'name', 'phone', :'phone', 'email', :'email')), 'newsletter');
SQL
done

echo "== outbox rows as they appear"
seen=0
for _ in $(seq 1 150); do
  rows=$(q "SELECT id || ' | ' || channel || ' | ' || recipient || ' | ' || coalesce(subject, '-') || ' | ' || body FROM journey.outbox WHERE id > $seen ORDER BY id")
  if [ -n "$rows" ]; then
    echo "$rows" | sed 's/^/  /'
    seen=$(q "SELECT max(id) FROM journey.outbox")
  fi
  [ "$(q "SELECT count(*) FROM journey.enrollments WHERE status = 'active'")" = 0 ] && break
  sleep 0.1
done

echo "== journey-relay sends them: SMS to a local gateway, e-mail to a local SMTP server (aiosmtpd)"
cargo build --release -q -p journey-relay
python3 tests/relay_servers.py smtp 5797 "$DIR/smtp" >/dev/null 2>&1 & servers=($!)
python3 tests/relay_servers.py gateway 5796 "$DIR/gateway" >/dev/null 2>&1 & servers+=($!)
sleep 1
q "CREATE ROLE demo_relay LOGIN" && q "SELECT journey.grant_role('demo_relay', 'relay')" >/dev/null
target/release/journey-relay --database-url "host=$DIR port=$PORT user=demo_relay dbname=postgres" \
  --smtp-url smtp://127.0.0.1:5797 --from "ACME <hello@acme.example>" \
  --sms-url http://127.0.0.1:5796/Messages.json --until-idle --progress-interval 1
echo "== what the servers received"
python3 -c 'import json,sys
for f in sys.argv[1:]:
    for l in open(f):
        r = json.loads(l)
        print("  SMTP  " + r["from"] + " -> " + r["to"] + ": " + r["subject"] if "subject" in r else "  SMS   " + str(r["from"]) + " -> " + r["to"] + ": " + r["body"])' "$DIR/smtp/log.jsonl" "$DIR/gateway/log.jsonl"
kill "${servers[@]}"
q "SELECT string_agg(channel || ' ' || status || ' ' || n, ', ') FROM (SELECT channel, status, count(*) n FROM journey.outbox GROUP BY 1, 2 ORDER BY 1, 2) s" | sed 's/^/== outbox: /'
echo "== journey.flow_stats('welcome')"
psql -X -P pager=off -c "SELECT * FROM journey.flow_stats('welcome')"
echo "== journey.goal_stats('welcome')"
psql -X -P pager=off -c "SELECT * FROM journey.goal_stats('welcome')"
psql -X -P pager=off -c "SELECT * FROM journey.flow_overview"
if [ "$KEEP" = 1 ]; then
  cat <<EOF2
== the cluster keeps running (--keep)
connect:  psql -h $DIR -p $PORT -U postgres postgres
stop:     runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D $DIR/data stop && rm -rf $DIR
EOF2
else
  echo "== stopping the demo cluster (run with --keep to leave it running)"
fi
