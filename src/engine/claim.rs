//! The claim: the settings a batch runs with, and its due enrollments locked (`FOR UPDATE SKIP
//! LOCKED`) and read with their contact's columns in one statement. Columns are read by name
//! (resolved to ordinals once per batch) from rows deformed once each (`rows`); the contact's
//! columns become the Liquid `contact` and the enrollment's data the Liquid `event` with no
//! JSON in between.
use super::quota::Quotas;
use super::rows::{columns, Rows};
use super::{clock, prepared};
use crate::error::Result;
use crate::render::contact::{Contact, Stamp};
use crate::render::event::Event;
use crate::render::template;
use chrono::NaiveTime;
use chrono_tz::Tz;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;
use serde_json::Value;
use std::collections::HashMap;
use std::rc::Rc;

/// One due enrollment, locked by the claim until the batch commits.
pub struct Enrollment {
    pub id: i64,
    /// The row's ctid: the claim locked it, so it cannot move before write-back.
    pub tid: pg_sys::ItemPointerData,
    pub contact_id: i64,
    pub flow_id: i64,
    pub version: i32,
    /// The node to run next.
    pub node: String,
    /// How many nodes the enrollment has entered (message keys are `id:node:seq`).
    pub seq: i32,
    pub flow_name: String,
    /// Liquid variables: the contact row and the event (data) of this enrollment, and the flow
    /// (id, name, version) shared by the batch's enrollments of that version.
    pub contact: Contact,
    pub event: Event,
    pub flow: Rc<liquid::model::Value>,
    /// false when the contact row is gone (enrollments have no foreign key)
    pub contact_found: bool,
    /// The contact's time zone, else settings.time_zone.
    pub zone: Tz,
    /// What a check or wait_event node the enrollment is parked on waits for.
    pub waiting: Option<Value>,
    /// Transient failures in a row at `node` (reset when the enrollment moves on).
    pub attempts: i32,
    /// The enrollment that entered the flow: its parent for a fork's branch, else itself (the
    /// stats count a node reached once per root).
    pub root: i64,
    /// Why this enrollment's data (contact attributes, waiting state) cannot be read, if so:
    /// it fails alone.
    pub unreadable: Option<String>,
    /// The record type of a record trigger's enrollment (its column, which only the record
    /// trigger and a fork of its enrollments write): update_record acts on this record type's
    /// record only, never on one an enrollment's data names.
    pub record_type: Option<String>,
}

/// The settings a batch runs with (`journey.settings`).
pub struct Settings {
    pub quiet_start: NaiveTime,
    pub quiet_end: NaiveTime,
    pub unsubscribe_text: String,
    pub admin_email: Option<String>,
    pub max_attempts: i32,
    /// Longest rendered body (email, WhatsApp, admin e-mail, webhook, SMS text), in bytes.
    pub max_message_bytes: usize,
    /// Most segments one SMS may take.
    pub max_sms_segments: i32,
    /// sms_quota, email_quota, whatsapp_quota as read without a lock (None = unlimited); see
    /// `quota`.
    pub quotas: Quotas,
}

columns!(SettingsColumns {
    quiet_hours_start,
    quiet_hours_end,
    sms_unsubscribe_text,
    admin_email,
    max_attempts,
    max_message_bytes,
    max_sms_segments,
    sms_quota,
    email_quota,
    whatsapp_quota,
});

const SETTINGS: &str = "SELECT quiet_hours_start::text AS quiet_hours_start, \
        quiet_hours_end::text AS quiet_hours_end, sms_unsubscribe_text, admin_email, max_attempts, \
        max_message_bytes, max_sms_segments, sms_quota::bigint AS sms_quota, \
        email_quota::bigint AS email_quota, whatsapp_quota::bigint AS whatsapp_quota \
     FROM journey.settings";

