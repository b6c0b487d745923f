-- Phones are stored in E.164 form (+<country code><number>): a national number gets
-- settings.default_country's calling code (its trunk prefix dropped); spaces, dashes, dots and
-- brackets are dropped; a leading 00 is +. Text that is not a phone number is an error (22023)
-- naming the value; so is a national number while default_country is unset. Look-ups by phone
-- (upsert_contact, forms matched on phone) normalize the value they look up. SMS go to the
-- stored phone.
-- ON_ERROR_ROLLBACK keeps a scenario going after a statement that is meant to fail;
-- \echo :SQLSTATE prints its code.
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';

-- default_country unset (the default): international numbers in any format are stored in
-- E.164; a national number is an error whose hint says to set default_country
BEGIN;
SELECT default_country FROM journey.settings;
INSERT INTO journey.contacts (first_name, phone) VALUES
  ('Plain', '+15550001'), ('Spaced', '+1 (555) 000-0002'), ('Zeros', '0040 721.000.003'),
  ('Trunk', '+44 (0)20 7946 0958'), ('None', NULL), ('Blank', '  ');
SELECT first_name, phone FROM journey.contacts ORDER BY id;
INSERT INTO journey.contacts (first_name, phone) VALUES ('National', '050-1234567');
\echo :SQLSTATE
ROLLBACK;

-- Errors: letters, too few or too many digits, other characters; each names the value
BEGIN;
INSERT INTO journey.contacts (phone) VALUES ('call me maybe');
\echo :SQLSTATE
INSERT INTO journey.contacts (phone) VALUES ('+1555');
\echo :SQLSTATE
INSERT INTO journey.contacts (phone) VALUES ('+1234567890123456');
\echo :SQLSTATE
INSERT INTO journey.contacts (phone) VALUES ('+972#50');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"first_name": "Bad", "phone": "+1555Bad"}');
\echo :SQLSTATE
SELECT count(*) AS contacts FROM journey.contacts;
ROLLBACK;

-- With default_country IL: national numbers (INSERT, UPDATE, upsert_contact) get +972 and lose
-- the trunk 0; an update to the same number in another format finds and keeps the contact
BEGIN;
UPDATE journey.settings SET default_country = 'IL';
INSERT INTO journey.contacts (first_name, phone) VALUES ('Dana', '050-1234567') RETURNING phone;
SELECT journey.upsert_contact('{"first_name": "Eli", "phone": "(052) 765.4321"}') AS eli \gset
SELECT first_name, phone FROM journey.contacts ORDER BY id;
-- the same number written three ways finds Dana
SELECT journey.upsert_contact('{"phone": "+972 50 123 4567", "last_name": "Levi"}') = (SELECT id FROM journey.contacts WHERE first_name = 'Dana') AS same,
       journey.upsert_contact('{"phone": "0501234567", "attributes": {"vip": true}}') = (SELECT id FROM journey.contacts WHERE first_name = 'Dana') AS same,
       journey.upsert_contact('{"phone": "00972-50-1234567"}') = (SELECT id FROM journey.contacts WHERE first_name = 'Dana') AS same;
SELECT first_name, last_name, phone, attributes FROM journey.contacts WHERE first_name = 'Dana';
-- UPDATE OF phone normalizes; an update of another column leaves the phone alone
UPDATE journey.contacts SET phone = '054 111 2222' WHERE id = :eli RETURNING phone;
UPDATE journey.contacts SET phone = 'not a phone' WHERE id = :eli;
\echo :SQLSTATE
UPDATE journey.contacts SET first_name = 'Elisha' WHERE id = :eli RETURNING first_name, phone;
-- another country's number is written in full
INSERT INTO journey.contacts (first_name, phone) VALUES ('Ion', '+40 721 000 002') RETURNING phone;
-- NANP: ten digits, an optional leading 1
UPDATE journey.settings SET default_country = 'US';
INSERT INTO journey.contacts (first_name, phone) VALUES ('Al', '(555) 000-0009'), ('Bo', '1-555-000-0010') RETURNING phone;
INSERT INTO journey.contacts (first_name, phone) VALUES ('Cy', '555-0011');
\echo :SQLSTATE
ROLLBACK;

