-- journey 0.2.0 -> 0.3.0
-- Every change 0.3.0 makes to the schema of 0.2.0, in order, one section per item of issue #11
-- (hardening). tests/upgrade_test.sh upgrades a 0.2.0 database holding journeys mid-way and
-- checks that its schema is then exactly that of a fresh 0.3.0 install, and that the journeys
-- continue.
\echo Use "ALTER EXTENSION journey UPDATE TO '0.3.0'" to load this file. \quit

-- ================================================================ item 1: SECURITY DEFINER and pg_temp
-- Every SQL function (sql/schema.sql, triggers.sql, audience.sql, relay.sql, stats.sql,
-- roles.sql) now has SET search_path = pg_catalog, journey, pg_temp: pg_temp last, so a
-- caller's temporary types and tables are never found before the built-in ones (functions and
-- operators are never looked up in pg_temp). 0.2.0's SECURITY DEFINER functions had
-- pg_catalog, journey, which searches pg_temp first: an app or relay role could make itself
-- superuser with a pg_temp.text domain (tests/pg_regress/sql/definer_attack.sql). The bodies
-- below are 0.2.0's, only the SET changed (_map_fields and _status_rank had none); a later
-- section replaces a function whose body 0.3.0 changes too. claim, report, mark_sent and
-- mark_failed (item 9) and grant_role (item 2) follow in their sections.
-- sql/schema.sql: _delete_contact_enrollments, _delete_version_enrollments, _delete_steps (_settings_replace: engine limits)
CREATE OR REPLACE FUNCTION journey._delete_contact_enrollments() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.enrollments e USING old_rows o WHERE e.contact_id = o.id;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION journey._delete_version_enrollments() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.enrollments e USING old_rows o WHERE e.flow_id = o.flow_id AND e.version = o.version;
    RETURN NULL;
END
$$;
CREATE OR REPLACE FUNCTION journey._delete_steps() RETURNS trigger
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

