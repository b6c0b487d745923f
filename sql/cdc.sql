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
