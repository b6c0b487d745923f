-- Definition and data UX (issue 14): Liquid forgives missing data (| default, {% if %}) in
-- contact.attributes and event; a render error says which variable, which node and how to fix
-- it; unknown keys name the nearest known one; a check's message must name a send node of its
-- channel that runs before it; send_sms and send_whatsapp take a template of their channel;
-- upsert_contact refuses an unknown time zone and a birthday not written YYYY-MM-DD, naming
-- the field, with a hint and a SQLSTATE.
\i tests/pg_regress/include/welcome.sql
\set VERBOSITY default

-- ---------------------------------------------------------------- missing data is nil
-- An attribute the contact lacks renders its default; one it has renders itself; {% if %} of
-- a missing attribute or event key is false.
BEGIN;
SELECT journey.create_flow('greet', $${"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms",
                  "text": "Hi {{ contact.attributes.nick | default: 'there' }}{% if contact.attributes.vip %} (VIP){% endif %}{% if event.coupon %}, code {{ event.coupon }}{% endif %}"}}}$$) IS NOT NULL AS created;
SELECT * FROM journey.validate_flow('greet');
SELECT journey.activate_flow('greet');
SELECT journey.upsert_contact('{"first_name": "Anon", "phone": "+15550000001"}') AS anon,
       journey.upsert_contact('{"first_name": "Dee", "phone": "+15550000002", "attributes": {"nick": "Dee", "vip": true}}') AS dee \gset
SELECT journey.enroll('greet', :anon) IS NOT NULL AS enrolled,
       journey.enroll('greet', :dee, '{"coupon": "SAVE10"}') IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT c.first_name, o.body FROM journey.outbox o JOIN journey.contacts c ON c.id = o.contact_id ORDER BY c.first_name;
SELECT status FROM journey.enrollments ORDER BY id;
ROLLBACK;

-- ---------------------------------------------------------------- render errors
-- A variable no contact or event will ever have (an unknown contact column, a top-level name
-- that does not exist) is a validation problem: the flow cannot be activated.
BEGIN;
SELECT journey.create_flow('typo', $${"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Hi {{ contact.nick }}", "next": "t"},
            "t": {"type": "send_sms", "text": "Hi {{ contact.frist_name }} {{ order }}"}}}$$) IS NOT NULL AS created;
SELECT * FROM journey.validate_flow('typo');
SELECT journey.activate_flow('typo');
\echo :SQLSTATE
ROLLBACK;
-- A template (journey.templates) is read when the node runs: there the same mistake fails the
-- enrollment, and last_error names the flow, the node, the field and the variable, and says
-- what to write instead.
BEGIN;
INSERT INTO journey.templates (name, channel, subject, body) VALUES ('nick', 'email', 'Hi', 'Hi {{ contact.nick }}');
SELECT journey.create_flow('typo', $${"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_email", "template": "nick"}}}$$) IS NOT NULL AS created;
SELECT journey.activate_flow('typo');
SELECT journey.upsert_contact('{"first_name": "Typo", "phone": "+15550000003", "email": "typo@example.com"}') AS typo \gset
SELECT journey.enroll('typo', :typo) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT status, node, last_error FROM journey.enrollments;
-- fixed with | default: the next contact gets the message
UPDATE journey.templates SET body = 'Hi {{ contact.attributes.nick | default: contact.first_name }}' WHERE name = 'nick';
SELECT journey.enroll('typo', journey.upsert_contact('{"first_name": "Typo2", "email": "typo2@example.com"}')) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT body FROM journey.outbox;
ROLLBACK;

-- ---------------------------------------------------------------- unknown keys
-- Every node type, edges, split branches and triggers: an unknown key is a problem naming the
-- nearest known one (or listing the known ones when none is near).
BEGIN;
SELECT journey.create_flow('typos', $${"triggers": [{"type": "group_joined", "grup": "vip"}, {"type": "manual", "audience": "all"}, {"type": "contact_updatd"}],
  "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Hi", "unsubscibe": true, "next": {"to": "e", "dealy": "1 day"}},
            "e": {"type": "send_email", "subjct": "Hi", "body": "Hello", "next": "w"},
            "w": {"type": "wait", "delay": "1 day", "colour": "red", "next": "sp"},
            "sp": {"type": "split", "branches": [{"percent": 50, "next": "g"}, {"percnt": 50, "next": "g"}]},
            "g": {"type": "goal", "name": "done", "stag": "won", "next": "x"},
            "x": {"type": "exitt"}}}$$) IS NOT NULL AS created;
SELECT * FROM journey.validate_flow('typos') ORDER BY node, problem;
ROLLBACK;

-- ---------------------------------------------------------------- check messages
-- A check's message must name a send node of its channel (send_sms for check_sms, send_email
-- for check_email) that can run before the check; otherwise the check could only take "no".
BEGIN;
SELECT journey.create_flow('checks', $${"triggers": [{"type": "manual"}], "start": "sms",
  "nodes": {"sms": {"type": "send_sms", "text": "Hi", "next": "mail"},
            "mail": {"type": "send_email", "subject": "Hi", "body": "Hello", "next": "c1"},
            "c1": {"type": "check_sms", "message": "sms", "yes": "c2", "no": "c2"},
            "c2": {"type": "check_sms", "message": "smss", "yes": "c3"},
            "c3": {"type": "check_sms", "message": "mail", "yes": "c4"},
            "c4": {"type": "check_email", "message": "later", "yes": "later"},
            "later": {"type": "send_email", "subject": "Later", "body": "Later", "next": "end"},
            "end": {"type": "exit"}}}$$) IS NOT NULL AS created;
