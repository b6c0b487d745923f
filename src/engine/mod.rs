//! The engine: runs due enrollments (claim, per-node execution, set-based write-back) and
//! computes when steps are due (delays, windows, quiet hours) in the contact's zone.
pub mod cache;
pub mod claim;
pub mod clock;
pub mod prepared;
pub mod rows;
pub mod run;
pub mod schedule;
pub mod store;
pub mod subxact;
