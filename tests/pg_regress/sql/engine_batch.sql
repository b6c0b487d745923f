-- Rows the engine meets that it did not write: an enrollment without its contact or its
-- version (enrollments and steps carry no foreign keys, for speed) fails alone; an outbox key
-- written before keeps the first row; deleting a contact or a flow deletes its enrollments and
-- steps (triggers do the cascading).
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below (ids aside: sequences are not rolled back). now() is constant inside a transaction;
-- the virtual clock run_due(n, at) is given now().
\i tests/pg_regress/include/welcome.sql

-- Deleting a contact deletes its enrollments and steps; deleting a flow deletes its own.
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT pg_temp.contact('Dana') AS dana, pg_temp.contact('Ion') AS ion \gset
SELECT journey.add_to_group(c, 'newsletter') FROM unnest(ARRAY[:dana, :ion]::bigint[]) c;
SELECT journey.run_due(100, now());
SELECT count(*) AS steps FROM journey.steps;
DELETE FROM journey.contacts WHERE id = :dana;
SELECT (SELECT count(*) FROM journey.enrollments WHERE contact_id = :dana) AS enrollments_of_dana,
       (SELECT count(*) FROM journey.steps WHERE contact_id = :dana) AS steps_of_dana,
       (SELECT count(*) FROM journey.enrollments) AS enrollments;
DELETE FROM journey.flows WHERE name = 'welcome';
SELECT (SELECT count(*) FROM journey.enrollments) AS enrollments, (SELECT count(*) FROM journey.steps) AS steps;
ROLLBACK;

-- Enrollments written by hand for a contact or a version that does not exist fail alone; the
-- rest of the batch advances.
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT pg_temp.contact('Dana') AS dana, pg_temp.contact('Ion') AS ion, pg_temp.contact('Noa') AS noa \gset
SELECT journey.add_to_group(c, 'newsletter') FROM unnest(ARRAY[:dana, :ion]::bigint[]) c;
INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at)
SELECT id, 1, 999999, 'sms', now() FROM journey.flows WHERE name = 'welcome'
UNION ALL SELECT id, 7, :noa, 'sms', now() FROM journey.flows WHERE name = 'welcome';
SELECT journey.run_due(100, now());
SELECT status, last_error FROM journey.enrollments WHERE contact_id = 999999;
SELECT status, last_error FROM journey.enrollments WHERE contact_id = :noa;
SELECT body FROM journey.outbox WHERE contact_id = :dana;
ROLLBACK;

-- The engine inserts outbox rows without ON CONFLICT (keys cannot repeat: they commit with
-- the enrollment's seq); should one exist anyway, the insert is repeated with ON CONFLICT DO
-- NOTHING in the same batch and the first row wins.
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT pg_temp.contact('Dana') AS dana, pg_temp.contact('Ion') AS ion \gset
SELECT journey.add_to_group(c, 'newsletter') FROM unnest(ARRAY[:dana, :ion]::bigint[]) c;
INSERT INTO journey.outbox (idempotency_key, channel, contact_id, body)
SELECT id || ':sms:1', 'sms', contact_id, 'written before' FROM journey.enrollments WHERE contact_id = :dana;
SELECT journey.run_due(100, now());
SELECT body FROM journey.outbox WHERE contact_id = :dana;
SELECT body FROM journey.outbox WHERE contact_id = :ion;
SELECT count(*) AS active_at_mail FROM journey.enrollments WHERE node = 'mail' AND status = 'active';
ROLLBACK;
