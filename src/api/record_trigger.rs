//! `journey._on_record_written`: the statement-level trigger journey puts on attached tables
//! (sql/records.sql attaches it; its COMMENT is there). For each record-trigger flow listening
//! to the operation (`journey._record_listeners`, which also takes the flows' locks) it runs one
//! statement over the transition tables (`journey._record_statement`: enroll once per record,
//! count). That statement is written from the catalog, which costs more than a one-row write
//! itself, so it is kept per backend, keyed on everything it is written from: the table's
//! columns as its relation has them now (an `ALTER TABLE` gives a new key), the record type's
//! row, the trigger's changed list, whether the flow reads `old`, and the write's size class.
//! Writes of up to [`SMALL`] rows reuse one kept plan (an
//! index probe per record); larger ones are planned for their size (a hash join where that is
//! cheaper), so a plan made for one size never serves another.
use crate::error::JourneyError;
use pgrx::pg_sys::{self, PgOid};
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::JsonB;
use pgrx::PgTupleDesc;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The most rows a statement may have written to reuse the kept plan.
const SMALL: i64 = 64;

/// A statement's place in the cache: the table, whether on UPDATE, the trigger's changed list,
/// whether its flow reads old (two flows listening alike but one reading old must not take
/// turns rewriting one entry), whether for a bulk write (more than [`SMALL`] rows: its SQL
/// checks once-per-record differently, see `journey._record_statement`).
type Key = (u32, bool, String, bool, bool);

/// One listening trigger's statement, the facts it was written from (the record type's, the
/// table's columns) and, once a small write used it, its kept plan.
struct Statement {
    facts: String,
    sql: Rc<str>,
    small: Option<Rc<OwnedPreparedStatement>>,
}

thread_local! {
    /// Statements by [`Key`]; one written from other facts (a changed table or record type) is
    /// written again in its place. At most [`KEPT`] (see [`keep`]).
    static STATEMENTS: RefCell<HashMap<Key, Statement>> =
        RefCell::new(HashMap::new());
}

/// The most statements a backend keeps: a session that writes to tables dropped and created
/// again (each a new relation) would otherwise keep one per table for its lifetime.
const KEPT: usize = 256;

/// Puts `value` in `map` at `key`; a new key when `map` holds `most` already empties it first
/// (the statements are written again as writes need them; a plan in use is held by its caller).
fn keep<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V, most: usize) {
    if map.len() >= most && !map.contains_key(&key) {
        map.clear();
    }
    map.insert(key, value);
}

const LISTENERS: &str =
    "SELECT flow_id, condition, changed, reads_old, keyed, tbl, key_column, contact_column, match \
     FROM journey._record_listeners($1, $2)";
const UNMATCHED: &str =
    "UPDATE journey.record_types x SET unmatched = x.unmatched + $2 WHERE x.name = $1";

/// One row of `journey._record_listeners`.
struct Listener {
    flow_id: i64,
    condition: Option<JsonB>,
    changed: Option<JsonB>,
    /// the flow names `old`: an update's old columns are kept (else `{}`)
    reads_old: bool,
    /// the contact column is the contact's id (journey._record_contact_is_key)
    keyed: bool,
    /// everything else the statement is written from (the record type's row, whether its contact
    /// column is the contact's id, the table's columns), to compare with a kept statement's
    facts: String,
}

#[pg_trigger(sql = r#"
CREATE FUNCTION journey._on_record_written() RETURNS trigger
LANGUAGE c
SECURITY DEFINER
SET search_path = pg_catalog, journey, pg_temp
SET jit = off
SET enable_seqscan = off
SET enable_mergejoin = off
SET work_mem = '64MB'
SET plan_cache_mode = force_generic_plan
AS 'MODULE_PATHNAME', '@FUNCTION_NAME@';
"#)]
fn on_record_written<'a>(
    trigger: &'a PgTrigger<'a>,
) -> std::result::Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, PgTriggerError> {
    // (the settings above: the statements probe indexes row by row and join the transition
    // tables by hash, the planner knows their size, not the tables' data; a kept plan is the
    // one made at its first use, for a write of at most SMALL rows, never replanned per call:
    // its custom plans would cost what keeping it saves)
    if let Err(e) = written(trigger) {
        e.report();
    }
    Ok(None)
}

