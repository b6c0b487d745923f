//! What each node does, one file per node family. Each family's `run` takes the enrollment, its
//! node and a [`Context`] and returns the node's [`Outcome`]: the `steps.outcome` it records,
//! the message it writes (if any), and where the enrollment goes next (an edge, parked on the
//! node until a time, the end of the flow). An `Err` fails the enrollment at the node (or, for
//! a transient Postgres error, retries it: `run` decides). Nodes read the database only
//! through `store`, and write only through their outcome (update_contact excepted).
pub mod branch;
pub mod check;
pub mod contact;
pub mod fork;
pub mod goal;
pub mod outcome;
pub mod recipients;
pub mod record;
pub mod send;
pub mod wait;

pub use outcome::{Outcome, Route};

use super::batch::{LockTimeout, Message, SenderNames, Templates};
use super::claim::{Enrollment, Settings};
use crate::error::{JourneyError, Result};
use crate::model::Node;
use crate::render::budget::Limits;
use crate::render::event::Part;
use crate::render::template;
use chrono::{DateTime, Utc};

/// Most bytes a short rendered field (subject, sender, recipient, URL, title) may have.
const SHORT_FIELD_BYTES: usize = 8192;

/// What a node runs with besides its enrollment and its definition.
pub struct Context<'b> {
    pub settings: &'b Settings,
    /// The batch's time (`run_due`'s `at`).
    pub now: DateTime<Utc>,
    /// The node's place among the nodes its enrollment entered (message keys
    /// `enrollment:node:seq`).
    pub seq: i32,
    /// The batch's templates, read by name once per batch.
    pub templates: &'b mut Templates,
    /// The names of the verified senders e-mails are sent from, read once per batch.
    pub sender_names: &'b mut SenderNames,
    /// The batch's lock_timeout, shortened by nodes that take row locks.
    pub lock_timeout: &'b mut LockTimeout,
    /// The messages the batch has written so far (not yet in the outbox).
    pub messages: &'b [Message],
    /// Raises a pending Postgres cancel or terminate; renders call it at every step.
    pub interrupts: fn(),
    /// Which of these lower-case e-mail addresses belong to a contact who opted out of e-mail
    /// (`store::opted_out_emails`; the unit tests pass a function of their own).
    pub opted_out: fn(&[String]) -> Result<Vec<String>>,
}

/// Raises the Postgres error of a pending cancel or terminate.
pub fn postgres_interrupts() {
    pgrx::check_for_interrupts!();
}

impl Context<'_> {
    /// Renders the Liquid `source` of `node`'s `field` for `e`: a body (`text`, `body`) may be
    /// settings.max_message_bytes long, another field SHORT_FIELD_BYTES.
    pub fn render(&self, e: &Enrollment, node: &Node, field: &str, source: &str) -> Result<String> {
        let limit = match field {
            "text" | "body" => self.settings.max_message_bytes,
            _ => SHORT_FIELD_BYTES,
        };
        let (record, old) = (Part::new(&e.event, "record"), Part::new(&e.event, "old"));
        let vars = template::Vars {
            contact: &e.contact,
            event: &e.event,
            flow: &e.flow,
            record: &record,
            old: &old,
        };
        let out = template::render_with(source, &vars, Limits::output(limit), self.interrupts);
        // event data that cannot be read is the error, whatever the render made of it
        match (e.event.error(), out) {
            (Some(why), _) => Err(render_error(e, node, field, why)),
            (None, out) => out.map_err(|message| render_error(e, node, field, message)),
        }
    }

    /// [`Context::render`] of an optional field.
    pub fn render_some(
        &self,
        e: &Enrollment,
        node: &Node,
        field: &str,
        source: Option<&str>,
    ) -> Result<Option<String>> {
        source.map(|s| self.render(e, node, field, s)).transpose()
    }
}

/// A render error of `node`'s `field`.
pub fn render_error(e: &Enrollment, node: &Node, field: &str, message: String) -> JourneyError {
    JourneyError::Render {
        flow: e.flow_name.clone(),
        node: node.id.clone(),
        message: format!("{field}: {message}"),
    }
}

/// A time `node` schedules that is past the range of timestamps.
pub fn out_of_range(e: &Enrollment, node: &str) -> JourneyError {
    JourneyError::Engine {
        flow: e.flow_name.clone(),
        message: format!("node \"{node}\": the time it schedules is out of range"),
    }
}

/// Enrollments, settings and contexts for the nodes' unit tests (no database).
#[cfg(test)]
pub mod testing {
    use super::*;
    use crate::render::contact::Contact;
    use crate::render::event::Event;

    pub fn settings() -> Settings {
        Settings {
            quiet_start: chrono::NaiveTime::from_hms_opt(21, 0, 0).unwrap(),
            quiet_end: chrono::NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
            unsubscribe_text: "STOP to end".into(),
            admin_email: Some("admin@example.com".into()),
            max_attempts: 5,
            max_message_bytes: 1000,
            max_sms_segments: 2,
            quotas: [None, None, None],
        }
    }

    /// Enrollment 1 of contact 7 (Dana, with a phone and an e-mail) in flow 3, at `node`.
    pub fn enrollment(node: &str) -> Enrollment {
        Enrollment {
            id: 1,
            tid: Default::default(),
            contact_id: 7,
            flow_id: 3,
            version: 1,
            node: node.into(),
            seq: 0,
            flow_name: "welcome".into(),
            contact: Contact {
                id: 7,
                first_name: Some("Dana".into()),
                phone: Some("+15550001".into()),
                email: Some("dana@example.com".into()),
                attributes: liquid::model::Value::Object(Default::default()),
                ..Contact::default()
            },
            event: Event::new(Some(r#"{"amount": 12}"#.into())),
            flow: std::rc::Rc::new(liquid::model::Value::Object(Default::default())),
            contact_found: true,
            zone: chrono_tz::Tz::UTC,
            waiting: None,
            attempts: 0,
            root: 1,
            unreadable: None,
            record_type: None,
        }
    }

    /// The node `id` of `json` (a node's definition).
    pub fn node(id: &str, json: serde_json::Value) -> Node {
        let def =
            serde_json::json!({"triggers": [{"type": "manual"}], "start": id, "nodes": {id: json}});
        let (def, _) = crate::model::FlowDef::parse(&def);
        def.nodes[id].clone()
    }

    /// 2026-06-01 12:00 UTC
    pub fn noon() -> DateTime<Utc> {
        chrono::TimeZone::with_ymd_and_hms(&Utc, 2026, 6, 1, 12, 0, 0).unwrap()
    }

    /// Runs `f` with a context at `now`, the node entered as the enrollment's first.
    pub fn with_context<R>(
        settings: &Settings,
        now: DateTime<Utc>,
        f: impl FnOnce(&mut Context) -> R,
    ) -> R {
        // (lookups without SPI: the unit tests run outside Postgres)
        let mut templates: Templates = crate::engine::batch::ReadOnce::new(|_| Ok(None));
        let mut lock_timeout = LockTimeout::default();
        let mut sender_names: SenderNames = crate::engine::batch::ReadOnce::new(|address| {
            Ok((address == "news@example.com").then(|| "ACME News".to_string()))
        });
        let mut cx = Context {
            settings,
            now,
            seq: 1,
            templates: &mut templates,
            sender_names: &mut sender_names,
            lock_timeout: &mut lock_timeout,
            messages: &[],
            interrupts: || {},
            opted_out: |addresses| {
                Ok(addresses
                    .iter()
                    .filter(|a| a.starts_with("out@"))
                    .cloned()
                    .collect())
            },
        };
        f(&mut cx)
    }
}
