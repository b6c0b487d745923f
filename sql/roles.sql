-- Privileges: three kinds of role, granted with journey.grant_role(role, kind).
--   admin  defines flows, templates and settings: SELECT, INSERT, UPDATE, DELETE on every table
--          (SELECT only on record_types, record_links and writable_tables), SELECT on the views,
--          USAGE and SELECT on the sequences, EXECUTE on every function but grant_role. Never TRIGGER, REFERENCES or TRUNCATE: the worker writes these tables as
--          its (superuser) role, so a trigger an admin could create would run as that role.
--   app    writes contacts, groups, forms, events (whose triggers enroll) and enrolls; reads
--          journeys' state (flows, enrollments, steps, outbox, stats, timelines).
--   relay  claim, mark_sent, mark_failed, report and receive_sms; nothing else, not even reading
--          contacts.
-- README "Roles" lists every cell; tests/pg_regress/sql/roles_matrix.sql checks them all.
-- PUBLIC gets nothing: the schema's USAGE is not granted to it, and EXECUTE on its functions is
-- revoked below. Functions that act on tables their caller may not touch (the relay protocol,
-- the audience tables' trigger functions, _enroll) are SECURITY DEFINER with
-- SET search_path = pg_catalog, journey, pg_temp (pg_temp last: a caller's temporary types and
-- tables are never found before the real ones; functions and operators are never looked up in
-- pg_temp).

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA journey FROM PUBLIC;

CREATE FUNCTION journey.grant_role(role name, kind text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    obj text;   -- a schema-qualified table, sequence or function, its identifiers quoted
    guarded boolean;
BEGIN
    IF role IS NULL OR kind IS NULL THEN
        RAISE EXCEPTION 'grant_role: % must not be NULL', CASE WHEN role IS NULL THEN 'role' ELSE 'kind' END
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Call journey.grant_role(''role_name'', ''admin'' | ''app'' | ''relay'').';
    END IF;
    IF kind NOT IN ('admin', 'app', 'relay') THEN
        RAISE EXCEPTION 'unknown role kind "%"', kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Kinds are admin (flows, templates, settings: every table and function but grant_role, no TRIGGER), app (contacts, groups, forms, events, enroll) and relay (claim, mark_sent, mark_failed, report).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = role) THEN
        RAISE EXCEPTION 'role "%" does not exist', role
            USING ERRCODE = 'undefined_object', HINT = 'Create it first, e.g. CREATE ROLE name LOGIN.';
    END IF;
    -- GRANT takes no parameters: the role, checked above, is quoted as an identifier (%I);
    -- no value is ever formatted into SQL.
    EXECUTE format('GRANT USAGE ON SCHEMA journey TO %I', role);
    IF kind = 'admin' THEN
        -- an explicit list, never ALL: no TRIGGER, REFERENCES or TRUNCATE (see the top). The
        -- tables that say which of the app's tables journey reads and writes (record_types,
        -- record_links, writable_tables) only SELECT: rows there lend journey the privileges of
        -- the role that wrote them, so only attach_table, link and allow_writes write them,
        -- after checking that their caller holds those privileges.
        FOR obj, guarded IN SELECT format('%I.%I', 'journey', c.relname),
                                   c.relname IN ('record_types', 'record_links', 'writable_tables')
                              FROM pg_class c
                             WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY c.relname LOOP
            EXECUTE format(CASE WHEN guarded THEN 'GRANT SELECT ON TABLE %s TO %I'
                                ELSE 'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %I' END, obj, role);
        END LOOP;
        FOR obj IN SELECT format('%I.%I', 'journey', c.relname) FROM pg_class c
                    WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('v', 'm') ORDER BY c.relname LOOP
            EXECUTE format('GRANT SELECT ON TABLE %s TO %I', obj, role);
        END LOOP;
        FOR obj IN SELECT format('%I.%I', 'journey', c.relname) FROM pg_class c
                    WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind = 'S' ORDER BY c.relname LOOP
            EXECUTE format('GRANT USAGE, SELECT ON SEQUENCE %s TO %I', obj, role);
        END LOOP;
        FOR obj IN SELECT format('%I.%I(%s)', 'journey', p.proname, pg_get_function_identity_arguments(p.oid)) FROM pg_proc p
                    WHERE p.pronamespace = 'journey'::regnamespace
                      AND p.oid <> 'journey.grant_role(name, text)'::regprocedure ORDER BY p.proname, p.oid LOOP
            EXECUTE format('GRANT EXECUTE ON ROUTINE %s TO %I', obj, role);
        END LOOP;
    ELSIF kind = 'app' THEN
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON journey.contacts, journey.groups,
                        journey.group_members, journey.forms, journey.form_submissions,
                        journey.event_types, journey.events TO %I', role);
        EXECUTE format('GRANT SELECT ON journey.flows, journey.flow_versions, journey.enrollments,
                        journey.steps, journey.outbox, journey.delivery_reports, journey.templates,
                        journey.settings, journey.flow_overview, journey.contact_keys TO %I', role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey.upsert_contact(jsonb),
                        journey.add_to_group(bigint, text), journey.remove_from_group(bigint, text),
                        journey.submit_form(text, jsonb), journey.define_event(text, jsonb),
                        journey.emit(text, bigint, jsonb), journey.enroll(text, bigint, jsonb),
                        journey.timeline(bigint), journey.flow_stats(text), journey.goal_stats(text),
                        journey.node_stats(text), journey.message_stats(text), journey.split_stats(text),
                        journey.flow_diagram(text), journey._group_id(text), journey._check_contact(bigint),
                        journey._flow_id(text), journey._node_order(jsonb), journey._apply_contact_fields(bigint, jsonb),
                        journey._is_time_zone(text), journey._e164(text, text), journey.record_timeline(text, text),
                        journey._uses_record_type(jsonb, text),
                        journey._insert_contact(jsonb) TO %I', role);
    ELSE
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey.claim(text[], integer, interval),
                        journey.mark_sent(bigint, text, uuid), journey.mark_failed(bigint, text, boolean, uuid),
                        journey.report(text, text, text, timestamptz), journey.receive_sms(text, text, text) TO %I', role);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION journey.grant_role(name, text) FROM PUBLIC;
COMMENT ON FUNCTION journey.grant_role(name, text) IS
  'Grants a role one kind of access: admin (SELECT, INSERT, UPDATE, DELETE on every table but record_types, record_links and writable_tables (SELECT only: attach_table, link and allow_writes write them, after checking the caller''s privileges), SELECT on views, USAGE and SELECT on sequences, EXECUTE on every function but grant_role; never TRIGGER, REFERENCES or TRUNCATE), app (writes contacts, groups, forms, events, enrolls; reads journeys'' state, stats and record_timeline) or relay (only claim, mark_sent(id, provider_message_id, lease_token), mark_failed(id, error, retry, lease_token), report and receive_sms). Run it as the extension''s owner (a superuser); revoke by hand with REVOKE. Objects created later (by an upgrade) are not covered: run it again.';
