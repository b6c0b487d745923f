//! Parsing a node: what every node has (`type`, `stage`, `next`), then its type's parser from
//! the registry. One file per node family (as in engine/nodes/) with the parsers of its types,
//! their checks, and what the registry asks of a parsed node (Liquid fields, branches).
pub mod branch;
pub mod check;
pub mod contact;
pub mod fork;
pub mod goal;
pub mod record;
pub mod send;
pub mod wait;

use super::flow::{Edge, Node};
use super::parse::Ctx;
use super::registry;
use super::suggest;
use serde_json::{Map, Value};

/// What a node type's parser reads: the node's id, its fields, and its `next` (already read).
pub struct Input<'a> {
    pub id: &'a str,
    pub fields: &'a Map<String, Value>,
    pub next: Option<&'a Edge>,
}

/// Parses the node `id`, listing its problems; None when it has no type or an unknown one.
pub fn parse(id: &str, fields: &Map<String, Value>, cx: &mut Ctx) -> Option<Node> {
    let type_name = cx.string(fields, "type", true)?;
    let stage = cx.string(fields, "stage", false);
    // a fork's `next` is its list of branches (nodes/fork.rs)
    let next = match type_name.as_str() {
        "fork" => None,
        _ => cx.edge(fields.get("next"), "next"),
    };
    let Some(node_type) = registry::get(&type_name) else {
        let names: Vec<&str> = registry::names().collect();
        let hint = suggest::hint(&type_name, &names, "known:");
        cx.problem(format!("unknown node type \"{type_name}\"{hint}"));
        return None;
    };
    if let Some(own) = node_type.fields {
        unknown_fields(fields, own, cx);
    }
    let input = Input {
        id,
        fields,
        next: next.as_ref(),
    };
    let kind = (node_type.parse)(&input, cx);
    Some(Node {
        id: id.to_string(),
        kind,
        next,
        stage,
    })
}

/// Fields every node may have.
pub const COMMON_FIELDS: &[&str] = &["type", "next", "stage"];

/// A problem for each key that is neither a common field nor one of the type's `own`, with
/// the nearest known field as a hint (a typo would otherwise be ignored).
fn unknown_fields(fields: &Map<String, Value>, own: &[&str], cx: &mut Ctx) {
    let known: Vec<&str> = COMMON_FIELDS.iter().chain(own).copied().collect();
    for key in fields.keys() {
        if !known.contains(&key.as_str()) {
            let hint = suggest::hint(key, &known, "its fields:");
            cx.problem(format!("unknown field \"{key}\"{hint}"));
        }
    }
}

#[cfg(test)]
mod unit {
    use crate::model::FlowDef;
    use serde_json::json;

    fn problems(node: serde_json::Value) -> Vec<String> {
        let (_, problems) = FlowDef::parse(&json!({
            "triggers": [{"type": "manual"}], "start": "a",
            "nodes": {"a": node}
        }));
        problems
            .into_iter()
            .map(|p| format!("{}: {}", p.node, p.problem))
            .collect()
    }

    #[test]
    fn unknown_fields_name_the_nearest_known_one() {
        assert_eq!(
            problems(json!({"type": "send_sms", "text": "Hi", "unsubscibe": true})),
            ["a: unknown field \"unsubscibe\" (did you mean \"unsubscribe\"?)"]
        );
        assert_eq!(
            problems(json!({"type": "goal", "name": "won", "stag": "x", "nxt": "a"})),
            [
                "a: unknown field \"nxt\" (did you mean \"next\"?)",
                "a: unknown field \"stag\" (did you mean \"stage\"?)"
            ]
        );
        assert_eq!(
            problems(json!({"type": "send_smss", "text": "Hi"})),
            ["a: unknown node type \"send_smss\" (did you mean \"send_sms\"?)"]
        );
        assert_eq!(
            problems(json!({"type": "exit", "colour": "red"})),
            ["a: unknown field \"colour\" (its fields: type, next, stage)"]
        );
        assert_eq!(
            problems(
                json!({"type": "wait", "dealy": "1 day", "next": {"to": "a", "dealy": "1 day"}})
            ),
            [
                "a: field \"next\" has unknown key \"dealy\" (did you mean \"delay\"?)",
                "a: unknown field \"dealy\" (did you mean \"delay\"?)",
                "a: a wait needs \"delay\", \"at\", \"days\" or \"window\"",
                "a: is on a cycle with no delay (add a positive \"delay\" to an edge or a wait on the cycle)",
            ]
        );
        assert_eq!(
            problems(
                json!({"type": "split", "branches": [{"percent": 50, "next": {"to": "a", "delay": "1 day"}},
                                                          {"percnt": 50, "next": {"to": "a", "delay": "1 day"}}]})
            ),
            [
                "a: branch 1: unknown field \"percnt\" (did you mean \"percent\"?)",
                "a: branch 1: \"percent\" must be a number from 0 to 100",
                "a: split percentages sum to 50, not 100",
            ]
        );
    }
}
