//! wait: the enrollment waits `delay`, then until the first allowed moment of `at` and `days`,
//! then until its `window` is open (at once when inside it), in the contact's zone; its `next`
//! edge is followed from then.
use super::{Context, Outcome};
use crate::engine::claim::Enrollment;
use crate::engine::schedule;
use crate::error::Result;
use crate::model::{Node, NodeKind};

pub fn run<'d>(e: &Enrollment, node: &'d Node, cx: &mut Context) -> Result<Outcome<'d>> {
    let NodeKind::Wait {
        delay,
        at,
        days,
        window,
    } = &node.kind
    else {
        unreachable!("{} is not a wait", node.type_name())
    };
    let out_of_range = || super::out_of_range(e, &node.id);
    let mut until =
        schedule::due(cx.now, *delay, *at, days.as_deref(), e.zone).ok_or_else(out_of_range)?;
    if let Some(w) = window {
        until = schedule::in_window(until, w, e.zone).ok_or_else(out_of_range)?;
    }
    Ok(Outcome::Waited(until))
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::engine::nodes::testing::{enrollment, node, noon, settings, with_context};
    use crate::engine::nodes::Route;
    use serde_json::json;

    #[test]
    fn waits_then_follows_next_from_then() {
        let wait = node(
            "w",
            json!({"type": "wait", "delay": "1 day", "at": "10:00", "next": "x"}),
        );
        let outcome = with_context(&settings(), noon(), |cx| run(&enrollment("w"), &wait, cx));
        let outcome = outcome.unwrap();
        assert_eq!(outcome.text(), "waited");
        match outcome.into_route(wait.next.as_ref()).1 {
            Route::Follow { edge, from } => {
                assert_eq!(edge.map(|e| e.to.as_str()), Some("x"));
                assert_eq!(
                    from.map(|t| t.to_rfc3339()),
                    Some("2026-06-03T10:00:00+00:00".into())
                );
            }
            _ => panic!("a wait follows next"),
        }
    }

    /// noon() is 2026-06-01 12:00 UTC, a Monday: a window from 09:00 is open (the wait ends at
    /// once); one from 14:00 opens at 14:00; a weekend one on Saturday.
    #[test]
    fn a_window_ends_the_wait_at_once_inside_it_else_at_its_opening() {
        for (window, expected) in [
            (
                json!({"from": "09:00", "to": "18:00"}),
                "2026-06-01T12:00:00+00:00",
            ),
            (
                json!({"from": "14:00", "to": "18:00"}),
                "2026-06-01T14:00:00+00:00",
            ),
            (
                json!({"from": "09:00", "to": "18:00", "days": "weekend"}),
                "2026-06-06T09:00:00+00:00",
            ),
        ] {
            let wait = node("w", json!({"type": "wait", "window": window, "next": "x"}));
            let outcome = with_context(&settings(), noon(), |cx| run(&enrollment("w"), &wait, cx));
            match outcome.unwrap().into_route(wait.next.as_ref()).1 {
                Route::Follow { from, .. } => {
                    assert_eq!(
                        from.map(|t| t.to_rfc3339()),
                        Some(expected.into()),
                        "{window}"
                    )
                }
                _ => panic!("a wait follows next"),
            }
        }
    }

    #[test]
    fn a_time_past_the_range_is_an_error() {
        let wait = node("w", json!({"type": "wait", "delay": "100 years"}));
        let far = chrono::DateTime::<chrono::Utc>::MAX_UTC - chrono::Duration::days(1);
        let err = with_context(&settings(), far, |cx| run(&enrollment("w"), &wait, cx));
        assert!(err.err().unwrap().to_string().contains("out of range"));
    }
}
