//! Parsing the triggers of a definition (who is enrolled, and when): group_joined,
//! form_submitted, event (with an optional `where` predicate on the payload) and manual.
use super::parse::{Ctx, FLOW};
use serde_json::{Map, Value};

/// Who is enrolled: members joining a group, submissions of a form, events of a type (whose
/// payload matches `condition`, the trigger's `where`), or only by hand (`journey.enroll`).
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    GroupJoined {
        group: String,
    },
    FormSubmitted {
        form: String,
    },
    Event {
        event: String,
        condition: Option<Value>,
    },
    Manual,
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
    let empty = Map::new();
    for (i, t) in items.iter().enumerate() {
        cx.node = format!("trigger[{i}]");
        let Some(o) = t.as_object() else {
            cx.problem(format!("a trigger must be an object, not {t}"));
            continue;
        };
        let kind = cx.string(o, "type", true).unwrap_or_default();
        let o = if o.is_empty() { &empty } else { o };
        match kind.as_str() {
            "group_joined" => {
                if let Some(group) = cx.string(o, "group", true) {
                    cx.reference("group", &group);
                    out.push(Trigger::GroupJoined { group });
                }
            }
            "form_submitted" => {
                if let Some(form) = cx.string(o, "form", true) {
                    cx.reference("form", &form);
                    out.push(Trigger::FormSubmitted { form });
                }
            }
            "event" => {
                let condition = o.get("where").filter(|w| !w.is_null()).cloned();
                if let Some(w) = &condition {
                    cx.predicate(w, "where");
                }
                if let Some(event) = cx.string(o, "event", true) {
                    cx.reference("event type", &event);
                    out.push(Trigger::Event { event, condition });
                }
            }
            "manual" => out.push(Trigger::Manual),
            "date" | "record" => cx.problem(format!("trigger type \"{kind}\" is not yet supported")),
            "" => {}
            other => cx.problem(format!(
                "unknown trigger type \"{other}\" (use group_joined, form_submitted, event or manual)"
            )),
        }
    }
    out
}

#[cfg(test)]
mod unit {
    use crate::model::{FlowDef, Trigger};
    use serde_json::{json, Value};

    fn parse(triggers: Value) -> (Vec<Trigger>, Vec<String>) {
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
            {"type": "group_joined", "group": "vip"},
            {"type": "event", "event": "paid", "where": {"field": "amount", "op": ">", "value": 1}},
            {"type": "date"},
            {"type": "teleport"},
            {"type": "form_submitted"},
            "manual",
            {"type": "manual"}
        ]));
        assert_eq!(
            triggers,
            [
                Trigger::GroupJoined {
                    group: "vip".into()
                },
                Trigger::Event {
                    event: "paid".into(),
                    condition: Some(json!({"field": "amount", "op": ">", "value": 1}))
                },
                Trigger::Manual
            ]
        );
        assert_eq!(
            problems,
            [
                "trigger[1]: where: field \"amount\" must start with contact. or event.",
                "trigger[2]: trigger type \"date\" is not yet supported",
                "trigger[3]: unknown trigger type \"teleport\" (use group_joined, form_submitted, event or manual)",
                "trigger[4]: missing required field \"form\"",
                "trigger[5]: a trigger must be an object, not \"manual\"",
            ]
        );
        assert_eq!(
            parse(json!([])).1,
            ["(flow): the flow has no trigger (add {\"type\": \"manual\"} for journey.enroll only)"]
        );
    }
}
