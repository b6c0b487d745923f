-- Authoring: preview_update (compared with what update_flow + activate_flow(continue) then
-- do), test_send (rendered by the engine's send code, claimable, invisible to stats), rename,
-- copy and delete of flows (a deleted flow's messages keep its name), retry_enrollment; stats
-- on paused and archived flows; every bad input with its SQLSTATE and hint, changing nothing.
-- Scenarios run in transactions that are rolled back; errors each in their own statement.
\i tests/pg_regress/include/welcome.sql
SELECT pg_temp.contact('Dana') AS dana \gset
SELECT pg_temp.contact('Eli') AS eli \gset
SELECT pg_temp.contact('Fay') AS fay \gset
-- welcome without its e-mail node
\set v2 '{"triggers": [{"type": "group_joined", "group": "newsletter"}], "start": "sms", "nodes": {"sms": {"type": "send_sms", "text": "Hello {{ contact.first_name }}", "next": "won"}, "won": {"type": "goal", "name": "welcomed"}}}'

-- ---------------------------------------------------------------- preview_update
BEGIN;
SELECT journey.activate_flow('welcome');
-- no enrollment: nothing to preview
SELECT * FROM journey.preview_update('welcome', :'v2');
-- Dana and Eli got the SMS and wait for "mail"; Fay waits for "sms"
SELECT journey.add_to_group(:dana, 'newsletter'), journey.add_to_group(:eli, 'newsletter');
SELECT journey.run_due(100, now());
SELECT journey.add_to_group(:fay, 'newsletter');
SELECT * FROM journey.preview_update('welcome', :'v2');
CREATE TEMP TABLE preview AS SELECT * FROM journey.preview_update('welcome', :'v2');
-- the preview wrote nothing
SELECT version, status FROM journey.flows WHERE name = 'welcome';
SELECT journey.update_flow('welcome', :'v2');
-- frozen (the flow is paused, edited): the same preview
SELECT * FROM journey.preview_update('welcome', :'v2');
SELECT journey.activate_flow('welcome', in_flight => 'continue');
-- what activation did, node by node, beside what the preview said
SELECT p.node, p.waiting, p.effect,
       count(*) FILTER (WHERE e.status = 'active') AS continued,
       count(*) FILTER (WHERE e.status = 'stopped') AS stopped,
       CASE WHEN p.effect = 'continue' THEN count(*) FILTER (WHERE e.status = 'active') = p.waiting
            ELSE count(*) FILTER (WHERE e.status = 'stopped') = p.waiting END AS as_previewed
FROM preview p JOIN journey.enrollments e ON e.node = p.node
GROUP BY p.node, p.waiting, p.effect ORDER BY p.node;
ROLLBACK;

-- ---------------------------------------------------------------- test_send
BEGIN;
UPDATE journey.settings SET admin_email = 'boss@example.com', quiet_hours_start = '00:00', quiet_hours_end = '23:59',
    sms_quota = 0, email_quota = 0, whatsapp_quota = 0;
SELECT journey.create_flow('ops', '{"triggers": [{"type": "manual"}], "start": "sms", "nodes": {
  "sms":   {"type": "send_sms", "text": "Hi {{ contact.first_name }} ({{ flow.name }})", "sender": "ACME", "unsubscribe": true, "next": "mail"},
  "mail":  {"type": "send_email", "template": "welcome_email", "next": "wa"},
  "wa":    {"type": "send_whatsapp", "text": "WA {{ contact.first_name }}", "next": "boss"},
  "boss":  {"type": "notify_admin", "subject": "Lead", "text": "{{ contact.first_name }} signed up", "next": "pause"},
  "pause": {"type": "wait", "delay": "1 hour", "next": "task"},
  "task":  {"type": "create_task", "title": "Call"}}}') AS ops \gset
-- a draft flow can be tested; each node writes one test row (quiet hours do not hold the SMS)
SELECT journey.test_send('ops', 'sms', :dana) IS NOT NULL AS sms,
       journey.test_send('ops', 'mail', :dana) IS NOT NULL AS mail,
       journey.test_send('ops', 'wa', :dana) IS NOT NULL AS wa,
       journey.test_send('ops', 'boss', :dana) IS NOT NULL AS boss;
SELECT channel, node, flow_id = :ops AS of_ops, enrollment_id, recipient = (SELECT phone FROM journey.contacts WHERE id = :dana) AS to_phone,
       recipient, sender, subject, body, sms_segments, not_before, status, test, idempotency_key LIKE 'test:%' AS test_key
FROM journey.outbox ORDER BY id;
-- to an explicit recipient
SELECT journey.test_send('ops', 'mail', :eli, 'qa@example.com') AS qa \gset
SELECT recipient, subject, body, test FROM journey.outbox WHERE id = :qa;
-- opted out: refused without a recipient (nothing written), sent to an explicit one
UPDATE journey.contacts SET sms_opt_out = true WHERE id = :fay;
SAVEPOINT s;
SELECT journey.test_send('ops', 'sms', :fay);
\echo :SQLSTATE
ROLLBACK TO s;
SELECT journey.test_send('ops', 'sms', :fay, '+15550000999') IS NOT NULL AS sent_to_qa;
SELECT recipient, body FROM journey.outbox WHERE contact_id = :fay;
-- nothing enrolled, no step, no quota counted; stats and the timeline do not see them
SELECT journey.activate_flow('ops');
SELECT (SELECT count(*) FROM journey.enrollments) AS enrollments, (SELECT count(*) FROM journey.steps) AS steps,
       (SELECT row(sms_quota, email_quota, whatsapp_quota)::text FROM journey.settings) AS quotas,
       (SELECT status FROM journey.flows WHERE name = 'ops') AS ops_status;
SELECT node, reached, waiting FROM journey.flow_stats('ops');
SELECT flow, entered FROM journey.flow_overview WHERE flow = 'ops';
SELECT count(*) AS timeline_rows FROM journey.timeline(:dana);
-- relays claim them like any message, test column included
SELECT channel, test FROM journey.claim(ARRAY['sms', 'email', 'whatsapp', 'admin_email']) ORDER BY id;
ROLLBACK;

-- ---------------------------------------------------------------- rename, copy, delete
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT journey.add_to_group(:dana, 'newsletter');
SELECT journey.run_due(100, now());
SELECT journey.rename_flow('welcome', 'hello');
SELECT journey.rename_flow('hello', 'hello');
SELECT name, status, version FROM journey.flows;
-- the enrollment follows (by id), and templates see the new name
SELECT journey.run_due(100, now() + interval '2 hours');
SELECT body FROM journey.outbox WHERE channel = 'email';
SELECT journey.copy_flow('hello', 'hello_copy') AS copy \gset
SELECT name, status, version FROM journey.flows ORDER BY id;
SELECT (SELECT definition FROM journey.flow_versions WHERE flow_id = :copy AND version = 1)
     = (SELECT v.definition FROM journey.flow_versions v JOIN journey.flows f ON f.id = v.flow_id AND v.version = f.version WHERE f.name = 'hello') AS same_definition;
-- a draft goes at once; an archived flow goes with its history, its messages stay named
SELECT journey.delete_flow('hello_copy');
SELECT journey.archive_flow('hello');
SELECT journey.delete_flow('hello');
SELECT count(*) AS flows FROM journey.flows;
SELECT (SELECT count(*) FROM journey.flow_versions) AS versions, (SELECT count(*) FROM journey.enrollments) AS enrollments,
       (SELECT count(*) FROM journey.steps) AS steps;
SELECT o.channel, coalesce(f.name, o.flow_name) AS flow FROM journey.outbox o LEFT JOIN journey.flows f ON f.id = o.flow_id ORDER BY o.id;
SELECT kind, flow, node, detail FROM journey.timeline(:dana);
ROLLBACK;

-- ---------------------------------------------------------------- retry_enrollment
BEGIN;
SELECT journey.create_flow('retry', '{"triggers": [{"type": "manual"}], "reentry": "always", "start": "hi", "nodes": {
  "hi":   {"type": "send_sms", "text": "Hi", "next": "mail"},
  "mail": {"type": "send_email", "template": "later", "next": "won"},
  "won":  {"type": "goal", "name": "done"}}}');
