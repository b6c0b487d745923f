//! Liquid's lookup errors ("Unknown index with: variable=contact requested index=nick …",
//! "Unknown variable with: requested variable=contat") said as what the template author should
//! change: which variable, and how to fix it. Other errors are left as they are.
use crate::model::suggest;

/// What templates see at the top level.
pub const ROOTS: &[&str] = &["contact", "event", "flow"];

/// `message` (Liquid's error on one line) explained when it is a lookup error.
pub fn explain(message: &str) -> String {
    let field = |name: &str| {
        let start = message.find(&format!(" {name}="))? + name.len() + 2;
        let rest = &message[start..];
        let end = [" requested ", " available indexes=", " from: "]
            .iter()
            .filter_map(|m| rest.find(m))
            .min()
            .unwrap_or(rest.len());
        Some(rest[..end].trim().to_string())
    };
    if message.contains("Unknown variable") {
        if let Some(name) = field("requested variable") {
            return unknown_variable(&name);
        }
    }
    if message.contains("Unknown index") {
        if let (Some(parent), Some(index)) = (field("variable"), field("requested index")) {
            return unknown_index(&parent, &index);
        }
    }
    message.to_string()
}

fn unknown_variable(name: &str) -> String {
    let hint = match suggest::nearest(name, ROOTS) {
        Some(root) => format!("did you mean {root}?"),
        None => "use contact.<column>, contact.attributes.<key>, event.<key> or flow.<key>, \
                 or assign it first"
            .to_string(),
    };
    format!("{name} is not a variable ({hint})")
}

fn unknown_index(parent: &str, index: &str) -> String {
    if parent == "contact" {
        let columns = super::contact::FIELDS;
        return match suggest::nearest(index, columns) {
            Some(column) => format!("contact.{index} is not a variable (did you mean contact.{column}?)"),
            None => format!(
                "contact.{index} is not a variable: use contact.attributes.{index} (add | default: '…' \
                 for contacts without it), or a column: {}",
                columns.join(", ")
            ),
        };
    }
    format!(
        "{parent}.{index} cannot be read: {parent} is missing or has no \"{index}\" (test it with \
         {{% if {parent} %}} or add | default: '…')"
    )
}

#[cfg(test)]
mod unit {
    use super::explain;

    #[test]
    fn lookup_errors_say_what_to_write() {
        assert_eq!(
            explain("liquid: Unknown index with: variable=contact requested index=nick available indexes=id, email"),
            "contact.nick is not a variable: use contact.attributes.nick (add | default: '…' for \
             contacts without it), or a column: id, external_id, email, phone, first_name, \
             last_name, birthday, time_zone, attributes, email_opt_out, sms_opt_out, created_at, \
             updated_at"
        );
        assert_eq!(
            explain("liquid: Unknown index with: variable=contact requested index=frist_name available indexes=id"),
            "contact.frist_name is not a variable (did you mean contact.first_name?)"
        );
        assert_eq!(
            explain("liquid: Unknown variable with: requested variable=contat"),
            "contat is not a variable (did you mean contact?)"
        );
        assert_eq!(
            explain("liquid: Unknown variable with: requested variable=order"),
            "order is not a variable (use contact.<column>, contact.attributes.<key>, \
             event.<key> or flow.<key>, or assign it first)"
        );
        assert_eq!(
            explain("liquid: Unknown index with: variable=contact.attributes requested index=a available indexes="),
            "contact.attributes.a cannot be read: contact.attributes is missing or has no \"a\" \
             (test it with {% if contact.attributes %} or add | default: '…')"
        );
        assert_eq!(
            explain("liquid: Expected if condition"),
            "liquid: Expected if condition"
        );
    }
}
