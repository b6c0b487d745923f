-- Issue #11, items 5 to 7: nothing a flow, a template or a contact's data holds takes the
-- backend down or holds up the batch. Every enrollment below is run by one run_due call; each
-- hostile one fails alone with an error naming the limit or the data, the others advance.
-- (Before 0.3.0 the doubling template aborted the backend, the loop ran for seconds ignoring
-- statement_timeout, and 1e400 in a contact's attributes or a raising trigger rolled the whole
-- batch back, again on every run.)
\set VERBOSITY terse
SET client_min_messages = warning;
UPDATE journey.settings SET max_message_bytes = 4096, max_sms_segments = 3;
INSERT INTO journey.forms (name, field_map) VALUES ('survey', '{"mail": "email", "score": "attributes.score"}');
SELECT journey.define_event('ping', '[]');

-- a flow of one node "n" (plus "more" nodes), activated
CREATE FUNCTION pg_temp.flow(name text, node jsonb, trigger jsonb DEFAULT '{"type": "manual"}', more jsonb DEFAULT '{}')
RETURNS void LANGUAGE sql AS $$
  SELECT journey.create_flow(name, jsonb_build_object('triggers', jsonb_build_array(trigger), 'start', 'n',
                                                      'nodes', jsonb_build_object('n', node) || more));
  SELECT journey.activate_flow(name);
$$;
-- templates that once aborted or stalled the backend
SELECT pg_temp.flow('doubling', '{"type": "send_email", "subject": "x",
  "body": "{% assign s = \"xx\" %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s }}"}');
SELECT pg_temp.flow('captures', '{"type": "send_email", "subject": "x",
  "body": "{% assign s = \"xxxxxxxx\" %}{% for i in (1..40) %}{% capture s %}{{ s }}{{ s }}{% endcapture %}{% endfor %}"}');
SELECT pg_temp.flow('spin', '{"type": "send_sms", "text": "{% for i in (1..30000000) %}{% endfor %}done"}');
SELECT pg_temp.flow('huge_range', '{"type": "send_sms", "text": "{% for i in (1..9000000000000000000) %}{% endfor %}"}');
SELECT pg_temp.flow('replace', '{"type": "send_sms",
  "text": "{% assign s = \"aaaaaaaaaaaaaaaa\" %}{% for i in (1..14) %}{% assign s = s | append: s %}{% endfor %}{{ s | replace: \"a\", s | size }}"}');
-- messages past the settings' limits
SELECT pg_temp.flow('long_sms', '{"type": "send_sms", "text": "{% for i in (1..60) %}0123456789{% endfor %}"}');
SELECT pg_temp.flow('long_email', '{"type": "send_email", "subject": "x", "body": "{% for i in (1..500) %}0123456789{% endfor %}"}');
-- data that cannot be read: contact attributes (through a form), event data (through emit)
SELECT pg_temp.flow('scored', '{"type": "condition", "if": {"field": "contact.attributes.score", "op": ">", "value": 1}, "then": "hi"}',
                    '{"type": "form_submitted", "form": "survey"}', '{"hi": {"type": "send_sms", "text": "high"}}');
SELECT pg_temp.flow('pinged', '{"type": "send_sms", "text": "ping {{ event.n | default: 0 }}"}', '{"type": "event", "event": "ping"}');
-- and plain ones: dates and times Postgres holds but a timestamp (or chrono) cannot are shown,
-- never an error of the claim (which would stall every batch)
SELECT pg_temp.flow('fine', '{"type": "send_sms", "text": "fine {{ contact.first_name }}"}');
SELECT pg_temp.flow('born', '{"type": "send_sms", "text": "born {{ contact.birthday }} at {{ contact.created_at | default: \"?\" }}"}');

SELECT journey.upsert_contact(jsonb_build_object('first_name', 'c' || i, 'phone', '+1555000' || i, 'email', 'c' || i || '@example.com'))
  FROM generate_series(1, 3) i;
INSERT INTO journey.contacts (first_name, phone, birthday, created_at)
VALUES ('far', '+15550004', '5874897-12-31', 'infinity'), ('never', '+15550005', 'infinity', '-infinity');
SELECT journey.enroll('born', c) FROM generate_series(4, 5) c;
SELECT journey.enroll(f, 1) FROM unnest(ARRAY['doubling', 'captures', 'spin', 'huge_range', 'replace', 'long_sms', 'long_email', 'fine']) f;
SELECT journey.enroll('fine', 2);
SELECT journey.submit_form('survey', '{"mail": "c3@example.com", "score": 1e400}');
SELECT journey.emit('ping', 2, '{"n": 1e400}');
SELECT journey.emit('ping', 1, '{"n": 5}');

-- one batch for all of them
SELECT journey.run_due(100);
SELECT f.name, e.contact_id, e.status, e.last_error
  FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id ORDER BY f.name, e.contact_id;
SELECT contact_id, channel, left(body, 20) AS body FROM journey.outbox ORDER BY id;

