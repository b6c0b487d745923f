//! Running a batch (for `journey.run_due` and the worker): claims due enrollments, runs their
//! nodes in Rust, and writes the results back set-based: one INSERT into the outbox, one INSERT
//! into steps and one UPDATE of the enrollments per batch. A failing enrollment (render error,
//! missing template) is marked failed with its error; the rest of the batch goes on. The batch
//! runs in a subtransaction: should anything in it raise (a Postgres error outside a node's own
//! subtransaction, a Rust panic), it is rolled back and run again one enrollment at a time, each
//! in a subtransaction of its own, so a poisoned enrollment fails alone and never holds up the
//! others.
use super::claim::{claim, Enrollment, Settings};
use super::{cache, clock, prepared, schedule, subxact};
use crate::error::{JourneyError, Result};
use crate::model::{predicate, Edge, FlowDef, NodeKind};
use crate::render::budget::Limits;
use crate::render::{sms, template};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use pgrx::datum::{DatumWithOid, IntoDatum, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Longest wait for a row lock during a batch (update_contact); see `run_batch`.
const LOCK_TIMEOUT: &str = "100ms";

/// Most nodes one enrollment runs in one go (validation forbids cycles without a delay).
const MAX_NODES_PER_STEP: usize = 100;

/// Longest one enrollment may run in one step (all its nodes, renders included) before it fails.
const STEP_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Longest a batch takes new enrollments: past it, the rest of the claimed ones are left due
/// for the next batch (so hostile templates slow a batch down by at most this much).
const BATCH_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Most bytes a short rendered field (subject, sender, recipient, URL, title) may have.
const SHORT_FIELD_BYTES: usize = 8192;

#[derive(Default)]
struct Message {
    key: String,
    channel: &'static str,
    flow_id: i64,
    enrollment_id: i64,
    node: String,
    contact_id: i64,
    recipient: Option<String>,
    sender: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    sms_encoding: Option<&'static str>,
    sms_segments: Option<i32>,
    payload: Option<Value>,
    not_before: Option<DateTime<Utc>>,
}

struct Update {
    id: i64,
    tid: pg_sys::ItemPointerData,
    contact_id: i64,
    status: &'static str,
    node: String,
    due_at: Option<DateTime<Utc>>,
    seq: i32,
    last_error: Option<String>,
    waiting: Option<Value>,
    attempts: i32,
}

impl Update {
    /// The enrollment's new state: `status` at `node` (due at `due_at`), no error, nothing
    /// awaited, no failed attempts; the other fields are set with `..` where they differ.
    fn of(
        e: &Enrollment,
        status: &'static str,
        node: String,
        due_at: Option<DateTime<Utc>>,
        seq: i32,
    ) -> Update {
        Update {
            id: e.id,
            tid: e.tid,
            contact_id: e.contact_id,
            status,
            node,
            due_at,
            seq,
            last_error: None,
            waiting: None,
            attempts: 0,
        }
    }

    /// The enrollment leaves the flow (completed, exited) after `node`.
    fn ended(e: &Enrollment, status: &'static str, node: String, seq: i32) -> Update {
        Update::of(e, status, node, None, seq)
    }
}

#[derive(Default)]
struct Batch {
    steps: Vec<(i64, i64, i64, String, String)>,
    messages: Vec<Message>,
    updates: Vec<Update>,
    templates: HashMap<String, Option<(Option<String>, String)>>,
    /// The session's lock_timeout, saved when the batch first shortened it.
    lock_timeout: Option<String>,
}

impl Batch {
    /// Any row lock a node needs (update_contact) is waited for at most LOCK_TIMEOUT for the
    /// rest of the batch: a client holding the contact gets it back quickly and never
    /// deadlocks with the batch; the enrollment is retried with backoff. Set at the first such
    /// node (a batch of sends pays nothing), restored before the write-back.
    fn hold_locks_briefly(&mut self) -> Result<()> {
        if self.lock_timeout.is_none() {
            // (the target list is evaluated in order: the old value is read before it is set)
            let (previous, _) = Spi::get_two_with_args::<String, String>(
                "SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, true)",
                &[LOCK_TIMEOUT.into()],
            )?;
            self.lock_timeout = Some(previous.unwrap_or_else(|| "0".into()));
        }
        Ok(())
    }

    /// Restores the session's lock_timeout if a node shortened it.
    fn restore_lock_timeout(&mut self) -> Result<()> {
        if let Some(previous) = self.lock_timeout.take() {
            Spi::run_with_args(
                "SELECT set_config('lock_timeout', $1, true)",
                &[previous.into()],
            )?;
        }
        Ok(())
    }

    /// Records that `e` failed at `node` (entered as the `seq`th node) with `err`; a transient
    /// error is retried with backoff until settings.max_attempts.
    fn fail(
        &mut self,
        e: &Enrollment,
        (node, seq): (String, i32),
        err: &JourneyError,
        now: DateTime<Utc>,
        settings: &Settings,
    ) {
        let message = err.to_string().replace('\0', "");
        let transient = matches!(
            err,
            JourneyError::Step {
                transient: true,
                ..
            }
        );
        let retry = transient && e.attempts + 1 < settings.max_attempts;
        self.steps.push((
            e.id,
            e.contact_id,
            e.flow_id,
            node.clone(),
            format!("{}: {message}", if retry { "retry" } else { "failed" }),
        ));
        let (status, due_at) = match retry {
            true => ("active", Some(now + retry_backoff(e.attempts))),
            false => ("failed", None),
        };
        self.updates.push(Update {
            last_error: Some(message),
            attempts: e.attempts + i32::from(transient),
            ..Update::of(e, status, node, due_at, seq)
        });
    }
}

/// Runs one batch; returns the number of enrollments advanced. See the module comment for
/// what happens when the batch raises.
pub fn run_batch(max: i32, at: TimestampWithTimeZone) -> Result<i32> {
    let now = clock::to_chrono(at).ok_or_else(|| JourneyError::Engine {
        flow: "(run)".into(),
        message: "the time to run at is infinite or out of range".into(),
    })?;
    match subxact::attempt(|| run_claimed(max, at, now, false)) {
        Ok(n) => Ok(n),
        Err(caught) => {
            pgrx::log!(
                "journey: a batch raised \"{}\"; running its enrollments one at a time",
                caught.message
            );
            run_claimed(max, at, now, true)
        }
    }
}

/// Claims up to `max` due enrollments and runs them: as one batch, or `one_by_one`, each in
/// its own subtransaction (an enrollment that raises is rolled back and marked failed).
fn run_claimed(
    max: i32,
    at: TimestampWithTimeZone,
    now: DateTime<Utc>,
    one_by_one: bool,
) -> Result<i32> {
    let (due, settings) = claim(max, at)?;
    let started = std::time::Instant::now();
    // enrollments left unrun when the batch ran out of time are still due: the next batch
    // claims them again
    let in_time = || started.elapsed() < BATCH_TIME;
    let mut ran = 0;
    if !one_by_one {
        let mut batch = Batch::default();
        for e in due.iter().take_while(|_| in_time()) {
            step(e, &settings, now, &mut batch);
            ran += 1;
        }
        batch.restore_lock_timeout()?;
        write_back(&batch, at)?;
        return Ok(ran);
    }
    for e in due.iter().take_while(|_| in_time()) {
        ran += 1;
        let done = subxact::attempt(std::panic::AssertUnwindSafe(|| {
            let mut batch = Batch::default();
            step(e, &settings, now, &mut batch);
            batch.restore_lock_timeout()?;
            write_back(&batch, at)
        }));
        if let Err(caught) = done {
            let mut batch = Batch::default();
            let err = JourneyError::Step {
                flow: e.flow_name.clone(),
                node: e.node.clone(),
                message: caught.message,
                transient: false,
            };
            batch.fail(e, (e.node.clone(), e.seq), &err, now, &settings);
            write_back(&batch, at)?;
        }
    }
    Ok(ran)
}

/// Runs one enrollment into the batch: its nodes, or its failure.
fn step(e: &Enrollment, settings: &Settings, now: DateTime<Utc>, batch: &mut Batch) {
    let mut at_node = e.node.clone();
    let mut at_seq = e.seq;
    // a contact that is gone, data that cannot be read or a version that cannot be loaded
    // fails its enrollment, not the batch
    let outcome = if let Some(why) = &e.unreadable {
        Err(JourneyError::Engine {
            flow: e.flow_name.clone(),
            message: why.clone(),
        })
    } else if !e.contact_found {
        Err(JourneyError::UnknownContact(e.contact_id))
    } else {
        cache::definition(e.flow_id, e.version)
            .and_then(|def| advance(e, &def, settings, now, batch, &mut at_node, &mut at_seq))
    };
    if let Err(err) = outcome {
        batch.fail(e, (at_node, at_seq), &err, now, settings);
    }
}

/// Runs one enrollment's nodes from its current node until it waits, completes or exits.
/// `at_node` tracks the node being run, so a failure is recorded where it happened.
fn advance(
    e: &Enrollment,
    def: &FlowDef,
    settings: &Settings,
    now: DateTime<Utc>,
    batch: &mut Batch,
    at_node: &mut String,
    at_seq: &mut i32,
) -> Result<()> {
    let vars = template::Vars {
        contact: &e.contact,
        event: &e.event,
        flow: &e.flow,
    };
    let mut current = e.node.clone();
    let mut seq = e.seq;
    let started = std::time::Instant::now();
    let mut entered: Vec<String> = Vec::new();
    for _ in 0..MAX_NODES_PER_STEP {
        if started.elapsed() > STEP_TIME {
            return Err(JourneyError::Engine {
                flow: e.flow_name.clone(),
                message: format!(
                    "its nodes ran longer than {} ms in one step",
                    STEP_TIME.as_millis()
                ),
            });
        }
        at_node.clone_from(&current);
        *at_seq = seq;
        // a node reached twice without time passing is a loop (validation refuses them; a
        // version written past validation, or older than the rule, must not send round it)
        if entered.contains(&current) {
            return Err(JourneyError::Engine {
                flow: e.flow_name.clone(),
                message: format!(
                    "node \"{current}\" was reached twice in one step: the flow loops without a delay"
                ),
            });
        }
        entered.push(current.clone());
        let Some(node) = def.nodes.get(&current) else {
            return Err(JourneyError::Engine {
                flow: e.flow_name.clone(),
                message: format!("node \"{current}\" does not exist in version {}", e.version),
            });
        };
        seq += 1;
        let render_error = |field: &str, message: String| JourneyError::Render {
            flow: e.flow_name.clone(),
            node: current.clone(),
            message: format!("{field}: {message}"),
        };
        // bodies may be as long as settings.max_message_bytes, other fields SHORT_FIELD_BYTES
        let render = |field: &str, source: &str| {
            let limit = match field {
                "text" | "body" => settings.max_message_bytes,
                _ => SHORT_FIELD_BYTES,
            };
            // event data that cannot be read is the error, whatever the render made of it
            let out = template::render(source, &vars, Limits::output(limit));
            match (e.event.error(), out) {
                (Some(why), _) => Err(render_error(field, why)),
                (None, out) => out.map_err(|message| render_error(field, message)),
            }
        };
        let out_of_range = || JourneyError::Engine {
            flow: e.flow_name.clone(),
            message: format!("node \"{current}\": the time it schedules is out of range"),
        };
        let mut message = Message {
            key: format!("{}:{}:{}", e.id, current, seq),
            flow_id: e.flow_id,
            enrollment_id: e.id,
            node: current.clone(),
            contact_id: e.contact_id,
            ..Message::default()
        };
        let mut wait: Option<DateTime<Utc>> = None;
        // Some(edge or None) when the node picks a branch instead of `next`
        let mut chosen: Option<Option<&Edge>> = None;
        // set when the node parks the enrollment on itself (check, wait_event)
        let mut park: Option<(DateTime<Utc>, Value)> = None;
        let resumed = current == e.node
            && e.waiting
                .as_ref()
                .is_some_and(|w| w["node"] == current.as_str());
        let outcome: String = match &node.kind {
            NodeKind::SendSms {
                text,
                sender,
                unsubscribe,
                ignore_quiet_hours,
            } => {
                let mut body = render("text", text)?;
                if *unsubscribe && !settings.unsubscribe_text.is_empty() {
                    body.push('\n');
                    body.push_str(&settings.unsubscribe_text);
                }
                let (encoding, segments) = sms::segments(&body);
                if segments > settings.max_sms_segments {
                    return Err(render_error(
                        "text",
                        format!(
                            "the message takes {segments} SMS segments, more than settings.max_sms_segments ({})",
                            settings.max_sms_segments
                        ),
                    ));
                }
                match suppression(e, Reach::Phone) {
                    Some(reason) => reason,
                    None => {
                        message.channel = "sms";
                        message.recipient = e.contact.phone.clone();
                        message.sender =
                            sender.as_deref().map(|s| render("sender", s)).transpose()?;
                        message.body = Some(body);
                        message.sms_encoding = Some(encoding.as_str());
                        message.sms_segments = Some(segments);
                        if !ignore_quiet_hours {
                            message.not_before = schedule::quiet_until(
                                now,
                                settings.quiet_start,
                                settings.quiet_end,
                                e.zone,
                            );
                        }
                        batch.messages.push(message);
                        "sent".into()
                    }
                }
            }
            NodeKind::SendEmail {
                template: name,
                subject,
                body,
                from_name,
                from,
                to,
            } => {
                let (subject_src, body_src) = match name {
                    Some(name) => match lookup_template(name, batch)? {
                        Some((s, b)) => (s.or_else(|| subject.clone()), b),
                        None => {
                            return Err(JourneyError::MissingTemplate {
                                flow: e.flow_name.clone(),
                                node: current.clone(),
                                template: name.clone(),
                            })
                        }
                    },
                    None => (subject.clone(), body.clone().unwrap_or_default()),
                };
                let rendered_subject = subject_src
                    .as_deref()
                    .map(|s| render("subject", s))
                    .transpose()?;
                let rendered_body = render("body", &body_src)?;
                let recipient = match to {
                    Some(to) => Some(render("to", to)?),
                    None => e.contact.email.clone(),
                };
                match suppression(e, Reach::Email).filter(|_| to.is_none()) {
                    Some(reason) => reason,
                    None => {
                        let from_addr = from.as_deref().map(|s| render("from", s)).transpose()?;
                        let name = from_name
                            .as_deref()
                            .map(|s| render("from_name", s))
                            .transpose()?;
                        message.channel = "email";
                        message.recipient = recipient;
                        message.sender = match (name, from_addr) {
                            (Some(n), Some(a)) => Some(format!("{n} <{a}>")),
                            (n, a) => a.or(n),
                        };
                        message.subject = rendered_subject;
                        message.body = Some(rendered_body);
                        batch.messages.push(message);
                        "sent".into()
                    }
                }
            }
            NodeKind::Wait { delay, at, days } => {
                wait = Some(
                    schedule::due(now, *delay, *at, days.as_deref(), e.zone)
                        .ok_or_else(out_of_range)?,
                );
                "waited".into()
            }
            NodeKind::Goal { .. } => "goal".into(),
            NodeKind::Exit => {
                batch.steps.push((
                    e.id,
                    e.contact_id,
                    e.flow_id,
                    current.clone(),
                    "exited".into(),
                ));
                batch.updates.push(Update::ended(e, "exited", current, seq));
                return Ok(());
            }
            NodeKind::SendWhatsapp { text } => {
                let body = render("text", text)?;
                match suppression(e, Reach::Phone) {
                    Some(reason) => reason,
                    None => {
                        message.channel = "whatsapp";
                        message.recipient = e.contact.phone.clone();
                        message.body = Some(body);
                        batch.messages.push(message);
                        "sent".into()
                    }
                }
            }
            NodeKind::NotifyAdmin { to, subject, text } => {
                let body = render("text", text)?;
                let recipient = match to {
                    Some(to) => Some(render("to", to)?),
                    None => settings.admin_email.clone(),
                };
                match recipient.filter(|r| !r.trim().is_empty()) {
                    None => "suppressed: no admin_email".into(),
                    Some(r) => {
                        message.channel = "admin_email";
                        message.recipient = Some(r);
                        message.subject = subject
                            .as_deref()
                            .map(|s| render("subject", s))
                            .transpose()?;
                        message.body = Some(body);
                        batch.messages.push(message);
                        "sent".into()
                    }
                }
            }
            NodeKind::CreateTask {
                assignee,
                title,
                due,
            } => {
                let title = render("title", title)?;
                let assignee = assignee
                    .as_deref()
                    .map(|a| render("assignee", a))
                    .transpose()?;
                let due_at = due
                    .map(|d| schedule::add_interval(now, d, e.zone).ok_or_else(out_of_range))
                    .transpose()?;
                message.channel = "task";
                message.recipient = assignee.clone();
                message.subject = Some(title.clone());
                message.payload = Some(json!({
                    "assignee": assignee,
                    "title": title,
                    "due": due_at.map(|d| d.to_rfc3339()),
                    "contact_id": e.contact_id,
                }));
                batch.messages.push(message);
                "created".into()
            }
            NodeKind::Webhook { url, method, body } => {
                let url = render("url", url)?;
                let body = match body {
                    Some(b) => {
                        let text = render("body", b)?;
                        Some(serde_json::from_str::<Value>(&text).map_err(|err| {
                            JourneyError::Render {
                                flow: e.flow_name.clone(),
                                node: current.clone(),
                                message: format!("body is not JSON after rendering: {err}"),
                            }
                        })?)
                    }
                    None => None,
                };
                message.channel = "webhook";
                message.recipient = Some(url.clone());
                message.payload = Some(json!({"method": method, "url": url, "body": body}));
                batch.messages.push(message);
                "queued".into()
            }
            NodeKind::UpdateContact {
                add_groups,
                remove_groups,
                set,
            } => {
                // In a subtransaction: a lock timeout or a violated constraint fails this
                // enrollment (or retries it), not the batch.
                batch.hold_locks_briefly()?;
                match subxact::run(std::panic::AssertUnwindSafe(|| {
                    update_contact(e.contact_id, add_groups, remove_groups, set)
                })) {
                    Ok(done) => done?,
                    Err(caught) => {
                        return Err(JourneyError::Step {
                            flow: e.flow_name.clone(),
                            node: current.clone(),
                            transient: caught.is_transient(),
                            message: caught.message,
                        })
                    }
                }
                "updated".into()
            }
            NodeKind::Condition {
                predicate,
                then,
                otherwise,
            } => {
                let unreadable = |message: String| JourneyError::Engine {
                    flow: e.flow_name.clone(),
                    message: format!("node \"{current}\": {message}"),
                };
                let (contact, groups) = if predicate::needs_contact(predicate) {
                    crate::engine::store::contact(e.contact_id).map_err(unreadable)?
                } else {
                    (Value::Null, Vec::new())
                };
                let subject = predicate::Subject {
                    contact: &contact,
                    event: e.event.json().map_err(unreadable)?,
                    groups: &groups,
                };
                if predicate::eval(predicate, &subject) {
                    chosen = Some(then.as_ref());
                    "then".into()
                } else {
                    chosen = Some(otherwise.as_ref());
                    "else".into()
                }
            }
            NodeKind::Split { branches } => {
                let bucket = split_bucket(e.flow_id, e.contact_id);
                let mut cumulative = 0.0;
                let mut pick = branches.len().saturating_sub(1);
                for (i, (percent, _)) in branches.iter().enumerate() {
                    cumulative += percent;
                    if bucket < cumulative {
                        pick = i;
                        break;
                    }
                }
                chosen = Some(branches.get(pick).map(|(_, edge)| edge));
                format!("branch {pick}")
            }
            NodeKind::Check {
                message: sent_node,
                statuses,
                wait,
                yes,
                no,
                ..
            } => {
                let status = batch
                    .messages
                    .iter()
                    .rev()
                    .find(|m| m.enrollment_id == e.id && &m.node == sent_node)
                    .map(|_| Some("pending".to_string()))
                    .map(Ok)
                    .unwrap_or_else(|| message_status(e.id, e.contact_id, sent_node))?;
                let until = waiting_until(resumed, e, "until")
                    .map_or_else(|| schedule::add_interval(now, *wait, e.zone), Some)
                    .ok_or_else(out_of_range)?;
                match status.as_deref() {
                    None => {
                        chosen = Some(no.as_ref());
                        "no: no message was sent".into()
                    }
                    Some(st) if statuses.contains(&st) => {
                        chosen = Some(yes.as_ref());
                        format!("yes: {st}")
                    }
                    Some(st @ ("failed" | "undelivered" | "bounced")) => {
                        chosen = Some(no.as_ref());
                        format!("no: {st}")
                    }
                    Some(_) if now >= until => {
                        chosen = Some(no.as_ref());
                        "no: timed out".into()
                    }
                    Some(_) => {
                        park = Some((
                            until,
                            json!({"node": current, "message": sent_node, "until": until.to_rfc3339()}),
                        ));
                        "waiting".into()
                    }
                }
            }
            NodeKind::WaitEvent {
                event,
                timeout,
                yes,
                no,
            } => {
                let since = waiting_until(resumed, e, "since").unwrap_or(now);
                let until = waiting_until(resumed, e, "until")
                    .map_or_else(|| schedule::add_interval(now, *timeout, e.zone), Some)
                    .ok_or_else(out_of_range)?;
                if event_since(e.contact_id, event, since)? {
                    chosen = Some(yes.as_ref());
                    "yes".into()
                } else if now >= until {
                    chosen = Some(no.as_ref());
                    "no: timed out".into()
                } else {
                    park = Some((
                        until,
                        json!({"node": current, "event": event, "since": since.to_rfc3339(), "until": until.to_rfc3339()}),
                    ));
                    "waiting".into()
                }
            }
        };
        batch
            .steps
            .push((e.id, e.contact_id, e.flow_id, current.clone(), outcome));
        if let Some((until, waiting)) = park {
            batch.updates.push(Update {
                waiting: Some(waiting),
                ..Update::of(e, "active", current, Some(until), seq)
            });
            return Ok(());
        }
        let Some(edge) = chosen.unwrap_or(node.next.as_ref()) else {
            batch
                .updates
                .push(Update::ended(e, "completed", current, seq));
            return Ok(());
        };
        let from = wait.unwrap_or(now);
        if edge.is_immediate() && from <= now {
            current = edge.to.clone();
            continue;
        }
        let due = edge_due(edge, from, e.zone).ok_or_else(out_of_range)?;
        batch
            .updates
            .push(Update::of(e, "active", edge.to.clone(), Some(due), seq));
        return Ok(());
    }
    Err(JourneyError::Engine {
        flow: e.flow_name.clone(),
        message: format!("more than {MAX_NODES_PER_STEP} nodes without a delay"),
    })
}

fn edge_due(edge: &Edge, from: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
    schedule::due(from, edge.delay, edge.at, edge.days.as_deref(), zone)
}

/// The contact's opt-out flag and address for a channel: `sms_opt_out` and `phone` (SMS and
/// WhatsApp), `email_opt_out` and `email`.
#[derive(Clone, Copy)]
enum Reach {
    Phone,
    Email,
}

/// Why a message is not sent to this contact (opted out, no address), if it is not.
fn suppression(e: &Enrollment, reach: Reach) -> Option<String> {
    let c = &e.contact;
    let (opted_out, opt_out, address, name) = match reach {
        Reach::Phone => (c.sms_opt_out, "sms_opt_out", &c.phone, "phone"),
        Reach::Email => (c.email_opt_out, "email_opt_out", &c.email, "email"),
    };
    if opted_out {
        return Some(format!("suppressed: {opt_out}"));
    }
    match address.as_deref() {
        Some(a) if !a.trim().is_empty() => None,
        _ => Some(format!("suppressed: no {name}")),
    }
}

fn lookup_template(name: &str, batch: &mut Batch) -> Result<Option<(Option<String>, String)>> {
    if let Some(t) = batch.templates.get(name) {
        return Ok(t.clone());
    }
    let found = Spi::connect(|client| -> Result<_> {
        let rows = client.select(
            "SELECT subject, body FROM journey.templates WHERE name = $1",
            None,
            &[name.into()],
        )?;
        let mut out = None;
        for row in rows {
            out = Some((
                row.get::<String>(1)?,
                row.get::<String>(2)?.unwrap_or_default(),
            ));
        }
        Ok(out)
    })?;
    batch.templates.insert(name.to_string(), found.clone());
    Ok(found)
}

/// One statement argument: the array of `f` over the batch's `rows` (a column). Strings are
/// borrowed and copied once, into the array.
fn column<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> DatumWithOid<'a>
where
    U: IntoDatum + 'a,
    Vec<U>: IntoDatum,
{
    rows.iter().map(f).collect::<Vec<_>>().into()
}

/// The UPDATE's arguments: one array per column, and the ctids when `with_tid`.
fn update_args(u: &[Update], with_tid: bool) -> Vec<DatumWithOid<'_>> {
    let mut args = vec![
        column(u, |x| x.id),
        column(u, |x| x.contact_id),
        column(u, |x| x.status),
        column(u, |x| x.node.as_str()),
        column(u, |x| x.due_at.map(clock::to_pg)),
        column(u, |x| x.seq),
        column(u, |x| x.last_error.as_deref()),
        column(u, |x| x.waiting.clone().map(JsonB)),
        column(u, |x| x.attempts),
    ];
    if with_tid {
        args.push(column(u, |x| x.tid));
    }
    args
}

