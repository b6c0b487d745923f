#!/usr/bin/env bash
# Relays (README "Relay protocol"): two relays claiming at once never get the same row; each
# claimed row carries a fresh lease_token, and mark_sent / mark_failed count only with the token
# of the row's current lease. After relay A's lease expired and relay B re-claimed the row, A's
# late mark_sent returns false and B's true; a relay cannot mark a row it never claimed; a relay
# whose lease expired but that nobody re-claimed may still mark it. Both relays are relay roles
# (journey.grant_role) that log in.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
cluster_start /tmp/journey-relay-test 5473 "journey.worker_enabled = off"
out=/tmp/journey-relay-test
export PGOPTIONS="-c client_min_messages=warning"

create_journey
q "CREATE ROLE relay_a LOGIN; CREATE ROLE relay_b LOGIN"
q "SELECT journey.grant_role('relay_a', 'relay'), journey.grant_role('relay_b', 'relay')"
q "INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, body)
   SELECT 't:' || g, 'sms', c.id, '+1', 'x' FROM generate_series(1, 200) g,
          (SELECT journey.upsert_contact('{\"phone\": \"+10000000000\"}') AS id) c"
as_relay() { local role=$1; shift; PGUSER=$role q "$1"; }
# the row's status|provider_message_id|attempts
row() { q "SELECT status || '|' || coalesce(provider_message_id, '-') || '|' || attempts FROM journey.outbox WHERE id = $1"; }

echo "relay: two concurrent claims"
for r in a b; do
  PGUSER=relay_$r psql -X -qAt -F ' ' -v ON_ERROR_STOP=1 >"$out/claim_$r" <<SQL &
BEGIN;
SELECT id, lease_token FROM journey.claim(NULL, 150);
SELECT pg_sleep(1);
COMMIT;
SQL
done
wait
grep -E '^[0-9]+ ' "$out/claim_a" | cut -d' ' -f1 | sort >"$out/a"
grep -E '^[0-9]+ ' "$out/claim_b" | cut -d' ' -f1 | sort >"$out/b"
assert_eq 0 "$(comm -12 "$out/a" "$out/b" | wc -l)" "no row claimed twice"
assert_eq 200 "$(cat "$out/a" "$out/b" | wc -l)" "all 200 rows claimed (150 + 50)"
assert_eq 200 "$(grep -hE '^[0-9]+ ' "$out/claim_a" "$out/claim_b" | cut -d' ' -f2 | grep -cE '^[0-9a-f-]{36}$')" "every claimed row came with a lease_token"
assert_eq 200 "$(grep -hE '^[0-9]+ ' "$out/claim_a" "$out/claim_b" | cut -d' ' -f2 | sort -u | wc -l)" "200 different tokens"
assert_eq 200 "$(q "SELECT count(DISTINCT lease_token) FROM journey.outbox WHERE status = 'leased'")" "the outbox holds the tokens of the current leases"

q "UPDATE journey.outbox SET status = 'pending', leased_until = NULL, lease_token = NULL, attempts = 0"
q "DELETE FROM journey.outbox WHERE id > (SELECT min(id) + 4 FROM journey.outbox)"
read -r id1 id2 id3 id4 id5 <<<"$(q "SELECT string_agg(id::text, ' ' ORDER BY id) FROM journey.outbox")"

