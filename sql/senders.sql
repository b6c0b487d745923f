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
