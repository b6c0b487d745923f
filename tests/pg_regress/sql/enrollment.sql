-- Enrollment by each trigger kind: group_joined (only after activation, unless
-- include_existing), form_submitted, event (params checked, contact fields mapped, "where" on the
-- payload), manual (journey.enroll) with the reentry rules; a rolled-back write enrolls nobody.
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below (ids aside: sequences are not rolled back). now() is constant inside a transaction;
-- the virtual clock run_due(n, at) is given now() plus an offset. ON_ERROR_ROLLBACK keeps a
-- scenario going after a statement that is meant to fail; \echo :SQLSTATE prints its code.
\set ON_ERROR_ROLLBACK on
\i tests/pg_regress/include/welcome.sql

-- group_joined: a member who joined before activation is not enrolled, unless the flow is
-- activated with include_existing
BEGIN;
SELECT pg_temp.contact('Early') AS early \gset
SELECT journey.add_to_group(:early, 'newsletter');
SELECT journey.activate_flow('welcome');
SELECT count(*) AS enrollments FROM journey.enrollments;
SELECT journey.pause_flow('welcome');
SELECT journey.activate_flow('welcome', include_existing => true);
SELECT count(*) AS enrollments FROM journey.enrollments WHERE contact_id = :early;
ROLLBACK;

-- a write the app rolls back (here a subtransaction) enrolls nobody
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT pg_temp.contact('Ghost') IS NOT NULL AS created;
DO $$ BEGIN
  PERFORM journey.add_to_group((SELECT id FROM journey.contacts WHERE first_name = 'Ghost'), 'newsletter');
  RAISE EXCEPTION 'app rolls back';
EXCEPTION WHEN raise_exception THEN NULL; END $$;
SELECT count(*) AS enrollments FROM journey.enrollments;
SELECT count(*) AS members FROM journey.group_members;
ROLLBACK;

-- manual (journey.enroll): one active enrollment per (flow, contact) and the reentry rules
BEGIN;
SELECT journey.create_flow('m', '{"triggers": [{"type": "manual"}], "start": "g", "nodes": {"g": {"type": "goal"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('m');
SELECT pg_temp.contact('Re') AS re \gset
-- never (the default): a second enroll while active, and one after completion, do nothing
SELECT journey.enroll('m', :re) IS NOT NULL AS enrolled;
SELECT journey.enroll('m', :re) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT journey.enroll('m', :re) IS NOT NULL AS enrolled;
-- always: enters again after completion, never while active
SELECT journey.update_flow('m', '{"triggers": [{"type": "manual"}], "reentry": "always", "start": "g",
  "nodes": {"g": {"type": "goal", "next": {"to": "g2", "delay": "1 day"}}, "g2": {"type": "exit"}}}') AS version;
SELECT journey.activate_flow('m');
SELECT journey.enroll('m', :re) IS NOT NULL AS enrolled;
SELECT journey.enroll('m', :re) IS NOT NULL AS enrolled_while_active;
SELECT count(*) AS active FROM journey.enrollments WHERE status = 'active';
-- after: not before that long has passed since the last enrollment ended
SELECT journey.update_flow('m', '{"triggers": [{"type": "manual"}], "reentry": {"after": "30 days"}, "start": "g",
  "nodes": {"g": {"type": "goal"}}}') AS version;
SELECT journey.activate_flow('m', in_flight => 'stop');
SELECT journey.enroll('m', :re) IS NOT NULL AS enrolled_moments_after;
UPDATE journey.enrollments SET updated_at = now() - interval '31 days';
SELECT journey.enroll('m', :re) IS NOT NULL AS enrolled_31_days_after;
ROLLBACK;

-- form_submitted: the field map sets contact columns and attributes, the contact is created
-- when missing and matched (email, case-insensitive) the next time, the submission is linked
BEGIN;
INSERT INTO journey.forms (name, field_map) VALUES ('contact-us', '{"Email": "email", "Name": "first_name", "City": "attributes.city"}');
SELECT journey.create_flow('f', '{"triggers": [{"type": "form_submitted", "form": "contact-us"}], "start": "s",
  "nodes": {"s": {"type": "send_email", "subject": "Thanks {{ contact.first_name }}", "body": "You wrote from {{ event.City }}"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('f');
SELECT journey.submit_form('contact-us', '{"Email": "Mia@Example.com", "Name": "Mia", "City": "Iasi"}') AS sid \gset
SELECT first_name, email, attributes->>'city' AS city FROM journey.contacts;
SELECT count(*) AS linked FROM journey.form_submissions s JOIN journey.contacts c ON c.id = s.contact_id WHERE s.id = :sid;
SELECT journey.submit_form('contact-us', '{"Email": "mia@example.com", "Name": "Mia R"}') IS NOT NULL AS submitted;
SELECT count(*) AS contacts FROM journey.contacts;
SELECT first_name FROM journey.contacts;
SELECT journey.run_due(10, now());
SELECT subject, body FROM journey.outbox;
ROLLBACK;

-- event: params are checked (required, JSON type, pattern) and bad input changes nothing;
-- contact_field params are mapped onto the contact; "where" filters on the payload
BEGIN;
SELECT journey.define_event('order_paid', '[{"name": "amount", "type": "number", "required": true},
  {"name": "coupon", "type": "string", "pattern": "^[A-Z0-9]+$"},
  {"name": "city", "type": "string", "contact_field": "attributes.city"}]');
SELECT journey.create_flow('big', '{"triggers": [{"type": "event", "event": "order_paid", "where": {"field": "event.amount", "op": ">", "value": 100}}],
  "start": "s", "nodes": {"s": {"type": "send_sms", "text": "Thanks for {{ event.amount }}"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('big');
SELECT pg_temp.contact('Ion') AS ion \gset
SELECT journey.emit('order_paid', :ion, '{}');
\echo :SQLSTATE
SELECT journey.emit('order_paid', :ion, '{"amount": "lots"}');
\echo :SQLSTATE
SELECT journey.emit('order_paid', :ion, '{"amount": 5, "coupon": "bad one"}');
\echo :SQLSTATE
SELECT journey.emit('no_such_event', :ion);
\echo :SQLSTATE
SELECT count(*) AS events FROM journey.events;
SELECT journey.emit('order_paid', :ion, '{"amount": 50, "city": "Cluj"}') IS NOT NULL AS emitted;
-- amount > 100 does not match
SELECT count(*) AS enrollments FROM journey.enrollments;
SELECT attributes->>'city' AS city FROM journey.contacts;
SELECT journey.emit('order_paid', :ion, '{"amount": 150}') IS NOT NULL AS emitted;
SELECT count(*) AS enrollments FROM journey.enrollments;
SELECT journey.run_due(10, now());
SELECT body FROM journey.outbox;
SELECT journey.define_event('has space', '[]');
\echo :SQLSTATE
ROLLBACK;

-- a rolled-back transaction (not just a subtransaction) enrolls nobody either
SELECT journey.activate_flow('welcome');
BEGIN;
SELECT journey.add_to_group(pg_temp.contact('Ghost'), 'newsletter');
SELECT count(*) AS enrollments_before_rollback FROM journey.enrollments;
ROLLBACK;
SELECT count(*) AS enrollments FROM journey.enrollments;
SELECT count(*) AS members FROM journey.group_members;
