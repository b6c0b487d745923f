-- Date triggers: a date of the contact (birthday, or an attribute holding an ISO date or a
-- timestamp), yearly or once, offset_days before or after, at a local time in the contact's
-- zone, for some groups, with a where; one enrollment per occurrence; the catch-up window;
-- activation with and without include_existing; the schedule kept current.
-- The schedule is computed from now() at activation and when a contact's date changes. To
-- show fixed times on any day, most scenarios move the schedule's clock to a fixed instant
-- with journey._date_schedule_flow(flow, after) (what activation runs), then drive the pass
-- with the virtual clock of journey.run_due(n, at).
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
INSERT INTO journey.groups (name) VALUES ('vip');
CREATE FUNCTION pg_temp.person(first text, zone text, birthday date, attributes jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE sql AS $$
  INSERT INTO journey.contacts (first_name, phone, time_zone, birthday, attributes)
  VALUES (first, '+15550100' || length(first), zone, birthday, attributes) RETURNING id
$$;
CREATE FUNCTION pg_temp.rebase(flow text, after timestamptz) RETURNS void LANGUAGE sql AS $$
  SELECT journey._date_schedule_flow((SELECT id FROM journey.flows WHERE name = flow), after)
$$;
CREATE VIEW pg_temp.schedule AS
  SELECT f.name AS flow, c.first_name AS contact, d.pos, d.fire_at
  FROM journey.date_schedule d JOIN journey.flows f ON f.id = d.flow_id
  JOIN journey.contacts c ON c.id = d.contact_id ORDER BY 1, 2, 3;
CREATE VIEW pg_temp.enrolled AS
  SELECT f.name AS flow, c.first_name AS contact, e.occurrence, e.status,
         e.data->>'scheduled_at' AS scheduled_at, e.data->>'late' AS late, e.data->>'date' AS date
  FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
  JOIN journey.contacts c ON c.id = e.contact_id ORDER BY 1, 2, 3;

-- validate_flow lists every problem of a date trigger's fields
SELECT journey.create_flow('bad', '{"triggers": [
  {"type": "date", "field": "email", "repeat": "monthly", "offset_days": 400, "at": "25:00",
   "feb29": "leap", "groups": ["nobody"], "when": 1},
  {"type": "date", "field": "attributes.x", "groups": "vip", "where": {"field": "amount", "op": "exists"}},
  {"type": "date"}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT * FROM journey.validate_flow('bad');

-- Yearly, the day before the birthday at 09:00, in three zones: New York changes to summer
-- time on 2027-03-14 at 02:00 (09:00 is then UTC-4), Jerusalem on 2027-03-26, Tokyo never.
SELECT journey.create_flow('bday', '{"triggers": [{"type": "date", "field": "birthday", "offset_days": -1, "at": "09:00"}],
  "start": "hi", "nodes": {"hi": {"type": "send_sms", "text": "Happy birthday tomorrow {{ contact.first_name }} ({{ event.date }})"}}}') IS NOT NULL AS created;
SELECT pg_temp.person('Ny', 'America/New_York', '1990-03-15') AS ny \gset
SELECT pg_temp.person('Jlm', 'Asia/Jerusalem', '1990-03-15') AS jlm \gset
SELECT pg_temp.person('Tok', 'Asia/Tokyo', '1990-03-15') AS tok \gset
SELECT pg_temp.person('Nobday', NULL, NULL) AS nobday \gset
SELECT journey.activate_flow('bday');
SELECT pg_temp.rebase('bday', '2027-01-01Z');
SELECT * FROM pg_temp.schedule;
-- 09:00 on the 14th in Tokyo is 00:00 UTC: only Tok is due then
SELECT journey.run_due(100, '2027-03-14 00:00Z');
SELECT * FROM pg_temp.enrolled;
SELECT journey.run_due(100, '2027-03-14 07:00Z');
SELECT journey.run_due(100, '2027-03-14 13:00Z');
SELECT * FROM pg_temp.enrolled;
SELECT recipient, body FROM journey.outbox ORDER BY id;
-- each row moved to next year's occurrence; the same instant again enrolls nothing more
SELECT * FROM pg_temp.schedule;
SELECT journey.run_due(100, '2027-03-14 13:00Z');
SELECT count(*) AS enrollments FROM journey.enrollments;
-- reentry "never" (the default) and yet next year enrolls again: one enrollment per occurrence
SELECT journey.run_due(100, '2028-03-14 00:00Z');
SELECT journey.run_due(100, '2028-03-14 07:00Z');
SELECT journey.run_due(100, '2028-03-14 13:00Z');
SELECT * FROM pg_temp.enrolled;
-- the unique (flow, contact, occurrence) holds even when a schedule row is set back by hand
UPDATE journey.date_schedule SET fire_at = '2028-03-14 13:00Z' WHERE contact_id = :ny;
SELECT journey.run_due(100, '2028-03-14 13:00Z');
SELECT count(*) AS ny_enrollments FROM journey.enrollments WHERE contact_id = :ny;
SELECT journey.pause_flow('bday');
SELECT count(*) AS schedule_rows_while_paused FROM journey.date_schedule;

-- Feb 29 in other years: Feb 28 by default, Mar 1 with "feb29": "mar1"; a once date (an
-- attribute) two days after; a timestamp attribute is its date in the contact's zone; a value
-- that is no date enrolls nothing and raises nothing.
SELECT journey.create_flow('leap', '{"triggers": [
    {"type": "date", "field": "birthday", "at": "08:30"},
    {"type": "date", "field": "birthday", "feb29": "mar1"}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT journey.create_flow('renewal', '{"triggers": [
    {"type": "date", "field": "attributes.renewal", "repeat": "once", "offset_days": 2}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT pg_temp.person('Leap', 'UTC', '2000-02-29') AS leap \gset
SELECT pg_temp.person('Renew', 'Asia/Tokyo', NULL, '{"renewal": "2027-06-10T23:30:00Z"}') AS renew \gset
SELECT pg_temp.person('Renew2', 'UTC', NULL, '{"renewal": "2027-05-01"}') AS renew2 \gset
SELECT pg_temp.person('Garbage', 'UTC', NULL, '{"renewal": "soon"}') AS garbage \gset
SELECT pg_temp.person('Forever', 'UTC', 'infinity', '{"renewal": "294277-01-01"}') AS forever \gset
SELECT journey.activate_flow('leap');
SELECT journey.activate_flow('renewal');
SELECT pg_temp.rebase('leap', '2027-01-01Z');
SELECT pg_temp.rebase('renewal', '2027-01-01Z');
SELECT * FROM pg_temp.schedule WHERE contact IN ('Leap', 'Renew', 'Renew2', 'Garbage', 'Forever');
SELECT journey.run_due(100, '2027-02-28 08:30Z');
SELECT journey.run_due(100, '2027-03-01 09:00Z');
SELECT journey.run_due(100, '2027-05-03 09:00Z');
SELECT journey.run_due(100, '2027-06-13 00:00Z');
SELECT * FROM pg_temp.enrolled WHERE contact IN ('Leap', 'Renew', 'Renew2', 'Garbage');
-- once: gone from the schedule after it fired; leap: on to 2028 (a leap year: Feb 29 both)
SELECT * FROM pg_temp.schedule WHERE contact IN ('Leap', 'Renew', 'Renew2', 'Garbage');
SELECT journey.pause_flow('leap');
SELECT journey.pause_flow('renewal');

-- groups: only members at firing time; where: over contact.* and event.*
SELECT journey.create_flow('vipday', '{"triggers": [{"type": "date", "field": "birthday", "groups": ["vip"],
    "where": {"field": "contact.attributes.tier", "op": "=", "value": "gold"}}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT pg_temp.person('Gold', 'UTC', '1980-07-01', '{"tier": "gold"}') AS gold \gset
SELECT pg_temp.person('Silver', 'UTC', '1980-07-01', '{"tier": "silver"}') AS silver \gset
SELECT pg_temp.person('Outsider', 'UTC', '1980-07-01', '{"tier": "gold"}') AS outsider \gset
SELECT journey.activate_flow('vipday');
SELECT pg_temp.rebase('vipday', '2027-01-01Z');
-- joining after the schedule was made counts: membership is checked when it fires
SELECT journey.add_to_group(:gold, 'vip'), journey.add_to_group(:silver, 'vip');
SELECT journey.run_due(100, '2027-07-01 09:00Z');
SELECT * FROM pg_temp.enrolled WHERE flow = 'vipday';
SELECT journey.pause_flow('vipday');

-- catch-up: after downtime, occurrences passed less than settings.date_catch_up ago are still
-- enrolled (late), older ones skipped and moved on to next year
SELECT journey.create_flow('catchup', '{"triggers": [{"type": "date", "field": "birthday"}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT pg_temp.person('Early', 'UTC', '1970-09-01') AS early \gset
SELECT pg_temp.person('Late', 'UTC', '1970-09-02') AS late \gset
SELECT journey.activate_flow('catchup');
SELECT pg_temp.rebase('catchup', '2027-01-01Z');
SELECT date_catch_up FROM journey.settings;
-- down from before 2027-09-01 09:00 until 2027-09-02 20:00: Early's is 35 hours old, Late's 11
SELECT journey.run_due(100, '2027-09-02 20:00Z');
SELECT * FROM pg_temp.enrolled WHERE flow = 'catchup';
SELECT * FROM pg_temp.schedule WHERE flow = 'catchup' AND contact IN ('Early', 'Late');
SELECT journey.pause_flow('catchup');

-- settings.date_trigger_at is the time of day of triggers without "at"; changing it (or the
-- default zone) reschedules
SELECT journey.create_flow('attime', '{"triggers": [{"type": "date", "field": "birthday", "offset_days": 1}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT pg_temp.person('Zoneless', NULL, ((current_date + 100) - interval '28 years')::date) AS zoneless \gset
SELECT journey.activate_flow('attime');
SELECT fire_at = ((current_date + 101)::timestamp + time '09:00') AT TIME ZONE 'UTC' AS at_nine_utc FROM journey.date_schedule WHERE contact_id = :zoneless;
UPDATE journey.settings SET date_trigger_at = '07:15', time_zone = 'Asia/Tokyo';
SELECT fire_at = ((current_date + 101)::timestamp + time '07:15') AT TIME ZONE 'Asia/Tokyo' AS at_quarter_past_seven_tokyo FROM journey.date_schedule WHERE contact_id = :zoneless;
UPDATE journey.settings SET date_trigger_at = '09:00', time_zone = 'UTC';
-- changing the contact's date moves its next occurrence
UPDATE journey.contacts SET birthday = birthday + 10 WHERE id = :zoneless;
SELECT fire_at = ((current_date + 111)::timestamp + time '09:00') AT TIME ZONE 'UTC' AS moved FROM journey.date_schedule WHERE contact_id = :zoneless;
-- an unrelated change leaves it; removing the date removes it; deleting the contact too
UPDATE journey.contacts SET first_name = 'Zoneless2' WHERE id = :zoneless;
SELECT count(*) AS rows FROM journey.date_schedule WHERE contact_id = :zoneless;
UPDATE journey.contacts SET birthday = NULL WHERE id = :zoneless;
SELECT count(*) AS rows FROM journey.date_schedule WHERE contact_id = :zoneless;
UPDATE journey.contacts SET birthday = current_date + 50 WHERE id = :zoneless;
DELETE FROM journey.contacts WHERE id = :zoneless;
SELECT count(*) AS rows FROM journey.date_schedule WHERE contact_id = :zoneless;
SELECT journey.pause_flow('attime');

-- Activation does not back-fill occurrences whose time already passed; with include_existing
-- those within the catch-up window are enrolled by the next pass (late).
UPDATE journey.settings SET date_catch_up = '2 days';
SELECT journey.create_flow('backfill', '{"triggers": [{"type": "date", "field": "birthday", "offset_days": -1}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
-- today's birthday: it fired yesterday at 09:00 (less than two days ago)
SELECT pg_temp.person('Today', 'UTC', (current_date - interval '40 years')::date) AS today \gset
SELECT journey.activate_flow('backfill');
SELECT fire_at > now() AS next_year_only FROM journey.date_schedule WHERE contact_id = :today;
SELECT journey.run_due(100);
SELECT count(*) AS enrolled FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'backfill';
SELECT journey.pause_flow('backfill');
SELECT journey.activate_flow('backfill', include_existing => true);
SELECT fire_at < now() AS passed_within_window FROM journey.date_schedule WHERE contact_id = :today;
SELECT journey.run_due(100);
SELECT occurrence = to_char(current_date - 1, 'YYYY-MM-DD') AS yesterday, data->>'late' AS late
FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'backfill';
UPDATE journey.settings SET date_catch_up = '1 day';

-- include_existing where no trigger has existing contacts to enroll is an error
SELECT journey.define_event('ordered', '[]');
SELECT journey.create_flow('events', '{"triggers": [{"type": "event", "event": "ordered"}, {"type": "manual"}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('events', include_existing => true);
\echo :SQLSTATE
SELECT status FROM journey.flows WHERE name = 'events';

-- A contact whose data cannot be read (a number past what the engine holds) matches no where:
-- the pass enrolls everyone else and moves past it, with a WARNING (it rolled the whole pass
-- back, on every pass after: no date flow enrolled anyone again, and run_due failed).
SELECT journey.create_flow('gold', '{"triggers": [{"type": "date", "field": "birthday",
    "where": {"field": "contact.attributes.tier", "op": "=", "value": "gold"}}],
  "start": "a", "nodes": {"a": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT pg_temp.person('Goldie', 'UTC', '1990-07-01', '{"tier": "gold"}') AS goldie \gset
SELECT pg_temp.person('Unreadable', 'UTC', '1990-07-01', '{"tier": "gold", "n": 1e400}') AS unreadable \gset
SELECT journey.activate_flow('gold');
SET client_min_messages = error;
SELECT journey.run_due(100, '2027-07-01 12:00Z') >= 0 AS ran;
RESET client_min_messages;
SELECT c.first_name, c.attributes->>'tier' AS tier FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id
  JOIN journey.contacts c ON c.id = e.contact_id WHERE f.name = 'gold' ORDER BY 1;
SELECT d.contact_id, d.fire_at > '2027-07-01 12:00Z' AS advanced
  FROM journey.date_schedule d JOIN journey.flows f ON f.id = d.flow_id WHERE f.name = 'gold' AND d.contact_id IN (:goldie, :unreadable) ORDER BY 1;
