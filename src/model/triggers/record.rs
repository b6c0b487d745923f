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

/// Whether a flow may read `old` (the columns an update changed, as they were). A flow cannot
/// when its definition never names `old`, never reads the event whole or by a computed key
/// (`event` as a word not followed by `.name`: `{{ event }}`, `{% for p in event %}`,
/// `event[k]`), and never renders a stored template (`"template"`: its body is not in the
/// definition and may change after activation). Such a flow's record triggers keep no old
/// columns ([`routed_params`]): building them is a good part of what an update's
/// enrollment costs. Anything else that merely looks like a read (a message saying "your old
/// plan", an event trigger) keeps them, which only costs that.
pub fn reads_old(definition: &Value) -> bool {
    let text = definition.to_string();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let whole = |at: usize, len: usize| {
        !word(text[..at].chars().next_back()) && !word(text[at + len..].chars().next())
    };
    let names_old = text.match_indices("old").any(|(i, _)| whole(i, 3));
    let reads_event_whole = text.match_indices("event").any(|(i, _)| {
        let mut after = text[i + 5..].chars();
        whole(i, 5) && !(after.next() == Some('.') && word(after.next()))
    });
    names_old || reads_event_whole || text.contains("\"template\"")
}

/// A record trigger's routing params: `old` false when its flow cannot read `old`
/// ([`reads_old`], asked once per flow by the caller): `journey._record_listeners` passes it on,
/// and the flow's updates keep no old columns.
pub fn routed_params(params: Option<&Value>, reads_old: bool) -> Option<Value> {
    let mut params = params.cloned();
    if let (false, Some(Value::Object(p))) = (reads_old, params.as_mut()) {
        p.insert("old".into(), Value::Bool(false));
    }
    params
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
    use super::{reads_old, routed_params};
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

    #[test]
    fn a_flow_reads_old_when_its_definition_names_it() {
        let flow = |text: &str| json!({"nodes": {"s": {"type": "send_sms", "text": text}}});
        for reads in [
            "{{ old.status }} -> {{ record.status }}",
            "{{old.status}}",
            "{%- if old -%}x{% endif %}",
            "{{ event.old.amount }}",
            "{% assign o = old %}{{ o.x }}",
            "your old plan",
            "{{ event }}",
            "{% for p in event %}{{ p }}{% endfor %}",
            "{% assign k = 'ol' | append: 'd' %}{{ event[k].status }}",
            "{{ event | json }}",
        ] {
            assert!(reads_old(&flow(reads)), "{reads}");
        }
        for not in [
            "{{ record.status }}",
            "older, bold, old_price, oldest",
            "{{ record.old_price }}",
            "{{ event.op }} {{ event.record.id }}",
        ] {
            assert!(!reads_old(&flow(not)), "{not}");
        }
        let predicate = json!({"triggers": [{"type": "record", "record": "carts",
            "where": {"field": "old.total", "op": "<", "value": 10}}]});
        assert!(reads_old(&predicate));
        let stored = json!({"nodes": {"s": {"type": "send_email", "template": "receipt"}}});
        assert!(reads_old(&stored));
        let waits = json!({"nodes": {"w": {"type": "wait_event", "event": "paid"}}});
        assert!(!reads_old(&json!({"nodes": {"w": {"type": "wait_event"}}})));
        assert!(
            reads_old(&waits),
            "a field named event: kept, only the cost"
        );
    }

    #[test]
    fn a_flow_that_never_reads_old_routes_its_record_triggers_so() {
        let on = json!({"on": ["update"]});
        assert_eq!(
            routed_params(Some(&on), false),
            Some(json!({"on": ["update"], "old": false}))
        );
        assert_eq!(routed_params(Some(&on), true), Some(on));
        assert_eq!(routed_params(None, false), None);
    }
}
