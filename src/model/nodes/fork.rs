//! fork: the enrollment goes on along every branch of `next` at once (docs/ARCHITECTURE.md,
//! "Parallel branches"). `next` is a list of at least two edges to distinct nodes (each a node
//! id or `{"to", "delay", …}`); they are its only edges, followed without time passing unless
//! they have a positive delay.
use super::Input;
use crate::model::flow::{Edge, NodeKind};
use crate::model::parse::Ctx;
use serde_json::Value;

/// `next`: at least two edges, no node twice.
/// A fork's own fields (besides type, next and stage).
pub const FORK_FIELDS: &[&str] = &[];

pub fn fork(input: &Input, cx: &mut Ctx) -> NodeKind {
    let mut branches: Vec<Edge> = Vec::new();
    let Some(Value::Array(items)) = input.fields.get("next") else {
        cx.problem(
            "a fork needs \"next\": a list of at least two node ids (the branches it runs at once)",
        );
        return NodeKind::Fork { branches };
    };
    for (i, item) in items.iter().enumerate() {
        let field = format!("next[{i}]");
        let Some(edge) = cx.edge(Some(item), &field) else {
            if item.is_null() {
                cx.problem(format!("field \"{field}\" must be a node id, not null"));
            }
            continue;
        };
        if branches.iter().any(|b| b.to == edge.to) {
            cx.problem(format!(
                "field \"{field}\": node \"{}\" is listed twice (each branch of a fork goes to a different node)",
                edge.to
            ));
            continue;
        }
        branches.push(edge);
    }
    if items.len() < 2 {
        cx.problem(format!(
            "a fork needs at least two branches in \"next\", not {}",
            items.len()
        ));
    }
    NodeKind::Fork { branches }
}

/// A fork's branches, labelled `parallel <n>` (from 0, as its children's `branch`).
pub fn branches(kind: &NodeKind) -> Vec<(String, &Edge)> {
    match kind {
        NodeKind::Fork { branches } => branches
            .iter()
            .enumerate()
            .map(|(i, e)| (format!("parallel {i}"), e))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod unit {
    use crate::model::FlowDef;
    use serde_json::{json, Value};

    fn problems(fork: Value) -> Vec<String> {
        let (_, problems) = FlowDef::parse(&json!({
            "triggers": [{"type": "manual"}], "start": "f",
            "nodes": {"f": fork, "a": {"type": "exit"}, "b": {"type": "exit"}}
        }));
        problems
            .into_iter()
            .map(|p| format!("{}: {}", p.node, p.problem))
            .collect()
    }

    #[test]
    fn two_distinct_existing_branches() {
        let ok = problems(json!({"type": "fork", "next": ["a", {"to": "b", "delay": "1 day"}]}));
        assert_eq!(ok, Vec::<String>::new());
        let (def, _) = FlowDef::parse(&json!({
            "triggers": [{"type": "manual"}], "start": "f",
            "nodes": {"f": {"type": "fork", "next": ["a", "b"]},
                      "a": {"type": "exit"}, "b": {"type": "exit"}}
        }));
        let labels: Vec<(String, String)> = def.nodes["f"]
            .labelled_edges()
            .into_iter()
            .map(|(l, e)| (l, e.to.clone()))
            .collect();
        assert_eq!(
            labels,
            [
                ("parallel 0".to_string(), "a".to_string()),
                ("parallel 1".to_string(), "b".to_string())
            ]
        );
        assert_eq!(def.order(), ["f", "a", "b"]);
    }

    #[test]
    fn fewer_than_two_duplicates_and_unknown_ids_are_problems() {
        let one = problems(json!({"type": "fork", "next": ["a"]}));
        assert!(
            one.iter()
                .any(|p| p == "f: a fork needs at least two branches in \"next\", not 1"),
            "{one:?}"
        );
        let dup = problems(json!({"type": "fork", "next": ["a", "a"]}));
        assert!(
            dup.iter()
                .any(|p| p.starts_with("f: field \"next[1]\": node \"a\" is listed twice")),
            "{dup:?}"
        );
        let missing = problems(json!({"type": "fork", "next": ["a", "zz"]}));
        assert!(
            missing
                .iter()
                .any(|p| p == "f: next points to missing node \"zz\""),
            "{missing:?}"
        );
        let none = problems(json!({"type": "fork"}));
        assert!(
            none.iter()
                .any(|p| p.starts_with("f: a fork needs \"next\"")),
            "{none:?}"
        );
        let scalar = problems(json!({"type": "fork", "next": "a"}));
        assert!(
            scalar
                .iter()
                .any(|p| p.starts_with("f: a fork needs \"next\"")),
            "{scalar:?}"
        );
    }

    #[test]
    fn fork_edges_are_instant_in_cycles() {
        let p = problems(json!({"type": "fork", "next": ["a", "f"]}));
        assert!(p.iter().any(|x| x.contains("cycle with no delay")), "{p:?}");
        // with a delay no cycle is instant, but a fork in a loop starts its branches again on
        // every pass: the branches would double each time round
        let delayed =
            problems(json!({"type": "fork", "next": ["a", {"to": "f", "delay": "1 day"}]}));
        assert!(!delayed.iter().any(|x| x.contains("cycle")), "{delayed:?}");
        assert!(
            delayed
                .iter()
                .any(|x| x.starts_with("f: can be reached again from its own branches")),
            "{delayed:?}"
        );
        let ok = problems(json!({"type": "fork", "next": ["a", "b"]}));
        assert_eq!(ok, Vec::<String>::new());
    }
}
