//! journey: customer journeys (marketing and CRM automation flows) inside PostgreSQL.
//!
//! Module map (docs/ARCHITECTURE.md describes the layout and the path of a write): `guc`
//! settings, `error` the one error enum, `model` the flow definition and its validation, `api`
//! every SQL function and the install SQL (sql/*.sql, wired in order by `api::install`),
//! `engine` due-step execution, `render` Liquid and SMS encoding, `launcher` the process that
//! starts the workers, `worker` the background worker, `memory` the allocation count renders are bounded by. Dependencies run one way:
//! api -> engine -> model, render; worker -> engine (waking the worker at commit is
//! `engine::wake`).
use pgrx::prelude::*;

pub mod api;
pub mod engine;
pub mod error;
pub mod guc;
pub mod launcher;
pub mod memory;
pub mod model;
pub mod render;
pub mod worker;

::pgrx::pg_module_magic!();

#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    guc::init();
    launcher::register();
}

/// This module is required by `cargo pgrx test` invocations.
/// It must be visible at the root of your extension crate.
#[cfg(test)]
pub mod pg_test {
    pub fn setup(_options: Vec<&str>) {}

    pub fn postgresql_conf_options() -> Vec<&'static str> {
        // The worker runs in the test cluster too; it watches the `postgres` database, where
        // the extension is not created, so it waits quietly and never touches test data.
        vec!["shared_preload_libraries = 'journey'"]
    }
}
