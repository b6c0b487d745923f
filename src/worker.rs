//! The background worker (`journey.workers` of them, started by the launcher, launcher.rs, once
//! `journey.database` exists): it sleeps on its latch up
//! to `journey.naptime`, runs due steps until a batch comes back short, waits quietly while the
//! extension is not created in `journey.database`, and survives failing batches (the
//! transaction is rolled back and logged; every step is idempotent, so re-running is safe).
//! The launcher starts it again a second after it stops; nothing is in flight across
//! transactions.
//!
//! Transactions that enroll someone or make a step due wake it at commit through its latch
//! (`engine::wake`), so it starts at once instead of on its next poll.
use crate::guc;
use pgrx::bgworkers::{BackgroundWorker, SignalWakeFlags};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::Duration;

/// The worker session's search_path.
const SEARCH_PATH: &std::ffi::CStr = c"pg_catalog, journey, pg_temp";

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn journey_worker_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    let database = guc::database();
    let role = guc::worker_role();
    BackgroundWorker::connect_worker_to_spi(Some(&database), role.as_deref());
    // Every name the engine's SQL uses resolves in pg_catalog or journey, never in a schema
    // another role can create objects in (pg_temp last); no JIT, as in journey.run_due (short
    // statements, planned on statistics that may be stale). The worker's commits do not wait
    // for their WAL flush (synchronous_commit = off): a crash may lose its last batches (at
    // most about three wal_writer_delay), and with them every write of those batches at once
    // (steps, outbox rows, enrollment state, counters), so the steps are simply still due after
    // recovery and run again with the same idempotency keys. Nothing outside the database sees
    // a batch before its WAL is flushed in a way that survives the crash: a relay's claim or
    // mark commits synchronously (its own setting), and WAL is flushed in order, so the claim's
    // commit being durable makes the batch that wrote the row durable too.
    for (name, value) in [
        (c"search_path", SEARCH_PATH),
        (c"jit", c"off"),
        (c"synchronous_commit", c"off"),
    ] {
        unsafe {
            pg_sys::SetConfigOption(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_SUSET,
                pg_sys::GucSource::PGC_S_SESSION,
            );
        }
    }
    crate::engine::wake::attach_worker_latch();
    log!(
        "journey worker started in database \"{database}\" as role \"{}\"",
        role.as_deref().unwrap_or("(bootstrap superuser)")
    );
    let mut installed_logged = false;
    let mut dates = DatePasses::default();
    let mut retention = Retention::default();
    loop {
        // at least every DATE_PASS_EVERY, whatever journey.naptime says
        let nap = Duration::from_millis(guc::NAPTIME.get().max(10) as u64).min(DATE_PASS_EVERY);
        if !BackgroundWorker::wait_latch(Some(nap)) {
            break;
        }
        if BackgroundWorker::sighup_received() {
            unsafe { pg_sys::ProcessConfigFile(pg_sys::GucContext::PGC_SIGHUP) };
        }
        if !guc::WORKER_ENABLED.get() {
            continue;
        }
        dates.run_if_due();
        retention.run_if_due();
        crate::engine::counters::compact_if_due(in_transaction);
        let batch = guc::BATCH_SIZE.get();
        let mut ran = false;
        // the extension is looked up in the first batch's transaction after each wake-up, not
        // before every batch (one dropped in between fails that batch, which is logged)
        let mut first = true;
        loop {
            let check = std::mem::replace(&mut first, false);
            match in_transaction(|| {
                if check && !extension_installed() {
                    return None;
                }
                let now = crate::engine::clock::to_pg(chrono::Utc::now());
                Some(crate::engine::run::run_batch(batch, now))
            }) {
                Ok(None) => break,
                Ok(Some(Ok(n))) => {
                    if !installed_logged {
                        log!("journey worker: extension found, running due steps");
                        installed_logged = true;
                    }
                    ran |= n > 0;
                    if n < batch || BackgroundWorker::sigterm_received() {
                        break;
                    }
                }
                Ok(Some(Err(e))) => {
                    warning!("journey worker: batch failed and was rolled back: {e}");
                    break;
                }
                Err(e) => {
                    warning!("journey worker: batch failed and was rolled back: {e}");
                    break;
                }
            }
        }
        if ran {
            release_free_memory();
        }
    }
    crate::engine::wake::detach_worker_latch();
    log!("journey worker stopped");
    // The launcher (its notify pid) sees it stop and starts another a second later at most, so
    // pg_terminate_backend() on the worker pauses it instead of stopping it for good. At
    // shutdown nothing is restarted.
    unsafe { pg_sys::proc_exit(1) };
}

/// How often the worker enrolls due date occurrences (journey._date_pass).
const DATE_PASS_EVERY: Duration = Duration::from_secs(10);

/// The date passes: one every DATE_PASS_EVERY, in a transaction of its own (a pass that fails
/// is logged and never holds up the steps), and again at once after a pass that took a full
/// `PASS_ROWS`.
#[derive(Default)]
struct DatePasses {
    last: Option<std::time::Instant>,
}

