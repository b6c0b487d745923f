//! `journey.test_send`: one send node of a flow's current version rendered for a contact by the
//! engine's own node code (engine/nodes/send.rs) and written to the outbox as a test row
//! (`test = true`, key `test:<uuid>`, no enrollment). Nothing is enrolled, no step is written
//! (stats and timelines do not see it), no quota is charged and quiet hours do not hold it
//! back. Without `recipient` the message goes where a real send would (the contact's phone or
//! e-mail, the node's `to`, settings.admin_email) and the contact's opt-out is honoured (a send
//! the engine would suppress is an error); with `recipient` it goes there, whatever the
//! contact's opt-outs (the contact's missing phone or e-mail reads as the recipient).
use super::flows::load_flow;
use crate::engine::batch::{LockTimeout, Message, SenderNames, Templates};
use crate::engine::claim::{flow_value, Enrollment, Settings};
use crate::engine::clock;
use crate::engine::nodes::{self, Context, Outcome};
use crate::error::{required, JourneyError, OrReport, Result};
use crate::model::{FlowDef, Node, NodeKind};
use crate::render::contact::{Contact, Stamp};
use crate::render::event::Event;
use crate::render::template;
use chrono::NaiveTime;
use chrono_tz::Tz;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use pgrx::JsonB;

const SEND_TYPES: &str = "send_sms, send_email, send_whatsapp or notify_admin";

/// The send node `id` of `def`, or an error naming it (and its type).
fn send_node<'d>(flow: &str, version: i32, def: &'d FlowDef, id: &str) -> Result<&'d Node> {
    let Some(node) = def.nodes.get(id) else {
        return Err(JourneyError::InvalidArgument {
            argument: "node".into(),
            reason: format!("flow \"{flow}\" has no node \"{id}\" in version {version}"),
            hint: format!(
                "SELECT jsonb_object_keys(definition->'nodes') FROM journey.flow_versions v JOIN journey.flows f \
                 ON f.id = v.flow_id AND v.version = f.version WHERE f.name = '{flow}' lists its nodes."
            ),
        });
    };
    match node.kind {
        NodeKind::SendSms { .. }
        | NodeKind::SendEmail { .. }
        | NodeKind::SendWhatsapp { .. }
        | NodeKind::NotifyAdmin { .. } => Ok(node),
        _ => Err(JourneyError::InvalidArgument {
            argument: "node".into(),
            reason: format!(
                "node \"{id}\" of flow \"{flow}\" is a {} node, not a send",
                node.type_name()
            ),
            hint: format!("test_send renders a {SEND_TYPES} node."),
        }),
    }
}

/// The settings a test send renders with (quotas are not read: a test send is not counted).
fn settings() -> Result<Settings> {
    let time = |t: Option<String>| {
        t.and_then(|t| NaiveTime::parse_from_str(&t, "%H:%M:%S").ok())
            .unwrap_or(NaiveTime::MIN)
    };
    Spi::connect(|client| {
        let row = client
            .select(
                "SELECT quiet_hours_start::text, quiet_hours_end::text, sms_unsubscribe_text, \
                     admin_email, max_attempts, max_message_bytes, max_sms_segments \
                 FROM journey.settings",
                None,
                &[],
            )?
            .first();
        Ok(Settings {
            quiet_start: time(row.get(1)?),
            quiet_end: time(row.get(2)?),
            unsubscribe_text: row.get(3)?.unwrap_or_default(),
            admin_email: row.get(4)?,
            max_attempts: row.get(5)?.unwrap_or(5),
            max_message_bytes: row.get::<i32>(6)?.unwrap_or(262_144).max(0) as usize,
            max_sms_segments: row.get(7)?.unwrap_or(10),
            quotas: [None, None, None],
        })
    })
}

/// A date as `YYYY-MM-DD` (as the claim gives templates).
fn iso_date(d: pgrx::datum::Date) -> String {
    if d.is_infinity() {
        "infinity".into()
    } else if d.is_neg_infinity() {
        "-infinity".into()
    } else {
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    }
}

