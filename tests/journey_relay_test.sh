#!/usr/bin/env bash
# journey-relay (relay/) against real servers this test starts (tests/relay_servers.py): an
# SMTP server (aiosmtpd), an SMS gateway in the Twilio Messages API form and a webhook receiver
# checking Standard Webhooks signatures. The relay logs in as a role with grant_role 'relay'.
#   1. sender verification: add_sender's code arrives by SMTP (the relay's --from) and verifies
#   2. the welcome journey: SMS (sender, basic auth, idempotency key), the gateway's status
#      callbacks move check_sms down yes, e-mails with From name/address, subject, body and
#      X-Idempotency-Key, SendGrid events move check_email down yes (repeats change nothing);
#      admin e-mail, signed webhook, task; /metrics, /healthz; inbound STOP opts out
#   3. gateway answers: 429 (Retry-After) and 500 retried and then sent once, 400 failed for
#      good; SMTP 550 failed for good, 451 retried; exact counts of what the servers received
#   4. SIGKILL mid-batch: after the lease a second relay sends the rest; every message arrived,
#      and a message received twice carries the same idempotency key
#   5. SIGTERM mid-batch: the relay finishes what it holds and exits 0 with nothing leased
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
DIR=/tmp/journey-relay2-test
out=/tmp/journey-relay2-out; rm -rf "$out"
PIDS=()
# (every process started here inherits the build lock's descriptor: none may outlive the test)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  sleep 0.5
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  cluster_cleanup
}
trap cleanup EXIT
cluster_start "$DIR" 5492
mkdir -p "$out"
export PGOPTIONS="-c client_min_messages=warning"
RELAY=target/release/journey-relay
cargo build --release -q -p journey-relay
python3 -c "import aiosmtpd" 2>/dev/null || pip install -q aiosmtpd

SMTP=5725 GW=5726 HOOK=5727 LISTEN=5728 GW2=5729
SECRET="whsec_$(printf 'relay-test-secret-0123456789abcd' | base64)"
start_server() { python3 tests/relay_servers.py "$@" >"$out/$1-$2.log" 2>&1 & PIDS+=($!); }
start_server smtp $SMTP "$out/smtp"
start_server gateway $GW "$out/gw"
start_server webhook $HOOK "$out/hook" "$SECRET"
start_server gateway $GW2 "$out/gw2" 0.25
for port in $SMTP $GW $HOOK $GW2; do
  for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

create_journey
q "CREATE ROLE relay LOGIN"
q "SELECT journey.grant_role('relay', 'relay')"
q "UPDATE journey.settings SET admin_email = 'ops@acme.test'"
DB="host=$DIR port=5492 user=relay dbname=postgres"
BASE=(--database-url "$DB" --smtp-url "smtp://127.0.0.1:$SMTP" --from "ACME Relay <relay@acme.test>"
      --sms-from "+15559999999" --webhook-secret "$SECRET" --poll-interval 0.1 --progress-interval 1)
ARGS=("${BASE[@]}" --sms-url "http://AC123:tok%21@127.0.0.1:$GW/2010-04-01/Accounts/AC123/Messages.json")
relay() { "$RELAY" "${ARGS[@]}" "$@"; }
# a relay in the background is started directly (not through a function), so $! is its pid
SLOW=("${BASE[@]}" --sms-url "http://127.0.0.1:$GW2/Messages.json" --sms-concurrency 2 --channels sms)
# jsonl FILE FILTER: python over each record r (a list of them: rs)
jsonl() { python3 -c "import json,sys; rs=[json.loads(l) for l in open(sys.argv[1])]; print($2)" "$1"; }

echo "journey_relay: refusals"
q "CREATE ROLE stranger LOGIN"
rc=0; "$RELAY" --database-url "host=$DIR port=5492 user=stranger dbname=postgres" --until-idle 2>"$out/stranger.log" || rc=$?
assert_eq 1 "$rc" "a role without grant_role 'relay': exit 1 at the first claim"
grep -q "permission denied.*grant_role(role, 'relay')" "$out/stranger.log" && echo "  PASS saying why" || { echo "  FAIL"; cat "$out/stranger.log"; exit 1; }
rc=0; relay --lease 2 --timeout 1 --until-idle 2>"$out/config.log" || rc=$?
assert_eq 2 "$rc" "a lease shorter than two timeouts: exit 2"
grep -q "lease (2 s) must be at least twice timeout" "$out/config.log" && echo "  PASS saying why" || { echo "  FAIL"; cat "$out/config.log"; exit 1; }

