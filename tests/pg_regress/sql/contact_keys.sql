-- contacts.external_id is unique through journey.contact_keys (not a unique index on contacts:
-- docs/SCALING.md): the contacts' triggers keep it in the writer's statement, a second contact
-- with a taken external_id is refused (23505, naming the key and its contact), and every
-- lookup by external_id (upsert_contact, forms, record types) reads it.
\set SHOW_CONTEXT never
\set VERBOSITY default
-- keys equal the contacts' external_ids, both ways
CREATE FUNCTION pg_temp.keys_match() RETURNS boolean LANGUAGE sql AS $$
  SELECT NOT EXISTS (SELECT c.external_id, c.id FROM journey.contacts c WHERE c.external_id IS NOT NULL
                     EXCEPT SELECT k.external_id, k.contact_id FROM journey.contact_keys k)
     AND NOT EXISTS (SELECT k.external_id, k.contact_id FROM journey.contact_keys k
                     EXCEPT SELECT c.external_id, c.id FROM journey.contacts c)
$$;

-- inserts: one statement of many contacts, some without an external_id
INSERT INTO journey.contacts (external_id, first_name)
SELECT CASE WHEN i % 2 = 0 THEN 'x-' || i END, 'C' || i FROM generate_series(1, 6) i;
SELECT external_id, contact_id FROM journey.contact_keys ORDER BY contact_id;

-- upsert_contact finds and updates by external_id (no new contact)
SELECT journey.upsert_contact('{"external_id": "x-2", "first_name": "Two"}') AS contact;
SELECT id, first_name FROM journey.contacts WHERE external_id = 'x-2';
-- a new external_id inserts one, with its key
SELECT journey.upsert_contact('{"external_id": "x-7", "first_name": "Seven"}') AS contact;
SELECT count(*) AS contacts, pg_temp.keys_match() AS keys_match FROM journey.contacts;

-- a taken external_id is refused: an insert, an update, a statement giving one key twice
INSERT INTO journey.contacts (external_id, first_name) VALUES ('x-4', 'Again');
UPDATE journey.contacts SET external_id = 'x-4' WHERE id = 1;
INSERT INTO journey.contacts (external_id, first_name) VALUES ('x-8', 'Eight'), ('x-8', 'Eight too');
UPDATE journey.contacts SET email = 'c1@example.com' WHERE id = 1;
-- upsert_contact matches on external_id first: the contact holding x-6 gets the e-mail
SELECT journey.upsert_contact('{"email": "c1@example.com", "external_id": "x-6"}') AS contact;
-- a form matching contact 1 by e-mail may not give it another contact's external_id
INSERT INTO journey.forms (name, field_map) VALUES ('signup', '{"mail": "email", "cid": "external_id"}');
SELECT journey.submit_form('signup', '{"mail": "C1@example.com", "cid": "x-7"}');
-- the error an application sees: unique_violation on contact_keys' primary key
DO $$
DECLARE
    state text; cons text; tbl text;
BEGIN
    INSERT INTO journey.contacts (external_id) VALUES ('x-6');
EXCEPTION WHEN unique_violation THEN
    GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, cons = CONSTRAINT_NAME, tbl = TABLE_NAME;
    RAISE NOTICE 'sqlstate %, constraint %, table %', state, cons, tbl;
END
$$;
SELECT count(*) AS contacts, pg_temp.keys_match() AS keys_match FROM journey.contacts;

-- changing an external_id moves its key; NULL removes it; the freed key may be taken again
UPDATE journey.contacts SET external_id = 'x-40' WHERE external_id = 'x-4';
UPDATE journey.contacts SET external_id = NULL WHERE external_id = 'x-6';
SELECT journey.upsert_contact('{"external_id": "x-4", "first_name": "Four again"}') <> 4 AS new_contact;
UPDATE journey.contacts SET external_id = 'x-6' WHERE id = 1;
-- an update that does not change it, and one of another column, leave the keys alone
UPDATE journey.contacts SET external_id = external_id, first_name = first_name || '.';
SELECT external_id, contact_id FROM journey.contact_keys ORDER BY external_id;
SELECT pg_temp.keys_match() AS keys_match;

-- a rolled-back contact leaves no key; a deleted contact takes its key with it
BEGIN;
INSERT INTO journey.contacts (external_id) VALUES ('x-9');
ROLLBACK;
DELETE FROM journey.contacts WHERE external_id IN ('x-2', 'x-40');
SELECT external_id FROM journey.contact_keys ORDER BY external_id;
SELECT pg_temp.keys_match() AS keys_match;
INSERT INTO journey.contacts (external_id, first_name) VALUES ('x-2', 'Two again'), ('x-9', 'Nine');

-- forms matching on external_id and record types matching on external_id find the contact
INSERT INTO journey.forms (name, field_map, match_on) VALUES ('crm', '{"cid": "external_id", "name": "first_name"}', 'external_id');
SELECT journey.submit_form('crm', '{"cid": "x-9", "name": "Nina"}') IS NOT NULL AS submitted,
       journey.submit_form('crm', '{"cid": "x-10", "name": "Ten"}') IS NOT NULL AS submitted_new;
SELECT s.data->>'cid' AS cid, c.external_id, c.first_name, k.contact_id = c.id AS keyed
  FROM journey.form_submissions s JOIN journey.contacts c ON c.id = s.contact_id
  LEFT JOIN journey.contact_keys k ON k.external_id = s.data->>'cid' ORDER BY s.id;
SELECT count(*) AS ninas FROM journey.contacts WHERE external_id = 'x-9';
SELECT pg_temp.keys_match() AS keys_match;
