//! update_contact: `add_groups`, `remove_groups`, `set` (contact columns and attributes).
use super::Input;
use crate::model::flow::NodeKind;
use crate::model::parse::Ctx;
use serde_json::{Map, Value};

/// Contact columns flows may set (besides attributes.<key>).
pub const CONTACT_FIELDS: &[&str] = &[
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "time_zone",
    "email_opt_out",
    "sms_opt_out",
];

/// update_contact's fields (besides type, next, stage).
pub const FIELDS: &[&str] = &["add_groups", "remove_groups", "set"];

pub fn update(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let groups = |cx: &mut Ctx, field: &str| -> Vec<String> {
        match o.get(field) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                let names: Vec<String> = items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                names.iter().for_each(|g| cx.reference("group", g));
                names
            }
            Some(other) => {
                cx.problem(format!(
                    "field \"{field}\" must be a list of group names, not {other}"
                ));
                Vec::new()
            }
        }
    };
    let add_groups = groups(cx, "add_groups");
    let remove_groups = groups(cx, "remove_groups");
    let set = match o.get("set") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => {
            for key in m.keys() {
                let attribute = key
                    .strip_prefix("attributes.")
                    .is_some_and(|k| !k.is_empty());
                if !(CONTACT_FIELDS.contains(&key.as_str()) || attribute) {
                    cx.problem(format!(
                        "field \"set\": unknown contact field \"{key}\" (use {} or attributes.<key>)",
                        CONTACT_FIELDS.join(", ")
                    ));
                }
            }
            m.clone()
        }
        Some(other) => {
            cx.problem(format!(
                "field \"set\" must be an object of contact field -> value, not {other}"
            ));
            Map::new()
        }
    };
    if add_groups.is_empty() && remove_groups.is_empty() && set.is_empty() {
        cx.problem("update_contact needs \"add_groups\", \"remove_groups\" or \"set\"");
    }
    NodeKind::UpdateContact {
        add_groups,
        remove_groups,
        set,
    }
}
