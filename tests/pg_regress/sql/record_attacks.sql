-- Journeys on the app's own tables, attacked by the roles journey serves (issue 17's review):
-- an admin who writes journey's record tables directly, the owner of a linked table with a
-- domain whose CHECK runs its own function, an app whose enrollment data names a record, a
-- trigger that calls allow_writes while a flow writes its table, a table with row-level
-- security. run_due stands for the worker (a superuser here, as the worker is by default).
-- Before the fixes each one ran code as, or read or wrote as, another role.
\set VERBOSITY terse
\set ON_ERROR_ROLLBACK on
SET client_min_messages = warning;
CREATE ROLE ra_admin LOGIN;
CREATE ROLE ra_app LOGIN;
CREATE ROLE ra_owner LOGIN;
CREATE ROLE ra_victim LOGIN;
SELECT journey.grant_role('ra_admin', 'admin'), journey.grant_role('ra_app', 'app');
CREATE SCHEMA ra AUTHORIZATION ra_admin;
CREATE SCHEMA ra_own AUTHORIZATION ra_owner;
CREATE SCHEMA ra_vic AUTHORIZATION ra_victim;
GRANT USAGE ON SCHEMA ra_own, ra_vic TO ra_admin;
SELECT journey.upsert_contact('{"external_id": "c1", "first_name": "Ann"}') AS c1 \gset

-- 1. the record tables are read-only for admins: rows there lend journey privileges
SET ROLE ra_admin;
SELECT has_table_privilege('journey.' || t, p) AS may, t, p
  FROM unnest(ARRAY['record_types', 'record_links', 'writable_tables']) t, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']) p
 ORDER BY t, p;
INSERT INTO journey.writable_tables (tbl) VALUES ('pg_catalog.pg_auth_members');
-- and the write itself refuses the system's tables, whatever the rows say
RESET ROLE;
INSERT INTO journey.writable_tables (tbl) VALUES ('pg_catalog.pg_auth_members');
SET ROLE ra_admin;
SELECT journey.create_flow('grab', format('{"triggers": [{"type": "manual"}], "start": "w", "nodes": {"w": {"type": "create_record",
  "table": "pg_catalog.pg_auth_members", "values": {"roleid": 10, "member": %s, "grantor": 10, "admin_option": false}}}}',
  'ra_admin'::regrole::oid)::jsonb) > 0 AS created;
SELECT journey.activate_flow('grab');
SELECT journey.enroll('grab', :c1, '{}') > 0 AS enrolled;
SELECT journey.run_due(10);
SELECT status, last_error FROM journey.enrollments WHERE flow_id = journey._flow_id('grab');
SELECT pg_has_role('ra_admin', 'postgres', 'MEMBER') AS admin_is_superuser;
RESET ROLE;
DELETE FROM journey.writable_tables;

