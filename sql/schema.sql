-- journey schema: audience tables, flows and their state, outbox.
-- Every per-contact table carries contact_id in its primary and unique keys (Citus-ready).

-- ---------------------------------------------------------------- settings
CREATE TABLE journey.settings (
    id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
    time_zone            text NOT NULL DEFAULT 'UTC',
    quiet_hours_start    time NOT NULL DEFAULT '21:00',
    quiet_hours_end      time NOT NULL DEFAULT '07:00',
    sms_unsubscribe_text text NOT NULL DEFAULT 'Reply STOP to opt out',
    admin_email          text,
    sms_quota            integer CHECK (sms_quota >= 0),
    email_quota          integer CHECK (email_quota >= 0),
    max_attempts         integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
    max_message_bytes    integer NOT NULL DEFAULT 262144 CHECK (max_message_bytes BETWEEN 1024 AND 10485760),
    max_sms_segments     integer NOT NULL DEFAULT 10 CHECK (max_sms_segments BETWEEN 1 AND 100),
    -- last: 0.3.0 added them (ALTER TABLE ADD COLUMN), a fresh install has the same column order
    whatsapp_quota       integer CHECK (whatsapp_quota >= 0),
    default_country      text CHECK (default_country ~ '^[A-Z]{2}$'),
    date_trigger_at      time NOT NULL DEFAULT '09:00',
    date_catch_up        interval NOT NULL DEFAULT '1 day' CHECK (date_catch_up BETWEEN interval '0' AND interval '366 days'),
    keep_sent_messages   interval CHECK (keep_sent_messages > interval '0'),
    keep_ended_enrollments interval CHECK (keep_ended_enrollments > interval '0'),
    cdc_events           boolean NOT NULL DEFAULT false,
    CONSTRAINT settings_time_zone_valid CHECK (journey._is_time_zone(time_zone))
);
INSERT INTO journey.settings DEFAULT VALUES;
COMMENT ON TABLE journey.settings IS
  'Account settings, exactly one row: default time zone, SMS quiet hours (contact''s zone, may span midnight), unsubscribe text, admin e-mail, quotas (NULL = unlimited), max_attempts for retries (failed sends reported by relays, transient step failures in the engine), and the limits of a rendered message: max_message_bytes for a body (e-mail, WhatsApp, admin e-mail, webhook, SMS text) and max_sms_segments for an SMS; a message past them fails its enrollment. whatsapp_quota counts WhatsApp messages when set (sms_quota counts SMS segments, email_quota e-mails; admin e-mails are never counted). default_country (ISO 3166 alpha-2, e.g. IL) turns national phone numbers into E.164. date_trigger_at is the local time of day date triggers fire at when they give no at; date_catch_up is how late a date occurrence may still be enrolled after downtime. Retention (NULL = keep forever): keep_sent_messages for outbox rows that reached a final status (sent, delivered, opened, clicked, failed, undelivered, bounced; with their delivery reports), keep_ended_enrollments for enrollments that ended (with their steps); the worker deletes what is older in small batches.';

