-- Retention: settings.keep_sent_messages and keep_ended_enrollments (NULL = keep forever). The
-- worker's pass (journey._retention_pass, called here directly) deletes final outbox rows and
-- ended enrollments (with their steps) older than the settings, in bounded slices, and keeps
-- everything else: pending messages, young rows, active enrollments.
\i tests/pg_regress/include/welcome.sql
\set SHOW_CONTEXT never
SELECT journey.create_flow('one', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "hi {{ contact.first_name }}"}}}') IS NOT NULL AS created;
SELECT journey.create_flow('slow', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait", "delay": "30 days", "next": "e"}, "e": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('one'), journey.activate_flow('slow');
SELECT count(journey.enroll('one', pg_temp.contact('C' || i))) AS enrolled FROM generate_series(1, 6) i;
SELECT count(journey.enroll('slow', id)) AS enrolled FROM journey.contacts;
SELECT journey.run_due(100);
-- four of the six messages sent (one reported delivered), two still pending
SELECT count(journey.mark_sent(id, 'p' || id, lease_token)) AS sent FROM journey.claim(ARRAY['sms'], 4);
SELECT journey.report('p1', 'delivered', 'ev-1');
-- history: everything but C6's rows made 40 days old
UPDATE journey.outbox SET created_at = now() - interval '40 days' WHERE contact_id <> (SELECT id FROM journey.contacts WHERE first_name = 'C6');
UPDATE journey.enrollments SET updated_at = now() - interval '40 days' WHERE contact_id <> (SELECT id FROM journey.contacts WHERE first_name = 'C6');
CREATE VIEW pg_temp.left_over AS
  SELECT (SELECT count(*) FROM journey.outbox) AS outbox, (SELECT count(*) FROM journey.delivery_reports) AS reports,
         (SELECT count(*) FROM journey.enrollments WHERE status = 'completed') AS ended,
         (SELECT count(*) FROM journey.enrollments WHERE status = 'active') AS active,
         (SELECT count(*) FROM journey.steps) AS steps;
SELECT * FROM pg_temp.left_over;
-- NULL settings: the pass deletes nothing
SELECT * FROM journey._retention_pass(0, 0, 1000, 1000);
SELECT * FROM pg_temp.left_over;
-- keep 30 days: the old sent messages (and the report) and the old ended enrollments (and their
-- steps) go; the pending messages, C6's rows and the active enrollments stay
UPDATE journey.settings SET keep_sent_messages = '30 days', keep_ended_enrollments = '30 days';
SELECT * FROM journey._retention_pass(0, 0, 1000, 1000);
SELECT * FROM pg_temp.left_over;
SELECT c.first_name, o.status FROM journey.outbox o JOIN journey.contacts c ON c.id = o.contact_id ORDER BY 1;
-- in slices: two outbox rows looked at per pass, the cursor carried from one to the next
UPDATE journey.outbox SET status = 'sent', created_at = now() - interval '40 days';
SELECT * FROM journey._retention_pass(0, 0, 2, 1);
SELECT * FROM journey._retention_pass(4, 0, 2, 1);
SELECT count(*) AS outbox_left FROM journey.outbox;
-- An ended enrollment that keeps its contact from entering again stays (only its steps go): of
-- a flow never re-entered ('one', C1 to C5 above), and of one whose reentry interval has not
-- passed since it ended; deleting them let the contact in again (and sent the one-time
-- message again).
SELECT c.first_name, e.status, (SELECT count(*) FROM journey.steps s WHERE s.contact_id = e.contact_id AND s.enrollment_id = e.id) AS steps
  FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id JOIN journey.flows f ON f.id = e.flow_id
 WHERE f.name = 'one' ORDER BY 1;
SELECT count(journey.enroll('one', id)) AS enrolled_again FROM journey.contacts WHERE first_name IN ('C1', 'C2');
SELECT journey.create_flow('monthly', '{"triggers": [{"type": "manual"}], "reentry": {"after": "60 days"}, "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "monthly"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('monthly');
SELECT count(journey.enroll('monthly', id)) AS enrolled FROM journey.contacts WHERE first_name IN ('C1', 'C2');
SELECT journey.run_due(100) AS ran;
UPDATE journey.enrollments e SET updated_at = now() - CASE c.first_name WHEN 'C1' THEN interval '40 days' ELSE interval '70 days' END
  FROM journey.contacts c, journey.flows f WHERE c.id = e.contact_id AND f.id = e.flow_id AND f.name = 'monthly';
SELECT enrollments FROM journey._retention_pass(0, 0, 1000, 1000);
SELECT c.first_name, e.status FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id
  JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'monthly' ORDER BY 1;
SELECT c.first_name FROM journey.contacts c WHERE c.first_name IN ('C1', 'C2') AND journey.enroll('monthly', c.id) IS NOT NULL ORDER BY 1;
-- the settings' checks
UPDATE journey.settings SET keep_sent_messages = '-1 day';
\echo :SQLSTATE