-- sql/triggers.sql: _apply_contact_fields, _map_fields, _on_form_submission, _on_event, _event_arrived (_enroll, _on_group_joined, _on_form_submitted, _on_event_inserted: flow locks)
CREATE OR REPLACE FUNCTION journey._apply_contact_fields(p_contact bigint, p_fields jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    bad text;
BEGIN
    SELECT k INTO bad FROM jsonb_object_keys(p_fields) k
    WHERE k NOT IN ('external_id', 'email', 'phone', 'first_name', 'last_name', 'birthday',
                    'time_zone', 'attributes', 'email_opt_out', 'sms_opt_out')
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown contact field "%"', bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Contact fields are external_id, email, phone, first_name, last_name, birthday, time_zone, email_opt_out, sms_opt_out and attributes.<key>.';
    END IF;
    IF p_fields ? 'attributes' AND jsonb_typeof(p_fields->'attributes') <> 'object' THEN
        RAISE EXCEPTION 'contact field "attributes" must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass attributes as {"key": value, ...}.';
    END IF;
    UPDATE journey.contacts c SET
        external_id   = CASE WHEN p_fields ? 'external_id' THEN p_fields->>'external_id' ELSE c.external_id END,
        email         = CASE WHEN p_fields ? 'email' THEN p_fields->>'email' ELSE c.email END,
        phone         = CASE WHEN p_fields ? 'phone' THEN p_fields->>'phone' ELSE c.phone END,
        first_name    = CASE WHEN p_fields ? 'first_name' THEN p_fields->>'first_name' ELSE c.first_name END,
        last_name     = CASE WHEN p_fields ? 'last_name' THEN p_fields->>'last_name' ELSE c.last_name END,
        birthday      = CASE WHEN p_fields ? 'birthday' THEN (p_fields->>'birthday')::date ELSE c.birthday END,
        time_zone     = CASE WHEN p_fields ? 'time_zone' THEN p_fields->>'time_zone' ELSE c.time_zone END,
        email_opt_out = CASE WHEN p_fields ? 'email_opt_out' THEN (p_fields->>'email_opt_out')::boolean ELSE c.email_opt_out END,
        sms_opt_out   = CASE WHEN p_fields ? 'sms_opt_out' THEN (p_fields->>'sms_opt_out')::boolean ELSE c.sms_opt_out END,
        attributes    = c.attributes || coalesce(p_fields->'attributes', '{}'),
        updated_at    = now()
    WHERE c.id = p_contact;
END
$$;
CREATE OR REPLACE FUNCTION journey._map_fields(p_data jsonb, p_field_map jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT coalesce(jsonb_object_agg(m.value #>> '{}', p_data->m.key)
                      FILTER (WHERE m.value #>> '{}' NOT LIKE 'attributes.%'), '{}')
           || jsonb_build_object('attributes', coalesce(jsonb_object_agg(substr(m.value #>> '{}', 12), p_data->m.key)
                      FILTER (WHERE m.value #>> '{}' LIKE 'attributes.%'), '{}'))
    FROM jsonb_each(p_field_map) m
    WHERE p_data ? m.key
$$;
CREATE OR REPLACE FUNCTION journey._on_form_submission() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    f journey.forms;
    fields jsonb;
    match_value text;
BEGIN
    SELECT * INTO f FROM journey.forms WHERE id = NEW.form_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'form with id % does not exist', NEW.form_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create the form in journey.forms first.';
    END IF;
    IF NEW.data IS NULL OR jsonb_typeof(NEW.data) <> 'object' THEN
        RAISE EXCEPTION 'submission data for form "%" must be a JSON object', f.name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass data as {"field": value, ...}.';
    END IF;
    fields := journey._map_fields(NEW.data, f.field_map);
    IF NEW.contact_id IS NULL THEN
        match_value := fields->>f.match_on;
        IF match_value IS NULL OR match_value = '' THEN
            RAISE EXCEPTION 'submission for form "%" has no value for "%"', f.name, f.match_on
                USING ERRCODE = 'not_null_violation',
                      HINT = format('The form''s field_map must map a submitted field to %s (the form''s match_on).', f.match_on);
        END IF;
        SELECT c.id INTO NEW.contact_id FROM journey.contacts c
        WHERE CASE f.match_on WHEN 'email' THEN lower(c.email) = lower(match_value)
                              WHEN 'phone' THEN c.phone = match_value
                              ELSE c.external_id = match_value END
        ORDER BY c.id LIMIT 1;
        IF NEW.contact_id IS NULL THEN
            INSERT INTO journey.contacts DEFAULT VALUES RETURNING id INTO NEW.contact_id;
        END IF;
    END IF;
    PERFORM journey._apply_contact_fields(NEW.contact_id, fields);
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION journey._on_event() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    et journey.event_types;
    p jsonb;
    v jsonb;
    want text;
    fields jsonb := '{}';
BEGIN
    SELECT * INTO et FROM journey.event_types WHERE name = NEW.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'event type "%" does not exist', NEW.name
            USING ERRCODE = 'undefined_object', HINT = 'Define it first with journey.define_event(name, params).';
    END IF;
    IF NEW.payload IS NULL OR jsonb_typeof(NEW.payload) <> 'object' THEN
        RAISE EXCEPTION 'payload of event "%" must be a JSON object', NEW.name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass the payload as {"param": value, ...}.';
    END IF;
    FOR p IN SELECT * FROM jsonb_array_elements(et.params) LOOP
        v := NEW.payload -> (p->>'name');
        IF v IS NULL OR jsonb_typeof(v) = 'null' THEN
            IF coalesce((p->>'required')::boolean, false) THEN
                RAISE EXCEPTION 'event "%" is missing required param "%"', NEW.name, p->>'name'
                    USING ERRCODE = 'not_null_violation', HINT = 'Include the param in the payload; journey.event_types lists the params.';
            END IF;
            CONTINUE;
        END IF;
        want := coalesce(p->>'type', 'string');
        IF want <> 'any' AND jsonb_typeof(v) <> want THEN
            RAISE EXCEPTION 'param "%" of event "%" must be of type %, not %', p->>'name', NEW.name, want, jsonb_typeof(v)
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Send the value as the JSON type the event type declares.';
        END IF;
        IF p ? 'pattern' AND jsonb_typeof(v) = 'string' AND NOT (v #>> '{}') ~ (p->>'pattern') THEN
            RAISE EXCEPTION 'param "%" of event "%" does not match pattern %', p->>'name', NEW.name, p->>'pattern'
                USING ERRCODE = 'check_violation', DETAIL = format('value: %s', v #>> '{}'),
                      HINT = 'Send a value that matches the param''s pattern.';
        END IF;
        IF p ? 'contact_field' THEN
            fields := fields || journey._map_fields(jsonb_build_object(p->>'name', v), jsonb_build_object(p->>'name', p->>'contact_field'));
            fields := fields || jsonb_build_object('attributes', coalesce(fields->'attributes', '{}'));
        END IF;
    END LOOP;
    IF fields <> '{}' AND fields <> '{"attributes": {}}' THEN
        PERFORM journey._apply_contact_fields(NEW.contact_id, fields);
    END IF;
    RETURN NEW;
END
$$;
CREATE OR REPLACE FUNCTION journey._event_arrived(p_contacts bigint[], p_names text[]) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    UPDATE journey.enrollments e SET due_at = now(), updated_at = now()
    FROM unnest(p_contacts, p_names) AS u (contact_id, name)
    WHERE e.contact_id = u.contact_id AND e.status = 'active'
      AND e.waiting->>'event' = u.name AND e.due_at > now();
    IF FOUND THEN
        PERFORM journey._wake();
    END IF;
END
$$;

-- sql/audience.sql: upsert_contact, _group_id, _check_contact, add_to_group, remove_from_group, submit_form, define_event, emit
CREATE OR REPLACE FUNCTION journey.upsert_contact(data jsonb) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    cid bigint;
BEGIN
    IF data IS NULL OR jsonb_typeof(data) <> 'object' THEN
        RAISE EXCEPTION 'contact data must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass {"email": ..., "phone": ..., "first_name": ..., "attributes": {...}}.';
    END IF;
    IF data ? 'external_id' THEN
        SELECT id INTO cid FROM journey.contacts WHERE external_id = data->>'external_id';
    END IF;
    IF cid IS NULL AND data ? 'email' THEN
        SELECT id INTO cid FROM journey.contacts WHERE lower(email) = lower(data->>'email') ORDER BY id LIMIT 1;
    END IF;
    IF cid IS NULL AND data ? 'phone' THEN
        SELECT id INTO cid FROM journey.contacts WHERE phone = data->>'phone' ORDER BY id LIMIT 1;
    END IF;
    IF cid IS NULL THEN
        INSERT INTO journey.contacts DEFAULT VALUES RETURNING id INTO cid;
    END IF;
    PERFORM journey._apply_contact_fields(cid, data);
    RETURN cid;
END
$$;
CREATE OR REPLACE FUNCTION journey._group_id(p_group text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    gid bigint;
BEGIN
    IF p_group IS NULL THEN
        RAISE EXCEPTION 'group name must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass a group name from journey.groups.';
    END IF;
    SELECT id INTO gid FROM journey.groups WHERE name = p_group;
    IF gid IS NULL THEN
        RAISE EXCEPTION 'group "%" does not exist', p_group
            USING ERRCODE = 'undefined_object', HINT = 'Create it with INSERT INTO journey.groups (name) VALUES (...).';
    END IF;
    RETURN gid;
END
$$;
CREATE OR REPLACE FUNCTION journey._check_contact(p_contact bigint) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF p_contact IS NULL THEN
        RAISE EXCEPTION 'contact id must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass an id from journey.contacts.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM journey.contacts WHERE id = p_contact) THEN
        RAISE EXCEPTION 'contact % does not exist', p_contact
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create it with journey.upsert_contact(data).';
    END IF;
END
$$;
CREATE OR REPLACE FUNCTION journey.add_to_group(contact bigint, group_name text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    gid bigint := journey._group_id(group_name);
BEGIN
    PERFORM journey._check_contact(contact);
    INSERT INTO journey.group_members (group_id, contact_id) VALUES (gid, contact) ON CONFLICT DO NOTHING;
    RETURN FOUND;
END
$$;
CREATE OR REPLACE FUNCTION journey.remove_from_group(contact bigint, group_name text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    gid bigint := journey._group_id(group_name);
BEGIN
    PERFORM journey._check_contact(contact);
    DELETE FROM journey.group_members WHERE group_id = gid AND contact_id = contact;
    RETURN FOUND;
END
$$;
CREATE OR REPLACE FUNCTION journey.submit_form(form text, data jsonb) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    fid bigint;
    sid bigint;
BEGIN
    IF form IS NULL THEN
        RAISE EXCEPTION 'form name must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass a form name from journey.forms.';
    END IF;
    SELECT id INTO fid FROM journey.forms f WHERE f.name = form;
    IF fid IS NULL THEN
        RAISE EXCEPTION 'form "%" does not exist', form
            USING ERRCODE = 'undefined_object', HINT = 'Create it with INSERT INTO journey.forms (name, field_map) VALUES (...).';
    END IF;
    INSERT INTO journey.form_submissions (form_id, data) VALUES (fid, data) RETURNING id INTO sid;
    RETURN sid;
END
$$;
CREATE OR REPLACE FUNCTION journey.define_event(name text, params jsonb DEFAULT '[]') RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    p jsonb;
BEGIN
    IF name IS NULL THEN
        RAISE EXCEPTION 'event name must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass a name of letters, digits and underscores.';
    END IF;
    IF name !~ '^[A-Za-z0-9_]+$' THEN
        RAISE EXCEPTION 'event name "%" is invalid', name
            USING ERRCODE = 'invalid_name', HINT = 'Use letters, digits and underscores only (no spaces or symbols).';
    END IF;
    IF params IS NULL OR jsonb_typeof(params) <> 'array' THEN
        RAISE EXCEPTION 'params of event "%" must be a JSON array', name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass [{"name": ..., "type": ..., "required": ..., "contact_field": ..., "pattern": ...}].';
    END IF;
    FOR p IN SELECT * FROM jsonb_array_elements(params) LOOP
        IF jsonb_typeof(p) <> 'object' OR jsonb_typeof(p->'name') IS DISTINCT FROM 'string' THEN
            RAISE EXCEPTION 'every param of event "%" needs a "name"', name
                USING ERRCODE = 'invalid_parameter_value', DETAIL = p::text, HINT = 'Each param is {"name": ..., "type": ...}.';
        END IF;
        IF coalesce(p->>'type', 'string') NOT IN ('string', 'number', 'boolean', 'object', 'array', 'any') THEN
            RAISE EXCEPTION 'param "%" of event "%" has unknown type "%"', p->>'name', name, p->>'type'
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Types are string, number, boolean, object, array and any.';
        END IF;
        IF p ? 'pattern' THEN
            BEGIN
                PERFORM '' ~ (p->>'pattern');
            EXCEPTION WHEN invalid_regular_expression THEN
                RAISE EXCEPTION 'param "%" of event "%" has an invalid pattern', p->>'name', name
                    USING ERRCODE = 'invalid_regular_expression', HINT = 'Use a POSIX regular expression.';
            END;
        END IF;
        IF p ? 'contact_field' AND NOT ((p->>'contact_field') IN ('external_id', 'email', 'phone', 'first_name', 'last_name', 'birthday', 'time_zone')
                                        OR (p->>'contact_field') ~ '^attributes\.[A-Za-z0-9_]+$') THEN
            RAISE EXCEPTION 'param "%" of event "%" maps to unknown contact field "%"', p->>'name', name, p->>'contact_field'
                USING ERRCODE = 'invalid_parameter_value', HINT = 'Map to a contact column or attributes.<key>.';
        END IF;
    END LOOP;
    INSERT INTO journey.event_types AS t (name, params) VALUES (define_event.name, define_event.params)
    ON CONFLICT ON CONSTRAINT event_types_pkey DO UPDATE SET params = EXCLUDED.params;
END
$$;
CREATE OR REPLACE FUNCTION journey.emit(event text, contact bigint, payload jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    eid bigint;
BEGIN
    IF event IS NULL THEN
        RAISE EXCEPTION 'event name must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass a name from journey.event_types.';
    END IF;
    PERFORM journey._check_contact(contact);
    INSERT INTO journey.events (name, contact_id, payload) VALUES (event, contact, coalesce(payload, '{}')) RETURNING id INTO eid;
    RETURN eid;
END
$$;

-- sql/relay.sql: _outbox_row, _status_rank
CREATE OR REPLACE FUNCTION journey._outbox_row(p_id bigint) RETURNS journey.outbox
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.outbox;
BEGIN
    IF p_id IS NULL THEN
        RAISE EXCEPTION 'outbox id must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of a claimed row.';
    END IF;
    SELECT * INTO r FROM journey.outbox WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'outbox message % does not exist', p_id
            USING ERRCODE = 'no_data_found', HINT = 'Pass an id returned by journey.claim.';
    END IF;
    RETURN r;
END
$$;
CREATE OR REPLACE FUNCTION journey._status_rank(p_status text) RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT CASE p_status WHEN 'pending' THEN 0 WHEN 'leased' THEN 1 WHEN 'sent' THEN 2
                         WHEN 'delivered' THEN 3 WHEN 'opened' THEN 4 WHEN 'clicked' THEN 5
                         WHEN 'failed' THEN 9 WHEN 'undelivered' THEN 9 WHEN 'bounced' THEN 9 END
$$;

-- sql/stats.sql: _flow_id, flow_stats, goal_stats, timeline
CREATE OR REPLACE FUNCTION journey._flow_id(p_flow text) RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    fid bigint;
BEGIN
    IF p_flow IS NULL THEN
        RAISE EXCEPTION 'flow name must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass a name from journey.flows.';
    END IF;
    SELECT id INTO fid FROM journey.flows WHERE name = p_flow;
    IF fid IS NULL THEN
        RAISE EXCEPTION 'flow "%" does not exist', p_flow
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM journey.flows lists the flows; create one with journey.create_flow.';
    END IF;
    RETURN fid;
END
$$;
CREATE OR REPLACE FUNCTION journey.flow_stats(name text)
RETURNS TABLE (node text, type text, reached bigint, reached_pct numeric, waiting bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(flow_stats.name)
    ), entered AS (
        SELECT count(*) AS n FROM journey.enrollments e, f WHERE e.flow_id = f.id
    ), reach AS (
        SELECT s.node, count(DISTINCT s.enrollment_id) AS n FROM journey.steps s, f WHERE s.flow_id = f.id GROUP BY s.node
    ), wait AS (
        SELECT e.node, count(*) AS n FROM journey.enrollments e, f
        WHERE e.flow_id = f.id AND e.status = 'active' GROUP BY e.node
    )
    SELECT o.node, o.type, coalesce(r.n, 0),
           CASE WHEN entered.n = 0 THEN 0 ELSE round(100.0 * coalesce(r.n, 0) / entered.n, 1) END,
           coalesce(w.n, 0)
    FROM f CROSS JOIN entered CROSS JOIN LATERAL journey._node_order(f.definition) o
    LEFT JOIN reach r ON r.node = o.node
    LEFT JOIN wait w ON w.node = o.node
    ORDER BY o.ord
$$;
CREATE OR REPLACE FUNCTION journey.goal_stats(name text)
RETURNS TABLE (goal text, reached bigint, reached_pct numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(goal_stats.name)
    ), entered AS (
        SELECT count(*) AS n FROM journey.enrollments e, f WHERE e.flow_id = f.id
    ), goals AS (
        SELECT DISTINCT coalesce(o.goal, o.node) AS goal, o.node FROM f, journey._node_order(f.definition) o WHERE o.type = 'goal'
    )
    SELECT g.goal, count(DISTINCT s.enrollment_id),
           CASE WHEN entered.n = 0 THEN 0 ELSE round(100.0 * count(DISTINCT s.enrollment_id) / entered.n, 1) END
    FROM f CROSS JOIN entered CROSS JOIN goals g
    LEFT JOIN journey.steps s ON s.flow_id = f.id AND s.node = g.node AND s.outcome = 'goal'
    GROUP BY g.goal, entered.n
    ORDER BY g.goal
$$;
CREATE OR REPLACE FUNCTION journey.timeline(contact bigint)
RETURNS TABLE (at timestamptz, kind text, flow text, node text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    PERFORM journey._check_contact(contact);
    RETURN QUERY
    SELECT t.at, t.kind, t.flow, t.node, t.detail FROM (
        SELECT e.entered_at AS at, 'enrolled'::text AS kind, f.name AS flow, NULL::text AS node,
               format('enrollment %s (version %s)', e.id, e.version) AS detail, 0 AS o, e.id AS k
        FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.contact_id = timeline.contact
      UNION ALL
        SELECT s.at, 'step', f.name, s.node, s.outcome, 1, s.id
        FROM journey.steps s JOIN journey.flows f ON f.id = s.flow_id
        WHERE s.contact_id = timeline.contact
      UNION ALL
        SELECT m.created_at, 'message', f.name, m.node,
               format('%s to %s: %s', m.channel, coalesce(m.recipient, '?'), m.status), 2, m.id
        FROM journey.outbox m LEFT JOIN journey.flows f ON f.id = m.flow_id
        WHERE m.contact_id = timeline.contact
      UNION ALL
        SELECT e.updated_at, e.status, f.name, e.node, e.last_error, 3, e.id
        FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.contact_id = timeline.contact AND e.status <> 'active'
    ) t
    ORDER BY t.at, t.o, t.k;
END
$$;

-- sql/roles.sql:

-- ================================================================ item 2: admin role and TRIGGER
-- grant_role(..., 'admin') grants an explicit list: SELECT, INSERT, UPDATE, DELETE on tables,
-- SELECT on views, USAGE and SELECT on sequences, EXECUTE on every function but grant_role.
-- 0.2.0 granted ALL: TRIGGER let an admin put a trigger on a table the worker writes as a
-- superuser (the trigger then ran as one), REFERENCES a foreign key that blocks the worker's
-- deletes, TRUNCATE and UPDATE on sequences more than an admin needs.
CREATE OR REPLACE FUNCTION journey.grant_role(role name, kind text) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    obj text;   -- a schema-qualified table, sequence or function, its identifiers quoted
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
        -- an explicit list, never ALL: no TRIGGER, REFERENCES or TRUNCATE (see the top)
        FOR obj IN SELECT format('%I.%I', 'journey', c.relname) FROM pg_class c
                    WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind IN ('r', 'p') ORDER BY c.relname LOOP
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE %s TO %I', obj, role);
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
                        journey.settings, journey.flow_overview TO %I', role);
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey.upsert_contact(jsonb),
                        journey.add_to_group(bigint, text), journey.remove_from_group(bigint, text),
                        journey.submit_form(text, jsonb), journey.define_event(text, jsonb),
                        journey.emit(text, bigint, jsonb), journey.enroll(text, bigint, jsonb),
                        journey.timeline(bigint), journey.flow_stats(text), journey.goal_stats(text),
                        journey.flow_diagram(text), journey._group_id(text), journey._check_contact(bigint),
                        journey._flow_id(text), journey._node_order(jsonb), journey._apply_contact_fields(bigint, jsonb),
                        journey._is_time_zone(text), journey._e164(text, text), journey.record_timeline(text, text) TO %I', role);
    ELSE
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey.claim(text[], integer, interval),
                        journey.mark_sent(bigint, text, uuid), journey.mark_failed(bigint, text, boolean, uuid),
                        journey.report(text, text, text, timestamptz), journey.receive_sms(text, text, text) TO %I', role);
    END IF;
END
$$;
COMMENT ON FUNCTION journey.grant_role(name, text) IS
  'Grants a role one kind of access: admin (SELECT, INSERT, UPDATE, DELETE on every table, SELECT on views, USAGE and SELECT on sequences, EXECUTE on every function but grant_role; never TRIGGER, REFERENCES or TRUNCATE), app (writes contacts, groups, forms, events, enrolls; reads journeys'' state, stats and record_timeline) or relay (only claim, mark_sent(id, provider_message_id, lease_token), mark_failed(id, error, retry, lease_token), report and receive_sms). Run it as the extension''s owner (a superuser); revoke by hand with REVOKE. Objects created later (by an upgrade) are not covered: run it again.';

-- What 0.2.0's grant_role gave beyond that is revoked from every role but the owner: TRIGGER,
-- REFERENCES, TRUNCATE on tables; INSERT, UPDATE, DELETE (and those) on views; UPDATE on
-- sequences; EXECUTE on grant_role. (A DBA's own grants of these are revoked too.)
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT format('%I.%I', 'journey', c.relname) AS obj, c.relkind, a.grantee::regrole::text AS grantee,
                    string_agg(DISTINCT a.privilege_type, ', ' ORDER BY a.privilege_type) AS privileges
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.relnamespace = 'journey'::regnamespace AND a.grantee <> 0 AND a.grantee <> c.relowner
                AND ((c.relkind IN ('r', 'p') AND a.privilege_type IN ('TRIGGER', 'REFERENCES', 'TRUNCATE'))
                  OR (c.relkind IN ('v', 'm') AND a.privilege_type IN ('INSERT', 'UPDATE', 'DELETE', 'TRIGGER', 'REFERENCES', 'TRUNCATE'))
                  OR (c.relkind = 'S' AND a.privilege_type = 'UPDATE'))
              GROUP BY 1, 2, 3 ORDER BY 1, 3 LOOP
        EXECUTE format('REVOKE %s ON %s %s FROM %s CASCADE', r.privileges,
                       CASE r.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.obj, r.grantee);
    END LOOP;
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'journey.grant_role(name, text)'::regprocedure AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION journey.grant_role(name, text) FROM %s CASCADE', r.grantee);
    END LOOP;
END
$$;
-- Triggers someone put on journey's tables with that TRIGGER privilege (any trigger whose
-- function is not journey's own) go: the worker fires them as its role, a superuser by default.
-- Each is named in a WARNING; the owner may create it again, knowing it runs as the worker.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT t.tgname, format('%I.%I', 'journey', c.relname) AS tab, t.tgfoid::regprocedure AS fn
               FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid
              WHERE c.relnamespace = 'journey'::regnamespace AND NOT t.tgisinternal
                AND p.pronamespace <> 'journey'::regnamespace
              ORDER BY 2, 1 LOOP
        RAISE WARNING 'dropping trigger % on % (function %): the journey worker would run it as its own role', r.tgname, r.tab, r.fn;
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, r.tab);
    END LOOP;
END
$$;

-- ================================================================ item 9: relay leases
-- claim gives each claimed row a fresh lease_token (returned with the row); mark_sent and
-- mark_failed take it and count only for the row's current lease, returning boolean (true:
-- this call marked it; false: not the current lease's token, nothing changed). Their 0.2.0
-- signatures are dropped, not kept with a default: a relay not updated fails loudly (function
-- does not exist) instead of being refused silently. Rows leased under 0.2.0 get no token:
-- their lease expires and they are claimed again.
ALTER TABLE journey.outbox ADD COLUMN lease_token uuid;
COMMENT ON TABLE journey.outbox IS
  'Every outbound message, written once (idempotency_key = enrollment:node:seq). Relays claim, mark_sent/mark_failed and report on it. status: pending -> leased -> sent -> delivered -> opened -> clicked; failed, undelivered, bounced are terminal. lease_token is set by each claim (a fresh uuid) and cleared when the lease ends; mark_sent and mark_failed count only with the current one.';

CREATE OR REPLACE FUNCTION journey.claim(channels text[] DEFAULT NULL, max integer DEFAULT 100, lease interval DEFAULT '5 minutes')
RETURNS SETOF journey.outbox
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF max IS NULL OR max < 1 OR max > 10000 THEN
        RAISE EXCEPTION 'claim max must be between 1 and 10000, not %', coalesce(max::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Claim in batches of 1 to 10000 rows.';
    END IF;
    IF lease IS NULL OR lease < interval '1 second' OR lease > interval '1 day' THEN
        RAISE EXCEPTION 'claim lease must be between 1 second and 1 day, not %', coalesce(lease::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A lease is how long the relay may hold the rows before others may claim them.';
    END IF;
    IF channels IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(channels) c
            WHERE c IS NULL OR c NOT IN ('sms', 'email', 'whatsapp', 'admin_email', 'task', 'webhook')) THEN
        RAISE EXCEPTION 'unknown channel in %', channels
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Channels are sms, email, whatsapp, admin_email, task and webhook.';
    END IF;
    RETURN QUERY
    UPDATE journey.outbox o
       SET status = 'leased', leased_until = now() + lease, lease_token = gen_random_uuid(), attempts = o.attempts + 1
     WHERE o.id = ANY (ARRAY(
            SELECT c.id FROM journey.outbox c
             WHERE (c.status = 'pending' OR (c.status = 'leased' AND c.leased_until < now()))
               AND (c.not_before IS NULL OR c.not_before <= now())
               AND (channels IS NULL OR c.channel = ANY (channels))
             ORDER BY c.id
             LIMIT max
             FOR UPDATE SKIP LOCKED))
       AND (o.status = 'pending' OR (o.status = 'leased' AND o.leased_until < now()))
    RETURNING o.*;
END
$$;
COMMENT ON FUNCTION journey.claim(text[], integer, interval) IS
  'Leases up to max pending messages (optionally of the given channels) whose not_before has passed, oldest first, with FOR UPDATE SKIP LOCKED: concurrent relays never get the same row. Each claimed row gets a fresh lease_token (returned with it) that mark_sent and mark_failed require. A row whose lease expired can be claimed again, with a new token: the old one no longer counts.';

-- mark_sent and mark_failed count only for the current lease: the row must be leased and the
-- token the one its latest claim returned. A relay whose lease expired still holds the current
-- token until another relay claims the row; after that its late calls return false and change
-- nothing. Both clear the token, so a repeated call returns false too.
CREATE FUNCTION journey.mark_sent(id bigint, provider_message_id text, lease_token uuid) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.outbox := journey._outbox_row(id);
BEGIN
    IF r.status <> 'leased' OR mark_sent.lease_token IS NULL OR r.lease_token IS DISTINCT FROM mark_sent.lease_token THEN
        RETURN false;   -- not this relay's current lease (expired and re-claimed, never claimed, already marked)
    END IF;
    UPDATE journey.outbox o
       SET status = 'sent', sent_at = now(), leased_until = NULL, lease_token = NULL, last_error = NULL,
           provider_message_id = coalesce(mark_sent.provider_message_id, o.provider_message_id)
     WHERE o.id = r.id AND o.contact_id = r.contact_id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION journey.mark_sent(bigint, text, uuid) IS
  'Marks a claimed message sent, storing the provider''s message id (may be NULL) for reports. Counts only with the lease_token of the row''s current lease: returns true when this call marked it; false, changing nothing, when the token is NULL, another relay re-claimed the row after this lease expired, the row was never claimed with this token, or it is already marked. An unknown id is an error.';
REVOKE ALL ON FUNCTION journey.mark_sent(bigint, text, uuid) FROM PUBLIC;

CREATE FUNCTION journey.mark_failed(id bigint, error text, retry boolean, lease_token uuid) RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.outbox := journey._outbox_row(id);
    max_attempts integer := (SELECT s.max_attempts FROM journey.settings s);
    new_status text;
BEGIN
    IF r.status <> 'leased' OR mark_failed.lease_token IS NULL OR r.lease_token IS DISTINCT FROM mark_failed.lease_token THEN
        RETURN false;   -- not this relay's current lease: nothing to do
    END IF;
    IF coalesce(retry, true) AND r.attempts < max_attempts THEN
        new_status := 'pending';
    ELSE
        new_status := 'failed';
    END IF;
    UPDATE journey.outbox o
       SET status = new_status, leased_until = NULL, lease_token = NULL, last_error = mark_failed.error,
           not_before = CASE WHEN new_status = 'pending'
                             THEN now() + least(interval '1 hour', interval '30 seconds' * power(2, greatest(r.attempts - 1, 0)))
                             ELSE o.not_before END
     WHERE o.id = r.id AND o.contact_id = r.contact_id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION journey.mark_failed(bigint, text, boolean, uuid) IS
  'Records a failed send of a claimed message. Counts only with the lease_token of the row''s current lease (like mark_sent): returns true when this call recorded it; false, changing nothing, otherwise. With retry (NULL = true) and fewer than settings.max_attempts attempts, the row goes back to pending with not_before = now() + 30 s * 2^(attempts-1) (at most 1 hour); otherwise it becomes terminal ''failed''. An unknown id is an error.';
REVOKE ALL ON FUNCTION journey.mark_failed(bigint, text, boolean, uuid) FROM PUBLIC;

-- Roles that may call 0.2.0's mark_sent / mark_failed (relays, admins) may call the new ones.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid IN ('journey.mark_sent(bigint, text)'::regprocedure, 'journey.mark_failed(bigint, text, boolean)'::regprocedure)
                AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey.mark_sent(bigint, text, uuid), journey.mark_failed(bigint, text, boolean, uuid) TO %s', r.grantee);
    END LOOP;
END
$$;
DROP FUNCTION journey.mark_sent(bigint, text);
DROP FUNCTION journey.mark_failed(bigint, text, boolean);

CREATE OR REPLACE FUNCTION journey.report(provider_message_id text, status text, provider_event_id text DEFAULT NULL, at timestamptz DEFAULT now())
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.outbox;
    inserted boolean;
BEGIN
    IF provider_message_id IS NULL THEN
        RAISE EXCEPTION 'provider_message_id must not be NULL' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass the id given to journey.mark_sent.';
    END IF;
    IF status IS NULL OR status NOT IN ('sent', 'delivered', 'opened', 'clicked', 'failed', 'undelivered', 'bounced') THEN
        RAISE EXCEPTION 'unknown delivery status "%"', coalesce(status, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Statuses are sent, delivered, opened, clicked, failed, undelivered and bounced.';
    END IF;
    IF at IS NULL THEN
        RAISE EXCEPTION 'report time must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Omit at to use now().';
    END IF;
    SELECT * INTO r FROM journey.outbox o WHERE o.provider_message_id = report.provider_message_id ORDER BY o.id LIMIT 1 FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;   -- unknown provider message id: nothing recorded (documented)
    END IF;
    INSERT INTO journey.delivery_reports (outbox_id, contact_id, status, provider_event_id, at)
    VALUES (r.id, r.contact_id, report.status, report.provider_event_id, report.at)
    ON CONFLICT ON CONSTRAINT delivery_reports_event DO NOTHING;
    GET DIAGNOSTICS inserted = ROW_COUNT;
    IF NOT inserted THEN
        RETURN false;   -- this provider event was already recorded
    END IF;
    IF journey._status_rank(report.status) > journey._status_rank(r.status) AND journey._status_rank(r.status) < 9 THEN
        UPDATE journey.outbox o SET
            status = report.status,
            leased_until = NULL,
            lease_token = NULL,
            sent_at = coalesce(o.sent_at, report.at),
            delivered_at = CASE WHEN report.status IN ('delivered', 'opened', 'clicked') THEN coalesce(o.delivered_at, report.at) ELSE o.delivered_at END,
            opened_at = CASE WHEN report.status IN ('opened', 'clicked') THEN coalesce(o.opened_at, report.at) ELSE o.opened_at END,
            clicked_at = CASE WHEN report.status = 'clicked' THEN coalesce(o.clicked_at, report.at) ELSE o.clicked_at END
        WHERE o.id = r.id AND o.contact_id = r.contact_id;
        -- wake an enrollment waiting in a check node on this message
        UPDATE journey.enrollments e SET due_at = now(), updated_at = now()
         WHERE e.id = r.enrollment_id AND e.contact_id = r.contact_id AND e.status = 'active'
           AND e.waiting->>'message' = r.node AND e.due_at > now();
        IF FOUND THEN
            PERFORM journey._wake();
        END IF;
    END IF;
    RETURN true;
END
$$;

-- ---------------------------------------------------------------- engine limits (items 3, 5)
-- The limits of a rendered message (a body past max_message_bytes or an SMS past
-- max_sms_segments fails its enrollment), copied by the restore trigger too.
ALTER TABLE journey.settings
    ADD COLUMN max_message_bytes integer NOT NULL DEFAULT 262144 CHECK (max_message_bytes BETWEEN 1024 AND 10485760),
    ADD COLUMN max_sms_segments  integer NOT NULL DEFAULT 10 CHECK (max_sms_segments BETWEEN 1 AND 100);
COMMENT ON TABLE journey.settings IS
  'Account settings, exactly one row: default time zone, SMS quiet hours (contact''s zone, may span midnight), unsubscribe text, admin e-mail, quotas (NULL = unlimited), max_attempts for retries (failed sends reported by relays, transient step failures in the engine), and the limits of a rendered message: max_message_bytes for a body (e-mail, WhatsApp, admin e-mail, webhook, SMS text) and max_sms_segments for an SMS; a message past them fails its enrollment.';
CREATE OR REPLACE FUNCTION journey._settings_replace() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM journey.settings) THEN
        UPDATE journey.settings SET
            time_zone = NEW.time_zone, quiet_hours_start = NEW.quiet_hours_start,
            quiet_hours_end = NEW.quiet_hours_end, sms_unsubscribe_text = NEW.sms_unsubscribe_text,
            admin_email = NEW.admin_email, sms_quota = NEW.sms_quota, email_quota = NEW.email_quota,
            max_attempts = NEW.max_attempts, max_message_bytes = NEW.max_message_bytes,
            max_sms_segments = NEW.max_sms_segments;
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;

-- The functions written in Rust that run SQL resolve names only in pg_catalog and journey.
ALTER FUNCTION journey.run_due(integer, timestamptz) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey.create_flow(text, jsonb) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey.update_flow(text, jsonb) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey.validate_flow(text) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey.activate_flow(text, boolean, text) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey.pause_flow(text) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey.archive_flow(text) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey.enroll(text, bigint, jsonb) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey.flow_diagram(text) SET search_path = pg_catalog, journey, pg_temp;
ALTER FUNCTION journey._matches(jsonb, bigint, jsonb) SET search_path = pg_catalog, journey, pg_temp;

-- ================================================================ item 10 (and 4): flow locks
-- Races between enrolling and flow lifecycle changes. Enrolling takes a shared lock per flow
-- (journey._lock_flows: a heavyweight lock on the object (journey.flows, flow id), nothing
-- written) in journey._enroll and in the audience triggers, which route again after taking it;
-- activate_flow, update_flow, pause_flow and archive_flow take the exclusive one (in the library)
-- before they read the flow, and activate_flow(include_existing) locks the contacts it enrolls
-- FOR KEY SHARE. journey.enroll no longer locks the flow row FOR UPDATE (which needed UPDATE on
-- flows) and is SECURITY DEFINER, so the app role may call it (item 4) without any privilege on
-- journey._enroll. tests/isolation/specs/ hold the races.
CREATE FUNCTION journey._lock_flows(flows bigint[]) RETURNS void
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'lock_flows_wrapper';
REVOKE ALL ON FUNCTION journey._lock_flows(bigint[]) FROM PUBLIC;
COMMENT ON FUNCTION journey._lock_flows(bigint[]) IS 'Internal: the shared lock of enrolling on each of these flows, held until the transaction ends. journey._enroll and the audience triggers take it before they read the flows; activate_flow, update_flow, pause_flow and archive_flow take the exclusive one before they read the flow, so either waits for the other to commit and then sees its changes. A heavyweight lock on the object (journey.flows, flow id) in the lock manager: pg_locks shows it as locktype object, classid journey.flows, objid the flow id; nothing is written and no SQL statement can take it.';

CREATE OR REPLACE FUNCTION journey._enroll(p_flows bigint[], p_contacts bigint[], p_data jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    ids bigint[];
    flows bigint[];
    nodes text[];
BEGIN
    -- The shared flow lock (journey._lock_flows): activate_flow, update_flow, pause_flow and
    -- archive_flow take the exclusive one before they read the flow, so they wait for this
    -- transaction (and then see its enrollments), or this waits for them and the INSERT below,
    -- a new statement with a new snapshot (READ COMMITTED), sees the flow as they left it.
    PERFORM journey._lock_flows(p_flows);
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- REPEATABLE READ and SERIALIZABLE keep the transaction's snapshot: a flow changed since
        -- it was taken would be enrolled into as it was. Locking the flow rows raises a
        -- serialization failure (40001, the writer retries) instead. A row lock writes, so only
        -- these isolation levels pay for it.
        PERFORM FROM journey.flows f WHERE f.id = ANY (p_flows) ORDER BY f.id FOR SHARE OF f;
    END IF;
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
COMMENT ON FUNCTION journey._enroll(bigint[], bigint[], jsonb[]) IS
  'Internal: enrolls (flow, contact, data) triples into active flows, honouring one active enrollment per (flow, contact) and the flow''s reentry rule; returns the new enrollment ids. Takes the shared lock of each flow first (journey._lock_flows), so it never enrolls into a version or status that a concurrent activate_flow, update_flow, pause_flow or archive_flow replaced; at REPEATABLE READ or SERIALIZABLE a flow changed since the snapshot is a serialization failure.';

CREATE OR REPLACE FUNCTION journey._on_group_joined() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
BEGIN
    -- The flows these rows route to, locked before routing again with a new snapshot: a
    -- lifecycle change committed meanwhile (new version, other trigger groups, paused) is seen.
    -- A flow activated after the first read is left out (the write came first).
    SELECT array_agg(DISTINCT t.flow_id) INTO flows
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'group_joined' AND t.key = n.group_id::text;
    IF flows IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM journey._lock_flows(flows);
    PERFORM journey._enroll(array_agg(t.flow_id), array_agg(n.contact_id),
                            array_agg(jsonb_build_object('trigger', 'group_joined', 'group', g.name)))
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'group_joined' AND t.key = n.group_id::text
                                AND t.flow_id = ANY (flows)
    JOIN journey.groups g ON g.id = n.group_id
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_group_joined() IS 'Trigger: enrolls new group members into active group_joined flows of their group.';

CREATE OR REPLACE FUNCTION journey._on_form_submitted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
BEGIN
    -- locked, then routed again with a new snapshot (see journey._on_group_joined)
    SELECT array_agg(DISTINCT t.flow_id) INTO flows
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'form_submitted' AND t.key = n.form_id::text;
    IF flows IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM journey._lock_flows(flows);
    PERFORM journey._enroll(array_agg(t.flow_id), array_agg(n.contact_id),
                            array_agg(n.data || jsonb_build_object('trigger', 'form_submitted', 'form', f.name, 'submission_id', n.id)))
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'form_submitted' AND t.key = n.form_id::text
                                AND t.flow_id = ANY (flows)
    JOIN journey.forms f ON f.id = n.form_id
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_form_submitted() IS 'Trigger: enrolls submitters into active form_submitted flows of the form; the submission data becomes the enrollment''s event payload.';

CREATE OR REPLACE FUNCTION journey._on_event_inserted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
BEGIN
    -- locked, then routed again with a new snapshot (see journey._on_group_joined); the where
    -- predicates are evaluated on the second read only
    SELECT array_agg(DISTINCT t.flow_id) INTO flows
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'event' AND t.key = n.name;
    IF flows IS NOT NULL THEN
        PERFORM journey._lock_flows(flows);
        PERFORM journey._enroll(array_agg(t.flow_id), array_agg(n.contact_id),
                                array_agg(n.payload || jsonb_build_object('trigger', 'event', 'event', n.name, 'event_id', n.id)))
        FROM new_rows n
        JOIN journey.flow_triggers t ON t.kind = 'event' AND t.key = n.name AND t.flow_id = ANY (flows)
        -- (the key is tested again inside the expression: the planner may order join quals as it
        -- likes, but not the operands of AND, so a where is only read for the events it is for)
        WHERE t.condition IS NULL OR (t.key = n.name AND journey._matches(t.condition, n.contact_id, n.payload))
        HAVING count(*) > 0;
    END IF;
    PERFORM journey._event_arrived(array_agg(n.contact_id), array_agg(n.name)) FROM new_rows n;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_event_inserted() IS 'Trigger: enrolls the contact into active event flows whose where predicate matches the payload, and wakes enrollments waiting for the event.';

ALTER FUNCTION journey.enroll(text, bigint, jsonb) SECURITY DEFINER SET search_path = pg_catalog, journey, pg_temp;

-- ================================================================ comments that named a design file outside the repository
COMMENT ON FUNCTION journey.create_flow(text, jsonb) IS 'Creates a draft flow (version 1) from a definition ({triggers, reentry, start, nodes}, see the README); returns its id. The definition may be incomplete: journey.validate_flow lists what is missing.';
COMMENT ON FUNCTION journey._matches(jsonb, bigint, jsonb) IS 'Internal: evaluates a predicate (the if/where language of flow definitions: field/op/value, all, any, not, in_group) against a contact and an event payload.';

-- ================================================================ steps outcomes
-- The outcomes the engine writes, as its Outcome enum lists them.
COMMENT ON TABLE journey.steps IS
  'Append-only history: one row per node an enrollment entered, with what the node did in outcome, one of: sent, created, queued, suppressed: <reason>, updated, waited, goal, exited, then, else, branch <n>, yes, yes: <status>, no: <reason>, waiting, failed: <error>, retry: <error>. created is a task, queued a webhook; a send is suppressed for sms_opt_out, email_opt_out, no phone, no email or no admin_email; a check writes yes: <status> (the message''s status), a wait_event yes; no: <reason> is a message status, no message was sent, or timed out; retry is a transient failure retried later. Stats and timelines read it. Rows go with their enrollment (trigger enrollments_delete_steps); no foreign key, so the engine''s batch insert pays no per-row check.';

-- ================================================================ issue 13: settings for quotas, phones, date triggers
ALTER TABLE journey.settings
    ADD COLUMN whatsapp_quota  integer CHECK (whatsapp_quota >= 0),
    ADD COLUMN default_country text CHECK (default_country ~ '^[A-Z]{2}$'),
    ADD COLUMN date_trigger_at time NOT NULL DEFAULT '09:00',
    ADD COLUMN date_catch_up   interval NOT NULL DEFAULT '1 day' CHECK (date_catch_up BETWEEN interval '0' AND interval '366 days');
COMMENT ON TABLE journey.settings IS
  'Account settings, exactly one row: default time zone, SMS quiet hours (contact''s zone, may span midnight), unsubscribe text, admin e-mail, quotas (NULL = unlimited), max_attempts for retries (failed sends reported by relays, transient step failures in the engine), and the limits of a rendered message: max_message_bytes for a body (e-mail, WhatsApp, admin e-mail, webhook, SMS text) and max_sms_segments for an SMS; a message past them fails its enrollment. whatsapp_quota counts WhatsApp messages when set (sms_quota counts SMS segments, email_quota e-mails; admin e-mails are never counted). default_country (ISO 3166 alpha-2, e.g. IL) turns national phone numbers into E.164. date_trigger_at is the local time of day date triggers fire at when they give no at; date_catch_up is how late a date occurrence may still be enrolled after downtime.';

-- ================================================================ issue 13: trigger kinds, date triggers
-- flow_triggers: one row per trigger (pos: its place in the definition), params for the kinds
-- that have settings (date rules, contact_updated fields), and the new kinds.
ALTER TABLE journey.flow_triggers DROP CONSTRAINT flow_triggers_kind_check;
ALTER TABLE journey.flow_triggers DROP CONSTRAINT flow_triggers_pkey;
ALTER TABLE journey.flow_triggers
    ADD COLUMN pos    integer NOT NULL DEFAULT 0,
    ADD COLUMN params jsonb;
-- (0.2.0 wrote one row per (kind, key, flow): pos 0 keeps them unique; the next activation
-- rewrites them with their positions)
ALTER TABLE journey.flow_triggers
    ADD CONSTRAINT flow_triggers_pkey PRIMARY KEY (kind, key, flow_id, pos),
    ADD CONSTRAINT flow_triggers_kind_check CHECK (kind IN ('group_joined', 'group_left', 'form_submitted', 'event',
                                                          'date', 'contact_created', 'contact_updated'));
COMMENT ON TABLE journey.flow_triggers IS
  'Derived routing table: (trigger kind, key) -> active flow, one row per trigger of the flow''s definition (pos: its position in triggers). Rebuilt at activation, emptied at pause/archive, so a write with no matching flow costs one index probe. key is the group id (group_joined, group_left), form id, event name, date field (date: birthday or attributes.<key>) or empty (contact_created, contact_updated); condition is the trigger''s where; params holds a date trigger''s rules (repeat, offset_days, at, feb29, groups and their group_ids) or contact_updated''s fields.';

CREATE TABLE journey.date_schedule (
    contact_id bigint NOT NULL,
    flow_id    bigint NOT NULL REFERENCES journey.flows (id) ON DELETE CASCADE,
    pos        integer NOT NULL,
    fire_at    timestamptz NOT NULL,
    PRIMARY KEY (contact_id, flow_id, pos)
);
CREATE INDEX date_schedule_due ON journey.date_schedule (fire_at);
CREATE INDEX date_schedule_flow ON journey.date_schedule (flow_id);
COMMENT ON TABLE journey.date_schedule IS
  'Derived: the next occurrence of each date trigger (flow, pos = its flow_triggers row) for each contact with a date in its field, at fire_at. Filled at activation, kept current by the contacts'' triggers (a changed date, attribute or zone moves it; a deleted contact takes it along) and by settings changes, advanced by journey._date_pass once enrolled (or skipped as too late), emptied at pause/archive. The pass finds due rows by an index probe on fire_at.';

SELECT pg_catalog.pg_extension_config_dump('journey.date_schedule', '');

CREATE OR REPLACE FUNCTION journey._delete_contact_enrollments() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.enrollments e USING old_rows o WHERE e.contact_id = o.id;
    DELETE FROM journey.date_schedule d USING old_rows o WHERE d.contact_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._delete_contact_enrollments() IS 'Trigger: deletes the enrollments (and so their steps) and the date schedule rows of deleted contacts.';

CREATE FUNCTION journey._date_next(days integer, yearly boolean, offset_days integer, at_seconds integer,
                                   mar1 boolean, zone text, after timestamptz)
RETURNS timestamptz
STRICT STABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'date_next_wrapper';
CREATE FUNCTION journey._date_days(text text, zone text) RETURNS integer
IMMUTABLE STRICT PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'date_days_wrapper';
COMMENT ON FUNCTION journey._date_next(integer, boolean, integer, integer, boolean, text, timestamptz) IS 'Internal: when a date trigger (yearly or once, offset_days, at as seconds after midnight, Feb 29 on Mar 1 or Feb 28) next fires after a time for a date given as days since 2000-01-01, in a zone; NULL when never.';
COMMENT ON FUNCTION journey._date_days(text, text) IS 'Internal: the date a contact attribute holds (an ISO date, or a timestamp''s date in the zone) as days since 2000-01-01; NULL when it holds none.';

-- sql/dates.sql as a fresh install has it
-- Date triggers: the schedule of next occurrences (journey.date_schedule, in schema.sql), kept
-- current by the contacts' and settings' triggers, and the pass that enrolls what is due.
-- The occurrence arithmetic (anniversaries, Feb 29, offsets, local times across DST) is Rust:
-- journey._date_next and journey._date_days (src/api/dates.rs, src/engine/occurrence.rs).

-- When a date trigger next fires after p_after for a contact (NULL: no date in the field, or a
-- `once` date already past). Not SECURITY DEFINER and without a SET clause, so the planner
-- inlines it into the set-based statements below (whose functions pin search_path).
CREATE FUNCTION journey._date_fire_at(p_key text, p_params jsonb, p_birthday date, p_attributes jsonb,
                                      p_zone text, p_default_at time, p_after timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
AS $$
    SELECT journey._date_next(
        CASE WHEN p_key = 'birthday' THEN CASE WHEN isfinite(p_birthday) THEN p_birthday - DATE '2000-01-01' END
             ELSE journey._date_days(p_attributes ->> substr(p_key, 12), p_zone) END,
        p_params ->> 'repeat' = 'yearly',
        (p_params ->> 'offset_days')::integer,
        extract(epoch FROM coalesce((p_params ->> 'at')::time, p_default_at))::integer,
        p_params ->> 'feb29' = 'mar1',
        p_zone, p_after)
$$;
COMMENT ON FUNCTION journey._date_fire_at(text, jsonb, date, jsonb, text, time, timestamptz) IS
  'Internal: when the date trigger with this key (birthday or attributes.<key>) and params next fires after p_after for a contact with this birthday, attributes and zone; NULL when its field holds no date or a once date is past.';

-- Recomputes the schedule rows of these (contact, flow, trigger position) triples: the next
-- occurrence after p_after, or no row when there is none.
CREATE FUNCTION journey._date_schedule(p_contacts bigint[], p_flows bigint[], p_pos integer[], p_after timestamptz)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.date_schedule d
    USING unnest(p_contacts, p_flows, p_pos) AS u (contact_id, flow_id, pos)
    WHERE d.contact_id = u.contact_id AND d.flow_id = u.flow_id AND d.pos = u.pos;
    INSERT INTO journey.date_schedule (contact_id, flow_id, pos, fire_at)
    SELECT u.contact_id, u.flow_id, u.pos, x.fire_at
    FROM unnest(p_contacts, p_flows, p_pos) AS u (contact_id, flow_id, pos)
    JOIN journey.flow_triggers t ON t.kind = 'date' AND t.flow_id = u.flow_id AND t.pos = u.pos
    JOIN journey.contacts c ON c.id = u.contact_id
    CROSS JOIN journey.settings s
    CROSS JOIN LATERAL (SELECT journey._date_fire_at(t.key, t.params, c.birthday, c.attributes,
                               coalesce(c.time_zone, s.time_zone), s.date_trigger_at, p_after) AS fire_at) x
    WHERE x.fire_at IS NOT NULL
    ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION journey._date_schedule(bigint[], bigint[], integer[], timestamptz) IS
  'Internal: recomputes the date_schedule rows of these (contact, flow, trigger position) triples: the next occurrence firing after p_after, or none.';

-- Every contact with a value in the field of one of the flow's date triggers (activation).
CREATE FUNCTION journey._date_schedule_flow(p_flow bigint, p_after timestamptz) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    PERFORM journey._date_schedule(array_agg(c.id), array_agg(t.flow_id), array_agg(t.pos), p_after)
    FROM journey.flow_triggers t
    JOIN journey.contacts c ON CASE WHEN t.key = 'birthday' THEN c.birthday IS NOT NULL
                                    ELSE c.attributes ? substr(t.key, 12) END
    WHERE t.kind = 'date' AND t.flow_id = p_flow
    HAVING count(*) > 0;
END
$$;
COMMENT ON FUNCTION journey._date_schedule_flow(bigint, timestamptz) IS
  'Internal: schedules the next occurrence after p_after of each date trigger of the flow for every contact with a value in its field (activate_flow; with include_existing p_after is now() - settings.date_catch_up, so occurrences passed within the catch-up window are enrolled by the next pass).';

-- contacts AFTER INSERT: schedule the new contacts' dates.
CREATE FUNCTION journey._on_contacts_dated() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM journey.flow_triggers WHERE kind = 'date') THEN
        RETURN NULL;   -- no date flow: one index probe
    END IF;
    PERFORM journey._date_schedule(array_agg(n.id), array_agg(t.flow_id), array_agg(t.pos), now())
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'date'
    WHERE CASE WHEN t.key = 'birthday' THEN n.birthday IS NOT NULL ELSE n.attributes ? substr(t.key, 12) END
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_contacts_dated() IS 'Trigger: schedules the date occurrences of new contacts (one index probe when no active flow has a date trigger).';
CREATE TRIGGER contacts_dated AFTER INSERT ON journey.contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._on_contacts_dated();

-- contacts AFTER UPDATE: a changed date (the trigger's field) or zone moves the next occurrence.
CREATE FUNCTION journey._on_contacts_redated() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM journey.flow_triggers WHERE kind = 'date') THEN
        RETURN NULL;
    END IF;
    PERFORM journey._date_schedule(array_agg(n.id), array_agg(t.flow_id), array_agg(t.pos), now())
    FROM new_rows n
    JOIN old_rows o ON o.id = n.id
    JOIN journey.flow_triggers t ON t.kind = 'date'
    WHERE n.time_zone IS DISTINCT FROM o.time_zone
       OR CASE WHEN t.key = 'birthday' THEN n.birthday IS DISTINCT FROM o.birthday
               ELSE n.attributes -> substr(t.key, 12) IS DISTINCT FROM o.attributes -> substr(t.key, 12) END
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_contacts_redated() IS 'Trigger: reschedules the date occurrences of contacts whose date field or time zone changed (the next occurrence after now; one already enrolled is not enrolled again).';
CREATE TRIGGER contacts_redated AFTER UPDATE ON journey.contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION journey._on_contacts_redated();

-- settings AFTER UPDATE: the default zone and time of day are part of every occurrence.
CREATE FUNCTION journey._on_settings_redated() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    PERFORM journey._date_schedule(array_agg(d.contact_id), array_agg(d.flow_id), array_agg(d.pos), now())
    FROM journey.date_schedule d
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_settings_redated() IS 'Trigger: reschedules every date occurrence when settings.time_zone or settings.date_trigger_at changes.';
CREATE TRIGGER settings_redated AFTER UPDATE ON journey.settings
    FOR EACH ROW WHEN (OLD.time_zone IS DISTINCT FROM NEW.time_zone OR OLD.date_trigger_at IS DISTINCT FROM NEW.date_trigger_at)
    EXECUTE FUNCTION journey._on_settings_redated();

-- Enrolls date occurrences: one enrollment per (flow, contact, occurrence) ever (the unique
-- index enrollments_flow_contact), whatever the flow's reentry (a yearly flow runs every year),
-- never two active at once (an occurrence meeting an enrollment still active is skipped).
CREATE FUNCTION journey._enroll_occurrences(p_flows bigint[], p_contacts bigint[], p_data jsonb[],
                                            p_occurrences text[], p_due timestamptz)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    n integer;
    flows bigint[];
    nodes text[];
BEGIN
    PERFORM journey._lock_flows(p_flows);   -- as journey._enroll
    INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at, data, occurrence)
    SELECT DISTINCT ON (f.id, u.contact_id)
           f.id, f.version, u.contact_id, f.start_node, p_due, u.data, u.occurrence
    FROM unnest(p_flows, p_contacts, p_data, p_occurrences) AS u (flow_id, contact_id, data, occurrence)
    JOIN journey.flows f ON f.id = u.flow_id AND f.status = 'active'
    WHERE NOT EXISTS (SELECT 1 FROM journey.enrollments e
                      WHERE e.flow_id = f.id AND e.contact_id = u.contact_id
                        AND (e.status = 'active' OR e.occurrence = u.occurrence))
    ORDER BY f.id, u.contact_id
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
        PERFORM journey._wake();
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION journey._enroll_occurrences(bigint[], bigint[], jsonb[], text[], timestamptz) IS
  'Internal: enrolls (flow, contact, data, occurrence) into active flows (and, frozen, flows paused by an edit or a quota), due at p_due: at most one enrollment per occurrence ever and one active per (flow, contact), whatever the flow''s reentry. Returns how many it enrolled. Takes the shared flow locks first, as journey._enroll.';

-- The due occurrences as of p_at (at most p_max): those that fired less than
-- settings.date_catch_up ago are enrolled (when the contact is in the trigger's groups and its
-- where holds), older ones skipped; each row then moves to its next occurrence (or goes).
-- FOR UPDATE SKIP LOCKED: concurrent passes (the worker, run_due callers) take disjoint rows.
CREATE FUNCTION journey._date_pass(p_at timestamptz, p_max integer) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    s journey.settings;
    v_contacts bigint[]; v_flows bigint[]; v_pos integer[]; v_fire timestamptz[];
    e_flows bigint[]; e_contacts bigint[]; e_data jsonb[]; e_occ text[];
    n integer := 0;
BEGIN
    SELECT array_agg(d.contact_id), array_agg(d.flow_id), array_agg(d.pos), array_agg(d.fire_at)
      INTO v_contacts, v_flows, v_pos, v_fire
    FROM (SELECT d.contact_id, d.flow_id, d.pos, d.fire_at FROM journey.date_schedule d
          WHERE d.fire_at <= p_at ORDER BY d.fire_at LIMIT p_max FOR UPDATE SKIP LOCKED) d;
    IF v_contacts IS NULL THEN
        RETURN 0;
    END IF;
    SELECT * INTO s FROM journey.settings;
    SELECT array_agg(x.flow_id), array_agg(x.contact_id), array_agg(x.data), array_agg(x.occurrence)
      INTO e_flows, e_contacts, e_data, e_occ
    FROM (SELECT u.flow_id, u.contact_id, t.condition, o.occurrence,
                 jsonb_build_object('trigger', 'date', 'field', t.key,
                     'date', CASE WHEN t.key = 'birthday' THEN to_jsonb(k.birthday)
                                  ELSE k.attributes -> substr(t.key, 12) END,
                     'occurrence', o.occurrence, 'scheduled_at', u.fire_at,
                     'late', p_at - u.fire_at > interval '5 minutes') AS data
          FROM unnest(v_contacts, v_flows, v_pos, v_fire) AS u (contact_id, flow_id, pos, fire_at)
          JOIN journey.flow_triggers t ON t.kind = 'date' AND t.flow_id = u.flow_id AND t.pos = u.pos
          JOIN journey.contacts k ON k.id = u.contact_id
          CROSS JOIN LATERAL (SELECT to_char(u.fire_at AT TIME ZONE coalesce(k.time_zone, s.time_zone),
                                             'YYYY-MM-DD') AS occurrence) o
          WHERE u.fire_at > p_at - s.date_catch_up
            AND (coalesce(jsonb_array_length(t.params -> 'group_ids'), 0) = 0
                 OR EXISTS (SELECT 1 FROM journey.group_members m
                            WHERE m.contact_id = u.contact_id
                              AND m.group_id IN (SELECT jsonb_array_elements_text(t.params -> 'group_ids')::bigint)))
         ) x
    WHERE x.condition IS NULL OR journey._date_matches(x.condition, x.contact_id, x.data);
    IF e_flows IS NOT NULL THEN
        n := journey._enroll_occurrences(e_flows, e_contacts, e_data, e_occ, p_at);
    END IF;
    -- advance: the next occurrence after this one (and after the catch-up window: an older one
    -- would only be skipped), or no row
    WITH nxt AS (
        SELECT u.contact_id, u.flow_id, u.pos,
               journey._date_fire_at(t.key, t.params, k.birthday, k.attributes,
                                     coalesce(k.time_zone, s.time_zone), s.date_trigger_at,
                                     greatest(u.fire_at, p_at - s.date_catch_up)) AS fire_at
        FROM unnest(v_contacts, v_flows, v_pos, v_fire) AS u (contact_id, flow_id, pos, fire_at)
        LEFT JOIN journey.flow_triggers t ON t.kind = 'date' AND t.flow_id = u.flow_id AND t.pos = u.pos
        LEFT JOIN journey.contacts k ON k.id = u.contact_id),
    gone AS (
        DELETE FROM journey.date_schedule d USING nxt
        WHERE d.contact_id = nxt.contact_id AND d.flow_id = nxt.flow_id AND d.pos = nxt.pos
          AND nxt.fire_at IS NULL)
    UPDATE journey.date_schedule d SET fire_at = nxt.fire_at
    FROM nxt
    WHERE d.contact_id = nxt.contact_id AND d.flow_id = nxt.flow_id AND d.pos = nxt.pos
      AND nxt.fire_at IS NOT NULL;
    RETURN n;
END
$$;
COMMENT ON FUNCTION journey._date_pass(timestamptz, integer) IS
  'Internal: enrolls the date occurrences due by p_at (at most p_max schedule rows): those that fired less than settings.date_catch_up ago, for contacts in the trigger''s groups whose where holds; the enrollment''s data says trigger date, field, date, occurrence (the local date it fired on), scheduled_at and late. Each row then moves to its next occurrence. Returns how many it enrolled. journey.run_due runs it first; the worker at least every 10 seconds.';

REVOKE ALL ON FUNCTION journey._date_next(integer, boolean, integer, integer, boolean, text, timestamptz),
    journey._date_days(text, text),
    journey._date_fire_at(text, jsonb, date, jsonb, text, time, timestamptz),
    journey._date_schedule(bigint[], bigint[], integer[], timestamptz),
    journey._date_schedule_flow(bigint, timestamptz),
    journey._on_contacts_dated(), journey._on_contacts_redated(), journey._on_settings_redated(),
    journey._enroll_occurrences(bigint[], bigint[], jsonb[], text[], timestamptz),
    journey._date_pass(timestamptz, integer) FROM PUBLIC;
ALTER FUNCTION journey.run_due(integer, timestamptz) SET jit = off;
COMMENT ON FUNCTION journey.run_due(integer, timestamptz) IS 'Enrolls the date occurrences due by at (journey._date_pass), then runs up to max_steps due enrollments as of at (a virtual clock for tests and dry runs): each runs its nodes until it waits, completes, exits or fails. Returns how many enrollments were advanced. The background worker calls the same code. Runs with jit off (short statements whose estimates may be stale).';

-- ================================================================ issue 13: quotas
-- sql/quota.sql: journey.add_quota, journey._quota_channels, journey._quota_exhausted (the
-- engine calls it when a send's channel quota cannot cover it) and the settings trigger that
-- resumes the flows paused for quota; steps gain the outcome quota.
CREATE FUNCTION journey._quota_channels(definition jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT coalesce(array_agg(DISTINCT c ORDER BY c), '{}')
      FROM (SELECT CASE n.value->>'type' WHEN 'send_sms' THEN 'sms' WHEN 'send_email' THEN 'email'
                                         WHEN 'send_whatsapp' THEN 'whatsapp' END AS c
              FROM jsonb_each(CASE jsonb_typeof(definition->'nodes') WHEN 'object' THEN definition->'nodes'
                                                                      ELSE '{}' END) n
             WHERE jsonb_typeof(n.value) = 'object') x
     WHERE c IS NOT NULL
$$;
COMMENT ON FUNCTION journey._quota_channels(jsonb) IS
  'Internal: the channels with a quota a flow definition sends on (send_sms: sms, send_email: email, send_whatsapp: whatsapp), sorted.';

CREATE FUNCTION journey._quota_exhausted(channels text[], flows bigint[], contact bigint) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    paused bigint[];
    names  text;
    admin  text;
    credit text;
BEGIN
    -- the UPDATE re-checks status on a row another transaction changed meanwhile: a flow
    -- paused by hand (or archived) in between is left as it is
    WITH p AS (
        UPDATE journey.flows f SET status = 'paused', paused_reason = 'quota'
          FROM journey.flow_versions v
         WHERE v.flow_id = f.id AND v.version = f.version AND f.status = 'active'
           AND (f.id = ANY (flows) OR journey._quota_channels(v.definition) && channels)
        RETURNING f.id, f.name)
    SELECT array_agg(p.id ORDER BY p.id), string_agg(p.name, ', ' ORDER BY p.name) INTO paused, names FROM p;
    IF paused IS NULL THEN
        RETURN 0;   -- another batch paused them already (and told the admin)
    END IF;
    -- as pause_flow does (routes::clear): a paused flow enrolls nobody; activate_flow puts both back
    DELETE FROM journey.flow_triggers t WHERE t.flow_id = ANY (paused);
    DELETE FROM journey.date_schedule d WHERE d.flow_id = ANY (paused);
    SELECT s.admin_email,
           concat_ws(', ', 'sms_quota ' || coalesce(s.sms_quota::text, 'unlimited'),
                     'email_quota ' || coalesce(s.email_quota::text, 'unlimited'),
                     'whatsapp_quota ' || coalesce(s.whatsapp_quota::text, 'unlimited'))
      INTO admin, credit FROM journey.settings s;
    IF admin IS NOT NULL AND btrim(admin) <> '' THEN
        INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, subject, body)
        VALUES ('quota:' || array_to_string(channels, ',') || ':' || gen_random_uuid(), 'admin_email', contact, admin,
                'journey: ' || array_to_string(channels, ', ') || ' quota used up',
                format('The %s quota is used up (%s). Paused until there is credit again: %s. Their enrollments wait where they stopped. '
                       'Add credit with journey.add_quota(''%s'', amount): the flows resume by themselves.',
                       array_to_string(channels, ', '), credit, names, channels[1]));
    END IF;
    RETURN cardinality(paused);
END
$$;
COMMENT ON FUNCTION journey._quota_exhausted(text[], bigint[], bigint) IS
  'Internal, called by the engine when a send''s channel quota cannot cover it: pauses (paused_reason quota, routes and date schedule removed) every active flow whose current version sends on one of channels, and the flows given; if it paused any, writes one admin_email outbox row (to settings.admin_email, if set; contact_id is that of the first refused send). Returns the number of flows it paused.';

CREATE FUNCTION journey._quota_raised() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    f record;
BEGIN
    FOR f IN SELECT fl.name FROM journey.flows fl
               JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
              WHERE fl.status = 'paused' AND fl.paused_reason = 'quota'
                -- a version saved since the last activation (edited while paused) waits for
                -- activate_flow by hand, as an edit of an active flow does
                AND v.created_at <= fl.activated_at
                AND NOT EXISTS (SELECT 1 FROM unnest(journey._quota_channels(v.definition)) c
                                 WHERE CASE c WHEN 'sms' THEN NEW.sms_quota WHEN 'email' THEN NEW.email_quota
                                              ELSE NEW.whatsapp_quota END = 0)
              ORDER BY fl.id LOOP
        BEGIN
            PERFORM journey.activate_flow(f.name);
        EXCEPTION WHEN OTHERS THEN
            -- a flow that cannot be activated (a template deleted while it was paused...) stays
            -- paused; the quota is raised all the same
            RAISE WARNING 'flow "%" stays paused for quota: %', f.name, SQLERRM
                USING HINT = 'Fix it and call journey.activate_flow(''' || f.name || ''').';
        END;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._quota_raised() IS
  'Trigger: after an UPDATE of settings that raises a quota or sets it NULL, resumes (journey.activate_flow) the flows paused for quota whose channels all have credit (a quota above 0 or NULL); flows paused by hand or by an edit, and flows edited while paused for quota, stay paused. A flow that cannot be activated stays paused with a WARNING.';
CREATE TRIGGER settings_quota_raised AFTER UPDATE ON journey.settings
    FOR EACH ROW
    WHEN ((NEW.sms_quota IS DISTINCT FROM OLD.sms_quota AND (NEW.sms_quota IS NULL OR NEW.sms_quota > OLD.sms_quota))
       OR (NEW.email_quota IS DISTINCT FROM OLD.email_quota AND (NEW.email_quota IS NULL OR NEW.email_quota > OLD.email_quota))
       OR (NEW.whatsapp_quota IS DISTINCT FROM OLD.whatsapp_quota AND (NEW.whatsapp_quota IS NULL OR NEW.whatsapp_quota > OLD.whatsapp_quota)))
    EXECUTE FUNCTION journey._quota_raised();

CREATE FUNCTION journey.add_quota(channel text, amount integer) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    remaining bigint;
    credit  bigint;
BEGIN
    IF channel IS NULL OR channel NOT IN ('sms', 'email', 'whatsapp') THEN
        RAISE EXCEPTION 'add_quota: unknown channel "%"', coalesce(channel, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Channels with a quota are sms (counts SMS segments), email and whatsapp.';
    END IF;
    IF amount IS NULL THEN
        RAISE EXCEPTION 'add_quota: amount must not be NULL'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the credit to add (a negative amount takes credit away); to make a channel unlimited, UPDATE journey.settings SET <channel>_quota = NULL.';
    END IF;
    -- locked, so a batch spending credit commits first and its decrement is not lost
    SELECT CASE channel WHEN 'sms' THEN s.sms_quota WHEN 'email' THEN s.email_quota ELSE s.whatsapp_quota END
      INTO remaining FROM journey.settings s FOR NO KEY UPDATE;
    IF remaining IS NULL THEN
        RETURN NULL;   -- unlimited stays unlimited
    END IF;
    credit := remaining + amount;
    IF credit < 0 THEN
        RAISE EXCEPTION 'add_quota: %_quota would fall below zero (% left, % added)', channel, remaining, amount
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = format('Take away at most %s.', remaining);
    END IF;
    IF credit > 2147483647 THEN
        RAISE EXCEPTION 'add_quota: %_quota would exceed 2147483647 (% left, % added)', channel, remaining, amount
            USING ERRCODE = 'numeric_value_out_of_range',
                  HINT = 'To make the channel unlimited, UPDATE journey.settings SET ' || channel || '_quota = NULL.';
    END IF;
    UPDATE journey.settings s
       SET sms_quota = CASE WHEN channel = 'sms' THEN credit::integer ELSE s.sms_quota END,
           email_quota = CASE WHEN channel = 'email' THEN credit::integer ELSE s.email_quota END,
           whatsapp_quota = CASE WHEN channel = 'whatsapp' THEN credit::integer ELSE s.whatsapp_quota END;
    RETURN credit;
END
$$;
COMMENT ON FUNCTION journey.add_quota(text, integer) IS
  'Adds amount to a channel''s quota (sms: SMS segments, email, whatsapp) and returns the credit left; a quota that is NULL (unlimited) stays NULL and NULL is returned. A negative amount takes credit away, never below zero. Raising a quota resumes the flows paused for quota whose channels all have credit (see journey._quota_raised).';
REVOKE ALL ON FUNCTION journey._quota_channels(jsonb), journey._quota_exhausted(text[], bigint[], bigint),
    journey._quota_raised(), journey.add_quota(text, integer) FROM PUBLIC;
-- Admin roles (those that may pause flows) may call them, as grant_role(role, 'admin') now gives.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'journey.pause_flow(text)'::regprocedure
                AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey._quota_channels(jsonb), journey._quota_exhausted(text[], bigint[], bigint),
                        journey._quota_raised(), journey.add_quota(text, integer) TO %s', r.grantee);
    END LOOP;
END
$$;
COMMENT ON TABLE journey.steps IS
  'Append-only history: one row per node an enrollment entered, with what the node did in outcome, one of: sent, created, queued, suppressed: <reason>, updated, waited, goal, exited, then, else, branch <n>, yes, yes: <status>, no: <reason>, waiting, failed: <error>, retry: <error>, quota. created is a task, queued a webhook; a send is suppressed for sms_opt_out, email_opt_out, no phone, no email or no admin_email; a check writes yes: <status> (the message''s status), a wait_event yes; no: <reason> is a message status, no message was sent, or timed out; retry is a transient failure retried later; quota is a send its channel''s quota (settings.sms_quota, email_quota, whatsapp_quota) could not cover: nothing written, the enrollment waits at the node while its flow is paused for quota. Stats and timelines read it. Rows go with their enrollment (trigger enrollments_delete_steps); no foreign key, so the engine''s batch insert pays no per-row check.';

-- ================================================================ issue 13: contact_created, contact_updated, group_left; where on every trigger
-- New contacts are inserted with their fields (upsert_contact, a form submission creating the
-- contact: _apply_contact_fields(NULL, fields) only checks them), so contact_created's where
-- sees them and a new contact fires no contact_updated. group_joined and form_submitted
-- evaluate their where (journey._matches) as event already did. The new kinds' statement
-- triggers: contact_created (contacts AFTER INSERT), contact_updated (contacts AFTER UPDATE, old
-- and new rows), group_left (group_members AFTER DELETE).

CREATE OR REPLACE FUNCTION journey._on_group_joined() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
BEGIN
    -- The flows these rows route to, locked before routing again with a new snapshot: a
    -- lifecycle change committed meanwhile (new version, other trigger groups, paused) is seen.
    -- A flow activated after the first read is left out (the write came first).
    SELECT array_agg(DISTINCT t.flow_id) INTO flows
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'group_joined' AND t.key = n.group_id::text;
    IF flows IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM journey._lock_flows(flows);
    PERFORM journey._enroll(array_agg(t.flow_id), array_agg(n.contact_id), array_agg(d.data))
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'group_joined' AND t.key = n.group_id::text
                                AND t.flow_id = ANY (flows)
    JOIN journey.groups g ON g.id = n.group_id
    CROSS JOIN LATERAL (SELECT jsonb_build_object('trigger', 'group_joined', 'group', g.name) AS data) d
    -- the where is evaluated in this transaction, against the data the enrollment will carry (the
    -- key is tested again inside the expression: the planner may order join quals as it likes,
    -- but not the operands of AND, so a where is only read for the rows it is for)
    WHERE t.condition IS NULL
       OR (t.key = n.group_id::text AND journey._matches(t.condition, n.contact_id, d.data))
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_group_joined() IS 'Trigger: enrolls new group members into active group_joined flows of their group whose where predicate matches.';

CREATE FUNCTION journey._on_group_left() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
BEGIN
    -- locked, then routed again with a new snapshot (see journey._on_group_joined)
    SELECT array_agg(DISTINCT t.flow_id) INTO flows
    FROM old_rows o
    JOIN journey.flow_triggers t ON t.kind = 'group_left' AND t.key = o.group_id::text;
    IF flows IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM journey._lock_flows(flows);
    -- A membership that went with its contact or its group (ON DELETE CASCADE) enrolls nobody:
    -- the joins find neither. The contact needs no lock against a concurrent DELETE of it
    -- (enrollments have no foreign key): that DELETE's cascade must delete this same membership
    -- row, so it waits for this transaction and then, in its contacts trigger, deletes the
    -- enrollment made here (tests/isolation/specs/group_left_delete.spec).
    PERFORM journey._enroll(array_agg(t.flow_id), array_agg(o.contact_id), array_agg(d.data))
    FROM old_rows o
    JOIN journey.flow_triggers t ON t.kind = 'group_left' AND t.key = o.group_id::text
                                AND t.flow_id = ANY (flows)
    JOIN journey.groups g ON g.id = o.group_id
    JOIN journey.contacts c ON c.id = o.contact_id
    CROSS JOIN LATERAL (SELECT jsonb_build_object('trigger', 'group_left', 'group', g.name) AS data) d
    -- (the key tested again: see journey._on_group_joined)
    WHERE t.condition IS NULL
       OR (t.key = o.group_id::text AND journey._matches(t.condition, o.contact_id, d.data))
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_group_left() IS 'Trigger: enrolls contacts removed from a group into active group_left flows of that group whose where predicate matches; a membership deleted with its contact or its group enrolls nobody.';
CREATE TRIGGER group_left AFTER DELETE ON journey.group_members
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._on_group_left();

CREATE OR REPLACE FUNCTION journey._on_form_submitted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
BEGIN
    -- locked, then routed again with a new snapshot (see journey._on_group_joined)
    SELECT array_agg(DISTINCT t.flow_id) INTO flows
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'form_submitted' AND t.key = n.form_id::text;
    IF flows IS NULL THEN
        RETURN NULL;
    END IF;
    PERFORM journey._lock_flows(flows);
    PERFORM journey._enroll(array_agg(t.flow_id), array_agg(n.contact_id), array_agg(d.data))
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'form_submitted' AND t.key = n.form_id::text
                                AND t.flow_id = ANY (flows)
    JOIN journey.forms f ON f.id = n.form_id
    CROSS JOIN LATERAL (SELECT n.data || jsonb_build_object('trigger', 'form_submitted', 'form', f.name,
                                                           'submission_id', n.id) AS data) d
    -- (the key tested again: see journey._on_group_joined)
    WHERE t.condition IS NULL
       OR (t.key = n.form_id::text AND journey._matches(t.condition, n.contact_id, d.data))
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_form_submitted() IS 'Trigger: enrolls submitters into active form_submitted flows of the form whose where predicate matches; the submission data becomes the enrollment''s event payload.';

CREATE FUNCTION journey._on_contact_created() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
BEGIN
    -- every contact routes to the key '': one index probe, whatever the statement's size
    SELECT array_agg(DISTINCT t.flow_id) INTO flows
    FROM journey.flow_triggers t WHERE t.kind = 'contact_created' AND t.key = '';
    IF flows IS NULL THEN
        RETURN NULL;
    END IF;
    -- locked, then routed again with a new snapshot (see journey._on_group_joined)
    PERFORM journey._lock_flows(flows);
    PERFORM journey._enroll(array_agg(t.flow_id), array_agg(n.id), array_agg(d.data))
    FROM new_rows n
    JOIN journey.flow_triggers t ON t.kind = 'contact_created' AND t.key = '' AND t.flow_id = ANY (flows)
    CROSS JOIN (SELECT jsonb_build_object('trigger', 'contact_created') AS data) d
    WHERE t.condition IS NULL OR journey._matches(t.condition, n.id, d.data)
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_contact_created() IS 'Trigger: enrolls new contacts into active contact_created flows whose where predicate matches (event data {"trigger": "contact_created"}).';
CREATE TRIGGER contact_created AFTER INSERT ON journey.contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._on_contact_created();

CREATE FUNCTION journey._on_contact_updated() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
-- The transition tables have no statistics: the join of old and new rows on id is estimated far
-- above its size, and a large UPDATE would spend longer compiling it (JIT) than running it.
SET jit = off
AS $$
DECLARE
    flows bigint[];
    t record;
    old_value text;
    new_value text;
    changed text;
    test text;
BEGIN
    -- every contact routes to the key '': one index probe, whatever the statement's size
    SELECT array_agg(DISTINCT r.flow_id) INTO flows
    FROM journey.flow_triggers r WHERE r.kind = 'contact_updated' AND r.key = '';
    IF flows IS NULL THEN
        RETURN NULL;
    END IF;
    -- locked, then routed again with a new snapshot (see journey._on_group_joined). The updated
    -- rows are the writer's: its UPDATE holds them, so no foreign key is missed.
    PERFORM journey._lock_flows(flows);
    -- One set-based statement per trigger, written for its fields, so each row pays only for the
    -- fields listed: a column is compared as itself, an attribute as its jsonb value. Only column
    -- names from the list below are written into the statement; the fields themselves (the
    -- event data's keys, the attribute keys) are its argument $3.
    FOR t IN SELECT r.flow_id, r.condition, ARRAY(SELECT jsonb_array_elements_text(r.params -> 'fields')) AS fields
             FROM journey.flow_triggers r
             WHERE r.kind = 'contact_updated' AND r.key = '' AND r.flow_id = ANY (flows)
             ORDER BY r.flow_id, r.pos LOOP
        changed := NULL;
        test := NULL;
        FOR i IN 1 .. coalesce(array_length(t.fields, 1), 0) LOOP
            IF t.fields[i] = ANY (ARRAY['external_id', 'email', 'phone', 'first_name', 'last_name', 'birthday',
                                        'time_zone', 'email_opt_out', 'sms_opt_out', 'attributes']) THEN
                old_value := format('o.%I', t.fields[i]);
                new_value := format('n.%I', t.fields[i]);
            ELSIF t.fields[i] LIKE 'attributes._%' THEN
                old_value := format('nullif(o.attributes -> substr($3[%s], 12), ''null'')', i);
                new_value := format('nullif(n.attributes -> substr($3[%s], 12), ''null'')', i);
            ELSE
                CONTINUE;   -- not a field (activation accepts none)
            END IF;
            test := concat_ws(' OR ', test, format('%s IS DISTINCT FROM %s', old_value, new_value));
            changed := concat_ws(' || ', changed, format(
                'CASE WHEN %1$s IS DISTINCT FROM %2$s THEN jsonb_build_object($3[%3$s], jsonb_build_object(''old'', %1$s, ''new'', %2$s)) ELSE ''{}'' END',
                old_value, new_value, i));
        END LOOP;
        CONTINUE WHEN test IS NULL;
        -- (a flow with two contact_updated triggers: the first that matches a contact enrolls
        -- it, _enroll skips it for the next one)
        EXECUTE format(
            'SELECT journey._enroll(array_agg($1), array_agg(n.id), array_agg(d.data))
             FROM new_rows n
             JOIN old_rows o ON o.id = n.id
             CROSS JOIN LATERAL (SELECT jsonb_build_object(''trigger'', ''contact_updated'', ''changed'', %s) AS data) d
             WHERE (%s) AND ($2 IS NULL OR journey._matches($2, n.id, d.data))
             HAVING count(*) > 0', changed, test)
        USING t.flow_id, t.condition, t.fields;
    END LOOP;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._on_contact_updated() IS 'Trigger: enrolls contacts whose update really changed (IS DISTINCT FROM) a field a contact_updated trigger lists into its active flow when its where predicate matches; the event data lists the listed fields that changed with their old and new values. A change of updated_at alone enrolls nobody.';
CREATE TRIGGER contact_updated AFTER UPDATE ON journey.contacts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION journey._on_contact_updated();
REVOKE ALL ON FUNCTION journey._on_group_left(), journey._on_contact_created(), journey._on_contact_updated() FROM PUBLIC;

-- ================================================================ issue 13: phones in E.164
-- Phones are stored in E.164 form (sql/phones.sql): the contacts' BEFORE INSERT OR UPDATE OF
-- phone trigger runs journey._e164 (src/api/phones.rs) with settings.default_country for
-- national numbers; its WHEN clause skips NULL and E.164 phones. upsert_contact and form
-- submissions matched on phone normalize the value they look up. Phones stored before 0.3.0
-- are left as they are (an update that leaves a phone unchanged keeps it). The app kind of
-- grant_role may execute journey._e164 (upsert_contact calls it); roles that may execute
-- upsert_contact now get it here.
CREATE FUNCTION journey."_e164"("phone" TEXT, "country" TEXT) RETURNS TEXT
IMMUTABLE PARALLEL SAFE
LANGUAGE c
AS 'MODULE_PATHNAME', 'e164_wrapper';
COMMENT ON FUNCTION journey._e164(text, text) IS 'Internal: the phone number in E.164 form (+<country code><number>, 7 to 15 digits; NULL for NULL or blank text), a national number given the country (ISO 3166 alpha-2: its calling code, its trunk prefix dropped); spaces, dashes, dots and brackets dropped, a leading 00 is +. Formatting, not carrier validation. Raises 22023 for text that is not a phone number or a national number with no country.';
CREATE FUNCTION journey._on_contact_phone() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- an update that leaves the phone as it was (upsert_contact sets every column) keeps it,
    -- even one stored before 0.3.0 in another form
    IF TG_OP = 'UPDATE' AND NEW.phone IS NOT DISTINCT FROM OLD.phone THEN
        RETURN NEW;
    END IF;
    NEW.phone := journey._e164(NEW.phone, (SELECT s.default_country FROM journey.settings s));
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION journey._on_contact_phone() IS
  'Trigger: stores a contact''s phone in E.164 form (journey._e164 with settings.default_country for national numbers); raises 22023 for text that is not a phone number. An update that leaves the phone unchanged keeps it as it is.';
-- The WHEN clause skips NULL phones and phones already in E.164 form: bulk inserts of E.164
-- numbers call no function.
CREATE TRIGGER contacts_phone_e164 BEFORE INSERT OR UPDATE OF phone ON journey.contacts
    FOR EACH ROW WHEN (NEW.phone IS NOT NULL AND NEW.phone !~ '^\+[1-9][0-9]{6,14}$')
    EXECUTE FUNCTION journey._on_contact_phone();
COMMENT ON TRIGGER contacts_phone_e164 ON journey.contacts IS
  'Phones in E.164 form: a phone that is not (^\+[1-9][0-9]{6,14}$) goes through journey._on_contact_phone.';
REVOKE ALL ON FUNCTION journey._e164(text, text), journey._on_contact_phone() FROM PUBLIC;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'journey.upsert_contact(jsonb)'::regprocedure
                AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey._e164(text, text) TO %s', r.grantee);
    END LOOP;
END
$$;
CREATE OR REPLACE FUNCTION journey.upsert_contact(data jsonb) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    cid bigint;
BEGIN
    IF data IS NULL OR jsonb_typeof(data) <> 'object' THEN
        RAISE EXCEPTION 'contact data must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass {"email": ..., "phone": ..., "first_name": ..., "attributes": {...}}.';
    END IF;
    IF data ? 'external_id' THEN
        SELECT id INTO cid FROM journey.contacts WHERE external_id = data->>'external_id';
    END IF;
    IF cid IS NULL AND data ? 'email' THEN
        SELECT id INTO cid FROM journey.contacts WHERE lower(email) = lower(data->>'email') ORDER BY id LIMIT 1;
    END IF;
    IF cid IS NULL AND data ? 'phone' THEN
        SELECT id INTO cid FROM journey.contacts
        WHERE phone = journey._e164(data->>'phone', (SELECT s.default_country FROM journey.settings s)) ORDER BY id LIMIT 1;
    END IF;
    IF cid IS NULL THEN
        -- a new contact is inserted with its fields (checked first), so contact_created flows
        -- see them (their where) and no contact_updated fires for it
        PERFORM journey._apply_contact_fields(NULL, data);
        INSERT INTO journey.contacts (external_id, email, phone, first_name, last_name, birthday,
                                      time_zone, attributes, email_opt_out, sms_opt_out)
        SELECT r.external_id, r.email, r.phone, r.first_name, r.last_name, r.birthday, r.time_zone,
               coalesce(r.attributes, '{}'), coalesce(r.email_opt_out, false), coalesce(r.sms_opt_out, false)
        FROM jsonb_populate_record(NULL::journey.contacts, data) r
        RETURNING id INTO cid;
        RETURN cid;
    END IF;
    PERFORM journey._apply_contact_fields(cid, data);
    RETURN cid;
END
$$;
COMMENT ON FUNCTION journey.upsert_contact(jsonb) IS
  'Creates or updates a contact from {external_id, email, phone, first_name, last_name, birthday, time_zone, email_opt_out, sms_opt_out, attributes}; matches on external_id, then email (case-insensitive), then phone. Returns the contact id.';
CREATE OR REPLACE FUNCTION journey._on_form_submission() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    f journey.forms;
    fields jsonb;
    match_value text;
BEGIN
    SELECT * INTO f FROM journey.forms WHERE id = NEW.form_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'form with id % does not exist', NEW.form_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create the form in journey.forms first.';
    END IF;
    IF NEW.data IS NULL OR jsonb_typeof(NEW.data) <> 'object' THEN
        RAISE EXCEPTION 'submission data for form "%" must be a JSON object', f.name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass data as {"field": value, ...}.';
    END IF;
    fields := journey._map_fields(NEW.data, f.field_map);
    IF NEW.contact_id IS NULL THEN
        match_value := fields->>f.match_on;
        IF match_value IS NULL OR match_value = '' THEN
            RAISE EXCEPTION 'submission for form "%" has no value for "%"', f.name, f.match_on
                USING ERRCODE = 'not_null_violation',
                      HINT = format('The form''s field_map must map a submitted field to %s (the form''s match_on).', f.match_on);
        END IF;
        SELECT c.id INTO NEW.contact_id FROM journey.contacts c
        WHERE CASE f.match_on WHEN 'email' THEN lower(c.email) = lower(match_value)
                              WHEN 'phone' THEN c.phone = journey._e164(match_value, (SELECT s.default_country FROM journey.settings s))
                              ELSE c.external_id = match_value END
        ORDER BY c.id LIMIT 1;
        IF NEW.contact_id IS NULL THEN
            -- a new contact is inserted with its fields (checked first), so contact_created
            -- flows see them (their where) and no contact_updated fires for it
            PERFORM journey._apply_contact_fields(NULL, fields);
            INSERT INTO journey.contacts (external_id, email, phone, first_name, last_name, birthday,
                                          time_zone, attributes, email_opt_out, sms_opt_out)
            SELECT r.external_id, r.email, r.phone, r.first_name, r.last_name, r.birthday, r.time_zone,
                   coalesce(r.attributes, '{}'), coalesce(r.email_opt_out, false), coalesce(r.sms_opt_out, false)
            FROM jsonb_populate_record(NULL::journey.contacts, fields) r
            RETURNING id INTO NEW.contact_id;
            RETURN NEW;
        END IF;
    END IF;
    PERFORM journey._apply_contact_fields(NEW.contact_id, fields);
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION journey._on_form_submission() IS 'Trigger: applies the form''s field_map to the matching contact, or inserts a new contact with those fields when none matches, and links the submission to it.';

-- ================================================================ issue 14: authoring
-- preview_update, test_send, rename_flow, copy_flow, delete_flow, retry_enrollment (Rust:
-- src/api/authoring.rs, src/api/test_send.rs). outbox.test marks test_send's messages (claim
-- returns it with the row; timeline leaves them out); outbox.flow_name keeps a deleted flow's
-- name on its messages (timeline shows it). Roles granted admin before the upgrade get the new
-- functions when grant_role is run again.
ALTER TABLE journey.outbox ADD COLUMN test boolean NOT NULL DEFAULT false, ADD COLUMN flow_name text;
COMMENT ON TABLE journey.outbox IS
  'Every outbound message, written once (idempotency_key = enrollment:node:seq). Relays claim, mark_sent/mark_failed and report on it. status: pending -> leased -> sent -> delivered -> opened -> clicked; failed, undelivered, bounced are terminal. lease_token is set by each claim (a fresh uuid) and cleared when the lease ends; mark_sent and mark_failed count only with the current one. test marks a message journey.test_send wrote (no enrollment; stats and timelines leave it out). flow_name is set when journey.delete_flow deletes the flow (flow_id keeps its id): coalesce(f.name, o.flow_name) over outbox o LEFT JOIN flows f ON f.id = o.flow_id names the flow of any message.';

CREATE OR REPLACE FUNCTION journey.timeline(contact bigint)
RETURNS TABLE (at timestamptz, kind text, flow text, node text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    PERFORM journey._check_contact(contact);
    RETURN QUERY
    SELECT t.at, t.kind, t.flow, t.node, t.detail FROM (
        SELECT e.entered_at AS at, 'enrolled'::text AS kind, f.name AS flow, NULL::text AS node,
               format('enrollment %s (version %s)', e.id, e.version) AS detail, 0 AS o, e.id AS k
        FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.contact_id = timeline.contact
      UNION ALL
        SELECT s.at, 'step', f.name, s.node, s.outcome, 1, s.id
        FROM journey.steps s JOIN journey.flows f ON f.id = s.flow_id
        WHERE s.contact_id = timeline.contact
      UNION ALL
        SELECT m.created_at, 'message', coalesce(f.name, m.flow_name), m.node,
               format('%s to %s: %s', m.channel, coalesce(m.recipient, '?'), m.status), 2, m.id
        FROM journey.outbox m LEFT JOIN journey.flows f ON f.id = m.flow_id
        WHERE m.contact_id = timeline.contact AND NOT m.test
      UNION ALL
        SELECT e.updated_at, e.status, f.name, e.node, e.last_error, 3, e.id
        FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.contact_id = timeline.contact AND e.status <> 'active'
    ) t
    ORDER BY t.at, t.o, t.k;
END
$$;
COMMENT ON FUNCTION journey.timeline(bigint) IS
  'Everything that happened to one contact, oldest first: enrollments (kind enrolled), nodes entered (kind step, detail = outcome), messages (kind message; not test_send''s, and named after their flow even once it was deleted) and how enrollments ended (kind completed/exited/stopped/failed, detail = error).';

CREATE FUNCTION journey."preview_update"("name" TEXT, "definition" jsonb)
RETURNS TABLE ("node" TEXT, "waiting" bigint, "effect" TEXT)
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'preview_update_wrapper';
CREATE FUNCTION journey."rename_flow"("name" TEXT, "new_name" TEXT) RETURNS void
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'rename_flow_wrapper';
CREATE FUNCTION journey."copy_flow"("name" TEXT, "new_name" TEXT) RETURNS bigint
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'copy_flow_wrapper';
CREATE FUNCTION journey."delete_flow"("name" TEXT) RETURNS void
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'delete_flow_wrapper';
CREATE FUNCTION journey."retry_enrollment"("id" bigint) RETURNS boolean
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'retry_enrollment_wrapper';
CREATE FUNCTION journey."test_send"("flow" TEXT, "node" TEXT, "contact" bigint, "recipient" TEXT DEFAULT NULL) RETURNS bigint
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'test_send_wrapper';
REVOKE ALL ON FUNCTION journey.preview_update(text, jsonb), journey.rename_flow(text, text),
    journey.copy_flow(text, text), journey.delete_flow(text), journey.retry_enrollment(bigint),
    journey.test_send(text, text, bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION journey.preview_update(text, jsonb) IS 'What saving this definition (update_flow) and activating it with in_flight => continue would do with the flow''s active and frozen enrollments: per node they wait at, how many (waiting) and the effect: continue (the node is in the new definition) or stop: node removed. Writes nothing; refuses what update_flow refuses. activate_flow still refuses an incomplete definition (validate_flow).';
COMMENT ON FUNCTION journey.rename_flow(text, text) IS 'Renames a flow (any status); its enrollments, steps and messages keep it (by id). Refused when the new name is taken.';
COMMENT ON FUNCTION journey.copy_flow(text, text) IS 'Creates a draft flow new_name, version 1, with the current definition of flow name; returns its id.';
COMMENT ON FUNCTION journey.delete_flow(text) IS 'Deletes a draft or archived flow with its versions, enrollments, steps, routes and date schedule. Its outbox rows stay, with outbox.flow_name set to its name (coalesce(f.name, o.flow_name) over outbox o LEFT JOIN flows f ON f.id = o.flow_id names the flow of any message).';
COMMENT ON FUNCTION journey.retry_enrollment(bigint) IS 'Runs a failed enrollment again from the node it failed at, on the flow''s current version, due now (attempts 0, last_error cleared; the failed step stays in steps). An enrollment a fork''s branch failed waits at its fork again and its failed branches run again from their nodes. Refused unless the enrollment is failed and not a fork''s branch (retry the enrollment it belongs to), its flow active, its node (and its failed branches'') in the current version and its contact without another active enrollment in the flow. Returns true.';
COMMENT ON FUNCTION journey.test_send(text, text, bigint, text) IS 'Renders a send node (send_sms, send_email, send_whatsapp, notify_admin) of the flow''s current version for a contact and writes it to the outbox as a test message (test = true, idempotency_key test:<uuid>, no enrollment); returns its id. Relays claim it like any message. It enrolls nobody, writes no step (stats and timelines do not count it), charges no quota and ignores quiet hours. Without recipient it goes where a real send would and honours the contact''s opt-out (a suppressed send is an error); with recipient it goes there whatever the opt-outs (a missing phone or e-mail of the contact reads as the recipient in templates). The event is empty.';

-- ================================================================ issue 14: fork (parallel branches), frozen enrollments while paused
-- A fork's branches are enrollments with parent_id (the enrollment that entered the flow) and
-- branch; they are not counted by the one-active rule; the trigger enrollments_branch_ended
-- ends the parent. A flow paused by an edit or a quota keeps its routes: its triggers enroll
-- frozen into routed_version (the version activated). Stats count branches in their parent.
ALTER TABLE journey.enrollments ADD COLUMN parent_id bigint, ADD COLUMN branch integer;
ALTER TABLE journey.flows ADD COLUMN routed_version integer;
UPDATE journey.flows SET routed_version = version WHERE status IN ('active', 'paused');
DROP INDEX journey.enrollments_one_active;
-- (a fork's branches are active beside their parent: parent_id IS NOT NULL)
CREATE UNIQUE INDEX enrollments_one_active ON journey.enrollments (flow_id, contact_id) WHERE status = 'active' AND parent_id IS NULL;

COMMENT ON TABLE journey.flows IS
  'Flows. status draft|active|paused|archived; version is the current version. start_node, reentry_after and routed_version (the version activated: the one flow_triggers and date_schedule route to) are derived from the current version at activation (reentry_after NULL = never re-enter, 0 = always, else the interval after the previous enrollment ended). paused_reason: edited (update_flow of an active flow) and quota keep the routes, so triggers enroll frozen (into routed_version, at start_node) until activate_flow; manual (pause_flow) removes them: nobody is enrolled.';

COMMENT ON TABLE journey.flow_triggers IS
  'Derived routing table: (trigger kind, key) -> active flow, one row per trigger of the version activated (flows.routed_version; pos: its position in triggers). Rebuilt at activation, kept while the flow is paused by an edit or a quota (its triggers enroll frozen), emptied by pause_flow and archive_flow, so a write with no matching flow costs one index probe. key is the group id (group_joined, group_left), form id, event name, date field (date: birthday or attributes.<key>) or empty (contact_created, contact_updated); condition is the trigger''s where; params holds a date trigger''s rules (repeat, offset_days, at, feb29, groups and their group_ids) or contact_updated''s fields.';

COMMENT ON TABLE journey.date_schedule IS
  'Derived: the next occurrence of each date trigger (flow, pos = its flow_triggers row) for each contact with a date in its field, at fire_at. Filled at activation, kept current by the contacts'' triggers (a changed date, attribute or zone moves it; a deleted contact takes it along) and by settings changes, advanced by journey._date_pass once enrolled (or skipped as too late; a flow paused by an edit or a quota is enrolled frozen), emptied by pause_flow and archive_flow, rebuilt at activation. The pass finds due rows by an index probe on fire_at.';

COMMENT ON TABLE journey.enrollments IS
  'A contact''s trip through a flow. node is the node to run next at due_at; seq counts nodes entered (it makes idempotency keys); waiting describes what a check/wait_event node waits for; attempts counts transient failures in a row (retried with backoff up to settings.max_attempts). At most one active enrollment per (flow, contact); occurrence is ''once'' in flows that are never re-entered (so at most one enrollment ever, even under concurrent writers) and is reserved for date triggers (one per occurrence). A fork node runs its branches as enrollments of their own: parent_id is the enrollment that entered the flow (it waits at its fork, due_at infinity, until every branch has ended), branch the place in the fork''s next list; branches are not counted by the one-active rule, and the trigger enrollments_branch_ended ends the parent (exited as soon as one branch exits, the others stopped; else, once none is active, failed if one failed, stopped if one was stopped, completed otherwise). No foreign keys (they would double the cost of enrolling): triggers delete enrollments with their contact or flow version.';

COMMENT ON TABLE journey.steps IS
  'Append-only history: one row per node an enrollment entered, with what the node did in outcome, one of: sent, created, queued, suppressed: <reason>, updated, waited, goal, exited, then, else, branch <n>, yes, yes: <status>, no: <reason>, waiting, failed: <error>, retry: <error>, quota, forked. created is a task, queued a webhook; a send is suppressed for sms_opt_out, email_opt_out, no phone, no email or no admin_email; a check writes yes: <status> (the message''s status), a wait_event yes; no: <reason> is a message status, no message was sent, or timed out; retry is a transient failure retried later; quota is a send its channel''s quota (settings.sms_quota, email_quota, whatsapp_quota) could not cover: nothing written, the enrollment waits at the node while its flow is paused for quota; forked is a fork node that started its branches (enrollments of their own, parent_id set). Stats and timelines read it. Rows go with their enrollment (trigger enrollments_delete_steps); no foreign key, so the engine''s batch insert pays no per-row check.';

-- A fork's branches end their parent (sql comment on journey.enrollments; src/engine/nodes/fork.rs).
-- Row-level, only for branches (the WHEN needs no call for other rows). The parent row is locked
-- first, so two branches ending in concurrent transactions see each other's end (the second
-- waits, then finds no active sibling). Siblings another batch holds are skipped (SKIP LOCKED,
-- no deadlock): that batch's own update of them finds the parent ended and stops them here.
CREATE FUNCTION journey._branch_ended() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    parent_status text;
BEGIN
    SELECT p.status INTO parent_status FROM journey.enrollments p
     WHERE p.contact_id = NEW.contact_id AND p.id = NEW.parent_id FOR NO KEY UPDATE;
    IF parent_status IS DISTINCT FROM 'active' THEN
        -- the parent ended (another branch exited, the flow was archived or stopped): so does this
        UPDATE journey.enrollments e SET status = 'stopped', due_at = NULL, updated_at = now(),
               last_error = 'the enrollment it is a branch of has ended'
         WHERE e.contact_id = NEW.contact_id AND e.id = NEW.id AND e.status = 'active';
        RETURN NULL;
    END IF;
    IF NEW.status = 'exited' THEN
        UPDATE journey.enrollments p SET status = 'exited', due_at = NULL, updated_at = now()
         WHERE p.contact_id = NEW.contact_id AND p.id = NEW.parent_id;
        UPDATE journey.enrollments e SET status = 'stopped', due_at = NULL, updated_at = now(),
               last_error = format('branch %s exited at node "%s"', NEW.branch, NEW.node)
         WHERE e.contact_id = NEW.contact_id AND e.parent_id = NEW.parent_id AND e.status = 'active'
           AND e.id IN (SELECT s.id FROM journey.enrollments s
                         WHERE s.contact_id = NEW.contact_id AND s.parent_id = NEW.parent_id
                           AND s.status = 'active' FOR UPDATE SKIP LOCKED);
    ELSIF NEW.status <> 'active' AND NOT EXISTS (
            SELECT 1 FROM journey.enrollments s
             WHERE s.contact_id = NEW.contact_id AND s.parent_id = NEW.parent_id AND s.status = 'active') THEN
        UPDATE journey.enrollments p
           SET status = CASE WHEN b.failed THEN 'failed' WHEN b.stopped THEN 'stopped' ELSE 'completed' END,
               due_at = NULL, updated_at = now(),
               last_error = CASE WHEN b.failed THEN 'a branch failed' WHEN b.stopped THEN 'a branch was stopped' END
          FROM (SELECT bool_or(s.status = 'failed') AS failed, bool_or(s.status = 'stopped') AS stopped
                  FROM journey.enrollments s
                 WHERE s.contact_id = NEW.contact_id AND s.parent_id = NEW.parent_id) b
         WHERE p.contact_id = NEW.contact_id AND p.id = NEW.parent_id;
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._branch_ended() IS 'Trigger: when a fork''s branch (an enrollment with parent_id) changes while active, ends its parent as the branches say: one branch exited: the parent exits and its other active branches stop; none left active: the parent is failed if a branch failed, stopped if one was stopped, else completed. A branch updated after its parent ended is stopped.';
CREATE TRIGGER enrollments_branch_ended AFTER UPDATE ON journey.enrollments
    FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL AND OLD.status = 'active')
    EXECUTE FUNCTION journey._branch_ended();

REVOKE ALL ON FUNCTION journey._branch_ended() FROM PUBLIC;
-- Admin roles may call it, as grant_role(role, 'admin') gives every function.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'journey.pause_flow(text)'::regprocedure
                AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey._branch_ended() TO %s', r.grantee);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION journey._enroll(p_flows bigint[], p_contacts bigint[], p_data jsonb[])
RETURNS SETOF bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    ids bigint[];
    flows bigint[];
    nodes text[];
BEGIN
    -- The shared flow lock (journey._lock_flows): activate_flow, update_flow, pause_flow and
    -- archive_flow take the exclusive one before they read the flow, so they wait for this
    -- transaction (and then see its enrollments), or this waits for them and the INSERT below,
    -- a new statement with a new snapshot (READ COMMITTED), sees the flow as they left it.
    PERFORM journey._lock_flows(p_flows);
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        -- REPEATABLE READ and SERIALIZABLE keep the transaction's snapshot: a flow changed since
        -- it was taken would be enrolled into as it was. Locking the flow rows raises a
        -- serialization failure (40001, the writer retries) instead. A row lock writes, so only
        -- these isolation levels pay for it.
        PERFORM FROM journey.flows f WHERE f.id = ANY (p_flows) ORDER BY f.id FOR SHARE OF f;
    END IF;
    WITH ins AS (
        -- occurrence 'once' for flows that are never re-entered: the unique index
        -- enrollments_flow_contact then holds even against a concurrent writer whose enrollment
        -- committed (and maybe completed) after this statement's snapshot was taken.
        -- A flow paused by an edit or a quota keeps its routes: the contacts its triggers fire
        -- for meanwhile are enrolled frozen (the engine skips paused flows) into the version the
        -- routes and start_node were built from (routed_version: the one last activated), and
        -- activate_flow's in_flight applies to them.
        INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at, data, occurrence)
        SELECT DISTINCT ON (f.id, u.contact_id)
               f.id, CASE WHEN f.status = 'active' THEN f.version ELSE coalesce(f.routed_version, f.version) END,
               u.contact_id, f.start_node, now(), coalesce(u.data, '{}'),
               CASE WHEN f.reentry_after IS NULL THEN 'once' END
        FROM unnest(p_flows, p_contacts, p_data) AS u (flow_id, contact_id, data)
        JOIN journey.flows f ON f.id = u.flow_id
         AND (f.status = 'active' OR (f.status = 'paused' AND f.paused_reason IN ('edited', 'quota')))
        WHERE NOT EXISTS (
            SELECT 1 FROM journey.enrollments e
            WHERE e.flow_id = f.id AND e.contact_id = u.contact_id
              AND (f.reentry_after IS NULL OR e.status = 'active'
                   OR e.updated_at > now() - f.reentry_after))
        ORDER BY f.id, u.contact_id
        ON CONFLICT DO NOTHING
        RETURNING id, flow_id, node)
    SELECT array_agg(i.id), array_agg(i.flow_id), array_agg(i.node) INTO ids, flows, nodes FROM ins i;
    IF ids IS NOT NULL THEN
        PERFORM journey._count_entered(flows, nodes, NULL);   -- counted as they are inserted
        PERFORM journey._wake();
        RETURN QUERY SELECT unnest(ids);
    END IF;
END
$$;
COMMENT ON FUNCTION journey._enroll(bigint[], bigint[], jsonb[]) IS
  'Internal: enrolls (flow, contact, data) triples into active flows (and, frozen until activate_flow, into flows paused by an edit or a quota, on the version their routes were built from), honouring one active enrollment per (flow, contact) and the flow''s reentry rule; returns the new enrollment ids. Takes the shared lock of each flow first (journey._lock_flows), so it never enrolls into a version or status that a concurrent activate_flow, update_flow, pause_flow or archive_flow replaced; at REPEATABLE READ or SERIALIZABLE a flow changed since the snapshot is a serialization failure.';

CREATE OR REPLACE FUNCTION journey._enroll_occurrences(p_flows bigint[], p_contacts bigint[], p_data jsonb[],
                                            p_occurrences text[], p_due timestamptz)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    n integer;
    flows bigint[];
    nodes text[];
BEGIN
    PERFORM journey._lock_flows(p_flows);   -- as journey._enroll
    WITH ins AS (
    INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at, data, occurrence)
    SELECT DISTINCT ON (f.id, u.contact_id)
           f.id, CASE WHEN f.status = 'active' THEN f.version ELSE coalesce(f.routed_version, f.version) END, u.contact_id,
           f.start_node, p_due, u.data, u.occurrence
    FROM unnest(p_flows, p_contacts, p_data, p_occurrences) AS u (flow_id, contact_id, data, occurrence)
    -- frozen into flows paused by an edit or a quota, as journey._enroll
    JOIN journey.flows f ON f.id = u.flow_id
     AND (f.status = 'active' OR (f.status = 'paused' AND f.paused_reason IN ('edited', 'quota')))
    WHERE NOT EXISTS (SELECT 1 FROM journey.enrollments e
                      WHERE e.flow_id = f.id AND e.contact_id = u.contact_id
                        AND (e.status = 'active' OR e.occurrence = u.occurrence))
    ORDER BY f.id, u.contact_id
    ON CONFLICT DO NOTHING
    RETURNING flow_id, node)
    SELECT count(*), array_agg(i.flow_id), array_agg(i.node) INTO n, flows, nodes FROM ins i;
    IF n > 0 THEN
        PERFORM journey._count_entered(flows, nodes, NULL);   -- counted as they are inserted
        PERFORM journey._wake();
    END IF;
    RETURN n;
END
$$;
COMMENT ON FUNCTION journey._enroll_occurrences(bigint[], bigint[], jsonb[], text[], timestamptz) IS
  'Internal: enrolls (flow, contact, data, occurrence) into active flows (and, frozen, flows paused by an edit or a quota), due at p_due: at most one enrollment per occurrence ever and one active per (flow, contact), whatever the flow''s reentry. Returns how many it enrolled. Takes the shared flow locks first, as journey._enroll.';

CREATE OR REPLACE FUNCTION journey._quota_exhausted(channels text[], flows bigint[], contact bigint) RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    paused bigint[];
    names  text;
    admin  text;
    credit text;
BEGIN
    -- the UPDATE re-checks status on a row another transaction changed meanwhile: a flow
    -- paused by hand (or archived) in between is left as it is
    WITH p AS (
        UPDATE journey.flows f SET status = 'paused', paused_reason = 'quota'
          FROM journey.flow_versions v
         WHERE v.flow_id = f.id AND v.version = f.version AND f.status = 'active'
           AND (f.id = ANY (flows) OR journey._quota_channels(v.definition) && channels)
        RETURNING f.id, f.name)
    SELECT array_agg(p.id ORDER BY p.id), string_agg(p.name, ', ' ORDER BY p.name) INTO paused, names FROM p;
    IF paused IS NULL THEN
        RETURN 0;   -- another batch paused them already (and told the admin)
    END IF;
    -- the routes stay (unlike pause_flow's): contacts the flows' triggers fire for meanwhile
    -- are enrolled frozen at the start node and run when the flow resumes
    SELECT s.admin_email,
           concat_ws(', ', 'sms_quota ' || coalesce(s.sms_quota::text, 'unlimited'),
                     'email_quota ' || coalesce(s.email_quota::text, 'unlimited'),
                     'whatsapp_quota ' || coalesce(s.whatsapp_quota::text, 'unlimited'))
      INTO admin, credit FROM journey.settings s;
    IF admin IS NOT NULL AND btrim(admin) <> '' THEN
        INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, subject, body)
        VALUES ('quota:' || array_to_string(channels, ',') || ':' || gen_random_uuid(), 'admin_email', contact, admin,
                'journey: ' || array_to_string(channels, ', ') || ' quota used up',
                format('The %s quota is used up (%s). Paused until there is credit again: %s. Their enrollments wait where they stopped. '
                       'Add credit with journey.add_quota(''%s'', amount): the flows resume by themselves.',
                       array_to_string(channels, ', '), credit, names, channels[1]));
    END IF;
    RETURN cardinality(paused);
END
$$;
COMMENT ON FUNCTION journey._quota_exhausted(text[], bigint[], bigint) IS
  'Internal, called by the engine when a send''s channel quota cannot cover it: pauses (paused_reason quota; routes and date schedule kept: its triggers enroll frozen until it resumes) every active flow whose current version sends on one of channels, and the flows given; if it paused any, writes one admin_email outbox row (to settings.admin_email, if set; contact_id is that of the first refused send). Returns the number of flows it paused.';

CREATE OR REPLACE FUNCTION journey.flow_stats(name text)
RETURNS TABLE (node text, type text, reached bigint, reached_pct numeric, waiting bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(flow_stats.name)
    ), entered AS (
        -- a fork's branches (parent_id set) are part of their parent's trip, not new entries
        SELECT count(*) AS n FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NULL
    ), branches AS (
        SELECT e.id, e.parent_id FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NOT NULL
    ), reach AS (
        -- each node once per enrollment that reached it, along any of its branches
        SELECT s.node, count(DISTINCT coalesce(b.parent_id, s.enrollment_id)) AS n
        FROM journey.steps s CROSS JOIN f LEFT JOIN branches b ON b.id = s.enrollment_id
        WHERE s.flow_id = f.id GROUP BY s.node
    ), wait AS (
        SELECT e.node, count(*) AS n FROM journey.enrollments e, f
        WHERE e.flow_id = f.id AND e.status = 'active' GROUP BY e.node
    )
    SELECT o.node, o.type, coalesce(r.n, 0),
           CASE WHEN entered.n = 0 THEN 0 ELSE round(100.0 * coalesce(r.n, 0) / entered.n, 1) END,
           coalesce(w.n, 0)
    FROM f CROSS JOIN entered CROSS JOIN LATERAL journey._node_order(f.definition) o
    LEFT JOIN reach r ON r.node = o.node
    LEFT JOIN wait w ON w.node = o.node
    ORDER BY o.ord
$$;
COMMENT ON FUNCTION journey.flow_stats(text) IS
  'Per node of the flow''s current version, in flow order: type, reached (enrollments that entered the node, any version; a fork''s branches count for the enrollment they belong to, once per node), reached_pct (percent of enrollments that entered the flow) and waiting (active enrollments and branches due to run the node next; an enrollment whose branches run waits at its fork).';

CREATE OR REPLACE FUNCTION journey.goal_stats(name text)
RETURNS TABLE (goal text, reached bigint, reached_pct numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(goal_stats.name)
    ), entered AS (
        SELECT count(*) AS n FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NULL
    ), branches AS (
        SELECT e.id, e.parent_id FROM journey.enrollments e, f WHERE e.flow_id = f.id AND e.parent_id IS NOT NULL
    ), goals AS (
        SELECT DISTINCT coalesce(o.goal, o.node) AS goal, o.node FROM f, journey._node_order(f.definition) o WHERE o.type = 'goal'
    )
    -- a goal reached along a fork's branch counts for the enrollment the branch belongs to
    SELECT g.goal, count(DISTINCT coalesce(b.parent_id, s.enrollment_id)),
           CASE WHEN entered.n = 0 THEN 0
                ELSE round(100.0 * count(DISTINCT coalesce(b.parent_id, s.enrollment_id)) / entered.n, 1) END
    FROM f CROSS JOIN entered CROSS JOIN goals g
    LEFT JOIN journey.steps s ON s.flow_id = f.id AND s.node = g.node AND s.outcome = 'goal'
    LEFT JOIN branches b ON b.id = s.enrollment_id
    GROUP BY g.goal, entered.n
    ORDER BY g.goal
$$;
COMMENT ON FUNCTION journey.goal_stats(text) IS
  'Per goal of the flow''s current version: enrollments that reached it (along any fork branch, once) and the percent of enrollments that entered the flow.';

CREATE OR REPLACE VIEW journey.flow_overview AS
SELECT f.name AS flow, f.status, f.version,
       count(e.id) AS entered,
       count(e.id) FILTER (WHERE e.status = 'active') AS active,
       count(e.id) FILTER (WHERE e.status = 'completed') AS completed,
       count(e.id) FILTER (WHERE e.status = 'failed') AS failed
FROM journey.flows f
LEFT JOIN journey.enrollments e ON e.flow_id = f.id AND e.parent_id IS NULL
GROUP BY f.id
ORDER BY f.name;
COMMENT ON VIEW journey.flow_overview IS 'One row per flow: status, current version and enrollment counts (entered, active, completed, failed); a fork''s branches are counted in their parent.';

COMMENT ON FUNCTION journey.update_flow(text, jsonb) IS 'Saves a new version of a flow and returns its number. An active flow is paused (reason edited) until activated again: its enrollments freeze meanwhile, and contacts its triggers (those of the version last activated) fire for are enrolled frozen at its start node; activate_flow''s in_flight applies to them all.';

COMMENT ON FUNCTION journey.pause_flow(text) IS 'Pauses a flow by hand (paused_reason manual): its enrollments freeze (the engine skips them) and its triggers stop enrolling, also for a flow paused by an edit or a quota (whose triggers enroll frozen). activate_flow resumes it.';

-- ================================================================ issue 17: forget_contact
CREATE FUNCTION journey.forget_contact(contact bigint) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF contact IS NULL THEN
        RAISE EXCEPTION 'forget_contact: contact must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the id of a row of journey.contacts.';
    END IF;
    -- the row first: a concurrent write of the contact waits for this, or this for it
    PERFORM FROM journey.contacts c WHERE c.id = contact FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    -- the outbox has no foreign key to contacts (it keeps history); its delivery reports go
    -- with it (ON DELETE CASCADE)
    DELETE FROM journey.outbox o WHERE o.contact_id = contact;
    -- memberships, submissions and events cascade; enrollments (and their steps) and the date
    -- schedule go with the contact through its delete trigger
    DELETE FROM journey.contacts c WHERE c.id = contact;
    RETURN true;
END
$$;
COMMENT ON FUNCTION journey.forget_contact(bigint) IS
  'Erasure: removes the contact and everything about it (group memberships, form submissions, events, enrollments and their steps, date schedule rows, outbox rows and their delivery reports). Returns false when there is no such contact. Stats keep their totals (they read counters).';
REVOKE ALL ON FUNCTION journey.forget_contact(bigint) FROM PUBLIC;

-- ================================================================ issue 17: retention
ALTER TABLE journey.settings
    ADD COLUMN keep_sent_messages     interval CHECK (keep_sent_messages > interval '0'),
    ADD COLUMN keep_ended_enrollments interval CHECK (keep_ended_enrollments > interval '0');
COMMENT ON TABLE journey.settings IS
  'Account settings, exactly one row: default time zone, SMS quiet hours (contact''s zone, may span midnight), unsubscribe text, admin e-mail, quotas (NULL = unlimited), max_attempts for retries (failed sends reported by relays, transient step failures in the engine), and the limits of a rendered message: max_message_bytes for a body (e-mail, WhatsApp, admin e-mail, webhook, SMS text) and max_sms_segments for an SMS; a message past them fails its enrollment. whatsapp_quota counts WhatsApp messages when set (sms_quota counts SMS segments, email_quota e-mails; admin e-mails are never counted). default_country (ISO 3166 alpha-2, e.g. IL) turns national phone numbers into E.164. date_trigger_at is the local time of day date triggers fire at when they give no at; date_catch_up is how late a date occurrence may still be enrolled after downtime. Retention (NULL = keep forever): keep_sent_messages for outbox rows that reached a final status (sent, delivered, opened, clicked, failed, undelivered, bounced; with their delivery reports), keep_ended_enrollments for enrollments that ended (with their steps); the worker deletes what is older in small batches.';
CREATE OR REPLACE FUNCTION journey._settings_replace() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM journey.settings) THEN
        UPDATE journey.settings SET
            time_zone = NEW.time_zone, quiet_hours_start = NEW.quiet_hours_start,
            quiet_hours_end = NEW.quiet_hours_end, sms_unsubscribe_text = NEW.sms_unsubscribe_text,
            admin_email = NEW.admin_email, sms_quota = NEW.sms_quota, email_quota = NEW.email_quota,
            max_attempts = NEW.max_attempts, max_message_bytes = NEW.max_message_bytes,
            max_sms_segments = NEW.max_sms_segments, whatsapp_quota = NEW.whatsapp_quota,
            default_country = NEW.default_country, date_trigger_at = NEW.date_trigger_at,
            date_catch_up = NEW.date_catch_up, keep_sent_messages = NEW.keep_sent_messages,
            keep_ended_enrollments = NEW.keep_ended_enrollments;
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE FUNCTION journey._retention_pass(p_outbox_after bigint, p_block bigint, p_rows integer, p_blocks integer,
                                        OUT outbox_next bigint, OUT block_next bigint,
                                        OUT messages bigint, OUT enrollments bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    s journey.settings;
    last_seen bigint;
    youngest timestamptz;
    nblocks bigint;
BEGIN
    SELECT * INTO s FROM journey.settings;
    outbox_next := 0; block_next := 0; messages := 0; enrollments := 0;
    IF s.keep_sent_messages IS NOT NULL THEN
        -- the next p_rows rows; those final and older than the cutoff go
        WITH slice AS (
            SELECT o.id, o.contact_id, o.status, o.created_at FROM journey.outbox o
            WHERE o.id > p_outbox_after ORDER BY o.id LIMIT p_rows),
        gone AS (
            DELETE FROM journey.outbox o USING slice x
            WHERE o.id = x.id AND o.contact_id = x.contact_id
              AND x.status IN ('sent', 'delivered', 'opened', 'clicked', 'failed', 'undelivered', 'bounced')
              AND x.created_at < now() - s.keep_sent_messages
            RETURNING 1)
        SELECT (SELECT count(*) FROM gone), max(x.id), max(x.created_at) INTO messages, last_seen, youngest FROM slice x;
        -- past the cutoff (or at the end): start again from the beginning next time
        outbox_next := CASE WHEN last_seen IS NULL OR youngest >= now() - s.keep_sent_messages THEN 0 ELSE last_seen END;
    END IF;
    IF s.keep_ended_enrollments IS NOT NULL THEN
        nblocks := pg_relation_size('journey.enrollments') / current_setting('block_size')::bigint;
        -- (their steps go with them: trigger enrollments_delete_steps). Kept: an enrollment that
        -- keeps its contact from entering again: of a flow never re-entered (occurrence once) or
        -- of a record (record:<key>, once per record), and one that ended within its flow's
        -- reentry interval; of those only the steps go (deleting them let the contact in again).
        DELETE FROM journey.enrollments e
        WHERE e.ctid >= format('(%s,0)', p_block)::tid AND e.ctid < format('(%s,0)', p_block + p_blocks)::tid
          AND e.status <> 'active' AND e.updated_at < now() - s.keep_ended_enrollments
          AND e.occurrence IS DISTINCT FROM 'once' AND e.record_key IS NULL
          AND NOT EXISTS (SELECT 1 FROM journey.flows f
                           WHERE f.id = e.flow_id AND e.updated_at > now() - f.reentry_after);
        GET DIAGNOSTICS enrollments = ROW_COUNT;
        DELETE FROM journey.steps st USING journey.enrollments e
        WHERE e.ctid >= format('(%s,0)', p_block)::tid AND e.ctid < format('(%s,0)', p_block + p_blocks)::tid
          AND e.status <> 'active' AND e.updated_at < now() - s.keep_ended_enrollments
          AND st.contact_id = e.contact_id AND st.enrollment_id = e.id;
        block_next := CASE WHEN p_block + p_blocks >= nblocks THEN 0 ELSE p_block + p_blocks END;
    END IF;
END
$$;
COMMENT ON FUNCTION journey._retention_pass(bigint, bigint, integer, integer) IS
  'Internal: one retention pass (the worker runs one every 10 seconds): deletes, among the next p_rows outbox rows after id p_outbox_after, those in a final status older than settings.keep_sent_messages (with their delivery reports), and the enrollments in table blocks [p_block, p_block + p_blocks) that ended before now() - settings.keep_ended_enrollments (with their steps); of an enrollment that keeps its contact from entering again (a flow never re-entered, a record trigger''s, or ended within its flow''s reentry interval) only the steps. Returns where the next pass starts and how many rows it deleted. Does nothing for a setting that is NULL.';
REVOKE ALL ON FUNCTION journey._retention_pass(bigint, bigint, integer, integer) FROM PUBLIC;

-- ================================================================ issue 14: templates of every channel
COMMENT ON TABLE journey.templates IS 'Message templates (Liquid) referenced by send_email, send_sms and send_whatsapp nodes (a template of the node''s channel); body is limited to 256 kB.';

-- ================================================================ issue 14: simulate
CREATE FUNCTION journey.simulate(flow text, contact bigint, until interval DEFAULT '90 days',
                                 assume jsonb DEFAULT '{}', definition jsonb DEFAULT NULL)
RETURNS TABLE (at timestamptz, node text, type text, outcome text, channel text, recipient text, subject text, body text)
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'simulate_wrapper';
REVOKE ALL ON FUNCTION journey.simulate(text, bigint, interval, jsonb, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION journey.simulate(text, bigint, interval, jsonb, jsonb) IS 'A dry run: runs the flow''s current definition (or definition, e.g. an unsaved edit; drafts too) for the contact from now until now() + until on a virtual clock with the real rules (zones, windows, quiet hours: the row shows the deferred time, suppression, splits, conditions on the contact''s data) and returns each step with the message it would write. assume answers what cannot be known in advance, per node type or node id: {"check_sms": "yes", "wait_event": "no"} (default no). Runs in a subtransaction that is rolled back: nothing it wrote remains.';

-- ================================================================ _apply_contact_fields (issues 13 and 14)
-- sql/triggers.sql: with a NULL contact it only checks the fields (upsert_contact and forms insert
-- a new contact with them); an unknown time zone is 22023 naming the field, a birthday not in the
-- form YYYY-MM-DD is 22007 (no longer read with the server's DateStyle); external_id is set only
-- when given (listing a unique column beside a BEFORE ROW trigger locked the row as a key change).
CREATE OR REPLACE FUNCTION journey._apply_contact_fields(p_contact bigint, p_fields jsonb) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    bad text;
BEGIN
    SELECT k INTO bad FROM jsonb_object_keys(p_fields) k
    WHERE k NOT IN ('external_id', 'email', 'phone', 'first_name', 'last_name', 'birthday',
                    'time_zone', 'attributes', 'email_opt_out', 'sms_opt_out')
    LIMIT 1;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown contact field "%"', bad
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Contact fields are external_id, email, phone, first_name, last_name, birthday, time_zone, email_opt_out, sms_opt_out and attributes.<key>.';
    END IF;
    IF p_fields ? 'attributes' AND jsonb_typeof(p_fields->'attributes') <> 'object' THEN
        RAISE EXCEPTION 'contact field "attributes" must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass attributes as {"key": value, ...}.';
    END IF;
    -- a zone and a date are checked here, named, rather than by the column's CHECK or cast
    -- (a date read with the server's DateStyle: 01/05/1990 is not a date here)
    IF jsonb_typeof(p_fields->'time_zone') NOT IN ('null') AND NOT journey._is_time_zone(p_fields->>'time_zone') THEN
        RAISE EXCEPTION 'contact field "time_zone": "%" is not a time zone', p_fields->>'time_zone'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use an IANA zone name such as Europe/Paris or America/New_York (pg_timezone_names lists them), or null for settings.time_zone.';
    END IF;
    IF jsonb_typeof(p_fields->'birthday') NOT IN ('null')
       AND (p_fields->>'birthday') !~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$' THEN
        RAISE EXCEPTION 'contact field "birthday": "%" is not a date in the form YYYY-MM-DD', p_fields->>'birthday'
            USING ERRCODE = 'invalid_datetime_format',
                  HINT = 'Write dates as ISO YYYY-MM-DD, e.g. 1990-05-01 for 1 May 1990 (the server''s DateStyle is not used), or null for none.';
    END IF;
    IF p_contact IS NULL THEN
        RETURN;   -- only the checks: the caller inserts a new contact with these fields
    END IF;
    -- external_id only when given: with a BEFORE ROW trigger on contacts (the phone's), an
    -- UPDATE that so much as lists a unique column locks the row FOR UPDATE (as a key change),
    -- which conflicts with the FOR KEY SHARE of every foreign key check on the contact (a
    -- membership, a submission, an event written by another session): deadlocks between writers
    IF p_fields ? 'external_id' THEN
        UPDATE journey.contacts c SET external_id = p_fields->>'external_id'
        WHERE c.id = p_contact AND c.external_id IS DISTINCT FROM p_fields->>'external_id';
    END IF;
    UPDATE journey.contacts c SET
        email         = CASE WHEN p_fields ? 'email' THEN p_fields->>'email' ELSE c.email END,
        phone         = CASE WHEN p_fields ? 'phone' THEN p_fields->>'phone' ELSE c.phone END,
        first_name    = CASE WHEN p_fields ? 'first_name' THEN p_fields->>'first_name' ELSE c.first_name END,
        last_name     = CASE WHEN p_fields ? 'last_name' THEN p_fields->>'last_name' ELSE c.last_name END,
        birthday      = CASE WHEN p_fields ? 'birthday' THEN (p_fields->>'birthday')::date ELSE c.birthday END,
        time_zone     = CASE WHEN p_fields ? 'time_zone' THEN p_fields->>'time_zone' ELSE c.time_zone END,
        email_opt_out = CASE WHEN p_fields ? 'email_opt_out' THEN (p_fields->>'email_opt_out')::boolean ELSE c.email_opt_out END,
        sms_opt_out   = CASE WHEN p_fields ? 'sms_opt_out' THEN (p_fields->>'sms_opt_out')::boolean ELSE c.sms_opt_out END,
        attributes    = c.attributes || coalesce(p_fields->'attributes', '{}'),
        updated_at    = now()
    WHERE c.id = p_contact;
END
$$;
COMMENT ON FUNCTION journey._apply_contact_fields(bigint, jsonb) IS 'Internal: checks contact fields ({column: value, attributes: {...}}), then sets the given contact columns and merges attributes; with a NULL contact it only checks them (upsert_contact and form submissions then insert a new contact with them).';

-- ================================================================ issues 15 and 16: verified senders, CDC event table
ALTER TABLE journey.settings ADD COLUMN cdc_events boolean NOT NULL DEFAULT false;
CREATE OR REPLACE FUNCTION journey._settings_replace() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM journey.settings) THEN
        UPDATE journey.settings SET
            time_zone = NEW.time_zone, quiet_hours_start = NEW.quiet_hours_start,
            quiet_hours_end = NEW.quiet_hours_end, sms_unsubscribe_text = NEW.sms_unsubscribe_text,
            admin_email = NEW.admin_email, sms_quota = NEW.sms_quota, email_quota = NEW.email_quota,
            max_attempts = NEW.max_attempts, max_message_bytes = NEW.max_message_bytes,
            max_sms_segments = NEW.max_sms_segments, whatsapp_quota = NEW.whatsapp_quota,
            default_country = NEW.default_country, date_trigger_at = NEW.date_trigger_at,
            date_catch_up = NEW.date_catch_up, keep_sent_messages = NEW.keep_sent_messages,
            keep_ended_enrollments = NEW.keep_ended_enrollments, cdc_events = NEW.cdc_events;
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
-- Verified senders: the addresses a send_email node may name in `from` (validate_flow and
-- activate_flow refuse any other, src/api/senders.rs). journey.add_sender e-mails a 6-digit
-- code to the address through the outbox (a relay sends it like any message);
-- journey.verify_sender checks it; journey.remove_sender refuses while a flow sends from it.

CREATE TABLE journey.senders (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email           text NOT NULL CONSTRAINT senders_email_address CHECK (email ~ '^[^@\s<>",;]+@[^@\s<>",;]+\.[^@\s<>",;]+$'),
    name            text,
    verified_at     timestamptz,
    code_hash       bytea,
    code_salt       text,
    code_expires_at timestamptz,
    tries           integer NOT NULL DEFAULT 0 CHECK (tries >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((code_hash IS NULL) = (code_salt IS NULL) AND (code_hash IS NULL) = (code_expires_at IS NULL))
);
CREATE UNIQUE INDEX senders_email ON journey.senders (lower(email));
COMMENT ON TABLE journey.senders IS
  'Sender addresses a send_email node may name in from (validate_flow lists any other, activate_flow refuses it). journey.add_sender writes the row and e-mails a 6-digit code to the address; journey.verify_sender sets verified_at. The code is never stored: code_hash = sha256(code_salt || code) with a random per-row salt; it expires at code_expires_at (24 hours after it was sent) and is locked after 5 wrong tries (tries); add_sender sends a new one. One row per address, whatever its case (senders_email, lower(email)).';
SELECT pg_catalog.pg_extension_config_dump('journey.senders', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.senders', 'id')::regclass, '');

CREATE FUNCTION journey.add_sender(email text, name text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    s journey.senders;
    code text;
    salt text;
BEGIN
    -- (the parameters are always qualified: unqualified names are the table's columns, as in
    -- the ON CONFLICT target)
    IF add_sender.email IS NULL OR btrim(add_sender.email) = '' THEN
        RAISE EXCEPTION 'add_sender: email must not be NULL or blank'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the address flows will send from, e.g. journey.add_sender(''billing@example.com'', ''ACME Billing'').';
    END IF;
    IF add_sender.email !~ '^[^@\s<>",;]+@[^@\s<>",;]+\.[^@\s<>",;]+$' THEN
        RAISE EXCEPTION 'add_sender: "%" is not an e-mail address', add_sender.email
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass the bare address (billing@example.com); the display name is the second argument.';
    END IF;
    IF add_sender.name ~ '\{[{%]' THEN
        RAISE EXCEPTION 'add_sender: the name "%" has Liquid tags', add_sender.name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A sender''s name is fixed text, e.g. ''ACME Billing''.';
    END IF;
    INSERT INTO journey.senders AS x (email, name) VALUES (add_sender.email, add_sender.name)
    ON CONFLICT (lower(email)) DO UPDATE SET name = coalesce(EXCLUDED.name, x.name)
    RETURNING * INTO s;
    IF s.verified_at IS NOT NULL THEN
        RAISE NOTICE 'sender % is verified already: no code sent', s.email;
        RETURN s.id;
    END IF;
    -- 32 random bits (gen_random_uuid reads the strong random source) reduced to 6 digits
    code := lpad((('x' || left(replace(gen_random_uuid()::text, '-', ''), 8))::bit(32)::bigint % 1000000)::text, 6, '0');
    salt := gen_random_uuid()::text;
    UPDATE journey.senders x
       SET code_hash = sha256(convert_to(salt || code, 'UTF8')), code_salt = salt,
           code_expires_at = now() + interval '24 hours', tries = 0
     WHERE x.id = s.id;
    -- No flow, enrollment or contact: contact_id 0 (no contact has it: ids start at 1), so
    -- timelines, stats and quotas, which all go through a contact or a flow, never count it.
    INSERT INTO journey.outbox (idempotency_key, channel, contact_id, recipient, subject, body, payload)
    VALUES ('sender:' || s.id || ':' || gen_random_uuid(), 'email', 0, s.email,
            'Your journey sender verification code: ' || code,
            format(E'Someone added %s as a sender address in journey.\n\nYour verification code is %s. It expires in 24 hours.\n\n'
                   'If you did not expect this e-mail, ignore it: nothing will be sent from this address.', s.email, code),
            jsonb_build_object('kind', 'sender_verification', 'sender_id', s.id));
    RETURN s.id;
END
$$;
COMMENT ON FUNCTION journey.add_sender(text, text) IS
  'Adds a sender address (or finds it, whatever its case; a given name replaces the stored one) and, unless it is verified already, e-mails it a new 6-digit verification code that expires in 24 hours (an earlier code stops counting, tries start again). The e-mail is an outbox row like any message: channel email, recipient the address, sender NULL (the relay''s own default sender), no flow, enrollment or node, contact_id 0 (no contact: timelines, stats and quotas leave it out), payload {"kind": "sender_verification", "sender_id": id}, the code in subject and body. Returns the sender''s id. Admin only.';

CREATE FUNCTION journey.verify_sender(email text, code text, at timestamptz DEFAULT now()) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    s journey.senders;
BEGIN
    IF verify_sender.email IS NULL OR verify_sender.code IS NULL OR verify_sender.at IS NULL THEN
        RAISE EXCEPTION 'verify_sender: % must not be NULL',
              CASE WHEN verify_sender.email IS NULL THEN 'email' WHEN verify_sender.code IS NULL THEN 'code' ELSE 'at' END
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the address and the 6-digit code e-mailed to it (omit at to use now()).';
    END IF;
    -- locked: two guesses at once are counted one after the other
    SELECT * INTO s FROM journey.senders x WHERE lower(x.email) = lower(verify_sender.email) FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'sender % does not exist', verify_sender.email
            USING ERRCODE = 'undefined_object', HINT = format('journey.add_sender(%L, name) adds it and e-mails it a code.', verify_sender.email);
    END IF;
    IF s.verified_at IS NOT NULL THEN
        RETURN true;
    END IF;
    IF s.code_hash IS NULL THEN
        RAISE EXCEPTION 'sender % has no code to verify', s.email
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = format('journey.add_sender(%L, name) e-mails it a new code.', s.email);
    END IF;
    IF s.tries >= 5 THEN
        RAISE EXCEPTION 'the code of sender % is locked after 5 wrong tries', s.email
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = format('journey.add_sender(%L, name) e-mails it a new code.', s.email);
    END IF;
    IF verify_sender.at > s.code_expires_at THEN
        RAISE EXCEPTION 'the code of sender % expired (24 hours after it was sent)', s.email
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = format('journey.add_sender(%L, name) e-mails it a new code.', s.email);
    END IF;
    IF sha256(convert_to(s.code_salt || btrim(verify_sender.code), 'UTF8')) = s.code_hash THEN
        UPDATE journey.senders x
           SET verified_at = verify_sender.at, code_hash = NULL, code_salt = NULL, code_expires_at = NULL, tries = 0
         WHERE x.id = s.id;
        RETURN true;
    END IF;
    UPDATE journey.senders x SET tries = x.tries + 1 WHERE x.id = s.id;
    RETURN false;
END
$$;
COMMENT ON FUNCTION journey.verify_sender(text, text, timestamptz) IS
  'Verifies a sender with the code journey.add_sender e-mailed to it: true when the code is right (verified_at = at) or the sender was verified already; false for a wrong code (counted: the 5th wrong try locks the code). Raises when the sender does not exist, has no code, its code is locked or expired at at (24 hours after add_sender sent it); add_sender sends a new code. at is the clock (now(); tests pass a virtual one). Admin only.';

CREATE FUNCTION journey.remove_sender(email text) RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    s journey.senders;
    users text;
BEGIN
    IF remove_sender.email IS NULL THEN
        RAISE EXCEPTION 'remove_sender: email must not be NULL'
            USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the address of a row of journey.senders.';
    END IF;
    -- the row first: an activation checking this sender (FOR KEY SHARE in validation) waits for
    -- this, or this for it, and then sees the flow active
    SELECT * INTO s FROM journey.senders x WHERE lower(x.email) = lower(remove_sender.email) FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    SELECT string_agg(DISTINCT f.name, ', ' ORDER BY f.name) INTO users
      FROM journey.flows f
      JOIN journey.flow_versions v ON v.flow_id = f.id AND v.version = f.version
     CROSS JOIN LATERAL jsonb_each(CASE WHEN jsonb_typeof(v.definition -> 'nodes') = 'object'
                                        THEN v.definition -> 'nodes' ELSE '{}' END) n(id, node)
     WHERE f.status IN ('active', 'paused')
       AND n.node ->> 'type' = 'send_email' AND lower(n.node ->> 'from') = lower(s.email);
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'sender % is in use: flow(s) % send from it', s.email, users
            USING ERRCODE = 'object_in_use',
                  HINT = 'Change their send_email "from" (journey.update_flow, then activate_flow) or archive them (journey.archive_flow) first.';
    END IF;
    DELETE FROM journey.senders x WHERE x.id = s.id;
    RETURN true;
END
$$;
COMMENT ON FUNCTION journey.remove_sender(text) IS
  'Removes a sender address: true when removed, false when there is none. Refused (object_in_use, naming them) while an active or paused flow''s current version has a send_email node whose from is this address; drafts and archived flows do not hold it (a draft naming it fails validation). Admin only.';

-- Change data capture: with settings.cdc_events on, every outbox row also writes one row of
-- journey.outbox_events, in the same transaction, in the shape Debezium's outbox event router
-- reads; the publication journey_outbox_events publishes its inserts (README "Streaming the
-- outbox"). The outbox itself is updated by every claim and report, which the router rejects,
-- and logical replication publishes tables, not views: hence a table of its own, insert-only.

COMMENT ON COLUMN journey.settings.cdc_events IS
  'When true, every outbox row also writes one row of journey.outbox_events in the same transaction (change data capture through the publication journey_outbox_events). Off by default: then each statement writing the outbox reads this one value and writes nothing more.';

CREATE TABLE journey.outbox_events (
    id            uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    aggregatetype text NOT NULL,
    aggregateid   text NOT NULL,
    type          text NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- (block range: rows arrive in created_at order, and the pruning reads the oldest)
CREATE INDEX outbox_events_created ON journey.outbox_events USING brin (created_at);
COMMENT ON TABLE journey.outbox_events IS
  'Insert-only change-data-capture log of the outbox, in the shape of Debezium''s outbox event router (id, aggregatetype, aggregateid, type, payload; created_at as the event timestamp): one row per outbox row written while settings.cdc_events is on, in the same transaction. aggregatetype is journey.message, aggregateid the contact id (0: a sender verification e-mail), type the channel, payload the message (id, idempotency_key, channel, flow_id, flow, enrollment_id, node, contact_id, recipient, sender, subject, body, payload, sms_encoding, sms_segments, not_before, test, created_at). Its rows are never updated (a trigger refuses it); journey.prune_outbox_events deletes old ones, and an outbox row''s event goes with it (forget_contact, retention); the publication journey_outbox_events does not publish deletes.';
SELECT pg_catalog.pg_extension_config_dump('journey.outbox_events', '');

CREATE FUNCTION journey._outbox_events() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF NOT (SELECT s.cdc_events FROM journey.settings s) THEN
        RETURN NULL;
    END IF;
    INSERT INTO journey.outbox_events (aggregatetype, aggregateid, type, payload)
    SELECT 'journey.message', n.contact_id::text, n.channel,
           jsonb_build_object('id', n.id, 'idempotency_key', n.idempotency_key, 'channel', n.channel,
                              'flow_id', n.flow_id, 'flow', coalesce(f.name, n.flow_name),
                              'enrollment_id', n.enrollment_id, 'node', n.node, 'contact_id', n.contact_id,
                              'recipient', n.recipient, 'sender', n.sender, 'subject', n.subject, 'body', n.body,
                              'payload', n.payload, 'sms_encoding', n.sms_encoding, 'sms_segments', n.sms_segments,
                              'not_before', n.not_before, 'test', n.test, 'created_at', n.created_at)
      FROM new_rows n LEFT JOIN journey.flows f ON f.id = n.flow_id
     ORDER BY n.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._outbox_events() IS
  'Trigger (statement-level, after INSERT on journey.outbox, with its transition table): when settings.cdc_events is on, writes one journey.outbox_events row per new outbox row, in outbox id order; otherwise returns after reading the setting. SECURITY DEFINER: whoever may write the outbox gets its events written.';
CREATE TRIGGER outbox_events AFTER INSERT ON journey.outbox
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._outbox_events();

-- An outbox row's event goes with it (journey.forget_contact, retention, a DELETE by hand): the
-- event holds the same personal data (recipient, body). The publication does not publish these
-- deletes.
CREATE INDEX outbox_events_message ON journey.outbox_events (aggregateid, (payload ->> 'id'));
CREATE FUNCTION journey._outbox_events_deleted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM journey.outbox_events) THEN
        RETURN NULL;
    END IF;
    DELETE FROM journey.outbox_events e USING old_rows o
     WHERE e.aggregateid = o.contact_id::text AND e.payload ->> 'id' = o.id::text;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._outbox_events_deleted() IS
  'Trigger (statement-level, after DELETE on journey.outbox): deletes the events of the deleted outbox rows (forget_contact erases a contact''s events with its messages; retention deletes them with theirs). Returns after one probe when there are no events. SECURITY DEFINER: whoever may delete outbox rows gets their events deleted.';
CREATE TRIGGER outbox_events_deleted AFTER DELETE ON journey.outbox
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._outbox_events_deleted();

CREATE FUNCTION journey._outbox_events_insert_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'journey.outbox_events is insert-only'
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = 'Change-data-capture consumers read each event once as an insert; delete old events with journey.prune_outbox_events(older_than).';
END
$$;
COMMENT ON FUNCTION journey._outbox_events_insert_only() IS 'Trigger: refuses any UPDATE of journey.outbox_events (an event, once published, never changes).';
CREATE TRIGGER outbox_events_insert_only BEFORE UPDATE ON journey.outbox_events
    FOR EACH STATEMENT EXECUTE FUNCTION journey._outbox_events_insert_only();

CREATE FUNCTION journey.prune_outbox_events(older_than interval) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    gone bigint;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'prune_outbox_events: older_than must be an interval of 0 or more, not %', coalesce(older_than::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'E.g. journey.prune_outbox_events(''7 days'') deletes the events written more than a week ago.';
    END IF;
    DELETE FROM journey.outbox_events e WHERE e.created_at < now() - older_than;
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN gone;
END
$$;
COMMENT ON FUNCTION journey.prune_outbox_events(interval) IS
  'Deletes the outbox events written more than older_than ago and returns how many. Consumers must have read them: a logical replication slot has them in its WAL until it confirms them, whatever this deletes, and the publication journey_outbox_events does not publish the deletes. Admin only.';

-- The publication. A publication cannot be made a member of an extension with ALTER EXTENSION
-- ADD; without membership pg_dump would dump a CREATE PUBLICATION (without its table, which
-- belongs to the extension) that fails against the one CREATE EXTENSION makes in the restored
-- database. So the membership is recorded as ALTER EXTENSION ADD would record it (a pg_depend
-- row of type 'e'): pg_dump leaves the publication to CREATE EXTENSION, and DROP EXTENSION drops
-- it. Its creation warns when wal_level is not logical: irrelevant until CDC is used (README).
SET LOCAL client_min_messages = error;
CREATE PUBLICATION journey_outbox_events FOR TABLE journey.outbox_events WITH (publish = 'insert');
SET LOCAL client_min_messages = warning;
COMMENT ON PUBLICATION journey_outbox_events IS
  'Publishes the inserts of journey.outbox_events (change data capture of the outbox: settings.cdc_events); needs wal_level = logical. Part of the journey extension: CREATE EXTENSION makes it (a restore too), DROP EXTENSION drops it.';
INSERT INTO pg_catalog.pg_depend (classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype)
SELECT 'pg_catalog.pg_publication'::regclass, p.oid, 0, 'pg_catalog.pg_extension'::regclass, x.oid, 0, 'e'
  FROM pg_catalog.pg_publication p, pg_catalog.pg_extension x
 WHERE p.pubname = 'journey_outbox_events' AND x.extname = 'journey';

REVOKE ALL ON FUNCTION journey.add_sender(text, text), journey.verify_sender(text, text, timestamptz),
    journey.remove_sender(text), journey._outbox_events(), journey._outbox_events_deleted(), journey._outbox_events_insert_only(),
    journey.prune_outbox_events(interval) FROM PUBLIC;

-- ================================================================ issue 15: record types (the app's own tables)
ALTER TABLE journey.enrollments ADD COLUMN record_type text, ADD COLUMN record_key text, ADD COLUMN record_old jsonb;
DROP INDEX journey.enrollments_one_active;
-- (a fork's branches are active beside their parent: parent_id IS NOT NULL; a record trigger's
-- enrollments are one per record: record_key IS NOT NULL, occurrence record:<key>; record_timeline
-- finds them through the flow_id-leading unique index, so enrolling a record writes no index of its own)
CREATE UNIQUE INDEX enrollments_one_active ON journey.enrollments (flow_id, contact_id) WHERE status = 'active' AND parent_id IS NULL AND record_key IS NULL;
ALTER TABLE journey.flow_triggers DROP CONSTRAINT flow_triggers_kind_check;
ALTER TABLE journey.flow_triggers
    ADD CONSTRAINT flow_triggers_kind_check CHECK (kind IN ('group_joined', 'group_left', 'form_submitted', 'event',
                                                      'date', 'contact_created', 'contact_updated', 'record'));
COMMENT ON TABLE journey.flow_triggers IS
  'Derived routing table: (trigger kind, key) -> active flow, one row per trigger of the version activated (flows.routed_version; pos: its position in triggers). Rebuilt at activation, kept while the flow is paused by an edit or a quota (its triggers enroll frozen), emptied by pause_flow and archive_flow, so a write with no matching flow costs one index probe. key is the group id (group_joined, group_left), form id, event name, date field (date: birthday or attributes.<key>) the record type (record) or empty (contact_created, contact_updated); condition is the trigger''s where; params holds a date trigger''s rules (repeat, offset_days, at, feb29, groups and their group_ids) or contact_updated''s fields, a record trigger''s on, changed and old (false when the flow cannot read old: its updates keep no old columns).';
COMMENT ON TABLE journey.enrollments IS
  'A contact''s trip through a flow. node is the node to run next at due_at; seq counts nodes entered (it makes idempotency keys); waiting describes what a check/wait_event node waits for; attempts counts transient failures in a row (retried with backoff up to settings.max_attempts). At most one active enrollment per (flow, contact); occurrence is ''once'' in flows that are never re-entered (so at most one enrollment ever, even under concurrent writers) and is reserved for date triggers (one per occurrence). A fork node runs its branches as enrollments of their own: parent_id is the enrollment that entered the flow (it waits at its fork, due_at infinity, until every branch has ended), branch the place in the fork''s next list; branches are not counted by the one-active rule, and the trigger enrollments_branch_ended ends the parent (exited as soon as one branch exits, the others stopped; else, once none is active, failed if one failed, stopped if one was stopped, completed otherwise). A record trigger''s enrollments carry record_type and record_key (the record that fired it, journey.record_timeline): one per record (occurrence record:<key>), not limited by the one-active rule; their data is the record as written (to_jsonb of the row) and record_old, on an update, the columns it changed as they were, or {} when the flow cannot read old (its definition never names old, reads event whole or by a computed key, or sends a stored template) (flows read {trigger, op, record_type, record, old} built from both, journey._record_event; old is record || record_old); a fork''s branches copy all three. No foreign keys (they would double the cost of enrolling): triggers delete enrollments with their contact or flow version.';
COMMENT ON TABLE journey.steps IS
  'Append-only history: one row per node an enrollment entered, with what the node did in outcome, one of: sent, created, queued, suppressed: <reason>, updated, waited, goal, exited, then, else, branch <n>, yes, yes: <status>, no: <reason>, waiting, failed: <error>, retry: <error>, quota, forked, sent, skipped: <recipients>, record created. created is a task, queued a webhook; a send is suppressed for sms_opt_out, email_opt_out, no phone, no email or no admin_email; a check writes yes: <status> (the message''s status), a wait_event yes; no: <reason> is a message status, no message was sent, or timed out; retry is a transient failure retried later; quota is a send its channel''s quota (settings.sms_quota, email_quota, whatsapp_quota) could not cover: nothing written, the enrollment waits at the node while its flow is paused for quota; forked is a fork node that started its branches (enrollments of their own, parent_id set); sent, skipped: <recipients> is a send_email that reached some of its recipients and skipped others (each named with why: empty, not an e-mail address, email_opt_out); record created is a create_record node''s row; update_record writes updated. Stats and timelines read it. Rows go with their enrollment (trigger enrollments_delete_steps); no foreign key, so the engine''s batch insert pays no per-row check.';

CREATE FUNCTION journey."_caller_may"("tbl" oid, "privilege" TEXT) RETURNS bool
STRICT STABLE
SET search_path TO pg_catalog, journey, pg_temp
LANGUAGE c
AS 'MODULE_PATHNAME', 'caller_may_wrapper';
COMMENT ON FUNCTION journey._caller_may(oid, text) IS 'Internal: whether the calling role (outside any SECURITY DEFINER function) holds the privilege on the table; false inside a security-restricted operation (a trigger a flow''s write fires), where that role is not who runs the code.';

-- Record types: the app's own tables attached to journey (attach_table, detach_table, link,
-- allow_writes), the statement-level triggers that enroll from their writes, the record view
-- templates read (links read at claim), and record_timeline.
--
-- Who may do what: attach_table, detach_table, link and allow_writes are admin functions
-- (SECURITY DEFINER: they create triggers on tables journey does not own), and each checks that
-- its caller (the role outside any SECURITY DEFINER function, journey._caller_may) holds the
-- privileges it lends journey: SELECT and TRIGGER on an attached table, SELECT on a link's
-- target, INSERT and UPDATE on a table flows may write (attached tables included). The worker
-- writes the app's tables as their owner, in a security-restricted context
-- (src/engine/nodes/record.rs): a trigger the app put on its own table never runs as the worker.

CREATE TABLE journey.record_types (
    name           text PRIMARY KEY CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    tbl            regclass NOT NULL UNIQUE,
    key_column     text NOT NULL,
    contact_column text NOT NULL,
    match          text NOT NULL CHECK (match IN ('id', 'external_id', 'email', 'phone')),
    writable       boolean NOT NULL DEFAULT false,
    unmatched      bigint NOT NULL DEFAULT 0,
    attached_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE journey.record_types IS
  'Tables of the app attached with journey.attach_table: name (the record type flows name), the table, its one-column primary key (a record''s key), the column holding its contact and how it matches contacts (id, external_id, email (case-insensitive) or phone (E.164)). writable: flows may update_record it (the attaching role had INSERT and UPDATE on it). unmatched counts records written while a flow listened whose contact column matched no contact (they enrolled nobody).';

CREATE TABLE journey.record_links (
    record_type text NOT NULL REFERENCES journey.record_types (name) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    target      regclass NOT NULL,
    via_column  text NOT NULL,
    target_key  text NOT NULL,
    PRIMARY KEY (record_type, name)
);
COMMENT ON TABLE journey.record_links IS
  'journey.link: record.<name> of a record of record_type is the row of target whose primary key (target_key) equals the record''s via_column, read when the enrollment''s step runs (templates, conditions, recipients, update_record target).';

CREATE TABLE journey.writable_tables (
    tbl        regclass PRIMARY KEY,
    allowed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE journey.writable_tables IS
  'Tables of the app that create_record nodes may insert into (journey.allow_writes), besides writable attached tables.';

SELECT pg_catalog.pg_extension_config_dump('journey.record_types', '');
SELECT pg_catalog.pg_extension_config_dump('journey.record_links', '');
SELECT pg_catalog.pg_extension_config_dump('journey.writable_tables', '');

CREATE FUNCTION journey._table_key(p_tbl regclass) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    cols text[];
BEGIN
    SELECT array_agg(a.attname::text ORDER BY a.attnum) INTO cols
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = p_tbl AND i.indisprimary;
    IF cols IS NULL OR array_length(cols, 1) <> 1 THEN
        RAISE EXCEPTION 'table % needs a primary key of one column, not %', p_tbl,
            CASE WHEN cols IS NULL THEN 'none' ELSE array_to_string(cols, ', ') END
            USING ERRCODE = 'invalid_table_definition',
                  HINT = 'Add one (e.g. ALTER TABLE ... ADD PRIMARY KEY (id)): a record''s key names it in enrollments, links and record_timeline.';
    END IF;
    RETURN cols[1];
END
$$;
COMMENT ON FUNCTION journey._table_key(regclass) IS 'Internal: the one column of a table''s primary key, or an error naming the table.';

CREATE FUNCTION journey._check_column(p_tbl regclass, p_column text, p_what text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF p_column IS NULL OR NOT EXISTS (SELECT 1 FROM pg_attribute a
            WHERE a.attrelid = p_tbl AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION '% "%" is not a column of %', p_what, coalesce(p_column, 'NULL'), p_tbl
            USING ERRCODE = 'undefined_column',
                  HINT = format('Columns of %s: %s.', p_tbl, (SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum)
                      FROM pg_attribute a WHERE a.attrelid = p_tbl AND a.attnum > 0 AND NOT a.attisdropped));
    END IF;
END
$$;
COMMENT ON FUNCTION journey._check_column(regclass, text, text) IS 'Internal: raises 42703 naming the table and listing its columns when p_column is not one of them.';

CREATE FUNCTION journey._require_privileges(p_tbl regclass, p_privileges text[]) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    p text;
BEGIN
    FOREACH p IN ARRAY p_privileges LOOP
        IF NOT journey._caller_may(p_tbl, p) THEN
            RAISE EXCEPTION 'permission denied: % on %', p, p_tbl
                USING ERRCODE = 'insufficient_privilege',
                      HINT = format('journey acts on %s for you only with the privileges you hold on it: %s. Ask its owner to GRANT them.',
                                    p_tbl, array_to_string(p_privileges, ', '));
        END IF;
    END LOOP;
END
$$;
COMMENT ON FUNCTION journey._require_privileges(regclass, text[]) IS 'Internal: raises 42501 unless the caller (outside any SECURITY DEFINER function) holds each privilege on the table.';

CREATE FUNCTION journey.attach_table(tbl regclass, contact_column text, match text DEFAULT 'id', record_type text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    rt text := coalesce(attach_table.record_type, (SELECT c.relname::text FROM pg_class c WHERE c.oid = attach_table.tbl));
    key_col text;
    may_write boolean;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the table, e.g. ''public.invoices''.';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', tbl USING ERRCODE = 'wrong_object_type', HINT = 'Attach a plain or partitioned table.';
    END IF;
    IF (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = tbl) IN ('journey', 'pg_catalog', 'information_schema') THEN
        RAISE EXCEPTION '% belongs to journey or the system', tbl USING ERRCODE = 'wrong_object_type', HINT = 'Attach a table of your app.';
    END IF;
    IF match IS NULL OR match NOT IN ('id', 'external_id', 'email', 'phone') THEN
        RAISE EXCEPTION 'match must be id, external_id, email or phone, not %', coalesce(match, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'match says which column of journey.contacts the contact column holds.';
    END IF;
    IF rt IS NULL OR rt !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'record type name "%" must be lower-case letters, digits and _', coalesce(rt, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass record_type => ''invoices''.';
    END IF;
    PERFORM journey._require_privileges(tbl, ARRAY['SELECT', 'TRIGGER']);
    PERFORM journey._check_column(tbl, contact_column, 'contact_column');
    key_col := journey._table_key(tbl);
    IF EXISTS (SELECT 1 FROM journey.record_types r WHERE r.name = rt OR r.tbl = attach_table.tbl) THEN
        RAISE EXCEPTION 'record type "%" or table % is attached already', rt, tbl
            USING ERRCODE = 'duplicate_object', HINT = 'SELECT * FROM journey.record_types lists them; journey.detach_table removes one.';
    END IF;
    may_write := journey._caller_may(tbl, 'INSERT') AND journey._caller_may(tbl, 'UPDATE');
    INSERT INTO journey.record_types (name, tbl, key_column, contact_column, match, writable)
    VALUES (rt, tbl, key_col, contact_column, match, may_write);
    -- Only these two triggers are added to the table; the record type is their argument, so a
    -- write no flow listens to costs one probe of flow_triggers.
    EXECUTE format('CREATE TRIGGER journey_record_inserted AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION journey._on_record_written(%L)', tbl, rt);
    EXECUTE format('CREATE TRIGGER journey_record_updated AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION journey._on_record_written(%L)', tbl, rt);
    RETURN rt;
END
$$;
COMMENT ON FUNCTION journey.attach_table(regclass, text, text, text) IS
  'Admin: makes an app table a record type (named record_type, default the table''s name) that record triggers fire on: adds the statement-level AFTER INSERT and AFTER UPDATE triggers journey_record_inserted and journey_record_updated (transition tables), nothing else. contact_column holds the contact, matched against contacts.id, external_id, email or phone (match). The table needs a one-column primary key. The caller must hold SELECT and TRIGGER on it; with INSERT and UPDATE too, flows may update_record and create_record it (record_types.writable). Returns the record type.';

CREATE FUNCTION journey.detach_table(record_type text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.record_types;
    users text;
BEGIN
    SELECT * INTO r FROM journey.record_types t WHERE t.name = detach_table.record_type FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record type "%" is not attached', coalesce(record_type, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'SELECT name FROM journey.record_types lists them.';
    END IF;
    PERFORM journey._require_privileges(r.tbl, ARRAY['SELECT', 'TRIGGER']);
    SELECT string_agg(DISTINCT f.name, ', ') INTO users
    FROM journey.flows f JOIN journey.flow_versions v ON v.flow_id = f.id AND v.version = f.version
    WHERE f.status IN ('active', 'paused') AND journey._uses_record_type(v.definition, r.name);
    IF users IS NOT NULL THEN
        RAISE EXCEPTION 'record type "%" is used by flows %', r.name, users
            USING ERRCODE = 'object_in_use', HINT = 'Archive those flows (journey.archive_flow) or save versions that do not use it first.';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS journey_record_inserted ON %s', r.tbl);
    EXECUTE format('DROP TRIGGER IF EXISTS journey_record_updated ON %s', r.tbl);
    DELETE FROM journey.record_types t WHERE t.name = r.name;
END
$$;
COMMENT ON FUNCTION journey.detach_table(text) IS
  'Admin: removes a record type''s triggers from its table and forgets it (and its links). Refused while an active or paused flow''s current version has a record trigger on it (update_record needs one). Once detached, flows may write the table only if journey.allow_writes allowed it. Enrollments it caused keep their record_type and key.';

CREATE FUNCTION journey._uses_record_type(p_definition jsonb, p_type text) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_definition -> 'triggers') = 'array' THEN p_definition -> 'triggers' ELSE '[]' END) t
                   WHERE t ->> 'type' = 'record' AND t ->> 'record' = p_type)
$$;
COMMENT ON FUNCTION journey._uses_record_type(jsonb, text) IS 'Internal: whether a definition has a record trigger on the record type.';

CREATE FUNCTION journey.link(record_type text, name text, target regclass, via_column text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.record_types;
BEGIN
    SELECT * INTO r FROM journey.record_types t WHERE t.name = link.record_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'record type "%" is not attached', coalesce(record_type, 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'Attach its table first with journey.attach_table.';
    END IF;
    IF name IS NULL OR name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'link name "%" must be lower-case letters, digits and _', coalesce(name, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'e.g. journey.link(''invoices'', ''account'', ''accounts'', ''account_id'').';
    END IF;
    IF target IS NULL THEN
        RAISE EXCEPTION 'link target must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the linked table.';
    END IF;
    PERFORM journey._check_column(r.tbl, via_column, 'via_column');
    IF EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = r.tbl AND a.attname = link.name AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'link name "%" is a column of %', name, r.tbl
            USING ERRCODE = 'duplicate_column', HINT = 'record.<name> would hide the column: choose another name.';
    END IF;
    IF NOT journey._readable_target(target) THEN
        RAISE EXCEPTION 'link target % is not a table journey may read: %', target,
            CASE WHEN (SELECT c.relkind FROM pg_class c WHERE c.oid = target) NOT IN ('r', 'p') THEN 'not a plain table'
                 ELSE 'it has row-level security' END
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Links are read by the worker''s role, which would run a view''s functions and read past row security policies: link a plain table without row-level security.';
    END IF;
    PERFORM journey._require_privileges(target, ARRAY['SELECT']);
    INSERT INTO journey.record_links (record_type, name, target, via_column, target_key)
    VALUES (r.name, link.name, target, via_column, journey._table_key(target))
    ON CONFLICT ON CONSTRAINT record_links_pkey DO UPDATE
       SET target = EXCLUDED.target, via_column = EXCLUDED.via_column, target_key = EXCLUDED.target_key;
END
$$;
COMMENT ON FUNCTION journey.link(text, text, regclass, text) IS
  'Admin: record.<name> of a record of record_type is the row of target whose primary key equals the record''s via_column (e.g. invoice -> account), read when a step runs: templates, conditions, recipients (record.<name>.<column>) and update_record target <name>. The caller must hold SELECT on target, a plain table without row-level security (journey._readable_target: the worker reads it). Linking a name again replaces it.';

CREATE FUNCTION journey.allow_writes(tbl regclass) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be NULL' USING ERRCODE = 'null_value_not_allowed', HINT = 'Pass the table, e.g. ''public.tasks''.';
    END IF;
    PERFORM journey._writable_now(tbl);   -- a plain table of the app, its row security forced if any
    PERFORM journey._require_privileges(tbl, ARRAY['SELECT', 'INSERT', 'UPDATE']);
    INSERT INTO journey.writable_tables (tbl) VALUES (tbl) ON CONFLICT DO NOTHING;
END
$$;
COMMENT ON FUNCTION journey.allow_writes(regclass) IS
  'Admin: lets create_record nodes insert into an app table (one that is not attached). The caller must hold SELECT, INSERT and UPDATE on it. The worker inserts as the table''s owner, security-restricted; a table with row-level security is refused unless it is forced (the owner would bypass its policies; journey._writable_now, checked again at every write).';

-- ---------------------------------------------------------------- firing
CREATE FUNCTION journey._base_type(p_type oid, p_typmod integer, OUT base oid, OUT typmod integer)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    d record;
BEGIN
    base := p_type;
    typmod := p_typmod;
    -- through the domains created after initdb to the type beneath (bounded walk), with the
    -- innermost domain's typmod
    FOR i IN 1..32 LOOP
        EXIT WHEN base < 16384;
        SELECT y.typbasetype, y.typtypmod INTO d FROM pg_type y WHERE y.oid = base AND y.typtype = 'd';
        EXIT WHEN NOT FOUND;   -- not a domain: base is the type itself
        base := d.typbasetype;
        typmod := d.typtypmod;
    END LOOP;
END
$$;
COMMENT ON FUNCTION journey._base_type(oid, integer) IS
  'Internal: a column''s type (and typmod) with the domains created after initdb looked through: journey casts a link''s key to it (format_type), never to such a domain, whose CHECK would run its owner''s functions as the reading role; journey._plain_type asks whether it is built in.';

CREATE FUNCTION journey._plain_type(p_type oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    -- a domain stands for its base type (to_jsonb and casts look through it); built in at initdb:
    -- their casts, operators and output functions are the system's own
    SELECT (journey._base_type(p_type, -1)).base < 16384
$$;
COMMENT ON FUNCTION journey._plain_type(oid) IS
  'Internal: whether a column type is built in (through domains): journey reads such columns with to_jsonb, ::text and their = operator. A type created later (an enum, a composite, an extension''s or the app''s own type) may carry casts or operators its owner wrote, which journey''s triggers (SECURITY DEFINER) and the worker must not run: such columns are read through their output function (format(''%s'')).';

CREATE FUNCTION journey._record_columns(p_tbl regclass)
RETURNS TABLE (col text, attnum int2, plain boolean, eq boolean)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- read once per statement: whether each column's type is built in (journey._plain_type) and
    -- has pg_catalog's = (compared with it; any other column as text). PL/pgSQL: its plan is
    -- kept for the session (a SQL function's would be made again at every call, in every write)
    RETURN QUERY
    SELECT a.attname::text, a.attnum, x.plain,
           -- (a scalar subquery with LIMIT: an index probe per column; EXISTS became a hash join
           -- over all of pg_operator)
           x.plain AND coalesce((SELECT true FROM pg_operator p WHERE p.oprname = '=' AND p.oprleft = a.atttypid AND p.oprright = a.atttypid
                                    AND p.oprnamespace = 'pg_catalog'::regnamespace AND p.oprresult = 'bool'::regtype LIMIT 1), false)
      FROM pg_attribute a CROSS JOIN LATERAL (SELECT journey._plain_type(a.atttypid) AS plain) x
     WHERE a.attrelid = p_tbl AND a.attnum > 0 AND NOT a.attisdropped;
END
$$;
COMMENT ON FUNCTION journey._record_columns(regclass) IS
  'Internal: a table''s columns in order, each with whether its type is built in (journey._plain_type) and has pg_catalog''s = operator; the record triggers'' SQL is written from them.';

CREATE FUNCTION journey._text_expr(p_alias text, p_column text, p_plain boolean) RETURNS text
LANGUAGE sql IMMUTABLE
-- (no SET clause: the planner inlines it; it names no object)
AS $$
    -- the column as text: a cast for built-in types, the type's output function otherwise
    SELECT CASE WHEN p_plain THEN format('(%s.%I)::text', p_alias, p_column)
                ELSE format('CASE WHEN num_nulls(%1$s.%2$I) = 0 THEN format(''%%s'', %1$s.%2$I) END', p_alias, p_column) END
$$;
COMMENT ON FUNCTION journey._text_expr(text, text, boolean) IS
  'Internal: the SQL expression reading column p_column of the row p_alias as text: a cast when its type is built in (p_plain), the type''s output function (format) otherwise.';

CREATE FUNCTION journey._differs_expr(p_column text, p_plain boolean, p_eq boolean) RETURNS text
LANGUAGE sql IMMUTABLE
-- (no SET clause: the planner inlines it; it names no object)
AS $$
    SELECT CASE WHEN p_eq THEN format('o.%1$I IS DISTINCT FROM n.%1$I', p_column)
                ELSE format('%s IS DISTINCT FROM %s', journey._text_expr('o', p_column, p_plain),
                            journey._text_expr('n', p_column, p_plain)) END
$$;
COMMENT ON FUNCTION journey._differs_expr(text, boolean, boolean) IS
  'Internal: the test that column p_column changed between an old row o and a new row n: IS DISTINCT FROM by pg_catalog''s = (p_eq), else by the text forms (journey._text_expr).';

CREATE FUNCTION journey._text_of(p_tbl regclass, p_alias text, p_column text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    RETURN (SELECT journey._text_expr(p_alias, c.col, c.plain) FROM journey._record_columns(p_tbl) c WHERE c.col = p_column);
END
$$;
COMMENT ON FUNCTION journey._text_of(regclass, text, text) IS
  'Internal: the SQL expression reading a column of the row p_alias (of table p_tbl) as text: a cast for built-in types, the type''s output function (format) for others (journey._plain_type).';

CREATE FUNCTION journey._json_of(p_tbl regclass, p_alias text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    out text;
BEGIN
    -- to_jsonb of the row when every column is built in; else the row's columns one by one
    -- (those of other types as their text), 50 to a jsonb_build_object (its argument limit)
    SELECT CASE WHEN bool_and(x.plain) THEN format('to_jsonb(%s)', p_alias)
                ELSE string_agg(x.part, ' || ') END
      INTO out
    FROM (SELECT bool_and(c.plain) AS plain,
                 format('jsonb_build_object(%s)', string_agg(format('%L, %s', c.col,
                        CASE WHEN c.plain THEN format('%s.%I', p_alias, c.col) ELSE journey._text_expr(p_alias, c.col, false) END),
                        ', ' ORDER BY c.attnum)) AS part
          FROM (SELECT c.*, (row_number() OVER (ORDER BY c.attnum) - 1) / 50 AS chunk FROM journey._record_columns(p_tbl) c) c
          GROUP BY c.chunk) x;
    RETURN out;
END
$$;
COMMENT ON FUNCTION journey._json_of(regclass, text) IS
  'Internal: the SQL expression reading the row p_alias of table p_tbl as jsonb: to_jsonb when every column is of a built-in type, else an object built column by column with the others as their text (journey._plain_type).';

CREATE FUNCTION journey._record_lookup(p_tbl regclass, p_match text, p_column text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    -- a per-row index probe of contacts by the record's contact column (n.<column>): by id,
    -- external_id, email (case-insensitive) or phone; the oldest contact when several match; the
    -- column read as text by journey._text_of
    SELECT format(CASE WHEN p_match = 'id' AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype) THEN 'c.id = n.%1$I'
        WHEN p_match = 'id' THEN 'c.id = CASE WHEN %2$s ~ ''^[0-9]{1,18}$'' THEN (%2$s)::bigint END'
        WHEN p_match = 'external_id' THEN 'c.id = (SELECT k.contact_id FROM journey.contact_keys k WHERE k.external_id = %2$s)'
        WHEN p_match = 'email' THEN 'lower(c.email) = lower(%2$s)'
        WHEN p_match = 'phone' THEN 'c.phone = %2$s'
    END, p_column, journey._text_of(p_tbl, 'n', p_column))
    FROM pg_attribute a WHERE a.attrelid = p_tbl AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION journey._record_lookup(regclass, text, text) IS 'Internal: the condition on contacts c that finds the contact of a record n of a table by its contact column, for a match kind (id, external_id, email case-insensitively, phone); an integer column is compared with contacts.id as it is, another one (read as text) only when it holds digits.';

CREATE FUNCTION journey._record_contact_is_key(r journey.record_types) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- the contact column is NOT NULL and a non-deferrable foreign key to contacts.id: every
    -- record written has its contact (the app's own write checked it). (PL/pgSQL: a plan kept
    -- for the session, as journey._record_columns)
    RETURN r.match = 'id' AND EXISTS (
        SELECT 1 FROM pg_constraint k JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        WHERE k.conrelid = r.tbl AND k.contype = 'f' AND k.confrelid = 'journey.contacts'::regclass
          AND NOT k.condeferrable AND cardinality(k.conkey) = 1 AND a.attname = r.contact_column AND a.attnotnull);
END
$$;
COMMENT ON FUNCTION journey._record_contact_is_key(journey.record_types) IS
  'Internal: whether a record type''s contact column is NOT NULL and a non-deferrable foreign key to journey.contacts (id): then it is the contact''s id, with no lookup, and no record lacks its contact.';

CREATE FUNCTION journey._record_source(r journey.record_types, p_op text, p_changed jsonb, p_old boolean) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    lookup text;
    test text;
    old text;
    key text;
    key_join text;
BEGIN
    -- the contact: the column itself when it is a NOT NULL, non-deferrable foreign key to
    -- contacts.id (_record_contact_is_key), else a per-row index probe of contacts (_record_lookup)
    IF journey._record_contact_is_key(r) THEN
        lookup := format('CROSS JOIN LATERAL (SELECT n.%I::bigint AS id) c', r.contact_column);
    ELSE
        lookup := format('LEFT JOIN LATERAL (SELECT c.id FROM journey.contacts c WHERE %s ORDER BY c.id LIMIT 1) c ON true',
                         journey._record_lookup(r.tbl, r.match, r.contact_column));
    END IF;
    IF p_op <> 'update' THEN
        RETURN format('SELECT %1$s AS key, c.id AS contact_id, %2$s AS data, NULL::jsonb AS old FROM new_rows n %3$s',
                      journey._text_of(r.tbl, 'n', r.key_column), journey._json_of(r.tbl, 'n'), lookup);
    END IF;
    -- the columns' facts read once (journey._record_columns); from them:
    -- changed: one of the listed columns (those the table still has) differs; without a list,
    -- any column;
    -- old: the columns that changed, as they were (the worker reads old as record || old), built
    -- as JSON text from the changed columns only (ARRAY[...]: a function takes at most 100
    -- arguments, a table may have more columns); {} when the flow cannot read old (p_old false:
    -- nothing reads it, and building it is a good part of an update's enrollment);
    -- the key: its text form, and the join of old and new rows on it
    SELECT string_agg(journey._differs_expr(c.col, c.plain, c.eq), ' OR ' ORDER BY c.attnum)
               FILTER (WHERE p_changed IS NULL OR c.col IN (SELECT jsonb_array_elements_text(p_changed))),
           format('(''{'' || array_to_string(ARRAY[%s]::text[], '','') || ''}'')::jsonb',
                  string_agg(format('CASE WHEN %s THEN %L || coalesce(to_json(%s)::text, ''null'') END',
                                    journey._differs_expr(c.col, c.plain, c.eq), to_json(c.col)::text || ':',
                                    CASE WHEN c.plain THEN format('o.%I', c.col) ELSE journey._text_expr('o', c.col, false) END),
                             ', ' ORDER BY c.attnum)),
           max(journey._text_expr('n', c.col, c.plain)) FILTER (WHERE c.col = r.key_column),
           max(CASE WHEN c.plain THEN format('o.%1$I = n.%1$I', c.col)
                    ELSE format('%s = %s', journey._text_expr('o', c.col, false), journey._text_expr('n', c.col, false)) END)
               FILTER (WHERE c.col = r.key_column)
      INTO test, old, key, key_join
      FROM journey._record_columns(r.tbl) c;
    RETURN format('SELECT %1$s AS key, c.id AS contact_id, %2$s AS data, %3$s AS old
                   FROM new_rows n JOIN old_rows o ON %4$s %5$s WHERE %6$s',
                  key, journey._json_of(r.tbl, 'n'), CASE WHEN p_old THEN old ELSE '''{}''::jsonb' END,
                  key_join, lookup, coalesce(test, 'false'));
END
$$;
COMMENT ON FUNCTION journey._record_source(journey.record_types, text, jsonb, boolean) IS
  'Internal: the query over a record trigger''s transition tables (new_rows, and old_rows on updates) giving each written record''s key, its contact (NULL when none matches), the record as jsonb and, on updates, the columns that changed as they were (an empty object when p_old is false: the flow cannot read old) (only rows where a column of p_changed, or any column, changed). Identifiers come from the catalog, quoted.';

CREATE FUNCTION journey._record_listeners(p_type text, p_op text)
RETURNS TABLE (flow_id bigint, condition jsonb, changed jsonb, reads_old boolean, keyed boolean, tbl oid,
               key_column text, contact_column text, match text)
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    flows bigint[];
    r journey.record_types;
    keyed boolean;
BEGIN
    -- one index probe when no flow listens to this record type
    SELECT array_agg(DISTINCT f.flow_id) INTO flows
    FROM journey.flow_triggers f WHERE f.kind = 'record' AND f.key = p_type;
    IF flows IS NULL THEN
        RETURN;
    END IF;
    SELECT * INTO r FROM journey.record_types x WHERE x.name = p_type;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM journey._lock_flows(flows);
    keyed := journey._record_contact_is_key(r);   -- (a catalog read: once, not per trigger)
    RETURN QUERY
    SELECT f.flow_id, f.condition, f.params -> 'changed', coalesce((f.params ->> 'old')::boolean, true),
           keyed, r.tbl::oid,
           r.key_column, r.contact_column, r.match
      FROM journey.flow_triggers f
     WHERE f.kind = 'record' AND f.key = p_type AND f.flow_id = ANY (flows)
       AND coalesce(f.params -> 'on', '["insert", "update"]') ? p_op
     ORDER BY f.flow_id, f.pos;
END
$$;
COMMENT ON FUNCTION journey._record_listeners(text, text) IS
  'Internal: the record trigger''s first step (journey._on_record_written): the record-trigger flows listening to an operation on a record type, one row per trigger in flow order with its where (condition), changed list and whether the flow can read old (params.old, false when its definition cannot: model::triggers::record::routed_params), and the record type''s facts its statement is written from (keyed: journey._record_contact_is_key); takes the flows'' shared locks. No row (one index probe) when no flow listens.';

CREATE FUNCTION journey._record_statement(p_type text, p_op text, p_changed jsonb, p_old boolean, p_keyed boolean,
                                          p_bulk boolean) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    r journey.record_types;
BEGIN
    SELECT * INTO r FROM journey.record_types x WHERE x.name = p_type;
    -- The written records with their contacts (journey._record_source), enrolled once per
    -- record (occurrence record:<key>; the check is not ON CONFLICT: two writes of one record
    -- are serialized by its row lock. For a bulk write (p_bulk: planned for its size at every
    -- write) NOT EXISTS, which the planner makes a hash of the flow's enrollments when that is
    -- cheaper; for a small one, whose plan is kept, a probe per record of the flow/contact/
    -- occurrence index, written as a scalar subquery over a row range only that index can serve:
    -- a plan made while enrollments looked empty would otherwise read all of a contact's
    -- enrollments by the primary key (or hash all of the flow's) at every later write) into the
    -- flow $1 as journey._enroll does (frozen into a flow paused by an edit or a
    -- quota), when the where $3 matches, counted at once (they all enter at the flow's start
    -- node); records without a contact are counted. Arguments: $1 the flow, $2 the record
    -- type, $3 the where. The records are read once; kept (MATERIALIZED) only when some may lack
    -- a contact, to count those.
    RETURN format(
        'WITH m AS %s (%s),
         ins AS (
           INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at, data, occurrence, record_type, record_key, record_old)
           SELECT f.id, CASE WHEN f.status = ''active'' THEN f.version ELSE coalesce(f.routed_version, f.version) END,
                  m.contact_id, f.start_node, now(), m.data, ''record:'' || m.key, $2, m.key, m.old
             FROM m JOIN journey.flows f ON f.id = $1
              AND (f.status = ''active'' OR (f.status = ''paused'' AND f.paused_reason IN (''edited'', ''quota'')))
            WHERE m.contact_id IS NOT NULL
              AND ($3 IS NULL OR journey._matches($3, m.contact_id, journey._record_event($2, m.data, m.old)))
              AND %s
           RETURNING 1)
         SELECT %s, i.n, journey._count_entered_at($1, (SELECT f.start_node FROM journey.flows f WHERE f.id = $1), i.n)
           FROM (SELECT count(*) AS n FROM ins) i',
        CASE WHEN p_keyed THEN 'NOT MATERIALIZED' ELSE 'MATERIALIZED' END, journey._record_source(r, p_op, p_changed, p_old),
        CASE WHEN p_bulk
             THEN 'NOT EXISTS (SELECT FROM journey.enrollments e
                     WHERE e.flow_id = $1 AND e.contact_id = m.contact_id AND e.occurrence = ''record:'' || m.key)'
             ELSE '(SELECT true FROM journey.enrollments e
                     WHERE (e.flow_id, e.contact_id, e.occurrence) >= ($1, m.contact_id, ''record:'' || m.key)
                       AND (e.flow_id, e.contact_id, e.occurrence) <= ($1, m.contact_id, ''record:'' || m.key)
                     LIMIT 1) IS NULL' END,
        CASE WHEN p_keyed THEN '0::bigint' ELSE '(SELECT count(*) FROM m WHERE m.contact_id IS NULL)' END);
END
$$;
COMMENT ON FUNCTION journey._record_statement(text, text, jsonb, boolean, boolean, boolean) IS
  'Internal: the statement a record trigger runs for one listening trigger (arguments $1 flow, $2 record type, $3 where), over the transition tables: enrolls each written record''s contact once per record, counts them; returns (records without a contact, enrolled, counter rows written). Written from the catalog (journey._record_source, identifiers quoted); journey._on_record_written keeps it per backend. p_bulk: for a write of many rows, planned at each use (the once-per-record check NOT EXISTS); else a kept plan''s (an index probe per record).';

-- (C since 0.3.0: src/api/record_trigger.rs keeps each listening trigger's statement per backend)
CREATE FUNCTION journey._on_record_written() RETURNS trigger
LANGUAGE c
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
SET jit = off
SET enable_seqscan = off
SET enable_mergejoin = off
SET work_mem = '64MB'
SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', 'on_record_written_wrapper';
COMMENT ON FUNCTION journey._on_record_written() IS
  'Trigger of attached tables (argument: the record type; C, src/api/record_trigger.rs): enrolls the contact of each inserted or updated record into the active record-trigger flows listening to that operation whose changed columns really changed (IS DISTINCT FROM; without changed, any column) and whose where matches (record.*, old.*, contact.*); one enrollment per record (occurrence = record:<key>), its data the record as written, record_old the columns an update changed as they were. Counts records whose contact column matched no contact in record_types.unmatched (once per statement: the most any one trigger of it saw). A write no flow listens to costs one index probe. The statement of each listening trigger (journey._record_statement) is kept per backend, keyed on the table''s columns as its relation has them, the record type and the trigger''s changed list: a write of up to 64 rows reuses its plan, a larger one is planned for its size.';

CREATE FUNCTION journey._record_event(p_type text, p_data jsonb, p_old jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT CASE WHEN p_old IS NULL
                THEN jsonb_build_object('trigger', 'record', 'op', 'insert', 'record_type', p_type, 'record', p_data)
                ELSE jsonb_build_object('trigger', 'record', 'op', 'update', 'record_type', p_type, 'record', p_data,
                                        'old', p_data || p_old) END
$$;
COMMENT ON FUNCTION journey._record_event(text, jsonb, jsonb) IS
  'Internal: what flows see of a record trigger''s enrollment (event.*, record.*, old.*): {trigger, op, record_type, record, old} from its data (the record) and record_old (the columns an update changed, as they were; NULL for an insert).';

CREATE FUNCTION journey._record_data(p_type text, p_data jsonb, p_old jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    l record;
    linked jsonb;
    out jsonb := journey._record_event(p_type, p_data, p_old);
BEGIN
    -- the record as it was when the trigger fired, plus each link's row read now
    FOR l IN SELECT k.*, journey._readable_target(k.target) AS readable
               FROM journey.record_links k WHERE k.record_type = p_type ORDER BY k.name LOOP
        BEGIN
            -- Read as the claim's role (the worker's, a superuser by default): only a plain
            -- table without row security (a view's functions would run as that role, and a
            -- superuser reads past policies; journey.link refuses both, and a table can change
            -- after), else nil. The key compared in its own type, cast to the type beneath any
            -- domain (a cast to the domain would run its CHECK, a function of the table's owner,
            -- as that role); a key of a type created after initdb as text (journey._plain_type).
            linked := NULL;
            IF l.readable THEN
                EXECUTE format('SELECT %s FROM %s t WHERE %s', journey._json_of(l.target, 't'), l.target,
                               (SELECT CASE WHEN journey._plain_type(a.atttypid)
                                            THEN format('t.%I = CAST($1 AS %s)', a.attname,
                                                        (SELECT format_type(b.base, b.typmod) FROM journey._base_type(a.atttypid, a.atttypmod) b))
                                            ELSE format('%s = $1', journey._text_of(l.target, 't', l.target_key)) END
                                  FROM pg_attribute a WHERE a.attrelid = l.target AND a.attname = l.target_key))
                    INTO linked USING p_data ->> l.via_column;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            linked := NULL;   -- a table gone or unreadable: the link reads as nil
        END;
        out := jsonb_set(out, ARRAY['record', l.name], coalesce(linked, 'null'));
    END LOOP;
    RETURN out;
END
$$;
COMMENT ON FUNCTION journey._record_data(text, jsonb, jsonb) IS
  'Internal: a record trigger''s enrollment as flows see it (journey._record_event) with record.<link> set to each link''s row as it is now (nil when none or unreadable); the claim reads record enrollments through it.';

CREATE FUNCTION journey.record_timeline(record_type text, key text)
RETURNS TABLE (at timestamptz, kind text, flow text, node text, detail text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    -- the record's enrollments: in each flow that ever had a record trigger on the type, those of
    -- occurrence record:<key> (the flow_id-leading unique index), and their fork branches
    WITH roots AS (
        SELECT e.* FROM journey.enrollments e
        WHERE e.flow_id IN (SELECT v.flow_id FROM journey.flow_versions v
                            WHERE journey._uses_record_type(v.definition, record_timeline.record_type))
          AND e.occurrence = 'record:' || record_timeline.key AND e.record_type = record_timeline.record_type
    ), es AS (
        SELECT * FROM roots
        UNION ALL
        SELECT b.* FROM roots p JOIN journey.enrollments b ON b.contact_id = p.contact_id AND b.parent_id = p.id
    )
    SELECT t.at, t.kind, t.flow, t.node, t.detail FROM (
        SELECT e.entered_at AS at, 'enrolled'::text AS kind, f.name AS flow, NULL::text AS node,
               format('enrollment %s of contact %s (version %s)', e.id, e.contact_id, e.version) AS detail, 0 AS o, e.id AS k
        FROM roots e JOIN journey.flows f ON f.id = e.flow_id
      UNION ALL
        SELECT s.at, 'step', f.name, s.node, s.outcome, 1, s.id
        FROM es e JOIN journey.steps s ON s.contact_id = e.contact_id AND s.enrollment_id = e.id
        JOIN journey.flows f ON f.id = s.flow_id
      UNION ALL
        SELECT m.created_at, 'message', coalesce(f.name, m.flow_name), m.node,
               format('%s to %s: %s', m.channel, coalesce(m.recipient, '?'), m.status), 2, m.id
        FROM es e JOIN journey.outbox m ON m.contact_id = e.contact_id AND m.enrollment_id = e.id
        LEFT JOIN journey.flows f ON f.id = m.flow_id
      UNION ALL
        SELECT e.updated_at, e.status, f.name, e.node, e.last_error, 3, e.id
        FROM roots e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.status <> 'active'
    ) t
    ORDER BY t.at, t.o, t.k
$$;
COMMENT ON FUNCTION journey.record_timeline(text, text) IS
  'The activity log of one record (seed 004): every enrollment it caused (kind enrolled, with its contact), each node those enrollments and their fork branches entered (kind step), each message they wrote (kind message) and how they ended, oldest first. Found through the flows that ever had a record trigger on the type (no index of its own: enrolling stays cheap).';

-- ---------------------------------------------------------------- writing (update_record, create_record)
CREATE FUNCTION journey._writable(p_tbl regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM journey.writable_tables w WHERE w.tbl = p_tbl)
        OR EXISTS (SELECT 1 FROM journey.record_types r WHERE r.tbl = p_tbl AND r.writable)
$$;
COMMENT ON FUNCTION journey._writable(regclass) IS 'Internal: whether flows may write the table (allowed with journey.allow_writes, or attached by a role that could write it).';

CREATE FUNCTION journey._record_write(p_type text, p_target text, p_table text, p_columns text[],
                                      OUT statement text, OUT owner oid, OUT key_from text, OUT key_column text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    tbl regclass;
    c text;
    sets text;
    cols text;
BEGIN
    -- the table: the record's own (target record), a link's, or create_record's table
    IF p_target = 'record' THEN
        SELECT r.tbl, r.key_column, r.key_column INTO tbl, key_column, key_from
        FROM journey.record_types r WHERE r.name = p_type;
    ELSIF p_target IS NOT NULL THEN
        SELECT l.target, l.target_key, l.via_column INTO tbl, key_column, key_from
        FROM journey.record_links l WHERE l.record_type = p_type AND l.name = p_target;
    ELSE
        tbl := to_regclass(p_table);
    END IF;
    IF tbl IS NULL THEN
        RAISE EXCEPTION '%', CASE WHEN p_target IS NULL THEN format('table %s does not exist', p_table)
                                  WHEN p_type IS NULL THEN 'update_record needs a record trigger (this enrollment has no record)'
                                  ELSE format('record type "%s" has no %s', p_type, CASE WHEN p_target = 'record' THEN 'table (detached)' ELSE format('link "%s"', p_target) END) END
            USING ERRCODE = 'undefined_table', HINT = 'journey.record_types, journey.record_links and journey.writable_tables say what flows may write.';
    END IF;
    IF NOT journey._writable(tbl) THEN
        RAISE EXCEPTION 'flows may not write %', tbl
            USING ERRCODE = 'insufficient_privilege', HINT = 'journey.allow_writes(table) lets them (an admin who may INSERT and UPDATE it).';
    END IF;
    PERFORM journey._writable_now(tbl);
    FOREACH c IN ARRAY p_columns LOOP
        PERFORM journey._check_column(tbl, c, 'column');
    END LOOP;
    SELECT string_agg(format('%1$I = r.%1$I', x), ', '), string_agg(format('%I', x), ', ')
      INTO sets, cols FROM unnest(p_columns) x;
    -- identifiers from the catalog (quoted), values the statement's arguments: $1 the values
    -- and $2 the key, each a jsonb object read through the table's row type
    statement := CASE WHEN p_target IS NOT NULL THEN format(
        'WITH w AS (UPDATE %1$s t SET %2$s FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $1) r '
        'WHERE t.%3$I = (SELECT k.%3$I FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $2) k) RETURNING 1) '
        'SELECT pg_catalog.count(*) FROM w', tbl, sets, key_column)
    ELSE format(
        'WITH w AS (INSERT INTO %1$s (%2$s) SELECT %3$s FROM pg_catalog.jsonb_populate_record(NULL::%1$s, $1) r RETURNING 1) '
        'SELECT pg_catalog.count(*) FROM w', tbl, cols, (SELECT string_agg(format('r.%I', x), ', ') FROM unnest(p_columns) x))
    END;
    SELECT cl.relowner INTO owner FROM pg_class cl WHERE cl.oid = tbl;
END
$$;
COMMENT ON FUNCTION journey._record_write(text, text, text, text[]) IS
  'Internal: the statement an update_record (p_target: record or a link name of record type p_type) or create_record (p_table) node runs, for these columns: the table checked writable and each column checked to exist; identifiers quoted from the catalog, values passed as the jsonb arguments $1 (values) and $2 (the key, {key_column: value}); with the table''s owner (the engine runs it as that role, security-restricted) and which record column holds the key.';

CREATE FUNCTION journey._record_columns_problem(p_type text, p_target text, p_table text, p_columns text[], p_write boolean)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    tbl regclass;
    missing text;
BEGIN
    -- the table: a record type's (p_target NULL or 'record'), a link's, or one named (p_table)
    IF p_table IS NOT NULL THEN
        tbl := to_regclass(p_table);
        IF tbl IS NULL THEN
            RETURN format('table "%s" does not exist', p_table);
        END IF;
    ELSIF coalesce(p_target, 'record') = 'record' THEN
        SELECT r.tbl INTO tbl FROM journey.record_types r WHERE r.name = p_type;
        IF tbl IS NULL THEN
            RETURN NULL;   -- an unknown record type is listed as such already
        END IF;
    ELSE
        SELECT l.target INTO tbl FROM journey.record_links l WHERE l.record_type = p_type AND l.name = p_target;
        IF tbl IS NULL THEN
            RETURN format('record type "%s" has no link "%s" (journey.link adds one; target is "record" or a link)', p_type, p_target);
        END IF;
    END IF;
    IF p_write AND NOT journey._writable(tbl) THEN
        RETURN format('flows may not write %s (journey.allow_writes(''%s'') lets them)', tbl, tbl);
    END IF;
    SELECT string_agg(format('"%s"', c), ', ') INTO missing FROM unnest(p_columns) c
    WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
        RETURN format('%s: no column %s (its columns: %s)', tbl, missing,
                      (SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum) FROM pg_attribute a
                       WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped));
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._record_columns_problem(text, text, text, text[], boolean) IS
  'Internal (validate_flow): what is wrong with the columns a record trigger (changed) or node (update_record set, create_record values) names: the table missing, not writable (p_write), a link unknown, or columns it lacks; NULL when nothing.';

-- timeline names the record of a record trigger's enrollments
CREATE OR REPLACE FUNCTION journey.timeline(contact bigint)
RETURNS TABLE (at timestamptz, kind text, flow text, node text, detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    PERFORM journey._check_contact(contact);
    RETURN QUERY
    SELECT t.at, t.kind, t.flow, t.node, t.detail FROM (
        SELECT e.entered_at AS at, 'enrolled'::text AS kind, f.name AS flow, NULL::text AS node,
               format('enrollment %s (version %s)', e.id, e.version)
                 || CASE WHEN e.record_type IS NULL THEN '' ELSE format(', record %s %s', e.record_type, e.record_key) END AS detail,
               0 AS o, e.id AS k
        FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.contact_id = timeline.contact
      UNION ALL
        SELECT s.at, 'step', f.name, s.node, s.outcome, 1, s.id
        FROM journey.steps s JOIN journey.flows f ON f.id = s.flow_id
        WHERE s.contact_id = timeline.contact
      UNION ALL
        SELECT m.created_at, 'message', coalesce(f.name, m.flow_name), m.node,
               format('%s to %s: %s', m.channel, coalesce(m.recipient, '?'), m.status), 2, m.id
        FROM journey.outbox m LEFT JOIN journey.flows f ON f.id = m.flow_id
        WHERE m.contact_id = timeline.contact AND NOT m.test
      UNION ALL
        SELECT e.updated_at, e.status, f.name, e.node, e.last_error, 3, e.id
        FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
        WHERE e.contact_id = timeline.contact AND e.status <> 'active'
    ) t
    ORDER BY t.at, t.o, t.k;
END
$$;
COMMENT ON FUNCTION journey.timeline(bigint) IS
  'Everything that happened to one contact, oldest first: enrollments (kind enrolled; with the record type and key of a record trigger''s), nodes entered (kind step, detail = outcome), messages (kind message; not test_send''s, and named after their flow even once it was deleted) and how enrollments ended (kind completed/exited/stopped/failed, detail = error).';

REVOKE ALL ON FUNCTION journey._caller_may(oid, text), journey._table_key(regclass), journey._check_column(regclass, text, text),
    journey._require_privileges(regclass, text[]), journey.attach_table(regclass, text, text, text), journey.detach_table(text),
    journey._uses_record_type(jsonb, text), journey.link(text, text, regclass, text), journey.allow_writes(regclass),
    journey._plain_type(oid), journey._record_columns(regclass), journey._text_expr(text, text, boolean),
    journey._differs_expr(text, boolean, boolean), journey._text_of(regclass, text, text), journey._json_of(regclass, text),
    journey._record_lookup(regclass, text, text), journey._record_contact_is_key(journey.record_types),
    journey._record_source(journey.record_types, text, jsonb, boolean), journey._record_listeners(text, text),
    journey._record_statement(text, text, jsonb, boolean, boolean, boolean), journey._on_record_written(), journey._record_event(text, jsonb, jsonb),
    journey._record_data(text, jsonb, jsonb), journey.record_timeline(text, text), journey._writable(regclass),
    journey._record_write(text, text, text, text[]), journey._record_columns_problem(text, text, text, text[], boolean) FROM PUBLIC;

-- ================================================================ issue 16: inbound SMS
-- sql/inbound.sql: the event type sms_received (left out of dumps), journey._is_opt_out and
-- journey.receive_sms, which the relay kind of grant_role may execute (item 2); roles that may
-- execute journey.claim (relays) get it here.
INSERT INTO journey.event_types (name, params)
VALUES ('sms_received', '[{"name": "text", "type": "string", "required": true}, {"name": "provider_event_id", "type": "string"}]')
ON CONFLICT (name) DO NOTHING;
SELECT pg_catalog.pg_extension_config_dump('journey.event_types', 'WHERE name <> ''sms_received''');

CREATE FUNCTION journey._is_opt_out(body text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT upper(regexp_replace(coalesce(body, ''), '\s', '', 'g')) IN ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT')
$$;
COMMENT ON FUNCTION journey._is_opt_out(text) IS
  'Internal: whether an inbound SMS is an opt-out: STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT, whatever the case and spaces.';

CREATE FUNCTION journey.receive_sms(from_phone text, body text, provider_event_id text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    sender_phone text;
    ids bigint[];
    opt_out boolean := journey._is_opt_out(body);
BEGIN
    IF from_phone IS NULL OR btrim(from_phone) = '' THEN
        RAISE EXCEPTION 'from_phone must not be NULL or blank' USING ERRCODE = 'null_value_not_allowed',
            HINT = 'Pass the sender''s number as the gateway gave it (From).';
    END IF;
    BEGIN
        sender_phone := journey._e164(from_phone, (SELECT s.default_country FROM journey.settings s));
    EXCEPTION WHEN invalid_parameter_value THEN
        RETURN 'unknown phone';   -- a short code or an alphanumeric sender: no contact has it
    END;
    SELECT array_agg(c.id ORDER BY c.id) INTO ids FROM journey.contacts c WHERE c.phone = sender_phone;
    IF ids IS NULL THEN
        RETURN 'unknown phone';
    END IF;
    IF receive_sms.provider_event_id IS NOT NULL AND EXISTS (
            SELECT 1 FROM journey.events e
             WHERE e.contact_id = ANY (ids) AND e.name = 'sms_received'
               AND e.payload->>'provider_event_id' = receive_sms.provider_event_id) THEN
        RETURN 'duplicate';   -- the gateway posted this message before
    END IF;
    INSERT INTO journey.event_types (name, params)
    VALUES ('sms_received', '[{"name": "text", "type": "string", "required": true}, {"name": "provider_event_id", "type": "string"}]')
    ON CONFLICT (name) DO NOTHING;
    IF opt_out THEN
        UPDATE journey.contacts c SET sms_opt_out = true, updated_at = now()
         WHERE c.id = ANY (ids) AND NOT c.sms_opt_out;
    END IF;
    INSERT INTO journey.events (name, contact_id, payload)
    SELECT 'sms_received', i,
           jsonb_build_object('text', coalesce(body, '')) ||
           CASE WHEN receive_sms.provider_event_id IS NULL THEN '{}'::jsonb
                ELSE jsonb_build_object('provider_event_id', receive_sms.provider_event_id) END
      FROM unnest(ids) i;
    RETURN CASE WHEN opt_out THEN 'opted out' ELSE 'received' END;
END
$$;
COMMENT ON FUNCTION journey.receive_sms(text, text, text) IS
  'Records an SMS a contact sent (relays call it for inbound messages): every contact whose phone is from_phone (normalized to E.164 like stored phones) gets the event sms_received with payload {"text": body, "provider_event_id": ...}, which enrolls into event flows and wakes wait_event nodes; a body of STOP, STOPALL, UNSUBSCRIBE, CANCEL, END or QUIT (any case and spacing) first sets their sms_opt_out. Returns what it did: received, opted out, duplicate (an event with this provider_event_id was recorded before) or unknown phone (no contact has it, or it is not a phone number).';
REVOKE ALL ON FUNCTION journey._is_opt_out(text), journey.receive_sms(text, text, text) FROM PUBLIC;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'journey.claim(text[], integer, interval)'::regprocedure
                AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey.receive_sms(text, text, text) TO %s', r.grantee);
    END LOOP;
END
$$;

-- ================================================================ issue 17: counters (stats that do not depend on history size)
-- sql/counters.sql (new) and sql/stats.sql (flow_stats, goal_stats and flow_overview read the
-- counters; node_stats, message_stats, split_stats). The counters are filled from the tables
-- once, at the end of this section (journey._recount: what they would be had they always
-- been kept); CREATE TRIGGER waits for the tables' writers, and later ones wait for this
-- transaction, so nothing is counted twice or missed.
-- Counters: the totals the stats read (flow_stats, goal_stats, flow_overview, flow_diagram,
-- node_stats, message_stats, split_stats), kept as the writes they count happen, in the same
-- transactions, so a stat reads a few rows whatever the size of the history.
--
-- Writers never update a shared row: every write that changes a count inserts delta rows
-- (journey.counter_deltas, insert-only, no unique key, so concurrent enrolling transactions
-- and workers' batches never wait for each other), and journey.compact_counters (the worker
-- runs it every few seconds, each call a small transaction) folds them into journey.counters.
-- A read sums both (journey._counts). Deleting history (retention, forget_contact) does not
-- touch the counters: their totals stay.
--
-- Where the deltas come from:
--   enrollments  inserts: the inserting statement itself (journey._entered_keys: entered, the
--                status, waiting at the start node; _enroll, _enroll_occurrences,
--                _on_record_written, the engine's fork branches); updates and deletes:
--                statement-level triggers (transition tables): each enrollment's status, waiting
--                per node, how enrollments ended per node; every path that changes an enrollment
--                (the engine's write-back, fork branches, activation, retry, archive, wake-ups)
--                is counted by the same code
--   steps        the engine's write-back (journey._count_batch, before its steps INSERT): each
--                enrollment once per node, goal and split branch (a fork's branches for their
--                parent), suppressed sends, outbox rows written
--   outbox       a row-level trigger on status changes past leased (mark_sent, mark_failed,
--                report: one row per call anyway); the claim's and retries' updates do not fire it

CREATE TABLE journey.counters (
    flow_id bigint NOT NULL,
    node    text NOT NULL,
    kind    text NOT NULL,
    label   text NOT NULL DEFAULT '',
    n       bigint NOT NULL,
    PRIMARY KEY (flow_id, node, kind, label)
);
COMMENT ON TABLE journey.counters IS
  'Compacted stats counters, one row per (flow, node, kind, label); add the rows of journey.counter_deltas for the current value (journey._counts). node is '''' for the flow''s own counts. Kinds: enrollments (node '''', label entered or a status: enrollments that entered the flow and how many are in each status; a fork''s branches not counted), waiting (active enrollments and branches due to run the node), ended (label a status: enrollments and branches whose trip ended at the node), reached (enrollments that entered the node, once each, a fork''s branches for their parent), suppressed (sends the node suppressed), message (label written: outbox rows the node wrote; sent, delivered, opened, clicked, failed, undelivered, bounced: its messages now in that status), goal (node '''', label the goal''s name: enrollments that reached it, once each), branch (label n: enrollments that took branch n of the split node, once each), conversion (label n:goal: those of them that also reached the goal). Kept by journey.compact_counters; not changed by deletes of history (retention, forget_contact), so totals stay; a deleted flow''s rows go with it.';

CREATE TABLE journey.counter_deltas (
    flow_id bigint NOT NULL,
    node    text NOT NULL,
    kind    text NOT NULL,
    label   text NOT NULL DEFAULT '',
    n       bigint NOT NULL
);
CREATE INDEX counter_deltas_flow ON journey.counter_deltas (flow_id);
COMMENT ON TABLE journey.counter_deltas IS
  'Insert-only changes to journey.counters (same key, n the change), written in the transactions that change what they count: insert-only so concurrent writers of one flow never wait on a shared row. journey.compact_counters moves them into counters; stats add both.';

SELECT pg_catalog.pg_extension_config_dump('journey.counters', '');
SELECT pg_catalog.pg_extension_config_dump('journey.counter_deltas', '');

-- ---------------------------------------------------------------- enrollments
-- The keys one enrollment row counts under: ('', enrollments, status) for an enrollment that
-- entered the flow (not a branch), (node, waiting) while active, (node, ended, status) after.
CREATE FUNCTION journey._enrollment_keys(p_parent bigint, p_status text, p_node text)
RETURNS TABLE (node text, kind text, label text)
LANGUAGE sql IMMUTABLE
-- (no SET clause: the planner inlines it into the triggers' queries; it names no object)
AS $$
    SELECT '', 'enrollments', p_status WHERE p_parent IS NULL
    UNION ALL
    SELECT coalesce(p_node, ''), CASE WHEN p_status = 'active' THEN 'waiting' ELSE 'ended' END,
           CASE WHEN p_status = 'active' THEN '' ELSE p_status END
$$;
COMMENT ON FUNCTION journey._enrollment_keys(bigint, text, text) IS
  'Internal: the counter keys (node, kind, label) an enrollment row with this parent_id, status and node counts under (see journey.counters).';

-- Inserted enrollments are counted by the statement that inserts them (journey._count_entered
-- over its RETURNING rows, the keys of journey._entered_keys): journey._enroll,
-- _enroll_occurrences and the engine's fork branches; _on_record_written by its row count
-- (journey._count_entered_at: one flow, its start node). (An INSERT trigger
-- with a transition table cost enrolling as much as one more index: it keeps every whole row.)
CREATE FUNCTION journey._entered_keys(p_branch boolean, p_node text)
RETURNS TABLE (node text, kind text, label text)
LANGUAGE sql IMMUTABLE
-- (no SET clause: the planner inlines it into the enrolling statements; it names no object)
AS $$
    SELECT '', 'enrollments', 'entered' WHERE NOT p_branch
    UNION ALL
    SELECT k.node, k.kind, k.label FROM journey._enrollment_keys(CASE WHEN p_branch THEN 0::bigint END, 'active', p_node) k
$$;
COMMENT ON FUNCTION journey._entered_keys(boolean, text) IS
  'Internal: the counter keys (node, kind, label) a new enrollment row (status active; p_branch: a fork''s branch, parent_id set) at this node counts under: entered (not a fork''s branch) and those of journey._enrollment_keys. The statements that insert enrollments count them with it.';

CREATE FUNCTION journey._count_entered(p_flows bigint[], p_nodes text[], p_branches boolean[]) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    -- grouped by flow and node first: a statement enrolling 100,000 contacts writes three rows.
    -- (PL/pgSQL: the plan is kept for the session; a SQL function's is made again at each call,
    -- which every enrolling write would pay)
    WITH counted AS (
        INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
        SELECT g.flow_id, k.node, k.kind, k.label, g.n
          FROM (SELECT u.flow_id, u.node, coalesce(u.branch, false) AS branch, count(*) AS n
                  FROM unnest(p_flows, p_nodes, p_branches) AS u (flow_id, node, branch)
                 GROUP BY 1, 2, 3) g
         CROSS JOIN LATERAL journey._entered_keys(g.branch, g.node) k
        RETURNING 1)
    SELECT count(*) INTO n FROM counted;
    RETURN n;
END
$$;
COMMENT ON FUNCTION journey._count_entered(bigint[], text[], boolean[]) IS
  'Internal: counts new enrollments (one element per row: flow, start node, whether a fork''s branch; NULL branches: none is) under journey._entered_keys; returns how many delta rows it wrote. The statements that insert enrollments call it with their RETURNING rows.';

CREATE FUNCTION journey._count_entered_at(p_flow bigint, p_node text, p_n bigint) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    IF p_n = 0 THEN
        RETURN 0;
    END IF;
    WITH counted AS (
        INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
        SELECT p_flow, k.node, k.kind, k.label, p_n FROM journey._entered_keys(false, p_node) k
        RETURNING 1)
    SELECT count(*) INTO n FROM counted;
    RETURN n;
END
$$;
COMMENT ON FUNCTION journey._count_entered_at(bigint, text, bigint) IS
  'Internal: counts p_n new enrollments (not fork branches) of one flow at one node under journey._entered_keys; returns how many delta rows it wrote. A record trigger''s statement calls it with its row count (its rows all enter one flow at its start node: no arrays of their keys).';

CREATE FUNCTION journey._count_moved() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- each changed row: -1 under its old keys, +1 under its new ones (the keys of
    -- journey._enrollment_keys, written out: this runs for every batch of the engine)
    -- (the changed rows grouped by what changed first: a batch of 1000 steps of one node is one
    -- group, expanded into its keys)
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    SELECT g.flow_id, k.node, k.kind, k.label, sum(k.sign * g.n)
      FROM (SELECT n.flow_id, o.status AS o_status, o.node AS o_node, o.parent_id IS NULL AS o_root,
                   n.status AS n_status, n.node AS n_node, n.parent_id IS NULL AS n_root, count(*) AS n
              FROM old_rows o JOIN new_rows n ON n.contact_id = o.contact_id AND n.id = o.id
             WHERE o.status IS DISTINCT FROM n.status OR o.node IS DISTINCT FROM n.node
             GROUP BY 1, 2, 3, 4, 5, 6, 7) g
     CROSS JOIN LATERAL (VALUES
            ('', 'enrollments', g.o_status, -1, g.o_root),
            (coalesce(g.o_node, ''), CASE WHEN g.o_status = 'active' THEN 'waiting' ELSE 'ended' END,
             CASE WHEN g.o_status = 'active' THEN '' ELSE g.o_status END, -1, true),
            ('', 'enrollments', g.n_status, 1, g.n_root),
            (coalesce(g.n_node, ''), CASE WHEN g.n_status = 'active' THEN 'waiting' ELSE 'ended' END,
             CASE WHEN g.n_status = 'active' THEN '' ELSE g.n_status END, 1, true)) k (node, kind, label, sign, counted)
     WHERE k.counted
     GROUP BY g.flow_id, k.node, k.kind, k.label
    HAVING sum(k.sign * g.n) <> 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._count_moved() IS
  'Trigger: counts enrollments whose status or node changed (the engine''s write-back, a fork''s branches ending their parent, activation, retry, archive) as counter deltas: out of their old status and node, into the new ones.';
CREATE TRIGGER enrollments_count_update AFTER UPDATE ON journey.enrollments
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._count_moved();

CREATE FUNCTION journey._count_deleted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    -- totals stay (entered, ended); only what is current goes: active and waiting
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    SELECT o.flow_id, k.node, k.kind, k.label, -count(*)
      FROM old_rows o CROSS JOIN LATERAL journey._enrollment_keys(o.parent_id, o.status, o.node) k
     WHERE o.status = 'active'
     GROUP BY o.flow_id, k.node, k.kind, k.label;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._count_deleted() IS
  'Trigger: deleted active enrollments (forget_contact, a deleted contact or flow version) leave the active and waiting counts; ended ones keep their totals (retention).';
CREATE TRIGGER enrollments_count_delete AFTER DELETE ON journey.enrollments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._count_deleted();

-- ---------------------------------------------------------------- outbox
CREATE FUNCTION journey._count_message_status() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    SELECT NEW.flow_id, NEW.node, 'message', s.status, s.n
      FROM (VALUES (OLD.status, -1), (NEW.status, 1)) s (status, n)
     WHERE s.status NOT IN ('pending', 'leased');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._count_message_status() IS
  'Trigger: an engine message (not a test_send''s) whose status changed past leased (mark_sent, mark_failed, report) moves from its old status''s count to the new one''s.';
CREATE TRIGGER outbox_count_status AFTER UPDATE OF status ON journey.outbox
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.node IS NOT NULL AND NEW.flow_id IS NOT NULL
                       AND NOT NEW.test AND (OLD.status NOT IN ('pending', 'leased') OR NEW.status NOT IN ('pending', 'leased')))
    EXECUTE FUNCTION journey._count_message_status();

-- ---------------------------------------------------------------- flows
CREATE FUNCTION journey._delete_flow_counters() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.counters c USING old_rows o WHERE c.flow_id = o.id;
    DELETE FROM journey.counter_deltas c USING old_rows o WHERE c.flow_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._delete_flow_counters() IS 'Trigger: a deleted flow''s counters go with it.';
CREATE TRIGGER flows_delete_counters AFTER DELETE ON journey.flows
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._delete_flow_counters();

-- ---------------------------------------------------------------- the engine's steps
-- A goal node's name in a definition (its id when it has none, as the engine reads it).
CREATE FUNCTION journey._goal_name(p_definition jsonb, p_node text) RETURNS text
LANGUAGE sql IMMUTABLE
-- (no SET clause: inlined into its callers' queries; it names no object)
AS $$
    SELECT coalesce(p_definition -> 'nodes' -> p_node ->> 'name', p_node)
$$;
COMMENT ON FUNCTION journey._goal_name(jsonb, text) IS 'Internal: the name of goal node p_node in a definition (its id when it has none).';

-- The engine's write-back calls this before inserting the batch's steps (src/engine/batch.rs),
-- so the history it probes is what came before the batch. Each step's enrollment is counted for
-- its root (the enrollment that entered the flow; a branch's parent), and a node only the first
-- time that root enters it: an index probe of the contact's steps (steps' primary key leads with
-- contact_id), which finds nothing for most steps.
CREATE FUNCTION journey._count_batch(p_enrollment bigint[], p_contact bigint[], p_flow bigint[], p_node text[],
                                     p_outcome text[], p_msg_flow bigint[], p_msg_node text[], p_root bigint[])
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
-- Index probes, whatever the tables' statistics say: a plan made while steps was (or was
-- analyzed) empty must not scan all of steps per step; and planned for each batch (its arrays
-- and the tables as they are now), never a generic plan the worker's session kept from
-- another size of the tables.
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_custom_plan
-- (a probe per step costs more the larger steps looks: past jit_above_cost, compiling the plan
-- took 30 ms of a 40 ms batch)
SET jit = off
AS $$
BEGIN
    -- Fork branches' steps: their parents are locked first (in id order, so two batches never
    -- wait on each other), so that a sibling's batch still in progress commits before this one
    -- reads the history; the next statement's snapshot sees its steps (two workers' batches
    -- running two branches of one fork into one node counted it twice for the parent).
    IF p_root IS DISTINCT FROM p_enrollment THEN
        PERFORM 1 FROM journey.enrollments e
          JOIN (SELECT DISTINCT u.contact_id, u.root
                  FROM unnest(p_contact, p_root, p_enrollment) AS u (contact_id, root, enrollment_id)
                 WHERE u.root <> u.enrollment_id) r ON e.contact_id = r.contact_id AND e.id = r.root
         ORDER BY e.id
           FOR NO KEY UPDATE OF e;
    END IF;
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    -- (each step's root, the enrollment that entered the flow, comes from the claim: a contact
    -- may have several in one flow and batch, one per record of a record trigger; the history
    -- is read only when the contact has steps at the node already)
    SELECT u.flow_id, u.node, 'reached', '', count(DISTINCT u.root)
      FROM unnest(p_root, p_contact, p_flow, p_node) AS u (root, contact_id, flow_id, node)
     WHERE NOT EXISTS (
            SELECT 1 FROM journey.steps h
              JOIN journey.enrollments he ON he.contact_id = h.contact_id AND he.id = h.enrollment_id
             WHERE h.contact_id = u.contact_id
               -- (the contact's steps, read by the primary key; IS TRUE keeps the planner from
               -- taking these for index conditions of any index by flow an admin may add)
               AND (h.flow_id = u.flow_id AND h.node = u.node) IS TRUE
               AND coalesce(he.parent_id, he.id) = u.root
            -- (OFFSET 0: a subplan run per step with its contact as the index key; pulled up
            -- into an anti join it could be planned, on statistics taken while steps was
            -- small, as all of steps read once and compared with every step of the batch)
            OFFSET 0)
     GROUP BY u.flow_id, u.node
    UNION ALL
    SELECT u.flow_id, u.node, 'suppressed', '', count(*)
      FROM unnest(p_flow, p_node, p_outcome) AS u (flow_id, node, outcome)
     WHERE u.outcome LIKE 'suppressed%'
     GROUP BY u.flow_id, u.node
    UNION ALL
    SELECT m.flow_id, m.node, 'message', 'written', count(*)
      FROM unnest(p_msg_flow, p_msg_node) AS m (flow_id, node)
     GROUP BY m.flow_id, m.node;
    IF EXISTS (SELECT 1 FROM unnest(p_outcome) o WHERE o = 'goal' OR o LIKE 'branch %') THEN
        PERFORM journey._count_goals(p_enrollment, p_contact, p_node, p_outcome);
    END IF;
END
$$;
COMMENT ON FUNCTION journey._count_batch(bigint[], bigint[], bigint[], text[], text[], bigint[], text[], bigint[]) IS
  'Internal: the engine''s write-back counts a batch''s steps (enrollment, contact, flow, node, outcome and root, the enrollment that entered the flow, per step) and outbox rows (flow, node per message) before inserting them: reached (each enrollment once per node, a fork''s branches for their parent), suppressed sends, messages written, and through journey._count_goals goals and split branches. A batch with branch steps first locks their parents (in id order), so concurrent batches running branches of one fork count one after the other.';

-- Goals and split branches of a batch (only batches with such steps get here): a root's first
-- goal of a name, its first step along each branch of a split, and the (branch, goal) pairs it
-- completes (A/B conversion: a branch taken and a goal reached, in either order).
CREATE FUNCTION journey._count_goals(p_enrollment bigint[], p_contact bigint[], p_node text[], p_outcome text[])
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
SET plan_cache_mode = force_custom_plan
-- (a probe per step costs more the larger steps looks: past jit_above_cost, compiling the plan
-- took 30 ms of a 40 ms batch)
SET jit = off
AS $$
BEGIN
    INSERT INTO journey.counter_deltas (flow_id, node, kind, label, n)
    WITH batch AS (
        -- the batch's goal and split steps: (root, split node, branch) or (root, goal name)
        SELECT e.contact_id, e.flow_id, coalesce(e.parent_id, e.id) AS root, u.node,
               CASE WHEN u.outcome = 'goal' THEN NULL ELSE substr(u.outcome, 8) END AS branch,
               CASE WHEN u.outcome = 'goal' THEN journey._goal_name(v.definition, u.node) END AS goal
          FROM unnest(p_enrollment, p_contact, p_node, p_outcome) AS u (enrollment_id, contact_id, node, outcome)
          JOIN journey.enrollments e ON e.contact_id = u.contact_id AND e.id = u.enrollment_id
          JOIN journey.flow_versions v ON v.flow_id = e.flow_id AND v.version = e.version
         WHERE u.outcome = 'goal' OR u.outcome LIKE 'branch %'
    ), past AS (
        -- the same from the history of the batch's roots
        SELECT DISTINCT b.contact_id, b.flow_id, b.root, h.node,
               CASE WHEN h.outcome = 'goal' THEN NULL ELSE substr(h.outcome, 8) END AS branch,
               CASE WHEN h.outcome = 'goal' THEN journey._goal_name(v.definition, h.node) END AS goal
          FROM (SELECT DISTINCT contact_id, flow_id, root FROM batch) b
          -- (a lateral subquery, OFFSET 0: the root's contact is the index key of each probe,
          -- whatever steps' statistics say; see journey._count_batch)
          CROSS JOIN LATERAL (
                SELECT h.node, h.outcome, he.flow_id, he.version
                  FROM journey.steps h
                  JOIN journey.enrollments he ON he.contact_id = h.contact_id AND he.id = h.enrollment_id
                 WHERE h.contact_id = b.contact_id AND (h.flow_id = b.flow_id) IS TRUE
                   AND (h.outcome = 'goal' OR h.outcome LIKE 'branch %')
                   AND coalesce(he.parent_id, he.id) = b.root
                OFFSET 0) h
          JOIN journey.flow_versions v ON v.flow_id = h.flow_id AND v.version = h.version
    ), fresh AS (
        -- firsts: in the batch, not in the past
        SELECT DISTINCT b.contact_id, b.flow_id, b.root, CASE WHEN b.goal IS NULL THEN b.node END AS node, b.branch, b.goal
          FROM batch b
         WHERE NOT EXISTS (SELECT 1 FROM past p WHERE p.root = b.root AND p.contact_id = b.contact_id
                              AND (CASE WHEN b.goal IS NULL THEN p.node = b.node AND p.branch = b.branch ELSE p.goal = b.goal END))
    ), seen AS (
        SELECT contact_id, root, node, branch, goal FROM past
        UNION
        SELECT contact_id, root, node, branch, goal FROM batch
    ), pairs AS (
        -- (root, split node, branch, goal) pairs that one of the firsts completes
        SELECT f.flow_id, f.root, s.node, s.branch, f.goal
          FROM fresh f JOIN seen s ON s.contact_id = f.contact_id AND s.root = f.root AND s.goal IS NULL
         WHERE f.goal IS NOT NULL
        UNION
        SELECT f.flow_id, f.root, f.node, f.branch, s.goal
          FROM fresh f JOIN seen s ON s.contact_id = f.contact_id AND s.root = f.root AND s.goal IS NOT NULL
         WHERE f.goal IS NULL
    )
    SELECT flow_id, coalesce(node, ''), CASE WHEN goal IS NULL THEN 'branch' ELSE 'goal' END,
           coalesce(branch, goal), count(*)
      FROM fresh GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT flow_id, node, 'conversion', branch || ':' || goal, count(*)
      FROM pairs GROUP BY 1, 2, 4;
END
$$;
COMMENT ON FUNCTION journey._count_goals(bigint[], bigint[], text[], text[]) IS
  'Internal: counts a batch''s goal and split steps (called by journey._count_batch): each enrollment once per goal name and per split branch, and once per (branch, goal) pair it has completed, in either order (split_stats'' conversions); a fork''s branches count for their parent.';

-- ---------------------------------------------------------------- reading and compaction
CREATE FUNCTION journey._counts(p_flow bigint)
RETURNS TABLE (node text, kind text, label text, n bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT c.node, c.kind, c.label, sum(c.n)::bigint
      FROM (SELECT k.node, k.kind, k.label, k.n FROM journey.counters k WHERE k.flow_id = p_flow
            UNION ALL
            SELECT d.node, d.kind, d.label, d.n FROM journey.counter_deltas d WHERE d.flow_id = p_flow) c
     GROUP BY c.node, c.kind, c.label
$$;
COMMENT ON FUNCTION journey._counts(bigint) IS
  'Internal: a flow''s counters now: journey.counters plus the deltas not yet compacted (see journey.counters for the keys).';

CREATE FUNCTION journey.compact_counters(max_rows integer DEFAULT 10000) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    moved bigint;
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'compact_counters: max_rows must be at least 1, not %', coalesce(max_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass how many delta rows one call may fold, e.g. 10000.';
    END IF;
    -- rows of transactions still running are not seen (they are folded next time); a row a
    -- concurrent call deleted first is skipped
    WITH gone AS (
        DELETE FROM journey.counter_deltas d
         WHERE d.ctid = ANY (ARRAY(SELECT x.ctid FROM journey.counter_deltas x LIMIT max_rows))
        RETURNING d.flow_id, d.node, d.kind, d.label, d.n
    ), summed AS (
        SELECT g.flow_id, g.node, g.kind, g.label, sum(g.n)::bigint AS n FROM gone g
         WHERE EXISTS (SELECT 1 FROM journey.flows f WHERE f.id = g.flow_id)
         GROUP BY g.flow_id, g.node, g.kind, g.label
    ), folded AS (
        INSERT INTO journey.counters AS c (flow_id, node, kind, label, n)
        SELECT * FROM summed
        ON CONFLICT (flow_id, node, kind, label) DO UPDATE SET n = c.n + excluded.n
    )
    SELECT count(*) INTO moved FROM gone;
    RETURN moved;
END
$$;
COMMENT ON FUNCTION journey.compact_counters(integer) IS
  'Folds up to max_rows rows of journey.counter_deltas into journey.counters (sums per key; deltas of deleted flows are dropped) and returns how many it folded. The worker calls it every 2 seconds, again while a call folds a full max_rows; reads are right without it (they add the deltas), only slower when many wait.';

-- ---------------------------------------------------------------- the recount
-- What the counters must equal, counted from the tables: the upgrade fills the counters with it
-- once, and the tests compare (tests/pg_regress/sql/counters.sql, tests/crash_test.sh). Equal
-- until history is deleted (retention, forget_contact): the counters keep their totals.
CREATE FUNCTION journey._recount()
RETURNS TABLE (flow_id bigint, node text, kind text, label text, n bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH e AS (
        SELECT e.contact_id, e.id, e.flow_id, e.version, coalesce(e.parent_id, e.id) AS root, e.parent_id, e.status, e.node
          FROM journey.enrollments e
    ), s AS (
        SELECT s.flow_id, s.node, s.outcome, e.contact_id, e.root, v.definition
          FROM journey.steps s JOIN e ON e.contact_id = s.contact_id AND e.id = s.enrollment_id
          JOIN journey.flow_versions v ON v.flow_id = e.flow_id AND v.version = e.version
    ), marks AS (
        SELECT DISTINCT s.flow_id, s.contact_id, s.root, CASE WHEN s.outcome = 'goal' THEN NULL ELSE s.node END AS node,
               CASE WHEN s.outcome = 'goal' THEN NULL ELSE substr(s.outcome, 8) END AS branch,
               CASE WHEN s.outcome = 'goal' THEN journey._goal_name(s.definition, s.node) END AS goal
          FROM s WHERE s.outcome = 'goal' OR s.outcome LIKE 'branch %'
    )
    SELECT e.flow_id, '', 'enrollments', 'entered', count(*) FROM e WHERE e.parent_id IS NULL GROUP BY e.flow_id
    UNION ALL
    SELECT e.flow_id, k.node, k.kind, k.label, count(*)
      FROM e CROSS JOIN LATERAL journey._enrollment_keys(e.parent_id, e.status, e.node) k
     GROUP BY e.flow_id, k.node, k.kind, k.label
    UNION ALL
    SELECT s.flow_id, s.node, 'reached', '', count(DISTINCT (s.contact_id, s.root)) FROM s GROUP BY s.flow_id, s.node
    UNION ALL
    SELECT s.flow_id, s.node, 'suppressed', '', count(*) FROM s WHERE s.outcome LIKE 'suppressed%' GROUP BY s.flow_id, s.node
    UNION ALL
    SELECT o.flow_id, o.node, 'message', 'written', count(*) FROM journey.outbox o
     WHERE NOT o.test AND o.flow_id IS NOT NULL AND o.node IS NOT NULL GROUP BY o.flow_id, o.node
    UNION ALL
    SELECT o.flow_id, o.node, 'message', o.status, count(*) FROM journey.outbox o
     WHERE NOT o.test AND o.flow_id IS NOT NULL AND o.node IS NOT NULL AND o.status NOT IN ('pending', 'leased')
     GROUP BY o.flow_id, o.node, o.status
    UNION ALL
    SELECT m.flow_id, coalesce(m.node, ''), CASE WHEN m.goal IS NULL THEN 'branch' ELSE 'goal' END,
           coalesce(m.branch, m.goal), count(*)
      FROM marks m GROUP BY 1, 2, 3, 4
    UNION ALL
    SELECT b.flow_id, b.node, 'conversion', b.branch || ':' || g.goal, count(*)
      FROM marks b JOIN marks g ON g.contact_id = b.contact_id AND g.root = b.root AND g.goal IS NOT NULL
     WHERE b.goal IS NULL
     GROUP BY 1, 2, 4
$$;
COMMENT ON FUNCTION journey._recount() IS
  'Internal: every counter of every flow counted from enrollments, steps and outbox (what journey.counters plus journey.counter_deltas must equal while no history was deleted). The upgrade to 0.3.0 fills the counters with it; tests compare.';

CREATE FUNCTION journey.counter_differences()
RETURNS TABLE (flow_id bigint, node text, kind text, label text, counted bigint, recounted bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH c AS (
        SELECT x.flow_id, x.node, x.kind, x.label, sum(x.n)::bigint AS n
          FROM (SELECT k.flow_id, k.node, k.kind, k.label, k.n FROM journey.counters k
                UNION ALL
                SELECT d.flow_id, d.node, d.kind, d.label, d.n FROM journey.counter_deltas d) x
         WHERE EXISTS (SELECT 1 FROM journey.flows f WHERE f.id = x.flow_id)
         GROUP BY 1, 2, 3, 4
    )
    SELECT coalesce(c.flow_id, r.flow_id), coalesce(c.node, r.node), coalesce(c.kind, r.kind),
           coalesce(c.label, r.label), coalesce(c.n, 0), coalesce(r.n, 0)
      FROM c FULL JOIN journey._recount() r
        ON r.flow_id = c.flow_id AND r.node = c.node AND r.kind = c.kind AND r.label = c.label
     WHERE coalesce(c.n, 0) <> coalesce(r.n, 0)
     ORDER BY 1, 2, 3, 4
$$;
COMMENT ON FUNCTION journey.counter_differences() IS
  'Every counter that differs from a recount from the tables (journey._recount), with both values: empty while no history was deleted. Reads all of enrollments, steps and outbox: a check for tests and audits, not for production hours. After retention or forget_contact the counters are expected to be higher (they keep totals).';

-- The stats read the counters (sql/counters.sql): a few rows per node, whatever the history.
CREATE OR REPLACE FUNCTION journey.flow_stats(name text)
RETURNS TABLE (node text, type text, reached bigint, reached_pct numeric, waiting bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(flow_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c
    ), entered AS (
        -- a fork's branches are part of their parent's trip, not new entries
        SELECT coalesce(sum(c.n), 0) AS n FROM c WHERE c.node = '' AND c.kind = 'enrollments' AND c.label = 'entered'
    )
    SELECT o.node, o.type, coalesce(r.n, 0),
           CASE WHEN entered.n = 0 THEN 0 ELSE round(100.0 * coalesce(r.n, 0) / entered.n, 1) END,
           coalesce(w.n, 0)
    FROM f CROSS JOIN entered CROSS JOIN LATERAL journey._node_order(f.definition) o
    LEFT JOIN c r ON r.node = o.node AND r.kind = 'reached'
    LEFT JOIN c w ON w.node = o.node AND w.kind = 'waiting'
    ORDER BY o.ord
$$;
COMMENT ON FUNCTION journey.flow_stats(text) IS
  'Per node of the flow''s current version, in flow order: type, reached (enrollments that entered the node, any version; a fork''s branches count for the enrollment they belong to, once per node), reached_pct (percent of enrollments that entered the flow) and waiting (active enrollments and branches due to run the node next; an enrollment whose branches run waits at its fork). Read from the counters (journey.counters), so as fast on a long history as on a short one, and kept after retention or forget_contact delete history; journey.node_stats adds how enrollments ended and nodes a later version removed.';

CREATE FUNCTION journey.node_stats(name text)
RETURNS TABLE (node text, type text, removed boolean, reached bigint, reached_pct numeric, waiting bigint,
               completed bigint, exited bigint, stopped bigint, failed bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(node_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c
    ), entered AS (
        SELECT coalesce(sum(c.n), 0) AS n FROM c WHERE c.node = '' AND c.kind = 'enrollments' AND c.label = 'entered'
    ), nodes AS (
        SELECT o.ord, o.node, o.type, false AS removed FROM f, journey._node_order(f.definition) o
        UNION ALL
        -- nodes with history that the current version no longer has: last, by name, typed by the
        -- latest version that had them
        SELECT 1000000, g.node,
               (SELECT v.definition -> 'nodes' -> g.node ->> 'type' FROM journey.flow_versions v, f
                 WHERE v.flow_id = f.id AND v.definition -> 'nodes' ? g.node ORDER BY v.version DESC LIMIT 1),
               true
          FROM (SELECT DISTINCT c.node FROM c
                 WHERE c.node <> '' AND c.kind IN ('reached', 'waiting', 'ended') AND c.n <> 0) g, f
         WHERE NOT f.definition -> 'nodes' ? g.node
    )
    SELECT d.node, d.type, d.removed, coalesce(sum(c.n) FILTER (WHERE c.kind = 'reached'), 0)::bigint,
           CASE WHEN entered.n = 0 THEN 0
                ELSE round(100.0 * coalesce(sum(c.n) FILTER (WHERE c.kind = 'reached'), 0) / entered.n, 1) END,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'waiting'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'ended' AND c.label = 'completed'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'ended' AND c.label = 'exited'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'ended' AND c.label = 'stopped'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'ended' AND c.label = 'failed'), 0)::bigint
      FROM nodes d CROSS JOIN entered LEFT JOIN c ON c.node = d.node
     GROUP BY d.ord, d.node, d.type, d.removed, entered.n
     ORDER BY d.ord, d.node
$$;
COMMENT ON FUNCTION journey.node_stats(text) IS
  'Per node, in flow order, then the nodes a later version removed (removed true, typed by the latest version that had them, with their history): reached and reached_pct, waiting (as flow_stats), and the enrollments and fork branches whose trip ended at the node: completed, exited, stopped, failed (a retried enrollment leaves failed). From the counters: totals kept after retention and forget_contact.';

CREATE FUNCTION journey.message_stats(name text)
RETURNS TABLE (node text, type text, removed boolean, written bigint, suppressed bigint, sent bigint,
               delivered bigint, opened bigint, clicked bigint, failed bigint)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(message_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c WHERE c.kind IN ('message', 'suppressed')
    ), nodes AS (
        SELECT o.ord, o.node, o.type, false AS removed FROM f, journey._node_order(f.definition) o
         WHERE o.type IN ('send_sms', 'send_email', 'send_whatsapp', 'notify_admin')
            OR EXISTS (SELECT 1 FROM c WHERE c.node = o.node)
        UNION ALL
        SELECT 1000000, g.node,
               (SELECT v.definition -> 'nodes' -> g.node ->> 'type' FROM journey.flow_versions v, f
                 WHERE v.flow_id = f.id AND v.definition -> 'nodes' ? g.node ORDER BY v.version DESC LIMIT 1),
               true
          FROM (SELECT DISTINCT c.node FROM c WHERE c.n <> 0) g, f
         WHERE NOT f.definition -> 'nodes' ? g.node
    )
    SELECT d.node, d.type, d.removed,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label = 'written'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'suppressed'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message'
                                     AND c.label IN ('sent', 'delivered', 'opened', 'clicked', 'undelivered', 'bounced')), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label IN ('delivered', 'opened', 'clicked')), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label IN ('opened', 'clicked')), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label = 'clicked'), 0)::bigint,
           coalesce(sum(c.n) FILTER (WHERE c.kind = 'message' AND c.label IN ('failed', 'undelivered', 'bounced')), 0)::bigint
      FROM nodes d LEFT JOIN c ON c.node = d.node
     GROUP BY d.ord, d.node, d.type, d.removed
     ORDER BY d.ord, d.node
$$;
COMMENT ON FUNCTION journey.message_stats(text) IS
  'Per node that sends (send_sms, send_email, send_whatsapp, notify_admin, and any node that wrote outbox rows), in flow order, then nodes a later version removed (removed true): written (outbox rows the engine wrote), suppressed (sends skipped: opt-out, no address), sent (handed to the provider: mark_sent or a later report, undelivered and bounced included), delivered (delivered, opened or clicked), opened (opened or clicked), clicked, failed (failed, undelivered or bounced). Statuses as the relay reported them (journey.outbox.status only moves forward); test_send''s messages are not counted. From the counters: totals kept after retention and forget_contact.';

CREATE FUNCTION journey.split_stats(name text)
RETURNS TABLE (node text, branch integer, entered bigint, goal text, reached bigint, reached_pct numeric)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(split_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c WHERE c.kind IN ('branch', 'conversion')
    ), branches AS (
        -- the current version's splits and branches, and any branch with history
        SELECT o.ord, o.node, b.n::integer AS branch FROM f, journey._node_order(f.definition) o,
               generate_series(0, jsonb_array_length(f.definition -> 'nodes' -> o.node -> 'branches') - 1) b (n)
         WHERE o.type = 'split'
        UNION
        SELECT coalesce((SELECT o.ord FROM f, journey._node_order(f.definition) o WHERE o.node = c.node), 1000000),
               c.node, c.label::integer
          FROM c WHERE c.kind = 'branch'
    ), goals AS (
        SELECT DISTINCT coalesce(o.goal, o.node) AS goal FROM f, journey._node_order(f.definition) o WHERE o.type = 'goal'
    ), entered AS (
        SELECT b.ord, b.node, b.branch, coalesce((SELECT sum(c.n) FROM c WHERE c.kind = 'branch' AND c.node = b.node
                                                      AND c.label = b.branch::text), 0)::bigint AS n
          FROM branches b
    )
    SELECT e.node, e.branch, e.n, g.goal, coalesce(r.n, 0)::bigint,
           CASE WHEN e.n = 0 OR g.goal IS NULL THEN NULL ELSE round(100.0 * coalesce(r.n, 0) / e.n, 1) END
      FROM entered e LEFT JOIN goals g ON true
      LEFT JOIN LATERAL (SELECT sum(c.n) AS n FROM c WHERE c.kind = 'conversion' AND c.node = e.node
                            AND c.label = e.branch || ':' || g.goal) r ON true
     ORDER BY e.ord, e.node, e.branch, g.goal
$$;
COMMENT ON FUNCTION journey.split_stats(text) IS
  'A/B conversion: per split node of the flow (in flow order; splits a later version removed last) and branch (its place in branches, from 0), entered (enrollments that took the branch, once each) and, per goal of the current version, reached (those of them that reached the goal, before or after the split, once each) and reached_pct (percent of entered). One row per branch with goal NULL when the flow has no goal. A fork''s branches count for their parent. From the counters: totals kept after retention and forget_contact.';

CREATE OR REPLACE FUNCTION journey.goal_stats(name text)
RETURNS TABLE (goal text, reached bigint, reached_pct numeric)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
    WITH f AS (
        SELECT fl.id, v.definition FROM journey.flows fl
        JOIN journey.flow_versions v ON v.flow_id = fl.id AND v.version = fl.version
        WHERE fl.id = journey._flow_id(goal_stats.name)
    ), c AS MATERIALIZED (
        SELECT c.* FROM f, journey._counts(f.id) c WHERE c.node = '' AND c.kind IN ('goal', 'enrollments')
    ), entered AS (
        SELECT coalesce(sum(c.n), 0) AS n FROM c WHERE c.kind = 'enrollments' AND c.label = 'entered'
    ), goals AS (
        SELECT DISTINCT coalesce(o.goal, o.node) AS goal FROM f, journey._node_order(f.definition) o WHERE o.type = 'goal'
    )
    -- a goal reached along a fork's branch counts for the enrollment the branch belongs to
    SELECT g.goal, coalesce(r.n, 0),
           CASE WHEN entered.n = 0 THEN 0 ELSE round(100.0 * coalesce(r.n, 0) / entered.n, 1) END
    FROM entered CROSS JOIN goals g
    LEFT JOIN c r ON r.kind = 'goal' AND r.label = g.goal
    ORDER BY g.goal
$$;
COMMENT ON FUNCTION journey.goal_stats(text) IS
  'Per goal of the flow''s current version: enrollments that reached it (along any fork branch, once; goal nodes sharing a name count once) and the percent of enrollments that entered the flow. From the counters: totals kept after retention and forget_contact.';

CREATE OR REPLACE VIEW journey.flow_overview AS
SELECT f.name AS flow, f.status, f.version,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'entered'), 0)::bigint AS entered,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'active'), 0)::bigint AS active,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'completed'), 0)::bigint AS completed,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'failed'), 0)::bigint AS failed,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'stopped'), 0)::bigint AS stopped,
       coalesce(sum(c.n) FILTER (WHERE c.label = 'exited'), 0)::bigint AS exited
FROM journey.flows f
LEFT JOIN (SELECT k.flow_id, k.label, k.n FROM journey.counters k WHERE k.node = '' AND k.kind = 'enrollments'
           UNION ALL
           SELECT d.flow_id, d.label, d.n FROM journey.counter_deltas d WHERE d.node = '' AND d.kind = 'enrollments') c
       ON c.flow_id = f.id
GROUP BY f.id
ORDER BY f.name;
COMMENT ON VIEW journey.flow_overview IS 'One row per flow: status, current version and enrollment counts (entered, active, completed, failed, stopped, exited); a fork''s branches are counted in their parent. From the counters: entered and the ended counts are totals kept after retention and forget_contact (a forgotten active enrollment leaves active).';

REVOKE ALL ON FUNCTION journey._enrollment_keys(bigint, text, text), journey._entered_keys(boolean, text), journey._count_entered(bigint[], text[], boolean[]), journey._count_entered_at(bigint, text, bigint), journey._count_moved(),
    journey._count_deleted(), journey._count_message_status(), journey._delete_flow_counters(),
    journey._goal_name(jsonb, text), journey._count_batch(bigint[], bigint[], bigint[], text[], text[], bigint[], text[], bigint[]),
    journey._count_goals(bigint[], bigint[], text[], text[]), journey._counts(bigint), journey.compact_counters(integer),
    journey._recount(), journey.counter_differences(), journey.node_stats(text), journey.message_stats(text),
    journey.split_stats(text) FROM PUBLIC;

INSERT INTO journey.counters (flow_id, node, kind, label, n)
SELECT r.flow_id, r.node, r.kind, r.label, r.n FROM journey._recount() r WHERE r.n <> 0;

-- ================================================================ issue 17: contact_keys (the Citus layout)
-- contacts.external_id is no longer unique on its own: its uniqueness moves to the lookup table
-- journey.contact_keys, kept by the contacts' triggers (docs/SCALING.md), and the lookups by
-- external_id (upsert_contact, forms, record types) read it. A database whose contacts share an
-- external_id cannot exist (the unique constraint refused it), so the fill cannot conflict.
ALTER TABLE journey.contacts DROP CONSTRAINT contacts_external_id_key;
COMMENT ON TABLE journey.contacts IS
  'People journeys run for. time_zone is an IANA name (NULL = settings.time_zone); attributes holds custom fields addressed as contact.attributes.<key>. external_id is unique through journey.contact_keys (not an index here: every unique key of a per-contact table includes its id, docs/SCALING.md).';

CREATE TABLE journey.contact_keys (
    external_id text PRIMARY KEY,
    contact_id  bigint NOT NULL
);
COMMENT ON TABLE journey.contact_keys IS
  'The contact of each external_id (one row per contact that has one), kept by the contacts'' triggers in the same transaction: a second contact with an external_id already taken is refused (23505). upsert_contact, forms matching on external_id and record types matching on external_id look contacts up here. On Citus it is the one lookup table distributed by external_id (docs/SCALING.md).';

INSERT INTO journey.contact_keys (external_id, contact_id)
SELECT c.external_id, c.id FROM journey.contacts c WHERE c.external_id IS NOT NULL;

SELECT pg_catalog.pg_extension_config_dump('journey.contact_keys', '');

CREATE FUNCTION journey._claim_contact_keys(p_keys text[], p_contacts bigint[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    taken record;
    claimed bigint;
BEGIN
    INSERT INTO journey.contact_keys (external_id, contact_id)
    SELECT u.k, u.c FROM unnest(p_keys, p_contacts) u(k, c) WHERE u.k IS NOT NULL
    ON CONFLICT (external_id) DO NOTHING;
    GET DIAGNOSTICS claimed = ROW_COUNT;
    IF claimed = (SELECT count(*) FROM unnest(p_keys) k WHERE k IS NOT NULL) THEN
        RETURN;   -- every key was free (the usual case: no second look)
    END IF;
    SELECT u.k AS external_id, u.c AS contact_id, ck.contact_id AS holder INTO taken
    FROM unnest(p_keys, p_contacts) u(k, c)
    JOIN journey.contact_keys ck ON ck.external_id = u.k
    WHERE ck.contact_id <> u.c
    ORDER BY u.c LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'external_id "%" already belongs to contact %', taken.external_id, taken.holder
            USING ERRCODE = 'unique_violation', CONSTRAINT = 'contact_keys_pkey', TABLE = 'contact_keys',
                  SCHEMA = 'journey', DETAIL = format('Contact %s cannot have it too.', taken.contact_id),
                  HINT = format('An external_id names one contact: update contact %s (upsert_contact matches on external_id), or give the other one a different external_id.', taken.holder);
    END IF;
END
$$;
COMMENT ON FUNCTION journey._claim_contact_keys(text[], bigint[]) IS 'Internal: records the external_id of each contact (parallel arrays, NULL keys skipped) in contact_keys; raises 23505 naming the key and its contact when another contact holds one.';

CREATE FUNCTION journey._contact_keys_inserted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    PERFORM journey._claim_contact_keys(array_agg(n.external_id ORDER BY n.id), array_agg(n.id ORDER BY n.id))
    FROM new_rows n WHERE n.external_id IS NOT NULL
    HAVING count(*) > 0;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._contact_keys_inserted() IS 'Trigger: records the external_ids of inserted contacts in contact_keys (23505 when one is taken).';
CREATE TRIGGER contacts_keys_inserted AFTER INSERT ON journey.contacts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._contact_keys_inserted();

CREATE FUNCTION journey._contact_key_changed() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.contact_keys k WHERE k.external_id = OLD.external_id AND k.contact_id = OLD.id;
    PERFORM journey._claim_contact_keys(ARRAY[NEW.external_id], ARRAY[NEW.id]);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._contact_key_changed() IS 'Trigger: moves a contact''s row of contact_keys when its external_id changes (removed when it becomes NULL; 23505 when the new one is taken).';
-- a row trigger limited to the column (a transition table cannot be): an update that does not
-- change external_id costs nothing
CREATE TRIGGER contacts_key_changed AFTER UPDATE OF external_id ON journey.contacts
    FOR EACH ROW WHEN (OLD.external_id IS DISTINCT FROM NEW.external_id)
    EXECUTE FUNCTION journey._contact_key_changed();

CREATE FUNCTION journey._contact_keys_deleted() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.contact_keys k USING old_rows o
    WHERE o.external_id IS NOT NULL AND k.external_id = o.external_id AND k.contact_id = o.id;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._contact_keys_deleted() IS 'Trigger: removes the contact_keys rows of deleted contacts.';
CREATE TRIGGER contacts_keys_deleted AFTER DELETE ON journey.contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._contact_keys_deleted();
COMMENT ON TRIGGER contacts_keys_inserted ON journey.contacts IS 'Keeps journey.contact_keys: the external_ids of new contacts.';
COMMENT ON TRIGGER contacts_key_changed ON journey.contacts IS 'Keeps journey.contact_keys: a changed external_id.';
COMMENT ON TRIGGER contacts_keys_deleted ON journey.contacts IS 'Keeps journey.contact_keys: deleted contacts.';

REVOKE ALL ON FUNCTION journey._claim_contact_keys(text[], bigint[]), journey._contact_keys_inserted(),
    journey._contact_key_changed(), journey._contact_keys_deleted() FROM PUBLIC;

-- the lookups by external_id read contact_keys

CREATE FUNCTION journey._insert_contact(data jsonb) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    new_id bigint := nextval(pg_get_serial_sequence('journey.contacts', 'id')::regclass);
    cid bigint;
BEGIN
    -- the external_id is claimed first, with the new contact's id: of two upserts racing with one
    -- new external_id, the second waits here for the first's transaction, then inserts nothing
    -- (NULL: its caller updates the contact that holds the key) or, if the first rolled back,
    -- inserts its own. The key and its contact are written together: no key without its contact.
    IF data->>'external_id' IS NOT NULL THEN
        INSERT INTO journey.contact_keys (external_id, contact_id) VALUES (data->>'external_id', new_id)
        ON CONFLICT (external_id) DO NOTHING;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    INSERT INTO journey.contacts (id, external_id, email, phone, first_name, last_name, birthday,
                                  time_zone, attributes, email_opt_out, sms_opt_out)
    OVERRIDING SYSTEM VALUE
    SELECT new_id, r.external_id, r.email, r.phone, r.first_name, r.last_name, r.birthday, r.time_zone,
           coalesce(r.attributes, '{}'), coalesce(r.email_opt_out, false), coalesce(r.sms_opt_out, false)
    FROM jsonb_populate_record(NULL::journey.contacts, data) r
    RETURNING id INTO cid;
    RETURN cid;
END
$$;
COMMENT ON FUNCTION journey._insert_contact(jsonb) IS
  'Internal (upsert_contact): inserts a new contact from checked fields (journey._apply_contact_fields), its external_id claimed in contact_keys first; NULL, inserting nothing, when another contact holds (or a concurrent transaction has just claimed, once it commits) that external_id. SECURITY DEFINER for contact_keys and the contacts'' id sequence only; it runs nothing of its caller''s.';
REVOKE ALL ON FUNCTION journey._insert_contact(jsonb) FROM PUBLIC;
-- roles that may execute upsert_contact (grant_role's app and admin kinds) get _insert_contact
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
               FROM pg_proc p, aclexplode(p.proacl) a
              WHERE p.oid = 'journey.upsert_contact(jsonb)'::regprocedure
                AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION journey._insert_contact(jsonb) TO %s', r.grantee);
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION journey.upsert_contact(data jsonb) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    cid bigint;
BEGIN
    IF data IS NULL OR jsonb_typeof(data) <> 'object' THEN
        RAISE EXCEPTION 'contact data must be a JSON object'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass {"email": ..., "phone": ..., "first_name": ..., "attributes": {...}}.';
    END IF;
    IF data ? 'external_id' THEN
        SELECT k.contact_id INTO cid FROM journey.contact_keys k WHERE k.external_id = data->>'external_id';
    END IF;
    IF cid IS NULL AND data ? 'email' THEN
        SELECT id INTO cid FROM journey.contacts WHERE lower(email) = lower(data->>'email') ORDER BY id LIMIT 1;
    END IF;
    IF cid IS NULL AND data ? 'phone' THEN
        SELECT id INTO cid FROM journey.contacts
        WHERE phone = journey._e164(data->>'phone', (SELECT s.default_country FROM journey.settings s)) ORDER BY id LIMIT 1;
    END IF;
    IF cid IS NULL THEN
        -- a new contact is inserted with its fields (checked first), so contact_created flows
        -- see them (their where) and no contact_updated fires for it; NULL when a concurrent
        -- upsert has just created the contact of this external_id: that one is updated below
        PERFORM journey._apply_contact_fields(NULL, data);
        cid := journey._insert_contact(data);
        IF cid IS NOT NULL THEN
            RETURN cid;
        END IF;
        SELECT k.contact_id INTO cid FROM journey.contact_keys k WHERE k.external_id = data->>'external_id';
    END IF;
    PERFORM journey._apply_contact_fields(cid, data);
    RETURN cid;
END
$$;
COMMENT ON FUNCTION journey.upsert_contact(jsonb) IS
  'Creates or updates a contact from {external_id, email, phone, first_name, last_name, birthday, time_zone, email_opt_out, sms_opt_out, attributes}; matches on external_id, then email (case-insensitive), then phone. Returns the contact id. Two calls racing with one new external_id make one contact: the second waits for the first''s transaction and updates its contact.';

CREATE OR REPLACE FUNCTION journey._on_form_submission() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    f journey.forms;
    fields jsonb;
    match_value text;
BEGIN
    SELECT * INTO f FROM journey.forms WHERE id = NEW.form_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'form with id % does not exist', NEW.form_id
            USING ERRCODE = 'foreign_key_violation', HINT = 'Create the form in journey.forms first.';
    END IF;
    IF NEW.data IS NULL OR jsonb_typeof(NEW.data) <> 'object' THEN
        RAISE EXCEPTION 'submission data for form "%" must be a JSON object', f.name
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Pass data as {"field": value, ...}.';
    END IF;
    fields := journey._map_fields(NEW.data, f.field_map);
    IF NEW.contact_id IS NULL THEN
        match_value := fields->>f.match_on;
        IF match_value IS NULL OR match_value = '' THEN
            RAISE EXCEPTION 'submission for form "%" has no value for "%"', f.name, f.match_on
                USING ERRCODE = 'not_null_violation',
                      HINT = format('The form''s field_map must map a submitted field to %s (the form''s match_on).', f.match_on);
        END IF;
        IF f.match_on = 'external_id' THEN
            SELECT k.contact_id INTO NEW.contact_id FROM journey.contact_keys k WHERE k.external_id = match_value;
        ELSE
            SELECT c.id INTO NEW.contact_id FROM journey.contacts c
            WHERE CASE f.match_on WHEN 'email' THEN lower(c.email) = lower(match_value)
                                  ELSE c.phone = journey._e164(match_value, (SELECT s.default_country FROM journey.settings s)) END
            ORDER BY c.id LIMIT 1;
        END IF;
        IF NEW.contact_id IS NULL THEN
            -- a new contact is inserted with its fields (checked first), so contact_created
            -- flows see them (their where) and no contact_updated fires for it
            PERFORM journey._apply_contact_fields(NULL, fields);
            NEW.contact_id := journey._insert_contact(fields);
            IF NEW.contact_id IS NOT NULL THEN
                RETURN NEW;
            END IF;
            -- a concurrent submission or upsert has just created the contact of this external_id
            -- (journey._insert_contact waited for it): this submission updates that one
            SELECT k.contact_id INTO NEW.contact_id FROM journey.contact_keys k WHERE k.external_id = fields->>'external_id';
        END IF;
    END IF;
    PERFORM journey._apply_contact_fields(NEW.contact_id, fields);
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION journey._on_form_submission() IS 'Trigger: applies the form''s field_map to the matching contact, or inserts a new contact with those fields when none matches, and links the submission to it.';

-- grant_role: app reads contact_keys (upsert_contact runs as its caller); the roles that read
-- contacts before this upgrade read contact_keys too, so their upsert_contact keeps working

CREATE OR REPLACE FUNCTION journey.grant_role(role name, kind text) RETURNS void
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

DO $$
DECLARE
    r name;
BEGIN
    FOR r IN SELECT DISTINCT a.grantee::regrole::name
               FROM pg_class c, aclexplode(c.relacl) a
              WHERE c.oid = 'journey.contacts'::regclass AND a.privilege_type = 'SELECT'
                AND a.grantee <> 0 AND a.grantee <> c.relowner LOOP
        EXECUTE format('GRANT SELECT ON journey.contact_keys TO %I', r);
    END LOOP;
END
$$;

-- ================================================================ issue 17: indexes under the cascades from per-contact rows
-- retention and forget_contact delete messages and contacts at volume: each deleted message's
-- reports and each deleted contact's submissions are found by an index, not a scan of the table
CREATE INDEX delivery_reports_outbox ON journey.delivery_reports (contact_id, outbox_id);
CREATE INDEX form_submissions_contact ON journey.form_submissions (contact_id);

-- ================================================================ issue 17: steps without steps_flow_node
-- no query reads steps by flow and node any more (stats read the counters): the index cost every
-- step an entry (0.7 us of 37 in bench/RESULTS.md's attribution)
DROP INDEX journey.steps_flow_node;
COMMENT ON TABLE journey.steps IS
  'Append-only history: one row per node an enrollment entered, with what the node did in outcome, one of: sent, created, queued, suppressed: <reason>, updated, waited, goal, exited, then, else, branch <n>, yes, yes: <status>, no: <reason>, waiting, failed: <error>, retry: <error>, quota, forked, sent, skipped: <recipients>, record created. created is a task, queued a webhook; a send is suppressed for sms_opt_out, email_opt_out, no phone, no email or no admin_email; a check writes yes: <status> (the message''s status), a wait_event yes; no: <reason> is a message status, no message was sent, or timed out; retry is a transient failure retried later; quota is a send its channel''s quota (settings.sms_quota, email_quota, whatsapp_quota) could not cover: nothing written, the enrollment waits at the node while its flow is paused for quota; forked is a fork node that started its branches (enrollments of their own, parent_id set); sent, skipped: <recipients> is a send_email that reached some of its recipients and skipped others (each named with why: empty, not an e-mail address, email_opt_out); record created is a create_record node''s row; update_record writes updated. Timelines, record_timeline, retention, forget_contact and the counters'' reached-once rule read it, by contact (its one index is the primary key, led by contact_id; stats read journey.counters, never this table). Rows go with their enrollment (trigger enrollments_delete_steps); no foreign key, so the engine''s batch insert pays no per-row check.';

-- ================================================================ issue 17 review: the app's tables read and written safely
-- A link's key is cast to the type beneath any domain (a cast to the domain ran its CHECK, the
-- table owner's function, as the worker); links read plain tables without row security only;
-- flows write plain tables of the app only, never one whose row security its owner bypasses.
CREATE FUNCTION journey._readable_target(p_tbl regclass) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = p_tbl AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity)
$$;
COMMENT ON FUNCTION journey._readable_target(regclass) IS
  'Internal: whether journey reads a link''s target (journey._record_data): a plain or partitioned table without row-level security. Reading runs as the claiming role (the worker''s, a superuser by default): a view would run its functions as that role, and a superuser reads past row security policies.';

CREATE FUNCTION journey._writable_now(p_tbl regclass) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
DECLARE
    c pg_class;
BEGIN
    SELECT * INTO c FROM pg_class x WHERE x.oid = p_tbl;
    IF NOT FOUND OR c.relkind NOT IN ('r', 'p')
       OR c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace, 'journey'::regnamespace, 'pg_toast'::regnamespace) THEN
        RAISE EXCEPTION 'flows may not write %: it is not a table of the app', p_tbl
            USING ERRCODE = 'wrong_object_type', HINT = 'Flows write plain tables of the app, never journey''s or the system''s.';
    END IF;
    IF c.relrowsecurity AND NOT c.relforcerowsecurity THEN
        RAISE EXCEPTION 'flows may not write %: it has row-level security, which its owner (the role flows write it as) bypasses', p_tbl
            USING ERRCODE = 'insufficient_privilege',
                  HINT = format('ALTER TABLE %s FORCE ROW LEVEL SECURITY makes the owner''s writes obey its policies too.', p_tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION journey._writable_now(regclass) IS
  'Internal: raises unless flows may write the table as its owner now: a plain or partitioned table outside journey and the system, without row-level security its owner would bypass (enabled and not forced). allow_writes checks it, and so does every write (a table can change after).';

REVOKE ALL ON FUNCTION journey._base_type(oid, integer), journey._readable_target(regclass), journey._writable_now(regclass) FROM PUBLIC;

-- ================================================================ issue 17 review: date passes past unreadable contacts
-- A contact whose data cannot be read no longer stops the date pass for everyone: its where
-- matches nothing (journey._date_pass, above, calls this).
CREATE FUNCTION journey._date_matches(p_condition jsonb, p_contact bigint, p_data jsonb) RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    RETURN journey._matches(p_condition, p_contact, p_data);
EXCEPTION WHEN invalid_parameter_value THEN
    -- a contact whose data cannot be read matches nothing: the pass goes on for everyone else
    -- and its schedule row advances (a raise rolled back the whole pass, on every later pass)
    RAISE WARNING 'journey: date trigger skipped contact %: %', p_contact, SQLERRM;
    RETURN false;
END
$$;
COMMENT ON FUNCTION journey._date_matches(jsonb, bigint, jsonb) IS
  'Internal: a date trigger''s where (journey._matches) for the date pass, false (with a WARNING) for a contact whose data cannot be read: one contact never stops the pass for the others.';

REVOKE ALL ON FUNCTION journey._date_matches(jsonb, bigint, jsonb) FROM PUBLIC;

-- ================================================================ initial privileges (keep this section last)
-- A GRANT or REVOKE in an extension script also records the object's whole new ACL as its
-- initial privileges (pg_init_privs), and pg_dump dumps only the difference from them: after
-- the grants and revokes above, the privileges grant_role gave to roles would count as the
-- extension's own and be left out of a dump (and so be lost in a restore). A fresh install
-- records only the owner's (functions: EXECUTE for the owner alone; relations: nothing), so
-- every other role's entry goes, and a relation left with its owner's default goes entirely.
UPDATE pg_catalog.pg_init_privs i
   SET initprivs = ARRAY(SELECT a FROM unnest(i.initprivs) a
                          WHERE (SELECT e.grantee FROM aclexplode(ARRAY[a]) e LIMIT 1) = o.owner)
  FROM (SELECT 'pg_class'::regclass AS classoid, c.oid, c.relowner AS owner FROM pg_class c
         WHERE c.relnamespace = 'journey'::regnamespace
        UNION ALL
        SELECT 'pg_proc'::regclass, p.oid, p.proowner FROM pg_proc p
         WHERE p.pronamespace = 'journey'::regnamespace) o
 WHERE i.classoid = o.classoid AND i.objoid = o.oid AND i.objsubid = 0;
DELETE FROM pg_catalog.pg_init_privs i USING pg_class c
 WHERE i.classoid = 'pg_class'::regclass AND i.objoid = c.oid AND i.objsubid = 0
   AND c.relnamespace = 'journey'::regnamespace
   AND i.initprivs = acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char", c.relowner);