-- ---------------------------------------------------------------- contacts
CREATE TABLE journey.contacts (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    external_id   text,
    email         text,
    phone         text,
    first_name    text,
    last_name     text,
    birthday      date,
    time_zone     text CHECK (time_zone IS NULL OR journey._is_time_zone(time_zone)),
    attributes    jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    email_opt_out boolean NOT NULL DEFAULT false,
    sms_opt_out   boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_email_idx ON journey.contacts (lower(email));
CREATE INDEX contacts_phone_idx ON journey.contacts (phone);
COMMENT ON TABLE journey.contacts IS
  'People journeys run for. time_zone is an IANA name (NULL = settings.time_zone); attributes holds custom fields addressed as contact.attributes.<key>. external_id is unique through journey.contact_keys (not an index here: every unique key of a per-contact table includes its id, docs/SCALING.md).';

-- external_id's uniqueness lives in a lookup table, so that every unique key of contacts
-- includes id (on Citus: contacts distributed by id, contact_keys by external_id). The
-- contacts' triggers below keep it in the writer's transaction; lookups by external_id read it.
CREATE TABLE journey.contact_keys (
    external_id text PRIMARY KEY,
    contact_id  bigint NOT NULL
);
COMMENT ON TABLE journey.contact_keys IS
  'The contact of each external_id (one row per contact that has one), kept by the contacts'' triggers in the same transaction: a second contact with an external_id already taken is refused (23505). upsert_contact, forms matching on external_id and record types matching on external_id look contacts up here. On Citus it is the one lookup table distributed by external_id (docs/SCALING.md).';

CREATE TABLE journey.groups (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE CHECK (length(btrim(name)) > 0)
);
COMMENT ON TABLE journey.groups IS 'Contact groups (lists, segments). Joining one fires group_joined triggers.';

CREATE TABLE journey.group_members (
    group_id   bigint NOT NULL REFERENCES journey.groups (id) ON DELETE CASCADE,
    contact_id bigint NOT NULL REFERENCES journey.contacts (id) ON DELETE CASCADE,
    joined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (contact_id, group_id)
);
CREATE INDEX group_members_group_idx ON journey.group_members (group_id);
COMMENT ON TABLE journey.group_members IS
  'Group membership. An INSERT enrolls the contact into every active flow with a group_joined trigger on that group, in the same transaction.';

CREATE TABLE journey.forms (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name      text NOT NULL UNIQUE CHECK (length(btrim(name)) > 0),
    field_map jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(field_map) = 'object'),
    match_on  text NOT NULL DEFAULT 'email' CHECK (match_on IN ('email', 'phone', 'external_id'))
);
COMMENT ON TABLE journey.forms IS
  'Forms. field_map maps a form field to a contact column (email, phone, first_name, last_name, birthday, time_zone, external_id) or to attributes.<key>; match_on names the contact column that finds the contact.';

CREATE TABLE journey.form_submissions (
    id           bigint GENERATED ALWAYS AS IDENTITY,
    form_id      bigint NOT NULL REFERENCES journey.forms (id),
    contact_id   bigint NOT NULL REFERENCES journey.contacts (id) ON DELETE CASCADE,
    data         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    submitted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, contact_id)
);
-- (deleting a contact deletes its submissions through this index, not a scan per contact)
CREATE INDEX form_submissions_contact ON journey.form_submissions (contact_id);
COMMENT ON TABLE journey.form_submissions IS
  'Form submissions. A BEFORE trigger applies the form''s field_map to the contact (created when missing) and fills contact_id; an AFTER trigger enrolls into form_submitted flows.';

CREATE TABLE journey.event_types (
    name   text PRIMARY KEY CONSTRAINT event_types_name_pattern CHECK (name ~ '^[A-Za-z0-9_]+$'),
    params jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(params) = 'array')
);
COMMENT ON TABLE journey.event_types IS
  'Event types: a name of letters, digits and underscores, and params [{name, type string|number|boolean|object|array, required, contact_field, pattern}].';

CREATE TABLE journey.events (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    name        text NOT NULL REFERENCES journey.event_types (name),
    contact_id  bigint NOT NULL REFERENCES journey.contacts (id) ON DELETE CASCADE,
    payload     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, contact_id)
);
CREATE INDEX events_contact_idx ON journey.events (contact_id, name);
COMMENT ON TABLE journey.events IS
  'Events that happened to a contact. A BEFORE trigger checks the payload against the event type''s params and maps params to contact fields; an AFTER trigger enrolls into event flows.';

CREATE TABLE journey.templates (
    name    text PRIMARY KEY CHECK (length(btrim(name)) > 0),
    channel text NOT NULL DEFAULT 'email' CHECK (channel IN ('email', 'sms', 'whatsapp')),
    subject text,
    body    text NOT NULL CHECK (length(body) <= 262144)
);
COMMENT ON TABLE journey.templates IS 'Message templates (Liquid) referenced by send_email, send_sms and send_whatsapp nodes (a template of the node''s channel); body is limited to 256 kB.';