impl DatePasses {
    fn run_if_due(&mut self) {
        if self.last.is_some_and(|t| t.elapsed() < DATE_PASS_EVERY) {
            return;
        }
        self.last = Some(std::time::Instant::now());
        let result = in_transaction(|| {
            if !extension_installed() {
                return Ok(0);
            }
            let now = crate::engine::clock::to_pg(chrono::Utc::now());
            crate::engine::occurrence::enroll_due(now)
        });
        match result {
            Ok(Ok(n)) if n >= crate::engine::occurrence::PASS_ROWS => self.last = None,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warning!("journey worker: date pass failed and was rolled back: {e}"),
            Err(e) => warning!("journey worker: date pass failed and was rolled back: {e}"),
        }
    }
}

/// The retention passes (sql/retention.sql): one every DATE_PASS_EVERY, in a transaction of its
/// own, each deleting at most RETENTION_ROWS outbox rows looked at and the ended enrollments of
/// RETENTION_BLOCKS table blocks; where the next starts is kept here (a restarted worker starts
/// from the beginning).
#[derive(Default)]
struct Retention {
    last: Option<std::time::Instant>,
    outbox_after: i64,
    block: i64,
}

const RETENTION_ROWS: i32 = 5000;
const RETENTION_BLOCKS: i32 = 1000;

/// The longest a round of retention passes runs (then the steps go on; the next round comes
/// DATE_PASS_EVERY later).
const RETENTION_TIME: Duration = Duration::from_millis(250);

impl Retention {
    /// A round of passes, each in its own transaction, until one finds nothing more to delete
    /// and the cursors are back at the start, or RETENTION_TIME is spent.
    fn run_if_due(&mut self) {
        if self.last.is_some_and(|t| t.elapsed() < DATE_PASS_EVERY) {
            return;
        }
        let started = std::time::Instant::now();
        self.last = Some(started);
        while started.elapsed() < RETENTION_TIME {
            match self.pass() {
                Some(deleted) if deleted > 0 || self.outbox_after != 0 || self.block != 0 => {}
                _ => break,
            }
        }
    }

    /// One pass; how many rows it deleted (None: failed, or no extension).
    fn pass(&mut self) -> Option<i64> {
        let (after, block) = (self.outbox_after, self.block);
        let result = in_transaction(|| {
            if !extension_installed() {
                return Ok::<_, pgrx::spi::Error>(None);
            }
            Spi::connect(|client| {
                let row = client
                    .select(
                        "SELECT outbox_next, block_next, messages + enrollments \
                         FROM journey._retention_pass($1, $2, $3, $4)",
                        None,
                        &[
                            after.into(),
                            block.into(),
                            RETENTION_ROWS.into(),
                            RETENTION_BLOCKS.into(),
                        ],
                    )?
                    .first();
                Ok(Some((
                    row.get::<i64>(1)?.unwrap_or(0),
                    row.get::<i64>(2)?.unwrap_or(0),
                    row.get::<i64>(3)?.unwrap_or(0),
                )))
            })
        });
        match result {
            Ok(Ok(Some((next, block, deleted)))) => {
                self.outbox_after = next;
                self.block = block;
                Some(deleted)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                warning!("journey worker: retention pass failed and was rolled back: {e}");
                None
            }
            Err(e) => {
                warning!("journey worker: retention pass failed and was rolled back: {e}");
                None
            }
        }
    }
}

/// Whether `CREATE EXTENSION journey` has run in the worker's database.
fn extension_installed() -> bool {
    Spi::get_one::<bool>("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'journey')")
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Hands memory freed after a busy spell back to the OS, so the idle worker's footprint stays
/// what it needs (batches allocate and free several MB each; glibc keeps them otherwise).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: malloc_trim only returns free heap pages to the kernel.
        unsafe { malloc_trim(0) };
    }
}

/// Runs `body` in its own transaction; an ERROR rolls it back and is returned as text.
fn in_transaction<R>(body: impl FnOnce() -> R + std::panic::UnwindSafe) -> Result<R, String> {
    unsafe {
        pg_sys::SetCurrentStatementStartTimestamp();
        pg_sys::StartTransactionCommand();
        pg_sys::PushActiveSnapshot(pg_sys::GetTransactionSnapshot());
    }
    let result = crate::engine::subxact::catch(body).map_err(|caught| caught.message);
    unsafe {
        if result.is_ok() {
            pg_sys::PopActiveSnapshot();
            pg_sys::CommitTransactionCommand();
        } else {
            pg_sys::AbortCurrentTransaction();
        }
        // A background worker flushes its table statistics itself (a backend does it when idle):
        // without them autovacuum never sees the rows the worker inserts and deletes (steps,
        // counter_deltas, retention's deletes), the tables bloat and the planner thinks them
        // empty. At most once a second (PGSTAT_MIN_INTERVAL); outside any transaction.
        pg_sys::pgstat_report_stat(false);
    }
    result
}
