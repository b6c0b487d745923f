-- journey 0.1.0 -> 0.2.0
-- Every change 0.2.0 makes to the schema of 0.1.0, in order. tests/upgrade_test.sh upgrades a
-- 0.1.0 database holding journeys mid-way and checks that its schema is then exactly that of a
-- fresh 0.2.0 install, and that the journeys continue.
\echo Use "ALTER EXTENSION journey UPDATE TO '0.2.0'" to load this file. \quit

-- ---------------------------------------------------------------- steps
-- No foreign key to enrollments (a trigger deletes steps with their enrollment); the primary
-- key leads with contact_id (timelines, deletes) and there is no separate enrollment index.
ALTER TABLE journey.steps DROP CONSTRAINT steps_enrollment_id_contact_id_fkey;
DROP INDEX journey.steps_enrollment;
ALTER TABLE journey.steps DROP CONSTRAINT steps_pkey, ADD PRIMARY KEY (contact_id, id);
COMMENT ON TABLE journey.steps IS
  'Append-only history: one row per node an enrollment entered (outcome: done, sent, suppressed:<reason>, goal, exited, failed:<error>, retry:<error> for a transient failure retried later). Stats and timelines read it. Rows go with their enrollment (trigger enrollments_delete_steps); no foreign key, so the engine''s batch insert pays no per-row check.';
CREATE FUNCTION journey._delete_steps() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.steps s USING old_rows o
    WHERE s.contact_id = o.contact_id AND s.enrollment_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._delete_steps() IS 'Trigger: deletes the steps of deleted enrollments.';
CREATE TRIGGER enrollments_delete_steps AFTER DELETE ON journey.enrollments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._delete_steps();