-- ---------------------------------------------------------------- flows
CREATE TABLE journey.flows (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (length(btrim(name)) > 0),
    status        text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'paused', 'archived')),
    paused_reason text CHECK (paused_reason IN ('edited', 'quota', 'manual')),
    version       integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    start_node    text,
    reentry_after interval,
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    -- last: 0.3.0 added it (ALTER TABLE ADD COLUMN), a fresh install has the same column order
    routed_version integer,
    CHECK ((status = 'paused') = (paused_reason IS NOT NULL)),
    CHECK (status <> 'active' OR start_node IS NOT NULL)
);
COMMENT ON TABLE journey.flows IS
  'Flows. status draft|active|paused|archived; version is the current version. start_node, reentry_after and routed_version (the version activated: the one flow_triggers and date_schedule route to) are derived from the current version at activation (reentry_after NULL = never re-enter, 0 = always, else the interval after the previous enrollment ended). paused_reason: edited (update_flow of an active flow) and quota keep the routes, so triggers enroll frozen (into routed_version, at start_node) until activate_flow; manual (pause_flow) removes them: nobody is enrolled.';

CREATE TABLE journey.flow_versions (
    flow_id    bigint NOT NULL REFERENCES journey.flows (id) ON DELETE CASCADE,
    version    integer NOT NULL CHECK (version >= 1),
    definition jsonb NOT NULL CHECK (jsonb_typeof(definition) = 'object'),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (flow_id, version)
);
COMMENT ON TABLE journey.flow_versions IS 'Every saved definition of a flow; versions are immutable.';

CREATE TABLE journey.flow_triggers (
    flow_id   bigint NOT NULL REFERENCES journey.flows (id) ON DELETE CASCADE,
    kind      text NOT NULL,
    key       text NOT NULL,
    condition jsonb,
    -- last: 0.3.0 added them (ALTER TABLE ADD COLUMN), a fresh install has the same column order
    pos       integer NOT NULL DEFAULT 0,
    params    jsonb,
    CONSTRAINT flow_triggers_pkey PRIMARY KEY (kind, key, flow_id, pos),
    CONSTRAINT flow_triggers_kind_check CHECK (kind IN ('group_joined', 'group_left', 'form_submitted', 'event',
                                                      'date', 'contact_created', 'contact_updated', 'record'))
);
COMMENT ON TABLE journey.flow_triggers IS
  'Derived routing table: (trigger kind, key) -> active flow, one row per trigger of the version activated (flows.routed_version; pos: its position in triggers). Rebuilt at activation, kept while the flow is paused by an edit or a quota (its triggers enroll frozen), emptied by pause_flow and archive_flow, so a write with no matching flow costs one index probe. key is the group id (group_joined, group_left), form id, event name, date field (date: birthday or attributes.<key>) the record type (record) or empty (contact_created, contact_updated); condition is the trigger''s where; params holds a date trigger''s rules (repeat, offset_days, at, feb29, groups and their group_ids) or contact_updated''s fields, a record trigger''s on, changed and old (false when the flow cannot read old: its updates keep no old columns).';

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
  'Derived: the next occurrence of each date trigger (flow, pos = its flow_triggers row) for each contact with a date in its field, at fire_at. Filled at activation, kept current by the contacts'' triggers (a changed date, attribute or zone moves it; a deleted contact takes it along) and by settings changes, advanced by journey._date_pass once enrolled (or skipped as too late; a flow paused by an edit or a quota is enrolled frozen), emptied by pause_flow and archive_flow, rebuilt at activation. The pass finds due rows by an index probe on fire_at.';

