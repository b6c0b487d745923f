//! The triggers of a definition (who is enrolled, and when): one entry per trigger `type` in
//! `KINDS`, its parser in its family's file (group.rs, form.rs, event.rs, contact.rs, date.rs,
//! record.rs, manual in this file). Every kind accepts `where`, a predicate over `contact.*` and `event.*`
//! (the data the enrollment will carry), parsed here. A new trigger kind is one file and one
//! entry (docs/ARCHITECTURE.md, "Adding a trigger kind").
use super::parse::{Ctx, FLOW};
use serde_json::{Map, Value};

mod contact;
mod date;
mod event;
mod form;
mod group;
pub mod record;

/// How activation finds a trigger's routing key (`journey.flow_triggers.key`).
#[derive(Debug, Clone, PartialEq)]
pub enum Key {
    /// The id of the group with this name.
    Group(String),
    /// The id of the form with this name.
    Form(String),
    /// The event type's name.
    EventType(String),
    /// This text as it is (a date trigger's field).
    Text(String),
    /// The empty key: every write of the kind concerns the flow.
    Any,
}

/// One parsed trigger: its kind (`flow_triggers.kind`), its key, the settings its SQL reads
/// (`flow_triggers.params`: a date trigger's rules, contact_updated's fields) and its `where`.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    pub kind: &'static str,
    pub key: Key,
    pub params: Option<Value>,
    pub condition: Option<Value>,
}

/// What a kind's parser makes of a trigger: its routing key and its params.
pub type Parsed = Option<(Key, Option<Value>)>;

/// One trigger kind.
pub struct TriggerKind {
    /// Its `type` in a definition (and `flow_triggers.kind`).
    pub name: &'static str,
    /// Reads the trigger's own fields (all but `type` and `where`), listing every problem; None
    /// when a required field is missing.
    pub parse: fn(&Map<String, Value>, &mut Ctx) -> Parsed,
    /// Whether `activate_flow(include_existing => true)` has something to enroll for it.
    pub include_existing: bool,
    /// Whether writes route to it (false: only `journey.enroll` enrolls).
    pub routed: bool,
}

impl TriggerKind {
    const fn new(
        name: &'static str,
        parse: fn(&Map<String, Value>, &mut Ctx) -> Parsed,
    ) -> TriggerKind {
        TriggerKind {
            name,
            parse,
            include_existing: false,
            routed: true,
        }
    }
}

/// Every trigger kind, in the order the unknown-type problem lists them.
pub static KINDS: &[TriggerKind] = &[
    TriggerKind {
        include_existing: true,
        ..TriggerKind::new("group_joined", group::joined)
    },
    TriggerKind::new("group_left", group::left),
    TriggerKind::new("form_submitted", form::submitted),
    TriggerKind::new("event", event::event),
    TriggerKind {
        include_existing: true,
        ..TriggerKind::new("date", date::date)
    },
    TriggerKind::new("contact_created", contact::created),
    TriggerKind::new("contact_updated", contact::updated),
    TriggerKind::new("record", record::record),
    TriggerKind {
        routed: false,
        ..TriggerKind::new("manual", manual)
    },
];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static TriggerKind> {
    KINDS.iter().find(|k| k.name == name)
}

fn manual(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(o, "manual", &[], cx);
    Some((Key::Any, None))
}

/// The `triggers` array: at least one, each an object with a known `type`.
pub fn parse(v: Option<&Value>, cx: &mut Ctx) -> Vec<Trigger> {
    let mut out = Vec::new();
    let items = match v.and_then(Value::as_array) {
        Some(items) if !items.is_empty() => items,
        _ => {
            cx.node = FLOW.into();
            cx.problem(
                "the flow has no trigger (add {\"type\": \"manual\"} for journey.enroll only)",
            );
            return out;
        }
    };
    for (i, t) in items.iter().enumerate() {
        cx.node = format!("trigger[{i}]");
        let Some(o) = t.as_object() else {
            cx.problem(format!("a trigger must be an object, not {t}"));
            continue;
        };
        let name = cx.string(o, "type", true).unwrap_or_default();
        let Some(kind) = kind(&name) else {
            if !name.is_empty() {
                let names: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
                let hint = super::suggest::hint(&name, &names, "use");
                cx.problem(format!("unknown trigger type \"{name}\"{hint}"));
            }
            continue;
        };
        let condition = o.get("where").filter(|w| !w.is_null()).cloned();
        if let Some(w) = &condition {
            cx.predicate(w, "where");
        }
        if let Some((key, params)) = (kind.parse)(o, cx) {
            out.push(Trigger {
                kind: kind.name,
                key,
                params,
                condition,
            });
        }
    }
    out
}

