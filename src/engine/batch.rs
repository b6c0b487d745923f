//! One batch's results and their write-back. The nodes' results are collected as typed rows
//! (steps, outbox messages, enrollment updates) and written back set-based: one INSERT into the
//! outbox, one INSERT into steps and one UPDATE of the enrollments (by ctid) per batch, each
//! taking one array per column, all prepared once per backend (`prepared`), and one call that
//! counts them for the stats (`journey._count_batch`). The batch also
//! holds what its nodes share: the templates read by name, and the lock_timeout a node
//! shortened.
use super::claim::Enrollment;
use super::quota::{self, Quota};
use super::{clock, prepared, store, subxact};
use crate::error::{JourneyError, Result};
use chrono::{DateTime, Utc};
use pgrx::datum::{DatumWithOid, IntoDatum, TimestampWithTimeZone};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;

/// Longest wait for a row lock during a batch (update_contact); see [`LockTimeout`].
const LOCK_TIMEOUT: &str = "100ms";

/// One `journey.steps` row: `enrollment` entered `node` with `outcome` (the batch's time).
pub struct Step {
    pub enrollment_id: i64,
    /// The enrollment that entered the flow (a fork's branch: its parent).
    pub root_id: i64,
    pub contact_id: i64,
    pub flow_id: i64,
    pub node: String,
    pub outcome: Cow<'static, str>,
}

impl Step {
    pub fn new(e: &Enrollment, node: &str, outcome: Cow<'static, str>) -> Step {
        Step {
            enrollment_id: e.id,
            root_id: e.root,
            contact_id: e.contact_id,
            flow_id: e.flow_id,
            node: node.to_string(),
            outcome,
        }
    }
}

/// One `journey.outbox` row.
#[derive(Default, Debug)]
pub struct Message {
    /// `enrollment:node:seq`
    pub key: String,
    pub channel: &'static str,
    pub flow_id: i64,
    pub enrollment_id: i64,
    pub node: String,
    pub contact_id: i64,
    pub recipient: Option<String>,
    pub sender: Option<String>,
    pub subject: Option<String>,
    pub body: Option<String>,
    pub sms_encoding: Option<&'static str>,
    pub sms_segments: Option<i32>,
    pub payload: Option<Value>,
    pub not_before: Option<DateTime<Utc>>,
}

impl Message {
    /// A message of `e` from `node`, entered as its `seq`th node, on `channel`; the other
    /// fields are set with `..` by the node.
    pub fn new(e: &Enrollment, node: &str, seq: i32, channel: &'static str) -> Message {
        Message {
            key: format!("{}:{}:{}", e.id, node, seq),
            channel,
            flow_id: e.flow_id,
            enrollment_id: e.id,
            node: node.to_string(),
            contact_id: e.contact_id,
            ..Message::default()
        }
    }
}

/// An enrollment's new state.
pub struct Update {
    pub id: i64,
    pub tid: pg_sys::ItemPointerData,
    pub contact_id: i64,
    pub status: &'static str,
    pub node: String,
    pub due_at: Option<DateTime<Utc>>,
    pub seq: i32,
    pub last_error: Option<String>,
    pub waiting: Option<Value>,
    pub attempts: i32,
}

impl Update {
    /// The enrollment's new state: `status` at `node` (due at `due_at`), no error, nothing
    /// awaited, no failed attempts; the other fields are set with `..` where they differ.
    pub fn of(
        e: &Enrollment,
        status: &'static str,
        node: String,
        due_at: Option<DateTime<Utc>>,
        seq: i32,
    ) -> Update {
        Update {
            id: e.id,
            tid: e.tid,
            contact_id: e.contact_id,
            status,
            node,
            due_at,
            seq,
            last_error: None,
            waiting: None,
            attempts: 0,
        }
    }
}

/// A branch a fork starts (engine/nodes/fork.rs): a new enrollment of the parent of `source`
/// (or of `source` itself, when it entered the flow), at `node`, due at `due_at`, with the
/// flow, version, contact and data of `source`.
pub struct Spawn {
    /// The enrollment at the fork.
    pub source: i64,
    pub contact_id: i64,
    /// Its place in the fork's `next` (from 0).
    pub branch: i32,
    pub node: String,
    pub due_at: DateTime<Utc>,
    /// The seq of `source` after the fork.
    pub seq: i32,
}

/// A template's subject (e-mails may have none) and body.
pub type Template = (Option<String>, String);

/// What a batch's nodes read by name, each read once per batch by `lookup`.
pub struct ReadOnce<V> {
    values: HashMap<String, V>,
    lookup: fn(&str) -> Result<V>,
}

impl<V: Clone> ReadOnce<V> {
    pub fn new(lookup: fn(&str) -> Result<V>) -> Self {
        ReadOnce {
            values: HashMap::new(),
            lookup,
        }
    }

