//! The nodes that write a message (an outbox row): send_sms, send_email, send_whatsapp,
//! notify_admin, create_task, webhook. Their text fields are Liquid templates.
use super::Input;
use crate::model::flow::NodeKind;
use crate::model::parse::Ctx;
use crate::model::phone;
use crate::model::recipients::Recipient;
use serde_json::Value;

/// The fields of each sending node type (besides type, next, stage).
pub const SMS_FIELDS: &[&str] = &[
    "text",
    "template",
    "sender",
    "unsubscribe",
    "ignore_quiet_hours",
];
pub const EMAIL_FIELDS: &[&str] = &[
    "template",
    "subject",
    "body",
    "from_name",
    "from",
    "to",
    "cc",
    "bcc",
];
pub const WHATSAPP_FIELDS: &[&str] = &["text", "template"];
pub const ADMIN_FIELDS: &[&str] = &["to", "subject", "text"];
pub const TASK_FIELDS: &[&str] = &["assignee", "title", "due"];
pub const WEBHOOK_FIELDS: &[&str] = &["url", "method", "body"];

pub fn sms(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let sender = cx.string(o, "sender", false);
    if let Some(problem) = sender.as_deref().and_then(sender_problem) {
        cx.problem(problem);
    }
    let (text, template) = text_or_template(input, cx, "sms");
    NodeKind::SendSms {
        text,
        template,
        sender,
        unsubscribe: cx.boolean(o, "unsubscribe"),
        ignore_quiet_hours: cx.boolean(o, "ignore_quiet_hours"),
    }
}

/// An SMS sender id is alphanumeric (the GSM rule: at most 11 letters, digits or spaces, at
/// least one letter) or a phone number (E.164, or 3 to 15 digits: short codes too). A sender
/// holding Liquid is rendered per message and not checked here.
fn sender_problem(sender: &str) -> Option<String> {
    if sender.contains("{{") || sender.contains("{%") {
        return None;
    }
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let numeric = phone::is_e164(sender) || (digits(sender) && (3..=15).contains(&sender.len()));
    let alphanumeric = (1..=11).contains(&sender.chars().count())
        && sender
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == ' ')
        && sender.chars().any(|c| c.is_ascii_alphabetic())
        && sender.trim() == sender;
    if numeric || alphanumeric {
        return None;
    }
    Some(format!(
        "field \"sender\": \"{sender}\" is not an SMS sender id: an alphanumeric sender is at \
         most 11 letters, digits or spaces with at least one letter (e.g. \"ACME\"), a numeric \
         one a phone number (e.g. +15550001) or a short code of digits"
    ))
}

/// `template` (a name that must exist), or `subject` and `body`.
pub fn email(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let template = cx.string(o, "template", false);
    let subject = cx.string(o, "subject", false);
    let body = cx.string(o, "body", false);
    match (&template, &subject, &body) {
        (Some(t), _, _) => cx.reference("template", t),
        (None, Some(_), Some(_)) => {}
        (None, None, _) => {
            cx.problem("missing required field \"template\" (or \"subject\" and \"body\")")
        }
        (None, _, None) => cx.problem("missing required field \"body\" (or \"template\")"),
    }
    NodeKind::SendEmail {
        template,
        subject,
        body,
        from_name: fixed_from_name(input, cx),
        from: cx.string(o, "from", false),
        to: recipients(o, "to", cx),
        cc: recipients(o, "cc", cx),
        bcc: recipients(o, "bcc", cx),
    }
}

/// A recipients field (model/recipients.rs), its problems listed.
fn recipients(o: &serde_json::Map<String, Value>, field: &str, cx: &mut Ctx) -> Vec<Recipient> {
    let mut problems = Vec::new();
    let out = crate::model::recipients::parse(field, o.get(field), &mut problems);
    problems.into_iter().for_each(|p| cx.problem(p));
    out
}