/// The outbox INSERT; `INSERT_OUTBOX_IDEMPOTENT` is the same with ON CONFLICT DO NOTHING.
macro_rules! insert_outbox {
    () => {
        "INSERT INTO journey.outbox (idempotency_key, channel, flow_id, enrollment_id, node, contact_id, \
            recipient, sender, subject, body, sms_encoding, sms_segments, not_before, payload) \
         SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::bigint[]), unnest($4::bigint[]), \
            unnest($5::text[]), unnest($6::bigint[]), unnest($7::text[]), unnest($8::text[]), unnest($9::text[]), \
            unnest($10::text[]), unnest($11::text[]), unnest($12::int[]), unnest($13::timestamptz[]), unnest($14::jsonb[])"
    };
}
const INSERT_OUTBOX: &str = insert_outbox!();
const INSERT_OUTBOX_IDEMPOTENT: &str = concat!(insert_outbox!(), " ON CONFLICT DO NOTHING");

/// The enrollments UPDATE from a set of new values `u`: joined by ctid in the batch, by key in
/// its fallback (arguments from `update_args`).
macro_rules! update_enrollments {
    ($from:literal, $join:literal) => {
        concat!(
            "UPDATE journey.enrollments e \
                SET status = u.status, node = u.node, due_at = u.due_at, seq = u.seq, \
                    last_error = u.last_error, waiting = u.waiting, attempts = u.attempts, updated_at = now() \
               FROM ", $from, " WHERE ", $join
        )
    };
}

