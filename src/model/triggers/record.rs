//! record: a row of an app table attached with `journey.attach_table` (a record type) was
//! inserted or updated. `record` names the record type (routing key), `on` the operations
//! (default both), `changed` the columns an update must really change (default: any). The
//! record type and its columns are looked up when the flow is validated (api/records.rs).
use super::{known_keys, Key, Parsed};
use crate::model::parse::Ctx;
use serde_json::{json, Map, Value};

const OPS: &[&str] = &["insert", "update"];

pub fn record(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(o, "record", &["record", "on", "changed"], cx);
    let name = super::named(o, "record", "record type", cx)?;
    let on = strings(o, "on", cx, |s| OPS.contains(&s), "insert or update")
        .unwrap_or_else(|| OPS.iter().map(|s| s.to_string()).collect());
    let changed = strings(o, "changed", cx, |s| !s.is_empty(), "a column name");
    if changed.is_some() && !on.iter().any(|s| s == "update") {
        cx.problem("field \"changed\" needs \"update\" in \"on\" (only updates change columns)");
    }
    let mut params = json!({ "on": on });
    if let Some(changed) = changed {
        params["changed"] = json!(changed);
    }
    Some((Key::Text(name), Some(params)))
}

/// A non-empty list of strings each `ok`, or None when absent (problems listed otherwise).
fn strings(
    o: &Map<String, Value>,
    field: &str,
    cx: &mut Ctx,
    ok: fn(&str) -> bool,
    what: &str,
) -> Option<Vec<String>> {
    match o.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut out = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) if ok(s) => out.push(s.to_string()),
                    _ => cx.problem(format!("field \"{field}\": {item} is not {what}")),
                }
            }
            Some(out)
        }
        Some(other) => {
            cx.problem(format!(
                "field \"{field}\" must be a non-empty list, not {other}"
            ));
            None
        }
    }
}

#[cfg(test)]
mod unit {
    use crate::model::triggers::unit::parse;
    use crate::model::triggers::Key;
    use serde_json::json;

    #[test]
    fn record_triggers_and_their_problems() {
        let (t, problems) = parse(json!([
            {"type": "record", "record": "invoices", "changed": ["status"],
             "where": {"field": "record.status", "op": "=", "value": "paid"}},
            {"type": "record", "record": "deals", "on": ["insert"]},
            {"type": "record", "record": "deals", "on": ["delete"], "changed": "status"},
            {"type": "record", "record": "deals", "on": ["insert"], "changed": ["x"]},
            {"type": "record"}
        ]));
        assert_eq!(t[0].key, Key::Text("invoices".into()));
        assert_eq!(
            t[0].params,
            Some(json!({"on": ["insert", "update"], "changed": ["status"]}))
        );
        assert_eq!(t[1].params, Some(json!({"on": ["insert"]})));
        assert_eq!(
            problems,
            [
                "trigger[2]: field \"on\": \"delete\" is not insert or update",
                "trigger[2]: field \"changed\" must be a non-empty list, not \"status\"",
                "trigger[3]: field \"changed\" needs \"update\" in \"on\" (only updates change columns)",
                "trigger[4]: missing required field \"record\"",
            ]
        );
    }
}
