-- Quotas: settings.sms_quota counts SMS segments, email_quota e-mails, whatsapp_quota WhatsApp
-- messages (only when set); NULL = unlimited; admin e-mails, tasks and webhooks never count. A
-- send the credit cannot cover writes nothing (step `quota`, the enrollment stays at the node),
-- pauses every active flow sending on that channel (paused_reason quota, routes kept) and
-- tells the admin once; add_quota or an UPDATE raising the quota resumes those flows (not the
-- ones paused by hand), and their enrollments go on, each message written once.
-- Each scenario runs in a transaction that is rolled back.
\i tests/pg_regress/include/welcome.sql
UPDATE journey.settings SET admin_email = 'boss@example.com';
-- an e-mail-only flow and a flow sending SMS that is paused by hand
SELECT journey.create_flow('news', '{"triggers": [{"type": "manual"}], "start": "m",
  "nodes": {"m": {"type": "send_email", "subject": "News", "body": "Hello {{ contact.first_name }}"}}}') IS NOT NULL AS created;
SELECT journey.create_flow('promo', '{"triggers": [{"type": "group_joined", "group": "vip"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Promo for {{ contact.first_name }}"}}}') IS NOT NULL AS created;
-- what a flow sends on, as the pause reads it
SELECT f.name, journey._quota_channels(v.definition) AS channels
  FROM journey.flows f JOIN journey.flow_versions v ON v.flow_id = f.id AND v.version = f.version ORDER BY f.name;
-- a contact named first, with a phone of its own and email <first>@example.com
CREATE TEMP SEQUENCE phones;
CREATE FUNCTION pg_temp.person(first text) RETURNS bigint LANGUAGE sql AS $$
  SELECT journey.upsert_contact(jsonb_build_object('first_name', first, 'email', lower(first) || '@example.com',
                                                   'phone', '+1555' || lpad(nextval('phones')::text, 7, '0')))
$$;
CREATE FUNCTION pg_temp.flows() RETURNS TABLE (name text, status text, paused_reason text, routes bigint)
LANGUAGE sql AS $$
  SELECT f.name, f.status, f.paused_reason, (SELECT count(*) FROM journey.flow_triggers t WHERE t.flow_id = f.id)
    FROM journey.flows f ORDER BY f.name
$$;

-- With every quota NULL a batch neither locks nor writes the settings row (xmax stays 0); with
-- a quota set, the first SMS locks it.
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT journey.add_to_group(pg_temp.person('U1'), 'newsletter');
SELECT journey.run_due(100, now());
SELECT xmax = 0 AS settings_untouched FROM journey.settings;
UPDATE journey.settings SET sms_quota = 10;
SELECT journey.add_to_group(pg_temp.person('U2'), 'newsletter');
SELECT journey.run_due(100, now());
SELECT xmax = 0 AS settings_untouched, sms_quota FROM journey.settings;
ROLLBACK;

-- sms_quota 5, 8 contacts, a 1-segment SMS each: 5 SMS written, 3 steps quota, the flow paused
-- for quota with its routes kept, one admin e-mail, credit 0. The e-mail flow goes on; the flow
-- paused by hand stays as it was.
BEGIN;
SELECT journey.activate_flow('welcome'), journey.activate_flow('news'), journey.activate_flow('promo');
SELECT journey.pause_flow('promo');
UPDATE journey.settings SET sms_quota = 5;
SELECT pg_temp.person('C' || i) FROM generate_series(1, 8) i \g /dev/null
INSERT INTO journey.group_members (group_id, contact_id)
SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE g.name = 'newsletter';
SELECT journey.enroll('news', id) IS NOT NULL AS enrolled FROM journey.contacts WHERE first_name = 'C1';
SELECT journey.run_due(100, now());
SELECT channel, count(*) FROM journey.outbox GROUP BY channel ORDER BY channel;
SELECT outcome, count(*) FROM journey.steps GROUP BY outcome ORDER BY outcome;
SELECT * FROM pg_temp.flows();
SELECT sms_quota FROM journey.settings;
SELECT recipient, subject, body FROM journey.outbox WHERE channel = 'admin_email';
-- the refused stay at the SMS node, active, with their seq unchanged
SELECT e.node, e.status, e.seq, count(*) FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
 WHERE f.name = 'welcome' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;
