//! JSON text from the database (definitions, contact attributes, event data, predicates) read
//! into `serde_json` values with errors that say what could not be read, instead of the panic
//! (an internal error, SQLSTATE XX000) a failed conversion would be. PostgreSQL's jsonb holds
//! numbers no f64 can (`1e400`) and nesting deeper than serde's limit (128): both are errors
//! here.
use serde_json::Value;

/// Longest JSON text read as a flow definition.
pub const MAX_DEFINITION_BYTES: usize = 1 << 20;

/// Parses JSON text; the error names `what` was read and why it could not be.
pub fn parse(text: &str, what: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{what} cannot be read: {}", reason(&e)))
}

fn reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.contains("recursion limit") {
        "it is nested more than 128 levels deep".into()
    } else if text.contains("number out of range") {
        "it holds a number out of range (beyond ±1.7e308)".into()
    } else {
        text
    }
}

/// The nesting depth of a value (a scalar is 0), found without recursion.
pub fn depth(v: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        deepest = deepest.max(d);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, d + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn unreadable_json_is_an_error_naming_why() {
        assert!(parse(r#"{"n": 1e400}"#, "attributes")
            .unwrap_err()
            .contains("attributes cannot be read: it holds a number out of range"));
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(parse(&deep, "event data")
            .unwrap_err()
            .contains("nested more than 128"));
        assert_eq!(
            parse(r#"{"a": [1, {"b": 2}]}"#, "x").map(|v| depth(&v)),
            Ok(3)
        );
    }
}
