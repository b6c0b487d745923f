//! Compaction of the stats counters (sql/counters.sql): the worker folds
//! `journey.counter_deltas` into `journey.counters` every `EVERY`, in transactions of its own,
//! `ROWS` delta rows per call, again at once while a call folds a full `ROWS` (at most `TIME`
//! per round). Reads are right without it (they add the deltas); it keeps them few.
use pgrx::prelude::*;
use std::cell::Cell;
use std::time::{Duration, Instant};

/// How often the worker compacts.
pub const EVERY: Duration = Duration::from_secs(2);
/// Delta rows one call folds.
pub const ROWS: i32 = 10_000;
/// The longest a round of calls runs (then the steps go on).
pub const TIME: Duration = Duration::from_millis(200);

/// One call in a transaction of its own: the worker's runner, given `pass`; its result is the
/// number of rows folded (or the error, logged).
pub type Pass = fn() -> std::result::Result<i64, pgrx::spi::Error>;

thread_local! {
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// One compaction call: `journey.compact_counters(ROWS)`, or nothing while the extension (or
/// this release of it) is not installed.
pub fn pass() -> std::result::Result<i64, pgrx::spi::Error> {
    let installed = Spi::get_one::<bool>(
        "SELECT to_regprocedure('journey.compact_counters(integer)') IS NOT NULL",
    )?
    .unwrap_or(false);
    if !installed {
        return Ok(0);
    }
    Ok(
        Spi::get_one_with_args::<i64>("SELECT journey.compact_counters($1)", &[ROWS.into()])?
            .unwrap_or(0),
    )
}

/// A round of compaction calls if `EVERY` has passed since the last, each run by `run` (the
/// worker's transaction wrapper).
pub fn compact_if_due(
    run: impl Fn(Pass) -> std::result::Result<std::result::Result<i64, pgrx::spi::Error>, String>,
) {
    if LAST.with(|l| l.get()).is_some_and(|t| t.elapsed() < EVERY) {
        return;
    }
    let started = Instant::now();
    LAST.with(|l| l.set(Some(started)));
    while started.elapsed() < TIME {
        match run(pass) {
            Ok(Ok(n)) if n >= ROWS as i64 => {}
            Ok(Ok(_)) => break,
            Ok(Err(e)) => {
                warning!("journey worker: counter compaction failed and was rolled back: {e}");
                break;
            }
            Err(e) => {
                warning!("journey worker: counter compaction failed and was rolled back: {e}");
                break;
            }
        }
    }
}
