-- Issue #11, items 2 and 4: the privileges of each kind of role (README "Roles"), every cell:
-- the schema, each function (EXECUTE), each table and view (SELECT, INSERT, UPDATE, DELETE,
-- TRUNCATE, REFERENCES, TRIGGER) and each sequence, for an admin, an app, a relay and a role
-- with no grant (PUBLIC). Then each kind logs in and makes the calls the README promises it,
-- and is refused the others; an admin cannot create a trigger on any journey table (the worker
-- writes them as a superuser: such a trigger would run as one).
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE ROLE m_admin LOGIN;
CREATE ROLE m_app LOGIN;
CREATE ROLE m_relay LOGIN;
CREATE ROLE m_none LOGIN;
SELECT journey.grant_role('m_admin', 'admin'), journey.grant_role('m_app', 'app'), journey.grant_role('m_relay', 'relay');
-- CREATE on public: so that the only barrier to their triggers and foreign keys below is journey's
GRANT CREATE ON SCHEMA public TO m_admin, m_app;
-- granting twice changes nothing
SELECT journey.grant_role('m_admin', 'admin'), journey.grant_role('m_app', 'app'), journey.grant_role('m_relay', 'relay');

-- ---------------------------------------------------------------- the matrix
SELECT r AS role, has_schema_privilege(r, 'journey', 'USAGE') AS usage, has_schema_privilege(r, 'journey', 'CREATE') AS "create"
  FROM unnest(ARRAY['m_admin', 'm_app', 'm_relay', 'm_none']) r;
-- functions: EXECUTE
SELECT p.oid::regprocedure AS function,
       has_function_privilege('m_admin', p.oid, 'EXECUTE') AS admin,
       has_function_privilege('m_app', p.oid, 'EXECUTE') AS app,
       has_function_privilege('m_relay', p.oid, 'EXECUTE') AS relay,
       has_function_privilege('m_none', p.oid, 'EXECUTE') AS public
  FROM pg_proc p WHERE p.pronamespace = 'journey'::regnamespace
 ORDER BY p.oid::regprocedure::text;
-- tables and views: S(ELECT) I(NSERT) U(PDATE) D(ELETE) T(RUNCATE) R(EFERENCES) t(RIGGER)
CREATE FUNCTION pg_temp.privs(r name, rel oid) RETURNS text LANGUAGE sql AS $$
    SELECT string_agg(CASE WHEN has_table_privilege(r, rel, v.p) THEN v.l ELSE '-' END, '' ORDER BY v.o)
      FROM (VALUES (1, 'SELECT', 'S'), (2, 'INSERT', 'I'), (3, 'UPDATE', 'U'), (4, 'DELETE', 'D'),
                   (5, 'TRUNCATE', 'T'), (6, 'REFERENCES', 'R'), (7, 'TRIGGER', 't')) v (o, p, l)
$$;
SELECT c.relname AS relation, c.relkind AS kind, pg_temp.privs('m_admin', c.oid) AS admin, pg_temp.privs('m_app', c.oid) AS app,
       pg_temp.privs('m_relay', c.oid) AS relay, pg_temp.privs('m_none', c.oid) AS public
  FROM pg_class c WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
 ORDER BY c.relname;
-- no column-level grants anywhere
SELECT c.relname, a.attname, a.attacl FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'journey'::regnamespace AND a.attacl IS NOT NULL;
-- sequences: U(SAGE) S(ELECT) u(PDATE)
SELECT c.relname AS sequence,
       string_agg(r || ' ' || CASE WHEN has_sequence_privilege(r, c.oid, 'USAGE') THEN 'U' ELSE '-' END
                           || CASE WHEN has_sequence_privilege(r, c.oid, 'SELECT') THEN 'S' ELSE '-' END
                           || CASE WHEN has_sequence_privilege(r, c.oid, 'UPDATE') THEN 'u' ELSE '-' END, ', ' ORDER BY o) AS privileges
  FROM pg_class c, unnest(ARRAY['m_admin', 'm_app', 'm_relay', 'm_none']) WITH ORDINALITY AS k (r, o)
 WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind = 'S'
 GROUP BY c.relname ORDER BY c.relname;

