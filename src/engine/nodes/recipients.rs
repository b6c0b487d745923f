//! send_email's recipients resolved for one enrollment: `contact`, the record's fields (and its
//! links'), literal addresses and rendered templates. An empty or invalid address, or one that
//! belongs to a contact who opted out of e-mail, is skipped with its reason; the others get the
//! message. Addresses are kept once each (case-insensitively), in the order given.
use super::Context;
use crate::engine::claim::Enrollment;
use crate::error::Result;
use crate::model::recipients::{is_address, Recipient};
use crate::model::Node;
use serde_json::Value;

/// The addresses of `to`, `cc` and `bcc`, and what was skipped (`label: reason`).
#[derive(Default, Debug, PartialEq)]
pub struct Resolved {
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub bcc: Vec<String>,
    pub skipped: Vec<String>,
}

pub fn resolve(
    e: &Enrollment,
    node: &Node,
    cx: &Context,
    lists: [(&'static str, &[Recipient]); 3],
) -> Result<Resolved> {
    let mut out = Resolved::default();
    let mut seen: Vec<String> = Vec::new();
    for (field, list) in lists {
        for r in list {
            let address = match address(e, node, cx, field, r)? {
                Ok(a) => a,
                Err(why) => {
                    out.skipped.push(format!("{} ({why})", r.label()));
                    continue;
                }
            };
            if seen.contains(&address.to_lowercase()) {
                continue;
            }
            seen.push(address.to_lowercase());
            match field {
                "to" => out.to.push(address),
                "cc" => out.cc.push(address),
                _ => out.bcc.push(address),
            }
        }
    }
    // anyone who opted out of e-mail, whoever's address it is
    let opted_out = (cx.opted_out)(&seen)?;
    if !opted_out.is_empty() {
        for list in [&mut out.to, &mut out.cc, &mut out.bcc] {
            list.retain(|a| !opted_out.contains(&a.to_lowercase()));
        }
        for a in seen.iter().filter(|a| opted_out.contains(a)) {
            out.skipped.push(format!("{a} (email_opt_out)"));
        }
    }
    Ok(out)
}

/// One recipient's address, or why it has none (Err inside Ok); Err: a render error.
fn address(
    e: &Enrollment,
    node: &Node,
    cx: &Context,
    field: &str,
    r: &Recipient,
) -> Result<std::result::Result<String, String>> {
    let text = match r {
        Recipient::Contact => {
            if e.contact.email_opt_out {
                return Ok(Err("email_opt_out".into()));
            }
            e.contact.email.clone().unwrap_or_default()
        }
        Recipient::Address(a) => a.clone(),
        Recipient::Template(t) => cx.render(e, node, field, t)?,
        Recipient::Record(path) => match e.event.json() {
            Ok(data) => match field_at(&data["record"], path) {
                Value::String(s) => s,
                Value::Null => String::new(),
                other => other.to_string(),
            },
            Err(why) => return Ok(Err(why)),
        },
    };
    let text = text.trim().to_string();
    Ok(if text.is_empty() {
        Err("empty".into())
    } else if !is_address(&text) {
        Err(format!("\"{text}\" is not an e-mail address"))
    } else {
        Ok(text)
    })
}

/// The value at a dotted path (`account.email`) of the record, null when absent.
fn field_at(record: &Value, path: &str) -> Value {
    let mut cur = record;
    for key in path.split('.') {
        cur = &cur[key];
    }
    cur.clone()
}

#[cfg(test)]
mod unit {
    use super::field_at;
    use serde_json::json;

    #[test]
    fn fields_by_path() {
        let r = json!({"email": "a@b.co", "account": {"email": "c@d.co"}, "n": 3});
        assert_eq!(field_at(&r, "email"), json!("a@b.co"));
        assert_eq!(field_at(&r, "account.email"), json!("c@d.co"));
        assert_eq!(field_at(&r, "account.missing.x"), json!(null));
        assert_eq!(field_at(&json!(null), "email"), json!(null));
    }
}