INSERT INTO journey.templates (name, subject, body) VALUES ('later', 'Later', 'Hello {{ contact.first_name }}');
SELECT journey.activate_flow('retry');
SELECT journey.enroll('retry', :dana) AS e \gset
-- the template "later" goes missing: the enrollment fails at mail
DELETE FROM journey.templates WHERE name = 'later';
SELECT journey.run_due(100, now());
SELECT status, node, last_error FROM journey.enrollments WHERE id = :e;
-- fixed: the template is back
INSERT INTO journey.templates (name, subject, body) VALUES ('later', 'Later', 'Hello {{ contact.first_name }}');
SELECT journey.retry_enrollment(:e);
SELECT status, node, attempts, last_error FROM journey.enrollments WHERE id = :e;
SELECT journey.run_due(100, now());
SELECT status, node FROM journey.enrollments WHERE id = :e;
SELECT node, outcome FROM journey.steps WHERE enrollment_id = :e ORDER BY id;
SELECT channel, body FROM journey.outbox WHERE enrollment_id = :e ORDER BY id;
ROLLBACK;

-- a failed enrollment moves onto the current version
BEGIN;
SELECT journey.create_flow('retry', '{"triggers": [{"type": "manual"}], "start": "mail", "nodes": {
  "mail": {"type": "send_email", "template": "later"}}}');