echo "journey_relay: sender verification by SMTP"
q "SELECT journey.add_sender('hello@acme.test', 'ACME Team')" >/dev/null
relay --until-idle 2>"$out/relay1.log"
assert_eq 1 "$(ls "$out"/smtp/*.eml | wc -l)" "one e-mail: the verification code"
code=$(grep -oE '\b[0-9]{6}\b' "$out/smtp/1.eml" | head -1)
assert_eq '"ACME Relay" <relay@acme.test>' "$(jsonl "$out/smtp/log.jsonl" 'rs[0]["from"]')" "from the relay's --from (the row has no sender)"
assert_eq "['hello@acme.test']" "$(jsonl "$out/smtp/log.jsonl" 'rs[0]["rcpt"]')" "to the address to verify"
assert_eq t "$(q "SELECT journey.verify_sender('hello@acme.test', '$code')")" "the code it carried verifies the sender"

echo "journey_relay: the welcome journey, with status callbacks"
q "INSERT INTO journey.groups (name) VALUES ('newsletter')"
q "INSERT INTO journey.templates (name, channel, subject, body)
   VALUES ('welcome_email', 'email', 'Welcome aboard, {{ contact.first_name }}', 'Hello {{ contact.first_name }}, glad you joined.')"
psql -X -qAt -v ON_ERROR_STOP=1 >/dev/null <<SQL
SELECT journey.create_flow('welcome', '{
  "triggers": [{"type": "group_joined", "group": "newsletter"}], "start": "sms",
  "nodes": {
    "sms":   {"type": "send_sms", "text": "Hi {{ contact.first_name }}, welcome to ACME!", "sender": "ACME", "ignore_quiet_hours": true, "next": "c_sms"},
    "c_sms": {"type": "check_sms", "message": "sms", "wait": "1 hour", "yes": "mail", "no": "lost"},
    "mail":  {"type": "send_email", "template": "welcome_email", "from": "hello@acme.test", "from_name": "ACME Team", "next": "c_mail"},
    "c_mail": {"type": "check_email", "message": "mail", "status": "delivered", "wait": "1 hour", "yes": "won", "no": "lost"},
    "won":   {"type": "goal", "name": "welcomed"},
    "lost":  {"type": "exit"}}}');
SELECT journey.activate_flow('welcome');
SELECT journey.create_flow('ops', '{
  "triggers": [{"type": "group_joined", "group": "newsletter"}], "start": "admin",
  "nodes": {
    "admin": {"type": "notify_admin", "subject": "New member {{ contact.first_name }}", "text": "{{ contact.email }} joined", "next": "hook"},
    "hook":  {"type": "webhook", "url": "http://127.0.0.1:$HOOK/hooks/joined", "body": "{\"email\": \"{{ contact.email }}\"}", "next": "task"},
    "task":  {"type": "create_task", "title": "Call {{ contact.first_name }}"}}}');
SELECT journey.activate_flow('ops');
SQL
"$RELAY" "${ARGS[@]}" --listen "127.0.0.1:$LISTEN" --callback-url "http://127.0.0.1:$LISTEN" 2>"$out/relay2.log" &
relay_pid=$!
PIDS+=($relay_pid)
for who in 'Dana|+15550000001|dana@example.com' 'Ion|+40721000002|ion@example.ro' 'Noa|+972500000003|noa@example.co.il'; do
  IFS='|' read -r name phone email <<<"$who"
  q "SELECT journey.add_to_group(journey.upsert_contact(jsonb_build_object('first_name', '$name', 'phone', '$phone', 'email', '$email')), 'newsletter')" >/dev/null