/// The contact `id` as templates see it, and its zone; None when there is no such contact.
fn contact(id: i64) -> Result<Option<(Contact, Tz)>> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT c.external_id, c.email, c.phone, c.first_name, c.last_name, c.birthday, \
                 nullif(c.attributes, '{}')::text, c.email_opt_out, c.sms_opt_out, c.created_at, \
                 c.updated_at, c.time_zone, coalesce(c.time_zone, s.time_zone) \
             FROM journey.contacts c CROSS JOIN journey.settings s WHERE c.id = $1",
            None,
            &[id.into()],
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        let attributes = match row.get::<String>(7)? {
            None => liquid::Object::new(),
            Some(text) => template::parse_object(&text).ok_or_else(|| JourneyError::InvalidArgument {
                argument: "contact".into(),
                reason: format!("contact {id}'s attributes cannot be read"),
                hint: "Numbers must fit a double (±1.7e308) and nesting must stay under 128 levels.".into(),
            })?,
        };
        let stamp = |t: Option<TimestampWithTimeZone>| Stamp::new(t.and_then(clock::to_chrono));
        let contact = Contact {
            id,
            external_id: row.get(1)?,
            email: row.get(2)?,
            phone: row.get(3)?,
            first_name: row.get(4)?,
            last_name: row.get(5)?,
            birthday: row.get::<pgrx::datum::Date>(6)?.map(iso_date),
            attributes: liquid::model::Value::Object(attributes),
            email_opt_out: row.get(8)?.unwrap_or(false),
            sms_opt_out: row.get(9)?.unwrap_or(false),
            created_at: stamp(row.get(10)?),
            updated_at: stamp(row.get(11)?),
            time_zone: row.get(12)?,
        };
        let zone = row
            .get::<String>(13)?
            .and_then(|z| z.parse().ok())
            .unwrap_or(Tz::UTC);
        Ok(Some((contact, zone)))
    })
}

/// With an explicit recipient the contact's opt-outs do not hold the message back, and a
/// missing address (or admin address) is the recipient's.
fn address_to(recipient: &str, contact: &mut Contact, settings: &mut Settings) {
    contact.sms_opt_out = false;
    contact.email_opt_out = false;
    let blank = |a: &Option<String>| a.as_deref().is_none_or(|a| a.trim().is_empty());
    if blank(&contact.phone) {
        contact.phone = Some(recipient.to_string());
    }
    if blank(&contact.email) {
        contact.email = Some(recipient.to_string());
    }
    if blank(&settings.admin_email) {
        settings.admin_email = Some(recipient.to_string());
    }
}

/// The node rendered for the enrollment-to-be `e` by the engine's send code.
fn render(e: &Enrollment, node: &Node, settings: &Settings) -> Result<Message> {
    let (mut templates, mut lock_timeout) = (Templates::default(), LockTimeout::default());
    let mut sender_names = SenderNames::default();
    let mut cx = Context {
        settings,
        now: chrono::Utc::now(),
        seq: 1,
        templates: &mut templates,
        sender_names: &mut sender_names,
        lock_timeout: &mut lock_timeout,
        messages: &[],
        interrupts: nodes::postgres_interrupts,
        opted_out: crate::engine::store::opted_out_emails,
    };
    match nodes::send::run(e, node, &mut cx)? {
        Outcome::Sent(message) => Ok(*message),
        Outcome::Suppressed(reason) => Err(JourneyError::InvalidArgument {
            argument: "contact".into(),
            reason: format!(
                "a send of node \"{}\" to contact {} is suppressed: {reason}",
                node.id, e.contact_id
            ),
            hint:
                "Pass recipient => '<address>' to send the test there (opt-outs then do not apply)."
                    .into(),
        }),
        _ => unreachable!("a send node sends or is suppressed"),
    }
}

/// Writes the test message; returns its outbox id.
fn write(m: &Message) -> Result<i64> {
    let id = Spi::get_one_with_args::<i64>(
        // (in a WITH: get_one runs the query with a row limit of 1, which would stop a top-level
        // INSERT before its statement-level AFTER triggers, the outbox's CDC trigger among them)
        "WITH m AS (INSERT INTO journey.outbox (idempotency_key, channel, flow_id, enrollment_id, node, contact_id, \
             recipient, sender, subject, body, payload, sms_encoding, sms_segments, test) \
         VALUES ('test:' || gen_random_uuid(), $1, $2, NULL, $3, $4, $5, $6, $7, $8, $9, $10, $11, true) \
         RETURNING id) SELECT id FROM m",
        &[
            m.channel.into(),
            m.flow_id.into(),
            m.node.as_str().into(),
            m.contact_id.into(),
            m.recipient.clone().into(),
            m.sender.clone().into(),
            m.subject.clone().into(),
            m.body.clone().into(),
            m.payload.clone().map(JsonB).into(),
            m.sms_encoding.into(),
            m.sms_segments.into(),
        ],
    )?;
    Ok(id.unwrap_or_default())
}