-- Bulk inserts of E.164 numbers skip the trigger (its WHEN clause): no call to its function
-- (the calls this transaction made, before and after)
BEGIN;
CREATE FUNCTION pg_temp.calls() RETURNS bigint LANGUAGE sql AS $$
  SELECT coalesce((SELECT calls FROM pg_stat_xact_user_functions WHERE schemaname = 'journey' AND funcname = '_on_contact_phone'), 0)
$$;
SELECT pg_temp.calls() AS before \gset
INSERT INTO journey.contacts (phone) SELECT '+1555000' || lpad(i::text, 4, '0') FROM generate_series(1, 100) i;
SELECT pg_temp.calls() - :before AS trigger_calls;
INSERT INTO journey.contacts (phone) VALUES ('+1 555 000 0200'), (NULL);
SELECT pg_temp.calls() - :before AS trigger_calls;
ROLLBACK;

-- A form matched on phone finds the contact whatever the format; the SMS goes to the stored
-- phone
BEGIN;
UPDATE journey.settings SET default_country = 'IL';
INSERT INTO journey.forms (name, field_map, match_on) VALUES ('callback', '{"Phone": "phone", "Name": "first_name"}', 'phone');
SELECT journey.upsert_contact('{"first_name": "Dana", "phone": "+972501234567"}') AS dana \gset
SELECT journey.create_flow('call', '{"triggers": [{"type": "form_submitted", "form": "callback"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "We will call you", "sender": "ACME"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('call');
SELECT journey.submit_form('callback', '{"Phone": "050-123-4567", "Name": "Dana L"}') IS NOT NULL AS submitted;
SELECT contact_id = :dana AS same_contact FROM journey.form_submissions;
SELECT count(*) AS contacts FROM journey.contacts;
SELECT journey.run_due(10, now());
SELECT recipient, sender, body FROM journey.outbox;
-- a new number creates a contact with the number in E.164
SELECT journey.submit_form('callback', '{"Phone": "03 123 4567", "Name": "Office"}') IS NOT NULL AS submitted;
SELECT first_name, phone FROM journey.contacts ORDER BY id;
-- a submission with a phone that is not one
SELECT journey.submit_form('callback', '{"Phone": "tomorrow", "Name": "Late"}');
\echo :SQLSTATE
ROLLBACK;

-- The app role: upsert_contact normalizes the number it looks up (EXECUTE on journey._e164)
CREATE ROLE regress_phones_app;
SELECT journey.grant_role('regress_phones_app', 'app');
BEGIN;
UPDATE journey.settings SET default_country = 'IL';
SET LOCAL ROLE regress_phones_app;
SELECT journey.upsert_contact('{"first_name": "App", "phone": "050-7654321"}') = journey.upsert_contact('{"phone": "+972507654321", "last_name": "User"}') AS same;
INSERT INTO journey.contacts (first_name, phone) VALUES ('Direct', '052 000 0000') RETURNING phone;
RESET ROLE;
SELECT first_name, last_name, phone FROM journey.contacts ORDER BY id;
ROLLBACK;
DROP OWNED BY regress_phones_app;
DROP ROLE regress_phones_app;

-- journey._e164 itself: NULL for NULL or blank text; the country's case does not matter
SELECT journey._e164(NULL, 'IL') AS "null", journey._e164('', 'IL') AS blank,
       journey._e164('050-1234567', 'il') AS il, journey._e164('0721 000 002', 'RO') AS ro,
       journey._e164('+1 555 0001', NULL) AS intl;
SELECT journey._e164('050-1234567', 'ZZ');
\echo :SQLSTATE
