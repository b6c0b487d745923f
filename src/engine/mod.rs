//! The engine: runs due enrollments and computes when steps are due (delays, windows, quiet
//! hours) in the contact's zone. A batch goes `claim` (the due enrollments and settings, read
//! by named columns) → `run` (the batch loop, each enrollment's nodes, the retry policy) →
//! `nodes` (what each node type does, as an `Outcome`; look-ups through `store`) → `batch`
//! (the typed rows and their set-based write-back). `run_due` (in `api::engine`) and the
//! background worker both call `run::run_batch`.
pub mod batch;
pub mod cache;
pub mod claim;
pub mod clock;
pub mod counters;
pub mod nodes;
pub mod occurrence;
pub mod prepared;
pub mod quota;
pub mod rows;
pub mod run;
pub mod schedule;
pub mod store;
pub mod subxact;
pub mod wake;
