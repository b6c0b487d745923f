//! SMS/WhatsApp through a gateway speaking the Twilio Messages API form, and webhook-node
//! calls signed per Standard Webhooks. Both carry the outbox idempotency key
//! (`Idempotency-Key`; webhooks also as `webhook-id`).
use crate::config::Endpoint;
use crate::db::Message;
use crate::outcome::{http_failure, Outcome};
use crate::sign::signature;
use base64::Engine;
use std::io::Read;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use ureq::http::Request;

/// An HTTP client whose every request ends within `timeout`; answers of any status are
/// returned (they are classified here, not raised).
pub fn agent(timeout: Duration, concurrency: usize) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_idle_connections_per_host(concurrency.max(1))
        .max_idle_connections(concurrency.max(1) * 4)
        .build()
        .into()
}

/// The most of an answer read.
const ANSWER_BYTES: u64 = 64 * 1024;

/// Runs a request: the answer's status, Retry-After and body (its first 64 KiB), or the
/// transport error as a transient outcome.
fn run(
    agent: &ureq::Agent,
    req: Request<Vec<u8>>,
) -> Result<(u16, Option<String>, String), Outcome> {
    let response = agent
        .run(req)
        .map_err(|e| Outcome::transient(format!("HTTP: {e}")))?;
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let mut body = String::new();
    let _ = response
        .into_body()
        .into_reader()
        .take(ANSWER_BYTES)
        .read_to_string(&mut body);
    Ok((status, retry, body))
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub struct Gateway {
    pub agent: ureq::Agent,
    pub endpoint: Endpoint,
    pub sms_from: Option<String>,
    pub whatsapp_from: Option<String>,
    /// where the gateway posts status callbacks (…/callbacks/twilio), if known
    pub status_callback: Option<String>,
}

fn whatsapp(address: &str) -> String {
    if address.starts_with("whatsapp:") {
        address.to_string()
    } else {
        format!("whatsapp:{address}")
    }
}

impl Gateway {
    /// The form fields of an SMS or WhatsApp row.
    pub fn form(&self, m: &Message) -> Result<Vec<(&'static str, String)>, String> {
        let to = m
            .recipient
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .ok_or("no recipient phone")?;
        let is_whatsapp = m.channel == "whatsapp";
        let from = m
            .sender
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| {
                if is_whatsapp {
                    self.whatsapp_from.clone()
                } else {
                    None
                }
            })
            .or_else(|| self.sms_from.clone())
            .ok_or("no sender: the message has none and the relay has no --sms-from")?;
        let (to, from) = if is_whatsapp {
            (whatsapp(to), whatsapp(&from))
        } else {
            (to.to_string(), from)
        };
        let mut form = vec![
            ("To", to),
            ("From", from),
            ("Body", m.body.clone().unwrap_or_default()),
        ];
        if let Some(cb) = &self.status_callback {
            form.push(("StatusCallback", cb.clone()));
        }
        Ok(form)
    }

    pub fn send(&self, m: &Message) -> Outcome {
        let form = match self.form(m) {
            Ok(f) => f,
            Err(e) => return Outcome::Permanent(e),
        };
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut req = Request::post(&self.endpoint.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("Idempotency-Key", &m.idempotency_key)
            .header("Accept", "application/json");
        if let Some(user) = &self.endpoint.user {
            let pair = format!(
                "{user}:{}",
                self.endpoint.password.as_deref().unwrap_or_default()
            );
            let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
            req = req.header("Authorization", format!("Basic {b64}"));
        }
        let req = match req.body(form_encode(&pairs).into_bytes()) {
            Ok(r) => r,
            Err(e) => return Outcome::Permanent(format!("the request cannot be built: {e}")),
        };
        match run(&self.agent, req) {
            Err(o) => o,
            Ok((200..=299, _, body)) => Outcome::Sent(sid(&body)),
            Ok((status, retry, body)) => http_failure(status, retry.as_deref(), &body),
        }
    }
}

/// The `sid` of a gateway's JSON answer.
pub fn sid(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v.get("sid")?.as_str().map(String::from)
}

pub struct Webhook {
    pub agent: ureq::Agent,
    pub key: Option<Vec<u8>>,
}

/// A webhook row's payload: {"method", "url", "body"}.
pub fn webhook_request(
    m: &Message,
    key: Option<&[u8]>,
    now: u64,
) -> Result<Request<Vec<u8>>, String> {
    let payload: serde_json::Value = serde_json::from_str(m.payload.as_deref().unwrap_or("null"))
        .map_err(|e| format!("payload is not JSON: {e}"))?;
    let url = payload
        .get("url")
        .and_then(|u| u.as_str())
        .ok_or("payload has no url")?;
    if !url.starts_with("http://") {
        return Err(format!(
            "webhook url \"{url}\" is not http:// (this build has no TLS)"
        ));
    }
    let method = payload
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or("POST");
    let body = match payload.get("body") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(b) => serde_json::to_vec(b).map_err(|e| e.to_string())?,
    };
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("webhook-id", &m.idempotency_key)
        .header("webhook-timestamp", now.to_string())
        .header("Idempotency-Key", &m.idempotency_key);
    if !body.is_empty() {
        req = req.header("Content-Type", "application/json");
    }
    if let Some(key) = key {
        req = req.header(
            "webhook-signature",
            signature(key, &m.idempotency_key, now, &body),
        );
    }
    req.body(body).map_err(|e| format!("webhook request: {e}"))
}

