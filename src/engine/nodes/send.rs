//! The nodes that write an outbox message: send_sms, send_email, send_whatsapp, notify_admin,
//! create_task and webhook. A send to a contact that opted out or has no address is
//! suppressed (nothing written, the enrollment goes on); a body past settings.max_message_bytes
//! or an SMS past settings.max_sms_segments fails the enrollment. SMS get `not_before` = the
//! end of the quiet hours in the contact's zone (unless the node ignores them).
use super::{recipients, render_error, Context, Outcome};
use crate::engine::batch::Message;
use crate::engine::claim::Enrollment;
use crate::engine::schedule;
use crate::error::{JourneyError, Result};
use crate::model::{Node, NodeKind};
use crate::render::sms;
use serde_json::{json, Value};

pub fn run<'d>(e: &Enrollment, node: &'d Node, cx: &mut Context) -> Result<Outcome<'d>> {
    match &node.kind {
        NodeKind::SendSms { template, .. } | NodeKind::SendWhatsapp { template, .. } => {
            let body = template_body(e, node, cx, template.as_deref())?;
            match node.kind {
                NodeKind::SendSms { .. } => sms(e, node, cx, body.as_deref()),
                _ => whatsapp(e, node, cx, body.as_deref()),
            }
        }
        NodeKind::SendEmail { .. } => email(e, node, cx),
        NodeKind::NotifyAdmin { .. } => admin(e, node, cx),
        NodeKind::CreateTask { .. } => task(e, node, cx),
        NodeKind::Webhook { .. } => webhook(e, node, cx),
        _ => unreachable!("{} is not a send node", node.type_name()),
    }
}

/// The contact's opt-out flag and address for a channel: `sms_opt_out` and `phone` (SMS and
/// WhatsApp), `email_opt_out` and `email`.
#[derive(Clone, Copy)]
enum Reach {
    Phone,
    Email,
}

/// Why a message is not sent to this contact (opted out, no address), if it is not.
fn suppression(e: &Enrollment, reach: Reach) -> Option<&'static str> {
    let c = &e.contact;
    let (opted_out, opt_out, address, no_address) = match reach {
        Reach::Phone => (c.sms_opt_out, "sms_opt_out", &c.phone, "no phone"),
        Reach::Email => (c.email_opt_out, "email_opt_out", &c.email, "no email"),
    };
    if opted_out {
        return Some(opt_out);
    }
    match address.as_deref() {
        Some(a) if !a.trim().is_empty() => None,
        _ => Some(no_address),
    }
}

/// send_sms; `template_body` is the body of its template, when it has one.
fn sms<'d>(
    e: &Enrollment,
    node: &'d Node,
    cx: &Context,
    template_body: Option<&str>,
) -> Result<Outcome<'d>> {
    let NodeKind::SendSms {
        text,
        template,
        sender,
        unsubscribe,
        ignore_quiet_hours,
    } = &node.kind
    else {
        unreachable!("not send_sms")
    };
    let settings = cx.settings;
    let mut body = render_text(e, node, cx, text, template.as_deref(), template_body)?;
    if *unsubscribe && !settings.unsubscribe_text.is_empty() {
        body.push('\n');
        body.push_str(&settings.unsubscribe_text);
    }
    let (encoding, segments) = sms::segments(&body);
    if segments > settings.max_sms_segments {
        return Err(render_error(
            e,
            node,
            "text",
            format!(
                "the message takes {segments} SMS segments, more than settings.max_sms_segments ({})",
                settings.max_sms_segments
            ),
        ));
    }
    if let Some(reason) = suppression(e, Reach::Phone) {
        return Ok(Outcome::Suppressed(reason));
    }
    let quiet_until =
        || schedule::quiet_until(cx.now, settings.quiet_start, settings.quiet_end, e.zone);
    Ok(Outcome::Sent(Box::new(Message {
        recipient: e.contact.phone.clone(),
        sender: cx.render_some(e, node, "sender", sender.as_deref())?,
        body: Some(body),
        sms_encoding: Some(encoding.as_str()),
        sms_segments: Some(segments),
        not_before: if *ignore_quiet_hours {
            None
        } else {
            quiet_until()
        },
        ..Message::new(e, &node.id, cx.seq, "sms")
    })))
}

