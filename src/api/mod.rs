//! SQL functions, one file per concern. Audience, relay and stats functions are set-based SQL
//! (sql/*.sql, installed from here); flows are Rust because they parse and validate definitions.
pub mod engine;
pub mod flows;
pub mod install;
pub mod jsonb;
pub mod predicates;
pub mod stats;
pub mod wake;
pub mod zones;
