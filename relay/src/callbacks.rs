//! The HTTP listener (--listen): delivery callbacks mapped onto journey.report, inbound SMS
//! onto journey.receive_sms, /metrics (Prometheus text) and /healthz.
//!   POST /callbacks/twilio           form MessageSid, MessageStatus (Twilio status callbacks)
//!   POST /callbacks/sendgrid         JSON array of {sg_message_id, event, sg_event_id}
//!   POST /callbacks/twilio/inbound   form From, Body, MessageSid (an SMS a contact sent)
//! Repeats and out-of-order events change nothing (journey.report is idempotent by event id
//! and moves a status only forward). A database error answers 500, so the provider retries.
use crate::config::{percent_decode, Config};
use crate::db;
use crate::metrics::Metrics;
use postgres::Client;
use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::thread;
use tiny_http::{Header, Method, Request, Response, Server};

/// One delivery event to record.
#[derive(Debug, PartialEq)]
pub struct Report {
    /// the provider message ids to try, in order (SendGrid's carries a suffix)
    pub ids: Vec<String>,
    pub status: &'static str,
    pub event_id: String,
}

/// The journey status of a Twilio MessageStatus; None for the ones not reported
/// (queued, accepted, sending, …).
pub fn twilio_status(s: &str) -> Option<&'static str> {
    Some(match s {
        "sent" => "sent",
        "delivered" => "delivered",
        "read" => "opened",
        "undelivered" => "undelivered",
        "failed" => "failed",
        _ => return None,
    })
}

/// The journey status of a SendGrid event; None for the ones not reported (deferred, …).
pub fn sendgrid_status(s: &str) -> Option<&'static str> {
    Some(match s {
        "processed" => "sent",
        "delivered" => "delivered",
        "open" => "opened",
        "click" => "clicked",
        "bounce" => "bounced",
        "dropped" => "failed",
        _ => return None,
    })
}

