//! `journey.run_due`: runs due enrollments now or on a virtual clock (the background worker
//! runs the same batches; see `engine::run`).
use crate::engine::{clock, occurrence, run};
use crate::error::{JourneyError, OrReport};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;

/// `journey.run_due(max_steps, at)`: runs up to `max_steps` due enrollments as of `at`.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn run_due(
    max_steps: default!(Option<i32>, 1000),
    at: default!(Option<TimestampWithTimeZone>, "now()"),
) -> i32 {
    let max = crate::error::required(
        max_steps,
        "max_steps",
        "Pass how many due steps to run, e.g. 1000.",
    )
    .or_report();
    let at = crate::error::required(at, "at", "Omit at to run what is due now.").or_report();
    if !(1..=100_000).contains(&max) {
        JourneyError::InvalidArgument {
            argument: "max_steps".into(),
            reason: format!("{max} is not between 1 and 100000"),
            hint: "Run due steps in batches of 1 to 100000.".into(),
        }
        .report()
    }
    if clock::to_chrono(at).is_none() {
        JourneyError::InvalidArgument {
            argument: "at".into(),
            reason: "it is infinite or out of range".into(),
            hint: "Pass a finite time, e.g. now() + interval '3 days'.".into(),
        }
        .report()
    }
    // the date occurrences due by `at` first, so the virtual clock drives date flows too
    occurrence::enroll_due(at).or_report();
    run::run_batch(max, at).or_report()
}

// jit = off: a batch's statements are short, and planned once on statistics that may be stale
// (a custom plan's estimate over a large enrollments or steps table passes jit_above_cost, and
// compiling then costs more than the batch); the worker's session sets the same.
extension_sql!(
    "ALTER FUNCTION journey.run_due(integer, timestamptz) SET jit = off;
     COMMENT ON FUNCTION journey.run_due(integer, timestamptz) IS \
     'Enrolls the date occurrences due by at (journey._date_pass), then runs up to max_steps due enrollments as of at (a virtual clock for tests and dry runs): each runs its nodes until it waits, completes, exits or fails. Returns how many enrollments were advanced. The background worker calls the same code. Runs with jit off (short statements whose estimates may be stale).';",
    name = "run_due_comment",
    requires = [run_due]
);