-- paused: nothing runs; a contact joining is enrolled frozen (it runs once the flow resumes)
SELECT journey.run_due(100, now() + interval '10 minutes');
SELECT pg_temp.person('Late') AS late \gset
SELECT journey.add_to_group(:late, 'newsletter');
SELECT count(*) AS late_enrollments FROM journey.enrollments WHERE contact_id = :late;
-- credit back: the quota flow resumes (routes rebuilt), the one paused by hand does not
SELECT journey.add_quota('sms', 10);
SELECT * FROM pg_temp.flows();
-- the three waiting get their SMS, once each, with the key they would have had
SELECT journey.run_due(100, now() + interval '20 minutes');
SELECT count(*) AS sms, count(DISTINCT enrollment_id) AS enrollments,
       count(*) FILTER (WHERE idempotency_key = enrollment_id || ':sms:1') AS first_key
  FROM journey.outbox WHERE channel = 'sms';
SELECT sms_quota FROM journey.settings;
-- and go on to the e-mail (email_quota is NULL: unlimited)
SELECT journey.run_due(100, now() + interval '2 hours');
SELECT channel, count(*) FROM journey.outbox GROUP BY channel ORDER BY channel;
SELECT outcome, count(*) FROM journey.steps GROUP BY outcome ORDER BY outcome;
ROLLBACK;

-- Exhausted again after a resume: paused again, a second admin e-mail; an UPDATE of settings
-- that raises the quota resumes as add_quota does; so does setting it NULL (unlimited). No
-- admin_email: nobody is told, the flow is paused all the same.
BEGIN;
SELECT journey.activate_flow('welcome');
UPDATE journey.settings SET sms_quota = 1;
SELECT journey.add_to_group(pg_temp.person('C' || i), 'newsletter') FROM generate_series(1, 4) i \g /dev/null
SELECT journey.run_due(100, now());
SELECT status, paused_reason FROM journey.flows WHERE name = 'welcome';
UPDATE journey.settings SET sms_quota = 1;
SELECT status, paused_reason FROM journey.flows WHERE name = 'welcome';
SELECT journey.run_due(100, now());
SELECT status, paused_reason FROM journey.flows WHERE name = 'welcome';
SELECT count(*) FILTER (WHERE channel = 'sms') AS sms, count(*) FILTER (WHERE channel = 'admin_email') AS admin
  FROM journey.outbox;
-- lowering a quota (or any other change of settings) resumes nothing
UPDATE journey.settings SET sms_quota = 0, time_zone = 'UTC';
SELECT status, paused_reason FROM journey.flows WHERE name = 'welcome';
UPDATE journey.settings SET sms_quota = NULL, admin_email = NULL;
SELECT status, paused_reason FROM journey.flows WHERE name = 'welcome';
SELECT journey.run_due(100, now());
SELECT count(*) AS sms FROM journey.outbox WHERE channel = 'sms';
SELECT sms_quota FROM journey.settings;
-- no admin_email: paused, nobody told
UPDATE journey.settings SET sms_quota = 0;
SELECT journey.add_to_group(pg_temp.person('D1'), 'newsletter') \g /dev/null
SELECT journey.run_due(100, now());
SELECT status, paused_reason FROM journey.flows WHERE name = 'welcome';
SELECT count(*) AS admin FROM journey.outbox WHERE channel = 'admin_email';
ROLLBACK;

