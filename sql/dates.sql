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