fn email<'d>(e: &Enrollment, node: &'d Node, cx: &mut Context) -> Result<Outcome<'d>> {
    let NodeKind::SendEmail {
        template,
        subject,
        body,
        ..
    } = &node.kind
    else {
        unreachable!("not send_email")
    };
    let (subject, body) = match template {
        Some(name) => match cx.templates.get(name)? {
            // the template's subject, else the node's
            Some((s, b)) => (s.or_else(|| subject.clone()), b),
            None => {
                return Err(JourneyError::MissingTemplate {
                    flow: e.flow_name.clone(),
                    node: node.id.clone(),
                    template: name.clone(),
                })
            }
        },
        None => (subject.clone(), body.clone().unwrap_or_default()),
    };
    compose_email(e, node, cx, subject.as_deref(), &body)
}

/// send_email with its subject and body sources (the template's or the node's own).
fn compose_email<'d>(
    e: &Enrollment,
    node: &'d Node,
    cx: &mut Context,
    subject: Option<&str>,
    body: &str,
) -> Result<Outcome<'d>> {
    let NodeKind::SendEmail {
        from_name,
        from,
        to,
        cc,
        bcc,
        ..
    } = &node.kind
    else {
        unreachable!("not send_email")
    };
    let subject = cx.render_some(e, node, "subject", subject)?;
    let body = cx.render(e, node, "body", body)?;
    // no `to`: the contact, suppressed when it opted out or has no address (as always)
    let resolved = if to.is_empty() {
        if let Some(reason) = suppression(e, Reach::Email) {
            return Ok(Outcome::Suppressed(reason));
        }
        let mut r = recipients::resolve(e, node, cx, [("to", &[]), ("cc", cc), ("bcc", bcc)])?;
        r.to.insert(0, e.contact.email.clone().unwrap_or_default());
        r
    } else {
        recipients::resolve(e, node, cx, [("to", to), ("cc", cc), ("bcc", bcc)])?
    };
    if resolved.to.is_empty() {
        return Ok(Outcome::Suppressed("no email"));
    }
    let from = cx.render_some(e, node, "from", from.as_deref())?;
    // without a from_name, a verified sender's own name (seed 004: a sender has a name)
    let from_name = match (
        cx.render_some(e, node, "from_name", from_name.as_deref())?,
        &from,
    ) {
        (None, Some(address)) => cx.sender_names.get(&address.to_lowercase())?,
        (name, _) => name,
    };
    let mut copies = serde_json::Map::new();
    for (key, list) in [("cc", &resolved.cc), ("bcc", &resolved.bcc)] {
        if !list.is_empty() {
            copies.insert(key.into(), json!(list));
        }
    }
    let message = Box::new(Message {
        recipient: Some(resolved.to.join(", ")),
        sender: match (from_name, from) {
            (Some(n), Some(a)) => Some(format!("{n} <{a}>")),
            (n, a) => a.or(n),
        },
        subject,
        body: Some(body),
        payload: (!copies.is_empty()).then_some(Value::Object(copies)),
        ..Message::new(e, &node.id, cx.seq, "email")
    });
    Ok(match resolved.skipped.is_empty() {
        true => Outcome::Sent(message),
        false => Outcome::SentSkipping(message, resolved.skipped.join(", ")),
    })
}

/// send_whatsapp; `template_body` is the body of its template, when it has one.
fn whatsapp<'d>(
    e: &Enrollment,
    node: &'d Node,
    cx: &Context,
    template_body: Option<&str>,
) -> Result<Outcome<'d>> {
    let NodeKind::SendWhatsapp { text, template } = &node.kind else {
        unreachable!("not send_whatsapp")
    };
    let body = render_text(e, node, cx, text, template.as_deref(), template_body)?;
    if let Some(reason) = suppression(e, Reach::Phone) {
        return Ok(Outcome::Suppressed(reason));
    }
    Ok(Outcome::Sent(Box::new(Message {
        recipient: e.contact.phone.clone(),
        body: Some(body),
        ..Message::new(e, &node.id, cx.seq, "whatsapp")
    })))
}

/// The body of an SMS's or WhatsApp message's `template` (journey.templates; validation
/// checked its channel), None when the node has its own `text`.
fn template_body(
    e: &Enrollment,
    node: &Node,
    cx: &mut Context,
    template: Option<&str>,
) -> Result<Option<String>> {
    let Some(name) = template else {
        return Ok(None);
    };
    match cx.templates.get(name)? {
        Some((_, body)) => Ok(Some(body)),
        None => Err(JourneyError::MissingTemplate {
            flow: e.flow_name.clone(),
            node: node.id.clone(),
            template: name.to_string(),
        }),
    }
}