columns!(
    /// The claim's columns: the enrollment's, then its contact's (`found` is NULL when the
    /// contact row is gone).
    DueColumns {
        id, contact_id, flow_id, version, node, data, seq, flow_name, found, zone, waiting, tid,
        attempts, root, external_id, email, phone, first_name, last_name, birthday, attributes,
        email_opt_out, sms_opt_out, created_at, updated_at, time_zone, record_type,
    }
);

/// Most bytes of text one enrollment may bring into the engine (its contact's text columns and
/// attributes, its data, its waiting state), measured in the claim's result before anything is
/// copied out of it: a larger one fails alone, its text never copied (Rust cannot recover from
/// a failed allocation: the worker would abort, and the whole cluster restart, on every batch).
pub const MAX_ENROLLMENT_BYTES: i64 = 1 << 20;
/// Most bytes of text one batch takes: the enrollments claimed past it are left due for the
/// next batch (at least one is always taken).
pub const MAX_BATCH_BYTES: i64 = 64 << 20;
// (a batch holds many enrollments of the largest size)
const _: () = assert!(MAX_BATCH_BYTES / MAX_ENROLLMENT_BYTES >= 32);

/// Lock the due enrollments first (LIMIT inside), then fetch each one's contact by key: OFFSET 0
/// keeps the lateral subquery a per-row index probe, where a join would let the planner
/// merge-join through the contacts table from its start. The contact's columns come typed (no
/// row_to_json: building and parsing JSON text cost more than the rest of the claim); empty
/// jsonb comes as NULL. A record trigger's enrollment reads its data through
/// `journey._record_data` (its links' rows as they are now). No outer ORDER BY: the batch's enrollments are all due, in any order.
macro_rules! due_query {
    ($filter:literal) => {
        concat!(
            "SELECT e.id, e.contact_id, e.flow_id, e.version, e.node, \
        CASE WHEN e.record_type IS NULL THEN nullif(e.data, '{}')::text \
             ELSE journey._record_data(e.record_type, e.data, e.record_old)::text END AS data, \
        e.seq, e.name AS flow_name, c.found, \
        coalesce(c.time_zone, s.time_zone) AS zone, e.waiting::text AS waiting, e.tid, e.attempts, e.root, \
        c.external_id, c.email, c.phone, c.first_name, c.last_name, c.birthday, c.attributes, \
        c.email_opt_out, c.sms_opt_out, c.created_at, c.updated_at, c.time_zone, e.record_type \
     FROM (SELECT e.id, e.contact_id, e.flow_id, e.version, e.node, e.data, e.seq, f.name, \
                  e.waiting, e.ctid AS tid, e.attempts, e.record_type, e.record_old, \
                  coalesce(e.parent_id, e.id) AS root \
             FROM journey.enrollments e \
             JOIN journey.flows f ON f.id = e.flow_id AND f.status = 'active' ",
            $filter,
            // a fork's branch only with its parent (FOR NO KEY UPDATE SKIP LOCKED): its
            // write-back locks the parent (trigger enrollments_branch_ended, _count_batch), so a
            // parent another session holds (a client, archive_flow, another worker's batch)
            // leaves the branch for a later batch instead of making this one wait or deadlock
            "AND (e.parent_id IS NULL OR EXISTS (SELECT FROM journey.enrollments p \
                 WHERE p.contact_id = e.contact_id AND p.id = e.parent_id FOR NO KEY UPDATE SKIP LOCKED)) \
            ORDER BY e.due_at \
            LIMIT $2 \
            FOR UPDATE OF e SKIP LOCKED) e \
     CROSS JOIN journey.settings s \
     LEFT JOIN LATERAL (SELECT true AS found, c.external_id, c.email, c.phone, c.first_name, c.last_name, \
                               c.birthday, \
                               nullif(c.attributes, '{}')::text AS attributes, c.email_opt_out, \
                               c.sms_opt_out, c.created_at, c.updated_at, c.time_zone \
                          FROM journey.contacts c WHERE c.id = e.contact_id OFFSET 0) c ON true"
        )
    };
}
const DUE: &str = due_query!("WHERE e.status = 'active' AND e.due_at <= $1 ");
/// The same for one enrollment ($3, of the contact $4) and its fork branches, those due by $1
/// (`journey.simulate`).
const DUE_ONE: &str = due_query!(
    "WHERE e.status = 'active' AND e.due_at <= $1 AND e.contact_id = $4 AND (e.id = $3 OR e.parent_id = $3) "
);

