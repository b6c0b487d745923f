//! `journey.simulate`: a dry run of a flow for one contact over virtual time. It runs the real
//! engine (zones, windows, quiet hours, suppression, splits, conditions on the contact's data)
//! on a scratch enrollment, one wake-up after another on a virtual clock, inside a
//! subtransaction that is always rolled back: the rows it returns are collected first, and
//! nothing it wrote (the flow's scratch version, the enrollment, its steps and outbox rows)
//! remains. What cannot be known in advance (a delivery report, an event) is answered by
//! `assume`.
use super::flows::{checked_definition, problems};
use super::jsonb::JsonbText;
use crate::engine::{run, subxact};
use crate::error::{required, JourneyError, OrReport, Result};
use crate::model::{FlowDef, NodeKind};
use pgrx::datum::{Interval, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;
use std::collections::HashSet;

/// Most wake-ups one simulation runs (a flow that loops every hour for 90 days would need
/// 2,160): past it the simulation stops and says so.
const MAX_WAKEUPS: usize = 1000;

type Row = (
    TimestampWithTimeZone,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// `journey.simulate(flow, contact, until, assume, definition)`.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
#[allow(clippy::type_complexity)]
pub fn simulate(
    flow: Option<&str>,
    contact: Option<i64>,
    until: default!(Option<Interval>, "'90 days'"),
    assume: default!(Option<JsonbText>, "'{}'"),
    definition: default!(Option<JsonbText>, "NULL"),
) -> TableIterator<
    'static,
    (
        name!(at, TimestampWithTimeZone),
        name!(node, String),
        name!(type, String),
        name!(outcome, String),
        name!(channel, Option<String>),
        name!(recipient, Option<String>),
        name!(subject, Option<String>),
        name!(body, Option<String>),
    ),
> {
    TableIterator::new(dry_run(flow, contact, until, assume, definition).or_report())
}

fn dry_run(
    flow: Option<&str>,
    contact: Option<i64>,
    until: Option<Interval>,
    assume: Option<JsonbText>,
    definition: Option<JsonbText>,
) -> Result<Vec<Row>> {
    let name = required(flow, "flow", "Pass the flow's name (journey.flows.name).")?;
    let contact = required(
        contact,
        "contact",
        "Pass a contact id from journey.contacts.",
    )?;
    let until = required(until, "until", "Pass how long to simulate, e.g. '90 days'.")?;
    let assume = match assume {
        Some(a) => a.parse("assume")?,
        None => Value::Object(Default::default()),
    };
    let assume = Assume::new(assume)?;
    let flow_id = Spi::get_one_with_args::<i64>(
        "SELECT (SELECT id FROM journey.flows WHERE name = $1)",
        &[name.into()],
    )?
    .ok_or_else(|| JourneyError::UnknownFlow(name.to_string()))?;
    let def = match definition {
        Some(d) => checked_definition(name, Some(d))?,
        None => Spi::get_one_with_args::<JsonB>(
            "SELECT v.definition FROM journey.flows f \
             JOIN journey.flow_versions v ON v.flow_id = f.id AND v.version = f.version WHERE f.id = $1",
            &[flow_id.into()],
        )?
        .map(|j| j.0)
        .unwrap_or(Value::Null),
    };
    let (parsed, found) = problems(&def)?;
    if !found.is_empty() {
        return Err(JourneyError::Incomplete {
            flow: name.to_string(),
            problems: found.into_iter().map(|p| (p.node, p.problem)).collect(),
        });
    }
    let exists = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM journey.contacts WHERE id = $1)",
        &[contact.into()],
    )?;
    if exists != Some(true) {
        return Err(JourneyError::UnknownContact(contact));
    }
    let scratch = Scratch {
        flow_id,
        contact,
        def,
        until,
        assume,
        parsed,
    };
    match subxact::rolled_back(std::panic::AssertUnwindSafe(|| scratch.run())) {
        Ok(rows) => rows,
        Err(caught) => caught.raise(),
    }
}

/// `assume`: "yes" or "no" per node id or per node type (check_sms, check_email, wait_event);
/// a node's own entry wins; default "no".
struct Assume(serde_json::Map<String, Value>);

impl Assume {
    fn new(v: Value) -> Result<Assume> {
        let Value::Object(map) = v else {
            return Err(bad_assume(format!("{v} is not a JSON object")));
        };
        for (key, answer) in &map {
            if !matches!(answer.as_str(), Some("yes" | "no")) {
                return Err(bad_assume(format!(
                    "\"{key}\": {answer} is neither \"yes\" nor \"no\""
                )));
            }
        }
        Ok(Assume(map))
    }

    fn yes(&self, node: &str, type_name: &str) -> bool {
        let answer = self.0.get(node).or_else(|| self.0.get(type_name));
        answer.and_then(Value::as_str) == Some("yes")
    }
}

