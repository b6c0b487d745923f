-- Inbound SMS: a relay reports a text a contact sent (journey-relay's POST
-- /callbacks/twilio/inbound) with journey.receive_sms. It becomes the event sms_received
-- ({"text": ...}) of every contact with that phone, so wait_event nodes and event-triggered
-- flows can react, and the usual opt-out words set sms_opt_out first.

-- The event type is the extension's: created here, left out of dumps (a restore's CREATE
-- EXTENSION makes it again; dumping it too would make the restore's copy of event_types fail).
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
