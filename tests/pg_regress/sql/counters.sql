-- Counters: the stats read journey.counters plus journey.counter_deltas, kept by the
-- enrollments' and outbox's triggers and the engine's write-back. A mixed run (a fork, a split,
-- sends, suppressed sends, a check, an exit, failures, retries with backoff, retry_enrollment,
-- relay reports, edits activated with in_flight continue and stop) and, at every stage, the
-- comparison of every counter with a recount from the tables: journey.counter_differences()
-- must return no row. Then compaction, and counters keeping their totals when retention and
-- forget_contact delete history. The new stats: node_stats (removed nodes), message_stats,
-- split_stats, flow_overview's stopped and exited.
\i tests/pg_regress/include/welcome.sql
UPDATE journey.settings SET quiet_hours_start = '00:00', quiet_hours_end = '00:00', admin_email = 'boss@example.com';
CREATE TEMP TABLE people AS
SELECT x.name, pg_temp.contact(x.name) AS id FROM unnest(ARRAY['Ann', 'Bob', 'Cat', 'Dan', 'Eve', 'Fay', 'Gus', 'Hal']) x (name);
UPDATE journey.contacts SET sms_opt_out = true WHERE first_name = 'Eve';
-- a contact update that fails with a lock timeout while test.busy is on (a transient error:
-- the engine retries it with backoff)
CREATE FUNCTION public.busy() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('test.busy', true) = 'on' THEN
        RAISE EXCEPTION 'contact row busy' USING ERRCODE = 'lock_not_available';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER busy BEFORE UPDATE ON journey.contacts FOR EACH ROW EXECUTE FUNCTION public.busy();
-- the relay: claims everything; fails Bob's and Fay's messages for good and Hal's for a retry
-- later, sends the others
CREATE FUNCTION pg_temp.relay() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    m journey.outbox;
BEGIN
    FOR m IN SELECT * FROM journey.claim() ORDER BY id LOOP
        IF (SELECT first_name FROM journey.contacts WHERE id = m.contact_id) IN ('Bob', 'Fay') THEN
            PERFORM journey.mark_failed(m.id, 'mailbox full', false, m.lease_token);
        ELSIF (SELECT first_name FROM journey.contacts WHERE id = m.contact_id) = 'Hal' THEN
            PERFORM journey.mark_failed(m.id, 'try later', true, m.lease_token);
        ELSE
            PERFORM journey.mark_sent(m.id, 'p-' || m.id, m.lease_token);
        END IF;
    END LOOP;
END $$;
CREATE FUNCTION pg_temp.differences() RETURNS TABLE (flow text, node text, kind text, label text, counted bigint, recounted bigint)
LANGUAGE sql AS $$
  SELECT f.name, d.node, d.kind, d.label, d.counted, d.recounted FROM journey.counter_differences() d
  LEFT JOIN journey.flows f ON f.id = d.flow_id
$$;

SELECT journey.create_flow('mix', '{"triggers": [{"type": "group_joined", "group": "vip"}], "start": "f",
  "nodes": {
    "f":     {"type": "fork", "next": ["sms", "ab"]},
    "sms":   {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "next": "check"},
    "check": {"type": "check_sms", "message": "sms", "wait": "1 day", "yes": "won", "no": "bye"},
    "won":   {"type": "goal", "name": "converted"},
    "bye":   {"type": "exit"},
    "ab":    {"type": "split", "branches": [{"percent": 50, "next": "tag"}, {"percent": 50, "next": "mail"}]},
    "tag":   {"type": "update_contact", "set": {"attributes.variant": "a"}, "next": "won2"},
    "mail":  {"type": "send_email", "template": "promo", "next": "won2"},
    "won2":  {"type": "goal", "name": "converted"}
  }}') IS NOT NULL AS created;
INSERT INTO journey.templates (name, channel, subject, body) VALUES ('promo', 'email', 'Offer', 'For {{ contact.first_name }}');
SELECT journey.activate_flow('mix');
SELECT journey.activate_flow('welcome');
-- the template goes missing: the e-mails fail their branch (and so their enrollment)
DELETE FROM journey.templates WHERE name = 'promo';
-- stage 1: everyone joins both groups; no step ran yet
SELECT count(*) AS joined FROM people p, LATERAL (SELECT journey.add_to_group(p.id, 'vip'), journey.add_to_group(p.id, 'newsletter')) x;
SELECT * FROM journey.flow_overview;
SELECT * FROM pg_temp.differences();
-- stage 2: the forks run (a step each, branches spawned), then the branches: SMS sent (Eve's
-- suppressed), splits, contact updates failing (retried later), e-mails failing (no template)
SET test.busy = 'on';
SELECT journey.run_due(100, now()) AS ran;
SELECT * FROM pg_temp.differences();
SELECT journey.run_due(100, now()) AS ran;
SELECT * FROM pg_temp.differences();
SELECT node, outcome, count(*) FROM journey.steps s JOIN journey.flows f ON f.id = s.flow_id
 WHERE f.name = 'mix' GROUP BY 1, 2 ORDER BY 1, 2;
