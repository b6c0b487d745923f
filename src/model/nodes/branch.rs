//! condition (`if` a predicate, `then`, `else`) and split (`branches` by percentage).
use super::Input;
use crate::model::flow::{Edge, NodeKind};
use crate::model::parse::Ctx;
use crate::model::suggest;
use serde_json::Value;

/// condition's and split's fields (besides type, next, stage); a split's branch has
/// `percent` and `next`.
pub const CONDITION_FIELDS: &[&str] = &["if", "then", "else"];
pub const SPLIT_FIELDS: &[&str] = &["branches"];
const BRANCH_FIELDS: &[&str] = &["percent", "next"];

pub fn condition(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let predicate = match o.get("if") {
        None | Some(Value::Null) => {
            cx.problem("missing required field \"if\"");
            Value::Null
        }
        Some(p) => {
            cx.predicate(p, "if");
            p.clone()
        }
    };
    let then = cx.edge(o.get("then"), "then");
    let otherwise = cx.edge(o.get("else"), "else");
    if then.is_none() && otherwise.is_none() && input.next.is_none() {
        cx.problem("a condition needs \"then\" and/or \"else\"");
    }
    NodeKind::Condition {
        predicate,
        then,
        otherwise,
    }
}

/// At least two `{"percent", "next"}`, the percentages summing to 100.
pub fn split(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let mut branches = Vec::new();
    match o.get("branches").and_then(Value::as_array) {
        Some(items) if items.len() >= 2 => {
            for (i, b) in items.iter().enumerate() {
                for key in b.as_object().into_iter().flat_map(|o| o.keys()) {
                    if !BRANCH_FIELDS.contains(&key.as_str()) {
                        let hint = suggest::hint(key, BRANCH_FIELDS, "use");
                        cx.problem(format!("branch {i}: unknown field \"{key}\"{hint}"));
                    }
                }
                let percent = b.get("percent").and_then(Value::as_f64);
                if !percent.is_some_and(|p| (0.0..=100.0).contains(&p)) {
                    cx.problem(format!(
                        "branch {i}: \"percent\" must be a number from 0 to 100"
                    ));
                }
                match cx.edge(b.get("next"), &format!("branches[{i}].next")) {
                    Some(e) => branches.push((percent.unwrap_or(0.0), e)),
                    None => cx.problem(format!("branch {i}: missing \"next\"")),
                }
            }
            let total: f64 = items
                .iter()
                .filter_map(|b| b.get("percent").and_then(Value::as_f64))
                .sum();
            if (total - 100.0).abs() > 1e-9 {
                cx.problem(format!("split percentages sum to {total}, not 100"));
            }
        }
        _ => {
            cx.problem("missing required field \"branches\" (at least two {\"percent\", \"next\"})")
        }
    }
    NodeKind::Split { branches }
}

/// A condition's `then` and `else`, a split's branches labelled with their percentage.
pub fn branches(kind: &NodeKind) -> Vec<(String, &Edge)> {
    let mut out = Vec::new();
    match kind {
        NodeKind::Condition {
            then, otherwise, ..
        } => {
            out.extend(then.iter().map(|e| ("then".to_string(), e)));
            out.extend(otherwise.iter().map(|e| ("else".to_string(), e)));
        }
        NodeKind::Split { branches } => {
            out.extend(branches.iter().map(|(p, e)| (format!("{p}%"), e)));
        }
        _ => {}
    }
    out
}
