//! wait: `delay` (longer than zero), `at` (a time of day), `days` (days of the week), `window`
//! (send hours: `{"from", "to", "days"}`; not beside `at` or `days`).
use super::Input;
use crate::model::flow::{Edge, Node, NodeKind};
use crate::model::parse::Ctx;
use crate::model::registry;

/// wait's fields (besides type, next, stage).
pub const FIELDS: &[&str] = &["delay", "at", "days", "window"];

pub fn wait(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let delay = cx.positive_interval(o, "delay");
    let at = cx.time(o, "at");
    let days = cx.days(o, "days");
    cx.window_alone(o, "");
    let window = cx.window(o, "window", "window");
    let given = ["delay", "at", "days", "window"]
        .iter()
        .any(|k| o.get(*k).is_some_and(|v| !v.is_null()));
    if !given {
        cx.problem("a wait needs \"delay\", \"at\", \"days\" or \"window\"");
    }
    NodeKind::Wait {
        delay,
        at,
        days,
        window,
    }
}

/// After a wait with a positive delay no edge is followed at once; else as any node.
pub fn instant_edges(node: &Node) -> Vec<&Edge> {
    match &node.kind {
        NodeKind::Wait { delay: Some(d), .. } if !d.is_zero() => Vec::new(),
        _ => registry::edges_without_delay(node),
    }
}