-- stage 3: the relay; the provider reports: delivered (Ann, Cat), clicked (Dan), bounced (the
-- others); a report wakes the check waiting on its message
SELECT pg_temp.relay();
SELECT journey.report('p-' || o.id, CASE WHEN p.name IN ('Ann', 'Cat') THEN 'delivered' WHEN p.name = 'Dan' THEN 'clicked' ELSE 'bounced' END, 'ev-' || o.id)
  FROM journey.outbox o JOIN people p ON p.id = o.contact_id WHERE o.status = 'sent' ORDER BY o.id;
SELECT * FROM pg_temp.differences();
-- stage 4: the contact updates retried (the row is free again), the woken checks run, the
-- template back for retry_enrollment of the enrollments whose e-mail failed
RESET test.busy;
INSERT INTO journey.templates (name, channel, subject, body) VALUES ('promo', 'email', 'Offer', 'For {{ contact.first_name }}');
SELECT journey.run_due(100, now() + interval '1 minute') AS ran;
SELECT count(*) AS retried FROM journey.enrollments e, LATERAL journey.retry_enrollment(e.id) r
 WHERE e.status = 'failed' AND e.parent_id IS NULL;
SELECT journey.run_due(100, now() + interval '2 minutes') AS ran;
SELECT journey.run_due(100, now() + interval '2 minutes') AS ran;
SELECT pg_temp.relay();
SELECT journey.report('p-' || o.id, 'opened', 'ev2-' || o.id) FROM journey.outbox o WHERE o.channel = 'email' AND o.status = 'sent' ORDER BY o.id;
SELECT * FROM pg_temp.differences();
-- stage 5: edits. welcome, everyone waiting an hour before its e-mail: in_flight stop.
-- mix v2 without the check: the branches waiting at it (Bob, Fay, Hal) stop (in_flight
-- continue), and so their enrollments
SELECT journey.update_flow('welcome', '{"triggers": [{"type": "group_joined", "group": "newsletter"}], "start": "sms",
  "nodes": {"sms": {"type": "send_sms", "text": "Hi again", "next": "won"}, "won": {"type": "goal", "name": "welcomed"}}}');
SELECT journey.activate_flow('welcome', in_flight => 'stop');
SELECT journey.update_flow('mix', '{"triggers": [{"type": "group_joined", "group": "vip"}], "start": "f",
  "nodes": {
    "f":     {"type": "fork", "next": ["sms", "ab"]},
    "sms":   {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "next": "won"},
    "won":   {"type": "goal", "name": "converted"},
    "ab":    {"type": "split", "branches": [{"percent": 50, "next": "tag"}, {"percent": 50, "next": "mail"}]},
    "tag":   {"type": "update_contact", "set": {"attributes.variant": "a"}, "next": "won2"},
    "mail":  {"type": "send_email", "template": "promo", "next": "won2"},
    "won2":  {"type": "goal", "name": "converted"}
  }}');
SELECT journey.activate_flow('mix', in_flight => 'continue');
SELECT journey.run_due(100, now() + interval '1 day 1 hour') AS ran;
SELECT * FROM pg_temp.differences();
-- stage 6: the checks (a new enrollment on v2, then the rest of the day)
SELECT journey.add_to_group(journey.upsert_contact('{"first_name": "Ivy", "phone": "+15550009999", "email": "ivy@example.com"}'), 'vip');
SELECT journey.run_due(100, now() + interval '2 days') AS ran;
SELECT journey.run_due(100, now() + interval '2 days') AS ran;
SELECT journey.run_due(100, now() + interval '3 days') AS ran;
SELECT * FROM pg_temp.differences();
SELECT status, count(*) FROM journey.enrollments GROUP BY 1 ORDER BY 1;