CREATE TABLE journey.enrollments (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    flow_id     bigint NOT NULL,
    version     integer NOT NULL,
    contact_id  bigint NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'completed', 'exited', 'stopped', 'failed')),
    node        text,
    due_at      timestamptz,
    data        jsonb NOT NULL DEFAULT '{}',
    occurrence  text,
    seq         integer NOT NULL DEFAULT 0,
    waiting     jsonb,
    entered_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    -- last: 0.3.0 added them (ALTER TABLE ADD COLUMN), a fresh install has the same column order
    parent_id   bigint,
    branch      integer,
    record_type text,
    record_key  text,
    record_old  jsonb,
    PRIMARY KEY (contact_id, id),
    CHECK (status <> 'active' OR (node IS NOT NULL AND due_at IS NOT NULL))
);
-- (a fork's branches are active beside their parent: parent_id IS NOT NULL; a record trigger's
-- enrollments are one per record: record_key IS NOT NULL, occurrence record:<key>; record_timeline
-- finds them through the flow_id-leading unique index, so enrolling a record writes no index of its own)
CREATE UNIQUE INDEX enrollments_one_active ON journey.enrollments (flow_id, contact_id) WHERE status = 'active' AND parent_id IS NULL AND record_key IS NULL;
-- Unique per occurrence (NULLs are distinct: flows that may be re-entered are not limited),
-- and the flow_id-leading index for stats and flow-wide updates.
CREATE UNIQUE INDEX enrollments_flow_contact ON journey.enrollments (flow_id, contact_id, occurrence);
CREATE INDEX enrollments_due ON journey.enrollments (due_at) WHERE status = 'active';
COMMENT ON TABLE journey.enrollments IS
  'A contact''s trip through a flow. node is the node to run next at due_at; seq counts nodes entered (it makes idempotency keys); waiting describes what a check/wait_event node waits for; attempts counts transient failures in a row (retried with backoff up to settings.max_attempts). At most one active enrollment per (flow, contact); occurrence is ''once'' in flows that are never re-entered (so at most one enrollment ever, even under concurrent writers) and is reserved for date triggers (one per occurrence). A fork node runs its branches as enrollments of their own: parent_id is the enrollment that entered the flow (it waits at its fork, due_at infinity, until every branch has ended), branch the place in the fork''s next list; branches are not counted by the one-active rule, and the trigger enrollments_branch_ended ends the parent (exited as soon as one branch exits, the others stopped; else, once none is active, failed if one failed, stopped if one was stopped, completed otherwise). A record trigger''s enrollments carry record_type and record_key (the record that fired it, journey.record_timeline): one per record (occurrence record:<key>), not limited by the one-active rule; their data is the record as written (to_jsonb of the row) and record_old, on an update, the columns it changed as they were, or {} when the flow cannot read old (its definition never names old, reads event whole or by a computed key, or sends a stored template) (flows read {trigger, op, record_type, record, old} built from both, journey._record_event; old is record || record_old); a fork''s branches copy all three. No foreign keys (they would double the cost of enrolling): triggers delete enrollments with their contact or flow version.';

