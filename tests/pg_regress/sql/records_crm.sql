-- Seed 001's catalogue on a CRM's own tables, with no code in the app: new lead, call logged,
-- meeting booked, quote, invoice issued, payment received, ticket opened, status changed. Each
-- runs end to end: the app's INSERT or UPDATE -> enrollment -> outbox rows and changed records.
-- The app role owns its tables and has no grant on journey's: its writes enroll all the same,
-- and it cannot attach tables; an admin attaches only tables it may read and trigger.
\set ON_ERROR_ROLLBACK on
\i tests/pg_regress/include/welcome.sql
CREATE ROLE crm_app;
CREATE ROLE crm_admin;
SELECT journey.grant_role('crm_admin', 'admin');
GRANT USAGE, CREATE ON SCHEMA public TO crm_app;
SET ROLE crm_app;
CREATE TABLE public.accounts (id int PRIMARY KEY, name text NOT NULL, owner_email text);
CREATE TABLE public.leads (id int PRIMARY KEY, email text, name text, source text);
CREATE TABLE public.calls (id int PRIMARY KEY, contact_id bigint, result text);
CREATE TABLE public.meetings (id int PRIMARY KEY, customer text, starts_at timestamptz, place text);
CREATE TABLE public.quotes (id int PRIMARY KEY, contact_id bigint, account_id int, total numeric, status text DEFAULT 'open');
CREATE TABLE public.invoices (id int PRIMARY KEY, contact_id bigint, account_id int, amount numeric,
                              status text DEFAULT 'issued', billing_email text);
CREATE TABLE public.payments (id int PRIMARY KEY, contact_id bigint, invoice_id int, amount numeric);
CREATE TABLE public.tickets (id int PRIMARY KEY, phone text, subject text, priority text);
CREATE TABLE public.deals (id int PRIMARY KEY, contact_id bigint, title text, stage text);
CREATE TABLE public.tasks (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, title text NOT NULL, contact_id bigint, about text);
GRANT SELECT, INSERT, UPDATE, TRIGGER ON ALL TABLES IN SCHEMA public TO crm_admin;
RESET ROLE;
SELECT pg_temp.contact('Ann') AS ann, pg_temp.contact('Bob') AS bob \gset
UPDATE journey.contacts SET external_id = 'c-' || lower(first_name);

-- the app role cannot attach; an admin cannot attach what it may not trigger
SET ROLE crm_app;
SELECT journey.attach_table('public.leads', 'email', 'email');
\echo :SQLSTATE
RESET ROLE;
CREATE TABLE public.secret (id int PRIMARY KEY, contact_id bigint, token text);
SET ROLE crm_admin;
SELECT journey.attach_table('public.secret', 'contact_id');
\echo :SQLSTATE
SELECT journey.link('invoices', 'secret', 'public.secret', 'id');
\echo :SQLSTATE
-- the admin attaches the CRM's tables (each by the column holding its contact)
SELECT journey.attach_table('public.leads', 'email', 'email'),
       journey.attach_table('public.calls', 'contact_id'),
       journey.attach_table('public.meetings', 'customer', 'external_id'),
       journey.attach_table('public.quotes', 'contact_id'),
       journey.attach_table('public.invoices', 'contact_id'),
       journey.attach_table('public.payments', 'contact_id'),
       journey.attach_table('public.tickets', 'phone', 'phone'),
       journey.attach_table('public.deals', 'contact_id');
SELECT journey.link('invoices', 'account', 'public.accounts', 'account_id'),
       journey.link('quotes', 'account', 'public.accounts', 'account_id'),
       journey.link('payments', 'invoice', 'public.invoices', 'invoice_id');
SELECT journey.link('invoices', 'secret', 'public.secret', 'id');
\echo :SQLSTATE
SELECT journey.allow_writes('public.tasks');
RESET ROLE;
SELECT name, match, writable FROM journey.record_types ORDER BY name;

-- one flow per catalogue entry
CREATE FUNCTION pg_temp.flow(name text, trig jsonb, nodes jsonb, start text) RETURNS void LANGUAGE sql AS $$
  SELECT journey.create_flow(name, jsonb_build_object('triggers', jsonb_build_array(trig), 'start', start, 'nodes', nodes));
  SELECT journey.activate_flow(name);
$$;
-- new lead: welcome e-mail and a task for sales
SELECT pg_temp.flow('new_lead', '{"type": "record", "record": "leads", "on": ["insert"]}', '{
  "hi":   {"type": "send_email", "subject": "Welcome {{ record.name }}", "body": "Thanks for finding us via {{ record.source }}.", "next": "task"},
  "task": {"type": "create_record", "table": "public.tasks", "values": {"title": "Call lead {{ record.name }}", "contact_id": "{{ contact.id }}", "about": "lead {{ record.id }}"}}}', 'hi');
-- call logged: a missed call gets an SMS
SELECT pg_temp.flow('call_logged', '{"type": "record", "record": "calls", "on": ["insert"], "where": {"field": "record.result", "op": "=", "value": "missed"}}', '{
  "sms": {"type": "send_sms", "text": "Sorry we missed you, {{ contact.first_name }}. We will call back.", "sender": "ACME"}}', 'sms');
-- meeting booked: a confirmation with the time and place
SELECT pg_temp.flow('meeting_booked', '{"type": "record", "record": "meetings", "on": ["insert"]}', '{
  "mail": {"type": "send_email", "subject": "Meeting confirmed", "body": "See you at {{ record.place }} on {{ record.starts_at }}."}}', 'mail');
