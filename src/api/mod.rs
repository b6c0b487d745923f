//! Every SQL-callable function (`#[pg_extern]`), one file per concern. The audience, relay and
//! stats functions are hand-written SQL (sql/*.sql), wired into the install script by
//! `install.rs` in order; flows, the engine entry point and the internal helpers are Rust.
pub mod authoring;
pub mod dates;
pub mod engine;
pub mod flows;
pub mod install;
pub mod jsonb;
pub mod phones;
pub mod predicates;
pub mod record_trigger;
pub mod records;
pub mod routes;
pub mod senders;
pub mod simulate;
pub mod stats;
pub mod test_send;
pub mod wake;
pub mod zones;