/// Writes the batch back: each statement takes one array per column and unnests them in its
/// select list (set-returning functions there run in lockstep, row by row; `unnest` in FROM
/// would first copy all rows into a tuplestore).
fn write_back(batch: &Batch, at: TimestampWithTimeZone) -> Result<()> {
    Spi::connect_mut(|client| -> Result<()> {
        if !batch.messages.is_empty() {
            let m = &batch.messages;
            let args = [
                column(m, |x| x.key.as_str()),
                column(m, |x| x.channel),
                column(m, |x| x.flow_id),
                column(m, |x| x.enrollment_id),
                column(m, |x| x.node.as_str()),
                column(m, |x| x.contact_id),
                column(m, |x| x.recipient.as_deref()),
                column(m, |x| x.sender.as_deref()),
                column(m, |x| x.subject.as_deref()),
                column(m, |x| x.body.as_deref()),
                column(m, |x| x.sms_encoding),
                column(m, |x| x.sms_segments),
                column(m, |x| x.not_before.map(clock::to_pg)),
                column(m, |x| x.payload.clone().map(JsonB)),
            ];
            // A plain INSERT: the outbox rows commit with the enrollments' new seq, so a key can
            // only repeat if something else wrote it. Should that ever happen, the statement is
            // rolled back alone and repeated with ON CONFLICT DO NOTHING (the first row wins).
            let plain = subxact::run(std::panic::AssertUnwindSafe(|| {
                prepared::update(client, INSERT_OUTBOX, &args).map(|_| ())
            }));
            match plain {
                Ok(done) => done?,
                Err(c) if c.code == pgrx::PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION => {
                    prepared::update(client, INSERT_OUTBOX_IDEMPOTENT, &args)?;
                }
                Err(c) => {
                    return Err(JourneyError::BatchWrite {
                        table: "outbox",
                        message: c.message,
                    })
                }
            }
        }
        if !batch.steps.is_empty() {
            let s = &batch.steps;
            prepared::update(
                client,
                "INSERT INTO journey.steps (enrollment_id, contact_id, flow_id, node, at, outcome) \
                 SELECT unnest($1::bigint[]), unnest($2::bigint[]), unnest($3::bigint[]), unnest($4::text[]), $6, \
                    unnest($5::text[])",
                &[
                    column(s, |x| x.0),
                    column(s, |x| x.1),
                    column(s, |x| x.2),
                    column(s, |x| x.3.as_str()),
                    column(s, |x| x.4.as_str()),
                    at.into(),
                ],
            )?;
        }
        if !batch.updates.is_empty() {
            // Joined on ctid (a TID scan per row, whatever the table's size: the claim locked
            // these rows, so they have not moved); id and contact_id are checked as well.
            let u = &batch.updates;
            let updated = prepared::update(
                client,
                update_enrollments!(
                    "(SELECT unnest($10::tid[]) AS tid, unnest($1::bigint[]) AS id, unnest($2::bigint[]) AS contact_id, \
                        unnest($3::text[]) AS status, unnest($4::text[]) AS node, unnest($5::timestamptz[]) AS due_at, \
                        unnest($6::int[]) AS seq, unnest($7::text[]) AS last_error, unnest($8::jsonb[]) AS waiting, \
                        unnest($9::int[]) AS attempts) u",
                    "e.ctid = u.tid AND e.id = u.id AND e.contact_id = u.contact_id"
                ),
                &update_args(u, true),
            )?
            .len();
            if updated != u.len() {
                // A row moved after the claim (this batch itself touched it): fall back to
                // the key join for all of them; setting the same values twice is harmless.
                client.update(
                    update_enrollments!(
                        "(SELECT unnest($1::bigint[]) AS id, unnest($2::bigint[]) AS contact_id, \
                            unnest($3::text[]) AS status, unnest($4::text[]) AS node, unnest($5::timestamptz[]) AS due_at, \
                            unnest($6::int[]) AS seq, unnest($7::text[]) AS last_error, unnest($8::jsonb[]) AS waiting, \
                            unnest($9::int[]) AS attempts) u",
                        "e.id = u.id AND e.contact_id = u.contact_id"
                    ),
                    None,
                    &update_args(u, false),
                )?;
            }
        }
        Ok(())
    })
}