-- ---------------------------------------------------------------- enrollments
-- The primary key leads with contact_id and replaces enrollments_contact; no foreign keys
-- (triggers delete enrollments with their contact or flow version); one unique (flow_id, contact_id, occurrence)
-- index replaces enrollments_occurrence and enrollments_flow. Enrollments of flows never
-- re-entered get occurrence 'once' (the latest per (flow, contact), should a race have made two).
ALTER TABLE journey.enrollments DROP CONSTRAINT enrollments_pkey, ADD PRIMARY KEY (contact_id, id);
DROP INDEX journey.enrollments_contact;
ALTER TABLE journey.enrollments DROP CONSTRAINT enrollments_flow_id_fkey;
ALTER TABLE journey.enrollments DROP CONSTRAINT enrollments_flow_id_version_fkey;
ALTER TABLE journey.enrollments DROP CONSTRAINT enrollments_contact_id_fkey;
-- enrollments has no foreign keys: they would double the cost of enrolling (two checks per
-- row, in the app's INSERT). Its rows are written only by journey._enroll, from flows that exist
-- and contacts the writer's own row references (and so locks); deleting a contact or a flow
-- version deletes its enrollments here.
CREATE FUNCTION journey._delete_contact_enrollments() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.enrollments e USING old_rows o WHERE e.contact_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._delete_contact_enrollments() IS 'Trigger: deletes the enrollments of deleted contacts (and so their steps).';
CREATE TRIGGER contacts_delete_enrollments AFTER DELETE ON journey.contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._delete_contact_enrollments();

CREATE FUNCTION journey._delete_version_enrollments() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.enrollments e USING old_rows o WHERE e.flow_id = o.flow_id AND e.version = o.version;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._delete_version_enrollments() IS 'Trigger: deletes the enrollments of deleted flow versions (a deleted flow deletes its versions).';
CREATE TRIGGER flow_versions_delete_enrollments AFTER DELETE ON journey.flow_versions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._delete_version_enrollments();

DROP INDEX journey.enrollments_occurrence;
DROP INDEX journey.enrollments_flow;
UPDATE journey.enrollments e SET occurrence = 'once'
  FROM journey.flows f
 WHERE f.id = e.flow_id AND f.reentry_after IS NULL AND e.occurrence IS NULL
   AND e.id = (SELECT max(x.id) FROM journey.enrollments x WHERE x.flow_id = e.flow_id AND x.contact_id = e.contact_id);
-- Unique per occurrence (NULLs are distinct: flows that may be re-entered are not limited),
-- and the flow_id-leading index for stats and flow-wide updates.
CREATE UNIQUE INDEX enrollments_flow_contact ON journey.enrollments (flow_id, contact_id, occurrence);
COMMENT ON TABLE journey.enrollments IS
  'A contact''s trip through a flow. node is the node to run next at due_at; seq counts nodes entered (it makes idempotency keys); waiting describes what a check/wait_event node waits for; attempts counts transient failures in a row (retried with backoff up to settings.max_attempts). At most one active enrollment per (flow, contact); occurrence is ''once'' in flows that are never re-entered (so at most one enrollment ever, even under concurrent writers) and is reserved for date triggers (one per occurrence). No foreign keys (they would double the cost of enrolling): triggers delete enrollments with their contact or flow version.';

CREATE OR REPLACE FUNCTION journey._enroll(p_flows bigint[], p_contacts bigint[], p_data jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    ids bigint[];
BEGIN
    WITH ins AS (
        -- occurrence 'once' for flows that are never re-entered: the unique index
        -- enrollments_flow_contact then holds even against a concurrent writer whose enrollment
        -- committed (and maybe completed) after this statement's snapshot was taken.
        INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at, data, occurrence)
        SELECT DISTINCT ON (f.id, u.contact_id)
               f.id, f.version, u.contact_id, f.start_node, now(), coalesce(u.data, '{}'),
               CASE WHEN f.reentry_after IS NULL THEN 'once' END
        FROM unnest(p_flows, p_contacts, p_data) AS u (flow_id, contact_id, data)
        JOIN journey.flows f ON f.id = u.flow_id AND f.status = 'active'
        WHERE NOT EXISTS (
            SELECT 1 FROM journey.enrollments e
            WHERE e.flow_id = f.id AND e.contact_id = u.contact_id
              AND (f.reentry_after IS NULL OR e.status = 'active'
                   OR e.updated_at > now() - f.reentry_after))
        ORDER BY f.id, u.contact_id
        ON CONFLICT DO NOTHING
        RETURNING id)
    SELECT array_agg(id) INTO ids FROM ins;
    IF ids IS NOT NULL THEN
        PERFORM journey._wake();
        RETURN QUERY SELECT unnest(ids);
    END IF;
END
$$;

-- ---------------------------------------------------------------- outbox
-- Indexed by contact (timelines, message status) instead of by enrollment alone.
DROP INDEX journey.outbox_enrollment;
CREATE INDEX outbox_contact ON journey.outbox (contact_id, enrollment_id);

-- ---------------------------------------------------------------- security definer
-- Functions acting on tables their caller may not touch (relay protocol, trigger functions).
ALTER FUNCTION journey.claim(text[], integer, interval) SECURITY DEFINER;
ALTER FUNCTION journey.mark_sent(bigint, text) SECURITY DEFINER;
ALTER FUNCTION journey.mark_failed(bigint, text, boolean) SECURITY DEFINER;
ALTER FUNCTION journey.report(text, text, text, timestamptz) SECURITY DEFINER;
ALTER FUNCTION journey._on_group_joined() SECURITY DEFINER;
ALTER FUNCTION journey._on_form_submission() SECURITY DEFINER;
ALTER FUNCTION journey._on_form_submitted() SECURITY DEFINER;
ALTER FUNCTION journey._on_event() SECURITY DEFINER;
ALTER FUNCTION journey._on_event_inserted() SECURITY DEFINER;
ALTER FUNCTION journey._event_arrived(bigint[], text[]) SECURITY DEFINER;

-- settings: max_attempts now also bounds the engine's retries of transient step failures.
COMMENT ON TABLE journey.settings IS
  'Account settings, exactly one row: default time zone, SMS quiet hours (contact''s zone, may span midnight), unsubscribe text, admin e-mail, quotas (NULL = unlimited) and max_attempts for retries (failed sends reported by relays, transient step failures in the engine).';

-- ---------------------------------------------------------------- dump and restore
-- settings has exactly one row, inserted above. A restore (pg_dump / pg_restore) re-inserts the
-- dumped row after CREATE EXTENSION made the default one: this trigger turns that insert (and
-- any other) into an update of the one row. ENABLE ALWAYS: it fires in a restore run with
-- session_replication_role = replica too.
CREATE FUNCTION journey._settings_replace() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM journey.settings) THEN
        UPDATE journey.settings SET
            time_zone = NEW.time_zone, quiet_hours_start = NEW.quiet_hours_start,
            quiet_hours_end = NEW.quiet_hours_end, sms_unsubscribe_text = NEW.sms_unsubscribe_text,
            admin_email = NEW.admin_email, sms_quota = NEW.sms_quota, email_quota = NEW.email_quota,
            max_attempts = NEW.max_attempts;
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION journey._settings_replace() IS 'Trigger: an INSERT into settings replaces the one row (this is how a restore brings settings back).';
CREATE TRIGGER settings_replace BEFORE INSERT ON journey.settings
    FOR EACH ROW EXECUTE FUNCTION journey._settings_replace();
ALTER TABLE journey.settings ENABLE ALWAYS TRIGGER settings_replace;

