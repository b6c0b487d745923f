-- Frozen enrollments: a flow paused by an edit (update_flow) or by a quota keeps its routes, so
-- contacts its triggers fire for meanwhile are enrolled frozen at its start node (into the
-- version the routes were built from) and follow activate_flow's in_flight like everyone
-- inside; a manual pause (pause_flow) enrolls nobody.
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
UPDATE journey.settings SET quiet_hours_start = '00:00', quiet_hours_end = '00:00';
INSERT INTO journey.groups (name) VALUES ('members');
SELECT journey.upsert_contact('{"first_name": "Ann", "phone": "+15550001111"}') AS ann,
       journey.upsert_contact('{"first_name": "Bob", "phone": "+15550002222"}') AS bob \gset
SELECT journey.create_flow('hello', '{"triggers": [{"type": "group_joined", "group": "members"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "v1 hello {{ contact.first_name }}"}}}') IS NOT NULL AS created;
-- the flow's enrollments and its routes
CREATE FUNCTION pg_temp.state() RETURNS TABLE (status text, paused_reason text, routes bigint, enrollments text)
LANGUAGE sql AS $$
  SELECT f.status, f.paused_reason, (SELECT count(*) FROM journey.flow_triggers t WHERE t.flow_id = f.id),
         (SELECT string_agg(format('%s v%s %s %s', c.first_name, e.version, e.node, e.status), ', ' ORDER BY e.id)
            FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id WHERE e.flow_id = f.id)
    FROM journey.flows f WHERE f.name = 'hello'
$$;

-- paused by an edit: a group join enrolls frozen (version 1, its start node); activate with
-- continue runs it on the new version
BEGIN;
SELECT journey.activate_flow('hello');
SELECT journey.update_flow('hello', '{"triggers": [{"type": "group_joined", "group": "members"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "v2 hello {{ contact.first_name }}"}}}') AS version;
SELECT * FROM pg_temp.state();
SELECT journey.add_to_group(:ann, 'members');
SELECT * FROM pg_temp.state();
SELECT journey.run_due(10, now()) AS ran_while_paused;
SELECT journey.activate_flow('hello', in_flight => 'continue');
SELECT * FROM pg_temp.state();
SELECT journey.run_due(10, now()) AS ran;
SELECT body FROM journey.outbox;
SELECT * FROM pg_temp.state();
ROLLBACK;

-- paused by an edit, then activated with stop: the frozen enrollment is stopped
BEGIN;
SELECT journey.activate_flow('hello');
SELECT journey.update_flow('hello', '{"triggers": [{"type": "group_joined", "group": "members"}], "start": "t",
  "nodes": {"t": {"type": "send_sms", "text": "v2"}}}') AS version;
SELECT journey.add_to_group(:ann, 'members');
SELECT journey.activate_flow('hello', in_flight => 'stop');
SELECT journey.run_due(10, now()) AS ran;
SELECT * FROM pg_temp.state();
SELECT count(*) AS messages FROM journey.outbox;
ROLLBACK;

-- paused by an edit with a new start node, activated with continue: the frozen enrollment's node
-- is gone from the new version, so it is stopped (as any enrollment inside would be)
BEGIN;
SELECT journey.activate_flow('hello');
SELECT journey.update_flow('hello', '{"triggers": [{"type": "group_joined", "group": "members"}], "start": "t",
  "nodes": {"t": {"type": "send_sms", "text": "v2"}}}') AS version;
SELECT journey.add_to_group(:ann, 'members');
SELECT journey.activate_flow('hello');
SELECT * FROM pg_temp.state();
SELECT last_error FROM journey.enrollments;
ROLLBACK;

-- a manual pause enrolls nobody; pausing by hand a flow paused by an edit stops its enrolling too
BEGIN;
SELECT journey.activate_flow('hello');
SELECT journey.pause_flow('hello');
SELECT journey.add_to_group(:ann, 'members');
SELECT * FROM pg_temp.state();
SELECT journey.activate_flow('hello');
SELECT journey.update_flow('hello', '{"triggers": [{"type": "group_joined", "group": "members"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "v3"}}}') AS version;
SELECT journey.pause_flow('hello');
SELECT journey.add_to_group(:bob, 'members');
SELECT * FROM pg_temp.state();
ROLLBACK;

-- paused by a quota: a group join enrolls frozen; raising the quota resumes the flow and both run
BEGIN;
SELECT journey.activate_flow('hello');
UPDATE journey.settings SET sms_quota = 0;
SELECT journey.add_to_group(:ann, 'members');
SELECT journey.run_due(10, now()) AS ran;
SELECT * FROM pg_temp.state();
SELECT journey.add_to_group(:bob, 'members');
SELECT * FROM pg_temp.state();
SELECT journey.run_due(10, now()) AS ran_while_paused;
SELECT journey.add_quota('sms', 10);
SELECT * FROM pg_temp.state();
SELECT journey.run_due(10, now()) AS ran;
SELECT body FROM journey.outbox WHERE channel = 'sms' ORDER BY body;
ROLLBACK;

-- date triggers: an occurrence due while the flow is paused by an edit is enrolled frozen by the
-- date pass (the schedule is kept) and runs on the new version once activated; paused by hand,
-- the flow has no schedule and the pass enrolls nobody
BEGIN;
SELECT journey.create_flow('bday', '{"triggers": [{"type": "date", "field": "birthday"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "v1 happy birthday"}}}') IS NOT NULL AS created;
UPDATE journey.contacts SET birthday = '1990-06-01' WHERE id = :ann;
SELECT journey.activate_flow('bday');
SELECT journey.update_flow('bday', '{"triggers": [{"type": "date", "field": "birthday"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "v2 happy birthday"}}}') AS version;
SELECT count(*) AS scheduled FROM journey.date_schedule;
UPDATE journey.date_schedule SET fire_at = now() - interval '1 minute';
SELECT journey.run_due(10, now()) AS ran_while_paused;
SELECT e.version, e.node, e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'bday';
SELECT journey.activate_flow('bday');
SELECT journey.run_due(10, now()) AS ran;
SELECT body FROM journey.outbox;
SELECT journey.pause_flow('bday');
SELECT count(*) AS scheduled_while_paused_by_hand FROM journey.date_schedule;
ROLLBACK;
