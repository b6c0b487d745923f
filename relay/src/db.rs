//! The relay protocol's SQL (sql/relay.sql, sql/inbound.sql): claim, mark_sent, mark_failed,
//! report, receive_sms. Values always go as parameters.
use postgres::{Client, NoTls};
use std::time::Duration;

/// One claimed outbox row: what a sender needs.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: i64,
    pub channel: String,
    pub recipient: Option<String>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    /// the payload jsonb as text
    pub payload: Option<String>,
    pub idempotency_key: String,
    pub lease_token: String,
}

/// What to record for a claimed row.
#[derive(Debug, Clone)]
pub enum Mark {
    Sent(Option<String>),
    Failed { error: String, retry: bool },
}

/// A database error with the server's message and hint ("db error" alone says nothing).
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.hint() {
            Some(h) => format!("{} ({}); hint: {h}", d.message(), d.code().code()),
            None => format!("{} ({})", d.message(), d.code().code()),
        },
        None => e.to_string(),
    }
}

pub fn connect(url: &str) -> Result<Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    if config.get_application_name().is_none() {
        config.application_name("journey-relay");
    }
    config.connect_timeout(Duration::from_secs(10));
    config.connect(NoTls)
}

const CLAIM: &str = "SELECT id, channel, recipient, sender, subject, body, payload::text, idempotency_key, lease_token::text \
     FROM journey.claim($1::text[], $2::int, make_interval(secs => $3::float8))";

pub fn claim(
    db: &mut Client,
    channels: &[&str],
    max: usize,
    lease: Duration,
) -> Result<Vec<Message>, postgres::Error> {
    let channels: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
    let rows = db.query(CLAIM, &[&channels, &(max as i32), &lease.as_secs_f64()])?;
    Ok(rows
        .iter()
        .map(|r| Message {
            id: r.get(0),
            channel: r.get(1),
            recipient: r.get(2),
            sender: r.get(3),
            subject: r.get(4),
            body: r.get(5),
            payload: r.get(6),
            idempotency_key: r.get(7),
            lease_token: r.get(8),
        })
        .collect())
}

/// Records one result; true when it counted (the lease was still this relay's).
pub fn mark(
    db: &mut impl postgres::GenericClient,
    id: i64,
    token: &str,
    mark: &Mark,
) -> Result<bool, postgres::Error> {
    let row = match mark {
        Mark::Sent(provider_id) => db.query_one(
            "SELECT journey.mark_sent($1::bigint, $2::text, $3::text::uuid)",
            &[&id, provider_id, &token],
        )?,
        Mark::Failed { error, retry } => db.query_one(
            "SELECT journey.mark_failed($1::bigint, $2::text, $3::boolean, $4::text::uuid)",
            &[&id, error, retry, &token],
        )?,
    };
    Ok(row.get(0))
}

/// A delivery event; true when recorded (false: unknown message id or a repeated event).
pub fn report(
    db: &mut Client,
    provider_message_id: &str,
    status: &str,
    event_id: &str,
) -> Result<bool, postgres::Error> {
    let row = db.query_one(
        "SELECT journey.report($1::text, $2::text, $3::text)",
        &[&provider_message_id, &status, &event_id],
    )?;
    Ok(row.get(0))
}

/// An inbound SMS; what journey.receive_sms did.
pub fn receive_sms(
    db: &mut Client,
    from: &str,
    body: &str,
    event_id: Option<&str>,
) -> Result<String, postgres::Error> {
    let row = db.query_one(
        "SELECT journey.receive_sms($1::text, $2::text, $3::text)",
        &[&from, &body, &event_id],
    )?;
    Ok(row.get(0))
}
