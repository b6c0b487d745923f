//! Predicates (`if` of condition nodes, `where` of event triggers; docs/ARCHITECTURE.md):
//! `{"field", "op", "value"}`, `{"all": [...]}`, `{"any": [...]}`, `{"not": ...}`,
//! `{"in_group": "vip"}`; fields `contact.<column>`, `contact.attributes.<key>`, `event.<key>`,
//! and for record triggers `record.<column>`, `record.<link>.<column>` and `old.<column>` (the
//! event data's `record` and `old`).
//! Pure: the caller loads the contact when `needs_contact` says so (`api::predicates`, the
//! engine's condition node).
use serde_json::Value;
use std::cmp::Ordering;

/// What a predicate's field may start with.
const ROOTS: &[&str] = &["contact.", "event.", "record.", "old."];

const OPS: &[&str] = &["=", "!=", ">", ">=", "<", "<=", "in", "contains", "exists"];

/// What a predicate is evaluated against.
pub struct Subject<'a> {
    pub contact: &'a Value,
    pub event: &'a Value,
    pub groups: &'a [String],
}

/// Lists the problems of a predicate (empty = well formed). `groups` collects referenced groups.
pub fn check(p: &Value, problems: &mut Vec<String>, groups: &mut Vec<String>) {
    let Some(obj) = p.as_object() else {
        problems.push(format!("predicate {p} must be an object"));
        return;
    };
    if let Some(list) = obj.get("all").or_else(|| obj.get("any")) {
        match list.as_array() {
            Some(items) if !items.is_empty() => {
                items.iter().for_each(|i| check(i, problems, groups))
            }
            _ => problems.push("\"all\"/\"any\" must be a non-empty array of predicates".into()),
        }
    } else if let Some(inner) = obj.get("not") {
        check(inner, problems, groups)
    } else if let Some(g) = obj.get("in_group") {
        match g.as_str() {
            Some(name) => groups.push(name.to_string()),
            None => problems.push("\"in_group\" must be a group name".into()),
        }
    } else {
        match obj.get("field").and_then(Value::as_str) {
            None => problems.push(format!(
                "predicate {p} needs a \"field\" (or all/any/not/in_group)"
            )),
            Some(f) if !ROOTS.iter().any(|r| f.starts_with(r)) => problems.push(format!(
                "field \"{f}\" must start with contact., event., record. or old."
            )),
            Some(_) => {}
        }
        match obj.get("op").and_then(Value::as_str) {
            Some(op) if OPS.contains(&op) => {
                if op != "exists" && !obj.contains_key("value") {
                    problems.push(format!("operator \"{op}\" needs a \"value\""));
                }
                if op == "in" && !obj.get("value").is_some_and(Value::is_array) {
                    problems.push("operator \"in\" needs an array \"value\"".into());
                }
            }
            Some(op) => problems.push(format!(
                "unknown operator \"{op}\" (use one of {})",
                OPS.join(" ")
            )),
            None => problems.push(format!("predicate {p} needs an \"op\"")),
        }
    }
}

/// Whether the predicate mentions the contact (so callers load it only when needed).
pub fn needs_contact(p: &Value) -> bool {
    let s = p.to_string();
    s.contains("\"contact.") || s.contains("\"in_group\"")
}

pub fn eval(p: &Value, s: &Subject) -> bool {
    let Some(obj) = p.as_object() else {
        return false;
    };
    if let Some(items) = obj.get("all").and_then(Value::as_array) {
        return items.iter().all(|i| eval(i, s));
    }
    if let Some(items) = obj.get("any").and_then(Value::as_array) {
        return items.iter().any(|i| eval(i, s));
    }
    if let Some(inner) = obj.get("not") {
        return !eval(inner, s);
    }
    if let Some(g) = obj.get("in_group").and_then(Value::as_str) {
        return s.groups.iter().any(|m| m == g);
    }
    let field = obj.get("field").and_then(Value::as_str).unwrap_or("");
    let actual = lookup(field, s);
    let expected = obj.get("value").unwrap_or(&Value::Null);
    match obj.get("op").and_then(Value::as_str).unwrap_or("") {
        "exists" => {
            let present = !actual.is_null();
            present == expected.as_bool().unwrap_or(true)
        }
        "=" => equal(&actual, expected),
        "!=" => !equal(&actual, expected),
        ">" => compare(&actual, expected) == Some(Ordering::Greater),
        ">=" => matches!(
            compare(&actual, expected),
            Some(Ordering::Greater | Ordering::Equal)
        ),
        "<" => compare(&actual, expected) == Some(Ordering::Less),
        "<=" => matches!(
            compare(&actual, expected),
            Some(Ordering::Less | Ordering::Equal)
        ),
        "in" => expected
            .as_array()
            .is_some_and(|items| items.iter().any(|i| equal(&actual, i))),
        "contains" => match (&actual, expected) {
            (Value::String(a), Value::String(b)) => a.to_lowercase().contains(&b.to_lowercase()),
            (Value::Array(items), v) => items.iter().any(|i| equal(i, v)),
            _ => false,
        },
        _ => false,
    }
}