/// `from_name` beside a `from` (a verified sender) is fixed text: Liquid tags in it are a
/// problem. Without `from` it is not checked (the relay's default sender).
fn fixed_from_name(input: &Input, cx: &mut Ctx) -> Option<String> {
    let from_name = cx.string(input.fields, "from_name", false);
    let from = input.fields.get("from").is_some_and(|v| !v.is_null());
    if let Some(n) = from_name
        .as_deref()
        .filter(|n| from && (n.contains("{{") || n.contains("{%")))
    {
        cx.problem(format!(
            "field \"from_name\": \"{n}\" has Liquid tags: the name of a verified sender is fixed text (e.g. \"ACME Billing\")"
        ));
    }
    from_name
}

pub fn whatsapp(input: &Input, cx: &mut Ctx) -> NodeKind {
    let (text, template) = text_or_template(input, cx, "whatsapp");
    NodeKind::SendWhatsapp { text, template }
}

/// `text` (Liquid) or `template` (the name of a journey.templates row of `channel`, looked up
/// by validation as an "<channel> template" reference): one of them, not both.
fn text_or_template(
    input: &Input,
    cx: &mut Ctx,
    channel: &'static str,
) -> (String, Option<String>) {
    let o = input.fields;
    let given = |key: &str| o.get(key).is_some_and(|v| !v.is_null());
    match (given("text"), given("template")) {
        (true, true) => {
            cx.problem(format!(
                "\"text\" and \"template\" cannot both be given (the {channel} message is one \
                 or the other: drop one)"
            ));
            (String::new(), None)
        }
        (false, true) => {
            let template = cx.string(o, "template", true);
            if let Some(t) = &template {
                cx.reference(template_kind(channel), t);
            }
            (String::new(), template)
        }
        _ => match cx.string(o, "text", false) {
            Some(text) if !text.trim().is_empty() => (text, None),
            Some(_) => {
                cx.problem("field \"text\" must not be empty");
                (String::new(), None)
            }
            None if given("text") => (String::new(), None),
            None => {
                cx.problem(format!(
                    "missing required field \"text\" (or \"template\": a template of channel {channel})"
                ));
                (String::new(), None)
            }
        },
    }
}

/// The reference kind of a template of `channel` (validation checks the name exists with
/// that channel).
fn template_kind(channel: &str) -> &'static str {
    match channel {
        "sms" => "sms template",
        _ => "whatsapp template",
    }
}

pub fn notify_admin(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    NodeKind::NotifyAdmin {
        to: cx.string(o, "to", false),
        subject: cx.string(o, "subject", false),
        text: cx.string(o, "text", true).unwrap_or_default(),
    }
}

pub fn create_task(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    NodeKind::CreateTask {
        assignee: cx.string(o, "assignee", false),
        title: cx.string(o, "title", true).unwrap_or_default(),
        due: cx.interval(o, "due"),
    }
}

/// `url` (http or https), `method` (POST by default), `body` (JSON text or a JSON value).
pub fn webhook(input: &Input, cx: &mut Ctx) -> NodeKind {
    let o = input.fields;
    let url = cx.string(o, "url", true).unwrap_or_default();
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        cx.problem(format!("field \"url\": \"{url}\" is not an http(s) URL"));
    }
    let method = cx
        .string(o, "method", false)
        .unwrap_or_else(|| "POST".into())
        .to_ascii_uppercase();
    if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
        cx.problem(format!(
            "field \"method\": \"{method}\" is not GET, POST, PUT, PATCH or DELETE"
        ));
    }
    let body = match o.get("body") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => Some(b.clone()),
        Some(v @ (Value::Object(_) | Value::Array(_))) => Some(v.to_string()),
        Some(other) => {
            cx.problem(format!(
                "field \"body\" must be JSON text or a JSON object, not {other}"
            ));
            None
        }
    };
    NodeKind::Webhook { url, method, body }
}

