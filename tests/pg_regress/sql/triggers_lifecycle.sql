-- The lifecycle triggers: contact_created (INSERT, upsert_contact, a form that creates the
-- contact), contact_updated (a real change of a listed field; the event data says what
-- changed, old and new), group_left (DELETE, remove_from_group; not a deleted contact or group),
-- and "where" on every trigger kind, evaluated in the writer's transaction.
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below (ids aside: sequences are not rolled back). now() is constant inside a transaction;
-- the virtual clock run_due(n, at) is given now().
\set ON_ERROR_ROLLBACK on
\i tests/pg_regress/include/welcome.sql
INSERT INTO journey.forms (name, field_map) VALUES ('signup', '{"Email": "email", "Name": "first_name", "Source": "attributes.source"}');
-- who is enrolled where, and with what event data
CREATE FUNCTION pg_temp.enrolled() RETURNS TABLE (flow text, contact text, data jsonb) LANGUAGE sql AS $$
  SELECT f.name, c.first_name, e.data FROM journey.enrollments e
  JOIN journey.flows f ON f.id = e.flow_id JOIN journey.contacts c ON c.id = e.contact_id
  ORDER BY f.name, c.first_name, e.id
$$;
-- a flow of one e-mail with this trigger and body
CREATE FUNCTION pg_temp.flow(name text, trig jsonb, body text, reentry text DEFAULT 'never') RETURNS void LANGUAGE sql AS $$
  SELECT journey.create_flow(name, jsonb_build_object('triggers', jsonb_build_array(trig), 'reentry', reentry,
    'start', 's', 'nodes', jsonb_build_object('s', jsonb_build_object('type', 'send_email', 'subject', name, 'body', body))));
  SELECT journey.activate_flow(name);
$$;

-- contact_created: an INSERT (one statement, two rows), upsert_contact of a new contact, a form
-- that creates the contact; not upsert_contact or a form matching an existing one. A new
-- contact arrives with its fields (the template reads them) and fires no contact_updated.
BEGIN;
SELECT pg_temp.flow('created', '{"type": "contact_created"}', '{{ event.trigger }}: {{ contact.first_name }} <{{ contact.email }}>{% if contact.attributes.source %} from {{ contact.attributes.source }}{% endif %}');
SELECT pg_temp.flow('updated', '{"type": "contact_updated"}', 'changed');
INSERT INTO journey.contacts (first_name, email) VALUES ('Ann', 'ann@example.com'), ('Bob', 'bob@example.com');
SELECT journey.upsert_contact('{"first_name": "Cy", "email": "cy@example.com", "attributes": {"source": "api"}}') IS NOT NULL AS upserted;
SELECT journey.upsert_contact('{"first_name": "Cyrus", "email": "CY@example.com"}') IS NOT NULL AS upserted_again;
SELECT journey.submit_form('signup', '{"Email": "dee@example.com", "Name": "Dee", "Source": "web"}') IS NOT NULL AS submitted;
SELECT journey.submit_form('signup', '{"Email": "ann@example.com", "Name": "Ann"}') IS NOT NULL AS submitted_existing;
SELECT * FROM pg_temp.enrolled();
SELECT journey.run_due(100, now());
SELECT subject, body FROM journey.outbox ORDER BY body;
-- upsert_contact and the form check a new contact's fields as before, and create nothing then
SELECT journey.upsert_contact('{"first_name": "Eve", "mood": "happy"}');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"first_name": "Eve", "attributes": [1]}');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"first_name": "Eve", "birthday": "not a date"}');
\echo :SQLSTATE
SELECT count(*) AS contacts, count(*) FILTER (WHERE first_name = 'Eve') AS eves FROM journey.contacts;
ROLLBACK;

-- contact_updated: only an UPDATE that really changes a listed field (email, attributes.status).
-- The same value again, an unlisted column, another attribute or updated_at alone: nothing.
-- The template reads the old and new values: event.changed.email.old, and a key with a dot
-- in brackets: event.changed["attributes.status"].new; a field that did not change is not in
-- event.changed (reading it is an error: test it with if).

BEGIN;
SELECT journey.upsert_contact('{"first_name": "Fay", "email": "fay@example.com", "attributes": {"status": "new", "plan": "free"}}') AS fay,
       journey.upsert_contact('{"first_name": "Gus", "email": "gus@example.com"}') AS gus \gset
