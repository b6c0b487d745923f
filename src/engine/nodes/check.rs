//! check_sms / check_email (`yes` once the message a send node wrote reaches one of the
//! statuses, `no` when it failed, was never sent, or the wait ran out) and wait_event (`yes`
//! once the contact has the event, `no` after the timeout). Until then the enrollment parks on
//! the node (`waiting`): a delivery report or the event wakes it, and the times it waits from
//! and until are kept in its `waiting` so a resumed node keeps its deadline.
use super::{Context, Outcome};
use crate::engine::claim::Enrollment;
use crate::engine::{schedule, store};
use crate::error::Result;
use crate::model::{Interval, Node, NodeKind};
use chrono::{DateTime, Utc};
use serde_json::json;

pub fn run<'d>(e: &Enrollment, node: &'d Node, cx: &mut Context) -> Result<Outcome<'d>> {
    match &node.kind {
        NodeKind::Check { message, wait, .. } => {
            // a message this batch wrote is not in the outbox yet: it is pending
            let written = cx
                .messages
                .iter()
                .rev()
                .any(|m| m.enrollment_id == e.id && &m.node == message);
            let status = match written {
                true => Some("pending".to_string()),
                false => store::message_status(e.id, e.contact_id, message)?,
            };
            let until = until(e, node, cx, *wait)?;
            Ok(message_answer(node, status, cx.now, until))
        }
        NodeKind::WaitEvent { event, timeout, .. } => {
            let since = kept(e, node, "since").unwrap_or(cx.now);
            let until = until(e, node, cx, *timeout)?;
            let happened = store::event_since(e.contact_id, event, since)?;
            Ok(event_answer(node, happened, cx.now, since, until))
        }
        _ => unreachable!("{} is not a check or a wait_event", node.type_name()),
    }
}

/// A time kept in the enrollment's `waiting` when it resumes the node it parked on.
fn kept(e: &Enrollment, node: &Node, key: &str) -> Option<DateTime<Utc>> {
    let waiting = e.waiting.as_ref()?;
    if node.id != e.node || waiting["node"] != node.id.as_str() {
        return None;
    }
    let text = waiting.get(key)?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Until when the node waits: the time kept when it resumes, else `wait` from now.
fn until(e: &Enrollment, node: &Node, cx: &Context, wait: Interval) -> Result<DateTime<Utc>> {
    kept(e, node, "until")
        .or_else(|| schedule::add_interval(cx.now, wait, e.zone))
        .ok_or_else(|| super::out_of_range(e, &node.id))
}

/// A check's answer, given the status of the message (None: never sent).
fn message_answer<'d>(
    node: &'d Node,
    status: Option<String>,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Outcome<'d> {
    let NodeKind::Check {
        message,
        statuses,
        yes,
        no,
        ..
    } = &node.kind
    else {
        unreachable!("not a check")
    };
    match status {
        None => Outcome::No("no message was sent".into(), no.as_ref()),
        Some(st) if statuses.contains(&st.as_str()) => Outcome::Yes(Some(st), yes.as_ref()),
        Some(st) if matches!(st.as_str(), "failed" | "undelivered" | "bounced") => {
            Outcome::No(st.into(), no.as_ref())
        }
        Some(_) if now >= until => Outcome::No("timed out".into(), no.as_ref()),
        Some(_) => Outcome::Waiting {
            until,
            waiting: json!({"node": node.id, "message": message, "until": until.to_rfc3339()}),
        },
    }
}

/// A wait_event's answer, given whether the event happened since `since`.
fn event_answer<'d>(
    node: &'d Node,
    happened: bool,
    now: DateTime<Utc>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Outcome<'d> {
    let NodeKind::WaitEvent { event, yes, no, .. } = &node.kind else {
        unreachable!("not a wait_event")
    };
    if happened {
        Outcome::Yes(None, yes.as_ref())
    } else if now >= until {
        Outcome::No("timed out".into(), no.as_ref())
    } else {
        Outcome::Waiting {
            until,
            waiting: json!({"node": node.id, "event": event, "since": since.to_rfc3339(),
                            "until": until.to_rfc3339()}),
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::engine::nodes::testing::{enrollment, node, noon};
    use chrono::Duration;
    use serde_json::Value;

    fn check() -> Node {
        node(
            "c",
            json!({"type": "check_email", "message": "mail", "status": "opened",
                         "wait": "1 day", "yes": "won", "no": "lost"}),
        )
    }

    fn text(o: &Outcome) -> String {
        o.text().into_owned()
    }

    #[test]
    fn a_check_answers_from_the_status() {
        let (c, now) = (check(), noon());
        let until = now + Duration::days(1);
        let answer =
            |status: Option<&str>, now| message_answer(&c, status.map(Into::into), now, until);
        assert_eq!(text(&answer(Some("opened"), now)), "yes: opened");
        assert_eq!(text(&answer(Some("bounced"), now)), "no: bounced");
        assert_eq!(text(&answer(None, now)), "no: no message was sent");
        assert_eq!(text(&answer(Some("sent"), until)), "no: timed out");
        match answer(Some("sent"), now) {
            Outcome::Waiting { until: u, waiting } => {
                assert_eq!(u, until);
                assert_eq!(waiting["message"], "mail");
                assert_eq!(waiting["node"], "c");
            }
            other => panic!("expected waiting, got {}", other.text()),
        }
    }

    #[test]
    fn a_wait_event_answers_from_the_event() {
        let w = node(
            "w",
            json!({"type": "wait_event", "event": "paid", "timeout": "3 days",
                                 "yes": "won", "no": "lost"}),
        );
        let (now, until) = (noon(), noon() + Duration::days(3));
        assert_eq!(text(&event_answer(&w, true, now, now, until)), "yes");
        assert_eq!(
            text(&event_answer(&w, false, until, now, until)),
            "no: timed out"
        );
        let Outcome::Waiting { waiting, .. } = event_answer(&w, false, now, now, until) else {
            panic!("expected waiting")
        };
        assert_eq!(waiting["since"], Value::from(now.to_rfc3339()));
        assert_eq!(waiting["until"], Value::from(until.to_rfc3339()));
    }

    #[test]
    fn a_resumed_node_keeps_its_times() {
        let c = check();
        let mut e = enrollment("c");
        let until = "2026-06-05T00:00:00+00:00";
        e.waiting = Some(json!({"node": "c", "message": "mail", "until": until}));
        assert_eq!(
            kept(&e, &c, "until").map(|t| t.to_rfc3339()),
            Some(until.into())
        );
        // only at the node it parked on
        e.node = "other".into();
        assert_eq!(kept(&e, &c, "until"), None);
    }
}
