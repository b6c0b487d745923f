//! The flow definition (README "SQL API", docs/ARCHITECTURE.md): its shape and size checked
//! first (`check_shape`), then parsed leniently so validation can list every problem
//! (`FlowDef::parse`: triggers, reentry, nodes, start, then the graph checks), then used as
//! typed values by the engine. The pieces live beside this file: the types in flow.rs (and
//! `Trigger` in triggers.rs, beside its parser), the readers of fields in parse.rs, nodes/ (one
//! file per node family), times.rs, graph.rs and the node types' registry.rs; they are
//! re-exported here under their old paths.
use super::json;
use super::parse::{Ctx, FLOW};
use super::triggers;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use super::flow::{Edge, FlowDef, Node, NodeKind, Problem, Reentry, Reference};
pub use super::nodes::contact::CONTACT_FIELDS;
pub use super::times::{parse_days, parse_time};
pub use super::triggers::Trigger;

/// Most nodes a definition may have.
pub const MAX_NODES: usize = 1000;
/// Most triggers a definition may have.
pub const MAX_TRIGGERS: usize = 100;
/// Deepest nesting of JSON arrays and objects in a definition.
pub const MAX_DEPTH: usize = 32;

/// Errors that make a definition unusable even as a draft (the wrong shape, or too large to
/// check and run safely).
pub fn check_shape(def: &Value) -> Result<(), String> {
    let obj = def
        .as_object()
        .ok_or("the definition must be a JSON object")?;
    let depth = json::depth(def);
    if depth > MAX_DEPTH {
        return Err(format!(
            "it is nested {depth} levels deep, more than {MAX_DEPTH}"
        ));
    }
    if let Some(n) = obj.get("nodes").and_then(Value::as_object) {
        if n.len() > MAX_NODES {
            return Err(format!("it has {} nodes, more than {MAX_NODES}", n.len()));
        }
    }
    if let Some(t) = obj.get("triggers").and_then(Value::as_array) {
        if t.len() > MAX_TRIGGERS {
            return Err(format!(
                "it has {} triggers, more than {MAX_TRIGGERS}",
                t.len()
            ));
        }
    }
    if let Some(t) = obj.get("triggers") {
        if !t.is_array() {
            return Err("\"triggers\" must be an array".into());
        }
    }
    if let Some(n) = obj.get("nodes") {
        let nodes = n
            .as_object()
            .ok_or("\"nodes\" must be an object of node id -> node")?;
        for (id, node) in nodes {
            if !node.is_object() {
                return Err(format!("node \"{id}\" must be an object"));
            }
        }
    }
    if let Some(s) = obj.get("start") {
        if !s.is_string() {
            return Err("\"start\" must be a node id (a string)".into());
        }
    }
    Ok(())
}

impl FlowDef {
    /// Parses a definition, listing every problem but the syntax of its Liquid fields (see
    /// [`FlowDef::validate`]). The result is usable only when no problem was found; callers
    /// must `check_shape` first.
    pub fn parse(def: &Value) -> (FlowDef, Vec<Problem>) {
        FlowDef::validate(def, &|_| Ok(()))
    }

