-- Schedules and quiet hours, in the contact's zone: delays on the local calendar, "at" and
-- "days" windows, SMS held back to the end of the quiet hours (unless ignore_quiet_hours),
-- the unsubscribe text counted in the segments; days of a sequence counted from the previous
-- action; the nights the clocks change.
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below. The virtual clock run_due(n, at) is given fixed times, the enrollments' due_at set
-- to match, so every time shown is the same on any day.
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
-- a contact named first, with phone +1555<first> and email <first>@example.com
CREATE FUNCTION pg_temp.contact(first text) RETURNS bigint LANGUAGE sql AS $$
  SELECT journey.upsert_contact(jsonb_build_object('first_name', first, 'phone', '+1555' || lpad((abs(hashtext(first)) % 10000000)::text, 7, '0'),
                                                   'email', lower(first) || '@example.com'))
$$;

-- Quiet hours 21:00 to 07:00 in Jerusalem; a window of weekdays at 10:00 after a day; an
-- urgent SMS ignoring the quiet hours (and in UCS-2: a Hebrew letter).
BEGIN;
UPDATE journey.settings SET quiet_hours_start = '21:00', quiet_hours_end = '07:00', sms_unsubscribe_text = 'STOP=stop';
SELECT journey.create_flow('q', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Promo", "unsubscribe": true, "next": {"to": "u", "delay": "1 day", "at": "10:00", "days": "weekdays"}},
            "u": {"type": "send_sms", "text": "Urgent ש", "ignore_quiet_hours": true}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('q');
SELECT pg_temp.contact('Q') AS q \gset
UPDATE journey.contacts SET time_zone = 'Asia/Jerusalem' WHERE id = :q;
SELECT journey.enroll('q', :q) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-11-20 00:00Z';
-- Friday 2026-11-20 22:30 in Jerusalem (UTC+2): quiet until 07:00 on Saturday
SELECT journey.run_due(10, '2026-11-20 20:30Z');
SELECT body, sms_segments, not_before FROM journey.outbox;
-- a day later, weekdays only, at 10:00 local: Monday 10:00 (08:00 UTC)
SELECT due_at FROM journey.enrollments;
SELECT journey.run_due(10, '2026-11-23 08:00Z');
SELECT sms_encoding, coalesce(not_before::text, 'now') AS not_before FROM journey.outbox WHERE node = 'u';
ROLLBACK;

-- Seed flow 002: "days of delay" count from the previous action, so day 0, day 2 and day 5 of
-- a sequence are delays of 0, 2 and 3 days; a window (weekdays at 09:00) applies to each.
BEGIN;
SELECT journey.create_flow('seq', '{"triggers": [{"type": "manual"}], "start": "d0",
  "nodes": {"d0": {"type": "send_sms", "text": "day 0", "next": {"to": "d2", "delay": "2 days"}},
            "d2": {"type": "send_email", "subject": "s", "body": "day 2", "next": {"to": "d5", "delay": "3 days", "at": "09:00", "days": "weekdays"}},
            "d5": {"type": "create_task", "title": "follow up", "assignee": "sales"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('seq');
SELECT journey.enroll('seq', pg_temp.contact('Seq')) IS NOT NULL AS enrolled;
-- a Monday
UPDATE journey.enrollments SET due_at = '2026-11-02 08:00Z';
SELECT journey.run_due(10, '2026-11-02 08:00Z');
SELECT due_at FROM journey.enrollments;
SELECT journey.run_due(10, '2026-11-04 07:59Z');
SELECT journey.run_due(10, '2026-11-04 08:00Z');
-- day 5 is Saturday 2026-11-07: the weekday window moves it to Monday 09:00
SELECT due_at FROM journey.enrollments;
SELECT journey.run_due(10, '2026-11-09 09:00Z');
SELECT channel FROM journey.outbox ORDER BY id;
SELECT at::date AS day FROM journey.steps ORDER BY id;
ROLLBACK;

-- The night clocks go back in New York (2026-11-01, 02:00 EDT -> 01:00 EST) with quiet hours
-- 01:00 to 01:30: an SMS in the first pass through the hour (05:10 UTC) waits for the first
-- 01:30 (05:30 UTC), one in the repeated hour (06:10 UTC) for the second (06:30 UTC), never for
-- a time already past.
BEGIN;
UPDATE journey.settings SET quiet_hours_start = '01:00', quiet_hours_end = '01:30', time_zone = 'America/New_York';
SELECT journey.create_flow('night', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "late"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('night');
SELECT journey.enroll('night', pg_temp.contact('First')) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-11-01 05:10Z';
SELECT journey.run_due(10, '2026-11-01 05:10Z');
SELECT journey.enroll('night', pg_temp.contact('Second')) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-11-01 06:10Z' WHERE status = 'active';
SELECT journey.run_due(10, '2026-11-01 06:10Z');
SELECT recipient, not_before FROM journey.outbox ORDER BY id;
ROLLBACK;

-- The night clocks go forward in New York (2026-03-08, 02:00 EST -> 03:00 EDT): a window at
-- 02:30, a local time that does not exist that night, resolves to the first instant after the
-- gap (03:00 EDT, 07:00 UTC).
BEGIN;
SELECT journey.create_flow('gap', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait", "delay": "1 hour", "at": "02:30", "next": "s"},
            "s": {"type": "send_sms", "text": "after the gap"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('gap');
SELECT pg_temp.contact('Gap') AS gap \gset
UPDATE journey.contacts SET time_zone = 'America/New_York' WHERE id = :gap;
SELECT journey.enroll('gap', :gap) IS NOT NULL AS enrolled;
-- Saturday 2026-03-07 20:00 EST
UPDATE journey.enrollments SET due_at = '2026-03-08 01:00Z';
SELECT journey.run_due(10, '2026-03-08 01:00Z');
SELECT node, due_at FROM journey.enrollments;
ROLLBACK;
