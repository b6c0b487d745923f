-- Audience helpers. Plain INSERTs into the tables work the same way: the triggers enroll.

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

CREATE FUNCTION journey.upsert_contact(data jsonb) RETURNS bigint
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

CREATE FUNCTION journey._group_id(p_group text) RETURNS bigint
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
COMMENT ON FUNCTION journey._group_id(text) IS 'Internal: the id of a group by name, or an error naming it.';

CREATE FUNCTION journey._check_contact(p_contact bigint) RETURNS void
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
COMMENT ON FUNCTION journey._check_contact(bigint) IS 'Internal: raises when a contact id is NULL or unknown.';

CREATE FUNCTION journey.add_to_group(contact bigint, group_name text) RETURNS boolean
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
COMMENT ON FUNCTION journey.add_to_group(bigint, text) IS
  'Adds a contact to a group (firing group_joined flows); returns false when the contact already was a member.';

CREATE FUNCTION journey.remove_from_group(contact bigint, group_name text) RETURNS boolean
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
COMMENT ON FUNCTION journey.remove_from_group(bigint, text) IS 'Removes a contact from a group; returns false when it was not a member.';

CREATE FUNCTION journey.submit_form(form text, data jsonb) RETURNS bigint
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
COMMENT ON FUNCTION journey.submit_form(text, jsonb) IS
  'Records a form submission: the form''s field_map updates (or creates) the contact and form_submitted flows enroll it. Returns the submission id.';

CREATE FUNCTION journey.define_event(name text, params jsonb DEFAULT '[]') RETURNS void
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
COMMENT ON FUNCTION journey.define_event(text, jsonb) IS
  'Creates or replaces an event type: name of letters, digits and underscores; params [{name, type, required, contact_field, pattern}].';

CREATE FUNCTION journey.emit(event text, contact bigint, payload jsonb DEFAULT '{}') RETURNS bigint
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
COMMENT ON FUNCTION journey.emit(text, bigint, jsonb) IS
  'Records an event for a contact after checking its params; enrolls into matching event flows and wakes wait_event nodes. Returns the event id.';
