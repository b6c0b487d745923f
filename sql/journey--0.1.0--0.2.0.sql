-- journey 0.1.0 -> 0.2.0
-- Every change to the schema of 0.1.0 made by 0.2.0, in order; tests/upgrade_test.sh checks that
-- an upgraded database has exactly the schema of a fresh 0.2.0 install.

-- steps: no foreign key to enrollments (a trigger deletes them with their enrollment);
-- the primary key leads with contact_id (timelines, deletes), no separate enrollment index.
ALTER TABLE journey.steps DROP CONSTRAINT steps_enrollment_id_contact_id_fkey;
DROP INDEX journey.steps_enrollment;
ALTER TABLE journey.steps DROP CONSTRAINT steps_pkey, ADD PRIMARY KEY (contact_id, id);
COMMENT ON TABLE journey.steps IS
  'Append-only history: one row per node an enrollment entered (outcome: done, sent, suppressed:<reason>, goal, exited, failed:<error>). Stats and timelines read it. Rows go with their enrollment (trigger enrollments_delete_steps); no foreign key, so the engine''s batch insert pays no per-row check.';
CREATE FUNCTION journey._delete_steps() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, journey
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

-- enrollments: the primary key leads with contact_id and replaces enrollments_contact; one
-- foreign key to the flow version (cascading), none to flows.
ALTER TABLE journey.enrollments DROP CONSTRAINT enrollments_pkey, ADD PRIMARY KEY (contact_id, id);
DROP INDEX journey.enrollments_contact;
-- one unique (flow_id, contact_id, occurrence) index replaces enrollments_occurrence and
-- enrollments_flow; occurrence 'once' marks enrollments of flows never re-entered (the latest
-- one per (flow, contact), should a race have made two).
DROP INDEX journey.enrollments_occurrence;
DROP INDEX journey.enrollments_flow;
UPDATE journey.enrollments e SET occurrence = 'once'
  FROM journey.flows f
 WHERE f.id = e.flow_id AND f.reentry_after IS NULL AND e.occurrence IS NULL
   AND e.id = (SELECT max(x.id) FROM journey.enrollments x WHERE x.flow_id = e.flow_id AND x.contact_id = e.contact_id);
CREATE UNIQUE INDEX enrollments_flow_contact ON journey.enrollments (flow_id, contact_id, occurrence);
ALTER TABLE journey.enrollments DROP CONSTRAINT enrollments_flow_id_fkey;
ALTER TABLE journey.enrollments DROP CONSTRAINT enrollments_flow_id_version_fkey;
ALTER TABLE journey.enrollments ADD CONSTRAINT enrollments_flow_id_version_fkey
    FOREIGN KEY (flow_id, version) REFERENCES journey.flow_versions (flow_id, version) ON DELETE CASCADE;

-- outbox: indexed by contact (timelines, message status) instead of by enrollment alone.
DROP INDEX journey.outbox_enrollment;
CREATE INDEX outbox_contact ON journey.outbox (contact_id, enrollment_id);
