//! update_record and create_record: writes to the app's own tables. The statement comes from
//! `journey._record_write` (table checked writable, columns checked, identifiers quoted from the
//! catalog); the values (Liquid strings rendered) and the key go in as jsonb arguments. It runs
//! as the table's owner in a security-restricted context, so a trigger the app put on its table
//! runs as the app, never as the worker; and in a subtransaction with a short lock timeout, so a
//! failing write fails (a lock wait: retries) this enrollment only, as update_contact does.
use super::{Context, Outcome};
use crate::engine::claim::Enrollment;
use crate::engine::subxact;
use crate::error::{JourneyError, Result};
use crate::model::{Node, NodeKind};
use pgrx::prelude::*;
use pgrx::{pg_sys, JsonB};
use serde_json::{Map, Value};

pub fn run<'d>(e: &Enrollment, node: &'d Node, cx: &mut Context) -> Result<Outcome<'d>> {
    let (target, table, values) = match &node.kind {
        NodeKind::UpdateRecord { target, set } => (Some(target.as_str()), None, set),
        NodeKind::CreateRecord { table, values } => (None, Some(table.as_str()), values),
        _ => unreachable!("{} is not a record node", node.type_name()),
    };
    let field = if target.is_some() { "set" } else { "values" };
    let mut row = Map::new();
    for (column, value) in values {
        let value = match value {
            Value::String(source) => Value::String(cx.render(e, node, field, source)?),
            other => other.clone(),
        };
        row.insert(column.clone(), value);
    }
    // The record type is the enrollment's own column (set by the record trigger), and the
    // record is read from its data only then: an enrollment whose data merely names a record
    // type and a record (journey.enroll's payload, an app's) updates nothing.
    let record_type = e.record_type.clone();
    let record = match record_type {
        Some(_) => {
            let data = e
                .event
                .json()
                .map_err(|why| step_error(e, node, why, false))?;
            data["record"].clone()
        }
        None => Value::Null,
    };
    cx.lock_timeout.hold_briefly()?;
    let write = Write {
        record_type,
        target: target.map(str::to_string),
        table: table.map(str::to_string),
        row,
        record,
    };
    match subxact::run(std::panic::AssertUnwindSafe(|| write.run())) {
        Ok(Ok(0)) if target.is_some() => Err(step_error(
            e,
            node,
            "the record to update is gone (no row has its key)".into(),
            false,
        )),
        Ok(Ok(_)) if target.is_some() => Ok(Outcome::Updated),
        Ok(Ok(_)) => Ok(Outcome::RecordCreated),
        Ok(Err(err)) => Err(err),
        Err(caught) => Err(step_error(
            e,
            node,
            caught.message.clone(),
            caught.is_transient(),
        )),
    }
}

fn step_error(e: &Enrollment, node: &Node, message: String, transient: bool) -> JourneyError {
    JourneyError::Step {
        flow: e.flow_name.clone(),
        node: node.id.clone(),
        transient,
        message,
    }
}

/// One write, as the statement `journey._record_write` builds for it.
struct Write {
    record_type: Option<String>,
    target: Option<String>,
    table: Option<String>,
    row: Map<String, Value>,
    record: Value,
}

impl Write {
    /// Rows written.
    fn run(&self) -> Result<i64> {
        let columns: Vec<String> = self.row.keys().cloned().collect();
        let mut statement = None;
        let mut owner = None;
        let mut key = (None, None);
        Spi::connect(|client| -> Result<()> {
            let rows = client.select(
                "SELECT statement, owner, key_from, key_column FROM journey._record_write($1, $2, $3, $4)",
                None,
                &[
                    self.record_type.clone().into(),
                    self.target.clone().into(),
                    self.table.clone().into(),
                    columns.into(),
                ],
            )?;
            for row in rows {
                statement = row.get::<String>(1)?;
                owner = row.get::<pg_sys::Oid>(2)?;
                key = (row.get::<String>(3)?, row.get::<String>(4)?);
            }
            Ok(())
        })?;
        let (Some(statement), Some(owner)) = (statement, owner) else {
            return Ok(0);
        };
        // $2: the target's key, read from the record (its own key, or a link's via column)
        let key = match key {
            (Some(from), Some(column)) => {
                serde_json::json!({ column: self.record.get(&from).cloned().unwrap_or(Value::Null) })
            }
            _ => Value::Object(Map::new()),
        };
        let values = Value::Object(self.row.clone());
        let written = as_owner(owner, || {
            Spi::get_one_with_args::<i64>(&statement, &[JsonB(values).into(), JsonB(key).into()])
        })?;
        Ok(written.unwrap_or(0))
    }
}

/// Runs `f` as `owner`, security-restricted (no SET ROLE, no temporary objects: what
/// REFRESH MATERIALIZED VIEW and autovacuum's index builds do for a table's owner), restoring
/// the user and context after it, and at a subtransaction's abort.
fn as_owner<T>(owner: pg_sys::Oid, f: impl FnOnce() -> T) -> T {
    struct Restore(pg_sys::Oid, i32);
    impl Drop for Restore {
        fn drop(&mut self) {
            unsafe { pg_sys::SetUserIdAndSecContext(self.0, self.1) };
        }
    }
    let (mut user, mut context) = (pg_sys::Oid::INVALID, 0);
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            context
                | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32
                | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
    }
    let _restore = Restore(user, context);
    f()
}
