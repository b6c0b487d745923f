//! Trigger functions of the audience tables (sql/triggers.sql). They are statement-level with
//! transition tables where they enroll, so a bulk INSERT enrolls in one set-based statement,
//! and they route through journey.flow_triggers, so a write no flow listens to costs one
//! index probe.
use pgrx::prelude::*;

extension_sql_file!(
    "../sql/triggers.sql",
    name = "triggers",
    requires = ["schema", model::predicate::matches, worker::wake]
);