/// `journey.test_send(flow, node, contact, recipient) → bigint`: see the module comment.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn test_send(
    flow: Option<&str>,
    node: Option<&str>,
    contact: Option<i64>,
    recipient: default!(Option<&str>, "NULL"),
) -> i64 {
    (|| -> Result<i64> {
        // the shared lock: delete_flow (exclusive) waits for this row and names it
        let f = load_flow(flow, Some(false))?;
        let node = required(node, "node", "Pass the id of a send node of the flow.")?;
        let (def, _) = FlowDef::parse(&f.definition);
        let node = send_node(&f.name, f.version, &def, node)?;
        let contact_id = required(
            contact,
            "contact",
            "Pass a contact id from journey.contacts.",
        )?;
        let (mut c, zone) =
            self::contact(contact_id)?.ok_or(JourneyError::UnknownContact(contact_id))?;
        let mut settings = settings()?;
        if let Some(r) = recipient {
            if r.trim().is_empty() {
                return Err(JourneyError::InvalidArgument {
                    argument: "recipient".into(),
                    reason: "it is empty".into(),
                    hint: "Pass a phone number or e-mail address, or NULL for the contact's own."
                        .into(),
                });
            }
            address_to(r, &mut c, &mut settings);
        }
        let e = Enrollment {
            id: 0,
            tid: Default::default(),
            contact_id,
            flow_id: f.id,
            version: f.version,
            node: node.id.clone(),
            seq: 0,
            flow_name: f.name.clone(),
            contact: c,
            event: Event::new(None),
            flow: flow_value(f.id, &f.name, f.version),
            contact_found: true,
            zone,
            waiting: None,
            attempts: 0,
            root: 0,
            unreadable: None,
            record_type: None,
        };
        let mut m = render(&e, node, &settings)?;
        if let Some(r) = recipient {
            m.recipient = Some(r.to_string());
        }
        write(&m)
    })()
    .or_report()
}

extension_sql!(
    r#"
COMMENT ON FUNCTION journey.test_send(text, text, bigint, text) IS 'Renders a send node (send_sms, send_email, send_whatsapp, notify_admin) of the flow''s current version for a contact and writes it to the outbox as a test message (test = true, idempotency_key test:<uuid>, no enrollment); returns its id. Relays claim it like any message. It enrolls nobody, writes no step (stats and timelines do not count it), charges no quota and ignores quiet hours. Without recipient it goes where a real send would and honours the contact''s opt-out (a suppressed send is an error); with recipient it goes there whatever the opt-outs (a missing phone or e-mail of the contact reads as the recipient in templates). The event is empty.';
"#,
    name = "test_send_comment",
    requires = [test_send]
);

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_send_nodes_are_test_sent() {
        let def = json!({"triggers": [{"type": "manual"}], "start": "s", "nodes": {
            "s": {"type": "send_sms", "text": "hi", "next": "w"},
            "w": {"type": "wait", "delay": "1 hour"}}});
        let (def, _) = FlowDef::parse(&def);
        assert!(send_node("f", 1, &def, "s").is_ok());
        let err = send_node("f", 1, &def, "w").err().unwrap().to_string();
        assert_eq!(
            err,
            "invalid node: node \"w\" of flow \"f\" is a wait node, not a send"
        );
        let err = send_node("f", 1, &def, "x").err().unwrap().to_string();
        assert_eq!(
            err,
            "invalid node: flow \"f\" has no node \"x\" in version 1"
        );
    }

    #[test]
    fn an_explicit_recipient_overrides_opt_outs_and_fills_missing_addresses() {
        let mut c = Contact {
            sms_opt_out: true,
            email: Some("dana@example.com".into()),
            ..Contact::default()
        };
        let mut s = crate::engine::nodes::testing::settings();
        s.admin_email = None;
        address_to("+15550009", &mut c, &mut s);
        assert!(!c.sms_opt_out);
        assert_eq!(c.phone.as_deref(), Some("+15550009"));
        assert_eq!(c.email.as_deref(), Some("dana@example.com"));
        assert_eq!(s.admin_email.as_deref(), Some("+15550009"));
    }
}