SELECT pg_temp.flow('changed', '{"type": "contact_updated", "fields": ["email", "attributes.status"]}',
  '{% if event.changed.email %}email {{ event.changed.email.old }} -> {{ event.changed.email.new }}{% endif %}{% if event.changed["attributes.status"] %}status {{ event.changed["attributes.status"].old }} -> {{ event.changed["attributes.status"].new }}{% endif %}', 'always');
UPDATE journey.contacts SET email = 'fay@example.com' WHERE id = :fay;
UPDATE journey.contacts SET first_name = 'Faye' WHERE id = :fay;
UPDATE journey.contacts SET updated_at = now() + interval '1 hour';
SELECT journey.upsert_contact('{"email": "fay@example.com", "attributes": {"status": "new", "plan": "pro"}}') = :fay AS same_contact;
SELECT count(*) AS enrollments FROM journey.enrollments;
UPDATE journey.contacts SET email = 'fay@new.example.com' WHERE id = :fay;
SELECT journey.upsert_contact('{"email": "gus@example.com", "attributes": {"status": "gold"}}') = :gus AS same_contact;
SELECT * FROM pg_temp.enrolled();
SELECT journey.run_due(100, now());
SELECT body FROM journey.outbox ORDER BY body;
-- both fields in one statement: both listed; an attribute removed is a change to null
UPDATE journey.contacts SET email = 'faye@example.com', attributes = attributes - 'status' WHERE id = :fay;
SELECT data FROM journey.enrollments WHERE contact_id = :fay AND status = 'active';
ROLLBACK;