fn bad_assume(reason: String) -> JourneyError {
    JourneyError::InvalidArgument {
        argument: "assume".into(),
        reason,
        hint: "Pass e.g. '{\"check_sms\": \"yes\", \"wait_event\": \"no\"}' (by node type or node id).".into(),
    }
}

/// What a simulation runs on: the flow made active on a scratch version with the definition,
/// and a scratch enrollment of the contact.
struct Scratch {
    flow_id: i64,
    contact: i64,
    def: Value,
    until: Interval,
    assume: Assume,
    parsed: FlowDef,
}

impl Scratch {
    /// Everything here is rolled back by the caller.
    fn run(&self) -> Result<Vec<Row>> {
        let enrollment = self.enroll()?;
        let end = Spi::get_one_with_args::<TimestampWithTimeZone>(
            "SELECT now() + $1",
            &[self.until.into()],
        )?
        .ok_or_else(|| JourneyError::InvalidArgument {
            argument: "until".into(),
            reason: "now() + until is out of range".into(),
            hint: "Simulate a shorter time, e.g. '90 days'.".into(),
        })?;
        let mut at = Spi::get_one::<TimestampWithTimeZone>("SELECT now()")?.expect("now()");
        let mut assumed = HashSet::new();
        let mut wakeups = 0;
        loop {
            pgrx::check_for_interrupts!();
            if wakeups == MAX_WAKEUPS {
                break;
            }
            wakeups += 1;
            run::run_one(enrollment, self.contact, at)?;
            // the enrollment and its fork branches still active: the next due, and the checks
            // and wait_events they wait on that `assume` answers yes (each once per visit)
            let active = state(enrollment, self.contact)?;
            let mut answered = false;
            for (id, node, seq, _, waiting) in &active {
                if *waiting && assumed.insert((*id, node.clone(), *seq)) {
                    answered |= self.answer_yes(*id, node)?;
                }
            }
            if answered {
                continue; // those nodes run again now and take `yes`
            }
            let Some(due) = active.iter().map(|a| a.3).min() else {
                break;
            };
            if due > end {
                break;
            }
            at = if due > at { due } else { at };
        }
        let mut rows = self.collect(enrollment)?;
        if wakeups == MAX_WAKEUPS {
            rows.push((
                at,
                String::new(),
                String::new(),
                format!("stopped: the simulation ran {MAX_WAKEUPS} wake-ups"),
                None,
                None,
                None,
                None,
            ));
        }
        Ok(rows)
    }

    /// The flow, active on a new version holding the definition (no routes: no trigger enrolls
    /// into it meanwhile), and the contact enrolled at its start (an enrollment it has in the flow
    /// is stopped first: one active per flow and contact).
    fn enroll(&self) -> Result<i64> {
        let version = Spi::get_one_with_args::<i32>(
            "INSERT INTO journey.flow_versions (flow_id, version, definition) \
             SELECT $1, max(version) + 1, $2 FROM journey.flow_versions WHERE flow_id = $1 RETURNING version",
            &[self.flow_id.into(), JsonB(self.def.clone()).into()],
        )?
        .unwrap_or(1);
        Spi::run_with_args(
            "UPDATE journey.flows SET status = 'active', paused_reason = NULL, version = $2, start_node = $3 WHERE id = $1",
            &[self.flow_id.into(), version.into(), self.parsed.start.as_str().into()],
        )?;
        Spi::run_with_args(
            "UPDATE journey.enrollments SET status = 'stopped', due_at = NULL \
             WHERE flow_id = $1 AND contact_id = $2 AND status = 'active'",
            &[self.flow_id.into(), self.contact.into()],
        )?;
        Ok(Spi::get_one_with_args::<i64>(
            "INSERT INTO journey.enrollments (flow_id, version, contact_id, node, due_at, data, occurrence) \
             VALUES ($1, $2, $3, $4, now(), '{\"trigger\": \"simulate\"}', 'simulate') RETURNING id",
            &[self.flow_id.into(), version.into(), self.contact.into(), self.parsed.start.as_str().into()],
        )?
        .expect("RETURNING id"))
    }

