-- Issue #12, item 7: the engine's per-backend definition cache never serves a stale
-- definition. This file runs in one backend: a version rewritten in place, and a flow id
-- reused after DROP EXTENSION / CREATE EXTENSION, are read again. (Before 0.3.0 the cache was
-- keyed by (flow, version) alone: both runs below sent the first text.)
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE FUNCTION pg_temp.run(text_ text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE f bigint; c bigint;
BEGIN
  f := journey.create_flow('f' || (SELECT count(*) FROM journey.flows), jsonb_build_object(
         'triggers', '[{"type": "manual"}]'::jsonb, 'start', 'a',
         'nodes', jsonb_build_object('a', jsonb_build_object('type', 'send_sms', 'text', text_, 'ignore_quiet_hours', true))));
  PERFORM journey.activate_flow(name) FROM journey.flows WHERE id = f;
  c := journey.upsert_contact(jsonb_build_object('phone', '+1555' || lpad(f::text, 7, '0')));
  PERFORM journey.enroll(name, c) FROM journey.flows WHERE id = f;
  PERFORM journey.run_due(10);
  RETURN (SELECT string_agg(flow_id || ':' || body, ',' ORDER BY id) FROM journey.outbox);
END $$;
SELECT pg_temp.run('first');
-- the same flow id and version after the extension is dropped and created again
DROP EXTENSION journey CASCADE;
CREATE EXTENSION journey;
SELECT pg_temp.run('second');
-- a version rewritten in place (a superuser can)
UPDATE journey.flow_versions SET definition = jsonb_set(definition, '{nodes,a,text}', '"rewritten"');
SELECT journey.enroll('f0', journey.upsert_contact('{"phone": "+15550000009"}')) IS NOT NULL AS enrolled;
SELECT journey.run_due(10);
SELECT flow_id, body FROM journey.outbox ORDER BY id;