done
wait_for "SELECT count(*) = 3 FROM journey.outbox WHERE channel = 'email' AND status = 'sent' AND node = 'mail'" 30 \
  "the gateway's callbacks (sent, delivered) moved check_sms down yes: three welcome e-mails sent"
assert_eq 3 "$(q "SELECT count(*) FROM journey.outbox WHERE channel = 'sms' AND status = 'delivered'")" "the SMS are delivered (reported by the gateway's callbacks)"
# SendGrid events for the e-mails: delivered (then repeated, then an older processed)
events=$(q "SELECT json_agg(json_build_object('sg_message_id', provider_message_id, 'event', 'delivered', 'sg_event_id', 'ev-' || id)) FROM journey.outbox WHERE node = 'mail'")
assert_eq '{"recorded": 3}' "$(curl -s -X POST --data "$events" "http://127.0.0.1:$LISTEN/callbacks/sendgrid")" "SendGrid delivered events recorded"
assert_eq '{"recorded": 0}' "$(curl -s -X POST --data "$events" "http://127.0.0.1:$LISTEN/callbacks/sendgrid")" "the same events again: nothing recorded"
older=$(q "SELECT json_agg(json_build_object('sg_message_id', provider_message_id || '.filter0001.1', 'event', 'processed', 'sg_event_id', 'p-' || id)) FROM journey.outbox WHERE node = 'mail'")
assert_eq '{"recorded": 3}' "$(curl -s -X POST --data "$older" "http://127.0.0.1:$LISTEN/callbacks/sendgrid")" "older processed events (ids with SendGrid's .filter suffix) are recorded"
assert_eq 3 "$(q "SELECT count(*) FROM journey.outbox WHERE node = 'mail' AND status = 'delivered'")" "and move no status back"
wait_for "SELECT count(*) = 3 FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'welcome' AND e.status = 'completed'
          AND EXISTS (SELECT 1 FROM journey.steps s WHERE s.enrollment_id = e.id AND s.node = 'won')" 30 "check_email went down yes: every contact reached the goal"
wait_for "SELECT count(*) = 16 FROM journey.outbox WHERE status IN ('sent', 'delivered')" 30 "admin e-mails, webhooks and tasks sent too"

echo "journey_relay: what the servers received"
assert_eq 3 "$(jsonl "$out/gw/log.jsonl" 'len(rs)')" "the gateway got three requests"
assert_eq "ACME|ACME|ACME" "$(jsonl "$out/gw/log.jsonl" '"|".join(r["from"] for r in rs)')" "From is the node's sender"
assert_eq "Basic $(printf 'AC123:tok!' | base64)" "$(jsonl "$out/gw/log.jsonl" 'rs[0]["auth"]')" "basic auth from the URL's userinfo"
assert_eq "http://127.0.0.1:$LISTEN/callbacks/twilio" "$(jsonl "$out/gw/log.jsonl" 'rs[0]["callback"]')" "StatusCallback points at the relay"
assert_eq "$(q "SELECT string_agg(recipient || ' ' || idempotency_key || ' ' || body, '|' ORDER BY recipient) FROM journey.outbox WHERE channel = 'sms'")" \
  "$(jsonl "$out/gw/log.jsonl" '"|".join(sorted(r["to"] + " " + r["key"] + " " + r["body"] for r in rs))')" "each SMS to its phone with its text and idempotency key"
assert_eq "$(q "SELECT string_agg(provider_message_id, ' ' ORDER BY provider_message_id) FROM journey.outbox WHERE channel = 'sms'")" \
  "$(jsonl "$out/gw/log.jsonl" '" ".join(sorted(r["sid"] for r in rs))')" "provider_message_id is the gateway's sid"
welcome=$(jsonl "$out/smtp/log.jsonl" '"|".join(sorted(r["to"] + " / " + r["from"] + " / " + r["subject"] + " / " + r["key"] for r in rs if r["subject"].startswith("Welcome")))')
assert_eq "$(q "SELECT string_agg(recipient || ' / \"ACME Team\" <hello@acme.test> / ' || subject || ' / ' || idempotency_key, '|' ORDER BY recipient) FROM journey.outbox WHERE node = 'mail'")" \
  "$welcome" "welcome e-mails: To, From name and address, subject, X-Idempotency-Key"