/// An SMS's or WhatsApp message's text rendered: the node's `text`, or its template's body
/// (whose render errors name the template).
fn render_text(
    e: &Enrollment,
    node: &Node,
    cx: &Context,
    text: &str,
    template: Option<&str>,
    template_body: Option<&str>,
) -> Result<String> {
    let (Some(name), Some(body)) = (template, template_body) else {
        return cx.render(e, node, "text", text);
    };
    cx.render(e, node, "text", body).map_err(|err| match err {
        JourneyError::Render {
            flow,
            node,
            message,
        } => JourneyError::Render {
            flow,
            node,
            message: format!("template \"{name}\", {message}"),
        },
        other => other,
    })
}

fn admin<'d>(e: &Enrollment, node: &'d Node, cx: &Context) -> Result<Outcome<'d>> {
    let NodeKind::NotifyAdmin { to, subject, text } = &node.kind else {
        unreachable!("not notify_admin")
    };
    let body = cx.render(e, node, "text", text)?;
    let recipient = match to {
        Some(to) => Some(cx.render(e, node, "to", to)?),
        None => cx.settings.admin_email.clone(),
    };
    let Some(recipient) = recipient.filter(|r| !r.trim().is_empty()) else {
        return Ok(Outcome::Suppressed("no admin_email"));
    };
    Ok(Outcome::Sent(Box::new(Message {
        recipient: Some(recipient),
        subject: cx.render_some(e, node, "subject", subject.as_deref())?,
        body: Some(body),
        ..Message::new(e, &node.id, cx.seq, "admin_email")
    })))
}

fn task<'d>(e: &Enrollment, node: &'d Node, cx: &Context) -> Result<Outcome<'d>> {
    let NodeKind::CreateTask {
        assignee,
        title,
        due,
    } = &node.kind
    else {
        unreachable!("not create_task")
    };
    let title = cx.render(e, node, "title", title)?;
    let assignee = cx.render_some(e, node, "assignee", assignee.as_deref())?;
    let due_at = due
        .map(|d| {
            schedule::add_interval(cx.now, d, e.zone)
                .ok_or_else(|| super::out_of_range(e, &node.id))
        })
        .transpose()?;
    Ok(Outcome::Created(Box::new(Message {
        recipient: assignee.clone(),
        subject: Some(title.clone()),
        payload: Some(json!({
            "assignee": assignee,
            "title": title,
            "due": due_at.map(|d| d.to_rfc3339()),
            "contact_id": e.contact_id,
        })),
        ..Message::new(e, &node.id, cx.seq, "task")
    })))
}

fn webhook<'d>(e: &Enrollment, node: &'d Node, cx: &Context) -> Result<Outcome<'d>> {
    let NodeKind::Webhook { url, method, body } = &node.kind else {
        unreachable!("not webhook")
    };
    let url = cx.render(e, node, "url", url)?;
    let body = match body {
        Some(b) => {
            let text = cx.render(e, node, "body", b)?;
            Some(
                serde_json::from_str::<Value>(&text).map_err(|err| JourneyError::Render {
                    flow: e.flow_name.clone(),
                    node: node.id.clone(),
                    message: format!("body is not JSON after rendering: {err}"),
                })?,
            )
        }
        None => None,
    };
    Ok(Outcome::Queued(Box::new(Message {
        recipient: Some(url.clone()),
        payload: Some(json!({"method": method, "url": url, "body": body})),
        ..Message::new(e, &node.id, cx.seq, "webhook")
    })))
}

#[cfg(test)]
mod unit {
    //! (send_email is tested through `compose_email`, send_sms and send_whatsapp with a
    //! template through the body given to them: reading a template needs the database)
    use super::*;
    use crate::engine::claim::Settings;
    use crate::engine::nodes::testing::{enrollment, node, noon, settings, with_context};
    use chrono::{DateTime, Utc};
    use serde_json::json;

    /// Runs a send node (send_email without a template) outside Postgres.
    fn send(e: &Enrollment, json: Value) -> Result<(String, Option<Message>)> {
        send_with(&settings(), noon(), e, json)
    }

    fn send_with(
        s: &Settings,
        now: DateTime<Utc>,
        e: &Enrollment,
        json: Value,
    ) -> Result<(String, Option<Message>)> {
        send_template(s, now, e, json, None)
    }

