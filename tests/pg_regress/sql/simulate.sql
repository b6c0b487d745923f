-- journey.simulate: a dry run of a flow for one contact over virtual time, with the real rules
-- (zones, windows, quiet hours, suppression, splits, conditions), assumptions for what cannot be
-- known in advance, on the current definition, a draft or an unsaved one; and nothing it wrote
-- remains (every journey table's contents are compared before and after).
-- Times are shown relative to now() (constant in a transaction) or as local times of day.
\i tests/pg_regress/include/welcome.sql
\set SHOW_CONTEXT never
-- the contents of every journey table, one checksum each
CREATE FUNCTION pg_temp.snapshot() RETURNS TABLE (tbl name, checksum text) LANGUAGE plpgsql AS $$
DECLARE r record;
BEGIN
  FOR r IN SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'journey'::regnamespace AND c.relkind = 'r' ORDER BY 1 LOOP
    tbl := r.relname;
    EXECUTE format('SELECT md5(coalesce(string_agg(t::text, '','' ORDER BY t::text), '''')) FROM journey.%I t', r.relname) INTO checksum;
    RETURN NEXT;
  END LOOP;
END $$;
SELECT pg_temp.contact('Dana') AS dana \gset
SELECT pg_temp.contact('Eli') AS eli \gset
UPDATE journey.contacts SET time_zone = 'Asia/Jerusalem' WHERE id = :dana;
-- Eli is inside the active flow, mid-way: the simulation must leave him as he is
SELECT journey.activate_flow('welcome');
SELECT journey.add_to_group(:eli, 'newsletter');
SELECT journey.run_due(10);
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.snapshot();

-- The welcome journey (SMS, an hour, the e-mail, the goal) for Dana
SELECT at - now() AS after, node, type, outcome, channel, recipient, subject, body
FROM journey.simulate('welcome', :dana);
-- a shorter horizon stops before the e-mail
SELECT at - now() AS after, node, outcome FROM journey.simulate('welcome', :dana, '30 minutes');
-- nothing remains: every table as before (and Eli still waits for his e-mail)
SELECT b.tbl FROM before b JOIN pg_temp.snapshot() a USING (tbl) WHERE a.checksum <> b.checksum;
SELECT count(*) AS tables_compared FROM before;
SELECT c.first_name, e.node, e.status FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id;

-- An unsaved edit, with a wait until 22:00 (Dana's zone) before an SMS held back by the quiet
-- hours (21:00-07:00) to 07:00, and a send suppressed by an opt-out
UPDATE journey.settings SET quiet_hours_start = '21:00', quiet_hours_end = '07:00';
SELECT CASE WHEN node <> 'w' THEN to_char(at AT TIME ZONE 'Asia/Jerusalem', 'HH24:MI') END AS local_time, node, type, outcome, body
FROM journey.simulate('welcome', :dana, definition => '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait", "delay": "1 minute", "at": "22:00", "next": "night"},
            "night": {"type": "send_sms", "text": "Late {{ contact.first_name }}", "next": "mail"},
            "mail": {"type": "send_whatsapp", "text": "hi"}}}');
UPDATE journey.settings SET quiet_hours_start = '00:00', quiet_hours_end = '00:00';
UPDATE journey.contacts SET email_opt_out = true WHERE id = :dana;
SELECT node, outcome FROM journey.simulate('welcome', :dana);
UPDATE journey.contacts SET email_opt_out = false WHERE id = :dana;

-- (the flows below, created first, then every table's contents again)
SELECT journey.define_event('paid', '[]');
SELECT journey.create_flow('check', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Pay?", "next": "c"},
            "c": {"type": "check_sms", "message": "s", "wait": "2 hours", "yes": "delivered", "no": "w"},
            "delivered": {"type": "goal", "name": "delivered", "next": "w"},
            "w": {"type": "wait_event", "event": "paid", "timeout": "3 days", "yes": "won", "no": "lost"},
            "won": {"type": "goal", "name": "paid"}, "lost": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT journey.create_flow('ab', '{"triggers": [{"type": "manual"}], "start": "split",
  "nodes": {"split": {"type": "split", "branches": [{"percent": 50, "next": "a"}, {"percent": 50, "next": "b"}]},
            "a": {"type": "goal", "name": "a"}, "b": {"type": "goal", "name": "b"}}}') IS NOT NULL AS created;
SELECT journey.create_flow('both', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["sms", "later"]},
            "sms": {"type": "send_sms", "text": "now"},
            "later": {"type": "wait", "delay": "1 day", "next": "boss"},
            "boss": {"type": "notify_admin", "to": "boss@example.com", "subject": "a day on", "text": "{{ contact.first_name }}"}}}') IS NOT NULL AS created;
DROP TABLE before;
CREATE TEMP TABLE before AS SELECT * FROM pg_temp.snapshot();

-- assume: a check waits 2 hours for a delivery report and takes no, unless assumed yes (by
-- type or by node id); a wait_event likewise
SELECT at - now() AS after, node, outcome FROM journey.simulate('check', :dana);
SELECT at - now() AS after, node, outcome FROM journey.simulate('check', :dana, assume => '{"check_sms": "yes", "w": "yes"}');

-- splits: the branch this contact really takes (the same on every run)
SELECT (SELECT string_agg(outcome, ', ') FROM journey.simulate('ab', :dana)) =
       (SELECT string_agg(outcome, ', ') FROM journey.simulate('ab', :dana)) AS same_branch;

-- a fork: both branches, each on its own time
SELECT at - now() AS after, node, type, outcome, channel, recipient, body FROM journey.simulate('both', :dana) ORDER BY 1, 2;

-- nothing remains after all of these either
SELECT b.tbl FROM before b JOIN pg_temp.snapshot() a USING (tbl) WHERE a.checksum <> b.checksum;

-- errors: an unknown flow or contact, a bad assume, an incomplete definition
SELECT * FROM journey.simulate('nope', :dana);
\echo :SQLSTATE
SELECT * FROM journey.simulate('welcome', 999999);
\echo :SQLSTATE
SELECT * FROM journey.simulate('welcome', :dana, assume => '{"check_sms": "maybe"}');
\echo :SQLSTATE
SELECT * FROM journey.simulate('welcome', :dana, definition => '{"triggers": [{"type": "manual"}], "start": "x", "nodes": {}}');
\echo :SQLSTATE