fn lookup(field: &str, s: &Subject) -> Value {
    let (root, path) = if let Some(rest) = field.strip_prefix("contact.") {
        (s.contact, rest)
    } else if let Some(rest) = field.strip_prefix("event.") {
        (s.event, rest)
    } else if let Some(rest) = field.strip_prefix("record.") {
        (&s.event["record"], rest)
    } else if let Some(rest) = field.strip_prefix("old.") {
        (&s.event["old"], rest)
    } else {
        return Value::Null;
    };
    let mut cur = root;
    let mut rest = path;
    loop {
        let Some((key, tail)) = step(cur, rest) else {
            return Value::Null;
        };
        cur = &cur[key];
        match tail {
            Some(t) => rest = t,
            None => return cur.clone(),
        }
    }
}

/// The key of `cur` a path starts with, and the rest of the path after it. A key may hold dots
/// (contact_updated's `event.changed` has keys `attributes.<key>`): the longest key that is the
/// whole path, or a prefix of it ending before a dot, wins.
fn step<'p>(cur: &Value, path: &'p str) -> Option<(&'p str, Option<&'p str>)> {
    let obj = cur.as_object()?;
    if obj.contains_key(path) {
        return Some((path, None));
    }
    let mut end = path.len();
    while let Some(i) = path[..end].rfind('.') {
        if obj.contains_key(&path[..i]) {
            return Some((&path[..i], Some(&path[i + 1..])));
        }
        end = i;
    }
    None
}

fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) if a.is_number() || b.is_number() => x == y,
        _ => match (a, b) {
            (Value::String(x), Value::String(y)) => x == y,
            _ => a == b,
        },
    }
}

fn compare(a: &Value, b: &Value) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (as_number(a), as_number(b)) {
        return x.partial_cmp(&y);
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    fn run(p: Value) -> bool {
        let contact = json!({"first_name": "Ana", "attributes": {"plan": "pro", "score": 7}});
        let event = json!({"amount": 150, "tags": ["a", "b"]});
        let groups = vec!["vip".to_string()];
        eval(
            &p,
            &Subject {
                contact: &contact,
                event: &event,
                groups: &groups,
            },
        )
    }

    #[test]
    fn operators() {
        assert!(run(
            json!({"field": "event.amount", "op": ">", "value": 100})
        ));
        assert!(!run(
            json!({"field": "event.amount", "op": "<", "value": 100})
        ));
        assert!(run(
            json!({"field": "contact.attributes.plan", "op": "in", "value": ["pro", "team"]})
        ));
        assert!(run(
            json!({"field": "event.tags", "op": "contains", "value": "b"})
        ));
        assert!(run(
            json!({"field": "contact.last_name", "op": "exists", "value": false})
        ));
        assert!(run(
            json!({"all": [{"in_group": "vip"}, {"not": {"in_group": "other"}}]})
        ));
        assert!(run(
            json!({"any": [{"field": "contact.first_name", "op": "=", "value": "Bob"},
                                   {"field": "contact.attributes.score", "op": ">=", "value": 7}]})
        ));
    }

    #[test]
    fn checks_shape() {
        let mut problems = Vec::new();
        let mut groups = Vec::new();
        check(
            &json!({"field": "amount", "op": "~"}),
            &mut problems,
            &mut groups,
        );
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn keys_with_dots() {
        let event = json!({"changed": {"attributes.status": {"old": null, "new": "gold"},
                                       "attributes": {"old": {}, "new": {"status": "x"}},
                                       "email": {"old": "a@x", "new": "b@x"}}});
        let field = |f: &str| {
            lookup(
                f,
                &Subject {
                    contact: &Value::Null,
                    event: &event,
                    groups: &[],
                },
            )
        };
        assert_eq!(field("event.changed.attributes.status.new"), json!("gold"));
        assert_eq!(
            field("event.changed.attributes.status"),
            json!({"old": null, "new": "gold"})
        );
        assert_eq!(field("event.changed.attributes.new.status"), json!("x"));
        assert_eq!(field("event.changed.email.old"), json!("a@x"));
        assert_eq!(field("event.changed.phone.old"), Value::Null);
        assert_eq!(field("event.changed.email.old.more"), Value::Null);
    }
}