/// A required string field naming a group, form or event type: recorded as a reference (so
/// validation says when it does not exist).
fn named(o: &Map<String, Value>, field: &str, what: &'static str, cx: &mut Ctx) -> Option<String> {
    let name = cx.string(o, field, true)?;
    cx.reference(what, &name);
    Some(name)
}

/// Problems for keys a trigger of this kind does not take (a typo would otherwise be ignored).
fn known_keys(o: &Map<String, Value>, kind: &str, keys: &[&str], cx: &mut Ctx) {
    for key in o.keys() {
        if !["type", "where"].contains(&key.as_str()) && !keys.contains(&key.as_str()) {
            let mut all = keys.to_vec();
            all.push("where");
            let hint = super::suggest::hint(key, &all, "its fields:");
            cx.problem(format!("a {kind} trigger has no field \"{key}\"{hint}"));
        }
    }
}

#[cfg(test)]
mod unit {
    use super::Key;
    use crate::model::{FlowDef, Trigger};
    use serde_json::{json, Value};

    pub fn parse(triggers: Value) -> (Vec<Trigger>, Vec<String>) {
        let (def, problems) = FlowDef::parse(&json!({
            "triggers": triggers, "start": "a", "nodes": {"a": {"type": "exit"}}
        }));
        let problems = problems
            .into_iter()
            .map(|p| format!("{}: {}", p.node, p.problem))
            .collect();
        (def.triggers, problems)
    }

    #[test]
    fn each_kind_and_its_problems() {
        let (triggers, problems) = parse(json!([
            {"type": "group_joined", "group": "vip", "where": {"field": "contact.email", "op": "exists"}},
            {"type": "event", "event": "paid", "where": {"field": "amount", "op": ">", "value": 1}},
            {"type": "recrd"},
            {"type": "teleport"},
            {"type": "form_submitted"},
            "manual",
            {"type": "manual"},
            {"type": "group_left", "group": "vip", "grup": "x"},
            {"type": "manual", "audience": "all"},
            {"type": "group_joind", "group": "vip"}
        ]));
        let kinds: Vec<(&str, Key)> = triggers.iter().map(|t| (t.kind, t.key.clone())).collect();
        assert_eq!(
            kinds,
            [
                ("group_joined", Key::Group("vip".into())),
                ("event", Key::EventType("paid".into())),
                ("manual", Key::Any),
                ("group_left", Key::Group("vip".into())),
                ("manual", Key::Any),
            ]
        );
        assert_eq!(
            triggers[0].condition,
            Some(json!({"field": "contact.email", "op": "exists"}))
        );
        assert_eq!(
            problems,
            [
                "trigger[1]: where: field \"amount\" must start with contact., event., record. or old.",
                "trigger[2]: unknown trigger type \"recrd\" (did you mean \"record\"?)",
                "trigger[3]: unknown trigger type \"teleport\" (use group_joined, group_left, form_submitted, event, date, contact_created, contact_updated, record, manual)",
                "trigger[4]: missing required field \"form\"",
                "trigger[5]: a trigger must be an object, not \"manual\"",
                "trigger[7]: a group_left trigger has no field \"grup\" (did you mean \"group\"?)",
                "trigger[8]: a manual trigger has no field \"audience\" (its fields: where)",
                "trigger[9]: unknown trigger type \"group_joind\" (did you mean \"group_joined\"?)",
            ]
        );
        assert_eq!(
            parse(json!([])).1,
            ["(flow): the flow has no trigger (add {\"type\": \"manual\"} for journey.enroll only)"]
        );
    }
}