dana_mail=$(grep -l "^To: dana@example.com" "$out"/smtp/*.eml | head -1)
grep -q "^Hello Dana, glad you joined." "$dana_mail" && echo "  PASS the body is the template's" || { echo "  FAIL body"; cat "$dana_mail"; exit 1; }
mid=$(grep -i "^Message-ID:" "$dana_mail" | tr -d '\r' | sed 's/^[^:]*: *<\(.*\)>$/\1/')
assert_eq "$mid" "$(q "SELECT provider_message_id FROM journey.outbox WHERE node = 'mail' AND recipient = 'dana@example.com'")" "the Message-ID (derived from the key) is the provider id"
assert_eq 3 "$(jsonl "$out/smtp/log.jsonl" 'sum(1 for r in rs if r["to"] == "ops@acme.test" and r["from"] == "\"ACME Relay\" <relay@acme.test>" and r["subject"].startswith("New member"))')" "admin e-mails from the relay's --from"
assert_eq "3 True" "$(jsonl "$out/hook/log.jsonl" 'str(len(rs)) + " " + str(all(r["signature_ok"] and r["method"] == "POST" and r["path"] == "/hooks/joined" for r in rs))')" "three webhook calls, each signature verified by the receiver"
assert_eq "$(q "SELECT string_agg(idempotency_key, ' ' ORDER BY idempotency_key) FROM journey.outbox WHERE channel = 'webhook'")" \
  "$(jsonl "$out/hook/log.jsonl" '" ".join(sorted(r["id"] for r in rs))')" "webhook-id is the idempotency key"
assert_eq '{"email":"dana@example.com"}' "$(jsonl "$out/hook/log.jsonl" '[r["body"] for r in rs if "dana" in r["body"]][0]')" "the webhook body is the node's"
assert_eq 3 "$(q "SELECT count(*) FROM journey.outbox WHERE channel = 'task' AND status = 'sent' AND provider_message_id IS NULL")" "tasks are marked sent at once"

echo "journey_relay: /metrics, /healthz, callbacks"
metrics=$(curl -s "http://127.0.0.1:$LISTEN/metrics")
for line in 'journey_relay_sent_total{channel="sms"} 3' 'journey_relay_sent_total{channel="email"} 3' 'journey_relay_sent_total{channel="webhook"} 3' \
            'journey_relay_callbacks_total{kind="sendgrid"} 3' 'journey_relay_in_flight 0'; do
  grep -qF "$line" <<<"$metrics" && echo "  PASS /metrics: $line" || { echo "  FAIL /metrics lacks $line"; echo "$metrics"; exit 1; }
done
assert_eq ok "$(curl -s "http://127.0.0.1:$LISTEN/healthz")" "/healthz"
assert_eq 400 "$(curl -s -o /dev/null -w '%{http_code}' -X POST --data 'MessageStatus=sent' "http://127.0.0.1:$LISTEN/callbacks/twilio")" "a status callback without MessageSid: 400"
assert_eq '<Response/>' "$(curl -s -X POST --data-urlencode 'From=+15550000001' --data-urlencode 'Body= Stop ' --data 'MessageSid=SMin1' "http://127.0.0.1:$LISTEN/callbacks/twilio/inbound")" "inbound STOP answered with TwiML"
assert_eq "true|{\"text\": \" Stop \", \"provider_event_id\": \"SMin1\"}" \
  "$(q "SELECT c.sms_opt_out || '|' || e.payload FROM journey.contacts c JOIN journey.events e ON e.contact_id = c.id AND e.name = 'sms_received' WHERE c.first_name = 'Dana'")" \
  "Dana opted out of SMS and the event sms_received was recorded"
grep -q "claimed .*sms=3" "$out/relay2.log" && echo "  PASS progress lines" || { echo "  FAIL no progress line"; cat "$out/relay2.log"; exit 1; }
kill -TERM $relay_pid
wait $relay_pid
assert_eq 0 "$(q "SELECT count(*) FROM journey.outbox WHERE status = 'leased'")" "SIGTERM: the relay exited 0, nothing leased"

echo "journey_relay: callbacks with --callback-token"
"$RELAY" "${ARGS[@]}" --channels task --listen "127.0.0.1:5730" --callback-token s3cret 2>"$out/token.log" &
token_pid=$!
PIDS+=($token_pid)
for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:5730/healthz" && break; sleep 0.1; done
cb() { curl -s -o /dev/null -w '%{http_code}' -X POST --data 'MessageSid=SM-none&MessageStatus=delivered' "http://127.0.0.1:5730/callbacks/twilio$1"; }
assert_eq 403 "$(cb '')" "without the token: 403"
assert_eq 403 "$(cb '?token=wrong')" "with a wrong one: 403"
assert_eq 200 "$(cb '?token=s3cret')" "with the token: 200 (an unknown message id records nothing)"
kill -TERM $token_pid; wait $token_pid

echo "journey_relay: provider errors (429 and 500 retried, 400 and SMTP 550 failed for good)"
dana=$(q "SELECT id FROM journey.contacts WHERE first_name = 'Dana'")
q "INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, sender, subject, body) VALUES
   ('e:429', 'sms', $dana, '+15550000001', NULL, NULL, '[429] slow down'),
   ('e:500', 'sms', $dana, '+15550000001', NULL, NULL, '[500] oops'),
   ('e:400', 'sms', $dana, '+15550000001', NULL, NULL, '[400] bad'),
   ('e:ok',  'sms', $dana, '+15550000001', NULL, NULL, 'plain'),
   ('e:wa',  'whatsapp', $dana, '+15550000001', NULL, NULL, 'on WhatsApp'),
   ('e:550', 'email', $dana, 'reject@example.com', NULL, 'x', 'x'),
   ('e:451', 'email', $dana, 'busy@example.com', NULL, 'x', 'x')"
relay --until-idle 2>"$out/relay3.log"
st() { q "SELECT status || '|' || attempts FROM journey.outbox WHERE idempotency_key = '$1'"; }
assert_eq "sent|1" "$(st e:429)" "429: waited for Retry-After and sent in the same lease"
assert_eq "pending|1" "$(st e:500)" "500: given back for a later try"
assert_eq "failed|1" "$(st e:400)" "400: failed for good"
assert_eq "sent|1" "$(st e:ok)" "a plain SMS: sent"
assert_eq "whatsapp:+15550000001 whatsapp:+15559999999" "$(jsonl "$out/gw/log.jsonl" '[r["to"] + " " + r["from"] for r in rs if r["key"] == "e:wa"][0]')" "WhatsApp: the same gateway, whatsapp: addresses (the --sms-from sender)"
assert_eq "failed|1" "$(st e:550)" "SMTP 550: failed for good"
assert_eq "pending|1" "$(st e:451)" "SMTP 451: given back for a later try"
assert_eq "HTTP 400: {\"message\": \"The 'To' number is not a valid phone number.\"}" "$(q "SELECT last_error FROM journey.outbox WHERE idempotency_key = 'e:400'")" "last_error holds the gateway's answer"
assert_eq t "$(q "SELECT not_before > now() + interval '20 seconds' FROM journey.outbox WHERE idempotency_key = 'e:500'")" "the retry waits (mark_failed's backoff)"
q "UPDATE journey.outbox SET not_before = now() WHERE idempotency_key = 'e:500'"
relay --until-idle 2>>"$out/relay3.log"
assert_eq "sent|2" "$(st e:500)" "500: sent on the next try"
assert_eq "e:400 400|e:429 429,200|e:500 500,200|e:ok 200|e:wa 200" \
  "$(jsonl "$out/gw/log.jsonl" '"|".join(k + " " + ",".join(str(r["status"]) for r in rs if r["key"] == k) for k in sorted({r["key"] for r in rs if r["key"].startswith("e:")}))')" \
  "the gateway received exactly: 400 once, 429 then 200, 500 then 200, the others once"
assert_eq 0 "$(jsonl "$out/smtp/log.jsonl" 'sum(1 for r in rs if r["key"] and r["key"].startswith("e:"))')" "no refused e-mail was delivered"

echo "journey_relay: SIGKILL mid-batch, then a second relay after the lease"
q "INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, body)
   SELECT 'k:' || g, 'sms', $dana, '+1555000' || lpad(g::text, 4, '0'), 'kill test ' || g FROM generate_series(1, 30) g"
"$RELAY" "${SLOW[@]}" --lease 3 --timeout 1 2>"$out/relay4.log" &
killed=$!
PIDS+=($killed)
for _ in $(seq 1 100); do [ "$(cat "$out/gw2/log.jsonl" 2>/dev/null | wc -l)" -ge 8 ] && break; sleep 0.1; done
# mid-batch: while rows are leased (each request takes the gateway 0.25 s)
for _ in $(seq 1 100); do [ "$(q "SELECT count(*) FROM journey.outbox WHERE status = 'leased'")" -gt 0 ] && break; done
kill -KILL $killed
wait $killed 2>/dev/null || true
leased=$(q "SELECT count(*) FROM journey.outbox WHERE status = 'leased' AND idempotency_key LIKE 'k:%'")
echo "  (killed with $leased rows leased, $(wc -l <"$out/gw2/log.jsonl") requests received)"
[ "$leased" -gt 0 ] && echo "  PASS the kill left rows leased" || { echo "  FAIL nothing was leased at the kill"; exit 1; }
sleep 3.2
"$RELAY" "${SLOW[@]}" --lease 3 --timeout 1 --until-idle 2>"$out/relay5.log"
assert_eq "sent 30" "$(q "SELECT status || ' ' || count(*) FROM journey.outbox WHERE idempotency_key LIKE 'k:%' GROUP BY status")" "every message is sent"
assert_eq 30 "$(jsonl "$out/gw2/log.jsonl" 'len({r["key"] for r in rs if r["key"].startswith("k:")})')" "the gateway received every message"
assert_eq True "$(jsonl "$out/gw2/log.jsonl" 'all(len({(r["to"], r["body"]) for r in rs if r["key"] == k}) == 1 for k in {r["key"] for r in rs})')" "a key always names the same message"
assert_eq True "$(jsonl "$out/gw2/log.jsonl" 'all(len({r["key"] for r in rs if r["body"] == b}) == 1 for b in {r["body"] for r in rs})')" "a message received twice carried the same idempotency key"
echo "  ($(jsonl "$out/gw2/log.jsonl" 'len([r for r in rs if r["key"].startswith("k:")]) - 30') messages were received twice)"

echo "journey_relay: SIGTERM mid-batch"
q "INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, body)
   SELECT 't:' || g, 'sms', $dana, '+1555000' || lpad(g::text, 4, '0'), 'term test ' || g FROM generate_series(1, 12) g"
"$RELAY" "${SLOW[@]}" --lease 20 --timeout 2 2>"$out/relay6.log" &
termed=$!
PIDS+=($termed)
for _ in $(seq 1 100); do [ "$(grep -c '"t:' "$out/gw2/log.jsonl")" -ge 2 ] && break; sleep 0.1; done
assert_eq t "$(q "SELECT count(*) > 0 FROM journey.outbox WHERE status = 'leased' AND idempotency_key LIKE 't:%'")" "rows are leased when SIGTERM comes"
kill -TERM $termed
rc=0; wait $termed || rc=$?
assert_eq 0 "$rc" "the relay exits 0"
assert_eq 0 "$(q "SELECT count(*) FROM journey.outbox WHERE status = 'leased'")" "nothing left leased"
assert_eq "$(q "SELECT count(*) FROM journey.outbox WHERE idempotency_key LIKE 't:%' AND status = 'sent'")" \
  "$(jsonl "$out/gw2/log.jsonl" 'sum(1 for r in rs if r["key"].startswith("t:"))')" "what it held was sent and marked, once each"
grep -q "stopped: nothing left leased" "$out/relay6.log" && echo "  PASS it says so" || { echo "  FAIL"; cat "$out/relay6.log"; exit 1; }
echo "journey_relay_test: ok"
