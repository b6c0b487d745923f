//! wait: `delay` (longer than zero), `at` (a time of day), `days` (days of the week).
use super::Input;
use crate::model::flow::{Edge, Node, NodeKind};
use crate::model::parse::Ctx;
use crate::model::registry;

pub fn wait(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let delay = cx.positive_interval(o, "delay");
    let at = cx.time(o, "at");
    let days = cx.days(o, "days");
    if delay.is_none() && at.is_none() && days.is_none() && !o.contains_key("delay") {
        cx.problem("a wait needs \"delay\", \"at\" or \"days\"");
    }
    NodeKind::Wait { delay, at, days }
}

/// After a wait with a positive delay no edge is followed at once; else as any node.
pub fn instant_edges(node: &Node) -> Vec<&Edge> {
    match &node.kind {
        NodeKind::Wait { delay: Some(d), .. } if !d.is_zero() => Vec::new(),
        _ => registry::edges_without_delay(node),
    }
}
