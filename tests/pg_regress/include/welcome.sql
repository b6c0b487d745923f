-- The setup most regression files share: settings of the session, the groups newsletter and
-- vip, the welcome_email template, the draft flow welcome (SMS, an hour, the e-mail, a goal)
-- and pg_temp.contact(first_name).
\set SHOW_CONTEXT never
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
INSERT INTO journey.groups (name) VALUES ('newsletter'), ('vip');
INSERT INTO journey.templates (name, channel, subject, body)
VALUES ('welcome_email', 'email', 'Welcome {{ contact.first_name }}', 'Hello {{ contact.first_name }} from {{ flow.name }}');
SELECT journey.create_flow('welcome', '{
  "triggers": [{"type": "group_joined", "group": "newsletter"}],
  "start": "sms",
  "nodes": {
    "sms":  {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "sender": "ACME",
             "next": {"to": "mail", "delay": "1 hour"}},
    "mail": {"type": "send_email", "template": "welcome_email", "next": "won"},
    "won":  {"type": "goal", "name": "welcomed"}
  }}');
-- a contact named first, with phone +1555<first> and email <first>@example.com
CREATE FUNCTION pg_temp.contact(first text) RETURNS bigint LANGUAGE sql AS $$
  SELECT journey.upsert_contact(jsonb_build_object('first_name', first, 'phone', '+1555' || lpad((abs(hashtext(first)) % 10000000)::text, 7, '0'),
                                                   'email', lower(first) || '@example.com'))
$$;
