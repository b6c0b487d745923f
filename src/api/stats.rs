//! Introspection: flow_stats, goal_stats, flow_overview, timeline (sql/stats.sql), and the
//! node order they list nodes in.
use crate::model::{FlowDef, NodeKind};
use pgrx::prelude::*;

/// `journey._node_order(definition)`: the nodes of a definition in flow order (breadth-first
/// from start, then any unreachable ones), with their type and goal name.
#[pg_extern(name = "_node_order", immutable, parallel_safe)]
pub fn node_order(
    definition: pgrx::JsonB,
) -> TableIterator<
    'static,
    (
        name!(ord, i32),
        name!(node, String),
        name!(type, String),
        name!(goal, Option<String>),
    ),
> {
    let (def, _) = FlowDef::parse(&definition.0);
    let mut ids: Vec<String> = def.order().into_iter().map(str::to_string).collect();
    for id in def.nodes.keys() {
        if !ids.contains(id) {
            ids.push(id.clone());
        }
    }
    let rows: Vec<_> = ids
        .into_iter()
        .enumerate()
        .filter_map(|(i, id)| {
            let node = def.nodes.get(&id)?;
            let goal = match &node.kind {
                NodeKind::Goal { name } => Some(name.clone()),
                _ => None,
            };
            Some((i as i32 + 1, id.clone(), node.type_name().to_string(), goal))
        })
        .collect();
    TableIterator::new(rows)
}

extension_sql!(
    "COMMENT ON FUNCTION journey._node_order(jsonb) IS 'Internal: nodes of a definition in flow order (breadth-first from start), with type and goal name.';",
    name = "node_order_comment",
    requires = [node_order]
);

extension_sql_file!(
    "../../sql/stats.sql",
    name = "stats",
    requires = ["audience", node_order]
);
