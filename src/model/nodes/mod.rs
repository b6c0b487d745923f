//! Parsing a node: what every node has (`type`, `stage`, `next`), then its type's parser from
//! the registry. One file per node family (as in engine/nodes/) with the parsers of its types,
//! their checks, and what the registry asks of a parsed node (Liquid fields, branches).
pub mod branch;
pub mod check;
pub mod fork;
pub mod contact;
pub mod goal;
pub mod send;
pub mod wait;

use super::flow::{Edge, Node};
use super::parse::Ctx;
use super::registry;
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
        cx.problem(format!(
            "unknown node type \"{type_name}\" (known: {})",
            registry::names().collect::<Vec<_>>().join(", ")
        ));
        return None;
    };
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