    pub fn get(&mut self, name: &str) -> Result<V> {
        if let Some(v) = self.values.get(name) {
            return Ok(v.clone());
        }
        let found = (self.lookup)(name)?;
        self.values.insert(name.to_string(), found.clone());
        Ok(found)
    }
}

/// The templates a batch's nodes read by name (None: no such template).
pub type Templates = ReadOnce<Option<Template>>;

impl Default for Templates {
    fn default() -> Self {
        ReadOnce::new(store::template)
    }
}

/// The names of the verified senders a batch's e-mails name in `from` without a `from_name`
/// (seed 004: a sender has a name), by lower-case address (None: no verified sender with a name
/// there).
pub type SenderNames = ReadOnce<Option<String>>;

impl Default for SenderNames {
    fn default() -> Self {
        ReadOnce::new(store::sender_name)
    }
}

/// The session's lock_timeout while a batch shortens it. Any row lock a node needs
/// (update_contact) is waited for at most LOCK_TIMEOUT for the rest of the batch: a client
/// holding the contact gets it back quickly and never deadlocks with the batch; the enrollment
/// is retried with backoff. Set at the first such node (a batch of sends pays nothing),
/// restored before the write-back.
#[derive(Default)]
pub struct LockTimeout {
    /// The session's value, saved when the batch first shortened it.
    saved: Option<String>,
}

impl LockTimeout {
    pub fn hold_briefly(&mut self) -> Result<()> {
        if self.saved.is_none() {
            // (the target list is evaluated in order: the old value is read before it is set)
            let (previous, _) = Spi::get_two_with_args::<String, String>(
                "SELECT current_setting('lock_timeout'), set_config('lock_timeout', $1, true)",
                &[LOCK_TIMEOUT.into()],
            )?;
            self.saved = Some(previous.unwrap_or_else(|| "0".into()));
        }
        Ok(())
    }

    /// Restores the session's lock_timeout if a node shortened it.
    pub fn restore(&mut self) -> Result<()> {
        if let Some(previous) = self.saved.take() {
            Spi::run_with_args(
                "SELECT set_config('lock_timeout', $1, true)",
                &[previous.into()],
            )?;
        }
        Ok(())
    }
}

/// What a batch writes back, and what its nodes share.
#[derive(Default)]
pub struct Batch {
    pub steps: Vec<Step>,
    pub messages: Vec<Message>,
    pub updates: Vec<Update>,
    /// Branches forks started, inserted before the updates (see [`write_back`]).
    pub spawns: Vec<Spawn>,
    pub templates: Templates,
    pub sender_names: SenderNames,
    pub lock_timeout: LockTimeout,
    /// The credit the batch takes from the quotas, and the sends they refused.
    pub quota: Quota,
}

impl Batch {
    /// Restores the lock_timeout and writes the batch back (see [`write_back`]), then its
    /// quota (see [`quota::write_back`]).
    pub fn finish(&mut self, at: TimestampWithTimeZone) -> Result<()> {
        self.lock_timeout.restore()?;
        write_back(self, at)?;
        quota::write_back(&self.quota)
    }
}