-- ---------------------------------------------------------------- the admin
\c - m_admin
\set VERBOSITY terse
SET client_min_messages = warning;
INSERT INTO journey.groups (name) VALUES ('newsletter');
INSERT INTO journey.forms (name, field_map) VALUES ('signup', '{"mail": "email"}');
INSERT INTO journey.templates (name, channel, subject, body) VALUES ('hi', 'email', 'Hi', 'Hello {{ contact.first_name }}');
UPDATE journey.settings SET admin_email = 'ops@example.com', quiet_hours_start = '00:00', quiet_hours_end = '00:00';
SELECT journey.create_flow('welcome', '{"triggers": [{"type": "group_joined", "group": "newsletter"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "next": "m"},
            "m": {"type": "send_email", "template": "hi"}}}');
SELECT journey.create_flow('manual', '{"triggers": [{"type": "manual"}], "start": "s", "nodes": {"s": {"type": "send_sms", "text": "Hello"}}}');
SELECT * FROM journey.validate_flow('welcome');
SELECT journey.activate_flow('welcome'), journey.activate_flow('manual');
SELECT journey.update_flow('manual', '{"triggers": [{"type": "manual"}], "start": "s", "nodes": {"s": {"type": "send_sms", "text": "Hello!"}}}');
SELECT journey.activate_flow('manual');
SELECT journey.create_flow('old', '{"triggers": [{"type": "manual"}], "start": "s", "nodes": {"s": {"type": "goal"}}}');
SELECT journey.pause_flow('manual'), journey.activate_flow('manual'), journey.archive_flow('old');
-- an admin can do what the app does, and run due steps
SELECT journey.add_to_group(journey.upsert_contact('{"first_name": "Ada", "phone": "+15550001", "email": "ada@example.com"}'), 'newsletter');
SELECT journey.run_due(100);
SELECT count(*) AS sequence_value FROM (SELECT last_value FROM journey.contacts_id_seq) s;
-- but never TRIGGER, TRUNCATE or REFERENCES on a journey table, nor grant kinds
CREATE FUNCTION public.admin_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY 1 LOOP
        BEGIN
            EXECUTE format('CREATE TRIGGER admin_trigger AFTER INSERT ON journey.%I FOR EACH ROW EXECUTE FUNCTION public.admin_trigger()', t);
            RAISE WARNING 'admin created a trigger on journey.%', t;
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'CREATE TRIGGER on journey.%: %', t, SQLERRM;
        END;
    END LOOP;
END
$$;
CREATE TRIGGER admin_trigger INSTEAD OF INSERT ON journey.flow_overview FOR EACH ROW EXECUTE FUNCTION public.admin_trigger();
TRUNCATE journey.steps;
CREATE TABLE public.admin_refs (outbox_id bigint, contact_id bigint, FOREIGN KEY (outbox_id, contact_id) REFERENCES journey.outbox (id, contact_id));
SELECT setval('journey.contacts_id_seq', 1000);
SELECT journey.grant_role('m_admin', 'admin');
ALTER TABLE journey.steps ADD COLUMN x int;
CREATE TABLE journey.mine (id int);
DROP FUNCTION public.admin_trigger();

-- ---------------------------------------------------------------- the app
\c - m_app
\set VERBOSITY terse
SET client_min_messages = warning;
SELECT journey.upsert_contact('{"first_name": "Bo", "phone": "+15550002", "email": "bo@example.com"}') AS bo;
SELECT journey.add_to_group(2, 'newsletter'), journey.remove_from_group(2, 'newsletter'), journey.add_to_group(2, 'newsletter');
SELECT journey.submit_form('signup', '{"mail": "cy@example.com"}');
SELECT journey.define_event('purchase', '[{"name": "amount", "type": "number"}]');
SELECT journey.emit('purchase', 2, '{"amount": 5}');
SELECT journey.enroll('manual', 2) IS NOT NULL AS enrolled;
INSERT INTO journey.contacts (first_name, phone) VALUES ('Di', '+15550004');
UPDATE journey.contacts SET last_name = 'Lee' WHERE first_name = 'Di';
INSERT INTO journey.group_members (group_id, contact_id) SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE c.first_name = 'Di';
INSERT INTO journey.groups (name) VALUES ('vip');
INSERT INTO journey.forms (name) VALUES ('contact');
INSERT INTO journey.form_submissions (form_id, data) SELECT id, '{"mail": "ed@example.com"}' FROM journey.forms WHERE name = 'signup';
INSERT INTO journey.event_types (name) VALUES ('visit');
INSERT INTO journey.events (name, contact_id) VALUES ('visit', 2);
DELETE FROM journey.contacts WHERE first_name = 'Di';
SELECT count(*) AS enrollments FROM journey.enrollments;
SELECT (SELECT count(*) FROM journey.flows) AS flows, (SELECT count(*) FROM journey.flow_versions) AS versions,
       (SELECT count(*) FROM journey.steps) AS steps, (SELECT count(*) FROM journey.outbox) AS outbox,
       (SELECT count(*) FROM journey.delivery_reports) AS reports, (SELECT count(*) FROM journey.templates) AS templates,
       (SELECT count(*) FROM journey.settings) AS settings, (SELECT count(*) FROM journey.flow_overview) AS overview;
