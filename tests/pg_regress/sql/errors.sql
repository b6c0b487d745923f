-- Bad input: every function raises an error with its own SQLSTATE (never XX000), a message
-- naming the flow, node, field or object at fault, and a hint; a failing call changes nothing
-- (every table's contents are compared before and after). Constraints make bad states
-- impossible for plain INSERTs too.
-- Each call runs in its own transaction. The SQLSTATE is printed after each one (\echo
-- :SQLSTATE) rather than with VERBOSITY verbose, whose LOCATION line names a source line (of
-- error.rs, or of a PostgreSQL release) and would change with them.
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
INSERT INTO journey.forms (name, field_map) VALUES ('contact-us', '{"Email": "email"}');

-- the contents of every journey table: its row count and a digest of its rows
CREATE FUNCTION pg_temp.contents() RETURNS TABLE (tbl text, n bigint, digest text) LANGUAGE plpgsql AS $$
DECLARE t text;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c
            WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
            ORDER BY 1 LOOP
    RETURN QUERY EXECUTE format('SELECT %L::text, count(*), md5(coalesce(string_agg(x::text, %L ORDER BY x::text), %L)) FROM journey.%I x',
                                t, E'\n', '', t);
  END LOOP;
END $$;
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.contents();

SELECT journey.activate_flow('nope');
\echo :SQLSTATE
SELECT journey.enroll('nope', 1);
\echo :SQLSTATE
SELECT * FROM journey.flow_stats('nope');
\echo :SQLSTATE
SELECT journey.create_flow('x', '[1, 2]');
\echo :SQLSTATE
SELECT journey.create_flow('x', '{"nodes": []}');
\echo :SQLSTATE
SELECT journey.create_flow('x', '{"triggers": {}}');
\echo :SQLSTATE
SELECT journey.create_flow('welcome', '{}');
\echo :SQLSTATE
SELECT journey.create_flow(NULL, '{}');
\echo :SQLSTATE
SELECT journey.create_flow('x', NULL);
\echo :SQLSTATE
SELECT journey.add_to_group(1, 'nogroup');
\echo :SQLSTATE
SELECT journey.add_to_group(424242, 'vip');
\echo :SQLSTATE
SELECT journey.submit_form('noform', '{}');
\echo :SQLSTATE
SELECT journey.emit('noevent', NULL);
\echo :SQLSTATE
SELECT journey.run_due(0);
\echo :SQLSTATE
SELECT journey.run_due(NULL);
\echo :SQLSTATE
SELECT journey.activate_flow('welcome', false, 'maybe');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"shoe_size": 9}');
\echo :SQLSTATE
SELECT journey.pause_flow('welcome');
\echo :SQLSTATE
SELECT journey.claim(ARRAY['fax']);
\echo :SQLSTATE
SELECT journey.run_due(1000000);
\echo :SQLSTATE
SELECT journey.mark_failed(987654321, 'x', true, gen_random_uuid());
\echo :SQLSTATE
SELECT journey.report(NULL, 'delivered');
\echo :SQLSTATE
SELECT journey.report('x', NULL);
\echo :SQLSTATE
SELECT journey.submit_form('contact-us', '[1]');
\echo :SQLSTATE
SELECT journey.define_event('ev', '[{"name": "a", "type": "date"}]');
\echo :SQLSTATE
SELECT journey.define_event('ev', '[{"name": "a", "pattern": "("}]');
\echo :SQLSTATE
SELECT journey.define_event('ev', '{}');
\echo :SQLSTATE
SELECT journey.enroll('welcome', 1, '[1]');
\echo :SQLSTATE
SELECT * FROM journey.validate_flow(NULL);
\echo :SQLSTATE
SELECT journey.update_flow('nope', '{}');
\echo :SQLSTATE
SELECT journey.update_flow('welcome', '"text"');
\echo :SQLSTATE
SELECT journey.archive_flow('nope');
\echo :SQLSTATE
SELECT * FROM journey.timeline(424242);
\echo :SQLSTATE
SELECT journey.flow_diagram('nope');
\echo :SQLSTATE
SELECT journey.remove_from_group(1, NULL);
\echo :SQLSTATE
SELECT journey.upsert_contact('[]');
\echo :SQLSTATE
SELECT journey.upsert_contact('{"attributes": 5}');
\echo :SQLSTATE

-- nothing changed
SELECT tbl AS changed FROM pg_temp.contents() a FULL JOIN before b USING (tbl)
 WHERE a.digest IS DISTINCT FROM b.digest;
SELECT (SELECT count(*) FROM journey.flows) AS flows, (SELECT count(*) FROM journey.contacts) AS contacts;

-- constraints make bad states impossible (terse: the rows in a DETAIL would hold now())
\set VERBOSITY terse
INSERT INTO journey.flows (name, status) VALUES ('z', 'running');
\echo :SQLSTATE
INSERT INTO journey.contacts (time_zone) VALUES ('Mars/Olympus');
\echo :SQLSTATE
INSERT INTO journey.event_types (name) VALUES ('with space');
\echo :SQLSTATE
INSERT INTO journey.outbox (idempotency_key, channel, contact_id) VALUES ('k', 'fax', 1);
\echo :SQLSTATE
-- a 1 MB template
INSERT INTO journey.templates (name, body) VALUES ('big', repeat('x', 1048576));
\echo :SQLSTATE
\set VERBOSITY default
SELECT tbl AS changed FROM pg_temp.contents() a FULL JOIN before b USING (tbl)
 WHERE a.digest IS DISTINCT FROM b.digest;
SELECT (SELECT count(*) FROM journey.event_types) AS event_types, (SELECT count(*) FROM journey.form_submissions) AS form_submissions;