-- A Postgres error outside any node's subtransaction (here a trigger on the outbox, standing in
-- for a bug) rolls the batch back; it is run again one enrollment at a time and only the
-- enrollment that raises fails.
CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.recipient = '+15550002' THEN RAISE EXCEPTION 'the outbox refuses %', NEW.recipient; END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER refuse BEFORE INSERT ON journey.outbox FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse();
SELECT pg_temp.flow('again', '{"type": "send_sms", "text": "again"}');
SELECT journey.enroll('again', c) FROM generate_series(1, 3) c;
SELECT journey.run_due(100);
SELECT e.contact_id, e.status, e.last_error FROM journey.enrollments e
 WHERE e.flow_id = journey._flow_id('again') ORDER BY e.contact_id;
SELECT contact_id, body FROM journey.outbox WHERE body = 'again' ORDER BY contact_id;
DROP TRIGGER refuse ON journey.outbox;

-- A version written past validation (a superuser can) whose send loops back to itself without
-- a delay: the engine stops at the second visit, after one message, not after a hundred.
SELECT pg_temp.flow('loop', '{"type": "send_sms", "text": "loop"}');
UPDATE journey.flow_versions SET definition = jsonb_set(definition, '{nodes,n,next}', '"n"')
 WHERE flow_id = journey._flow_id('loop');
SELECT journey.enroll('loop', 1);
SELECT journey.run_due(100);
SELECT status, last_error FROM journey.enrollments WHERE flow_id = journey._flow_id('loop');
SELECT count(*) AS sent FROM journey.outbox WHERE body = 'loop';

-- a virtual clock that is not a time
SELECT journey.run_due(10, 'infinity');
SELECT journey.run_due(10, '-infinity');

-- Templates nested far deeper than their tags' names show (end tags inside raw, %} and tags
-- inside a string literal, a chain of elsif, brackets in an expression): validation reports
-- the nesting and no parse is tried (each once overflowed the stack: the server restarted).
SELECT journey.create_flow('hidden_' || k, jsonb_build_object('triggers', '[{"type": "manual"}]'::jsonb, 'start', 'n',
         'nodes', jsonb_build_object('n', jsonb_build_object('type', 'send_sms', 'text', t)))) > 0 AS saved, k
  FROM (VALUES ('raw', repeat('{% if a %}{% raw %}{% endz %}{% endraw %}', 5000) || repeat('{% endif %}', 5000)),
               ('string', repeat('{% if a == "%}{% endif %}" %}', 5000) || repeat('{% endif %}', 5000)),
               ('elsif', '{% if a %}' || repeat('{% elsif b %}', 5000) || '{% endif %}'),
               ('brackets', '{{ a' || repeat('[a', 5000) || repeat(']', 5000) || ' }}')) x (k, t);
SELECT f.name, v.* FROM journey.flows f, journey.validate_flow(f.name) v WHERE f.name LIKE 'hidden_%' ORDER BY 1;
SELECT journey.activate_flow('hidden_raw');

-- Text too large for the engine: an enrollment whose contact's text and attributes with its own
-- data pass 1 MB fails alone, none of it copied out of the claim (Rust cannot survive a failed
-- allocation: a batch of such contacts aborted the worker and restarted the server, again and
-- again); a batch takes at most 64 MB of text, the rest waits for the next batch.
UPDATE journey.settings SET max_message_bytes = 262144;
SELECT pg_temp.flow('big', '{"type": "send_sms", "text": "{{ contact.first_name | size }}"}');
INSERT INTO journey.contacts (first_name, phone) VALUES (repeat('x', 2000000), '+15550006');
INSERT INTO journey.contacts (first_name, phone, attributes)
VALUES ('small', '+15550007', jsonb_build_object('notes', repeat('y', 1100000)));
SELECT journey.enroll('big', c.id) IS NOT NULL AS enrolled FROM journey.contacts c WHERE c.phone IN ('+15550006', '+15550007') ORDER BY c.id;
SELECT journey.enroll('big', 1) IS NOT NULL AS enrolled;
SELECT journey.run_due(100);
SELECT e.contact_id > 5 AS large, e.status, e.last_error
  FROM journey.enrollments e WHERE e.flow_id = journey._flow_id('big') ORDER BY e.contact_id;
SELECT left(body, 20) AS body FROM journey.outbox WHERE flow_id = journey._flow_id('big');
-- 70 contacts of 1,000,000 bytes each: one batch takes 67 of them (64 MB), the next the rest
INSERT INTO journey.contacts (first_name, phone)
SELECT repeat(chr(97 + i % 26), 1000000), '+1555100' || lpad(i::text, 4, '0') FROM generate_series(1, 70) i;
SELECT count(journey.enroll('big', c.id)) AS enrolled FROM journey.contacts c WHERE c.phone LIKE '+1555100%';
SELECT journey.run_due(100) AS first, journey.run_due(100) AS second;
