//! goal (recorded, then the flow goes on) and exit (ends the enrollment).
use super::Input;
use crate::model::flow::NodeKind;
use crate::model::parse::Ctx;

/// goal's and exit's fields (besides type, next, stage).
pub const GOAL_FIELDS: &[&str] = &["name"];
pub const EXIT_FIELDS: &[&str] = &[];

/// `name`, the node's id when missing.
pub fn goal(input: &Input, cx: &mut Ctx) -> NodeKind {
    NodeKind::Goal {
        name: cx
            .string(input.fields, "name", false)
            .unwrap_or_else(|| input.id.to_string()),
    }
}

pub fn exit(_: &Input, _: &mut Ctx) -> NodeKind {
    NodeKind::Exit
}
