-- fork: the enrollment goes on along every branch at once. Each branch is an enrollment of its
-- own (parent_id, branch), written with the fork's step; the parent waits at the fork (due
-- never) and ends when its branches have: completed once none is active, exited (the others
-- stopped) as soon as one exits. Stats count each node once per enrollment that reached it.
-- Each scenario runs in a transaction that is rolled back; run_due(n, at) is the virtual clock
-- (branches a fork starts are due at its batch's time: the next call runs them).
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
UPDATE journey.settings SET admin_email = 'boss@example.com', quiet_hours_start = '00:00', quiet_hours_end = '00:00';
SELECT journey.upsert_contact('{"first_name": "Dana", "phone": "+15550001111", "email": "dana@example.com"}') AS dana \gset
-- enrollments of flow f as (node, status, branch, is_parent), parents first
CREATE FUNCTION pg_temp.trip(f text) RETURNS TABLE (node text, status text, branch integer, parent boolean, due_at timestamptz)
LANGUAGE sql AS $$
  SELECT e.node, e.status, e.branch, e.parent_id IS NULL, e.due_at FROM journey.enrollments e JOIN journey.flows fl ON fl.id = e.flow_id
   WHERE fl.name = f ORDER BY e.parent_id NULLS FIRST, e.branch, e.id
$$;

-- validation: fewer than two branches, a node twice, an unknown node, no list
BEGIN;
SELECT journey.create_flow('bad', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["a"]}, "a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT * FROM journey.validate_flow('bad');
SELECT journey.update_flow('bad', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["a", "a", "ghost"]}, "a": {"type": "exit"}}}');
SELECT * FROM journey.validate_flow('bad');
SELECT journey.update_flow('bad', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": "a"}, "a": {"type": "exit"}}}');
SELECT * FROM journey.validate_flow('bad');
-- a fork's branches are instant edges: a cycle through one needs a delay
SELECT journey.update_flow('bad', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["a", "g"]}, "a": {"type": "exit"}, "g": {"type": "goal", "next": "f"}}}');
SELECT * FROM journey.validate_flow('bad');
SELECT journey.update_flow('bad', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["a", "g"]}, "a": {"type": "exit"}, "g": {"type": "goal", "next": {"to": "f", "delay": "1 day"}}}}');
SELECT * FROM journey.validate_flow('bad');
-- an unknown key names the nearest known one
SELECT journey.update_flow('bad', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["a", "b"], "nxet": ["a"]}, "a": {"type": "exit"}, "b": {"type": "exit"}}}');
SELECT * FROM journey.validate_flow('bad');
ROLLBACK;

