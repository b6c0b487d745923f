-- Enrollment and the trigger functions of the audience tables.
-- All enrollment goes through journey._enroll: set-based, in the writer's transaction.

CREATE FUNCTION journey._enroll(p_flows bigint[], p_contacts bigint[], p_data jsonb[])
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

-- group_members: statement-level, with a transition table.
CREATE FUNCTION journey._on_group_joined() RETURNS trigger
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
CREATE TRIGGER group_joined AFTER INSERT ON journey.group_members
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._on_group_joined();

-- group_members AFTER DELETE: statement-level, with the deleted rows.
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

-- Applies contact fields {email, phone, ..., attributes: {...}} to a contact.
CREATE FUNCTION journey._apply_contact_fields(p_contact bigint, p_fields jsonb) RETURNS void
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

-- Maps {form field: value} through a field_map to {contact field: value, attributes: {...}}.
CREATE FUNCTION journey._map_fields(p_data jsonb, p_field_map jsonb) RETURNS jsonb
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
COMMENT ON FUNCTION journey._map_fields(jsonb, jsonb) IS 'Internal: applies a field map (form field or param -> contact column or attributes.<key>) to data.';

-- form_submissions BEFORE: match or create the contact, apply field_map.
CREATE FUNCTION journey._on_form_submission() RETURNS trigger
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
CREATE TRIGGER form_contact BEFORE INSERT ON journey.form_submissions
    FOR EACH ROW EXECUTE FUNCTION journey._on_form_submission();

CREATE FUNCTION journey._on_form_submitted() RETURNS trigger
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
CREATE TRIGGER form_submitted AFTER INSERT ON journey.form_submissions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._on_form_submitted();

-- events BEFORE: check params, map params to contact fields.
CREATE FUNCTION journey._on_event() RETURNS trigger
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
COMMENT ON FUNCTION journey._on_event() IS 'Trigger: checks an event''s payload against its type''s params (required, type, pattern) and maps params with contact_field onto the contact.';
CREATE TRIGGER event_check BEFORE INSERT ON journey.events
    FOR EACH ROW EXECUTE FUNCTION journey._on_event();

CREATE FUNCTION journey._on_event_inserted() RETURNS trigger
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
CREATE TRIGGER event_enroll AFTER INSERT ON journey.events
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._on_event_inserted();

-- Wakes enrollments sitting in a wait_event node for one of these events (issue: wait_event).
CREATE FUNCTION journey._event_arrived(p_contacts bigint[], p_names text[]) RETURNS void
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
COMMENT ON FUNCTION journey._event_arrived(bigint[], text[]) IS 'Internal: makes enrollments waiting in a wait_event node for these events due now.';

-- contacts AFTER INSERT: contact_created (an INSERT, upsert_contact, a form that creates the
-- contact: each inserts the contact with its fields, so a where reads them).
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

-- contacts AFTER UPDATE: contact_updated. A trigger's fields (flow_triggers.params->'fields':
-- columns and attributes.<key>) are compared old to new; an attribute absent and an attribute
-- set to JSON null are the same. The event data lists the fields that changed:
-- {"trigger": "contact_updated", "changed": {"<field>": {"old": ..., "new": ...}}}.
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
