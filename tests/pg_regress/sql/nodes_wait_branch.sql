-- Waiting and branching nodes: wait (delay, then the "at" window), condition (contact groups,
-- event data), split (close to its percentages, stable per flow and contact), and the default
-- waits of check_sms (2 hours) and check_email (1 day).
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below (ids aside: sequences are not rolled back). now() is constant inside a transaction;
-- the virtual clock run_due(n, at) is given now(), or a fixed time (the enrollment's due_at set
-- to match) where the output shows times.
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
INSERT INTO journey.groups (name) VALUES ('newsletter'), ('vip');
-- a contact named first, with phone +1555<first> and email <first>@example.com
CREATE FUNCTION pg_temp.contact(first text) RETURNS bigint LANGUAGE sql AS $$
  SELECT journey.upsert_contact(jsonb_build_object('first_name', first, 'phone', '+1555' || lpad((abs(hashtext(first)) % 10000000)::text, 7, '0'),
                                                   'email', lower(first) || '@example.com'))
$$;

-- condition: "any" of in_group and a comparison on the event data
BEGIN;
SELECT journey.create_flow('cond', '{"triggers": [{"type": "manual"}], "start": "c",
  "nodes": {"c": {"type": "condition", "if": {"any": [{"in_group": "vip"}, {"field": "event.amount", "op": ">=", "value": 100}]}, "then": "yes", "else": "no"},
            "yes": {"type": "goal"}, "no": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('cond');
SELECT pg_temp.contact('Vip') AS vip, pg_temp.contact('Rich') AS rich, pg_temp.contact('Poor') AS poor \gset
SELECT journey.add_to_group(:vip, 'vip');
SELECT journey.enroll('cond', :vip) IS NOT NULL AS enrolled;
SELECT journey.enroll('cond', :rich, '{"amount": 150}') IS NOT NULL AS enrolled;
SELECT journey.enroll('cond', :poor, '{"amount": 5}') IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT c.first_name, e.status FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id ORDER BY e.contact_id;
ROLLBACK;

-- split: 30/70 over 10,000 contacts lands within 2 points of 30%; the branch is a function of
-- (flow, contact): enrolled again (reentry "always"), each contact takes the same branch
BEGIN;
SELECT journey.create_flow('ab', '{"triggers": [{"type": "group_joined", "group": "vip"}], "reentry": "always", "start": "s",
  "nodes": {"s": {"type": "split", "branches": [{"percent": 30, "next": "a"}, {"percent": 70, "next": "b"}]},
            "a": {"type": "goal"}, "b": {"type": "goal"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('ab');
INSERT INTO journey.contacts (first_name) SELECT 'c' || g FROM generate_series(1, 10000) g;
INSERT INTO journey.group_members (group_id, contact_id) SELECT g.id, c.id FROM journey.groups g, journey.contacts c WHERE g.name = 'vip';
SELECT journey.run_due(10000, now());
SELECT count(*) BETWEEN 2800 AND 3200 AS a_near_30_pct FROM journey.steps WHERE node = 'a';
SELECT count(*) AS enrolled_again FROM (SELECT journey.enroll('ab', id) FROM journey.contacts ORDER BY id LIMIT 1000) x;
SELECT journey.run_due(10000, now());
SELECT count(*) AS contacts, count(*) FILTER (WHERE branches = 1) AS same_branch_twice
  FROM (SELECT contact_id, count(DISTINCT node) AS branches FROM journey.steps
         WHERE node IN ('a', 'b') GROUP BY contact_id HAVING count(*) = 2) x;
ROLLBACK;

-- wait: 1 hour, then the next 18:00 (the contact's zone: here the default, UTC); check_sms
-- waits 2 hours by default, check_email 1 day
BEGIN;
SELECT journey.create_flow('w', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait", "delay": "1 hour", "at": "18:00", "next": "s"},
            "s": {"type": "send_sms", "text": "evening", "next": "c"},
            "c": {"type": "check_sms", "message": "s", "yes": "g", "no": "m"},
            "m": {"type": "send_email", "subject": "s", "body": "b", "next": "ce"},
            "ce": {"type": "check_email", "message": "m", "no": "g"},
            "g": {"type": "goal"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('w');
SELECT journey.enroll('w', pg_temp.contact('W')) IS NOT NULL AS enrolled;
UPDATE journey.enrollments SET due_at = '2026-06-01 00:00Z';
-- 17:30 + 1 hour = 18:30: so 18:00 the next day
SELECT journey.run_due(10, '2026-06-01 17:30Z');
SELECT node, due_at FROM journey.enrollments;
SELECT journey.run_due(10, '2026-06-02 18:00Z');
SELECT node, due_at FROM journey.enrollments;
SELECT journey.run_due(10, '2026-06-02 20:00Z');
SELECT node, due_at FROM journey.enrollments;
SELECT journey.run_due(10, '2026-06-03 20:00Z');
SELECT status FROM journey.enrollments;
ROLLBACK;
