//! Settings (GUCs), defined in `_PG_init`.
use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::ffi::CString;

/// Database the background worker connects to (postmaster).
pub static DATABASE: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"postgres"));
/// Role the worker runs as (postmaster); none = the bootstrap superuser.
pub static WORKER_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
/// Whether the worker advances due steps (sighup).
pub static WORKER_ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);
/// Due enrollments the worker takes per transaction.
pub static BATCH_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1000);
/// Background workers the launcher keeps running in journey.database.
pub static WORKERS: GucSetting<i32> = GucSetting::<i32>::new(1);
/// Longest sleep between polls, in milliseconds; commits that enroll wake the worker sooner.
pub static NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(1000);

pub fn init() {
    GucRegistry::define_string_guc(
        c"journey.database",
        c"Database the journey background worker runs in.",
        c"The worker waits quietly until CREATE EXTENSION journey has run there.",
        &DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"journey.worker_role",
        c"Database role the journey background worker runs as.",
        c"Empty: the bootstrap superuser. Name the extension's owner or a role granted journey.grant_role(role, 'admin') to run the worker without superuser rights.",
        &WORKER_ROLE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"journey.workers",
        c"Background workers that advance due steps in journey.database.",
        c"Each claims its own batches (FOR UPDATE SKIP LOCKED). Each takes a slot of max_worker_processes, as does the launcher.",
        &WORKERS,
        1,
        64,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"journey.worker_enabled",
        c"Whether the journey background worker advances due steps.",
        c"When off, the worker sleeps; journey.run_due still works.",
        &WORKER_ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"journey.batch_size",
        c"Due steps the journey worker runs per transaction.",
        c"Larger batches move more steps per second; smaller ones hold row locks for less time.",
        &BATCH_SIZE,
        1,
        100_000,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"journey.naptime",
        c"Longest sleep of the journey worker between polls, in milliseconds.",
        c"Commits that enroll a contact or make a step due wake the worker at once.",
        &NAPTIME,
        10,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
}

/// The role the worker connects as, if one is set.
pub fn worker_role() -> Option<String> {
    WORKER_ROLE
        .get()
        .and_then(|c| c.into_string().ok())
        .filter(|r| !r.trim().is_empty())
}

/// The database name the worker connects to.
pub fn database() -> String {
    DATABASE
        .get()
        .and_then(|c| c.into_string().ok())
        .unwrap_or_else(|| "postgres".to_string())
}
