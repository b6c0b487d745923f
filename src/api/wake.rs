//! `journey._wake`: the SQL functions that make enrollments due (sql/triggers.sql,
//! sql/relay.sql) wake the background worker when their transaction commits.
use pgrx::prelude::*;

/// `journey._wake()`: called by the trigger functions after they enroll someone.
#[pg_extern(name = "_wake", volatile, parallel_unsafe)]
pub fn wake() {
    crate::engine::wake::wake_on_commit();
}

extension_sql!(
    "COMMENT ON FUNCTION journey._wake() IS 'Internal: wakes the background worker when the current transaction commits.';",
    name = "wake_comment",
    requires = [wake]
);
