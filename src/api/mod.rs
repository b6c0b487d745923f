//! SQL functions, one file per concern. Audience, relay and stats functions are set-based SQL
//! (sql/*.sql, installed from here); flows are Rust because they parse and validate definitions.
pub mod audience;
pub mod flows;
pub mod jsonb;
pub mod relay;
pub mod roles;
pub mod stats;
