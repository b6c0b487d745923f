-- Verified senders: add_sender e-mails a 6-digit code through the outbox (the row it writes),
-- verify_sender (right code, wrong code x5 then locked, expiry on the virtual clock, case),
-- a send_email's from must name a verified sender and its from_name be fixed text
-- (validate_flow, activate_flow), the engine sends from it, remove_sender is refused while an
-- active or paused flow sends from it; admin only.
\i tests/pg_regress/include/welcome.sql
SELECT pg_temp.contact('Dana') AS dana \gset
-- the code of the last verification e-mail to an address (the test reads the relay's message)
CREATE FUNCTION pg_temp.code(address text) RETURNS text LANGUAGE sql AS $$
  SELECT substring(o.subject FROM '(\d{6})$') FROM journey.outbox o
  WHERE o.recipient = address AND o.payload ->> 'kind' = 'sender_verification' ORDER BY o.id DESC LIMIT 1
$$;
-- a code that is not right
CREATE FUNCTION pg_temp.wrong(address text) RETURNS text LANGUAGE sql AS $$
  SELECT lpad(((pg_temp.code(address)::integer + 1) % 1000000)::text, 6, '0')
$$;

-- ---------------------------------------------------------------- add_sender and its e-mail
SELECT journey.add_sender('billing@example.com', 'ACME Billing') AS billing \gset
SELECT email, name, verified_at IS NULL AS unverified, tries, code_hash IS NOT NULL AS hashed,
       length(code_salt) > 0 AS salted, code_expires_at - created_at AS expires_after
FROM journey.senders;
-- the outbox row: an e-mail to the address, from the relay's default sender, no flow, contact 0
SELECT channel, contact_id, recipient, sender, flow_id, enrollment_id, node, status, test, payload = jsonb_build_object('kind', 'sender_verification', 'sender_id', :billing) AS payload,
       idempotency_key LIKE 'sender:' || :billing || ':%' AS key,
       regexp_replace(subject, '\d{6}', '######') AS subject, regexp_replace(body, '\d{6}', '######') AS body
FROM journey.outbox;
SELECT pg_temp.code('billing@example.com') ~ '^\d{6}$' AS six_digits;
-- the code itself is stored nowhere
SELECT count(*) AS rows_holding_the_code FROM journey.senders s WHERE position(pg_temp.code('billing@example.com') IN s::text) > 0;
-- claimable by a relay like any message
SELECT count(*) AS claimable FROM journey.claim(ARRAY['email']) WHERE contact_id = 0;
-- no contact, no flow: timelines and stats do not see it
SELECT * FROM journey.timeline(:dana);
SELECT count(*) AS enrollments, (SELECT count(*) FROM journey.steps) AS steps FROM journey.enrollments;
-- the same address in another case is the same sender (a new code, the name kept)
SELECT journey.add_sender('Billing@Example.COM') = :billing AS same_sender;
SELECT name FROM journey.senders;
SELECT count(*) AS verification_emails FROM journey.outbox WHERE contact_id = 0;

-- bad input
SELECT journey.add_sender(NULL, 'x');
SELECT journey.add_sender('  ', 'x');
SELECT journey.add_sender('ACME <billing@example.com>', 'x');
SELECT journey.add_sender('billing', 'x');
SELECT journey.add_sender('ops@example.com', '{{ contact.first_name }}');
SELECT journey.verify_sender(NULL, '123456');
SELECT journey.verify_sender('billing@example.com', NULL);
SELECT journey.verify_sender('nobody@example.com', '123456');
SELECT count(*) AS senders FROM journey.senders;

-- ---------------------------------------------------------------- the right code
SELECT journey.verify_sender('billing@example.com', pg_temp.code('billing@example.com'));
SELECT email, verified_at IS NOT NULL AS verified, tries, code_hash IS NULL AND code_salt IS NULL AND code_expires_at IS NULL AS code_gone
FROM journey.senders;
-- verified: true again, whatever the code; add_sender sends nothing more
SELECT journey.verify_sender('BILLING@example.com', '000000');
SELECT journey.add_sender('billing@example.com', 'ACME Billing') = :billing AS same_sender;
SELECT count(*) AS verification_emails FROM journey.outbox WHERE contact_id = 0;

-- ---------------------------------------------------------------- five wrong codes lock it
SELECT journey.add_sender('sales@example.com', 'ACME Sales') AS sales \gset
SELECT i AS try, journey.verify_sender('sales@example.com', pg_temp.wrong('sales@example.com')) AS verified
FROM generate_series(1, 5) i;
SELECT tries, verified_at IS NULL AS unverified FROM journey.senders WHERE id = :sales;
-- locked: even the right code is refused
SELECT journey.verify_sender('sales@example.com', pg_temp.code('sales@example.com'));
SELECT tries, verified_at IS NULL AS unverified FROM journey.senders WHERE id = :sales;
-- a code that is not six digits is a wrong try too
SELECT journey.add_sender('sales@example.com') = :sales AS new_code;
SELECT journey.verify_sender('sales@example.com', 'abc');
SELECT tries FROM journey.senders WHERE id = :sales;
-- a new code: tries start again, the right one verifies (spaces around it do not matter)
SELECT journey.verify_sender('sales@example.com', ' ' || pg_temp.code('sales@example.com') || ' ');
SELECT tries, verified_at IS NOT NULL AS verified FROM journey.senders WHERE id = :sales;

-- ---------------------------------------------------------------- expiry (the virtual clock)
SELECT journey.add_sender('late@example.com') AS late \gset
SELECT journey.verify_sender('late@example.com', pg_temp.code('late@example.com'), now() + interval '24 hours 1 minute');
SELECT tries, verified_at IS NULL AS unverified FROM journey.senders WHERE id = :late;
-- within the 24 hours it verifies, and verified_at is the clock's time
BEGIN;
SELECT journey.verify_sender('late@example.com', pg_temp.code('late@example.com'), now() + interval '23 hours 59 minutes');
SELECT verified_at = now() + interval '23 hours 59 minutes' AS verified_then FROM journey.senders WHERE id = :late;
COMMIT;

-- ---------------------------------------------------------------- flows sending from a sender
SELECT journey.add_sender('news@example.com', 'ACME News') AS news \gset
SELECT journey.create_flow('billing', '{
  "triggers": [{"type": "group_joined", "group": "vip"}], "start": "mail",
  "nodes": {"mail": {"type": "send_email", "subject": "Invoice", "body": "Hi {{ contact.first_name }}",
                     "from": "billing@example.com", "from_name": "ACME Billing", "next": "news"},
            "news": {"type": "send_email", "subject": "News", "body": "News", "from": "news@example.com"}}}') AS billing_flow \gset
-- news@ is not verified yet
SELECT * FROM journey.validate_flow('billing');
SELECT journey.activate_flow('billing');
SELECT status FROM journey.flows WHERE name = 'billing';
SELECT journey.update_flow('billing', '{
  "triggers": [{"type": "group_joined", "group": "vip"}], "start": "mail",
  "nodes": {"mail": {"type": "send_email", "subject": "Invoice", "body": "Hi", "from": "nobody@example.com", "next": "liquid"},
            "liquid": {"type": "send_email", "subject": "S", "body": "B", "from": "{{ contact.email }}", "next": "name"},
            "name": {"type": "send_email", "subject": "S", "body": "B", "from": "billing@example.com",
                     "from_name": "{{ contact.first_name }} at ACME", "next": "plain"},
            "plain": {"type": "send_email", "subject": "S", "body": "B", "from_name": "{{ contact.first_name }}"}}}');
-- nobody@ is no sender; from holds Liquid; from_name holds Liquid beside a from (not without one)
SELECT * FROM journey.validate_flow('billing');
-- back to version 1; once news@ is verified the flow is complete and activates
SELECT journey.update_flow('billing', definition) FROM journey.flow_versions WHERE flow_id = :billing_flow AND version = 1;
SELECT journey.verify_sender('news@example.com', pg_temp.code('news@example.com'));
SELECT * FROM journey.validate_flow('billing');
SELECT journey.activate_flow('billing');
-- the engine sends from it, with its name
SELECT journey.add_to_group(:dana, 'vip');
SELECT journey.run_due(10, now());
SELECT node, channel, recipient, sender, subject FROM journey.outbox WHERE flow_id = :billing_flow ORDER BY id;
-- a verified sender with no name: the e-mail goes from the bare address (the engine's lookup of
-- the name failed every enrollment with an internal error when there was none)
SELECT journey.add_sender('plain@example.com') AS plain \gset
SELECT journey.verify_sender('plain@example.com', pg_temp.code('plain@example.com'));
SELECT journey.create_flow('plain', '{"triggers": [{"type": "manual"}], "start": "m",
  "nodes": {"m": {"type": "send_email", "subject": "Plain", "body": "Hi", "from": "plain@example.com"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('plain');
SELECT journey.enroll('plain', :dana) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT e.status, e.last_error, o.sender, o.subject FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
  LEFT JOIN journey.outbox o ON o.enrollment_id = e.id WHERE f.name = 'plain';
SELECT journey.archive_flow('plain');
-- the welcome flow names no from: unchanged, complete (the relay's default sender)
SELECT count(*) AS welcome_problems FROM journey.validate_flow('welcome');

-- ---------------------------------------------------------------- remove_sender
SELECT journey.remove_sender('billing@example.com');
SELECT journey.pause_flow('billing');
SELECT journey.remove_sender('NEWS@example.com');
SELECT journey.archive_flow('billing');
SELECT journey.remove_sender('NEWS@example.com');
SELECT journey.remove_sender('news@example.com');
SELECT journey.remove_sender(NULL);
-- a draft naming a sender does not hold it; its validation lists the sender once it is gone
SELECT journey.create_flow('draft', '{"triggers": [{"type": "group_joined", "group": "vip"}], "start": "m",
  "nodes": {"m": {"type": "send_email", "subject": "S", "body": "B", "from": "late@example.com"}}}');
SELECT journey.remove_sender('late@example.com');
SELECT * FROM journey.validate_flow('draft');
SELECT email FROM journey.senders ORDER BY email;

-- ---------------------------------------------------------------- admin only
CREATE ROLE regress_senders_app;
SELECT journey.grant_role('regress_senders_app', 'app');
BEGIN;
SET LOCAL ROLE regress_senders_app;
SELECT journey.add_sender('app@example.com', 'App');
ROLLBACK;
BEGIN;
SET LOCAL ROLE regress_senders_app;
SELECT journey.verify_sender('sales@example.com', '123456');
ROLLBACK;
BEGIN;
SET LOCAL ROLE regress_senders_app;
SELECT journey.remove_sender('sales@example.com');
ROLLBACK;
DROP OWNED BY regress_senders_app;
DROP ROLE regress_senders_app;
