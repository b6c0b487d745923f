//! contact_created and contact_updated: a new row in journey.contacts (INSERT, upsert_contact,
//! a form that creates the contact), and an UPDATE that really changes one of the listed
//! fields (the event data then says what changed: `{"changed": {field: {old, new}}}`).
use super::{known_keys, Key, Parsed};
use crate::model::nodes::contact::CONTACT_FIELDS;
use crate::model::parse::Ctx;
use serde_json::{json, Map, Value};

/// The contact columns a contact_updated trigger may watch (besides `attributes.<key>`): those
/// update_contact may set, and `attributes` as a whole.
fn columns() -> impl Iterator<Item = &'static str> {
    CONTACT_FIELDS.iter().copied().chain(["attributes"])
}

pub fn created(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(o, "contact_created", &[], cx);
    Some((Key::Any, None))
}

/// `fields`: a non-empty list of contact columns or `attributes.<key>`; absent = every column
/// (an attribute change counts as a change of `attributes`).
pub fn updated(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(o, "contact_updated", &["fields"], cx);
    let fields: Vec<String> = match o.get("fields") {
        None | Some(Value::Null) => columns().map(str::to_string).collect(),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut out = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(f) if is_field(f) => out.push(f.to_string()),
                    _ => cx.problem(format!(
                        "field \"fields\": {item} is not a contact field (use {} or attributes.<key>)",
                        columns().collect::<Vec<_>>().join(", ")
                    )),
                }
            }
            out
        }
        Some(other) => {
            cx.problem(format!(
                "field \"fields\" must be a non-empty list of contact fields, not {other}"
            ));
            return None;
        }
    };
    Some((Key::Any, Some(json!({ "fields": fields }))))
}

fn is_field(f: &str) -> bool {
    columns().any(|c| c == f) || f.strip_prefix("attributes.").is_some_and(|k| !k.is_empty())
}

#[cfg(test)]
mod unit {
    use crate::model::triggers::unit::parse;
    use serde_json::json;

    #[test]
    fn contact_updated_fields() {
        let (t, problems) = parse(json!([
            {"type": "contact_updated", "fields": ["email", "attributes.status"]},
            {"type": "contact_updated"},
            {"type": "contact_updated", "fields": ["mood", "attributes."]},
            {"type": "contact_updated", "fields": "email"},
            {"type": "contact_created", "where": {"field": "contact.attributes.source", "op": "=", "value": "web"}}
        ]));
        assert_eq!(
            t[0].params,
            Some(json!({"fields": ["email", "attributes.status"]}))
        );
        assert_eq!(
            t[1].params.as_ref().unwrap()["fields"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
        assert_eq!(t[2].params, Some(json!({"fields": []})));
        assert_eq!(t.len(), 4);
        assert_eq!(t[3].kind, "contact_created");
        assert!(t[3].condition.is_some());
        assert_eq!(
            problems,
            [
                "trigger[2]: field \"fields\": \"mood\" is not a contact field (use external_id, email, phone, first_name, last_name, birthday, time_zone, email_opt_out, sms_opt_out, attributes or attributes.<key>)",
                "trigger[2]: field \"fields\": \"attributes.\" is not a contact field (use external_id, email, phone, first_name, last_name, birthday, time_zone, email_opt_out, sms_opt_out, attributes or attributes.<key>)",
                "trigger[3]: field \"fields\" must be a non-empty list of contact fields, not \"email\"",
            ]
        );
    }
}
