-- Quotas: settings.sms_quota (SMS segments), email_quota and whatsapp_quota are the credit left
-- on each channel (NULL = unlimited). The engine (src/engine/quota.rs) takes credit with the
-- settings row locked and writes the decrement back with its batch; a send the credit cannot
-- cover writes nothing (step `quota`, the enrollment stays at the node) and the batch calls
-- journey._quota_exhausted: every active flow sending on that channel is paused (paused_reason
-- 'quota'; its routes stay, so its triggers enroll frozen) and the admin is told once. journey.add_quota, or any UPDATE of
-- settings that raises a quota or sets it NULL, resumes (journey.activate_flow) the flows paused
-- for quota whose channels all have credit again; their enrollments go on where they stopped.

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