/// The trigger's work: enroll from the statement's records, count those without a contact.
fn written(trigger: &PgTrigger<'_>) -> crate::error::Result<()> {
    let data = trigger.trigger_data();
    let update = trigger.event().fired_by_update();
    let op = if update { "update" } else { "insert" };
    let Some(record_type) = trigger.extra_args().unwrap_or_default().into_iter().next() else {
        return Ok(());
    };
    // SAFETY: an AFTER ... FOR EACH STATEMENT trigger with REFERENCING NEW TABLE (attach_table
    // creates it so) has its transition table for the duration of the call
    let rows = if data.tg_newtable.is_null() {
        0
    } else {
        unsafe { pg_sys::tuplestore_tuple_count(data.tg_newtable) }
    };
    if rows == 0 {
        return Ok(());
    }
    let relid = unsafe { (*data.tg_relation).rd_id }.to_u32();
    Spi::connect_mut(|client| -> crate::error::Result<()> {
        // SAFETY: the trigger data is the one this call was given; its transition tables
        // become new_rows and old_rows for this connection's statements
        unsafe { pg_sys::SPI_register_trigger_data(data as *const _ as *mut _) };
        let mut listeners = listeners(client, &record_type, op, relid)?;
        if listeners.is_empty() {
            return Ok(());
        }
        // (the table's layout, part of every listener's facts: read only when a flow listens)
        let columns = columns(data.tg_relation);
        for l in &mut listeners {
            l.facts.push('|');
            l.facts.push_str(&columns);
        }
        let (mut unmatched, mut enrolled) = (0i64, 0i64);
        for l in listeners {
            let key = (
                relid,
                update,
                l.changed
                    .as_ref()
                    .map(|c| c.0.to_string())
                    .unwrap_or_default(),
                l.reads_old,
                rows > SMALL,
            );
            let (u, e) = run(client, key, &l, &record_type, op)?;
            unmatched = unmatched.max(u);
            enrolled += e;
        }
        if enrolled > 0 {
            crate::engine::wake::wake_on_commit();
        }
        // records a listening flow could not enroll for want of a contact, counted for the admin
        if unmatched > 0 {
            crate::engine::prepared::update(
                client,
                UNMATCHED,
                &[record_type.as_str().into(), unmatched.into()],
            )?;
        }
        Ok(())
    })
}

/// The table's columns as its relation has them now, each one's name (bytes), number, type,
/// typmod, collation and dropped flag, written unambiguously (Debug: quoted, escaped): two
/// layouts never give the same text, whatever their columns are named.
fn columns(rel: pg_sys::Relation) -> String {
    // SAFETY: the trigger's relation is open and locked for the duration of the call, and its
    // attribute names are NUL-terminated within NAMEDATALEN
    let desc = unsafe { PgTupleDesc::from_pg_unchecked((*rel).rd_att) };
    let facts: Vec<_> = desc
        .iter()
        .map(|a| {
            let name = unsafe { std::ffi::CStr::from_ptr(a.attname.data.as_ptr()) };
            (
                name.to_bytes().to_vec(),
                a.attnum,
                a.atttypid.to_u32(),
                a.atttypmod,
                a.attcollation.to_u32(),
                a.attisdropped,
            )
        })
        .collect();
    format!("{facts:?}")
}

