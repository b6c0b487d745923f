-- Stats and history: flow_stats (reached, reached_pct, waiting), goal_stats, the flow_overview
-- view and a contact's timeline, after the welcome journey has run end to end.
-- The scenario runs in a transaction that is rolled back; now() is constant inside it and the
-- virtual clock run_due(n, at) is given now() plus an offset.
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
INSERT INTO journey.groups (name) VALUES ('newsletter'), ('vip');
INSERT INTO journey.templates (name, channel, subject, body)
VALUES ('welcome_email', 'email', 'Welcome {{ contact.first_name }}', 'Hello {{ contact.first_name }} from {{ flow.name }}');
SELECT journey.create_flow('welcome', '{
  "triggers": [{"type": "group_joined", "group": "newsletter"}],
  "start": "sms",
  "nodes": {
    "sms":  {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "sender": "ACME",
             "next": {"to": "mail", "delay": "1 hour"}},
    "mail": {"type": "send_email", "template": "welcome_email", "next": "won"},
    "won":  {"type": "goal", "name": "welcomed"}
  }}');

BEGIN;
SELECT journey.activate_flow('welcome');
SELECT journey.upsert_contact('{"first_name": "Dana", "phone": "+15550003262", "email": "dana@example.com"}') AS dana \gset
SELECT journey.add_to_group(:dana, 'newsletter');
-- waiting: active enrollments due to run that node next
SELECT node, type, reached, reached_pct, waiting FROM journey.flow_stats('welcome');
SELECT journey.run_due(100, now());
SELECT node, type, reached, reached_pct, waiting FROM journey.flow_stats('welcome');
SELECT journey.run_due(100, now() + interval '61 minutes');
SELECT node, type, reached, reached_pct, waiting FROM journey.flow_stats('welcome');
SELECT goal, reached, reached_pct FROM journey.goal_stats('welcome');
SELECT entered, active, completed, failed FROM journey.flow_overview WHERE flow = 'welcome';
-- enrolled, three steps, two messages, completed
SELECT kind, flow, node, regexp_replace(detail, 'enrollment \d+ ', 'enrollment <id> ') AS detail
  FROM journey.timeline(:dana);
ROLLBACK;
