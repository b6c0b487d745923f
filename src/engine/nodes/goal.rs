//! goal (recorded for goal_stats, then `next`) and exit (the enrollment ends, `exited`).
use super::{Context, Outcome};
use crate::engine::claim::Enrollment;
use crate::error::Result;
use crate::model::{Node, NodeKind};

pub fn run<'d>(_e: &Enrollment, node: &'d Node, _cx: &mut Context) -> Result<Outcome<'d>> {
    Ok(match &node.kind {
        NodeKind::Goal { .. } => Outcome::Goal,
        NodeKind::Exit => Outcome::Exited,
        _ => unreachable!("{} is not a goal or an exit", node.type_name()),
    })
}