    /// [`send_with`], an SMS's or WhatsApp message's template having `template_body`.
    fn send_template(
        s: &Settings,
        now: DateTime<Utc>,
        e: &Enrollment,
        json: Value,
        template_body: Option<&str>,
    ) -> Result<(String, Option<Message>)> {
        let node = node("n", json);
        with_context(s, now, |cx| {
            let outcome = match &node.kind {
                NodeKind::SendSms { .. } => sms(e, &node, cx, template_body),
                NodeKind::SendEmail { subject, body, .. } => {
                    let body = body.as_deref().unwrap_or_default();
                    compose_email(e, &node, cx, subject.as_deref(), body)
                }
                NodeKind::SendWhatsapp { .. } => whatsapp(e, &node, cx, template_body),
                NodeKind::NotifyAdmin { .. } => admin(e, &node, cx),
                NodeKind::CreateTask { .. } => task(e, &node, cx),
                NodeKind::Webhook { .. } => webhook(e, &node, cx),
                _ => panic!("not a send node"),
            }?;
            Ok((outcome.text().into_owned(), outcome.into_route(None).0))
        })
    }

    #[test]
    fn sms_renders_appends_unsubscribe_and_waits_for_quiet_hours() {
        let sms = json!({"type": "send_sms", "text": "Hi {{ contact.first_name }}",
                         "sender": "ACME", "unsubscribe": true});
        let (text, m) = send(&enrollment("n"), sms.clone()).unwrap();
        let m = m.unwrap();
        assert_eq!(text, "sent");
        assert_eq!(m.key, "1:n:1");
        assert_eq!(m.channel, "sms");
        assert_eq!(m.body.as_deref(), Some("Hi Dana\nSTOP to end"));
        assert_eq!(m.sender.as_deref(), Some("ACME"));
        assert_eq!(m.sms_segments, Some(1));
        assert_eq!(m.not_before, None, "noon is outside 21:00-08:00");
        let late = noon() + chrono::Duration::hours(10);
        let m = send_with(&settings(), late, &enrollment("n"), sms.clone())
            .unwrap()
            .1;
        assert_eq!(
            m.unwrap().not_before.map(|t| t.to_rfc3339()),
            Some("2026-06-02T08:00:00+00:00".into())
        );
        let mut ignore = sms;
        ignore["ignore_quiet_hours"] = json!(true);
        let m = send_with(&settings(), late, &enrollment("n"), ignore)
            .unwrap()
            .1;
        assert_eq!(m.unwrap().not_before, None);
    }

    #[test]
    fn sms_and_whatsapp_templates_render_their_body() {
        let body = Some("Hi {{ contact.attributes.nick | default: 'there' }}");
        for t in ["send_sms", "send_whatsapp"] {
            let n = json!({"type": t, "template": "promo"});
            let m = send_template(&settings(), noon(), &enrollment("n"), n.clone(), body)
                .unwrap()
                .1
                .unwrap();
            assert_eq!(m.body.as_deref(), Some("Hi there"), "{t}");
            let err = send_template(
                &settings(),
                noon(),
                &enrollment("n"),
                n,
                Some("{{ contact.nick }}"),
            )
            .unwrap_err()
            .to_string();
            assert!(
                err.starts_with("flow \"welcome\", node \"n\": template \"promo\", text: "),
                "{err}"
            );
        }
    }

    #[test]
    fn sends_are_suppressed_without_consent_or_address() {
        let mut e = enrollment("n");
        e.contact.sms_opt_out = true;
        e.contact.email = Some(" ".into());
        let sms = json!({"type": "send_sms", "text": "Hi"});
        let email = json!({"type": "send_email", "subject": "s", "body": "b"});
        let whatsapp = json!({"type": "send_whatsapp", "text": "Hi"});
        assert_eq!(send(&e, sms.clone()).unwrap().0, "suppressed: sms_opt_out");
        assert_eq!(send(&e, whatsapp).unwrap().0, "suppressed: sms_opt_out");
        assert_eq!(send(&e, email.clone()).unwrap().0, "suppressed: no email");
        // a message to another address is sent
        let mut to = email;
        to["to"] = json!("ops@example.com");
        assert_eq!(send(&e, to).unwrap().0, "sent");
        e.contact.sms_opt_out = false;
        e.contact.phone = None;
        assert_eq!(send(&e, sms).unwrap().0, "suppressed: no phone");
    }

