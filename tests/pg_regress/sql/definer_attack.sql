-- Issue #11, item 1: no app, relay or admin role can run code as the owner of journey's
-- SECURITY DEFINER functions. Each attacker logs in and creates, in pg_temp and in public,
-- domains, types with casts, views, functions and operators named like the built-ins and
-- tables journey's functions use (tests/pg_regress/include/arm_hostile.sql, not echoed); each
-- of them runs hostile code that logs the run and, when run by a superuser, makes the attacker
-- one. Then
-- the attacker reaches every SECURITY DEFINER function it can, directly or through the table
-- writes that fire them, and include/hostile_outcome.sql (echoed) checks the outcome: never
-- superuser, the hostile code never ran as anyone else, which definer functions were reached.
-- At the end, every definer function was reached by some attacker. With 0.2.0's
-- search_path = pg_catalog, journey (pg_temp implicitly searched first for types) each
-- attacker became superuser.
\set VERBOSITY terse
SET client_min_messages = warning;

-- ---------------------------------------------------------------- setup, as the superuser
CREATE ROLE atk_app LOGIN;
CREATE ROLE atk_relay LOGIN;
CREATE ROLE atk_admin LOGIN;
SELECT journey.grant_role('atk_app', 'app'), journey.grant_role('atk_relay', 'relay'), journey.grant_role('atk_admin', 'admin');
GRANT CREATE ON SCHEMA public TO atk_app, atk_relay, atk_admin;
CREATE TABLE public.hostile_log (attacker name, ran_as name, via text);
GRANT SELECT, INSERT ON public.hostile_log TO atk_app, atk_relay, atk_admin;
CREATE TABLE definer_calls_before (funcid oid, calls bigint);
CREATE TABLE definer_calls_reached (funcid oid);
INSERT INTO definer_calls_before SELECT funcid, calls FROM pg_stat_user_functions;

INSERT INTO journey.groups (name) VALUES ('newsletter'), ('waiters');
INSERT INTO journey.forms (name, field_map) VALUES ('signup', '{"mail": "email", "name": "first_name", "city": "attributes.city"}');
SELECT journey.define_event('purchase', '[{"name": "amount", "type": "number", "required": true}, {"name": "plan", "contact_field": "attributes.plan", "pattern": "^[a-z]+$"}]');
SELECT journey.define_event('paid', '[]');
SELECT journey.create_flow('welcome', '{"triggers": [{"type": "group_joined", "group": "newsletter"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "ignore_quiet_hours": true, "next": "c"},
            "c": {"type": "check_sms", "message": "s", "wait": "2 hours", "yes": "g", "no": "g"},
            "g": {"type": "goal", "name": "welcomed"}}}');
SELECT journey.create_flow('signup', '{"triggers": [{"type": "form_submitted", "form": "signup"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Thanks {{ contact.first_name }}", "ignore_quiet_hours": true}}}');
SELECT journey.create_flow('buyer', '{"triggers": [{"type": "event", "event": "purchase",
    "where": {"all": [{"in_group": "newsletter"}, {"field": "contact.first_name", "op": "exists", "value": true}, {"field": "event.amount", "op": ">", "value": 1}]}}],
  "start": "s", "nodes": {"s": {"type": "send_sms", "text": "Bought {{ event.amount }}", "ignore_quiet_hours": true}}}');
SELECT journey.create_flow('waiter', '{"triggers": [{"type": "group_joined", "group": "waiters"}], "start": "w",
  "nodes": {"w": {"type": "wait_event", "event": "paid", "timeout": "3 days", "yes": "won", "no": "lost"},
            "won": {"type": "goal"}, "lost": {"type": "exit"}}}');
SELECT journey.create_flow('manual', '{"triggers": [{"type": "manual"}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "By hand", "ignore_quiet_hours": true}}}');
SELECT journey.create_flow('bday', '{"triggers": [{"type": "date", "field": "birthday", "where": {"field": "contact.first_name", "op": "exists"}}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "Happy birthday {{ contact.first_name }}", "ignore_quiet_hours": true}}}');
SELECT journey.create_flow('bday2', '{"triggers": [{"type": "date", "field": "attributes.since", "offset_days": 7}], "start": "s",
  "nodes": {"s": {"type": "send_sms", "text": "A week already", "ignore_quiet_hours": true}}}');
SELECT journey.create_flow('forked', '{"triggers": [{"type": "manual"}], "start": "f",
  "nodes": {"f": {"type": "fork", "next": ["a", "b"]}, "a": {"type": "goal", "name": "a"}, "b": {"type": "goal", "name": "b"}}}');