-- A flow with a date trigger sending SMS is paused with the others, its date schedule kept
-- (occurrences due meanwhile are enrolled frozen); resumed, it is scheduled again.
BEGIN;
SELECT journey.create_flow('bday', '{"triggers": [{"type": "date", "field": "birthday"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Happy birthday {{ contact.first_name }}"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('bday'), journey.activate_flow('welcome');
SELECT journey.upsert_contact('{"first_name": "B", "phone": "+15559990000", "birthday": "1990-05-06"}') IS NOT NULL AS contact;
SELECT count(*) AS scheduled FROM journey.date_schedule;
UPDATE journey.settings SET sms_quota = 0;
SELECT journey.add_to_group(pg_temp.person('C1'), 'newsletter');
SELECT journey.run_due(100, now());
SELECT * FROM pg_temp.flows() WHERE name IN ('bday', 'welcome');
SELECT count(*) AS scheduled FROM journey.date_schedule;
SELECT journey.add_quota('sms', 1);
SELECT * FROM pg_temp.flows() WHERE name IN ('bday', 'welcome');
SELECT count(*) AS scheduled FROM journey.date_schedule;
ROLLBACK;

-- A batch that raises runs again one enrollment at a time: the credit is counted as rows are
-- written. sms_quota 3, four SMS due in order, the second poisoned (an outbox trigger raises on
-- it): as one batch the fourth would be refused; one at a time the poisoned one fails and
-- takes no credit, the three others are sent, the credit ends at 0 and nothing is paused.
BEGIN;
CREATE FUNCTION public.poison() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.body LIKE 'Hi P2%' THEN RAISE EXCEPTION 'poisoned'; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER poison BEFORE INSERT ON journey.outbox FOR EACH ROW EXECUTE FUNCTION public.poison();
SELECT journey.activate_flow('welcome');
UPDATE journey.settings SET sms_quota = 3;
SELECT journey.add_to_group(pg_temp.person('P' || i), 'newsletter') FROM generate_series(1, 4) i \g /dev/null
UPDATE journey.enrollments e SET due_at = now() - interval '1 hour' + substr(c.first_name, 2)::int * interval '1 minute'
  FROM journey.contacts c WHERE c.id = e.contact_id;
SELECT journey.run_due(100, now());
SELECT c.first_name, e.status, e.node, left(e.last_error, 60) AS error
  FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id ORDER BY c.first_name;
SELECT count(*) AS sms FROM journey.outbox WHERE channel = 'sms';
SELECT sms_quota, status, paused_reason FROM journey.settings, journey.flows WHERE name = 'welcome';
ROLLBACK;

-- An SMS costs its segments: with 3 left, a 2-segment SMS goes, the next does not; the credit
-- left (1) stays. A flow waiting for e-mail credit resumes only once every channel it sends
-- on has credit.
BEGIN;
SELECT journey.create_flow('long', ('{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "unsubscribe": false, "text": "{{ contact.first_name }} ' || repeat('x', 170) || '", "next": "m"},
            "m": {"type": "send_email", "subject": "s", "body": "b"}}}')::jsonb) IS NOT NULL AS created;
SELECT journey.activate_flow('long');
UPDATE journey.settings SET sms_quota = 3;
SELECT journey.enroll('long', pg_temp.person('L' || i)) IS NOT NULL AS enrolled FROM generate_series(1, 2) i;
SELECT journey.run_due(100, now());
SELECT sms_segments, count(*) FROM journey.outbox WHERE channel = 'sms' GROUP BY 1;
SELECT outcome, count(*) FROM journey.steps GROUP BY outcome ORDER BY outcome;
SELECT sms_quota, status, paused_reason FROM journey.settings, journey.flows WHERE name = 'long';
-- e-mail credit 0 and SMS credit 1: raising the SMS quota is not enough
UPDATE journey.settings SET email_quota = 0;
SELECT journey.add_quota('sms', 1);
SELECT status, paused_reason FROM journey.flows WHERE name = 'long';
SELECT journey.add_quota('email', 5);
SELECT status, paused_reason FROM journey.flows WHERE name = 'long';
SELECT journey.run_due(100, now());
SELECT channel, count(*) FROM journey.outbox WHERE channel <> 'admin_email' GROUP BY channel ORDER BY channel;
SELECT sms_quota, email_quota FROM journey.settings;
ROLLBACK;

-- WhatsApp counts only when whatsapp_quota is set; admin e-mails, tasks and webhooks never
-- count, even with every quota at 0.
BEGIN;
SELECT journey.create_flow('wa', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "send_whatsapp", "text": "Hi {{ contact.first_name }}"}}}') IS NOT NULL AS created;
SELECT journey.create_flow('ops', '{"triggers": [{"type": "manual"}], "start": "n",
  "nodes": {"n": {"type": "notify_admin", "text": "{{ contact.first_name }} joined", "next": "t"},
            "t": {"type": "create_task", "title": "Call {{ contact.first_name }}", "next": "h"},
            "h": {"type": "webhook", "url": "https://hooks.example.com/x"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('wa'), journey.activate_flow('ops');
UPDATE journey.settings SET sms_quota = 0, email_quota = 0;
SELECT journey.enroll('wa', pg_temp.person('W1')) IS NOT NULL AS enrolled;
SELECT journey.enroll('ops', pg_temp.person('O1')) IS NOT NULL AS enrolled;
SELECT journey.run_due(100, now());
SELECT channel, count(*) FROM journey.outbox GROUP BY channel ORDER BY channel;
SELECT sms_quota, email_quota, whatsapp_quota FROM journey.settings;
UPDATE journey.settings SET whatsapp_quota = 1;
SELECT journey.enroll('wa', pg_temp.person('W' || i)) IS NOT NULL AS enrolled FROM generate_series(2, 3) i;
SELECT journey.run_due(100, now());
SELECT count(*) AS whatsapp FROM journey.outbox WHERE channel = 'whatsapp';
SELECT outcome, count(*) FROM journey.steps s JOIN journey.flows f ON f.id = s.flow_id WHERE f.name = 'wa' GROUP BY 1 ORDER BY 1;
SELECT whatsapp_quota FROM journey.settings;
SELECT name, status, paused_reason FROM journey.flows WHERE name IN ('wa', 'ops') ORDER BY name;
ROLLBACK;

-- A flow edited while paused for quota is not resumed: its new version waits for
-- activate_flow, as an edit of an active flow does. (Each statement in its own transaction: an
-- edit is later than the activation. Last in the file: its rows stay.)
SELECT journey.create_flow('edited', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "v1"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('edited');
UPDATE journey.settings SET sms_quota = 0;
SELECT journey.enroll('edited', pg_temp.person('E1')) IS NOT NULL AS enrolled;
SELECT journey.run_due(100, now());
SELECT journey.update_flow('edited', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "v2"}}}');
SELECT journey.add_quota('sms', 5);
SELECT status, paused_reason, version FROM journey.flows WHERE name = 'edited';
SELECT journey.activate_flow('edited');
SELECT journey.run_due(100, now());
SELECT body FROM journey.outbox WHERE channel = 'sms';
UPDATE journey.settings SET sms_quota = NULL;

-- add_quota: returns the credit left; NULL (unlimited) stays NULL; errors name what is wrong.
BEGIN;
SELECT journey.add_quota('sms', 5) AS unlimited;
UPDATE journey.settings SET sms_quota = 2, whatsapp_quota = 0;
SELECT journey.add_quota('sms', 5) AS sms, journey.add_quota('whatsapp', 3) AS whatsapp;
SELECT journey.add_quota('sms', -7) AS taken_away;
SELECT sms_quota, email_quota, whatsapp_quota FROM journey.settings;
ROLLBACK;
-- (each error on its own, nothing changed)
UPDATE journey.settings SET sms_quota = 2, whatsapp_quota = 3;
SELECT journey.add_quota('fax', 1);
SELECT journey.add_quota(NULL, 1);
SELECT journey.add_quota('sms', NULL);
SELECT journey.add_quota('sms', -3);
SELECT journey.add_quota('whatsapp', 2147483647);
SELECT sms_quota, email_quota, whatsapp_quota FROM journey.settings;
UPDATE journey.settings SET sms_quota = NULL, whatsapp_quota = NULL;
