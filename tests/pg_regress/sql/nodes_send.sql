-- The sending nodes: send_sms (encoding, segments, sender, idempotency key), send_email (a
-- template or subject and body), send_whatsapp, notify_admin, create_task, webhook; what a
-- template can read (every contact column, the attributes, the event data, the flow); sends
-- suppressed (no phone, opted out); a render error or a template missing at run time fails
-- only that enrollment.
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below (ids aside: sequences are not rolled back). now() is constant inside a transaction;
-- the virtual clock run_due(n, at) is given now() plus an offset, or a fixed time.
\i tests/pg_regress/include/welcome.sql

-- The welcome journey: an SMS at once, the templated email after the delay, then the goal.
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT pg_temp.contact('Dana') AS dana \gset
SELECT journey.add_to_group(:dana, 'newsletter');
SELECT count(*) AS active FROM journey.enrollments WHERE status = 'active';
SELECT journey.run_due(100, now());
SELECT channel, recipient, sender, body, sms_encoding, sms_segments FROM journey.outbox;
-- the key is enrollment:node:seq
SELECT o.idempotency_key = e.id || ':sms:1' AS key_is_enrollment_sms_1
  FROM journey.outbox o JOIN journey.enrollments e ON e.id = o.enrollment_id;
-- the delay holds the email back
SELECT journey.run_due(100, now() + interval '59 minutes');
SELECT journey.run_due(100, now() + interval '61 minutes');
SELECT recipient, subject, body FROM journey.outbox WHERE channel = 'email';
SELECT status FROM journey.enrollments;
SELECT node, outcome FROM journey.steps ORDER BY id;
-- nothing left to run
SELECT journey.run_due(100, now() + interval '10 days');
ROLLBACK;

-- No phone, or opted out of SMS: no outbox row, the step says why, the enrollment goes on
-- (both now wait before "mail").
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT journey.upsert_contact('{"first_name": "Nophone", "email": "n@example.com"}') AS nobody,
       journey.upsert_contact('{"first_name": "Opt", "phone": "+10000000000", "sms_opt_out": true}') AS opted \gset
INSERT INTO journey.group_members (group_id, contact_id)
SELECT g.id, c FROM journey.groups g, unnest(ARRAY[:nobody, :opted]::bigint[]) c WHERE g.name = 'newsletter';
SELECT journey.run_due(100, now());
SELECT count(*) AS messages FROM journey.outbox;
SELECT outcome FROM journey.steps ORDER BY outcome;
SELECT node, waiting FROM journey.flow_stats('welcome') WHERE waiting > 0;
ROLLBACK;

-- notify_admin, create_task, webhook and send_whatsapp write their channels; a webhook body
-- that is not JSON once rendered fails only that enrollment.
BEGIN;
UPDATE journey.settings SET admin_email = 'boss@example.com';
SELECT journey.create_flow('ops', '{"triggers": [{"type": "manual"}], "start": "n",
  "nodes": {"n": {"type": "notify_admin", "subject": "New lead", "text": "{{ contact.first_name }} joined", "next": "t"},
            "t": {"type": "create_task", "assignee": "sales", "title": "Call {{ contact.first_name }}", "due": "2 days", "next": "w"},
            "w": {"type": "webhook", "url": "https://hooks.example.com/x", "body": "{\"id\": {{ contact.id }}, \"name\": \"{{ contact.first_name }}\"}", "next": "wa"},
            "wa": {"type": "send_whatsapp", "text": "Salut {{ contact.first_name }}"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('ops');
SELECT pg_temp.contact('Ops') AS ops \gset
SELECT journey.enroll('ops', :ops) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-06-01 00:00Z';
SELECT journey.run_due(10, '2026-06-01 12:00Z');
SELECT channel, recipient FROM journey.outbox ORDER BY id;
-- the task is due 2 days after the step
SELECT payload->>'due' AS due, subject FROM journey.outbox WHERE channel = 'task';
SELECT payload->'body'->>'name' AS name FROM journey.outbox WHERE channel = 'webhook';
SELECT journey.create_flow('hook', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "webhook", "url": "https://x.example.com", "body": "{\"name\": {{ contact.first_name }}}"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('hook');
SELECT journey.enroll('hook', :ops) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT f.name, e.status, e.last_error FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name;
ROLLBACK;

-- A template reads every contact column (the engine reads them one by one, no JSON row), the
-- attributes, the event data and the flow, each under its own name.
BEGIN;
SELECT journey.create_flow('all', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "unsubscribe": false, "text": "{{ contact.id }}|{{ contact.external_id }}|{{ contact.email }}|{{ contact.phone }}|{{ contact.first_name }}|{{ contact.last_name }}|{{ contact.birthday }}|{{ contact.time_zone }}|{{ contact.attributes.plan }}|{{ contact.attributes.n | plus: 1 }}|{{ contact.email_opt_out }}|{{ contact.sms_opt_out }}|{{ contact.created_at }}|{{ contact.updated_at }}|{{ event.amount }}|{{ event.order.id }}|{{ flow.name }} v{{ flow.version }}"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('all');
SELECT journey.upsert_contact('{"external_id": "x-1", "email": "dana@example.com", "phone": "+15550001",
  "first_name": "Dana", "last_name": "Levi", "birthday": "1990-05-06", "time_zone": "Asia/Jerusalem",
  "attributes": {"plan": "pro", "n": 3}}') AS id \gset
UPDATE journey.contacts SET created_at = '2026-01-02 03:04:05+00', updated_at = '2026-01-02 03:04:05.25+00' WHERE id = :id;
SELECT journey.enroll('all', :id, '{"amount": 12, "order": {"id": 7}}') IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
-- <id> stands for the contact's id
SELECT regexp_replace(body, '^' || :id || '\|', '<id>|') AS body, recipient FROM journey.outbox;
ROLLBACK;

-- A render error (an unknown variable) fails only that enrollment, with the error in
-- last_error and the timeline; so does a template deleted after activation.
BEGIN;
SELECT journey.create_flow('r', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Code {{ event.code | upcase }} for {{ event.order.id }}"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('r');
SELECT pg_temp.contact('Ok') AS ok, pg_temp.contact('Bad') AS bad \gset
SELECT journey.enroll('r', :ok, '{"code": "x", "order": {"id": 7}}') IS NOT NULL AS enrolled;
SELECT journey.enroll('r', :bad, '{"code": "y"}') IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT body FROM journey.outbox;
SELECT status, last_error FROM journey.enrollments WHERE contact_id = :bad;
SELECT count(*) AS failed_in_timeline FROM journey.timeline(:bad) WHERE kind = 'failed' AND detail IS NOT NULL;
SELECT journey.activate_flow('welcome');
DELETE FROM journey.templates;
SELECT journey.add_to_group(:ok, 'newsletter');
SELECT journey.run_due(10, now() + interval '2 hours');
SELECT journey.run_due(10, now() + interval '4 hours');
SELECT e.status, e.node, e.last_error FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'welcome';
ROLLBACK;
