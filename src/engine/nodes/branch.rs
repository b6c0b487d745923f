//! condition (`then` when its predicate holds for the contact and the event data, else `else`)
//! and split (a branch picked by a stable hash of (flow, contact) against the percentages).
use super::{Context, Outcome};
use crate::engine::claim::Enrollment;
use crate::engine::store;
use crate::error::{JourneyError, Result};
use crate::model::{predicate, Edge, Node, NodeKind};
use serde_json::Value;

pub fn run<'d>(e: &Enrollment, node: &'d Node, _cx: &mut Context) -> Result<Outcome<'d>> {
    match &node.kind {
        NodeKind::Condition { predicate, .. } => {
            // the contact is read only when the predicate looks at it
            let (contact, groups) = if predicate::needs_contact(predicate) {
                store::contact(e.contact_id).map_err(|why| unreadable(e, node, why))?
            } else {
                (Value::Null, Vec::new())
            };
            condition(e, node, &contact, &groups)
        }
        NodeKind::Split { .. } => Ok(split(e, node)),
        _ => unreachable!("{} is not a condition or a split", node.type_name()),
    }
}

fn unreadable(e: &Enrollment, node: &Node, why: String) -> JourneyError {
    JourneyError::Engine {
        flow: e.flow_name.clone(),
        message: format!("node \"{}\": {why}", node.id),
    }
}

/// A condition's branch, given the contact (as JSON, with its groups) when it needs it.
fn condition<'d>(
    e: &Enrollment,
    node: &'d Node,
    contact: &Value,
    groups: &[String],
) -> Result<Outcome<'d>> {
    let NodeKind::Condition {
        predicate,
        then,
        otherwise,
    } = &node.kind
    else {
        unreachable!("not a condition")
    };
    let subject = predicate::Subject {
        contact,
        event: e.event.json().map_err(|why| unreadable(e, node, why))?,
        groups,
    };
    Ok(match predicate::eval(predicate, &subject) {
        true => Outcome::Then(then.as_ref()),
        false => Outcome::Else(otherwise.as_ref()),
    })
}

fn split<'d>(e: &Enrollment, node: &'d Node) -> Outcome<'d> {
    let NodeKind::Split { branches } = &node.kind else {
        unreachable!("not a split")
    };
    let pick = pick_branch(branches, split_bucket(e.flow_id, e.contact_id));
    Outcome::Branch(pick, branches.get(pick).map(|(_, edge)| edge))
}

/// The branch whose share of [0, 100) holds `bucket` (the last one past their sum).
fn pick_branch(branches: &[(f64, Edge)], bucket: f64) -> usize {
    let mut cumulative = 0.0;
    for (i, (percent, _)) in branches.iter().enumerate() {
        cumulative += percent;
        if bucket < cumulative {
            return i;
        }
    }
    branches.len().saturating_sub(1)
}

/// Stable bucket in [0, 100) for (flow, contact): splits agree across runs and dry runs.
pub fn split_bucket(flow_id: i64, contact_id: i64) -> f64 {
    // splitmix64 over both ids: fast, well mixed, and fixed forever (unlike std's hasher)
    let mut z = (flow_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (contact_id as u64);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % 10_000) as f64 / 100.0
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::engine::nodes::testing::{enrollment, node};
    use serde_json::json;

    #[test]
    fn buckets_are_fixed_forever_and_spread() {
        // a change here would move contacts between the branches of running splits
        assert_eq!(split_bucket(7, 42), split_bucket(7, 42));
        let buckets: Vec<f64> = (0..10_000).map(|c| split_bucket(3, c)).collect();
        assert!(buckets.iter().all(|b| (0.0..100.0).contains(b)));
        let low = buckets.iter().filter(|b| **b < 30.0).count();
        assert!((2_800..=3_200).contains(&low), "{low} of 10000 below 30");
    }

    #[test]
    fn branches_take_their_share_and_the_last_takes_the_rest() {
        let edge = Edge::default;
        let branches = [(30.0, edge()), (70.0, edge())];
        assert_eq!(pick_branch(&branches, 0.0), 0);
        assert_eq!(pick_branch(&branches, 29.99), 0);
        assert_eq!(pick_branch(&branches, 30.0), 1);
        assert_eq!(pick_branch(&[(50.0, edge()), (40.0, edge())], 95.0), 1);
        assert_eq!(pick_branch(&[], 5.0), 0);
    }

    #[test]
    fn conditions_and_splits_pick_their_edge() {
        let cond = |op: &str| {
            node(
                "c",
                json!({"type": "condition", "if": {"field": "event.amount", "op": op, "value": 10},
                             "then": "yes", "else": "no"}),
            )
        };
        let text = |e: &Enrollment, n: &Node| {
            condition(e, n, &Value::Null, &[]).map(|o| o.text().into_owned())
        };
        let e = enrollment("c");
        assert_eq!(text(&e, &cond(">")).unwrap(), "then");
        assert_eq!(text(&e, &cond("<")).unwrap(), "else");
        let mut unreadable = enrollment("c");
        unreadable.event = crate::render::event::Event::new(Some(r#"{"amount": 1e400}"#.into()));
        let err = text(&unreadable, &cond(">")).unwrap_err().to_string();
        assert!(err.contains("node \"c\""), "{err}");
        let s = node(
            "s",
            json!({"type": "split", "branches": [{"percent": 0, "next": "a"},
                                                             {"percent": 100, "next": "b"}]}),
        );
        let Outcome::Branch(1, Some(edge)) = split(&e, &s) else {
            panic!("a 0/100 split takes its second branch")
        };
        assert_eq!(edge.to, "b");
    }
}