SELECT kind, flow, node FROM journey.timeline(2) WHERE kind IN ('enrolled', 'step') ORDER BY at, kind, flow, node;
SELECT node, reached FROM journey.flow_stats('welcome');
SELECT * FROM journey.goal_stats('welcome');
SELECT length(journey.flow_diagram('welcome')) > 0 AS diagram;
-- refused
SELECT journey.create_flow('mine', '{}');
SELECT journey.update_flow('welcome', '{}');
SELECT * FROM journey.validate_flow('welcome');
SELECT journey.activate_flow('welcome');
SELECT journey.pause_flow('welcome');
SELECT journey.archive_flow('welcome');
SELECT journey.run_due(10);
SELECT * FROM journey.claim();
SELECT journey.mark_sent(1, 'x', gen_random_uuid());
SELECT journey.mark_failed(1, 'x', true, gen_random_uuid());
SELECT journey.report('x', 'delivered');
SELECT journey.grant_role('m_app', 'admin');
SELECT journey._enroll(ARRAY[1::bigint], ARRAY[2::bigint], ARRAY['{}'::jsonb]);
UPDATE journey.flows SET status = 'paused', paused_reason = 'manual';
DELETE FROM journey.flow_versions;
INSERT INTO journey.templates (name, body) VALUES ('x', 'y');
UPDATE journey.settings SET admin_email = 'x@example.com';
INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at) VALUES (1, 1, 2, 's', now());
UPDATE journey.outbox SET status = 'sent';
DELETE FROM journey.steps;
SELECT * FROM journey.flow_triggers;
TRUNCATE journey.contacts;
CREATE FUNCTION public.app_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER app_trigger AFTER INSERT ON journey.contacts FOR EACH ROW EXECUTE FUNCTION public.app_trigger();
CREATE TABLE public.app_refs (contact_id bigint REFERENCES journey.contacts (id));
DROP FUNCTION public.app_trigger();

-- ---------------------------------------------------------------- the relay
\c - m_relay
\set VERBOSITY terse
SET client_min_messages = warning;
SELECT id AS msg, lease_token AS token FROM journey.claim(ARRAY['sms'], 1) \gset
SELECT journey.mark_sent(:msg, 'prov-1', :'token');
SELECT journey.report('prov-1', 'delivered', 'ev-1');
SELECT id AS msg, lease_token AS token FROM journey.claim(NULL, 1) \gset
SELECT journey.mark_failed(:msg, 'provider down', false, :'token');
-- refused
SELECT * FROM journey.contacts;
SELECT * FROM journey.outbox;
UPDATE journey.outbox SET status = 'sent';
SELECT * FROM journey.timeline(2);
SELECT journey.upsert_contact('{"phone": "+10000000000"}');
SELECT journey.enroll('manual', 2);
SELECT journey.activate_flow('welcome');
SELECT journey.run_due(10);
SELECT * FROM journey.flow_overview;
SELECT * FROM journey.settings;

-- ---------------------------------------------------------------- no grant
\c - m_none
\set VERBOSITY terse
SET client_min_messages = warning;
SELECT * FROM journey.claim();
SELECT journey.enroll('manual', 2);
SELECT * FROM journey.contacts;
SELECT journey.grant_role('m_none', 'admin');

-- ---------------------------------------------------------------- what they did
\c - postgres
SET client_min_messages = warning;
SELECT f.name, e.contact_id, e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name, e.contact_id;
SELECT id, contact_id, channel, status, provider_message_id, last_error FROM journey.outbox ORDER BY id;
SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
 WHERE c.relnamespace = 'journey'::regnamespace AND NOT t.tgisinternal ORDER BY 1, 2;
