//! date: a date of the contact (the `birthday` column, or an attribute holding an ISO date or
//! timestamp), once or every year, `offset_days` before (negative) or after, at a local time
//! of day, optionally only for members of some groups. The occurrence arithmetic is in
//! engine/occurrence.rs; the schedule and the pass that enrolls due occurrences in sql/dates.sql.
use super::{known_keys, Key, Parsed};
use crate::model::parse::Ctx;
use serde_json::{json, Map, Value};

/// Most days a date trigger may fire before or after its date.
pub const MAX_OFFSET_DAYS: i64 = 366;

pub fn date(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(
        o,
        "date",
        &["field", "repeat", "offset_days", "at", "groups", "feb29"],
        cx,
    );
    let field = field(o, cx);
    let repeat = choice(o, "repeat", &["yearly", "once"], cx);
    let offset_days = offset_days(o, cx);
    let at = cx.time(o, "at").map(|t| t.format("%H:%M").to_string());
    let feb29 = choice(o, "feb29", &["feb28", "mar1"], cx);
    let groups = groups(o, cx);
    Some((
        Key::Text(field?),
        Some(json!({
            "repeat": repeat, "offset_days": offset_days, "at": at,
            "feb29": feb29, "groups": groups,
        })),
    ))
}

/// `birthday` or `attributes.<key>`.
fn field(o: &Map<String, Value>, cx: &mut Ctx) -> Option<String> {
    let f = cx.string(o, "field", true)?;
    if f == "birthday" || f.strip_prefix("attributes.").is_some_and(|k| !k.is_empty()) {
        Some(f)
    } else {
        cx.problem(format!(
            "field \"field\": \"{f}\" is not a date of the contact (use birthday or attributes.<key>)"
        ));
        None
    }
}

/// One of `options`, the first being the default.
fn choice(o: &Map<String, Value>, field: &str, options: &[&str], cx: &mut Ctx) -> String {
    match cx.string(o, field, false) {
        Some(v) if options.contains(&v.as_str()) => v,
        Some(v) => {
            cx.problem(format!(
                "field \"{field}\": \"{v}\" is not one of {}",
                options.join(", ")
            ));
            options[0].to_string()
        }
        None => options[0].to_string(),
    }
}

fn offset_days(o: &Map<String, Value>, cx: &mut Ctx) -> i64 {
    match o.get("offset_days") {
        None | Some(Value::Null) => 0,
        Some(v) => match v.as_i64() {
            Some(n) if n.abs() <= MAX_OFFSET_DAYS => n,
            _ => {
                cx.problem(format!(
                    "field \"offset_days\" must be a whole number of days from -{MAX_OFFSET_DAYS} to {MAX_OFFSET_DAYS}, not {v}"
                ));
                0
            }
        },
    }
}

/// A list of group names (references), empty when absent.
fn groups(o: &Map<String, Value>, cx: &mut Ctx) -> Vec<String> {
    match o.get("groups") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut out = Vec::new();
            for g in items {
                match g.as_str().filter(|s| !s.trim().is_empty()) {
                    Some(name) => {
                        cx.reference("group", name);
                        out.push(name.to_string());
                    }
                    None => cx.problem(format!("field \"groups\": {g} is not a group name")),
                }
            }
            out
        }
        Some(other) => {
            cx.problem(format!(
                "field \"groups\" must be a non-empty list of group names, not {other}"
            ));
            Vec::new()
        }
    }
}

#[cfg(test)]
mod unit {
    use crate::model::triggers::{unit::parse, Key};
    use serde_json::json;

    #[test]
    fn date_fields_and_problems() {
        let (t, problems) = parse(json!([
            {"type": "date", "field": "birthday", "offset_days": -1, "at": "9:00", "groups": ["vip"]},
            {"type": "date", "field": "attributes.renewal", "repeat": "once", "feb29": "mar1"},
            {"type": "date", "field": "email", "repeat": "monthly", "offset_days": 400,
             "at": "25:00", "feb29": "leap", "groups": "vip", "when": 1},
            {"type": "date"}
        ]));
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].key, Key::Text("birthday".into()));
        assert_eq!(
            t[0].params,
            Some(
                json!({"repeat": "yearly", "offset_days": -1, "at": "09:00", "feb29": "feb28", "groups": ["vip"]})
            )
        );
        assert_eq!(
            t[1].params,
            Some(
                json!({"repeat": "once", "offset_days": 0, "at": null, "feb29": "mar1", "groups": []})
            )
        );
        assert_eq!(
            problems,
            [
                "trigger[2]: a date trigger has no field \"when\" (its fields: field, repeat, offset_days, at, groups, feb29, where)",
                "trigger[2]: field \"field\": \"email\" is not a date of the contact (use birthday or attributes.<key>)",
                "trigger[2]: field \"repeat\": \"monthly\" is not one of yearly, once",
                "trigger[2]: field \"offset_days\" must be a whole number of days from -366 to 366, not 400",
                "trigger[2]: field \"at\": \"25:00\" is not a time of day (HH:MM, 00:00 to 23:59)",
                "trigger[2]: field \"feb29\": \"leap\" is not one of feb28, mar1",
                "trigger[2]: field \"groups\" must be a non-empty list of group names, not \"vip\"",
                "trigger[3]: missing required field \"field\"",
            ]
        );
    }
}