    #[test]
    fn too_many_segments_fail_even_when_suppressed() {
        let mut e = enrollment("n");
        e.contact.sms_opt_out = true;
        let long = json!({"type": "send_sms", "text": "x".repeat(400)});
        let err = send(&e, long).err().unwrap().to_string();
        assert!(err.contains("settings.max_sms_segments (2)"), "{err}");
    }

    #[test]
    fn email_admin_task_and_webhook_write_their_rows() {
        let e = enrollment("n");
        let email = json!({"type": "send_email", "subject": "Hi {{ contact.first_name }}",
                           "body": "b", "from_name": "ACME", "from": "a@example.com"});
        let m = send(&e, email).unwrap().1.unwrap();
        assert_eq!(m.sender.as_deref(), Some("ACME <a@example.com>"));
        assert_eq!(m.subject.as_deref(), Some("Hi Dana"));
        // without a from_name, the verified sender's own name (the test context knows one)
        let named =
            json!({"type": "send_email", "subject": "s", "body": "b", "from": "News@example.com"});
        let m = send(&e, named).unwrap().1.unwrap();
        assert_eq!(m.sender.as_deref(), Some("ACME News <News@example.com>"));
        let unnamed =
            json!({"type": "send_email", "subject": "s", "body": "b", "from": "b@example.com"});
        let m = send(&e, unnamed).unwrap().1.unwrap();
        assert_eq!(m.sender.as_deref(), Some("b@example.com"));
        assert_eq!(m.recipient.as_deref(), Some("dana@example.com"));
        let admin = json!({"type": "notify_admin", "text": "new lead"});
        let m = send(&e, admin).unwrap().1.unwrap();
        assert_eq!(
            (m.channel, m.recipient.as_deref()),
            ("admin_email", Some("admin@example.com"))
        );
        let task = json!({"type": "create_task", "title": "Call {{ contact.first_name }}",
                          "assignee": "sam", "due": "1 day"});
        let (text, m) = send(&e, task).unwrap();
        assert_eq!(text, "created");
        assert_eq!(
            m.unwrap().payload,
            Some(json!({"assignee": "sam", "title": "Call Dana",
                        "due": "2026-06-02T12:00:00+00:00", "contact_id": 7}))
        );
        let hook = json!({"type": "webhook", "url": "https://x.test/{{ event.amount }}",
                          "body": "{\"n\": {{ event.amount }}}"});
        let (text, m) = send(&e, hook).unwrap();
        assert_eq!(text, "queued");
        assert_eq!(
            m.unwrap().payload,
            Some(json!({"method": "POST", "url": "https://x.test/12", "body": {"n": 12}}))
        );
        let bad = json!({"type": "webhook", "url": "u", "body": "{{ event.amount }} x"});
        let err = send(&e, bad).err().unwrap().to_string();
        assert!(err.contains("body is not JSON after rendering"), "{err}");
    }

    #[test]
    fn recipients_from_the_record_skipped_with_their_reason() {
        let mut e = enrollment("n");
        e.event = crate::render::event::Event::new(Some(
            r#"{"record": {"billing": "ap@x.test", "cc": "", "account": {"owner": "out@x.test"}}}"#
                .into(),
        ));
        let email = json!({"type": "send_email", "subject": "s", "body": "b",
                           "to": ["contact", "record.billing", "record.account.owner", "DANA@example.com"],
                           "cc": ["record.cc", "{{ contact.first_name }}@x.test"], "bcc": ["audit@x.test"]});
        let (text, m) = send(&e, email).unwrap();
        assert_eq!(
            text,
            "sent, skipped: record.cc (empty), out@x.test (email_opt_out)"
        );
        let m = m.unwrap();
        assert_eq!(m.recipient.as_deref(), Some("dana@example.com, ap@x.test"));
        assert_eq!(
            m.payload,
            Some(json!({"cc": ["Dana@x.test"], "bcc": ["audit@x.test"]}))
        );
        // the contact opted out and nobody else is left: suppressed
        e.contact.email_opt_out = true;
        let only = json!({"type": "send_email", "subject": "s", "body": "b", "to": ["contact", "record.cc"]});
        assert_eq!(send(&e, only).unwrap().0, "suppressed: no email");
    }

    #[test]
    fn admin_without_address_is_suppressed() {
        let mut s = settings();
        s.admin_email = None;
        let admin = json!({"type": "notify_admin", "text": "t"});
        let text = send_with(&s, noon(), &enrollment("n"), admin).unwrap().0;
        assert_eq!(text, "suppressed: no admin_email");
    }
}
