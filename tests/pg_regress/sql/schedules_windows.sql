-- Send windows: an edge's or a wait's {"from": "HH:MM", "to": "HH:MM", "days": ...}, in the
-- contact's zone. A step due inside the window goes at once; outside it, at the next opening
-- (where "at" means exactly at: at 09:00 a step due at 15:33 waits for the next day). A delay
-- comes first, then the window; "to" before "from" spans midnight; SMS quiet hours still apply
-- after the window; "at" or "days" beside a window is a problem.
-- Each scenario runs in a transaction that is rolled back. The virtual clock run_due(n, at) is
-- given fixed times, the enrollments' due_at set to match, so every time shown is the same on
-- any day.
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a contact named first, with phone +1555000<n> and email <first>@example.com, in Jerusalem
-- (UTC+2 in November)
CREATE FUNCTION pg_temp.contact(first text, n int) RETURNS bigint LANGUAGE sql AS $$
  SELECT journey.upsert_contact(jsonb_build_object('first_name', first, 'phone', '+1555000' || n,
                                                   'email', lower(first) || '@example.com',
                                                   'time_zone', 'Asia/Jerusalem'))
$$;

-- Seed "weekdays, from 09:00": an e-mail, then an SMS in business hours (09:00-18:00 on
-- weekdays); beside it the same flow with "at": "09:00".
BEGIN;
SELECT journey.create_flow('hours', '{"triggers": [{"type": "manual"}], "start": "m",
  "nodes": {"m": {"type": "send_email", "subject": "s", "body": "b",
                  "next": {"to": "s", "window": {"from": "09:00", "to": "18:00", "days": "weekdays"}}},
            "s": {"type": "send_sms", "text": "in hours"}}}') IS NOT NULL AS created;