-- contact_updated without fields watches every column (attributes as a whole), not updated_at
-- or created_at; the engine's update_contact node (run as the worker) fires it too.
BEGIN;
SELECT journey.upsert_contact('{"first_name": "Hal", "email": "hal@example.com"}') AS hal \gset
SELECT pg_temp.flow('any_change', '{"type": "contact_updated"}', '{{ event.changed | size }} changed');
UPDATE journey.contacts SET updated_at = now() - interval '1 day', created_at = now() - interval '1 day';
SELECT count(*) AS enrollments FROM journey.enrollments;
SELECT journey.create_flow('setter', '{"triggers": [{"type": "manual"}], "start": "u",
  "nodes": {"u": {"type": "update_contact", "set": {"sms_opt_out": true, "attributes.tier": 2}}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('setter');
SELECT journey.enroll('setter', :hal) IS NOT NULL AS enrolled;
SELECT journey.run_due(100, now());
SELECT * FROM pg_temp.enrolled();
ROLLBACK;

-- a bulk UPDATE is one statement's work: each contact whose listed field changed is enrolled
-- once, also into a flow with two contact_updated triggers that both match
BEGIN;
INSERT INTO journey.contacts (first_name, email, phone)
SELECT 'bulk' || i, 'bulk' || i || '@example.com', '+1555' || lpad(i::text, 7, '0') FROM generate_series(1, 1000) i;
SELECT journey.create_flow('bulk', '{"triggers": [{"type": "contact_updated", "fields": ["email"]},
                                                  {"type": "contact_updated", "fields": ["phone", "email"]}],
  "start": "g", "nodes": {"g": {"type": "goal"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('bulk');
-- odd ones get a new e-mail, even ones the same one
UPDATE journey.contacts SET email = CASE WHEN substr(first_name, 5)::int % 2 = 1 THEN 'new.' ELSE '' END || email
WHERE first_name LIKE 'bulk%';
SELECT count(*) AS enrollments, count(DISTINCT contact_id) AS contacts,
       bool_and(substr(c.first_name, 5)::int % 2 = 1) AS all_odd,
       bool_and(e.data->'changed' ? 'email') AS email_changed
FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id;
ROLLBACK;

-- group_left: a DELETE (two rows, one statement) and remove_from_group enroll; a membership of
-- another group, a contact that was no member, a deleted contact and a deleted group do not.
BEGIN;
INSERT INTO journey.groups (name) VALUES ('gone');
SELECT pg_temp.flow('left', '{"type": "group_left", "group": "vip"}', '{{ contact.first_name }} left {{ event.group }}');
SELECT pg_temp.flow('left_gone', '{"type": "group_left", "group": "gone"}', 'gone');
SELECT count(journey.upsert_contact(jsonb_build_object('first_name', n, 'email', n || '@example.com'))) AS contacts
FROM unnest(ARRAY['Ida', 'Jo', 'Kim', 'Lou', 'Max']) n;
INSERT INTO journey.group_members (group_id, contact_id)
SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE g.name IN ('vip', 'newsletter', 'gone');
DELETE FROM journey.group_members m USING journey.groups g, journey.contacts c
WHERE g.id = m.group_id AND c.id = m.contact_id AND g.name = 'vip' AND c.first_name IN ('Ida', 'Jo');
SELECT journey.remove_from_group((SELECT id FROM journey.contacts WHERE first_name = 'Kim'), 'vip') AS removed;
SELECT journey.remove_from_group((SELECT id FROM journey.contacts WHERE first_name = 'Kim'), 'vip') AS removed_again;
SELECT journey.remove_from_group((SELECT id FROM journey.contacts WHERE first_name = 'Lou'), 'newsletter') AS removed;
DELETE FROM journey.contacts WHERE first_name = 'Lou';
DELETE FROM journey.groups WHERE name = 'gone';
SELECT count(*) AS gone_members FROM journey.group_members m WHERE NOT EXISTS (SELECT 1 FROM journey.groups g WHERE g.id = m.group_id);
SELECT * FROM pg_temp.enrolled();
SELECT journey.run_due(100, now());
SELECT body FROM journey.outbox ORDER BY body;
ROLLBACK;

-- "where" on every kind enrolls only the matching rows, read in the writer's transaction:
-- contact.* (the contact as the write left it) and event.* (the enrollment's event data).
BEGIN;
INSERT INTO journey.event_types (name) VALUES ('purchase');
SELECT pg_temp.flow('w_joined', '{"type": "group_joined", "group": "vip", "where": {"field": "contact.attributes.tier", "op": "=", "value": "gold"}}', 'joined');
SELECT pg_temp.flow('w_form', '{"type": "form_submitted", "form": "signup", "where": {"field": "event.Source", "op": "=", "value": "web"}}', 'form');
SELECT pg_temp.flow('w_event', '{"type": "event", "event": "purchase", "where": {"field": "event.amount", "op": ">", "value": 100}}', 'event');
SELECT pg_temp.flow('w_created', '{"type": "contact_created", "where": {"field": "contact.attributes.source", "op": "=", "value": "web"}}', 'created');
SELECT pg_temp.flow('w_updated', '{"type": "contact_updated", "fields": ["attributes.tier"], "where": {"field": "contact.attributes.tier", "op": "=", "value": "gold"}}', 'updated');
SELECT pg_temp.flow('w_left', '{"type": "group_left", "group": "vip", "where": {"not": {"in_group": "newsletter"}}}', 'left');
-- created: only the web ones (an INSERT of two, and a form creating the contact)
INSERT INTO journey.contacts (first_name, attributes) VALUES ('Nia', '{"source": "web", "tier": "gold"}'), ('Oz', '{"source": "ads"}');
SELECT journey.submit_form('signup', '{"Email": "pia@example.com", "Name": "Pia", "Source": "web"}') IS NOT NULL AS submitted;
SELECT journey.submit_form('signup', '{"Email": "quin@example.com", "Name": "Quin", "Source": "ads"}') IS NOT NULL AS submitted;
-- updated: only to gold
UPDATE journey.contacts SET attributes = attributes || jsonb_build_object('tier', CASE first_name WHEN 'Oz' THEN 'gold' ELSE 'silver' END)
WHERE first_name IN ('Oz', 'Pia');
-- joined: only the gold ones (Nia, Oz), one statement
INSERT INTO journey.group_members (group_id, contact_id)
SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE g.name = 'vip';
-- left: only those not in newsletter (Quin is)
SELECT journey.add_to_group(id, 'newsletter') FROM journey.contacts WHERE first_name = 'Quin';
DELETE FROM journey.group_members m USING journey.groups g WHERE g.id = m.group_id AND g.name = 'vip';
-- event: only the big purchase
SELECT journey.emit('purchase', id, jsonb_build_object('amount', CASE first_name WHEN 'Nia' THEN 500 ELSE 5 END)) IS NOT NULL AS emitted
FROM journey.contacts ORDER BY first_name;
SELECT flow, contact FROM pg_temp.enrolled();
ROLLBACK;

-- "where" reads the changed values: event.changed.<field>.old and .new, also for a field
-- attributes.<key> (event.changed.attributes.status.new: the longest key present wins)
BEGIN;
SELECT journey.upsert_contact('{"first_name": "Rae", "email": "rae@old.example.com", "attributes": {"status": "new"}}') AS rae,
       journey.upsert_contact('{"first_name": "Sam", "email": "sam@example.com", "attributes": {"status": "new"}}') AS sam \gset
SELECT pg_temp.flow('moved', '{"type": "contact_updated", "fields": ["email"],
  "where": {"field": "event.changed.email.old", "op": "contains", "value": "@old."}}', 'moved');
SELECT pg_temp.flow('promoted', '{"type": "contact_updated", "fields": ["attributes", "attributes.status"],
  "where": {"all": [{"field": "event.changed.attributes.status.old", "op": "=", "value": "new"},
                    {"field": "event.changed.attributes.status.new", "op": "=", "value": "gold"}]}}', 'promoted');
UPDATE journey.contacts SET email = replace(email, '@', '@new.');
UPDATE journey.contacts SET attributes = jsonb_build_object('status', CASE first_name WHEN 'Sam' THEN 'gold' ELSE 'silver' END);
SELECT flow, contact, data FROM pg_temp.enrolled();
ROLLBACK;

-- reentry rules still apply: never (the default) enrolls once; always enrolls again only once
-- the previous enrollment ended
BEGIN;
SELECT journey.upsert_contact('{"first_name": "Tea", "email": "tea@example.com"}') AS tea \gset
SELECT pg_temp.flow('once', '{"type": "contact_updated", "fields": ["first_name"]}', 'once');
SELECT journey.create_flow('again', '{"triggers": [{"type": "contact_updated", "fields": ["first_name"]}], "reentry": "always",
  "start": "s", "nodes": {"s": {"type": "send_email", "subject": "again", "body": "{{ event.changed.first_name.new }}",
                                "next": {"to": "g", "delay": "1 hour"}}, "g": {"type": "goal"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('again');
UPDATE journey.contacts SET first_name = 'Tea 2' WHERE id = :tea;
SELECT journey.run_due(100, now());
-- "again" waits an hour: still active, a change enrolls nowhere; "once" has completed
UPDATE journey.contacts SET first_name = 'Tea 3' WHERE id = :tea;
SELECT f.name AS flow, e.data, e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name, e.id;
-- once "again" has ended, the next change enrolls into it again
SELECT journey.run_due(100, now() + interval '2 hours');
UPDATE journey.contacts SET first_name = 'Tea 4' WHERE id = :tea;
SELECT f.name AS flow, e.data, e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name, e.id;
SELECT journey.run_due(100, now() + interval '2 hours');
SELECT subject, body FROM journey.outbox ORDER BY id;
ROLLBACK;

-- a write no flow listens to enrolls nobody and the triggers return at the probe: with the
-- flows paused their routes are gone
BEGIN;
SELECT pg_temp.flow('p1', '{"type": "contact_created"}', 'x');
SELECT pg_temp.flow('p2', '{"type": "contact_updated"}', 'x');
SELECT pg_temp.flow('p3', '{"type": "group_left", "group": "vip"}', 'x');
SELECT journey.pause_flow(n) FROM unnest(ARRAY['p1', 'p2', 'p3']) n;
SELECT journey.upsert_contact('{"first_name": "Uma"}') AS uma \gset
UPDATE journey.contacts SET first_name = 'Uma 2';
SELECT journey.add_to_group(:uma, 'vip');
SELECT journey.remove_from_group(:uma, 'vip');
SELECT count(*) AS enrollments FROM journey.enrollments;
ROLLBACK;

-- the app's role (grant_role app: no privilege on flow_triggers, enrollments or the trigger
-- functions) writes; the triggers, SECURITY DEFINER, enroll all the same
BEGIN;
CREATE ROLE lifecycle_app;
SELECT journey.grant_role('lifecycle_app', 'app');
SELECT pg_temp.flow('a_created', '{"type": "contact_created", "where": {"field": "contact.first_name", "op": "=", "value": "Vic"}}', 'x');
SELECT pg_temp.flow('a_updated', '{"type": "contact_updated", "fields": ["attributes.plan"]}', 'x');
SELECT pg_temp.flow('a_left', '{"type": "group_left", "group": "vip"}', 'x');
SET ROLE lifecycle_app;
SELECT journey.upsert_contact('{"first_name": "Vic", "email": "vic@example.com"}') AS vic \gset
SELECT journey.upsert_contact('{"email": "vic@example.com", "attributes": {"plan": "pro"}}') = :vic AS same_contact;
SELECT journey.add_to_group(:vic, 'vip');
DELETE FROM journey.group_members;
RESET ROLE;
SELECT flow, contact, data FROM pg_temp.enrolled();
ROLLBACK;
