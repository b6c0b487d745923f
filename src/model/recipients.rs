//! The recipients of a send_email (`to`, `cc`, `bcc`): a list of `"contact"` (the contact's
//! address), `"record.<column>"` or `"record.<link>.<column>"` (read from the record that
//! fired the flow when the step runs), literal addresses (checked here, when the flow is
//! saved) and Liquid templates (rendered when the step runs). A single string is a list of one.
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum Recipient {
    Contact,
    /// The path below `record.` (`billing_email`, `account.email`).
    Record(String),
    Address(String),
    Template(String),
}

impl Recipient {
    /// How a step names this recipient when it skips it.
    pub fn label(&self) -> String {
        match self {
            Recipient::Contact => "contact".into(),
            Recipient::Record(path) => format!("record.{path}"),
            Recipient::Address(a) => a.clone(),
            Recipient::Template(t) => t.clone(),
        }
    }
}

/// Parses a recipients field; problems name the field.
pub fn parse(field: &str, v: Option<&Value>, problems: &mut Vec<String>) -> Vec<Recipient> {
    let items: Vec<&Value> = match v {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        Some(s @ Value::String(_)) => vec![s],
        Some(other) => {
            problems.push(format!(
                "field \"{field}\" must be a list of \"contact\", \"record.<column>\" or addresses, not {other}"
            ));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for item in items {
        let Some(text) = item.as_str().map(str::trim) else {
            problems.push(format!("field \"{field}\": {item} is not a recipient"));
            continue;
        };
        out.push(if text == "contact" {
            Recipient::Contact
        } else if text.contains("{{") || text.contains("{%") {
            Recipient::Template(text.to_string())
        } else if let Some(path) = text.strip_prefix("record.").filter(|p| !p.is_empty()) {
            Recipient::Record(path.to_string())
        } else if is_address(text) {
            Recipient::Address(text.to_string())
        } else {
            problems.push(format!(
                "field \"{field}\": \"{text}\" is not an e-mail address (nor \"contact\" or \"record.<column>\")"
            ));
            continue;
        });
    }
    out
}

/// A plausible e-mail address: one `@`, a local part, a domain with a dot, no spaces or angle
/// brackets, at most 254 bytes.
pub fn is_address(a: &str) -> bool {
    let Some((local, domain)) = a.split_once('@') else {
        return false;
    };
    a.len() <= 254
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !a
            .chars()
            .any(|c| c.is_whitespace() || "<>,;\"()[]\\".contains(c))
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_strings_and_problems() {
        let mut problems = Vec::new();
        let r = parse(
            "to",
            Some(&json!([
                "contact",
                "record.billing_email",
                "ops@example.com",
                "{{ contact.attributes.boss }}",
                "not an address",
                3
            ])),
            &mut problems,
        );
        assert_eq!(
            r,
            [
                Recipient::Contact,
                Recipient::Record("billing_email".into()),
                Recipient::Address("ops@example.com".into()),
                Recipient::Template("{{ contact.attributes.boss }}".into()),
            ]
        );
        assert_eq!(
            problems,
            [
                "field \"to\": \"not an address\" is not an e-mail address (nor \"contact\" or \"record.<column>\")",
                "field \"to\": 3 is not a recipient",
            ]
        );
        assert_eq!(
            parse("cc", Some(&json!("a@b.co")), &mut problems),
            [Recipient::Address("a@b.co".into())]
        );
        assert!(parse("cc", None, &mut problems).is_empty());
        for bad in ["a@b", "@b.co", "a b@c.co", "a@b.co>", "a@@b.co", "a@.co"] {
            assert!(!is_address(bad), "{bad}");
        }
    }
}
