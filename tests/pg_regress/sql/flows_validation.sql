-- Flows: create, update (an active flow pauses), validate (every problem listed), activate
-- (refused while incomplete; in_flight continue or stop), pause, archive.
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below (ids aside: sequences are not rolled back). now() is constant inside a transaction;
-- the virtual clock run_due(n, at) is given now() plus an offset. ON_ERROR_ROLLBACK keeps a
-- scenario going after a statement that is meant to fail; \echo :SQLSTATE prints its code.
\set ON_ERROR_ROLLBACK on
\i tests/pg_regress/include/welcome.sql

-- update_flow pauses an active flow; activation moves frozen enrollments onto the new version
-- by node id (one whose node is gone is stopped) or stops them all (in_flight => 'stop').
BEGIN;
SELECT journey.activate_flow('welcome');
SELECT pg_temp.contact('A') AS a, pg_temp.contact('B') AS b \gset
SELECT journey.add_to_group(:a, 'newsletter');
SELECT journey.run_due(10, now());
-- a now waits before "mail"; version 2 drops "mail"
SELECT journey.update_flow('welcome', '{
  "triggers": [{"type": "group_joined", "group": "newsletter"}],
  "start": "sms",
  "nodes": {
    "sms":  {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "sender": "ACME",
             "next": {"to": "won", "delay": "1 hour"}},
    "won":  {"type": "goal", "name": "welcomed"}
  }}') AS version;
SELECT status, paused_reason FROM journey.flows;
-- paused by the edit: triggers enroll frozen (version 1's routes), the engine skips the flow's enrollments
SELECT journey.add_to_group(:b, 'newsletter');
SELECT count(*) AS enrollments FROM journey.enrollments;
SELECT journey.run_due(10, now() + interval '2 hours');
SELECT journey.activate_flow('welcome');
SELECT status, last_error FROM journey.enrollments;
-- a frozen enrollment whose node still exists continues on the new version
SELECT journey.remove_from_group(:b, 'newsletter');
SELECT journey.add_to_group(:b, 'newsletter');
SELECT journey.run_due(10, now());
SELECT node FROM journey.enrollments WHERE contact_id = :b;
SELECT journey.update_flow('welcome', '{
  "triggers": [{"type": "group_joined", "group": "newsletter"}],
  "start": "sms",
  "nodes": {
    "sms":  {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "sender": "ACME",
             "next": {"to": "won", "delay": "1 hour"}},
    "won":  {"type": "goal", "name": "welcomed"}
  }}') AS version;
SELECT journey.activate_flow('welcome');
SELECT status, version FROM journey.enrollments WHERE contact_id = :b;
SELECT journey.run_due(10, now() + interval '2 hours');
SELECT status FROM journey.enrollments WHERE contact_id = :b;
-- in_flight => 'stop' stops them all
SELECT pg_temp.contact('C') AS c \gset
SELECT journey.add_to_group(:c, 'newsletter');
SELECT journey.pause_flow('welcome');
SELECT journey.activate_flow('welcome', in_flight => 'stop');
SELECT status FROM journey.enrollments WHERE contact_id = :c;
-- archived is for good
SELECT journey.archive_flow('welcome');
SELECT journey.activate_flow('welcome');
\echo :SQLSTATE
ROLLBACK;

-- validate_flow lists every problem; activation refuses an incomplete flow, listing them, and
-- changes nothing.
BEGIN;
SELECT journey.create_flow('bad', '{
  "triggers": [{"type": "group_joined", "group": "nope"}, {"type": "form_submitted", "form": "noform"},
               {"type": "event", "event": "noevent"}, {"type": "date"}],
  "start": "a",
  "nodes": {
    "a": {"type": "send_sms", "next": "ghost"},
    "b": {"type": "teleport"},
    "c": {"type": "send_email", "template": "notemplate", "next": {"to": "d", "delay": "soon", "at": "25:00", "days": ["funday"]}},
    "d": {"type": "send_sms", "text": "{% if %}", "next": "e"},
    "e": {"type": "goal", "next": "d"},
    "s": {"type": "split", "branches": [{"percent": 50, "next": "a"}, {"percent": 40, "next": "a"}]}
  }}') IS NOT NULL AS created;
SELECT node, problem FROM journey.validate_flow('bad');
SELECT journey.create_flow('empty', '{}') IS NOT NULL AS created;
SELECT node, problem FROM journey.validate_flow('empty');
SELECT journey.create_flow('badstart', '{"triggers": [{"type": "manual"}], "start": "zz", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT node, problem FROM journey.validate_flow('badstart');
SELECT journey.activate_flow('bad');
\echo :SQLSTATE
SELECT status FROM journey.flows WHERE name = 'bad';
-- a complete flow has no problem
SELECT count(*) AS problems FROM journey.validate_flow('welcome');
ROLLBACK;