pub fn parse_form(body: &str) -> HashMap<String, String> {
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn twilio_report(form: &HashMap<String, String>) -> Result<Option<Report>, String> {
    let sid = form
        .get("MessageSid")
        .filter(|s| !s.is_empty())
        .ok_or("no MessageSid")?;
    let raw = form.get("MessageStatus").ok_or("no MessageStatus")?;
    // Twilio gives no event id: a status of a message happens once
    Ok(twilio_status(raw).map(|status| Report {
        ids: vec![sid.clone()],
        status,
        event_id: format!("twilio:{sid}:{raw}"),
    }))
}

pub fn sendgrid_reports(body: &str) -> Result<Vec<Report>, String> {
    let events: Vec<serde_json::Value> =
        serde_json::from_str(body).map_err(|e| format!("not a JSON array of events: {e}"))?;
    let mut out = vec![];
    for e in events {
        let field = |k: &str| e.get(k).and_then(|v| v.as_str());
        let (Some(id), Some(event)) = (field("sg_message_id"), field("event")) else {
            continue; // an event about no message we sent (e.g. a group unsubscribe)
        };
        let Some(status) = sendgrid_status(event) else {
            continue;
        };
        let mut ids = vec![id.to_string()];
        // "<X-Message-Id>.filter…": the id the SMTP answer gave is the part before
        if let Some((prefix, _)) = id.split_once(".filter") {
            ids.push(prefix.to_string());
        }
        let event_id =
            field("sg_event_id").map_or_else(|| format!("sendgrid:{id}:{event}"), String::from);
        out.push(Report {
            ids,
            status,
            event_id,
        });
    }
    Ok(out)
}

/// A body of one of the usual opt-out words (checked again by journey.receive_sms).
pub fn is_opt_out(body: &str) -> bool {
    let word: String = body
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"].contains(&word.as_str())
}

struct Listener {
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    db: Option<Client>,
}

const MAX_BODY: u64 = 1024 * 1024;

fn text(
    status: u16,
    body: impl Into<String>,
    content_type: &str,
) -> Response<std::io::Cursor<Vec<u8>>> {
    let header = Header::from_bytes("Content-Type", content_type).expect("a valid header");
    Response::from_data(body.into().into_bytes())
        .with_status_code(status)
        .with_header(header)
}

impl Listener {
    /// Runs `f` with the listener's connection (made on first use, remade after an error).
    fn with_db<T>(
        &mut self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error>,
    ) -> Result<T, String> {
        if self.db.as_ref().is_none_or(|c| c.is_closed()) {
            self.db = Some(
                db::connect(&self.config.database_url)
                    .map_err(|e| format!("database: {}", db::describe(&e)))?,
            );
        }
        let client = self.db.as_mut().expect("connected above");
        f(client).map_err(|e| {
            self.metrics.add("errors", "callback", 1);
            format!("database: {}", db::describe(&e))
        })
    }

    fn handle(&mut self, mut req: Request) {
        let url = req.url().to_string();
        let (path, query) = url.split_once('?').unwrap_or((&url, ""));
        let path = path.to_string();
        let response = match (req.method(), path.as_str()) {
            (Method::Get, "/healthz") => text(200, "ok\n", "text/plain"),
            (Method::Get, "/metrics") => {
                text(200, self.metrics.render(), "text/plain; version=0.0.4")
            }
            (
                Method::Post,
                "/callbacks/twilio" | "/callbacks/sendgrid" | "/callbacks/twilio/inbound",
            ) => {
                let token_ok = match &self.config.callback_token {
                    None => true,
                    Some(t) => parse_form(query).get("token") == Some(t),
                };
                let mut body = String::new();
                let read = req.as_reader().take(MAX_BODY).read_to_string(&mut body);
                if !token_ok {
                    text(403, "callback token missing or wrong\n", "text/plain")
                } else if read.is_err() {
                    text(400, "the body is not UTF-8 text\n", "text/plain")
                } else {
                    self.metrics.add("callbacks", kind(&path), 1);
                    self.callback(&path, &body)
                }
            }
            _ => text(404, "not found\n", "text/plain"),
        };
        let _ = req.respond(response);
    }

    fn callback(&mut self, path: &str, body: &str) -> Response<std::io::Cursor<Vec<u8>>> {
        let result = match path {
            "/callbacks/twilio" => self
                .twilio(body)
                .map(|n| (format!("{{\"recorded\": {n}}}"), "application/json")),
            "/callbacks/sendgrid" => self
                .sendgrid(body)
                .map(|n| (format!("{{\"recorded\": {n}}}"), "application/json")),
            _ => self
                .inbound(body)
                .map(|_| ("<Response/>".to_string(), "text/xml")),
        };
        match result {
            Ok((b, ct)) => text(200, b, ct),
            Err((status, e)) => {
                eprintln!("journey-relay: callback {path}: {e}");
                text(status, format!("{e}\n"), "text/plain")
            }
        }
    }

    fn record(&mut self, kind: &str, reports: Vec<Report>) -> Result<usize, (u16, String)> {
        let mut recorded = 0;
        for r in reports {
            for id in &r.ids {
                let done = self
                    .with_db(|c| db::report(c, id, r.status, &r.event_id))
                    .map_err(|e| (500, e))?;
                if done {
                    recorded += 1;
                    self.metrics.add("reports", kind, 1);
                    break;
                }
            }
        }
        Ok(recorded)
    }

    fn twilio(&mut self, body: &str) -> Result<usize, (u16, String)> {
        let report = twilio_report(&parse_form(body)).map_err(|e| (400, e))?;
        self.record("twilio", report.into_iter().collect())
    }

    fn sendgrid(&mut self, body: &str) -> Result<usize, (u16, String)> {
        let reports = sendgrid_reports(body).map_err(|e| (400, e))?;
        self.record("sendgrid", reports)
    }

    fn inbound(&mut self, body: &str) -> Result<String, (u16, String)> {
        let form = parse_form(body);
        let from = form
            .get("From")
            .filter(|f| !f.is_empty())
            .ok_or((400, "no From".to_string()))?;
        let from = from.strip_prefix("whatsapp:").unwrap_or(from).to_string();
        let text = form.get("Body").cloned().unwrap_or_default();
        let sid = form.get("MessageSid").cloned();
        let did = self
            .with_db(|c| db::receive_sms(c, &from, &text, sid.as_deref()))
            .map_err(|e| (500, e))?;
        self.metrics.add(
            "reports",
            if is_opt_out(&text) {
                "opt_out"
            } else {
                "inbound"
            },
            1,
        );
        Ok(did)
    }
}

fn kind(path: &str) -> &'static str {
    match path {
        "/callbacks/twilio" => "twilio",
        "/callbacks/sendgrid" => "sendgrid",
        _ => "inbound",
    }
}

