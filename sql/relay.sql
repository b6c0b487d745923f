-- Relay protocol: claim (leases, SKIP LOCKED), mark_sent, mark_failed, report.

CREATE FUNCTION journey.claim(channels text[] DEFAULT NULL, max integer DEFAULT 100, lease interval DEFAULT '5 minutes')
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

CREATE FUNCTION journey._outbox_row(p_id bigint) RETURNS journey.outbox
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
COMMENT ON FUNCTION journey._outbox_row(bigint) IS 'Internal: locks and returns an outbox row, or raises naming the id.';

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

CREATE FUNCTION journey._status_rank(p_status text) RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, journey, pg_temp
AS $$
    SELECT CASE p_status WHEN 'pending' THEN 0 WHEN 'leased' THEN 1 WHEN 'sent' THEN 2
                         WHEN 'delivered' THEN 3 WHEN 'opened' THEN 4 WHEN 'clicked' THEN 5
                         WHEN 'failed' THEN 9 WHEN 'undelivered' THEN 9 WHEN 'bounced' THEN 9 END
$$;
COMMENT ON FUNCTION journey._status_rank(text) IS 'Internal: order of outbox statuses; a report only moves a message forward; 9 = terminal.';

CREATE FUNCTION journey.report(provider_message_id text, status text, provider_event_id text DEFAULT NULL, at timestamptz DEFAULT now())
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
COMMENT ON FUNCTION journey.report(text, text, text, timestamptz) IS
  'Records a delivery event for the message with this provider_message_id. Idempotent by provider_event_id (a repeat returns false). Status only moves forward (sent -> delivered -> opened -> clicked; failed, undelivered, bounced are terminal). An unknown provider_message_id records nothing and returns false. Wakes an enrollment waiting in a check node on the message.';