-- the stats
SELECT * FROM journey.flow_overview;
SELECT * FROM journey.flow_stats('mix');
SELECT * FROM journey.node_stats('mix');
SELECT * FROM journey.goal_stats('mix');
SELECT * FROM journey.message_stats('mix');
SELECT * FROM journey.split_stats('mix');
SELECT * FROM journey.node_stats('welcome');
SELECT * FROM journey.message_stats('welcome');
SELECT * FROM journey.split_stats('welcome');

-- compaction folds the deltas: the same counts, fewer rows; a second call finds nothing
SELECT count(*) > 0 AS deltas FROM journey.counter_deltas;
SELECT journey.compact_counters() > 0 AS folded;
SELECT journey.compact_counters(1) AS folded_again, (SELECT count(*) FROM journey.counter_deltas) AS deltas_left;
SELECT * FROM pg_temp.differences();
SELECT journey.compact_counters(0);
\echo :SQLSTATE

-- history deleted: the counters keep their totals (the recount is lower now)
CREATE TEMP TABLE before AS SELECT * FROM journey.flow_overview;
SELECT journey.forget_contact(id) FROM people WHERE name = 'Ann';
UPDATE journey.settings SET keep_sent_messages = '1 day', keep_ended_enrollments = '1 day';
UPDATE journey.outbox SET created_at = created_at - interval '1 year';
UPDATE journey.enrollments SET updated_at = updated_at - interval '1 year';
SELECT messages > 0 AS deleted_messages, enrollments > 0 AS deleted_enrollments FROM journey._retention_pass(0, 0, 1000, 1000);
-- (the ended enrollments of flows never re-entered stay, without their steps: they keep their
-- contacts from entering again)
SELECT (SELECT count(*) FROM journey.enrollments) AS enrollments_left, (SELECT count(*) FROM journey.steps) AS steps_left;
SELECT o.*, o = b AS unchanged FROM journey.flow_overview o JOIN before b USING (flow);
SELECT goal, reached FROM journey.goal_stats('mix');
SELECT node, reached, waiting, completed, stopped, failed FROM journey.node_stats('mix');
SELECT count(*) > 0 AS higher_than_recount, bool_and(counted > recounted) AS all_higher FROM pg_temp.differences();

-- a deleted flow's counters go with it
SELECT journey.archive_flow('welcome');
SELECT journey.delete_flow('welcome');
SELECT count(*) AS welcome_counters FROM (SELECT flow_id FROM journey.counters UNION ALL SELECT flow_id FROM journey.counter_deltas) c
 WHERE c.flow_id NOT IN (SELECT id FROM journey.flows);

-- the counters' probes of the history (reached once, goals and split branches) read the batch's
-- contacts' steps by index whatever steps' statistics say: here steps was analyzed nearly empty,
-- then took 5000 rows of other contacts' history; a batch of 40 steps (a split, a goal) must not
-- read them all (before: a plan that materialized every step and filtered it per batch row)
DELETE FROM journey.steps;
ANALYZE journey.steps;
INSERT INTO journey.steps (enrollment_id, contact_id, flow_id, node, at, outcome)
SELECT i, 1000000 + i, 0, 'x', now(), 'sent' FROM generate_series(1, 5000) i;
INSERT INTO journey.groups (name) VALUES ('probe');
SELECT journey.create_flow('probe', '{"triggers": [{"type": "group_joined", "group": "probe"}], "start": "ab",
  "nodes": {"ab": {"type": "split", "branches": [{"percent": 50, "next": "won"}, {"percent": 50, "next": "won"}]},
            "won": {"type": "goal", "name": "probed"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('probe');
SELECT count(journey.add_to_group(pg_temp.contact('Probe' || i), 'probe')) AS joined FROM generate_series(1, 20) i;
SELECT pg_stat_force_next_flush();
SELECT sum(idx_tup_read) AS before FROM pg_stat_user_indexes WHERE relname = 'steps' \gset
SELECT journey.run_due(100, now()) AS ran;
SELECT pg_stat_force_next_flush();
SELECT sum(idx_tup_read) - :before < 100 AS probed FROM pg_stat_user_indexes WHERE relname = 'steps';
SELECT node, reached FROM journey.node_stats('probe') ORDER BY node;
SELECT goal, reached FROM journey.goal_stats('probe');
SELECT * FROM pg_temp.differences() WHERE flow = 'probe';
-- and are never JIT-compiled (their estimate grows with steps; compiling took 30 ms of a batch),
-- nor is anything run_due runs
SELECT proname, 'jit=off' = ANY (proconfig) AS no_jit FROM pg_proc
 WHERE pronamespace = 'journey'::regnamespace AND proname IN ('_count_batch', '_count_goals', 'run_due') ORDER BY 1;
