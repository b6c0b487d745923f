#!/usr/bin/env bash
# Two relays claiming at once never get the same row; an expired lease can be claimed again and
# a late mark_sent from the old lease is harmless.
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/cluster.sh
trap cluster_cleanup EXIT
cluster_start /tmp/journey-relay-test 5473 "journey.worker_enabled = off"
out=/tmp/journey-relay-test

q "CREATE EXTENSION journey"
q "INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, body)
   SELECT 't:' || g, 'sms', c.id, '+1', 'x' FROM generate_series(1, 200) g,
          (SELECT journey.upsert_contact('{\"phone\": \"+1\"}') AS id) c"

echo "relay: two concurrent claims"
for r in a b; do
  psql -X -qAt -v ON_ERROR_STOP=1 >"$out/claim_$r" <<SQL &
BEGIN;
SELECT id FROM journey.claim(NULL, 150);
SELECT pg_sleep(1);
COMMIT;
SQL
done
wait
grep -E '^[0-9]+$' "$out/claim_a" | sort >"$out/a"
grep -E '^[0-9]+$' "$out/claim_b" | sort >"$out/b"
assert_eq 0 "$(comm -12 "$out/a" "$out/b" | wc -l)" "no row claimed twice"
assert_eq 200 "$(cat "$out/a" "$out/b" | wc -l)" "all 200 rows claimed (150 + 50)"

echo "relay: expired lease and a late mark_sent"
q "UPDATE journey.outbox SET status = 'pending', leased_until = NULL, attempts = 0"
q "DELETE FROM journey.outbox WHERE id <> (SELECT min(id) FROM journey.outbox)"
first=$(q "SELECT id FROM journey.claim(NULL, 1, '1 second')")
sleep 1.5
second=$(q "SELECT id FROM journey.claim(NULL, 1, '1 minute')")
assert_eq "$first" "$second" "an expired lease can be claimed again"
assert_eq t "$(q "SELECT journey.mark_sent($first, 'p1')")" "the old relay's late mark_sent marks it"
assert_eq f "$(q "SELECT journey.mark_sent($second, 'p2')")" "the second mark_sent is harmless"
assert_eq "sent|p1|2" "$(q "SELECT status || '|' || provider_message_id || '|' || attempts FROM journey.outbox")" "marked sent once"
echo "relay_test: ok"