CREATE TABLE journey.steps (
    id            bigint GENERATED ALWAYS AS IDENTITY,
    enrollment_id bigint NOT NULL,
    contact_id    bigint NOT NULL,
    flow_id       bigint NOT NULL,
    node          text NOT NULL,
    at            timestamptz NOT NULL,
    outcome       text NOT NULL,
    PRIMARY KEY (contact_id, id)
);
-- (no index by flow or node: stats read journey.counters, everything else reads a contact's steps)
COMMENT ON TABLE journey.steps IS
  'Append-only history: one row per node an enrollment entered, with what the node did in outcome, one of: sent, created, queued, suppressed: <reason>, updated, waited, goal, exited, then, else, branch <n>, yes, yes: <status>, no: <reason>, waiting, failed: <error>, retry: <error>, quota, forked, sent, skipped: <recipients>, record created. created is a task, queued a webhook; a send is suppressed for sms_opt_out, email_opt_out, no phone, no email or no admin_email; a check writes yes: <status> (the message''s status), a wait_event yes; no: <reason> is a message status, no message was sent, or timed out; retry is a transient failure retried later; quota is a send its channel''s quota (settings.sms_quota, email_quota, whatsapp_quota) could not cover: nothing written, the enrollment waits at the node while its flow is paused for quota; forked is a fork node that started its branches (enrollments of their own, parent_id set); sent, skipped: <recipients> is a send_email that reached some of its recipients and skipped others (each named with why: empty, not an e-mail address, email_opt_out); record created is a create_record node''s row; update_record writes updated. Timelines, record_timeline, retention, forget_contact and the counters'' reached-once rule read it, by contact (its one index is the primary key, led by contact_id; stats read journey.counters, never this table). Rows go with their enrollment (trigger enrollments_delete_steps); no foreign key, so the engine''s batch insert pays no per-row check.';

-- enrollments has no foreign keys: they would double the cost of enrolling (two checks per
-- row, in the app's INSERT). Its rows are written only by journey._enroll, from flows that exist
-- and contacts the writer's own row references (and so locks); deleting a contact or a flow
-- version deletes its enrollments here.
CREATE FUNCTION journey._delete_contact_enrollments() RETURNS trigger
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
CREATE TRIGGER contacts_delete_enrollments AFTER DELETE ON journey.contacts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._delete_contact_enrollments();

-- ---------------------------------------------------------------- contact keys
-- contact_keys follows contacts.external_id in the writer's transaction. ON CONFLICT DO NOTHING
-- waits for a concurrent writer of the same key: of two transactions giving one external_id to
-- two contacts, the second is refused once the first commits (as the unique index did).
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

CREATE FUNCTION journey._delete_version_enrollments() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
AS $$
BEGIN
    DELETE FROM journey.enrollments e USING old_rows o WHERE e.flow_id = o.flow_id AND e.version = o.version;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION journey._delete_version_enrollments() IS 'Trigger: deletes the enrollments of deleted flow versions (a deleted flow deletes its versions).';
CREATE TRIGGER flow_versions_delete_enrollments AFTER DELETE ON journey.flow_versions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._delete_version_enrollments();

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

-- steps has no foreign key to enrollments (the engine inserts a batch of steps per run and a
-- per-row check would cost as much as the insert): deleting enrollments deletes their steps here.
CREATE FUNCTION journey._delete_steps() RETURNS trigger
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
COMMENT ON FUNCTION journey._delete_steps() IS 'Trigger: deletes the steps of deleted enrollments.';
CREATE TRIGGER enrollments_delete_steps AFTER DELETE ON journey.enrollments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION journey._delete_steps();

CREATE TABLE journey.outbox (
    id                  bigint GENERATED ALWAYS AS IDENTITY,
    idempotency_key     text NOT NULL,
    channel             text NOT NULL CHECK (channel IN ('sms', 'email', 'whatsapp', 'admin_email', 'task', 'webhook')),
    flow_id             bigint,
    enrollment_id       bigint,
    node                text,
    contact_id          bigint NOT NULL,
    recipient           text,
    sender              text,
    subject             text,
    body                text,
    payload             jsonb,
    sms_encoding        text CHECK (sms_encoding IN ('GSM-7', 'UCS-2')),
    sms_segments        integer CHECK (sms_segments >= 1),
    not_before          timestamptz,
    status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'leased', 'sent', 'delivered', 'opened', 'clicked', 'failed', 'undelivered', 'bounced')),
    attempts            integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    leased_until        timestamptz,
    provider_message_id text,
    last_error          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    delivered_at        timestamptz,
    opened_at           timestamptz,
    clicked_at          timestamptz,
    -- last: 0.3.0 added them (ALTER TABLE ADD COLUMN), a fresh install has the same column order
    lease_token         uuid,
    test                boolean NOT NULL DEFAULT false,
    flow_name           text,
    PRIMARY KEY (id, contact_id),
    CONSTRAINT outbox_idempotency_key UNIQUE (idempotency_key, contact_id)
);
CREATE INDEX outbox_claimable ON journey.outbox (id) WHERE status IN ('pending', 'leased');
CREATE INDEX outbox_provider_message ON journey.outbox (provider_message_id) WHERE provider_message_id IS NOT NULL;
CREATE INDEX outbox_contact ON journey.outbox (contact_id, enrollment_id);
COMMENT ON TABLE journey.outbox IS
  'Every outbound message, written once (idempotency_key = enrollment:node:seq). Relays claim, mark_sent/mark_failed and report on it. status: pending -> leased -> sent -> delivered -> opened -> clicked; failed, undelivered, bounced are terminal. lease_token is set by each claim (a fresh uuid) and cleared when the lease ends; mark_sent and mark_failed count only with the current one. test marks a message journey.test_send wrote (no enrollment; stats and timelines leave it out). flow_name is set when journey.delete_flow deletes the flow (flow_id keeps its id): coalesce(f.name, o.flow_name) over outbox o LEFT JOIN flows f ON f.id = o.flow_id names the flow of any message.';

