//! fork: the enrollment goes on along every branch at once (docs/ARCHITECTURE.md, "Parallel
//! branches"). Branches are enrollments of their own (`parent_id` the enrollment that entered
//! the flow, `branch` the place in the fork's list), written with the fork's step in the same
//! write-back (`Batch::spawns`). The enrollment that entered the flow waits at its first fork
//! (due never) until its branches have ended (the trigger on journey.enrollments ends it: sql/
//! schema.sql, `_branch_ended`); a branch that reaches a fork goes on along its first edge
//! itself and starts a new branch, of the same parent, for each other one. Branches are all
//! children of one parent whatever forks they came from: nothing nests.
use super::{out_of_range, Context, Outcome};
use crate::engine::batch::Spawn;
use crate::engine::claim::Enrollment;
use crate::engine::{schedule, store};
use crate::error::{JourneyError, Result};
use crate::model::{Node, NodeKind};
use chrono::{DateTime, Utc};

/// Most branches one enrollment's forks may start in all: validation refuses a fork its own
/// branches can reach again (each pass would double them), and a version written past
/// validation fails here instead of growing without bound.
pub const MAX_BRANCHES: i64 = 1000;

pub fn run<'d>(e: &Enrollment, node: &'d Node, cx: &mut Context) -> Result<Outcome<'d>> {
    let (parent, started) = store::parent(e.contact_id, e.id)?;
    let outcome = outcome(e, node, cx.now, cx.seq, parent.is_some())?;
    if let Outcome::Forked { spawns, .. } = &outcome {
        if started + spawns.len() as i64 > MAX_BRANCHES {
            return Err(JourneyError::Engine {
                flow: e.flow_name.clone(),
                message: format!(
                    "fork \"{}\" would start more than {MAX_BRANCHES} branches for one enrollment \
                     (is it in a loop? validation refuses a fork its own branches reach again)",
                    node.id
                ),
            });
        }
    }
    Ok(outcome)
}

/// The fork's outcome for `e` at `now`, its `seq`th node: the branches it starts and the one
/// it follows itself (`is_branch`), or none (it waits for them).
fn outcome<'d>(
    e: &Enrollment,
    node: &'d Node,
    now: DateTime<Utc>,
    seq: i32,
    is_branch: bool,
) -> Result<Outcome<'d>> {
    let NodeKind::Fork { branches } = &node.kind else {
        unreachable!("{} is not a fork", node.type_name())
    };
    if branches.len() < 2 {
        // validation refuses it; a version written past validation must not wait forever
        return Err(JourneyError::Engine {
            flow: e.flow_name.clone(),
            message: format!("fork \"{}\" has fewer than two branches", node.id),
        });
    }
    let (follow, first) = if is_branch {
        (branches.first(), 1)
    } else {
        (None, 0)
    };
    let mut spawns = Vec::with_capacity(branches.len());
    for (i, edge) in branches.iter().enumerate().skip(first) {
        let due_at = if edge.is_immediate() {
            now
        } else {
            schedule::edge_due(now, edge, e.zone).ok_or_else(|| out_of_range(e, &node.id))?
        };
        spawns.push(Spawn {
            source: e.id,
            contact_id: e.contact_id,
            branch: i32::try_from(i).unwrap_or(i32::MAX),
            node: edge.to.clone(),
            due_at,
            seq,
        });
    }
    Ok(Outcome::Forked { spawns, follow })
}

#[cfg(test)]
mod unit {
    use super::super::testing::{enrollment, node, noon};
    use super::*;
    use serde_json::json;

    fn fork() -> Node {
        node(
            "f",
            json!({"type": "fork", "next": ["a", {"to": "b", "delay": "1 day"}, "c"]}),
        )
    }

    #[test]
    fn the_parent_starts_every_branch_and_waits() {
        let (e, f) = (enrollment("f"), fork());
        let Outcome::Forked { spawns, follow } = outcome(&e, &f, noon(), 4, false).unwrap() else {
            panic!("not forked")
        };
        assert!(follow.is_none());
        let got: Vec<(i32, &str, i64)> = spawns
            .iter()
            .map(|s| (s.branch, s.node.as_str(), (s.due_at - noon()).num_hours()))
            .collect();
        assert_eq!(got, [(0, "a", 0), (1, "b", 24), (2, "c", 0)]);
        assert!(spawns
            .iter()
            .all(|s| s.source == 1 && s.contact_id == 7 && s.seq == 4));
    }

    #[test]
    fn a_branch_follows_the_first_edge_and_starts_the_others() {
        let (e, f) = (enrollment("f"), fork());
        let Outcome::Forked { spawns, follow } = outcome(&e, &f, noon(), 2, true).unwrap() else {
            panic!("not forked")
        };
        assert_eq!(follow.map(|x| x.to.as_str()), Some("a"));
        let got: Vec<(i32, &str)> = spawns.iter().map(|s| (s.branch, s.node.as_str())).collect();
        assert_eq!(got, [(1, "b"), (2, "c")]);
    }

    #[test]
    fn a_fork_with_one_branch_fails() {
        let mut f = fork();
        f.kind = NodeKind::Fork {
            branches: vec![crate::model::Edge {
                to: "a".into(),
                ..Default::default()
            }],
        };
        let e = enrollment("f");
        assert!(outcome(&e, &f, noon(), 1, false).is_err());
    }
}