-- an SMS to the contact and an alert to the admin at once; the SMS branch then waits a day:
-- the enrollment completes only after both branches have ended
BEGIN;
SELECT journey.create_flow('both', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["sms", "alert"]},
            "sms": {"type": "send_sms", "text": "Welcome {{ contact.first_name }}", "next": "w"},
            "w": {"type": "wait", "delay": "1 day", "next": "done"},
            "done": {"type": "goal"},
            "alert": {"type": "notify_admin", "text": "{{ contact.first_name }} joined"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('both');
SELECT journey.flow_diagram('both');
SELECT journey.enroll('both', :dana) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-06-01 10:00Z';
SELECT journey.run_due(10, '2026-06-01 10:00Z') AS ran;
SELECT * FROM pg_temp.trip('both');
SELECT journey.run_due(10, '2026-06-01 10:00Z') AS ran;
SELECT channel, node, recipient, body, idempotency_key ~ ('^' || enrollment_id || ':' || node || ':2$') AS key_per_branch
  FROM journey.outbox ORDER BY channel;
SELECT * FROM pg_temp.trip('both');
SELECT status FROM journey.flow_overview WHERE flow = 'both';
SELECT entered, active, completed FROM journey.flow_overview WHERE flow = 'both';
SELECT journey.run_due(10, '2026-06-02 10:00Z') AS ran;
SELECT * FROM pg_temp.trip('both');
SELECT entered, active, completed FROM journey.flow_overview WHERE flow = 'both';
SELECT * FROM journey.flow_stats('both');
SELECT * FROM journey.goal_stats('both');
SELECT s.node, s.outcome FROM journey.steps s ORDER BY s.id;
ROLLBACK;

-- a branch reaching exit ends the enrollment: it exits and the other branch is stopped (it sends
-- nothing more)
BEGIN;
SELECT journey.create_flow('quit', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": [{"to": "x", "delay": "1 hour"}, "w"]},
            "x": {"type": "exit"},
            "w": {"type": "wait", "delay": "1 day", "next": "late"},
            "late": {"type": "send_sms", "text": "too late"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('quit');
SELECT journey.enroll('quit', :dana) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-06-01 10:00Z';
SELECT journey.run_due(10, '2026-06-01 10:00Z') AS ran;
SELECT journey.run_due(10, '2026-06-01 10:00Z') AS ran;
SELECT * FROM pg_temp.trip('quit');
SELECT journey.run_due(10, '2026-06-01 11:00Z') AS ran;
SELECT node, status, branch, last_error FROM journey.enrollments ORDER BY parent_id NULLS FIRST, branch;
SELECT journey.run_due(10, '2026-06-03 10:00Z') AS ran;
SELECT count(*) AS sms FROM journey.outbox;
SELECT entered, active, completed FROM journey.flow_overview WHERE flow = 'quit';
ROLLBACK;

-- a branch that reaches another fork goes on along its first edge and starts the others, as
-- branches of the same parent (nothing nests); the parent completes when all three have ended
BEGIN;
SELECT journey.create_flow('nest', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["a", "g"]},
            "a": {"type": "goal"},
            "g": {"type": "fork", "next": ["b", {"to": "c", "delay": "1 hour"}]},
            "b": {"type": "goal"}, "c": {"type": "goal"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('nest');
SELECT journey.enroll('nest', :dana) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-06-01 10:00Z';
SELECT journey.run_due(10, '2026-06-01 10:00Z') AS ran;
SELECT journey.run_due(10, '2026-06-01 10:00Z') AS ran;
SELECT * FROM pg_temp.trip('nest');
SELECT journey.run_due(10, '2026-06-01 11:00Z') AS ran;
SELECT * FROM pg_temp.trip('nest');
SELECT node, reached, reached_pct, waiting FROM journey.flow_stats('nest');
ROLLBACK;

-- archiving stops the parent and its branches; deleting the contact deletes them all
BEGIN;
SELECT journey.create_flow('arch', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": [{"to": "a", "delay": "1 day"}, {"to": "b", "delay": "2 days"}]},
            "a": {"type": "goal"}, "b": {"type": "goal"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('arch');
SELECT journey.enroll('arch', :dana) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now()) AS ran;
SELECT journey.archive_flow('arch');
SELECT node, status, branch, parent FROM pg_temp.trip('arch');
DELETE FROM journey.contacts WHERE id = :dana;
SELECT count(*) AS enrollments FROM journey.enrollments;
ROLLBACK;

-- a new version without the fork, activated with continue: the parent waits on at its fork (it
-- never runs it again), its branch goes on by node id and ends it
BEGIN;
SELECT journey.create_flow('edit', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["a", {"to": "b", "delay": "1 day"}]},
            "a": {"type": "goal"}, "b": {"type": "goal"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('edit');
SELECT journey.enroll('edit', :dana) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now()) + journey.run_due(10, now()) AS ran;
SELECT journey.update_flow('edit', '{"triggers": [{"type": "manual"}], "start": "b",
  "nodes": {"b": {"type": "goal"}}}') AS version;
SELECT journey.activate_flow('edit');
SELECT node, status, branch, parent FROM pg_temp.trip('edit');
SELECT journey.run_due(10, now() + interval '2 days') AS ran;
SELECT node, status, branch, parent FROM pg_temp.trip('edit');
ROLLBACK;

-- A version written past validation (an admin's UPDATE of flow_versions) with a fork its own
-- branches reach again: the branches double on every pass round the loop, until one more fork
-- would take the enrollment past 1000 branches; then the branch fails (and so its parent)
-- instead of growing without bound.
SELECT journey.create_flow('loop', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["w1", "w2"]}, "w1": {"type": "wait", "delay": "1 minute"}, "w2": {"type": "wait", "delay": "1 minute"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('loop');
UPDATE journey.flow_versions SET definition = jsonb_set(jsonb_set(definition, '{nodes,w1,next}', '"f"'), '{nodes,w2,next}', '"f"')
 WHERE flow_id = journey._flow_id('loop');
SELECT node, problem FROM journey.validate_flow('loop');
SELECT journey.enroll('loop', :dana) IS NOT NULL AS enrolled;
SELECT sum(journey.run_due(5000, now() + make_interval(mins => 2 * k))) AS ran FROM generate_series(0, 30) k;
SELECT e.parent_id IS NULL AS root, e.status, count(*), max(e.last_error) AS error
  FROM journey.enrollments e WHERE e.flow_id = journey._flow_id('loop') GROUP BY 1, 2 ORDER BY 1, 2;
