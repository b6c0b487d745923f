//! update_record and create_record: writes to the app's own tables (seed 001 "change status",
//! "change field", "create task"). `set` / `values` map column names to values; a string value
//! is a Liquid template, any other JSON value is written as it is (cast to the column's type by
//! Postgres). Which tables may be written and which columns exist is the catalog's to say: the
//! flow's validation looks them up (api/records.rs).
use super::Input;
use crate::model::flow::NodeKind;
use crate::model::parse::Ctx;
use serde_json::{Map, Value};

pub const UPDATE_FIELDS: &[&str] = &["set", "target"];
pub const CREATE_FIELDS: &[&str] = &["table", "values"];

/// Column -> value pairs, in the order given.
pub type Values = Vec<(String, Value)>;

pub fn update(input: &Input, cx: &mut Ctx) -> NodeKind {
    let target = cx
        .string(input.fields, "target", false)
        .unwrap_or_else(|| "record".into());
    NodeKind::UpdateRecord {
        target,
        set: values(input.fields, "set", cx),
    }
}

pub fn create(input: &Input, cx: &mut Ctx) -> NodeKind {
    let table = cx.string(input.fields, "table", true).unwrap_or_default();
    NodeKind::CreateRecord {
        table,
        values: values(input.fields, "values", cx),
    }
}

/// A non-empty object of column -> value.
fn values(o: &Map<String, Value>, field: &str, cx: &mut Ctx) -> Values {
    match o.get(field) {
        Some(Value::Object(m)) if !m.is_empty() => {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        }
        None | Some(Value::Null) => {
            cx.problem(format!(
                "missing required field \"{field}\" (an object of column -> value)"
            ));
            Vec::new()
        }
        Some(other) => {
            cx.problem(format!(
                "field \"{field}\" must be a non-empty object of column -> value, not {other}"
            ));
            Vec::new()
        }
    }
}

/// The Liquid sources of a record node: its string values.
pub fn templates(kind: &NodeKind) -> Vec<(&'static str, &str)> {
    let (field, values) = match kind {
        NodeKind::UpdateRecord { set, .. } => ("set", set),
        NodeKind::CreateRecord { values, .. } => ("values", values),
        _ => return Vec::new(),
    };
    values
        .iter()
        .filter_map(|(_, v)| v.as_str().map(|s| (field, s)))
        .collect()
}

#[cfg(test)]
mod unit {
    use crate::model::{FlowDef, NodeKind};
    use serde_json::json;

    fn parse(node: serde_json::Value) -> (Option<NodeKind>, Vec<String>) {
        let (def, problems) = FlowDef::parse(&json!({
            "triggers": [{"type": "manual"}], "start": "a", "nodes": {"a": node}
        }));
        (
            def.nodes.get("a").map(|n| n.kind.clone()),
            problems.into_iter().map(|p| p.problem).collect(),
        )
    }

    #[test]
    fn record_nodes_and_their_problems() {
        let (kind, problems) =
            parse(json!({"type": "update_record", "set": {"status": "reminded", "n": 2}}));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            kind,
            Some(NodeKind::UpdateRecord {
                target: "record".into(),
                set: vec![("n".into(), json!(2)), ("status".into(), json!("reminded"))],
            })
        );
        let (_, problems) = parse(json!({"type": "update_record", "set": {}}));
        assert_eq!(
            problems,
            ["field \"set\" must be a non-empty object of column -> value, not {}"]
        );
        let (kind, problems) = parse(json!({"type": "create_record", "table": "public.tasks",
                                            "values": {"title": "Call {{ contact.first_name }}"}}));
        assert!(problems.is_empty(), "{problems:?}");
        assert!(matches!(kind, Some(NodeKind::CreateRecord { .. })));
        let (_, problems) = parse(json!({"type": "create_record", "values": []}));
        assert_eq!(
            problems,
            [
                "missing required field \"table\"",
                "field \"values\" must be a non-empty object of column -> value, not []"
            ]
        );
    }
}