-- quote: sent to the contact and the account's owner, a follow-up task three days later
SELECT pg_temp.flow('quote_sent', '{"type": "record", "record": "quotes", "on": ["insert"]}', '{
  "mail": {"type": "send_email", "subject": "Your quote from {{ record.account.name }}", "body": "Total: {{ record.total }}",
           "to": ["contact"], "cc": ["record.account.owner_email"], "next": {"to": "follow", "delay": "3 days"}},
  "follow": {"type": "create_record", "table": "public.tasks", "values": {"title": "Follow up quote {{ record.id }}", "contact_id": "{{ contact.id }}", "about": "quote {{ record.id }}"}}}', 'mail');
-- invoice issued: to the billing address, and the invoice marked sent
SELECT pg_temp.flow('invoice_issued', '{"type": "record", "record": "invoices", "on": ["insert"]}', '{
  "mail": {"type": "send_email", "subject": "Invoice {{ record.id }}", "body": "{{ record.amount }} for {{ record.account.name }}",
           "to": ["record.billing_email"], "next": "mark"},
  "mark": {"type": "update_record", "set": {"status": "sent"}}}', 'mail');
-- payment received: the paid invoice (a link) marked paid, a receipt by SMS
SELECT pg_temp.flow('payment_received', '{"type": "record", "record": "payments", "on": ["insert"]}', '{
  "paid": {"type": "update_record", "target": "invoice", "set": {"status": "paid"}, "next": "sms"},
  "sms":  {"type": "send_sms", "text": "Received {{ record.amount }} for invoice {{ record.invoice.id }} of {{ record.invoice.amount }}. Thank you!", "sender": "ACME"}}', 'paid');
-- ticket opened: urgent ones tell the admin; every one gets an acknowledgement
SELECT pg_temp.flow('ticket_opened', '{"type": "record", "record": "tickets", "on": ["insert"]}', '{
  "urgent": {"type": "condition", "if": {"field": "record.priority", "op": "=", "value": "high"}, "then": "admin", "else": "ack"},
  "admin":  {"type": "notify_admin", "subject": "Urgent ticket {{ record.id }}", "text": "{{ record.subject }} from {{ contact.first_name }}", "next": "ack"},
  "ack":    {"type": "send_sms", "text": "Ticket {{ record.id }} received: {{ record.subject }}", "sender": "ACME"}}', 'urgent');
-- status changed: a deal moved to won (from any other stage)
SELECT pg_temp.flow('deal_won', '{"type": "record", "record": "deals", "on": ["update"], "changed": ["stage"], "where": {"field": "record.stage", "op": "=", "value": "won"}}', '{
  "mail": {"type": "send_email", "subject": "Welcome aboard", "body": "{{ record.title }}: {{ old.stage }} -> {{ record.stage }}", "next": "won"},
  "won":  {"type": "goal", "name": "won"}}', 'mail');
UPDATE journey.settings SET admin_email = 'admin@acme.test', quiet_hours_start = '00:00', quiet_hours_end = '00:00';

-- the app writes its own tables, as itself
SET ROLE crm_app;
INSERT INTO public.accounts VALUES (1, 'Acme', 'owner@acme.test');
INSERT INTO public.leads VALUES (1, 'ANN@example.com', 'Ann A.', 'webinar'), (2, 'nobody@example.com', 'Zed', 'ads');
INSERT INTO public.calls VALUES (1, :ann, 'missed'), (2, :bob, 'answered');
INSERT INTO public.meetings VALUES (1, 'c-bob', '2026-12-10 14:30+00', 'the office');
INSERT INTO public.quotes VALUES (1, :ann, 1, 1200);
INSERT INTO public.invoices VALUES (7, :bob, 1, 300, 'issued', 'ap@bob.test'), (8, :ann, 1, 80, 'issued', NULL);
RESET ROLE;
-- (the app cannot read journey.contacts: the ticket row carries the phone the app knows)
SELECT phone AS bob_phone FROM journey.contacts WHERE id = :bob \gset
SET ROLE crm_app;
INSERT INTO public.tickets VALUES (1, :'bob_phone', 'Cannot log in', 'high'), (2, :'bob_phone', 'Question', 'low');
INSERT INTO public.deals VALUES (1, :ann, 'Big deal', 'proposal');
UPDATE public.deals SET title = 'Bigger deal';
UPDATE public.deals SET stage = 'won';
RESET ROLE;
SELECT f.name AS flow, c.first_name, e.record_type, e.record_key
FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id JOIN journey.contacts c ON c.id = e.contact_id
ORDER BY f.name, e.record_key;
SELECT name, unmatched FROM journey.record_types WHERE unmatched > 0;
SELECT journey.run_due(100, now());
-- payments come after the invoice was sent
SET ROLE crm_app;
INSERT INTO public.payments VALUES (1, :bob, 7, 300);
RESET ROLE;
SELECT journey.run_due(100, now());
SELECT journey.run_due(100, now() + interval '3 days 1 minute');
SELECT f.name AS flow, o.channel, o.recipient, o.payload, o.subject, o.body
FROM journey.outbox o JOIN journey.flows f ON f.id = o.flow_id ORDER BY f.name, o.id;
SELECT title, contact_id = :ann AS ann, about FROM public.tasks ORDER BY id;
SELECT id, status FROM public.invoices ORDER BY id;
SELECT f.name AS flow, s.node, s.outcome FROM journey.steps s JOIN journey.flows f ON f.id = s.flow_id
WHERE s.outcome NOT IN ('sent', 'updated', 'record created') ORDER BY f.name, s.id;
SELECT * FROM journey.goal_stats('deal_won');
SELECT kind, flow, node, detail FROM journey.record_timeline('invoices', '7');