SELECT journey.activate_flow(f) FROM unnest(ARRAY['welcome', 'signup', 'buyer', 'waiter', 'manual', 'bday', 'forked']) f;
-- one contact per attacker, each in both groups, run to the check and wait_event nodes: the
-- outbox has an SMS per contact (for the relays), the enrollments wait for a report or an event
SELECT journey.upsert_contact(jsonb_build_object('first_name', n, 'phone', '+1555' || lpad(i::text, 7, '0'), 'email', n || '@example.com'))
  FROM unnest(ARRAY['app', 'relay', 'admin']) WITH ORDINALITY AS u (n, i);
SELECT journey.add_to_group(c, g) FROM generate_series(1, 3) c, unnest(ARRAY['newsletter', 'waiters']) g;
SELECT journey.run_due(100);
SELECT id, contact_id, status FROM journey.outbox ORDER BY id;

-- ---------------------------------------------------------------- the app
\set attacker atk_app
\c - atk_app
\set VERBOSITY terse
SET client_min_messages = warning;
\set ECHO none
\i tests/pg_regress/include/arm_hostile.sql
\set ECHO all
-- trigger functions of group_members (_on_group_joined -> _enroll): add_to_group and INSERT
SELECT journey.add_to_group(journey.upsert_contact('{"first_name": "Eve", "phone": "+16660000000", "email": "eve@example.com"}'), 'newsletter');
INSERT INTO journey.group_members (group_id, contact_id) SELECT id, 1 FROM journey.groups WHERE name = 'newsletter' ON CONFLICT DO NOTHING;
INSERT INTO journey.group_members (group_id, contact_id) SELECT id, 4 FROM journey.groups WHERE name = 'waiters';
SELECT journey.remove_from_group(4, 'newsletter'), journey.add_to_group(4, 'newsletter');
-- trigger functions of form_submissions (_on_form_submission, _on_form_submitted -> _enroll)
SELECT journey.submit_form('signup', '{"mail": "app@example.com", "name": "App", "city": "Oslo"}') IS NOT NULL AS submitted;
INSERT INTO journey.form_submissions (form_id, data) SELECT id, '{"mail": "new@example.com", "name": "New"}' FROM journey.forms;
-- trigger functions of events (_on_event, _on_event_inserted -> _matches, _enroll, _event_arrived)
SELECT journey.emit('purchase', 1, '{"amount": 5, "plan": "pro"}') IS NOT NULL AS emitted;
SELECT journey.emit('paid', 1) IS NOT NULL AS emitted;
INSERT INTO journey.events (name, contact_id, payload) VALUES ('purchase', 4, '{"amount": 7}'), ('paid', 4, '{}');
-- enroll (-> _enroll)
SELECT journey.enroll('manual', 1) IS NOT NULL AS enrolled;
-- contacts' phone and date triggers (_on_contact_phone, _on_contacts_dated, _on_contacts_redated
-- -> _date_schedule)
INSERT INTO journey.contacts (first_name, phone, birthday) VALUES ('Dated', '+1 (555) 000-0042', '1990-01-02');
UPDATE journey.contacts SET birthday = '1990-01-03', phone = '+1 555 000 0043' WHERE first_name = 'Dated';
SELECT phone FROM journey.contacts WHERE first_name = 'Dated';
-- deleting a contact (_delete_contact_enrollments -> _delete_steps)
DELETE FROM journey.contacts WHERE first_name = 'New';
SELECT journey.upsert_contact('{"first_name": "Gone", "phone": "+17770000000"}') AS gone \gset
SELECT journey.add_to_group(:gone, 'newsletter');
DELETE FROM journey.contacts WHERE id = :gone;
-- reads as the app (SECURITY INVOKER)
SELECT count(*) > 0 AS timeline FROM journey.timeline(1);
SELECT node, reached FROM journey.flow_stats('welcome');
SELECT goal, reached FROM journey.goal_stats('welcome');
SELECT length(journey.flow_diagram('welcome')) > 0 AS diagram;
-- what the app may not call stops at the permission check
SELECT * FROM journey.claim();
SELECT journey.report('x', 'delivered');
SELECT journey.pause_flow('welcome');
SELECT journey._enroll(ARRAY[1::bigint], ARRAY[1::bigint], ARRAY['{}'::pg_catalog.jsonb]);
SELECT rolsuper AS i_am_superuser FROM pg_catalog.pg_roles WHERE rolname = current_user;
SELECT pg_stat_force_next_flush();
\i tests/pg_regress/include/hostile_outcome.sql

