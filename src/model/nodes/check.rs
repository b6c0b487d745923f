//! check_sms / check_email (`yes` once a message sent earlier reaches a status, `no` when the
//! wait expires) and wait_event (`yes` when the contact's event is emitted, `no` after the
//! timeout).
use super::Input;
use crate::model::flow::{Edge, Node, NodeKind};
use crate::model::interval::Interval;
use crate::model::parse::Ctx;

/// The checks' and wait_event's fields (besides type, next, stage).
pub const CHECK_FIELDS: &[&str] = &["message", "status", "wait", "yes", "no"];
pub const WAIT_EVENT_FIELDS: &[&str] = &["event", "timeout", "yes", "no"];

pub fn check_sms(input: &Input, cx: &mut Ctx) -> NodeKind {
    check(input, cx, "sms")
}

pub fn check_email(input: &Input, cx: &mut Ctx) -> NodeKind {
    check(input, cx, "email")
}

/// `message` (the send node), `status` (email: delivered, opened, clicked), `wait` (2 hours
/// for an SMS, 1 day for an email; longer than zero), `yes`, `no`.
fn check(input: &Input, cx: &mut Ctx, channel: &'static str) -> NodeKind {
    let o = input.fields;
    let message = cx.string(o, "message", true).unwrap_or_default();
    let status = cx
        .string(o, "status", false)
        .unwrap_or_else(|| "delivered".into());
    let statuses = match (channel, status.as_str()) {
        (_, "delivered") => vec!["delivered", "opened", "clicked"],
        ("email", "opened") => vec!["opened", "clicked"],
        ("email", "clicked") => vec!["clicked"],
        _ => {
            cx.problem(format!(
                "field \"status\": \"{status}\" is not a status this check can wait for"
            ));
            vec![]
        }
    };
    let default_wait = if channel == "sms" { "2 hours" } else { "1 day" };
    let wait = cx
        .positive_interval(o, "wait")
        .unwrap_or_else(|| Interval::parse(default_wait).unwrap_or_default());
    let yes = cx.edge(o.get("yes"), "yes");
    let no = cx.edge(o.get("no"), "no");
    if yes.is_none() && no.is_none() {
        cx.problem("a check needs \"yes\" and/or \"no\"");
    }
    NodeKind::Check {
        channel,
        message,
        statuses,
        wait,
        yes,
        no,
    }
}

/// `event` (an event type that must exist), `timeout` (longer than zero), `yes`, `no`.
pub fn wait_event(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let event = cx.string(o, "event", true).unwrap_or_default();
    if !event.is_empty() {
        cx.reference("event type", &event);
    }
    let timeout = cx.positive_interval(o, "timeout");
    if timeout.is_none() && !o.contains_key("timeout") {
        cx.problem("missing required field \"timeout\"");
    }
    let yes = cx.edge(o.get("yes"), "yes");
    let no = cx.edge(o.get("no"), "no");
    if yes.is_none() && no.is_none() {
        cx.problem("a wait_event needs \"yes\" and/or \"no\"");
    }
    NodeKind::WaitEvent {
        event,
        timeout: timeout.unwrap_or_default(),
        yes,
        no,
    }
}

/// `yes` and `no`.
pub fn branches(kind: &NodeKind) -> Vec<(String, &Edge)> {
    let mut out = Vec::new();
    if let NodeKind::Check { yes, no, .. } | NodeKind::WaitEvent { yes, no, .. } = kind {
        out.extend(yes.iter().map(|e| ("yes".to_string(), e)));
        out.extend(no.iter().map(|e| ("no".to_string(), e)));
    }
    out
}

/// A wait_event's `no` is taken only once its timeout (longer than zero) has passed; its
/// other edges, unless they have a positive delay, at once.
pub fn wait_event_instant_edges(node: &Node) -> Vec<&Edge> {
    node.labelled_edges()
        .into_iter()
        .filter(|(label, e)| label != "no" && !e.waits())
        .map(|(_, e)| e)
        .collect()
}
