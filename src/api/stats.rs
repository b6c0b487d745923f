//! Introspection: the node order flow_stats, goal_stats, flow_overview and timeline
//! (sql/stats.sql, installed from install.rs) list nodes in, and flow_diagram.
use crate::model::{FlowDef, NodeKind};
use pgrx::prelude::*;

/// `journey._node_order(definition)`: the nodes of a definition in flow order (breadth-first
/// from start, then any unreachable ones), with their type and goal name.
#[pg_extern(name = "_node_order", immutable, parallel_safe)]
pub fn node_order(
    definition: super::jsonb::JsonbText,
) -> TableIterator<
    'static,
    (
        name!(ord, i32),
        name!(node, String),
        name!(type, String),
        name!(goal, Option<String>),
    ),
> {
    use crate::error::OrReport;
    let (def, _) = FlowDef::parse(&definition.parse("definition").or_report());
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

/// `journey.flow_diagram(name) → text`: a mermaid flowchart of the current version, each node
/// with its id, type and live counts, edges labelled with branch, delay and window.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn flow_diagram(name: Option<&str>) -> String {
    use crate::error::{required, OrReport};
    let name = required(
        name,
        "flow name",
        "Pass the flow's name (journey.flows.name).",
    )
    .or_report();
    let definition = Spi::get_one_with_args::<String>(
        "SELECT v.definition::text FROM journey.flows f JOIN journey.flow_versions v \
         ON v.flow_id = f.id AND v.version = f.version WHERE f.id = journey._flow_id($1)",
        &[name.into()],
    )
    .ok()
    .flatten()
    .map(|text| {
        crate::model::json::parse(&text, "the flow's definition")
            .map_err(|message| crate::error::JourneyError::Engine {
                flow: name.to_string(),
                message,
            })
            .or_report()
    })
    .unwrap_or_default();
    let mut counts = std::collections::HashMap::new();
    Spi::connect(|client| -> pgrx::spi::Result<()> {
        for row in client.select(
            "SELECT node, reached, waiting FROM journey.flow_stats($1)",
            None,
            &[name.into()],
        )? {
            let node: String = row.get(1)?.unwrap_or_default();
            counts.insert(
                node,
                (
                    row.get::<i64>(2)?.unwrap_or(0),
                    row.get::<i64>(3)?.unwrap_or(0),
                ),
            );
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    diagram(&FlowDef::parse(&definition).0, &counts)
}

/// Mermaid text for a definition and (reached, waiting) per node.
pub fn diagram(def: &FlowDef, counts: &std::collections::HashMap<String, (i64, i64)>) -> String {
    // mermaid ids by position, so ids that differ only in punctuation (`a-b`, `a_b`) stay two
    // nodes; the node's own id is in its label
    let index: std::collections::HashMap<&str, usize> = def
        .nodes
        .keys()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i + 1))
        .collect();
    let id = |node: &str| match index.get(node) {
        Some(i) => format!("n{i}"),
        None => format!(
            "missing_{}",
            node.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
        ),
    };
    let quote = |text: &str| text.replace('"', "#quot;");
    let mut out = String::from("flowchart TD\n");
    for node in def.nodes.values() {
        let (reached, waiting) = counts.get(&node.id).copied().unwrap_or((0, 0));
        let stage = node
            .stage
            .as_deref()
            .map(|s| format!("<br/>stage: {}", quote(s)))
            .unwrap_or_default();
        out.push_str(&format!(
            "    {}[\"{}: {}{}<br/>reached {reached}, waiting {waiting}\"]\n",
            id(&node.id),
            quote(&node.id),
            node.node_type().label,
            stage
        ));
    }
    for node in def.nodes.values() {
        for (label, edge) in node.labelled_edges() {
            let mut parts: Vec<String> = Vec::new();
            if !label.is_empty() {
                parts.push(label);
            }
            if let Some(d) = edge.delay {
                parts.push(format!("after {d}"));
            }
            if let Some(at) = edge.at {
                parts.push(format!("at {}", at.format("%H:%M")));
            }
            if let Some(days) = &edge.days {
                parts.push(
                    days.iter()
                        .map(|d| d.to_string().to_lowercase())
                        .collect::<Vec<_>>()
                        .join(","),
                );
            }
            if let Some(w) = &edge.window {
                let days = w
                    .days
                    .iter()
                    .flatten()
                    .map(|d| d.to_string().to_lowercase());
                let days = days.collect::<Vec<_>>().join(",");
                let (from, to) = (w.from.format("%H:%M"), w.to.format("%H:%M"));
                parts.push(format!("window {from}-{to} {days}").trim_end().to_string());
            }
            let arrow = if parts.is_empty() {
                " --> ".to_string()
            } else {
                format!(" -->|\"{}\"| ", quote(&parts.join(" ")))
            };
            out.push_str(&format!("    {}{}{}\n", id(&node.id), arrow, id(&edge.to)));
        }
    }
    out
}

extension_sql!(
    "COMMENT ON FUNCTION journey.flow_diagram(text) IS 'A mermaid flowchart of the flow''s current version: every node with its id, type, stage and live counts (reached, waiting), edges labelled with branch, delay and window.';",
    name = "flow_diagram_comment",
    requires = [flow_diagram, "stats"]
);
