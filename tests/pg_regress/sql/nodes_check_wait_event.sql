-- check_sms / check_email (yes as soon as the relay's report records the status: the report
-- wakes the enrollment; no when the wait expires) and wait_event (yes when journey.emit
-- records the event: it wakes the enrollment; no after the timeout), run with the virtual
-- clock; then the stats and the diagram of that run.
-- Each scenario runs in a transaction that is rolled back, so each starts from the state set
-- up below (ids aside: sequences are not rolled back). now() is constant inside a transaction;
-- the virtual clock run_due(n, at) is given now() plus an offset.
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

-- Seed flow 000: an SMS, checked for delivery; if not delivered an email, checked for opening;
-- if not opened a 50/50 split into two contact updates. A's SMS is delivered, B opens the
-- email, C never does.
BEGIN;
SELECT journey.create_flow('seed', '{
  "triggers": [{"type": "group_joined", "group": "newsletter"}],
  "start": "sms",
  "nodes": {
    "sms":        {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "next": "check", "stage": "welcome"},
    "check":      {"type": "check_sms", "message": "sms", "wait": "2 hours", "yes": "delivered", "no": "mail"},
    "delivered":  {"type": "goal", "name": "sms delivered"},
    "mail":       {"type": "send_email", "subject": "We missed you", "body": "Hello {{ contact.first_name }}", "next": "check_mail"},
    "check_mail": {"type": "check_email", "message": "mail", "status": "opened", "wait": "1 day", "yes": "opened", "no": "split"},
    "opened":     {"type": "goal", "name": "email opened"},
    "split":      {"type": "split", "branches": [{"percent": 50, "next": "tag_a"}, {"percent": 50, "next": "tag_b"}]},
    "tag_a":      {"type": "update_contact", "set": {"attributes.variant": "a"}, "add_groups": ["vip"]},
    "tag_b":      {"type": "update_contact", "set": {"attributes.variant": "b"}, "remove_groups": ["newsletter"]}
  }}') IS NOT NULL AS created;
SELECT count(*) AS problems FROM journey.validate_flow('seed');
SELECT journey.activate_flow('seed');
SELECT pg_temp.contact('A') AS a, pg_temp.contact('B') AS b, pg_temp.contact('C') AS c \gset
SELECT journey.add_to_group(x, 'newsletter') FROM unnest(ARRAY[:a, :b, :c]::bigint[]) x;
SELECT journey.run_due(100, now());
SELECT count(*) AS sms FROM journey.outbox WHERE channel = 'sms';
SELECT count(*) AS waiting_at_check FROM journey.enrollments WHERE node = 'check' AND waiting IS NOT NULL;
-- A's SMS is delivered: the report wakes A at once
SELECT journey.mark_sent(id, 'pa', lease_token) FROM journey.claim(ARRAY['sms']) WHERE contact_id = :a;
SELECT journey.report('pa', 'delivered', 'e1');
SELECT journey.run_due(100, now() + interval '1 minute');
SELECT status, node FROM journey.enrollments WHERE contact_id = :a;
-- B and C time out after 2 hours: the email
SELECT journey.run_due(100, now() + interval '119 minutes');
SELECT journey.run_due(100, now() + interval '121 minutes');
SELECT count(*) AS emails FROM journey.outbox WHERE channel = 'email';
-- B opens the email: delivered wakes the check, which waits on for opened; opened: the goal
SELECT journey.mark_sent(id, 'pb', lease_token) FROM journey.claim(ARRAY['email']) WHERE contact_id = :b;
SELECT journey.report('pb', 'delivered', 'e2');
SELECT journey.run_due(100, now() + interval '3 hours');
SELECT journey.report('pb', 'opened', 'e3');
SELECT journey.run_due(100, now() + interval '3 hours');
-- C never opens: after 1 day, the split and update_contact
SELECT journey.run_due(100, now() + interval '2 days');
SELECT channel, recipient FROM journey.outbox ORDER BY id;
SELECT attributes->>'variant' IN ('a', 'b') AS variant_set FROM journey.contacts WHERE id = :c;
SELECT goal, reached, reached_pct FROM journey.goal_stats('seed') ORDER BY goal;
SELECT node, reached FROM journey.flow_stats('seed') WHERE node NOT LIKE 'tag_%';
SELECT sum(reached) AS tagged FROM journey.flow_stats('seed') WHERE node LIKE 'tag_%';
SELECT count(*) AS completed FROM journey.enrollments WHERE status = 'completed';
-- the diagram, line by line: n1 to n9 in node-id order (check, check_mail, delivered, mail,
-- opened, sms, split, tag_a, tag_b); which tag node C reached depends on C's id: shown as ?
SELECT regexp_replace(line, '(tag_[ab]: update_contact<br/>reached )[01]', '\1?') AS diagram
  FROM regexp_split_to_table(journey.flow_diagram('seed'), E'\n') WITH ORDINALITY AS l (line, n) ORDER BY n;
ROLLBACK;

-- wait_event: yes when the event is emitted (it wakes the enrollment), no after the timeout
BEGIN;
SELECT journey.define_event('paid', '[]');
SELECT journey.create_flow('we', '{"triggers": [{"type": "manual"}], "start": "w",
  "nodes": {"w": {"type": "wait_event", "event": "paid", "timeout": "3 days", "yes": "won", "no": "lost"},
            "won": {"type": "goal"}, "lost": {"type": "exit"}}}') IS NOT NULL AS created;
SELECT journey.activate_flow('we');
SELECT pg_temp.contact('Payer') AS payer, pg_temp.contact('Idle') AS idle \gset
SELECT journey.enroll('we', :payer) IS NOT NULL AS enrolled;
SELECT journey.enroll('we', :idle) IS NOT NULL AS enrolled;
SELECT journey.run_due(10, now());
SELECT journey.emit('paid', :payer) IS NOT NULL AS emitted;
-- the event wakes the waiting enrollment
SELECT journey.run_due(10, now() + interval '1 hour');
SELECT journey.run_due(10, now() + interval '2 days');
SELECT journey.run_due(10, now() + interval '3 days 1 minute');
SELECT c.first_name, e.status FROM journey.enrollments e JOIN journey.contacts c ON c.id = e.contact_id ORDER BY e.contact_id;
ROLLBACK;