/// Wait before retrying a transient failure: 2^attempts seconds (1 s, 2 s, 4 s, ...), at most
/// an hour.
fn retry_backoff(attempts: i32) -> chrono::Duration {
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 12)).min(chrono::Duration::hours(1))
}

/// Stable bucket in [0, 100) for (flow, contact): splits agree across runs and dry runs.
pub fn split_bucket(flow_id: i64, contact_id: i64) -> f64 {
    // splitmix64 over both ids: fast, well mixed, and fixed forever (unlike std's hasher)
    let mut z = (flow_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (contact_id as u64);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % 10_000) as f64 / 100.0
}

/// A time kept in the enrollment's `waiting` when it resumes the node it parked on.
fn waiting_until(resumed: bool, e: &Enrollment, key: &str) -> Option<DateTime<Utc>> {
    if !resumed {
        return None;
    }
    let text = e.waiting.as_ref()?.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Status of the latest outbox row this enrollment wrote at `node`.
fn message_status(enrollment: i64, contact: i64, node: &str) -> Result<Option<String>> {
    Ok(Spi::get_one_with_args::<String>(
        "SELECT status FROM journey.outbox WHERE enrollment_id = $1 AND contact_id = $2 AND node = $3 \
         ORDER BY id DESC LIMIT 1",
        &[enrollment.into(), contact.into(), node.into()],
    )
    .or_else(|e| match e {
        pgrx::spi::Error::InvalidPosition => Ok(None),
        other => Err(other),
    })?)
}

fn event_since(contact: i64, event: &str, since: DateTime<Utc>) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM journey.events WHERE contact_id = $1 AND name = $2 AND occurred_at >= $3)",
        &[contact.into(), event.into(), clock::to_pg(since).into()],
    )?
    .unwrap_or(false))
}