-- ---------------------------------------------------------------- the relay
\set attacker atk_relay
\c - atk_relay
\set VERBOSITY terse
SET client_min_messages = warning;
\set ECHO none
\i tests/pg_regress/include/arm_hostile.sql
\set ECHO all
SELECT id AS sent_id, lease_token AS sent_token FROM journey.claim(ARRAY['sms'], 1) \gset
SELECT journey.mark_sent(:sent_id, 'prov-relay', :'sent_token');
SELECT id AS failed_id, lease_token AS failed_token FROM journey.claim(NULL, 1, '1 minute') \gset
SELECT journey.mark_failed(:failed_id, 'provider down', true, :'failed_token');
SELECT count(*) AS claimed FROM journey.claim(ARRAY['sms', 'email'], 100, '10 minutes');
-- foreign and missing tokens, arguments of the attacker's own types
SELECT journey.mark_sent(:failed_id, 'x', gen_random_uuid()), journey.mark_failed(:sent_id, 'x', false, NULL);
SELECT journey.mark_sent(:sent_id, 'prov-relay'::pg_temp.text, :'sent_token'::pg_temp.uuid);
-- report wakes the check node waiting on the message (-> _status_rank, _wake)
SELECT journey.report('prov-relay', 'delivered', 'ev-1'), journey.report('prov-relay', 'clicked', 'ev-2'::pg_temp.text, now()::pg_temp.timestamptz);
SELECT journey.report('prov-relay', 'delivered', 'ev-1');
-- an inbound SMS (receive_sms), a STOP among them
SELECT journey.receive_sms('+15550000001', 'hello', 'in-1') IS NOT NULL AS received, journey.receive_sms('+15550000002', 'STOP', 'in-2') IS NOT NULL AS stopped;
-- nothing else
SELECT journey.upsert_contact('{"phone": "+10000000000"}');
INSERT INTO journey.group_members (group_id, contact_id) VALUES (1, 1);
SELECT count(*) FROM journey.outbox;
SELECT rolsuper AS i_am_superuser FROM pg_catalog.pg_roles WHERE rolname = current_user;
SELECT pg_stat_force_next_flush();
\i tests/pg_regress/include/hostile_outcome.sql

-- ---------------------------------------------------------------- the admin
\set attacker atk_admin
\c - atk_admin
\set VERBOSITY terse
SET client_min_messages = warning;
\set ECHO none
\i tests/pg_regress/include/arm_hostile.sql
\set ECHO all
-- everything the app and the relay reached, and deleting a flow version
-- (_delete_version_enrollments -> _delete_steps)
SELECT journey.add_to_group(journey.upsert_contact('{"first_name": "Mallory", "phone": "+18880000000"}'), 'newsletter');
SELECT journey.submit_form('signup', '{"mail": "mallory@example.com", "name": "Mallory"}') IS NOT NULL AS submitted;
SELECT journey.emit('purchase', 3, '{"amount": 9}') IS NOT NULL AS emitted, journey.emit('paid', 3) IS NOT NULL AS emitted;
SELECT journey.enroll('manual', 3) IS NOT NULL AS enrolled;
SELECT journey._enroll(ARRAY[id], ARRAY[2::bigint], ARRAY['{}'::pg_catalog.jsonb]) IS NOT NULL AS enrolled FROM journey.flows WHERE name = 'manual';
SELECT journey.run_due(100) > 0 AS ran;
SELECT id AS sent_id, lease_token AS sent_token FROM journey.claim(ARRAY['sms'], 1) \gset
SELECT journey.mark_sent(:sent_id, 'prov-admin', :'sent_token');
SELECT id AS failed_id, lease_token AS failed_token FROM journey.claim(NULL, 1) \gset
SELECT journey.mark_failed(:failed_id, 'provider down', false, :'failed_token');
SELECT journey.report('prov-admin', 'delivered', 'ev-3');
SELECT journey.update_flow('signup', (SELECT definition FROM journey.flow_versions v JOIN journey.flows f ON f.id = v.flow_id WHERE f.name = 'signup'));
DELETE FROM journey.flow_versions v USING journey.flows f WHERE f.id = v.flow_id AND f.name = 'signup' AND v.version = 1;
DELETE FROM journey.contacts WHERE first_name = 'Mallory';
UPDATE journey.settings SET admin_email = 'ops@example.com';
INSERT INTO journey.settings (time_zone) VALUES ('UTC');
-- date flows: activation (_date_schedule_flow), a zone change (_on_settings_redated), a due
-- occurrence (_date_pass -> _enroll_occurrences)
SELECT journey.activate_flow('bday2');
UPDATE journey.settings SET time_zone = 'Europe/Oslo';
UPDATE journey.date_schedule SET fire_at = now() - interval '1 minute';
SELECT journey.run_due(100) >= 0 AS ran;
SELECT count(*) > 0 AS birthdays FROM journey.enrollments WHERE occurrence ~ '^[0-9]{4}-';
-- quotas: a send refused (_quota_exhausted), credit added (_quota_raised)
UPDATE journey.settings SET sms_quota = 0;
SELECT journey.enroll('manual', journey.upsert_contact('{"first_name": "Trudy", "phone": "+18880000001"}')) IS NOT NULL AS enrolled;
SELECT journey.run_due(100) >= 0 AS ran;
SELECT status, paused_reason FROM journey.flows WHERE name = 'manual';
SELECT journey.add_quota('sms', 10);
SELECT status FROM journey.flows WHERE name = 'manual';
-- a fork's branches ending (_branch_ended), a retention pass (_retention_pass)
SELECT journey.enroll('forked', journey.upsert_contact('{"first_name": "Forky", "phone": "+18880000002"}')) IS NOT NULL AS enrolled;
SELECT journey.run_due(100) >= 0 AS ran;
SELECT journey.run_due(100) >= 0 AS ran;
SELECT e.status FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id WHERE f.name = 'forked' AND e.parent_id IS NULL;
UPDATE journey.settings SET keep_sent_messages = '1 day', keep_ended_enrollments = '1 day';
SELECT messages >= 0 AS passed FROM journey._retention_pass(0, 0, 100, 10);
-- record types: a table of the admin's own attached, linked and written by a flow
-- (_on_record_written enrolls; update_record and create_record run as its owner)
CREATE TABLE public.atk_orders (id int PRIMARY KEY, contact_id bigint, status text);
SELECT journey.attach_table('public.atk_orders', 'contact_id'), journey.link('atk_orders', 'me', 'public.atk_orders', 'id'),
       journey.allow_writes('public.atk_orders');