/// Starts the listener's threads; an address that cannot be bound is an error.
pub fn serve(config: Arc<Config>, metrics: Arc<Metrics>) -> Result<(), String> {
    let Some(addr) = config.listen.clone() else {
        return Ok(());
    };
    let server =
        Arc::new(Server::http(&addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?);
    for i in 0..2 {
        let server = server.clone();
        let mut listener = Listener {
            config: config.clone(),
            metrics: metrics.clone(),
            db: None,
        };
        thread::Builder::new()
            .name(format!("listener-{i}"))
            .spawn(move || {
                for req in server.incoming_requests() {
                    listener.handle(req);
                }
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_status_callbacks() {
        let form = parse_form("MessageSid=SM1&MessageStatus=delivered&To=%2B15550001");
        assert_eq!(form["To"], "+15550001");
        assert_eq!(
            twilio_report(&form).unwrap(),
            Some(Report {
                ids: vec!["SM1".into()],
                status: "delivered",
                event_id: "twilio:SM1:delivered".into()
            })
        );
        let queued = parse_form("MessageSid=SM1&MessageStatus=queued");
        assert_eq!(twilio_report(&queued).unwrap(), None);
        assert!(twilio_report(&parse_form("MessageStatus=sent")).is_err());
        for (t, j) in [
            ("sent", "sent"),
            ("undelivered", "undelivered"),
            ("failed", "failed"),
            ("read", "opened"),
        ] {
            assert_eq!(twilio_status(t), Some(j));
        }
    }

    #[test]
    fn sendgrid_events() {
        let body = r#"[
            {"sg_message_id": "abc.filter0001.1", "event": "delivered", "sg_event_id": "e1"},
            {"sg_message_id": "m2", "event": "open"},
            {"sg_message_id": "m2", "event": "deferred", "sg_event_id": "e3"},
            {"event": "group_unsubscribe", "sg_event_id": "e4"},
            {"sg_message_id": "m3", "event": "bounce", "sg_event_id": "e5"}
        ]"#;
        let r = sendgrid_reports(body).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].ids, vec!["abc.filter0001.1", "abc"]);
        assert_eq!((r[0].status, r[0].event_id.as_str()), ("delivered", "e1"));
        assert_eq!(
            (r[1].status, r[1].event_id.as_str()),
            ("opened", "sendgrid:m2:open")
        );
        assert_eq!(r[2].status, "bounced");
        assert!(sendgrid_reports("{}").is_err());
        for (s, j) in [
            ("processed", "sent"),
            ("click", "clicked"),
            ("dropped", "failed"),
        ] {
            assert_eq!(sendgrid_status(s), Some(j));
        }
    }

    #[test]
    fn opt_out_words() {
        for w in [
            "STOP",
            " stop ",
            "Stop All",
            "unsubscribe",
            "CANCEL",
            "end",
            "Quit\n",
        ] {
            assert!(is_opt_out(w), "{w}");
        }
        for w in ["stop it", "hello", "", "STOPP"] {
            assert!(!is_opt_out(w), "{w}");
        }
    }
}
