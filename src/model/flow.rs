//! The flow definition's types (README "SQL API", docs/ARCHITECTURE.md): what `FlowDef::parse`
//! makes of the jsonb, and what the engine, the stats and the diagram read. What is particular
//! to a node type (its name, parser, Liquid fields, branches) is found through the registry.
use super::interval::Interval;
use super::registry::{self, NodeType};
use super::times::Window;
use super::triggers::Trigger;
use chrono::{NaiveTime, Weekday};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One row of `journey.validate_flow`: the node (or `(flow)`, `trigger[i]`) and the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub node: String,
    pub problem: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reentry {
    Never,
    Always,
    After(Interval),
}

/// Where to go after a node, and when: after `delay`, then exactly `at` on `days`, or at once
/// inside `window` (never both `at` and `window`, nor `days` beside a window: its own `days`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Edge {
    pub to: String,
    pub delay: Option<Interval>,
    pub at: Option<NaiveTime>,
    pub days: Option<Vec<Weekday>>,
    pub window: Option<Window>,
}

impl Edge {
    /// Whether following this edge always takes time (used by cycle detection).
    pub fn waits(&self) -> bool {
        self.delay.is_some_and(|d| !d.is_zero())
    }

    pub fn is_immediate(&self) -> bool {
        self.delay.is_none_or(|d| d.is_zero())
            && self.at.is_none()
            && self.days.is_none()
            && self.window.is_none()
    }
}

/// What a node does, with its own fields. Each variant is made by one node type's parser
/// (`registry::TYPES`; `check_sms` and `check_email` both make `Check`).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `text` is empty when the message is a `template` (of channel sms).
    SendSms {
        text: String,
        template: Option<String>,
        sender: Option<String>,
        unsubscribe: bool,
        ignore_quiet_hours: bool,
    },
    SendEmail {
        template: Option<String>,
        subject: Option<String>,
        body: Option<String>,
        from_name: Option<String>,
        from: Option<String>,
        /// Empty: the contact.
        to: Vec<super::recipients::Recipient>,
        cc: Vec<super::recipients::Recipient>,
        bcc: Vec<super::recipients::Recipient>,
    },
    Wait {
        delay: Option<Interval>,
        at: Option<NaiveTime>,
        days: Option<Vec<Weekday>>,
        window: Option<Window>,
    },
    Goal {
        name: String,
    },
    Exit,
    /// `text` is empty when the message is a `template` (of channel whatsapp).
    SendWhatsapp {
        text: String,
        template: Option<String>,
    },
    NotifyAdmin {
        to: Option<String>,
        subject: Option<String>,
        text: String,
    },
    CreateTask {
        assignee: Option<String>,
        title: String,
        due: Option<Interval>,
    },
    Webhook {
        url: String,
        method: String,
        body: Option<String>,
    },
    UpdateContact {
        add_groups: Vec<String>,
        remove_groups: Vec<String>,
        set: Map<String, Value>,
    },
    Condition {
        predicate: Value,
        then: Option<Edge>,
        otherwise: Option<Edge>,
    },
    Split {
        branches: Vec<(f64, Edge)>,
    },
    /// check_sms / check_email: `yes` once the message reaches one of `statuses`.
    Check {
        channel: &'static str,
        message: String,
        statuses: Vec<&'static str>,
        wait: Interval,
        yes: Option<Edge>,
        no: Option<Edge>,
    },
    WaitEvent {
        event: String,
        timeout: Interval,
        yes: Option<Edge>,
        no: Option<Edge>,
    },
    /// update_record: `set` on the record that fired the flow (`target` "record") or a link's row.
    UpdateRecord {
        target: String,
        set: super::nodes::record::Values,
    },
    /// create_record: a row of `values` inserted into `table` (attached or allowed).
    CreateRecord {
        table: String,
        values: super::nodes::record::Values,
    },
    /// fork: the enrollment goes on along every one of `branches` at once (its `next` list).
    Fork {
        branches: Vec<Edge>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub next: Option<Edge>,
    pub stage: Option<String>,
}

impl Node {
    /// The node's entry in the registry of node types.
    pub fn node_type(&self) -> &'static NodeType {
        registry::of(&self.kind)
    }

    /// The node's `type` in the definition (`send_sms`, `wait`, …).
    pub fn type_name(&self) -> &'static str {
        self.node_type().name
    }

    /// Whether the node writes a message (an outbox row).
    pub fn sends(&self) -> bool {
        self.node_type().sends
    }

    /// Every edge leaving the node, with its label ("" for next, then, else, yes, no, n%).
    pub fn labelled_edges(&self) -> Vec<(String, &Edge)> {
        let mut out: Vec<(String, &Edge)> = self.next.iter().map(|e| (String::new(), e)).collect();
        out.extend((self.node_type().branches)(&self.kind));
        out
    }

    /// Every edge leaving the node.
    pub fn edges(&self) -> Vec<&Edge> {
        self.labelled_edges().into_iter().map(|(_, e)| e).collect()
    }

    /// The edges an enrollment may follow without any time passing: every edge without a
    /// positive delay of its own, unless the node's type says otherwise (none after a wait with
    /// a positive delay; not a wait_event's `no`, taken only once its positive timeout has
    /// passed). A check's `yes` and `no` can both be instant (the message may already be
    /// delivered, or was never sent).
    pub fn instant_edges(&self) -> Vec<&Edge> {
        (self.node_type().instant)(self)
    }

    /// Liquid sources of the node, with the field they come from.
    pub fn templates(&self) -> Vec<(&'static str, &str)> {
        (self.node_type().templates)(&self.kind)
    }
}

/// A parsed definition. `refs` are the names it uses that must exist in the database.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowDef {
    pub triggers: Vec<Trigger>,
    pub reentry: Reentry,
    pub start: String,
    pub nodes: BTreeMap<String, Node>,
    pub refs: Vec<Reference>,
}

/// A name the definition uses (a group, form, event type or template) that must exist in the
/// database: `journey.validate_flow` looks each one up.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub node: String,
    pub kind: &'static str,
    pub name: String,
}