/// The Liquid sources of a sending node, with the field each comes from.
pub fn templates(kind: &NodeKind) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    match kind {
        NodeKind::SendSms {
            text,
            template,
            sender,
            ..
        } => {
            if template.is_none() {
                out.push(("text", text.as_str()));
            }
            if let Some(s) = sender {
                out.push(("sender", s.as_str()));
            }
        }
        NodeKind::SendEmail {
            subject,
            body,
            to,
            cc,
            bcc,
            from,
            from_name,
            ..
        } => {
            for (field, v) in [
                ("subject", subject),
                ("body", body),
                ("from", from),
                ("from_name", from_name),
            ] {
                if let Some(v) = v {
                    out.push((field, v.as_str()));
                }
            }
            for (field, list) in [("to", to), ("cc", cc), ("bcc", bcc)] {
                for r in list {
                    if let Recipient::Template(t) = r {
                        out.push((field, t.as_str()));
                    }
                }
            }
        }
        NodeKind::SendWhatsapp {
            text,
            template: None,
        } => out.push(("text", text.as_str())),
        NodeKind::NotifyAdmin { to, subject, text } => {
            out.push(("text", text.as_str()));
            for (field, v) in [("to", to), ("subject", subject)] {
                if let Some(v) = v {
                    out.push((field, v.as_str()));
                }
            }
        }
        NodeKind::CreateTask {
            assignee, title, ..
        } => {
            out.push(("title", title.as_str()));
            if let Some(a) = assignee {
                out.push(("assignee", a.as_str()));
            }
        }
        NodeKind::Webhook { url, body, .. } => {
            out.push(("url", url.as_str()));
            if let Some(b) = body {
                out.push(("body", b.as_str()));
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod unit {
    use super::sender_problem;
    use crate::model::FlowDef;
    use serde_json::json;

    /// The problems and references of a flow of the one node `a`.
    fn parse(node: serde_json::Value) -> (Vec<String>, Vec<String>) {
        let (def, problems) = FlowDef::parse(&json!({
            "triggers": [{"type": "manual"}], "start": "a", "nodes": {"a": node}
        }));
        let refs = def
            .refs
            .iter()
            .map(|r| format!("{} {}", r.kind, r.name))
            .collect();
        (problems.into_iter().map(|p| p.problem).collect(), refs)
    }

    #[test]
    fn sms_and_whatsapp_take_text_or_a_template() {
        for (t, channel) in [("send_sms", "sms"), ("send_whatsapp", "whatsapp")] {
            let (p, refs) = parse(json!({"type": t, "template": "promo"}));
            assert_eq!(
                (p, refs),
                (vec![], vec![format!("{channel} template promo")])
            );
            let (p, refs) = parse(json!({"type": t, "text": "Hi"}));
            assert_eq!((p, refs), (vec![], vec![]));
            let (p, _) = parse(json!({"type": t, "text": "Hi", "template": "promo"}));
            assert_eq!(
                p,
                [format!("\"text\" and \"template\" cannot both be given (the {channel} message is one or the other: drop one)")]
            );
            let (p, _) = parse(json!({"type": t}));
            assert_eq!(
                p,
                [format!("missing required field \"text\" (or \"template\": a template of channel {channel})")]
            );
            assert_eq!(
                parse(json!({"type": t, "text": " "})).0,
                ["field \"text\" must not be empty"]
            );
            assert_eq!(
                parse(json!({"type": t, "text": 5})).0,
                ["field \"text\" must be a string, not 5"]
            );
        }
    }

    #[test]
    fn sms_sender_ids() {
        for ok in [
            "ACME",
            "Acme Shop",
            "ACME2026",
            "12345678901",
            "A",
            "+15550001",
            "+972501234567",
            "12345",
            "{{ contact.attributes.brand }}",
        ] {
            assert_eq!(sender_problem(ok), None, "{ok}");
        }
        for bad in [
            "Acme Corporation",
            "ACME!",
            "Ácme",
            " ACME",
            "",
            "12",
            "1234567890123456",
            "+1555",
            "+1 555 0001",
        ] {
            let p = sender_problem(bad).expect(bad);
            assert!(p.starts_with(&format!(
                "field \"sender\": \"{bad}\" is not an SMS sender id"
            )));
        }
    }
}
