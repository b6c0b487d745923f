//! Flow definitions: the jsonb format (README "SQL API") parsed into types, and its validation.
pub mod definition;
pub mod interval;
pub mod json;
pub mod predicate;
pub mod zone;

pub use definition::{Edge, FlowDef, Node, NodeKind, Problem, Reentry, Trigger};
pub use interval::Interval;