-- 2. a link's key of a domain type: read with a cast to the type beneath, never running the
-- domain's CHECK (the owner's function) as the reading role
SET ROLE ra_owner;
CREATE TABLE ra_own.did_run (as_user name, superuser boolean);
GRANT INSERT ON ra_own.did_run TO PUBLIC;
CREATE FUNCTION ra_own.evil(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ra_own.did_run SELECT current_user, rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user;
  RETURN true;
END $$;
CREATE DOMAIN ra_own.acct_id AS int CHECK (ra_own.evil(VALUE));
CREATE TABLE ra_own.accounts (id ra_own.acct_id PRIMARY KEY, name text);
INSERT INTO ra_own.accounts VALUES (7, 'Acme');
TRUNCATE ra_own.did_run;
GRANT SELECT ON ra_own.accounts TO ra_admin;
SET ROLE ra_admin;
CREATE TABLE ra.orders (id int PRIMARY KEY, contact_id bigint, account_id int, note text);
CREATE TABLE ra.loot (v text);
SELECT journey.attach_table('ra.orders', 'contact_id', 'id');
SELECT journey.link('orders', 'account', 'ra_own.accounts', 'account_id');
SELECT journey.allow_writes('ra.loot');
SELECT journey.create_flow('read', '{"triggers": [{"type": "record", "record": "orders", "on": ["insert"]}], "start": "w",
  "nodes": {"w": {"type": "create_record", "table": "ra.loot", "values": {"v": "account {{ record.account.name }}"}}}}') > 0 AS created;
SELECT journey.activate_flow('read');
INSERT INTO ra.orders VALUES (1, :c1, 7);
RESET ROLE;
SELECT journey.run_due(10);
SELECT v FROM ra.loot;
SELECT * FROM ra_own.did_run;
-- a link to a view (its functions would run as the reader) or to a table with row security
-- (a superuser reads past its policies) is refused, and read as nil if the table changes later
SET ROLE ra_owner;
CREATE VIEW ra_own.accounts_view AS SELECT * FROM ra_own.accounts;
GRANT SELECT ON ra_own.accounts_view TO ra_admin;
CREATE TABLE ra_own.secrets (id int PRIMARY KEY, secret text, tenant name);
INSERT INTO ra_own.secrets VALUES (7, 'not for admins', 'ra_owner');
ALTER TABLE ra_own.secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON ra_own.secrets USING (tenant = current_user);
GRANT SELECT ON ra_own.secrets TO ra_admin;
SET ROLE ra_admin;
SELECT journey.link('orders', 'av', 'ra_own.accounts_view', 'account_id');
\echo :SQLSTATE
SELECT journey.link('orders', 'secret', 'ra_own.secrets', 'account_id');
\echo :SQLSTATE
RESET ROLE;
ALTER TABLE ra_own.secrets DISABLE ROW LEVEL SECURITY;
SET ROLE ra_admin;
SELECT journey.link('orders', 'secret', 'ra_own.secrets', 'account_id');
RESET ROLE;
ALTER TABLE ra_own.secrets ENABLE ROW LEVEL SECURITY;
SET ROLE ra_admin;
SELECT journey.create_flow('read2', '{"triggers": [{"type": "record", "record": "orders", "on": ["insert"]}], "start": "w",
  "nodes": {"w": {"type": "create_record", "table": "ra.loot", "values": {"v": "{% if record.secret %}secret {{ record.secret.secret }}{% else %}no secret{% endif %}"}}}}') > 0 AS created;
SELECT journey.activate_flow('read2');
INSERT INTO ra.orders VALUES (2, :c1, 7);
RESET ROLE;
SELECT journey.run_due(10);
SELECT v FROM ra.loot ORDER BY v;
SELECT status, last_error FROM journey.enrollments WHERE flow_id = journey._flow_id('read2');

-- 3. update_record acts on the record of a record trigger's enrollment only: an app's enroll
-- payload naming a record type and a record updates nothing
SET ROLE ra_admin;
SELECT journey.create_flow('fix', '{"triggers": [{"type": "record", "record": "orders", "on": ["update"], "changed": ["note"]}], "start": "u",
  "nodes": {"u": {"type": "update_record", "set": {"account_id": "{{ record.new_account }}"}}}}') > 0 AS created;
SELECT journey.activate_flow('fix');
RESET ROLE;
SET ROLE ra_app;
SELECT journey.enroll('fix', :c1, '{"record_type": "orders", "record": {"id": 1, "new_account": 31337}}') > 0 AS enrolled;
-- (an app may read a record's timeline: record_timeline's helper was not granted to it)
SELECT kind, flow, node, detail FROM journey.record_timeline('orders', '1') ORDER BY at, kind;
RESET ROLE;
SELECT journey.run_due(10);
SELECT id, account_id FROM ra.orders ORDER BY id;
SELECT status, last_error FROM journey.enrollments WHERE flow_id = journey._flow_id('fix');

-- 4. nothing is lent from inside a flow's write: a trigger on the written table (running as
-- its owner, security-restricted, while the outer user is the superuser running the batch)
-- that calls allow_writes or link is refused
SET ROLE ra_admin;
CREATE TABLE ra.hook (v text);
CREATE FUNCTION ra.hook_lends() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM journey.allow_writes('ra_vic.private'::regclass);
  RETURN NULL;
END $$;
RESET ROLE;
SET ROLE ra_victim;
CREATE TABLE ra_vic.private (id int PRIMARY KEY, v text);
GRANT USAGE ON SCHEMA ra_vic TO ra_admin;
RESET ROLE;
SET ROLE ra_admin;
CREATE TRIGGER lends AFTER INSERT ON ra.hook FOR EACH ROW EXECUTE FUNCTION ra.hook_lends();
SELECT journey.allow_writes('ra.hook');
SELECT journey.create_flow('hook', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "create_record", "table": "ra.hook", "values": {"v": "x"}}}}') > 0 AS created;
SELECT journey.activate_flow('hook');
SELECT journey.enroll('hook', :c1, '{}') > 0 AS enrolled;
RESET ROLE;
SELECT journey.run_due(10);
SELECT status, last_error FROM journey.enrollments WHERE flow_id = journey._flow_id('hook');
SELECT tbl FROM journey.writable_tables ORDER BY tbl::text;

-- 5. row-level security: flows write a table as its owner, who bypasses policies that are not
-- forced: allow_writes refuses such a table, and a write checks again
SET ROLE ra_admin;
CREATE TABLE ra.docs (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, owner name, body text);
ALTER TABLE ra.docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON ra.docs USING (true) WITH CHECK (owner = current_user);
SELECT journey.allow_writes('ra.docs');
\echo :SQLSTATE
ALTER TABLE ra.docs FORCE ROW LEVEL SECURITY;
SELECT journey.allow_writes('ra.docs');
ALTER TABLE ra.docs NO FORCE ROW LEVEL SECURITY;
SELECT journey.create_flow('forge', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "create_record", "table": "ra.docs", "values": {"owner": "ra_victim", "body": "forged"}}}}') > 0 AS created;
SELECT journey.activate_flow('forge');
SELECT journey.enroll('forge', :c1, '{}') > 0 AS enrolled;
RESET ROLE;
SELECT journey.run_due(10);
SELECT status, last_error FROM journey.enrollments WHERE flow_id = journey._flow_id('forge');
SELECT count(*) AS forged FROM ra.docs;

RESET ROLE;
DROP SCHEMA ra, ra_own, ra_vic CASCADE;
DROP OWNED BY ra_admin, ra_app, ra_owner, ra_victim;
DROP ROLE ra_admin, ra_app, ra_owner, ra_victim;