impl Webhook {
    pub fn send(&self, m: &Message) -> Outcome {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let req = match webhook_request(m, self.key.as_deref(), now) {
            Ok(r) => r,
            Err(e) => return Outcome::Permanent(e),
        };
        match run(&self.agent, req) {
            Err(o) => o,
            Ok((200..=299, _, _)) => Outcome::Sent(None),
            Ok((status, retry, body)) => http_failure(status, retry.as_deref(), &body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(channel: &str, sender: Option<&str>, payload: Option<&str>) -> Message {
        Message {
            id: 1,
            channel: channel.into(),
            recipient: Some("+15550001".into()),
            sender: sender.map(String::from),
            subject: None,
            body: Some("Hi Dana & co".into()),
            payload: payload.map(String::from),
            idempotency_key: "7:sms:1".into(),
            lease_token: "t".into(),
        }
    }

    fn gateway(callback: Option<&str>) -> Gateway {
        Gateway {
            agent: agent(Duration::from_secs(1), 1),
            endpoint: crate::config::endpoint("sms_url", "http://h/x", &[("http", 80)], None, None)
                .unwrap(),
            sms_from: Some("+15559999".into()),
            whatsapp_from: None,
            status_callback: callback.map(String::from),
        }
    }

    #[test]
    fn sms_and_whatsapp_forms() {
        let g = gateway(Some("http://relay/callbacks/twilio"));
        let f = g.form(&row("sms", Some("ACME"), None)).unwrap();
        assert_eq!(f[0], ("To", "+15550001".to_string()));
        assert_eq!(f[1], ("From", "ACME".to_string()));
        assert_eq!(
            f[3],
            (
                "StatusCallback",
                "http://relay/callbacks/twilio".to_string()
            )
        );
        let f = g.form(&row("whatsapp", None, None)).unwrap();
        assert_eq!(f[0].1, "whatsapp:+15550001");
        assert_eq!(
            f[1].1, "whatsapp:+15559999",
            "the SMS sender when no WhatsApp one"
        );
        let bare = Gateway {
            sms_from: None,
            ..gateway(None)
        };
        assert!(bare
            .form(&row("sms", None, None))
            .unwrap_err()
            .contains("--sms-from"));
        assert_eq!(
            form_encode(&[("Body", "Hi Dana & co ✓")]),
            "Body=Hi+Dana+%26+co+%E2%9C%93"
        );
    }

    #[test]
    fn sids() {
        assert_eq!(
            sid(r#"{"sid": "SM123", "status": "queued"}"#),
            Some("SM123".into())
        );
        assert_eq!(sid("not json"), None);
    }

    #[test]
    fn webhook_requests_are_signed() {
        let key = b"secret".to_vec();
        let m = row(
            "webhook",
            None,
            Some(r#"{"method": "PUT", "url": "http://h/hook", "body": {"a": 1}}"#),
        );
        let req = webhook_request(&m, Some(&key), 1700000000).unwrap();
        assert_eq!(req.method(), "PUT");
        assert_eq!(req.headers()["webhook-id"], "7:sms:1");
        assert_eq!(req.headers()["webhook-timestamp"], "1700000000");
        assert_eq!(
            req.headers()["webhook-signature"].to_str().unwrap(),
            signature(&key, "7:sms:1", 1700000000, br#"{"a":1}"#)
        );
        assert_eq!(req.body(), br#"{"a":1}"#);
        let unsigned = webhook_request(&m, None, 1).unwrap();
        assert!(unsigned.headers().get("webhook-signature").is_none());
        let no_body = row(
            "webhook",
            None,
            Some(r#"{"method": "GET", "url": "http://h/x", "body": null}"#),
        );
        assert!(webhook_request(&no_body, Some(&key), 1)
            .unwrap()
            .body()
            .is_empty());
        let bad = row("webhook", None, Some(r#"{"url": "https://h"}"#));
        assert!(webhook_request(&bad, None, 1)
            .unwrap_err()
            .contains("no TLS"));
    }
}
