-- The relay protocol: claim (channels, not_before, leases), mark_sent and mark_failed (only
-- with the current lease's token; retry with backoff, then terminal), report (forward only,
-- idempotent by provider event id, unknown ids ignored), and their errors.
-- The scenario runs in a transaction that is rolled back; now() is constant inside it, so a
-- backoff is shown as not_before - now(). ON_ERROR_ROLLBACK keeps it going after a statement
-- that is meant to fail; \echo :SQLSTATE prints its code.
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
INSERT INTO journey.groups (name) VALUES ('newsletter'), ('vip');
INSERT INTO journey.templates (name, channel, subject, body)
VALUES ('welcome_email', 'email', 'Welcome {{ contact.first_name }}', 'Hello {{ contact.first_name }} from {{ flow.name }}');
SELECT journey.create_flow('welcome', '{
  "triggers": [{"type": "group_joined", "group": "newsletter"}],
  "start": "sms",
  "nodes": {
    "sms":  {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "sender": "ACME",
             "next": {"to": "mail", "delay": "1 hour"}},
    "mail": {"type": "send_email", "template": "welcome_email", "next": "won"},
    "won":  {"type": "goal", "name": "welcomed"}
  }}');

BEGIN;
SELECT journey.activate_flow('welcome');
SELECT journey.add_to_group(journey.upsert_contact(jsonb_build_object('first_name', n, 'phone', '+1555' || lpad((abs(hashtext(n)) % 10000000)::text, 7, '0'))), 'newsletter')
  FROM unnest(ARRAY['R1', 'R2', 'R3']) n;
SELECT journey.run_due(10, now());
UPDATE journey.outbox SET not_before = now() + interval '1 hour' WHERE recipient = '+1555' || lpad((abs(hashtext('R3')) % 10000000)::text, 7, '0');
-- the channel filter
SELECT count(*) AS claimed FROM journey.claim(ARRAY['email']);
-- not_before respected
SELECT count(*) AS claimed FROM journey.claim(ARRAY['sms'], 10);
-- leased rows are not claimed again
SELECT count(*) AS claimed FROM journey.claim();
SELECT id, lease_token FROM journey.outbox WHERE id = (SELECT min(id) FROM journey.outbox) \gset
-- another token counts for nothing
SELECT journey.mark_sent(:id, 'prov-1', gen_random_uuid());
SELECT journey.mark_sent(:id, 'prov-1', :'lease_token');
-- a second mark_sent is harmless
SELECT journey.mark_sent(:id, 'prov-1', :'lease_token');
-- report: forward only, idempotent by provider event id, an unknown id -> false
SELECT journey.report('prov-1', 'delivered', 'ev-1');
SELECT journey.report('prov-1', 'delivered', 'ev-1');
SELECT journey.report('prov-1', 'sent', 'ev-2');
SELECT status FROM journey.outbox WHERE id = :id;
SELECT journey.report('nobody-knows', 'delivered');
SELECT count(*) AS reports FROM journey.delivery_reports;
SELECT journey.report('prov-1', 'teleported');
\echo :SQLSTATE
-- mark_failed: retried with backoff (30 s after the first attempt), then terminal
UPDATE journey.settings SET max_attempts = 2;
SELECT id AS other, lease_token FROM journey.outbox WHERE id = (SELECT max(id) FROM journey.outbox WHERE status = 'leased') \gset
SELECT journey.mark_failed(:other, 'timeout', true, :'lease_token');
SELECT status, not_before - now() AS backoff, last_error FROM journey.outbox WHERE id = :other;
UPDATE journey.outbox SET not_before = now() - interval '1 second' WHERE id = :other;
SELECT count(*) AS claimed FROM journey.claim(ARRAY['sms']);
SELECT lease_token FROM journey.outbox WHERE id = :other \gset
SELECT journey.mark_failed(:other, 'timeout again', true, :'lease_token');
SELECT status FROM journey.outbox WHERE id = :other;
SELECT journey.mark_failed(:other, 'late', true, :'lease_token');
SELECT status FROM journey.outbox WHERE id = :other;
-- bad arguments
SELECT journey.claim(NULL, 0);
\echo :SQLSTATE
SELECT journey.claim(NULL, 10, '-1 minute');
\echo :SQLSTATE
SELECT journey.mark_sent(987654321, NULL, gen_random_uuid());
\echo :SQLSTATE
ROLLBACK;