INSERT INTO journey.templates (name, subject, body) VALUES ('later', 'Later', 'Hello');
SELECT journey.activate_flow('retry');
SELECT journey.enroll('retry', :dana) AS e \gset
DELETE FROM journey.templates WHERE name = 'later';
SELECT journey.run_due(100, now());
SELECT version, status FROM journey.enrollments WHERE id = :e;
SELECT journey.update_flow('retry', '{"triggers": [{"type": "manual"}], "start": "mail", "nodes": {
  "mail": {"type": "send_email", "subject": "Fixed", "body": "fixed"}}}');
SELECT journey.activate_flow('retry');
SELECT journey.retry_enrollment(:e);
SELECT journey.run_due(100, now());
SELECT version, status FROM journey.enrollments WHERE id = :e;
SELECT subject FROM journey.outbox WHERE enrollment_id = :e;
ROLLBACK;

-- a fork's branch is not retried alone; its enrollment, once failed, waits at its fork again
-- while its failed branches run again (and then completes)
BEGIN;
INSERT INTO journey.templates (name, subject, body) VALUES ('later', 'Later', 'Hello');
SELECT journey.create_flow('forked', '{"triggers": [{"type": "manual"}], "start": "f", "nodes": {
  "f":    {"type": "fork", "next": ["mail", "w"]},
  "mail": {"type": "send_email", "template": "later"},
  "w":    {"type": "wait", "delay": "1 hour", "next": "won"},
  "won":  {"type": "goal", "name": "done"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('forked');
SELECT journey.enroll('forked', :dana) AS parent \gset
DELETE FROM journey.templates WHERE name = 'later';
SELECT journey.run_due(100, now());
SELECT journey.run_due(100, now());
SELECT id = :parent AS is_parent, node, status FROM journey.enrollments ORDER BY id;
SELECT e.id AS branch FROM journey.enrollments e WHERE e.parent_id = :parent AND e.status = 'failed' \gset
SAVEPOINT s;
SELECT journey.retry_enrollment(:branch);
\echo :SQLSTATE
ROLLBACK TO s;
-- the other branch ends: the enrollment fails (a branch failed)
SELECT journey.run_due(100, now() + interval '2 hours');
SELECT id = :parent AS is_parent, node, status, last_error FROM journey.enrollments ORDER BY id;
INSERT INTO journey.templates (name, subject, body) VALUES ('later', 'Later', 'Hello');
SELECT journey.retry_enrollment(:parent);
SELECT id = :parent AS is_parent, node, status, due_at = 'infinity' AS due_never, last_error FROM journey.enrollments ORDER BY id;
SELECT journey.run_due(100, now());
SELECT id = :parent AS is_parent, node, status FROM journey.enrollments ORDER BY id;
SELECT channel, subject FROM journey.outbox;
ROLLBACK;

-- ---------------------------------------------------------------- stats on paused and archived flows
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT journey.add_to_group(:dana, 'newsletter'), journey.add_to_group(:eli, 'newsletter');
SELECT journey.run_due(100, now());
SELECT journey.run_due(100, now() + interval '2 hours');
SELECT journey.add_to_group(:fay, 'newsletter');
SELECT journey.run_due(100, now());
SELECT journey.pause_flow('welcome');
SELECT * FROM journey.flow_stats('welcome');
SELECT * FROM journey.goal_stats('welcome');
SELECT * FROM journey.flow_overview;
SELECT kind, flow, node, detail FROM journey.timeline(:fay);
SELECT journey.archive_flow('welcome');
SELECT * FROM journey.flow_stats('welcome');
SELECT * FROM journey.goal_stats('welcome');
SELECT * FROM journey.flow_overview;
SELECT kind, flow, node, detail FROM journey.timeline(:fay);
ROLLBACK;

-- ---------------------------------------------------------------- bad input: SQLSTATE, hint, nothing changed
SELECT journey.create_flow('other', '{"triggers": [{"type": "manual"}], "start": "w", "nodes": {"w": {"type": "wait", "delay": "1 hour"}}}');
SELECT journey.create_flow('failing', '{"triggers": [{"type": "manual"}], "reentry": "always", "start": "mail", "nodes": {
  "mail": {"type": "send_email", "template": "missing"}}}');
INSERT INTO journey.templates (name, subject, body) VALUES ('missing', 'S', 'B');
SELECT journey.activate_flow('failing');
SELECT journey.activate_flow('welcome');
SELECT journey.enroll('failing', :eli) AS failed \gset
SELECT journey.add_to_group(:dana, 'newsletter');
DELETE FROM journey.templates WHERE name = 'missing';
SELECT journey.run_due(100, now());
SELECT journey.enroll('failing', :eli) AS active_again \gset
SELECT e.id AS running FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'welcome' \gset
CREATE FUNCTION pg_temp.contents() RETURNS TABLE (tbl text, n bigint, digest text) LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c
            WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            ORDER BY 1 LOOP
    RETURN QUERY EXECUTE format('SELECT %L::text, count(*), md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM journey.%I x',
                                t, E'\n', '', t);
  END LOOP;
END $$;
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.contents();
SELECT * FROM journey.preview_update('nope', :'v2');
\echo :SQLSTATE
SELECT * FROM journey.preview_update('welcome', '[1]');
\echo :SQLSTATE
SELECT * FROM journey.preview_update('welcome', NULL);
\echo :SQLSTATE
SELECT journey.test_send('nope', 'sms', :dana);
\echo :SQLSTATE
SELECT journey.test_send('welcome', 'nope', :dana);
\echo :SQLSTATE
SELECT journey.test_send('welcome', 'won', :dana);
\echo :SQLSTATE
SELECT journey.test_send('welcome', 'sms', 999999);
\echo :SQLSTATE
SELECT journey.test_send('welcome', 'sms', :dana, ' ');
\echo :SQLSTATE
SELECT journey.test_send('failing', 'mail', :dana);
\echo :SQLSTATE
SELECT journey.rename_flow('nope', 'x');
\echo :SQLSTATE
SELECT journey.rename_flow('welcome', 'other');
\echo :SQLSTATE
SELECT journey.rename_flow('welcome', '');
\echo :SQLSTATE
SELECT journey.copy_flow('welcome', 'other');
\echo :SQLSTATE
SELECT journey.copy_flow('nope', 'x');
\echo :SQLSTATE
SELECT journey.delete_flow('welcome');
\echo :SQLSTATE
SELECT journey.delete_flow('nope');
\echo :SQLSTATE
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT journey.delete_flow('other');
\echo :SQLSTATE
ROLLBACK;
SELECT journey.retry_enrollment(:running);
\echo :SQLSTATE
SELECT journey.retry_enrollment(999999);
\echo :SQLSTATE
SELECT journey.retry_enrollment(NULL);
\echo :SQLSTATE
SELECT journey.retry_enrollment(:failed);
\echo :SQLSTATE
-- nothing changed
SELECT b.tbl, b.n, a.n FROM before b JOIN pg_temp.contents() a USING (tbl)
WHERE a.digest IS DISTINCT FROM b.digest ORDER BY 1;
-- a failed enrollment of a paused flow; a preview of an archived flow
SELECT journey.pause_flow('failing');
SELECT journey.retry_enrollment(:failed);
\echo :SQLSTATE
SELECT journey.archive_flow('welcome');
SELECT * FROM journey.preview_update('welcome', :'v2');
\echo :SQLSTATE