SELECT * FROM journey.validate_flow('checks') ORDER BY node, problem;
ROLLBACK;

-- ---------------------------------------------------------------- sms and whatsapp templates
-- send_sms and send_whatsapp take a template of their channel instead of text (not both, one
-- of them); the template's body is rendered like text.
BEGIN;
INSERT INTO journey.templates (name, channel, body) VALUES
  ('promo_sms', 'sms', 'Hi {{ contact.attributes.nick | default: contact.first_name }}: 10% off'),
  ('promo_wa', 'whatsapp', 'Olá {{ contact.first_name }}');
SELECT journey.create_flow('tpl_bad', $${"triggers": [{"type": "manual"}], "start": "a",
  "nodes": {"a": {"type": "send_sms", "template": "welcome_email", "next": "b"},
            "b": {"type": "send_whatsapp", "template": "promo_sms", "next": "c"},
            "c": {"type": "send_sms", "template": "promo_sms", "text": "Hi", "next": "d"},
            "d": {"type": "send_whatsapp"}}}$$) IS NOT NULL AS created;
SELECT * FROM journey.validate_flow('tpl_bad') ORDER BY node, problem;
SELECT journey.create_flow('tpl', $${"triggers": [{"type": "manual"}], "start": "a",
  "nodes": {"a": {"type": "send_sms", "template": "promo_sms", "sender": "ACME", "next": "b"},
            "b": {"type": "send_whatsapp", "template": "promo_wa"}}}$$) IS NOT NULL AS created;
SELECT * FROM journey.validate_flow('tpl');
SELECT journey.activate_flow('tpl');
SELECT pg_temp.contact('Tina') AS tina \gset
SELECT journey.enroll('tpl', :tina) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT channel, sender, body, sms_segments FROM journey.outbox ORDER BY id;
-- a template deleted after activation fails the enrollment, naming it
DELETE FROM journey.templates WHERE name = 'promo_sms';
SELECT pg_temp.contact('Tom') AS tom \gset
SELECT journey.enroll('tpl', :tom) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT status, node, last_error FROM journey.enrollments WHERE contact_id = :tom;
-- a template's render error names the template
UPDATE journey.templates SET body = 'Olá {{ contact.nick }}' WHERE name = 'promo_wa';
INSERT INTO journey.templates (name, channel, body) VALUES ('promo_sms', 'sms', 'Hi');
SELECT pg_temp.contact('Tia') AS tia \gset
SELECT journey.enroll('tpl', :tia) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT status, node, last_error FROM journey.enrollments WHERE contact_id = :tia;
ROLLBACK;

-- ---------------------------------------------------------------- contact fields
-- An unknown time zone: 22023 naming the field, with a hint (not the column's CHECK).
SELECT journey.upsert_contact('{"email": "zone@example.com", "time_zone": "Mars/Olympus"}');
\echo :SQLSTATE
-- and when updating an existing contact
SELECT journey.upsert_contact('{"email": "zone@example.com"}') IS NOT NULL AS created;
SELECT journey.upsert_contact('{"email": "zone@example.com", "time_zone": "Europe/Pariss"}');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"email": "zone@example.com", "time_zone": "Europe/Paris"}') IS NOT NULL AS updated;
SELECT journey.upsert_contact('{"email": "zone@example.com", "time_zone": null}') IS NOT NULL AS cleared;
-- a birthday not written YYYY-MM-DD: 22007, whatever the server's DateStyle
SET DateStyle = 'ISO, MDY';
SELECT journey.upsert_contact('{"email": "bday@example.com", "birthday": "01/05/1990"}');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"email": "zone@example.com", "birthday": "1990-13-01"}');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"email": "zone@example.com", "birthday": 19900501}');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"email": "zone@example.com", "birthday": "1990-05-01"}') IS NOT NULL AS updated;
SELECT email, birthday, time_zone FROM journey.contacts WHERE email = 'zone@example.com';
SELECT count(*) AS refused_contacts FROM journey.contacts WHERE email = 'bday@example.com';
SET DateStyle = 'ISO, YMD';
-- form submissions go through the same check (their field_map's birthday)
INSERT INTO journey.forms (name, field_map, match_on) VALUES ('signup', '{"mail": "email", "born": "birthday", "tz": "time_zone"}', 'email');
SELECT journey.submit_form('signup', '{"mail": "form@example.com", "born": "5/1/1990"}');
\echo :SQLSTATE
SELECT journey.submit_form('signup', '{"mail": "form@example.com", "tz": "Nowhere"}');
\echo :SQLSTATE
SELECT journey.submit_form('signup', '{"mail": "form@example.com", "born": "1990-05-01", "tz": "Asia/Tokyo"}') IS NOT NULL AS submitted;
SELECT email, birthday, time_zone FROM journey.contacts WHERE email = 'form@example.com';
