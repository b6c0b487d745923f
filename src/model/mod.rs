//! Flow definitions: the jsonb format (README "SQL API") parsed into types, and its validation.
//! Pure Rust: no pgrx, no SPI, nothing from the rest of the crate (api passes in the Liquid
//! compiler validation checks templates with).
pub mod definition;
pub mod flow;
mod graph;
pub mod interval;
pub mod json;
mod nodes;
mod parse;
pub mod phone;
pub mod predicate;
pub mod recipients;
pub mod registry;
pub mod suggest;
pub mod times;
pub mod triggers;
pub mod zone;

pub use definition::{check_shape, Edge, FlowDef, Node, NodeKind, Problem, Reentry, Trigger};
pub use interval::Interval;
pub use registry::NodeType;