    /// [`FlowDef::parse`], and every Liquid field checked by `liquid` (the template compiler,
    /// which `api` passes in: the model does not render), its error a problem of the node.
    pub fn validate(
        def: &Value,
        liquid: &dyn Fn(&str) -> Result<(), String>,
    ) -> (FlowDef, Vec<Problem>) {
        let empty = Map::new();
        let obj = def.as_object().unwrap_or(&empty);
        let mut cx = Ctx {
            problems: Vec::new(),
            refs: Vec::new(),
            node: FLOW.into(),
        };

        let triggers = triggers::parse(obj.get("triggers"), &mut cx);

        cx.node = FLOW.into();
        let reentry = match obj.get("reentry") {
            None | Some(Value::Null) => Reentry::Never,
            Some(Value::String(s)) if s == "never" => Reentry::Never,
            Some(Value::String(s)) if s == "always" => Reentry::Always,
            Some(Value::Object(o)) if o.contains_key("after") => cx
                .interval(o, "after")
                .map(Reentry::After)
                .unwrap_or(Reentry::Never),
            Some(other) => {
                cx.problem(format!("\"reentry\" must be \"never\", \"always\" or {{\"after\": interval}}, not {other}"));
                Reentry::Never
            }
        };

        let mut nodes = BTreeMap::new();
        match obj.get("nodes").and_then(Value::as_object) {
            Some(map) if !map.is_empty() => {
                for (id, v) in map {
                    cx.node = id.clone();
                    let fields = v.as_object().unwrap_or(&empty);
                    let Some(node) = super::nodes::parse(id, fields, &mut cx) else {
                        continue;
                    };
                    for (field, source) in node.templates() {
                        if let Err(e) = liquid(source) {
                            cx.problem(format!("field \"{field}\": Liquid syntax error: {e}"));
                        }
                    }
                    nodes.insert(id.clone(), node);
                }
            }
            _ => {
                cx.node = FLOW.into();
                cx.problem("the flow has no nodes");
            }
        }

        cx.node = FLOW.into();
        let start = match obj.get("start").and_then(Value::as_str) {
            None => {
                cx.problem("missing \"start\" (the id of the first node)");
                String::new()
            }
            Some(s)
                if !obj
                    .get("nodes")
                    .and_then(Value::as_object)
                    .is_some_and(|m| m.contains_key(s)) =>
            {
                cx.problem(format!("\"start\" names unknown node \"{s}\""));
                s.to_string()
            }
            Some(s) => s.to_string(),
        };

        let flow = FlowDef {
            triggers,
            reentry,
            start,
            nodes,
            refs: cx.refs,
        };
        let mut problems = cx.problems;
        problems.extend(flow.graph_problems(obj.get("nodes").and_then(Value::as_object)));
        (flow, problems)
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    /// Stands in for the Liquid compiler (api passes render::template::compile): `{% if %}`
    /// without a condition is its one syntax error.
    fn liquid(source: &str) -> Result<(), String> {
        if source.contains("{% if %}") {
            Err("liquid: Expected if condition".into())
        } else {
            Ok(())
        }
    }

    fn problems(def: Value) -> Vec<String> {
        FlowDef::validate(&def, &liquid)
            .1
            .into_iter()
            .map(|p| format!("{}: {}", p.node, p.problem))
            .collect()
    }

    #[test]
    fn complete_flow_has_no_problems() {
        let p = problems(json!({
            "triggers": [{"type": "group_joined", "group": "g"}],
            "start": "a",
            "nodes": {"a": {"type": "send_sms", "text": "Hi {{ contact.first_name }}", "next": {"to": "b", "delay": "1 day"}},
                      "b": {"type": "goal", "name": "done"}}
        }));
        assert!(p.is_empty(), "{p:?}");
    }

    #[test]
    fn lists_every_problem() {
        let p = problems(json!({
            "triggers": [],
            "nodes": {"a": {"type": "send_sms", "next": "zz"},
                      "b": {"type": "teleport"},
                      "c": {"type": "send_sms", "text": "{% if %}", "next": {"to": "a", "delay": "soon", "at": "25:00", "days": ["funday"]}}}
        }));
        let all = p.join("\n");
        for needle in [
            "no trigger",
            "missing \"start\"",
            "missing required field \"text\"",
            "missing node \"zz\"",
            "unknown node type \"teleport\"",
            "Liquid syntax error",
            "not an interval",
            "not a time of day",
            "not a day name",
        ] {
            assert!(all.contains(needle), "expected {needle} in\n{all}");
        }
    }

    #[test]
    fn liquid_is_checked_only_by_validate() {
        let def = json!({
            "triggers": [{"type": "manual"}], "start": "a",
            "nodes": {"a": {"type": "send_sms", "text": "{% if %}"}}
        });
        assert!(FlowDef::parse(&def).1.is_empty());
        assert_eq!(
            problems(def),
            ["a: field \"text\": Liquid syntax error: liquid: Expected if condition"]
        );
    }
}