SELECT journey.create_flow('exact', '{"triggers": [{"type": "manual"}], "start": "m",
  "nodes": {"m": {"type": "send_email", "subject": "s", "body": "b",
                  "next": {"to": "s", "at": "09:00", "days": "weekdays"}},
            "s": {"type": "send_sms", "text": "at nine"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('hours'), journey.activate_flow('exact');
-- the diagram labels the edge with its window
SELECT line FROM regexp_split_to_table(journey.flow_diagram('hours'), E'\n') line WHERE line LIKE '%-->%';
SELECT pg_temp.contact('Inside', 1) AS inside, pg_temp.contact('Before', 2) AS before,
       pg_temp.contact('After', 3) AS after, pg_temp.contact('Exact', 4) AS exact \gset
SELECT journey.enroll('hours', :inside) IS NOT NULL AS enrolled;
SELECT journey.enroll('exact', :exact) IS NOT NULL AS enrolled;
-- Wednesday 2026-11-18 15:33 in Jerusalem (13:33 UTC): the window is open, the SMS is due at
-- once; "at 09:00" waits for Thursday 09:00 (07:00 UTC)
UPDATE journey.enrollments SET due_at = '2026-11-18 13:33Z';
SELECT journey.run_due(10, '2026-11-18 13:33Z');
SELECT f.name, e.node, e.due_at FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name;
SELECT journey.run_due(10, '2026-11-18 13:33Z');
SELECT f.name, e.status, e.node FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name;
SELECT recipient, body FROM journey.outbox WHERE channel = 'sms';
-- before the window: Wednesday 06:00 local (04:00 UTC) -> 09:00 local (07:00 UTC)
SELECT journey.enroll('hours', :before) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-11-18 04:00Z' WHERE contact_id = :before;
SELECT journey.run_due(10, '2026-11-18 04:00Z');
SELECT node, due_at FROM journey.enrollments WHERE contact_id = :before;
SELECT journey.run_due(10, '2026-11-18 06:59Z') AS "06:59";
SELECT journey.run_due(10, '2026-11-18 07:00Z') AS "07:00";
SELECT status FROM journey.enrollments WHERE contact_id = :before;
-- after it on a Friday: 19:00 local (17:00 UTC) -> Monday 09:00 local (07:00 UTC)
SELECT journey.enroll('hours', :after) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-11-20 17:00Z' WHERE contact_id = :after;
SELECT journey.run_due(10, '2026-11-20 17:00Z');
SELECT node, due_at FROM journey.enrollments WHERE contact_id = :after;
ROLLBACK;

-- A delay, then the window: Friday 17:30 local + 1 hour is 18:30, past the window -> Monday
-- 09:00; + 15 minutes is 17:45, inside -> then.
BEGIN;
SELECT journey.create_flow('later', '{"triggers": [{"type": "manual"}], "start": "m",
  "nodes": {"m": {"type": "send_email", "subject": "s", "body": "b",
                  "next": {"to": "s", "delay": "1 hour", "window": {"from": "09:00", "to": "18:00", "days": "weekdays"}}},
            "s": {"type": "send_sms", "text": "later"}}}') IS NOT NULL AS created;
SELECT journey.create_flow('soon', '{"triggers": [{"type": "manual"}], "start": "m",
  "nodes": {"m": {"type": "send_email", "subject": "s", "body": "b",
                  "next": {"to": "s", "delay": "15 minutes", "window": {"from": "09:00", "to": "18:00", "days": "weekdays"}}},
            "s": {"type": "send_sms", "text": "soon"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('later'), journey.activate_flow('soon');
SELECT journey.enroll('later', pg_temp.contact('Later', 5)) IS NOT NULL AS enrolled,
       journey.enroll('soon', pg_temp.contact('Soon', 6)) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-11-20 15:30Z';
SELECT journey.run_due(10, '2026-11-20 15:30Z');
SELECT f.name, e.due_at FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name;
ROLLBACK;

-- A wait with a window across midnight (22:00 to 06:00) in UTC: at noon it waits for 22:00;
-- at 23:00 or 03:00 the window is open and the wait ends at once (the e-mail goes in the same
-- step); at 06:00 it has closed until 22:00.
BEGIN;
UPDATE journey.settings SET time_zone = 'UTC';
SELECT journey.create_flow('night', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait", "window": {"from": "22:00", "to": "06:00"}, "next": "s"},
            "s": {"type": "send_email", "subject": "s", "body": "at night"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('night');
-- enrolls a new contact due at t, runs the engine at t, shows where it is, then removes it
CREATE FUNCTION pg_temp.run_at(t timestamptz) RETURNS TABLE (status text, node text, due_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    eid bigint := journey.enroll('night', journey.upsert_contact(jsonb_build_object('email', t::text || '@example.com')));
BEGIN
    UPDATE journey.enrollments e SET due_at = t WHERE e.id = eid;
    PERFORM journey.run_due(10, t);
    RETURN QUERY SELECT e.status::text, e.node, e.due_at FROM journey.enrollments e WHERE e.id = eid;
    DELETE FROM journey.enrollments e WHERE e.id = eid;
END
$$;
SELECT t AS at, r.* FROM unnest(ARRAY['2026-11-20 12:00Z', '2026-11-20 23:00Z', '2026-11-21 03:00Z',
                                      '2026-11-21 06:00Z']::timestamptz[]) t, pg_temp.run_at(t) r;
ROLLBACK;

-- Quiet hours still apply after the window: a window from 20:00 to 23:00 (Jerusalem) lets the
-- step go at 22:00 local, inside the quiet hours (21:00-07:00): the SMS is held until 07:00.
BEGIN;
UPDATE journey.settings SET quiet_hours_start = '21:00', quiet_hours_end = '07:00';
SELECT journey.create_flow('evening', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait", "window": {"from": "20:00", "to": "23:00"}, "next": "s"},
            "s": {"type": "send_sms", "text": "evening", "unsubscribe": false}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('evening');
SELECT journey.enroll('evening', pg_temp.contact('Evening', 7)) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-11-20 20:00Z';
SELECT journey.run_due(10, '2026-11-20 20:00Z');
SELECT status, node FROM journey.enrollments;
SELECT body, not_before FROM journey.outbox;
ROLLBACK;

-- A DST day: New York springs forward 2026-03-08 (02:00 EST -> 03:00 EDT). A window from 02:30,
-- a time that does not exist that night, opens at 03:00 EDT (07:00 UTC); business hours from
-- 09:00 open at 13:00 UTC that day (09:00 EDT), not 14:00 (09:00 EST).
BEGIN;
SELECT journey.create_flow('dst', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait", "window": {"from": "02:30", "to": "05:00"}, "next": "x"},
            "x": {"type": "wait", "window": {"from": "09:00", "to": "18:00", "days": ["sun"]}, "next": "s"},
            "s": {"type": "send_email", "subject": "s", "body": "dst"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('dst');
SELECT pg_temp.contact('Dst', 8) AS dst \gset
UPDATE journey.contacts SET time_zone = 'America/New_York' WHERE id = :dst;
SELECT journey.enroll('dst', :dst) IS NOT NULL AS enrolled;
-- Sunday 01:00 EST
UPDATE journey.enrollments SET due_at = '2026-03-08 06:00Z';
SELECT journey.run_due(10, '2026-03-08 06:00Z');
SELECT node, due_at FROM journey.enrollments;
SELECT journey.run_due(10, '2026-03-08 07:00Z');
SELECT node, due_at FROM journey.enrollments;
ROLLBACK;

-- Validation: each bad field is a problem naming it; "at" or "days" beside a window.
BEGIN;
SELECT journey.create_flow('badwin', '{"triggers": [{"type": "manual"}], "start": "a",
  "nodes": {"a": {"type": "send_email", "subject": "s", "body": "b",
                  "next": {"to": "b", "at": "09:00", "days": "weekdays", "window": {"from": "09:00", "to": "18:00"}}},
            "b": {"type": "send_email", "subject": "s", "body": "b",
                  "next": {"to": "c", "window": {"from": "9am", "days": ["funday"], "until": "18:00"}}},
            "c": {"type": "wait", "window": {"from": "09:00", "to": "9:00"}, "next": "d"},
            "d": {"type": "wait", "at": "10:00", "window": "9-5", "next": "e"},
            "e": {"type": "condition", "if": {"field": "contact.email", "op": "exists", "value": true},
                  "then": {"to": "f", "window": {"from": 9, "to": "18:00", "days": []}}, "else": "f"},
            "f": {"type": "wait", "next": "g"},
            "g": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT node, problem FROM journey.validate_flow('badwin') ORDER BY node, problem;
SELECT journey.activate_flow('badwin');
\echo :SQLSTATE
ROLLBACK;