echo "relay: A's lease expired and B re-claimed the row: A's late calls count for nothing"
read -r first tok_a <<<"$(as_relay relay_a "SELECT id || ' ' || lease_token FROM journey.claim(NULL, 1, '1 second')")"
sleep 1.5
read -r second tok_b <<<"$(as_relay relay_b "SELECT id || ' ' || lease_token FROM journey.claim(NULL, 1, '1 minute')")"
assert_eq "$id1" "$first" "A claimed the oldest row"
assert_eq "$first" "$second" "B claimed it again once A's lease expired"
[ "$tok_a" != "$tok_b" ] && echo "  PASS B's claim got a new token" || { echo "  FAIL the token did not change"; exit 1; }
assert_eq f "$(as_relay relay_a "SELECT journey.mark_sent($first, 'p-a', '$tok_a')")" "A's late mark_sent returns false"
assert_eq f "$(as_relay relay_a "SELECT journey.mark_failed($first, 'late', true, '$tok_a')")" "A's late mark_failed returns false"
assert_eq "leased|-|2" "$(row "$first")" "and changed nothing"
assert_eq t "$(as_relay relay_b "SELECT journey.mark_sent($second, 'p-b', '$tok_b')")" "B's mark_sent returns true"
assert_eq "sent|p-b|2" "$(row "$first")" "marked sent once, with B's provider message id"
assert_eq f "$(as_relay relay_b "SELECT journey.mark_sent($second, 'p-b2', '$tok_b')")" "B's repeated mark_sent returns false"
assert_eq t "$(as_relay relay_b "SELECT journey.report('p-b', 'delivered', 'ev-1')")" "B's delivery report is recorded"
assert_eq "delivered|p-b|2" "$(row "$first")" "the message is delivered"

echo "relay: a relay cannot mark a row it never claimed"
assert_eq f "$(as_relay relay_a "SELECT journey.mark_sent($id2, 'x', gen_random_uuid())")" "a pending row, any token: false"
assert_eq f "$(as_relay relay_a "SELECT journey.mark_sent($id2, 'x', NULL)")" "a pending row, no token: false"
assert_eq "pending|-|0" "$(row "$id2")" "the pending row is untouched"
read -r claimed tok_claimed <<<"$(as_relay relay_b "SELECT id || ' ' || lease_token FROM journey.claim(NULL, 1, '1 minute')")"
assert_eq "$id2" "$claimed" "B claims it"
assert_eq f "$(as_relay relay_a "SELECT journey.mark_sent($claimed, 'x', gen_random_uuid())")" "A cannot mark B's row sent with another token"
assert_eq f "$(as_relay relay_a "SELECT journey.mark_failed($claimed, 'x', false, NULL)")" "nor failed without one"
assert_eq f "$(as_relay relay_a "SELECT journey.mark_failed($claimed, 'x', false, '$tok_b')")" "nor with the token of another row's lease"
assert_eq "leased|-|1" "$(row "$claimed")" "B's row is untouched"
assert_eq t "$(as_relay relay_b "SELECT journey.mark_failed($claimed, 'provider down', true, '$tok_claimed')")" "B's own mark_failed returns true"
assert_eq "pending|-|1" "$(row "$claimed")" "the row is pending again, for a retry"
assert_eq f "$(as_relay relay_b "SELECT journey.mark_sent($claimed, 'x', '$tok_claimed')")" "the ended lease's token no longer counts"

echo "relay: an expired lease that nobody re-claimed still holds the current token"
read -r third tok_c <<<"$(as_relay relay_a "SELECT id || ' ' || lease_token FROM journey.claim(NULL, 1, '1 second')")"
assert_eq "$id3" "$third" "A claims the next row for a second"
sleep 1.5
assert_eq t "$(as_relay relay_a "SELECT journey.mark_sent($third, 'p-c', '$tok_c')")" "A's mark_sent after its lease expired returns true"
assert_eq "sent|p-c|1" "$(row "$third")" "marked sent"

echo "relay: the 0.2.0 calls without a lease token fail loudly"
for call in "journey.mark_sent($id4, 'p')" "journey.mark_sent($id4)" "journey.mark_failed($id4, 'x')" "journey.mark_failed($id4, 'x', true)" "journey.mark_failed($id4, 'x', retry := true)"; do
  err=$(PGUSER=relay_a psql -X -qAt -c "\set VERBOSITY sqlstate" -c "SELECT $call" 2>&1 || true)
  assert_eq "ERROR:  42883" "$err" "$call: undefined function"
done
echo "relay_test: ok"
