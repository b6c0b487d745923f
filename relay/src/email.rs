//! E-mail (channels email and admin_email) over SMTP with lettre. `recipient` may list several
//! addresses separated by commas; `payload` may carry {"cc": [...], "bcc": [...]}. `sender` is
//! "Name <address>", an address, or NULL for the configured --from. Every message carries its
//! idempotency key twice: `X-Idempotency-Key` and a Message-ID derived from it, so a receiver
//! can drop a re-send after a crash.
use crate::config::Endpoint;
use crate::db::Message;
use crate::outcome::{smtp_failure, Outcome};
use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MessageBuilder};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{SmtpTransport, Transport};
use sha2::{Digest, Sha256};
use std::time::Duration;

pub struct Smtp {
    transport: SmtpTransport,
    from: Option<String>,
}

#[derive(Clone)]
struct IdempotencyKey(String);

impl Header for IdempotencyKey {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Idempotency-Key")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(IdempotencyKey(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

impl Smtp {
    pub fn new(endpoint: &Endpoint, from: Option<String>, timeout: Duration) -> Smtp {
        // lettre's timeout is per SMTP command; a message takes a handful of them
        let mut builder = SmtpTransport::builder_dangerous(endpoint.host.clone())
            .port(endpoint.port)
            .timeout(Some(timeout / 6));
        if let (Some(u), Some(p)) = (&endpoint.user, &endpoint.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Smtp {
            transport: builder.build(),
            from,
        }
    }

    pub fn send(&self, m: &Message) -> Outcome {
        let (email, message_id) = match compose(m, self.from.as_deref()) {
            Ok(x) => x,
            Err(e) => return Outcome::Permanent(e),
        };
        match self.transport.send(&email) {
            // "250 2.0.0 Ok: queued as <id>" (Postfix, SendGrid): that id is what the
            // provider's events name; otherwise the Message-ID
            Ok(response) => Outcome::Sent(Some(
                response.message().find_map(queue_id).unwrap_or(message_id),
            )),
            Err(e) => {
                let code = e.status().map(|c| {
                    let s = c.to_string();
                    s.parse::<u16>().unwrap_or(0)
                });
                smtp_failure(code, format!("SMTP: {e}"))
            }
        }
    }
}

/// The id in "Ok: queued as <id>".
fn queue_id(line: &str) -> Option<String> {
    let (_, id) = line.split_once("queued as ")?;
    let id = id.split_whitespace().next()?.trim_matches(['<', '>']);
    (!id.is_empty()).then(|| id.to_string())
}

/// A Message-ID from the idempotency key: the same key always gives the same id.
pub fn message_id(key: &str, from: &Mailbox) -> String {
    let hash = Sha256::digest(key.as_bytes());
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{hex}@{}", from.email.domain())
}

fn mailbox(field: &str, text: &str) -> Result<Mailbox, String> {
    text.trim()
        .parse::<Mailbox>()
        .map_err(|e| format!("{field} \"{}\" is not an e-mail address ({e})", text.trim()))
}

/// The From of a row: its sender ("Name <address>" or an address), a bare name with the
/// default sender's address, or the default sender.
fn sender(row: Option<&str>, default_from: Option<&str>) -> Result<Mailbox, String> {
    let default = || {
        default_from
            .ok_or("no sender: the message has none and the relay has no --from")
            .map_err(String::from)
            .and_then(|d| mailbox("--from", d))
    };
    match row.map(str::trim).filter(|s| !s.is_empty()) {
        None => default(),
        Some(name) if !name.contains('@') => {
            Ok(Mailbox::new(Some(name.to_string()), default()?.email))
        }
        Some(text) => mailbox("sender", text),
    }
}

/// The addresses of a payload's "cc" or "bcc" list.
fn listed(payload: &serde_json::Value, key: &str) -> Result<Vec<Mailbox>, String> {
    match payload.get(key) {
        None | Some(serde_json::Value::Null) => Ok(vec![]),
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(|v| match v.as_str() {
                Some(s) => mailbox(key, s),
                None => Err(format!("payload {key} holds {v}, not an address")),
            })
            .collect(),
        Some(other) => Err(format!("payload {key} is {other}, not a list of addresses")),
    }
}

/// The e-mail of an outbox row and its Message-ID (without angle brackets).
pub fn compose(
    m: &Message,
    default_from: Option<&str>,
) -> Result<(lettre::Message, String), String> {
    let from = sender(m.sender.as_deref(), default_from)?;
    let recipients = m.recipient.as_deref().unwrap_or_default();
    let to: Vec<Mailbox> = recipients
        .split(',')
        .filter(|r| !r.trim().is_empty())
        .map(|r| mailbox("recipient", r))
        .collect::<Result<_, _>>()?;
    let payload: serde_json::Value = match &m.payload {
        Some(p) => serde_json::from_str(p).map_err(|e| format!("payload is not JSON: {e}"))?,
        None => serde_json::Value::Null,
    };
    let (cc, bcc) = (listed(&payload, "cc")?, listed(&payload, "bcc")?);
    if to.is_empty() && cc.is_empty() && bcc.is_empty() {
        return Err("no recipient".into());
    }
    let id = message_id(&m.idempotency_key, &from);
    let mut b: MessageBuilder = lettre::Message::builder()
        .from(from)
        .subject(m.subject.clone().unwrap_or_default())
        .message_id(Some(format!("<{id}>")))
        .header(IdempotencyKey(m.idempotency_key.clone()));
    for a in to {
        b = b.to(a);
    }
    for a in cc {
        b = b.cc(a);
    }
    for a in bcc {
        b = b.bcc(a);
    }
    let email = b
        .body(m.body.clone().unwrap_or_default())
        .map_err(|e| format!("the e-mail cannot be built: {e}"))?;
    Ok((email, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(recipient: &str, sender: Option<&str>, payload: Option<&str>) -> Message {
        Message {
            id: 1,
            channel: "email".into(),
            recipient: Some(recipient.into()),
            sender: sender.map(String::from),
            subject: Some("Welcome aboard, Dana".into()),
            body: Some("Hello Dana, glad you joined.".into()),
            payload: payload.map(String::from),
            idempotency_key: "7:mail:1".into(),
            lease_token: "t".into(),
        }
    }

    fn text(m: &lettre::Message) -> String {
        String::from_utf8(m.formatted()).unwrap()
    }

    #[test]
    fn headers_from_the_row() {
        let (m, id) = compose(
            &row(
                "dana@example.com, ion@example.ro",
                Some("ACME <hi@acme.test>"),
                None,
            ),
            None,
        )
        .unwrap();
        let t = text(&m);
        assert!(t.contains("From: ACME <hi@acme.test>\r\n"), "{t}");
        assert!(
            t.contains("To: dana@example.com, ion@example.ro\r\n"),
            "{t}"
        );
        assert!(t.contains("Subject: Welcome aboard, Dana\r\n"), "{t}");
        assert!(t.contains("X-Idempotency-Key: 7:mail:1\r\n"), "{t}");
        assert!(t.contains(&format!("Message-ID: <{id}>\r\n")), "{t}");
        assert!(id.ends_with("@acme.test"));
        assert_eq!(m.envelope().to().len(), 2);
    }

    #[test]
    fn the_message_id_depends_on_the_key_only() {
        let a = compose(&row("x@y.z", Some("a@acme.test"), None), None)
            .unwrap()
            .1;
        let mut other = row("other@y.z", Some("a@acme.test"), None);
        other.body = Some("another body".into());
        assert_eq!(a, compose(&other, None).unwrap().1);
        other.idempotency_key = "7:mail:2".into();
        assert_ne!(a, compose(&other, None).unwrap().1);
    }

    #[test]
    fn default_sender_cc_and_bcc() {
        let r = row(
            "a@x.test",
            None,
            Some(r#"{"cc": ["b@x.test"], "bcc": ["c@x.test"]}"#),
        );
        let (m, _) = compose(&r, Some("Team <team@acme.test>")).unwrap();
        let t = text(&m);
        assert!(t.contains("From: Team <team@acme.test>\r\n"), "{t}");
        assert!(t.contains("Cc: b@x.test\r\n"), "{t}");
        let named = row("a@x.test", Some("ACME"), None);
        let t = text(&compose(&named, Some("Team <team@acme.test>")).unwrap().0);
        assert!(
            t.contains("From: ACME <team@acme.test>\r\n"),
            "a bare name gets the default address: {t}"
        );
        assert!(!t.contains("c@x.test"), "Bcc stays out of the headers: {t}");
        assert_eq!(m.envelope().to().len(), 3, "but is in the envelope");
    }

    #[test]
    fn what_cannot_be_sent_is_named() {
        let err = |r: Message, from: Option<&str>| compose(&r, from).unwrap_err();
        assert!(err(row("a@x.test", None, None), None).contains("no sender"));
        assert!(err(row("a@x.test", Some("Team"), None), None).contains("no sender"));
        assert!(err(row("not an address", Some("a@x.test"), None), None)
            .contains("recipient \"not an address\""));
        assert!(err(row("", Some("a@x.test"), None), None).contains("no recipient"));
        assert!(err(
            row("a@x.test", Some("a@x.test"), Some(r#"{"cc": "b"}"#)),
            None
        )
        .contains("payload cc"));
    }

    #[test]
    fn queue_ids() {
        assert_eq!(
            queue_id("2.0.0 Ok: queued as 4ABC12"),
            Some("4ABC12".into())
        );
        assert_eq!(
            queue_id("Ok: queued as <xyz.1@host>"),
            Some("xyz.1@host".into())
        );
        assert_eq!(queue_id("OK"), None);
    }
}
