-- Inbound SMS (journey.receive_sms, sql/inbound.sql): the extension defines the event type
-- sms_received; a text from a contact's phone (normalized to E.164 like stored phones) becomes
-- that event for every contact with the phone, enrolling into event flows and waking wait_event
-- nodes; STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT (any case and spacing) set sms_opt_out
-- first; a repeated provider_event_id records nothing; an unknown phone, a short code or an
-- alphanumeric sender records nothing. Relay roles may call it; the event type stays out of
-- dumps (CREATE EXTENSION makes it).
\set ON_ERROR_ROLLBACK on
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';

SELECT name, params FROM journey.event_types WHERE name = 'sms_received';
SELECT c.extcondition[array_position(c.extconfig, 'journey.event_types'::regclass)] AS dump_condition
  FROM pg_extension c WHERE c.extname = 'journey';

-- an event flow and a wait_event react to the reply; the text is the event's
BEGIN;
SELECT journey.create_flow('replied', '{"triggers": [{"type": "event", "event": "sms_received"}], "start": "t",
  "nodes": {"t": {"type": "create_task", "title": "Reply from {{ contact.first_name }}: {{ event.text }}"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('replied');
SELECT journey.create_flow('ask', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait_event", "event": "sms_received", "timeout": "3 days", "yes": "won", "no": "lost"},
            "won": {"type": "goal"}, "lost": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('ask');
SELECT journey.upsert_contact('{"first_name": "Dana", "phone": "+1 555 000 0001"}') AS dana \gset
SELECT journey.enroll('ask', :dana) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT journey.receive_sms('+15550000001', 'Yes, call me', 'SM1');
SELECT journey.receive_sms('+15550000001', 'Yes, call me', 'SM1') AS again;
SELECT name, payload FROM journey.events WHERE contact_id = :dana ORDER BY id;
SELECT journey.run_due(10, now() + interval '1 minute');
SELECT f.name, e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY e.id;
SELECT channel, subject FROM journey.outbox ORDER BY id;
ROLLBACK;

-- opt-out words set sms_opt_out (and are events too); other texts do not
BEGIN;
INSERT INTO journey.contacts (first_name, phone)
SELECT w, '+1555000' || lpad(n::text, 4, '0') FROM unnest(ARRAY['STOP', ' stop ', 'Stop All', 'unsubscribe', 'Cancel', 'END', 'quit',
                                                              'stop please', 'Hello', '']) WITH ORDINALITY AS t (w, n);
SELECT c.first_name AS body, journey.receive_sms(c.phone, c.first_name) AS did FROM journey.contacts c ORDER BY c.id;
SELECT first_name AS body, sms_opt_out FROM journey.contacts ORDER BY id;
SELECT count(*) AS events FROM journey.events WHERE name = 'sms_received';
ROLLBACK;

-- the sender's number is normalized like stored phones; every contact with it gets the event;
-- unknown phones, short codes and alphanumeric senders record nothing
BEGIN;
UPDATE journey.settings SET default_country = 'IL';
INSERT INTO journey.contacts (first_name, phone) VALUES ('Noa', '050-1234567'), ('Noa again', '+972501234567');
SELECT journey.receive_sms('0501234567', 'STOP');
SELECT first_name, phone, sms_opt_out FROM journey.contacts ORDER BY id;
SELECT count(*) AS events FROM journey.events;
SELECT journey.receive_sms('+15559999999', 'STOP') AS unknown, journey.receive_sms('ACME', 'hi') AS alphanumeric,
       journey.receive_sms('12345', 'hi') AS short_code;
SELECT count(*) AS events FROM journey.events;
SELECT journey.receive_sms(NULL, 'hi');
\echo :SQLSTATE
SELECT journey.receive_sms('  ', 'hi');
\echo :SQLSTATE
ROLLBACK;

-- a relay may call it (and still not emit events itself); the app kind may not
CREATE ROLE inbound_relay;
CREATE ROLE inbound_app;
SELECT journey.grant_role('inbound_relay', 'relay'), journey.grant_role('inbound_app', 'app');
SELECT journey.upsert_contact('{"first_name": "Ion", "phone": "+40721000002"}') IS NOT NULL AS contact;
SET ROLE inbound_relay;
SELECT journey.receive_sms('+40721000002', 'ok', 'SM9');
SELECT journey.emit('sms_received', 1, '{"text": "x"}');
\echo :SQLSTATE
RESET ROLE;
SET ROLE inbound_app;
SELECT journey.receive_sms('+40721000002', 'ok', 'SM10');
\echo :SQLSTATE
RESET ROLE;
SELECT c.first_name, e.payload FROM journey.events e JOIN journey.contacts c ON c.id = e.contact_id ORDER BY e.id;
-- a deleted event type comes back with the next inbound SMS
DELETE FROM journey.events;
DELETE FROM journey.event_types WHERE name = 'sms_received';
SELECT journey.receive_sms('+40721000002', 'back', 'SM11');
SELECT name FROM journey.event_types WHERE name = 'sms_received';
DELETE FROM journey.events;
DELETE FROM journey.contacts;
DROP OWNED BY inbound_relay, inbound_app;
DROP ROLE inbound_relay, inbound_app;