/// One statement argument: the array of `f` over the batch's `rows` (a column). Strings are
/// borrowed and copied once, into the array.
fn column<'a, T, U>(rows: &'a [T], f: impl Fn(&'a T) -> U) -> DatumWithOid<'a>
where
    U: IntoDatum + 'a,
    Vec<U>: IntoDatum,
{
    rows.iter().map(f).collect::<Vec<_>>().into()
}

/// Writes the batch back: each statement takes one array per column and unnests them in its
/// select list (set-returning functions there run in lockstep, row by row; `unnest` in FROM
/// would first copy all rows into a tuplestore).
pub fn write_back(batch: &Batch, at: TimestampWithTimeZone) -> Result<()> {
    Spi::connect_mut(|client| -> Result<()> {
        // first: the counters probe the history as it was before this batch's steps
        if !batch.steps.is_empty() || !batch.messages.is_empty() {
            count(client, batch)?;
        }
        if !batch.messages.is_empty() {
            insert_messages(client, &batch.messages)?;
        }
        if !batch.steps.is_empty() {
            let s = &batch.steps;
            prepared::update(
                client,
                INSERT_STEPS,
                &[
                    column(s, |x| x.enrollment_id),
                    column(s, |x| x.contact_id),
                    column(s, |x| x.flow_id),
                    column(s, |x| x.node.as_str()),
                    column(s, |x| x.outcome.as_ref()),
                    at.into(),
                ],
            )?;
        }
        // before the updates: a branch that ends in this batch finds its new siblings active
        // (the trigger on enrollments ends the parent when none is left)
        if !batch.spawns.is_empty() {
            insert_spawns(client, &batch.spawns)?;
        }
        if !batch.updates.is_empty() {
            update_enrollments(client, &batch.updates)?;
        }
        Ok(())
    })
}

/// The batch's counter deltas (sql/counters.sql, `journey._count_batch`): nodes reached (each
/// enrollment once per node), goals, split branches, suppressed sends, messages written. One
/// statement whatever the batch's size; the enrollments' own counts (status, waiting) come from
/// their UPDATE's trigger.
const COUNT_BATCH: &str = "SELECT journey._count_batch($1, $2, $3, $4, $5, $6, $7, $8)";

fn count(client: &mut pgrx::spi::SpiClient<'_>, batch: &Batch) -> Result<()> {
    let (s, m) = (&batch.steps, &batch.messages);
    prepared::update(
        client,
        COUNT_BATCH,
        &[
            column(s, |x| x.enrollment_id),
            column(s, |x| x.contact_id),
            column(s, |x| x.flow_id),
            column(s, |x| x.node.as_str()),
            column(s, |x| x.outcome.as_ref()),
            column(m, |x| x.flow_id),
            column(m, |x| x.node.as_str()),
            column(s, |x| x.root_id),
        ],
    )?;
    Ok(())
}

/// The branches, each a copy of its source's flow, version, contact and data (with a record
/// trigger's record: type, key and old columns); the parent is the source's parent, else the source.
/// Counted as they are inserted (`journey._count_entered`: a branch waits at its node).
const INSERT_SPAWNS: &str =
    "WITH ins AS (INSERT INTO journey.enrollments (flow_id, version, contact_id, parent_id, branch, node, due_at, data, seq, \
                                      record_type, record_key, record_old) \
     SELECT p.flow_id, p.version, p.contact_id, coalesce(p.parent_id, p.id), u.branch, u.node, u.due_at, p.data, u.seq, \
            p.record_type, p.record_key, p.record_old \
       FROM (SELECT unnest($1::bigint[]) AS source, unnest($2::bigint[]) AS contact_id, unnest($3::int[]) AS branch, \
                    unnest($4::text[]) AS node, unnest($5::timestamptz[]) AS due_at, unnest($6::int[]) AS seq) u \
       JOIN journey.enrollments p ON p.contact_id = u.contact_id AND p.id = u.source \
       RETURNING flow_id, parent_id, node) \
     SELECT journey._count_entered(array_agg(i.flow_id), array_agg(i.node), array_agg(i.parent_id IS NOT NULL)) FROM ins i";

fn insert_spawns(client: &mut pgrx::spi::SpiClient<'_>, s: &[Spawn]) -> Result<()> {
    prepared::update(
        client,
        INSERT_SPAWNS,
        &[
            column(s, |x| x.source),
            column(s, |x| x.contact_id),
            column(s, |x| x.branch),
            column(s, |x| x.node.as_str()),
            column(s, |x| clock::to_pg(x.due_at)),
            column(s, |x| x.seq),
        ],
    )?;
    // branches due now run in the next batch: the worker goes on at once
    super::wake::wake_on_commit();
    Ok(())
}

const INSERT_STEPS: &str =
    "INSERT INTO journey.steps (enrollment_id, contact_id, flow_id, node, at, outcome) \
     SELECT unnest($1::bigint[]), unnest($2::bigint[]), unnest($3::bigint[]), unnest($4::text[]), $6, \
        unnest($5::text[])";

/// The outbox INSERT; `INSERT_OUTBOX_IDEMPOTENT` is the same with ON CONFLICT DO NOTHING.
macro_rules! insert_outbox {
    () => {
        "INSERT INTO journey.outbox (idempotency_key, channel, flow_id, enrollment_id, node, contact_id, \
            recipient, sender, subject, body, sms_encoding, sms_segments, not_before, payload) \
         SELECT unnest($1::text[]), unnest($2::text[]), unnest($3::bigint[]), unnest($4::bigint[]), \
            unnest($5::text[]), unnest($6::bigint[]), unnest($7::text[]), unnest($8::text[]), unnest($9::text[]), \
            unnest($10::text[]), unnest($11::text[]), unnest($12::int[]), unnest($13::timestamptz[]), unnest($14::jsonb[])"
    };
}
const INSERT_OUTBOX: &str = insert_outbox!();
const INSERT_OUTBOX_IDEMPOTENT: &str = concat!(insert_outbox!(), " ON CONFLICT DO NOTHING");

fn insert_messages(client: &mut pgrx::spi::SpiClient<'_>, m: &[Message]) -> Result<()> {
    let args = [
        column(m, |x| x.key.as_str()),
        column(m, |x| x.channel),
        column(m, |x| x.flow_id),
        column(m, |x| x.enrollment_id),
        column(m, |x| x.node.as_str()),
        column(m, |x| x.contact_id),
        column(m, |x| x.recipient.as_deref()),
        column(m, |x| x.sender.as_deref()),
        column(m, |x| x.subject.as_deref()),
        column(m, |x| x.body.as_deref()),
        column(m, |x| x.sms_encoding),
        column(m, |x| x.sms_segments),
        column(m, |x| x.not_before.map(clock::to_pg)),
        column(m, |x| x.payload.clone().map(JsonB)),
    ];
    // A plain INSERT: the outbox rows commit with the enrollments' new seq, so a key can only
    // repeat if something else wrote it. Should that ever happen, the statement is rolled back
    // alone and repeated with ON CONFLICT DO NOTHING (the first row wins).
    let plain = subxact::run(std::panic::AssertUnwindSafe(|| {
        prepared::update(client, INSERT_OUTBOX, &args).map(|_| ())
    }));
    match plain {
        Ok(done) => Ok(done?),
        Err(c) if c.code == pgrx::PgSqlErrorCode::ERRCODE_UNIQUE_VIOLATION => {
            prepared::update(client, INSERT_OUTBOX_IDEMPOTENT, &args)?;
            Ok(())
        }
        Err(c) => Err(JourneyError::BatchWrite {
            table: "outbox",
            message: c.message,
        }),
    }
}

/// A due time as written: chrono's latest instant (what a parent waiting at its fork is due
/// at, engine/nodes/fork.rs) is `infinity`, due never.
fn due_to_pg(t: DateTime<Utc>) -> TimestampWithTimeZone {
    if t == DateTime::<Utc>::MAX_UTC {
        TimestampWithTimeZone::positive_infinity()
    } else {
        clock::to_pg(t)
    }
}

/// The UPDATE's arguments: one array per column, and the ctids when `with_tid`.
fn update_args(u: &[Update], with_tid: bool) -> Vec<DatumWithOid<'_>> {
    let mut args = vec![
        column(u, |x| x.id),
        column(u, |x| x.contact_id),
        column(u, |x| x.status),
        column(u, |x| x.node.as_str()),
        column(u, |x| x.due_at.map(due_to_pg)),
        column(u, |x| x.seq),
        column(u, |x| x.last_error.as_deref()),
        column(u, |x| x.waiting.clone().map(JsonB)),
        column(u, |x| x.attempts),
    ];
    if with_tid {
        args.push(column(u, |x| x.tid));
    }
    args
}

