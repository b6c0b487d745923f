-- Issue #11, items 6, 8 and 11: definitions are checked for what would loop, overflow or
-- exhaust the stack, and data serde cannot hold is a clear error (never XX000).
\set VERBOSITY terse
SET client_min_messages = warning;
INSERT INTO journey.groups (name) VALUES ('g');
SELECT journey.define_event('paid', '[]');
SELECT journey.define_event('other', '[]');

-- ---------------------------------------------------------------- validation (item 8)
SELECT journey.create_flow('loops', '{"triggers": [{"type": "manual"}], "start": "send", "nodes": {
  "send":  {"type": "send_sms", "text": "hi", "next": "check"},
  "check": {"type": "check_sms", "message": "send", "wait": "0 seconds", "yes": "done", "no": "send"},
  "event": {"type": "wait_event", "event": "paid", "timeout": "0 minutes", "yes": "done", "no": "done"},
  "nap":   {"type": "wait", "delay": "0 hours", "next": "done"},
  "week":  {"type": "wait", "delay": "1 day", "days": ["monkey", "tue"], "next": "done"},
  "far":   {"type": "wait", "delay": "100000 weeks 100000 weeks 100000 weeks", "next": "done"},
  "yearly": {"type": "send_sms", "text": "again", "next": {"to": "yearly", "delay": "100000 years"}},
  "done":  {"type": "goal"}}}');
SELECT * FROM journey.validate_flow('loops') ORDER BY node, problem;
-- a check's yes and no can both be instant: a loop back through it needs a delay of its own;
-- a wait_event's no comes only after its timeout
SELECT journey.create_flow('resend', '{"triggers": [{"type": "manual"}], "start": "send", "nodes": {
  "send":  {"type": "send_sms", "text": "hi", "next": "check"},
  "check": {"type": "check_sms", "message": "send", "yes": "done", "no": "send"},
  "done":  {"type": "goal"}}}');
SELECT * FROM journey.validate_flow('resend');
SELECT journey.update_flow('resend', '{"triggers": [{"type": "manual"}], "start": "send", "nodes": {
  "send":  {"type": "send_sms", "text": "hi", "next": "check"},
  "check": {"type": "check_sms", "message": "send", "yes": "done", "no": {"to": "send", "delay": "1 day"}},
  "done":  {"type": "goal", "next": "wait"},
  "wait":  {"type": "wait_event", "event": "paid", "timeout": "1 hour", "yes": "end", "no": "send"},
  "end":   {"type": "exit"}}}');
SELECT * FROM journey.validate_flow('resend');

-- ---------------------------------------------------------------- definitions too large (item 6)
-- a 60,000-node chain is refused at save (its cycle check once recursed and crashed the cluster)
SELECT journey.create_flow('chain', jsonb_build_object('triggers', '[{"type": "manual"}]'::jsonb, 'start', 'n1',
  'nodes', (SELECT jsonb_object_agg('n' || i, jsonb_build_object('type', 'goal', 'next', 'n' || (i + 1))) FROM generate_series(1, 60000) i)));
SELECT journey.create_flow('chain', jsonb_build_object('triggers', '[{"type": "manual"}]'::jsonb, 'start', 'n1',
  'nodes', (SELECT jsonb_object_agg('n' || i, jsonb_build_object('type', 'goal', 'next', 'n' || (i + 1))) FROM generate_series(1, 1500) i)));
SELECT journey.create_flow('deep', ('{"triggers": [{"type": "manual"}], "start": "a", "nodes": {"a": {"type": "condition", "if": '
  || repeat('{"not": ', 40) || '{"in_group": "g"}' || repeat('}', 40) || ', "then": "a"}}}')::jsonb);
-- one put into flow_versions by hand (a superuser can) is still walked without recursion: a
-- 20,000-node cycle with no delay, read by validate_flow and by flow_stats (which an app may call)
SELECT journey.create_flow('ring', '{"triggers": [{"type": "manual"}], "start": "n1", "nodes": {"n1": {"type": "goal"}}}');
UPDATE journey.flow_versions SET definition = jsonb_build_object('triggers', '[{"type": "manual"}]'::jsonb, 'start', 'n1',
  'nodes', (SELECT jsonb_object_agg('n' || i, jsonb_build_object('type', 'goal', 'next', 'n' || (i % 20000 + 1))) FROM generate_series(1, 20000) i))
 WHERE flow_id = journey._flow_id('ring');
SELECT node, problem FROM journey.validate_flow('ring');
SELECT count(*), sum(reached) FROM journey.flow_stats('ring');

-- ---------------------------------------------------------------- jsonb serde cannot hold (item 6)
SELECT journey.create_flow('huge', '{"triggers": [{"type": "manual"}], "start": "a", "nodes": {"a": {"type": "goal", "n": 1e400}}}');
SELECT journey.create_flow('nested', ('{"triggers": [{"type": "manual"}], "start": "a", "nodes": {"a": {"type": "goal", "x": '
  || repeat('[', 200) || repeat(']', 200) || '}}}')::jsonb);
SELECT journey.create_flow('manual', '{"triggers": [{"type": "manual"}], "start": "a", "nodes": {"a": {"type": "goal"}}}');
SELECT journey.activate_flow('manual');
SELECT journey.upsert_contact('{"first_name": "Ana", "phone": "+15550001"}');
SELECT journey.enroll('manual', 1, '{"n": 1e400}');
-- emit: a flow's where reads only the events it listens to; one that must read an unreadable
-- payload says so
SELECT journey.create_flow('buyer', '{"triggers": [{"type": "event", "event": "paid", "where": {"field": "event.amount", "op": ">", "value": 1}}],
  "start": "a", "nodes": {"a": {"type": "goal"}}}');
SELECT journey.activate_flow('buyer');
SELECT journey.emit('other', 1, '{"n": 1e400}') IS NOT NULL AS emitted;
SELECT journey.emit('paid', 1, '{"amount": 1e400}');
SELECT journey.emit('paid', 1, '{"amount": 5}') IS NOT NULL AS emitted;
-- (also when one statement inserts both kinds: the where is read for the paid event only)
INSERT INTO journey.events (name, contact_id, payload) VALUES ('other', 1, '{"n": 1e400}'), ('paid', 1, '{"amount": 7}');
SELECT count(*) AS enrolled FROM journey.enrollments WHERE flow_id = journey._flow_id('buyer');

-- ---------------------------------------------------------------- flow_diagram (item 11)
SELECT journey.create_flow('dashes', '{"triggers": [{"type": "manual"}], "start": "a-b",
  "nodes": {"a-b": {"type": "goal", "next": "a_b"}, "a_b": {"type": "goal"}}}');
SELECT journey.flow_diagram('dashes');