/// update_contact: groups through group_members (so group_joined flows fire), fields through
/// the same code as forms and upsert_contact.
fn update_contact(
    contact: i64,
    add: &[String],
    remove: &[String],
    set: &serde_json::Map<String, Value>,
) -> Result<()> {
    Spi::connect_mut(|client| -> Result<()> {
        if !add.is_empty() {
            client.update(
                "INSERT INTO journey.group_members (group_id, contact_id) \
                 SELECT g.id, $1 FROM journey.groups g WHERE g.name = ANY ($2) ON CONFLICT DO NOTHING",
                None,
                &[contact.into(), add.to_vec().into()],
            )?;
        }
        if !remove.is_empty() {
            client.update(
                "DELETE FROM journey.group_members m USING journey.groups g \
                 WHERE m.contact_id = $1 AND m.group_id = g.id AND g.name = ANY ($2)",
                None,
                &[contact.into(), remove.to_vec().into()],
            )?;
        }
        if !set.is_empty() {
            let mut fields = serde_json::Map::new();
            let mut attributes = serde_json::Map::new();
            for (k, v) in set {
                match k.strip_prefix("attributes.") {
                    Some(key) => attributes.insert(key.to_string(), v.clone()),
                    None => fields.insert(k.clone(), v.clone()),
                };
            }
            fields.insert("attributes".into(), Value::Object(attributes));
            client.update(
                "SELECT journey._apply_contact_fields($1, $2)",
                None,
                &[contact.into(), JsonB(Value::Object(fields)).into()],
            )?;
        }
        Ok(())
    })
}