/// Reads the settings and claims up to `max` enrollments due at `at` (only the enrollment
/// `only`, of the contact, and its branches, if given).
pub fn claim(
    max: i32,
    at: TimestampWithTimeZone,
    only: Option<(i64, i64)>,
) -> Result<(Vec<Enrollment>, Settings)> {
    Spi::connect_mut(|client| {
        let settings = {
            let table = prepared::update(client, SETTINGS, &[])?;
            let mut row = Rows::of(&table);
            let c = SettingsColumns::of(&row)?;
            if !row.advance() {
                return Err(pgrx::spi::Error::InvalidPosition.into());
            }
            settings(&row, &c)
        };
        let table = match only {
            None => prepared::update(client, DUE, &[at.into(), (max as i64).into()])?,
            Some((id, contact)) => prepared::update(
                client,
                DUE_ONE,
                &[at.into(), (max as i64).into(), id.into(), contact.into()],
            )?,
        };
        let mut due = Vec::with_capacity(table.len());
        if table.is_empty() {
            return Ok((due, settings));
        }
        let mut row = Rows::of(&table);
        let c = DueColumns::of(&row)?;
        let mut flows = HashMap::new();
        let text = [
            c.data,
            c.waiting,
            c.external_id,
            c.email,
            c.first_name,
            c.last_name,
            c.attributes,
        ];
        let mut batch_bytes = 0i64;
        while row.advance() {
            let bytes = row.text_bytes(&text);
            // (the rows left behind stay locked until the batch ends, and due for the next)
            batch_bytes = batch_bytes.saturating_add(bytes.min(MAX_ENROLLMENT_BYTES + 1));
            if batch_bytes > MAX_BATCH_BYTES && !due.is_empty() {
                break;
            }
            due.push(enrollment(&row, &c, &mut flows, bytes));
        }
        Ok((due, settings))
    })
}

fn settings(row: &Rows, c: &SettingsColumns) -> Settings {
    let time = |t: Option<String>| {
        t.and_then(|t| NaiveTime::parse_from_str(&t, "%H:%M:%S").ok())
            .unwrap_or(NaiveTime::MIN)
    };
    Settings {
        quiet_start: time(row.get(c.quiet_hours_start)),
        quiet_end: time(row.get(c.quiet_hours_end)),
        unsubscribe_text: row.get(c.sms_unsubscribe_text).unwrap_or_default(),
        admin_email: row.get(c.admin_email),
        max_attempts: row.get(c.max_attempts).unwrap_or(5),
        max_message_bytes: row
            .get::<i32>(c.max_message_bytes)
            .unwrap_or(262_144)
            .max(0) as usize,
        max_sms_segments: row.get(c.max_sms_segments).unwrap_or(10),
        quotas: [
            row.get(c.sms_quota),
            row.get(c.email_quota),
            row.get(c.whatsapp_quota),
        ],
    }
}

/// The `flow` Liquid value of each (flow, version) of the batch.
type Flows = HashMap<(i64, i32), Rc<liquid::model::Value>>;