SELECT journey.create_flow('orders', '{"triggers": [{"type": "record", "record": "atk_orders", "changed": ["status"]}], "start": "u",
  "nodes": {"u": {"type": "update_record", "set": {"status": "seen {{ record.me.id }}"}, "next": "c"},
            "c": {"type": "create_record", "table": "public.atk_orders", "values": {"id": "{{ record.id | plus: 100 }}", "status": "copy"}}}}');
SELECT journey.activate_flow('orders');
INSERT INTO public.atk_orders VALUES (1, 1, 'new');
SELECT journey.run_due(100) >= 0 AS ran;
SELECT id, status FROM public.atk_orders ORDER BY id;
SELECT journey.archive_flow('orders');
SELECT journey.detach_table('atk_orders');
-- an external_id changed (_contact_key_changed keeps contact_keys)
UPDATE journey.contacts SET external_id = 'atk-forky' WHERE first_name = 'Forky';
-- counters: compaction, the recount and the stats that read them; a deleted flow's counters
SELECT journey.compact_counters(1000) >= 0 AS compacted;
SELECT count(*) >= 0 AS recounted FROM journey.counter_differences();
SELECT count(*) >= 0 AS n FROM journey.node_stats('welcome');
SELECT count(*) >= 0 AS n FROM journey.message_stats('welcome');
SELECT count(*) >= 0 AS n FROM journey.split_stats('welcome');
SELECT journey.delete_flow('orders');
SELECT rolsuper AS i_am_superuser FROM pg_catalog.pg_roles WHERE rolname = current_user;
SELECT pg_stat_force_next_flush();
\i tests/pg_regress/include/hostile_outcome.sql

-- ---------------------------------------------------------------- every definer function was attacked
SELECT p.oid::regprocedure AS never_reached FROM pg_proc p
 WHERE p.pronamespace = 'journey'::regnamespace AND p.prosecdef
   AND p.oid NOT IN (SELECT funcid FROM definer_calls_reached)
 ORDER BY p.oid::regprocedure::text;
SELECT count(*) AS definer_functions FROM pg_proc WHERE pronamespace = 'journey'::regnamespace AND prosecdef;
-- and their search_path puts pg_temp last
SELECT p.oid::regprocedure AS unpinned FROM pg_proc p
 WHERE p.pronamespace = 'journey'::regnamespace AND p.prosecdef
   AND NOT coalesce('search_path=pg_catalog, journey, pg_temp' = ANY (p.proconfig), false)
 ORDER BY p.oid::regprocedure::text;
SELECT rolname, rolsuper FROM pg_roles WHERE rolname LIKE 'atk\_%' ORDER BY 1;