    /// Makes the check or wait_event the enrollment waits on answer `yes` when `assume` says
    /// so: its message reaches the first status it waits for, or the event happens.
    fn answer_yes(&self, enrollment: i64, node: &str) -> Result<bool> {
        let Some(n) = self.parsed.nodes.get(node) else {
            return Ok(false);
        };
        if !self.assume.yes(node, n.type_name()) {
            return Ok(false);
        }
        match &n.kind {
            NodeKind::Check { message, statuses, .. } => Spi::run_with_args(
                "UPDATE journey.outbox SET status = $3 WHERE contact_id = $4 AND node = $2 AND enrollment_id = $1",
                &[enrollment.into(), message.as_str().into(), statuses[0].into(), self.contact.into()],
            )?,
            NodeKind::WaitEvent { event, .. } => Spi::run_with_args(
                "INSERT INTO journey.events (name, contact_id, payload) VALUES ($1, $2, '{}')",
                &[event.as_str().into(), self.contact.into()],
            )?,
            _ => return Ok(false),
        }
        Spi::run_with_args(
            "UPDATE journey.enrollments SET due_at = least(due_at, now()) WHERE id = $1 AND contact_id = $2",
            &[enrollment.into(), self.contact.into()],
        )?;
        Ok(true)
    }

    /// Each step the enrollment took, with the message it wrote (the n-th message of a node
    /// belongs to the n-th step at that node that wrote one); a deferred message (quiet hours)
    /// shows the time it may go.
    fn collect(&self, enrollment: i64) -> Result<Vec<Row>> {
        Spi::connect(|client| {
            let table = client.select(
                "WITH s AS (SELECT s.id, s.enrollment_id, s.at, s.node, s.outcome, CASE WHEN s.outcome IN ('sent', 'created', 'queued') \
                              THEN row_number() OVER (PARTITION BY s.enrollment_id, s.node, s.outcome IN ('sent', 'created', 'queued') ORDER BY s.id) END AS n \
                            FROM journey.steps s WHERE s.contact_id = $2 AND s.enrollment_id IN (SELECT e.id FROM journey.enrollments e \
                              WHERE e.contact_id = $2 AND (e.id = $1 OR e.parent_id = $1))), \
                      o AS (SELECT o.*, row_number() OVER (PARTITION BY o.enrollment_id, o.node ORDER BY o.id) AS n \
                            FROM journey.outbox o WHERE o.contact_id = $2 AND o.enrollment_id IN (SELECT e.id FROM journey.enrollments e \
                              WHERE e.contact_id = $2 AND (e.id = $1 OR e.parent_id = $1))) \
                 SELECT coalesce(o.not_before, s.at), s.node, s.outcome, o.channel, o.recipient, o.subject, \
                        coalesce(o.body, o.payload::text) \
                 FROM s LEFT JOIN o ON o.enrollment_id = s.enrollment_id AND o.node = s.node AND o.n = s.n ORDER BY s.at, s.id",
                None,
                &[enrollment.into(), self.contact.into()],
            )?;
            let mut rows = Vec::new();
            for r in table {
                let node: String = r.get(2)?.unwrap_or_default();
                let type_name = self
                    .parsed
                    .nodes
                    .get(&node)
                    .map(|n| n.type_name())
                    .unwrap_or("");
                rows.push((
                    r.get(1)?.expect("step time"),
                    node,
                    type_name.to_string(),
                    r.get(3)?.unwrap_or_default(),
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                ));
            }
            Ok(rows)
        })
    }
}

/// An active row: id, node, seq, due time, whether it waits.
type Active = (i64, String, i32, TimestampWithTimeZone, bool);

/// The enrollment's and its fork branches' rows still active: id, node, seq, due time and
/// whether it waits (check, wait_event); a parent waiting for its branches is due at infinity.
fn state(enrollment: i64, contact: i64) -> Result<Vec<Active>> {
    Spi::connect(|client| {
        let table = client.select(
            "SELECT id, node, seq, due_at, waiting IS NOT NULL FROM journey.enrollments \
             WHERE contact_id = $2 AND (id = $1 OR parent_id = $1) AND status = 'active'",
            None,
            &[enrollment.into(), contact.into()],
        )?;
        let mut rows = Vec::new();
        for r in table {
            rows.push((
                r.get(1)?.unwrap_or_default(),
                r.get(2)?.unwrap_or_default(),
                r.get(3)?.unwrap_or_default(),
                r.get(4)?.expect("active enrollments are due"),
                r.get(5)?.unwrap_or(false),
            ));
        }
        Ok(rows)
    })
}

extension_sql!(
    "COMMENT ON FUNCTION journey.simulate(text, bigint, interval, jsonb, jsonb) IS \
     'A dry run: runs the flow''s current definition (or definition, e.g. an unsaved edit; drafts too) for the contact from now until now() + until on a virtual clock with the real rules (zones, windows, quiet hours: the row shows the deferred time, suppression, splits, conditions on the contact''s data) and returns each step with the message it would write. assume answers what cannot be known in advance, per node type or node id: {\"check_sms\": \"yes\", \"wait_event\": \"no\"} (default no). Runs in a subtransaction that is rolled back: nothing it wrote remains.';",
    name = "simulate_comment",
    requires = [simulate]
);
