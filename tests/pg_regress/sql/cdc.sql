-- The CDC event table: with settings.cdc_events on, every outbox row (engine batches, test_send,
-- sender verification) writes one journey.outbox_events row in the same transaction, in the
-- Debezium outbox-router shape; off (the default) nothing; claims, reports and deletes of the
-- outbox write none; events are never updated; prune_outbox_events; the publication.
\i tests/pg_regress/include/welcome.sql
SELECT pg_temp.contact('Dana') AS dana \gset
SELECT pg_temp.contact('Eli') AS eli \gset
SELECT pg_temp.contact('Fay') AS fay \gset
SELECT journey.activate_flow('welcome');

-- ---------------------------------------------------------------- off by default
SELECT cdc_events FROM journey.settings;
SELECT journey.add_to_group(:dana, 'newsletter');
SELECT journey.run_due(10, now());
SELECT count(*) AS messages, (SELECT count(*) FROM journey.outbox_events) AS events FROM journey.outbox;

-- ---------------------------------------------------------------- on: one event per message
UPDATE journey.settings SET cdc_events = true;
SELECT journey.add_to_group(:eli, 'newsletter'), journey.add_to_group(:fay, 'newsletter');
-- one engine batch writes both SMS in one statement: two events
SELECT journey.run_due(10, now());
SELECT e.aggregatetype, e.aggregateid = o.contact_id::text AS aggregateid_is_contact, e.type,
       e.payload ->> 'node' AS node, e.payload ->> 'recipient' = o.recipient AS recipient,
       e.payload ->> 'body' AS body, e.payload ->> 'flow' AS flow, e.payload ->> 'idempotency_key' = o.idempotency_key AS key
FROM journey.outbox_events e JOIN journey.outbox o ON o.id = (e.payload ->> 'id')::bigint
ORDER BY o.id;
-- the payload's fields
SELECT jsonb_object_keys(payload) AS key FROM journey.outbox_events ORDER BY (payload ->> 'id')::bigint, 1 LIMIT 18;
-- the e-mails an hour later, a test send and a sender verification: every outbox row has its event
SELECT journey.run_due(10, now() + interval '2 hours');
SELECT journey.test_send('welcome', 'mail', :dana) IS NOT NULL AS test_sent;
SELECT journey.add_sender('billing@example.com', 'Billing') IS NOT NULL AS sender_added;
SELECT e.type, e.aggregateid, e.payload ->> 'node' AS node, (e.payload ->> 'test')::boolean AS test, e.payload -> 'payload' ->> 'kind' AS kind
FROM journey.outbox_events e ORDER BY (e.payload ->> 'id')::bigint;
SELECT count(*) AS messages_since_on,
       count(*) FILTER (WHERE (SELECT count(*) FROM journey.outbox_events e WHERE (e.payload ->> 'id')::bigint = o.id) = 1) AS with_one_event
FROM journey.outbox o WHERE o.contact_id <> :dana OR o.test OR o.channel = 'email';

-- ---------------------------------------------------------------- the same transaction
BEGIN;
SELECT journey.test_send('welcome', 'sms', :eli) IS NOT NULL AS test_sent;
SELECT count(*) AS events_inside FROM journey.outbox_events;
ROLLBACK;
SELECT count(*) AS events_after_rollback FROM journey.outbox_events;

-- ---------------------------------------------------------------- the relay's work writes none
CREATE TEMP TABLE before AS SELECT * FROM journey.outbox_events;
CREATE TEMP TABLE leased AS SELECT id, lease_token FROM journey.claim(NULL, 100);
SELECT count(*) AS claimed FROM leased;
SELECT count(*) FILTER (WHERE journey.mark_sent(id, 'prov-' || id, lease_token)) AS marked FROM leased;
SELECT count(*) FILTER (WHERE journey.report('prov-' || id, 'delivered', 'ev-' || id) IS NOT NULL) AS reported FROM leased;
SELECT (SELECT count(*) FROM journey.outbox_events) AS events,
       NOT EXISTS (SELECT * FROM journey.outbox_events EXCEPT SELECT * FROM before) AS unchanged;

-- ---------------------------------------------------------------- an outbox row's event goes with it
DELETE FROM journey.outbox WHERE test;
SELECT count(*) AS events, count(*) FILTER (WHERE (payload ->> 'test')::boolean) AS test_events FROM journey.outbox_events;
-- erasure: the contact's events hold its address and messages
SELECT journey.forget_contact(:fay);
SELECT count(*) AS events, count(*) FILTER (WHERE aggregateid = :'fay') AS fays FROM journey.outbox_events;

-- ---------------------------------------------------------------- insert-only
UPDATE journey.outbox_events SET type = 'sms';
UPDATE journey.outbox_events SET type = 'sms' WHERE false;

-- ---------------------------------------------------------------- off again
UPDATE journey.settings SET cdc_events = false;
SELECT journey.test_send('welcome', 'sms', :eli) IS NOT NULL AS test_sent;
SELECT count(*) AS events FROM journey.outbox_events;

-- ---------------------------------------------------------------- prune_outbox_events
SELECT journey.prune_outbox_events('1 hour');
SELECT journey.prune_outbox_events(NULL);
SELECT journey.prune_outbox_events('-1 day');
SELECT journey.prune_outbox_events('0');
SELECT count(*) AS events FROM journey.outbox_events;

-- ---------------------------------------------------------------- the publication
SELECT pubname, puballtables, pubinsert, pubupdate, pubdelete, pubtruncate, obj_description(oid, 'pg_publication') IS NOT NULL AS commented
FROM pg_publication;
SELECT * FROM pg_publication_tables;
-- a member of the extension (pg_dump leaves it to CREATE EXTENSION; DROP EXTENSION drops it)
SELECT p.pubname, d.deptype FROM pg_depend d JOIN pg_publication p ON p.oid = d.objid
WHERE d.classid = 'pg_publication'::regclass AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'journey');
SELECT 'journey.outbox_events'::regclass = ANY (extconfig) AS events_dumped FROM pg_extension WHERE extname = 'journey';
