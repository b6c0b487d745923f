-- journey.forget_contact: an erasure request removes the contact and everything about it, and
-- nothing of anyone else.
\i tests/pg_regress/include/welcome.sql
\set SHOW_CONTEXT never
INSERT INTO journey.forms (name, field_map) VALUES ('signup', '{"mail": "email"}');
SELECT journey.define_event('paid', '[]');
SELECT journey.activate_flow('welcome');
SELECT pg_temp.contact('Dana') AS dana \gset
SELECT pg_temp.contact('Eli') AS eli \gset
UPDATE journey.contacts SET birthday = '1990-05-01';
-- everything about both: memberships, a submission, an event, enrollments, steps, messages, a
-- delivery report
SELECT journey.add_to_group(c, 'newsletter'), journey.add_to_group(c, 'vip') FROM unnest(ARRAY[:dana, :eli]::bigint[]) c;
SELECT journey.submit_form('signup', jsonb_build_object('mail', lower(first_name) || '@example.com')) IS NOT NULL AS submitted FROM journey.contacts;
SELECT journey.emit('paid', c) IS NOT NULL AS emitted FROM unnest(ARRAY[:dana, :eli]::bigint[]) c;
SELECT journey.run_due(10);
SELECT id AS o, lease_token AS t FROM journey.claim(ARRAY['sms'], 1) \gset
SELECT journey.mark_sent(:o, 'prov-1', :'t');
SELECT journey.report('prov-1', 'delivered', 'ev-1');
CREATE FUNCTION pg_temp.about(c bigint) RETURNS TABLE (tbl text, n bigint) LANGUAGE sql AS $$
  SELECT 'contacts', count(*) FROM journey.contacts WHERE id = c
  UNION ALL SELECT 'group_members', count(*) FROM journey.group_members WHERE contact_id = c
  UNION ALL SELECT 'form_submissions', count(*) FROM journey.form_submissions WHERE contact_id = c
  UNION ALL SELECT 'events', count(*) FROM journey.events WHERE contact_id = c
  UNION ALL SELECT 'enrollments', count(*) FROM journey.enrollments WHERE contact_id = c
  UNION ALL SELECT 'steps', count(*) FROM journey.steps WHERE contact_id = c
  UNION ALL SELECT 'outbox', count(*) FROM journey.outbox WHERE contact_id = c
  UNION ALL SELECT 'delivery_reports', count(*) FROM journey.delivery_reports WHERE contact_id = c
$$;
SELECT d.tbl, d.n AS dana, e.n AS eli FROM pg_temp.about(:dana) d JOIN pg_temp.about(:eli) e USING (tbl);
SELECT journey.forget_contact(:dana);
SELECT d.tbl, d.n AS dana, e.n AS eli FROM pg_temp.about(:dana) d JOIN pg_temp.about(:eli) e USING (tbl);
-- again, or someone who never was: false; NULL: an error
SELECT journey.forget_contact(:dana), journey.forget_contact(999999);
SELECT journey.forget_contact(NULL);
\echo :SQLSTATE