CREATE TABLE journey.delivery_reports (
    id                bigint GENERATED ALWAYS AS IDENTITY,
    outbox_id         bigint NOT NULL,
    contact_id        bigint NOT NULL,
    status            text NOT NULL CHECK (status IN ('sent', 'delivered', 'opened', 'clicked', 'failed', 'undelivered', 'bounced')),
    provider_event_id text,
    at                timestamptz NOT NULL DEFAULT now(),
    detail            jsonb,
    PRIMARY KEY (id, contact_id),
    CONSTRAINT delivery_reports_event UNIQUE (provider_event_id, contact_id),
    FOREIGN KEY (outbox_id, contact_id) REFERENCES journey.outbox (id, contact_id) ON DELETE CASCADE
);
-- (deleting a message, retention's or forget_contact's, deletes its reports through this index:
-- without it every deleted message scanned the table)
CREATE INDEX delivery_reports_outbox ON journey.delivery_reports (contact_id, outbox_id);
COMMENT ON TABLE journey.delivery_reports IS 'Delivery events reported by relays; provider_event_id makes journey.report idempotent.';

-- ---------------------------------------------------------------- dump and restore
-- settings has exactly one row, inserted above. A restore (pg_dump / pg_restore) re-inserts the
-- dumped row after CREATE EXTENSION made the default one: this trigger turns that insert (and
-- any other) into an update of the one row. ENABLE ALWAYS: it fires in a restore run with
-- session_replication_role = replica too.
CREATE FUNCTION journey._settings_replace() RETURNS trigger
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
COMMENT ON FUNCTION journey._settings_replace() IS 'Trigger: an INSERT into settings replaces the one row (this is how a restore brings settings back).';
CREATE TRIGGER settings_replace BEFORE INSERT ON journey.settings
    FOR EACH ROW EXECUTE FUNCTION journey._settings_replace();
ALTER TABLE journey.settings ENABLE ALWAYS TRIGGER settings_replace;

-- pg_dump dumps the rows of these tables and the state of their sequences. flow_triggers is
-- included: it is derived at activation only, so a restored active flow needs its routes.
-- Restore with session_replication_role = replica (see README): the audience tables' triggers
-- must not enroll or rewrite contacts again while the dumped rows are loaded.
-- (one call per statement: each call updates the pg_extension row)
SELECT pg_catalog.pg_extension_config_dump('journey.settings', '');
SELECT pg_catalog.pg_extension_config_dump('journey.contacts', '');
SELECT pg_catalog.pg_extension_config_dump('journey.contact_keys', '');
SELECT pg_catalog.pg_extension_config_dump('journey.groups', '');
SELECT pg_catalog.pg_extension_config_dump('journey.group_members', '');
SELECT pg_catalog.pg_extension_config_dump('journey.forms', '');
SELECT pg_catalog.pg_extension_config_dump('journey.form_submissions', '');
SELECT pg_catalog.pg_extension_config_dump('journey.event_types', '');
SELECT pg_catalog.pg_extension_config_dump('journey.events', '');
SELECT pg_catalog.pg_extension_config_dump('journey.templates', '');
SELECT pg_catalog.pg_extension_config_dump('journey.flows', '');
SELECT pg_catalog.pg_extension_config_dump('journey.flow_versions', '');
SELECT pg_catalog.pg_extension_config_dump('journey.flow_triggers', '');
SELECT pg_catalog.pg_extension_config_dump('journey.date_schedule', '');
SELECT pg_catalog.pg_extension_config_dump('journey.enrollments', '');
SELECT pg_catalog.pg_extension_config_dump('journey.steps', '');
SELECT pg_catalog.pg_extension_config_dump('journey.outbox', '');
SELECT pg_catalog.pg_extension_config_dump('journey.delivery_reports', '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.contacts', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.groups', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.forms', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.form_submissions', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.events', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.flows', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.enrollments', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.steps', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.outbox', 'id')::regclass, '');
SELECT pg_catalog.pg_extension_config_dump(pg_catalog.pg_get_serial_sequence('journey.delivery_reports', 'id')::regclass, '');