/// The claim's current row as an enrollment.
fn enrollment(row: &Rows, c: &DueColumns, flows: &mut Flows, bytes: i64) -> Enrollment {
    let contact_id: i64 = row.get(c.contact_id).unwrap_or_default();
    let flow_id: i64 = row.get(c.flow_id).unwrap_or_default();
    let version: i32 = row.get(c.version).unwrap_or_default();
    let flow_name: String = row.get(c.flow_name).unwrap_or_default();
    let mut unreadable = None;
    let fits = bytes <= MAX_ENROLLMENT_BYTES;
    if !fits {
        unreadable = Some(format!(
            "contact {contact_id}'s text and attributes with this enrollment's data take {bytes} bytes, \
             more than {MAX_ENROLLMENT_BYTES}: shorten them"
        ));
    }
    // (text is read only when it fits: an enrollment too large fails with none of it copied)
    let text = |i: usize| if fits { row.get::<String>(i) } else { None };
    let attributes = attributes(text(c.attributes), contact_id, &mut unreadable);
    let waiting = text(c.waiting).and_then(|t| {
        crate::model::json::parse(&t, "the enrollment's waiting state")
            .map_err(|why| unreadable = Some(why))
            .ok()
    });
    let stamp = |i| {
        Stamp::new(
            row.get::<TimestampWithTimeZone>(i)
                .and_then(clock::to_chrono),
        )
    };
    let contact = Contact {
        id: contact_id,
        external_id: text(c.external_id),
        email: text(c.email),
        phone: row.get(c.phone),
        first_name: text(c.first_name),
        last_name: text(c.last_name),
        birthday: row.get::<pgrx::datum::Date>(c.birthday).map(iso_date),
        attributes: liquid::model::Value::Object(attributes),
        email_opt_out: row.get(c.email_opt_out).unwrap_or(false),
        sms_opt_out: row.get(c.sms_opt_out).unwrap_or(false),
        created_at: stamp(c.created_at),
        updated_at: stamp(c.updated_at),
        time_zone: row.get(c.time_zone),
    };
    let flow = flows
        .entry((flow_id, version))
        .or_insert_with(|| flow_value(flow_id, &flow_name, version))
        .clone();
    Enrollment {
        id: row.get(c.id).unwrap_or_default(),
        tid: row.get(c.tid).unwrap_or_default(),
        contact_id,
        flow_id,
        version,
        node: row.get(c.node).unwrap_or_default(),
        seq: row.get(c.seq).unwrap_or_default(),
        flow_name,
        contact,
        event: Event::new(text(c.data)),
        flow,
        contact_found: row.get::<bool>(c.found).unwrap_or(false),
        zone: row
            .get::<String>(c.zone)
            .unwrap_or_else(|| "UTC".into())
            .parse()
            .unwrap_or(Tz::UTC),
        waiting,
        attempts: row.get(c.attempts).unwrap_or_default(),
        root: row.get(c.root).unwrap_or_default(),
        unreadable,
        record_type: row.get(c.record_type),
    }
}

/// The attributes' text parsed straight into Liquid values; attributes that cannot be read (a
/// number beyond f64, nesting past serde's limit) set `unreadable`: only this enrollment fails.
fn attributes(
    text: Option<String>,
    contact_id: i64,
    unreadable: &mut Option<String>,
) -> liquid::Object {
    let Some(text) = text else {
        return liquid::Object::new();
    };
    template::parse_object(&text).unwrap_or_else(|| {
        let what = format!("contact {contact_id}'s attributes");
        *unreadable = Some(
            crate::model::json::parse(&text, &what)
                .err()
                .unwrap_or_else(|| format!("{what} cannot be read")),
        );
        liquid::Object::new()
    })
}

/// The Liquid `flow` variable: `id`, `name`, `version`.
pub fn flow_value(id: i64, name: &str, version: i32) -> Rc<liquid::model::Value> {
    let mut flow = liquid::Object::new();
    flow.insert("id".into(), liquid::model::Value::scalar(id));
    flow.insert(
        "name".into(),
        liquid::model::Value::scalar(name.to_string()),
    );
    flow.insert(
        "version".into(),
        liquid::model::Value::scalar(i64::from(version)),
    );
    Rc::new(liquid::model::Value::Object(flow))
}

/// A date as `YYYY-MM-DD` whatever the session's DateStyle (Postgres's date range is wider
/// than the timestamp range `to_char` converts through: no date can fail the claim).
fn iso_date(d: pgrx::datum::Date) -> String {
    if d.is_infinity() {
        "infinity".into()
    } else if d.is_neg_infinity() {
        "-infinity".into()
    } else {
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    }
}