/// The listening triggers (none when no flow listens), each with the record type's facts its
/// statement is written from (the caller adds the table's columns).
fn listeners(
    client: &mut SpiClient<'_>,
    record_type: &str,
    op: &str,
    relid: u32,
) -> crate::error::Result<Vec<Listener>> {
    let rows =
        crate::engine::prepared::update(client, LISTENERS, &[record_type.into(), op.into()])?;
    let mut out = Vec::new();
    for row in rows {
        // the statement is written for the record type's table: it must be the one this
        // trigger fired on (an admin may write record_types, or put this trigger elsewhere)
        let tbl = row.get::<pg_sys::Oid>(6)?.map(|o| o.to_u32());
        if tbl != Some(relid) {
            let name = |oid: u32| {
                Spi::get_one_with_args::<String>(
                    "SELECT $1::oid::regclass::text",
                    &[pg_sys::Oid::from(oid).into()],
                )
                .ok()
                .flatten()
                .unwrap_or_default()
            };
            return Err(JourneyError::InvalidArgument {
                argument: format!("record type \"{record_type}\""),
                reason: format!(
                    "it is attached to table {}, but its trigger fired on table {}",
                    name(tbl.unwrap_or_default()),
                    name(relid)
                ),
                hint: "A record type's triggers are the ones journey.attach_table put on its table: detach_table and attach_table again.".into(),
            });
        }
        // (reads_old and the table, checked above, are in the statement's key already)
        let facts = format!(
            "{:?}|{:?}|{:?}|{:?}",
            row.get::<bool>(5)?,
            row.get::<String>(7)?,
            row.get::<String>(8)?,
            row.get::<String>(9)?,
        );
        out.push(Listener {
            flow_id: row.get::<i64>(1)?.unwrap_or_default(),
            condition: row.get::<JsonB>(2)?,
            changed: row.get::<JsonB>(3)?,
            reads_old: row.get::<bool>(4)?.unwrap_or(true),
            keyed: row.get::<bool>(5)?.unwrap_or(false),
            facts,
        });
    }
    Ok(out)
}

/// Runs one listening trigger's statement: (records without a contact, enrolled).
fn run(
    client: &mut SpiClient<'_>,
    key: Key,
    l: &Listener,
    record_type: &str,
    op: &str,
) -> crate::error::Result<(i64, i64)> {
    let bulk = key.4;
    let cached = STATEMENTS.with(|s| {
        s.borrow()
            .get(&key)
            .filter(|st| st.facts == l.facts)
            .map(|st| (st.sql.clone(), st.small.clone()))
    });
    let (sql, small) = match cached {
        Some(found) => found,
        None => {
            let sql: Rc<str> = statement(client, l, record_type, op, bulk)?.into();
            let st = Statement {
                facts: l.facts.clone(),
                sql: sql.clone(),
                small: None,
            };
            STATEMENTS.with(|s| keep(&mut s.borrow_mut(), key.clone(), st, KEPT));
            (sql, None)
        }
    };
    let args = [
        l.flow_id.into(),
        record_type.into(),
        l.condition.as_ref().map(|c| JsonB(c.0.clone())).into(),
    ];
    let result = if !bulk {
        let plan = match small {
            Some(plan) => plan,
            None => {
                let types = [pg_sys::INT8OID, pg_sys::TEXTOID, pg_sys::JSONBOID].map(PgOid::from);
                let plan = Rc::new(client.prepare_mut(&*sql, &types)?.keep());
                STATEMENTS.with(|s| {
                    if let Some(st) = s.borrow_mut().get_mut(&key) {
                        st.small = Some(plan.clone());
                    }
                });
                plan
            }
        };
        client.update(&*plan, None, &args)?
    } else {
        client.update(&*sql, None, &args)?
    };
    let row = result.first();
    Ok((
        row.get::<i64>(1)?.unwrap_or_default(),
        row.get::<i64>(2)?.unwrap_or_default(),
    ))
}

/// The statement of one listening trigger, written from the catalog.
fn statement(
    client: &mut SpiClient<'_>,
    l: &Listener,
    record_type: &str,
    op: &str,
    bulk: bool,
) -> crate::error::Result<String> {
    let rows = client.select(
        "SELECT journey._record_statement($1, $2, $3, $4, $5, $6)",
        None,
        &[
            record_type.into(),
            op.into(),
            l.changed.as_ref().map(|c| JsonB(c.0.clone())).into(),
            l.reads_old.into(),
            l.keyed.into(),
            bulk.into(),
        ],
    )?;
    rows.first()
        .get::<String>(1)?
        .ok_or_else(|| JourneyError::from(pgrx::spi::Error::InvalidPosition))
}

#[cfg(test)]
mod unit {
    use super::keep;
    use std::collections::HashMap;

    #[test]
    fn kept_statements_are_bounded() {
        let mut map = HashMap::new();
        for i in 0..3 {
            keep(&mut map, i, i, 3);
        }
        keep(&mut map, 1, 10, 3);
        assert_eq!(
            (map.len(), map[&1]),
            (3, 10),
            "a key kept already is replaced in place"
        );
        keep(&mut map, 7, 7, 3);
        assert_eq!(map.len(), 1, "a new key past the bound starts afresh");
        assert_eq!(map[&7], 7);
    }
}