-- pg_dump dumps the rows of these tables and the state of their sequences. flow_triggers is
-- included: it is derived at activation only, so a restored active flow needs its routes.
-- Restore with session_replication_role = replica (see README): the audience tables' triggers
-- must not enroll or rewrite contacts again while the dumped rows are loaded.
-- (one call per statement: each call updates the pg_extension row)
SELECT pg_catalog.pg_extension_config_dump('journey.settings', '');
SELECT pg_catalog.pg_extension_config_dump('journey.contacts', '');
SELECT pg_catalog.pg_extension_config_dump('journey.groups', '');
SELECT pg_catalog.pg_extension_config_dump('journey.group_members', '');
SELECT pg_catalog.pg_extension_config_dump('journey.forms', '');
SELECT pg_catalog.pg_extension_config_dump('journey.form_submissions', '');
SELECT pg_catalog.pg_extension_config_dump('journey.event_types', '');
SELECT pg_catalog.pg_extension_config_dump('journey.events', '');
SELECT pg_catalog.pg_extension_config_dump('journey.templates', '');
SELECT pg_catalog.pg_extension_config_dump('journey.flows', '');
SELECT pg_catalog.pg_extension_config_dump('journey.flow_versions', '');
SELECT pg_catalog.pg_extension_config_dump('journey.flow_triggers', '');
SELECT pg_catalog.pg_extension_config_dump('journey.enrollments', '');
SELECT pg_catalog.pg_extension_config_dump('journey.steps', '');
SELECT pg_catalog.pg_extension_config_dump('journey.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('journey.delivery_reports', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.contacts', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.groups', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.forms', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.form_submissions', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.events', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.flows', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.enrollments', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.steps', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.outbox', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.delivery_reports', 'id')::regclass, '');

-- ---------------------------------------------------------------- roles (sql/roles.sql)
-- Privileges: three kinds of role, granted with journey.grant_role(role, kind).
--   admin  defines flows, templates and settings; everything in the schema.
--   app    writes contacts, groups, forms, events (whose triggers enroll) and enrolls; reads
--          journeys' state (flows, enrollments, steps, outbox, stats, timelines).
--   relay  claim, mark_sent, mark_failed and report; nothing else, not even reading contacts.
-- PUBLIC gets nothing: the schema's USAGE is not granted to it, and EXECUTE on its functions is
-- revoked below. Functions that act on tables their caller may not touch (the relay protocol,
-- the audience tables' trigger functions, _enroll) are SECURITY DEFINER with
-- SET search_path = pg_catalog, journey, pg_temp.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA journey FROM PUBLIC;

CREATE FUNCTION journey.grant_role(role name, kind text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF role IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'grant_role: % must not be NULL', CASE WHEN role IS NULL THEN 'role' ELSE 'kind' END
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Call journey.grant_role(''role_name'', ''admin'' | ''app'' | ''relay'').';
    END IF;
    IF kind NOT IN ('admin', 'app', 'relay') THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Kinds are admin (flows, settings, everything), app (contacts, groups, forms, events, enroll) and relay (claim, mark_sent, mark_failed, report).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
        RAISE EXCEPTION 'role "%" does not exist', role
            USING ERRCODE = 'undefined_object', HINT = 'Create it first, e.g. CREATE ROLE name LOGIN.';
    END IF;
    -- GRANT takes no parameters: the role, checked above, is quoted as an identifier (%I);
    -- no value is ever formatted into SQL.
    EXECUTE format('GRANT USAGE ON SCHEMA journey TO %I', role);
    IF kind = 'admin' THEN
        EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA journey TO %I', role);
        EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA journey TO %I', role);
        EXECUTE format('GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA journey TO %I', role);
    ELSIF kind = 'app' THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON journey.contacts, journey.groups,
                        journey.group_members, journey.forms, journey.form_submissions,
                        journey.event_types, journey.events TO %I', role);
        EXECUTE format('GRANT SELECT ON journey.flows, journey.flow_versions, journey.enrollments,
                        journey.steps, journey.outbox, journey.delivery_reports, journey.templates,
                        journey.settings, journey.flow_overview TO %I', role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey.upsert_contact(jsonb),
                        journey.add_to_group(bigint, text), journey.remove_from_group(bigint, text),
                        journey.submit_form(text, jsonb), journey.define_event(text, jsonb),
                        journey.emit(text, bigint, jsonb), journey.enroll(text, bigint, jsonb),
                        journey.timeline(bigint), journey.flow_stats(text), journey.goal_stats(text),
                        journey.flow_diagram(text), journey._group_id(text), journey._check_contact(bigint),
                        journey._flow_id(text), journey._node_order(jsonb), journey._apply_contact_fields(bigint, jsonb),
                        journey._is_time_zone(text) TO %I', role);
    ELSE
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey.claim(text[], integer, interval),
                        journey.mark_sent(bigint, text), journey.mark_failed(bigint, text, boolean),
                        journey.report(text, text, text, timestamptz) TO %I', role);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION journey.grant_role(name, text) FROM PUBLIC;
COMMENT ON FUNCTION journey.grant_role(name, text) IS
  'Grants a role one kind of access: admin (everything: flows, templates, settings, run_due), app (writes contacts, groups, forms, events, enrolls; reads journeys'' state and stats) or relay (only claim, mark_sent, mark_failed, report). Run it as the extension''s owner (a superuser); revoke by hand with REVOKE.';