/// The enrollments UPDATE from a set of new values `u`: joined by ctid in the batch, by key in
/// its fallback (arguments from `update_args`).
macro_rules! update_enrollments {
    ($from:literal, $join:literal) => {
        concat!(
            "UPDATE journey.enrollments e \
                SET status = u.status, node = u.node, due_at = u.due_at, seq = u.seq, \
                    last_error = u.last_error, waiting = u.waiting, attempts = u.attempts, updated_at = now() \
               FROM ", $from, " WHERE ", $join
        )
    };
}

const UPDATE_BY_TID: &str = update_enrollments!(
    "(SELECT unnest($10::tid[]) AS tid, unnest($1::bigint[]) AS id, unnest($2::bigint[]) AS contact_id, \
        unnest($3::text[]) AS status, unnest($4::text[]) AS node, unnest($5::timestamptz[]) AS due_at, \
        unnest($6::int[]) AS seq, unnest($7::text[]) AS last_error, unnest($8::jsonb[]) AS waiting, \
        unnest($9::int[]) AS attempts) u",
    "e.ctid = u.tid AND e.id = u.id AND e.contact_id = u.contact_id"
);

const UPDATE_BY_KEY: &str = update_enrollments!(
    "(SELECT unnest($1::bigint[]) AS id, unnest($2::bigint[]) AS contact_id, \
        unnest($3::text[]) AS status, unnest($4::text[]) AS node, unnest($5::timestamptz[]) AS due_at, \
        unnest($6::int[]) AS seq, unnest($7::text[]) AS last_error, unnest($8::jsonb[]) AS waiting, \
        unnest($9::int[]) AS attempts) u",
    "e.id = u.id AND e.contact_id = u.contact_id"
);

fn update_enrollments(client: &mut pgrx::spi::SpiClient<'_>, u: &[Update]) -> Result<()> {
    // Joined on ctid (a TID scan per row, whatever the table's size: the claim locked these
    // rows, so they have not moved); id and contact_id are checked as well.
    let updated = prepared::update(client, UPDATE_BY_TID, &update_args(u, true))?.len();
    if updated != u.len() {
        // A row moved after the claim (this batch itself touched it): fall back to the key
        // join for all of them; setting the same values twice is harmless.
        client.update(UPDATE_BY_KEY, None, &update_args(u, false))?;
    }
    Ok(())
}
