-- update_contact (columns, attributes, groups added: their group_joined flows enroll the
-- contact), goal and exit. update_contact shortens lock_timeout for the batch only, and an
-- enrollment that a site's own trigger changes while update_contact runs is still written back.
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below (ids aside: sequences are not rolled back). now() is constant inside a transaction;
-- the virtual clock run_due(n, at) is given now().
\i tests/pg_regress/include/welcome.sql

-- update_contact sets a column and an attribute and adds a group, whose group_joined flow
-- (welcome) then enrolls the contact; the batch's short lock wait ends with the batch
BEGIN;
SELECT journey.create_flow('tagger', '{"triggers": [{"type": "manual"}], "start": "u",
  "nodes": {"u": {"type": "update_contact", "add_groups": ["newsletter"], "set": {"first_name": "Renamed", "attributes.tier": "gold"}}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('tagger');
SELECT journey.activate_flow('welcome');
SELECT pg_temp.contact('T') AS t \gset
SELECT journey.enroll('tagger', :t) IS NOT NULL AS enrolled;
SET LOCAL lock_timeout = '7s';
SELECT journey.run_due(10, now());
SELECT current_setting('lock_timeout') AS lock_timeout;
SELECT first_name, attributes->>'tier' AS tier FROM journey.contacts WHERE id = :t;
SELECT f.name, e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name;
SELECT journey.run_due(10, now());
SELECT body FROM journey.outbox;
ROLLBACK;

-- A trigger of the site's own touches the enrollment while update_contact runs: its row
-- moves, the write-back by ctid misses it and falls back to the key; the enrollment goes on.
BEGIN;
SELECT journey.create_flow('touch', '{"triggers": [{"type": "manual"}], "start": "u",
  "nodes": {"u": {"type": "update_contact", "set": {"attributes.seen": true}, "next": "s"},
            "s": {"type": "send_sms", "text": "seen"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('touch');
CREATE FUNCTION public.touch_enrollments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE journey.enrollments SET data = data || '{"touched": true}' WHERE contact_id = NEW.id; RETURN NEW; END $$;
CREATE TRIGGER touch AFTER UPDATE ON journey.contacts FOR EACH ROW EXECUTE FUNCTION public.touch_enrollments();
SELECT journey.enroll('touch', pg_temp.contact('Dana')) IS NOT NULL AS enrolled;
SELECT journey.run_due(100, now());
SELECT status, node, seq, data->>'touched' AS touched FROM journey.enrollments;
SELECT count(*) AS sent FROM journey.outbox WHERE body = 'seen';
ROLLBACK;
