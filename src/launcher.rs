//! The launcher: a background worker registered from `_PG_init` when preloaded, connected to no
//! database (it reads only the shared catalog pg_database). It waits for `journey.database` to
//! exist, saying so once in the log and checking again after 1 s, 2 s, 4 s, … up to a minute,
//! then starts `journey.workers` workers (worker.rs) in it as dynamic background workers and
//! keeps that many running: a worker that stops (pg_terminate_backend, an error at start) is
//! started again, at most once a second. When the database goes, it stops them and waits again.
//! The workers are never restarted by the postmaster (BGW_NEVER_RESTART): the launcher is the one
//! place that starts them, so there are never more than `journey.workers`. The postmaster
//! restarts the launcher a second after it exits (it stops its workers first); after a crash
//! every process starts afresh, dynamic workers forgotten.
use crate::guc;
use pgrx::bgworkers::{
    BackgroundWorker, BackgroundWorkerBuilder, BackgroundWorkerStatus, DynamicBackgroundWorker,
    SignalWakeFlags,
};
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::time::Duration;

/// The longest wait between two checks for the database.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// The shortest time between two starts of workers.
const RESTART_AFTER: Duration = Duration::from_secs(1);
/// How often the launcher looks at its workers and the database once they run (a worker's
/// start and stop also wake it: it is their notify pid).
const WATCH_EVERY: Duration = Duration::from_secs(10);

pub fn register() {
    // SAFETY: reads two of the postmaster's flags.
    if unsafe { !pg_sys::process_shared_preload_libraries_in_progress || pg_sys::IsBinaryUpgrade } {
        // not preloaded, or a pg_upgrade restoring the schema: no worker
        return;
    }
    crate::engine::wake::init_shared_memory();
    BackgroundWorkerBuilder::new("journey launcher")
        .set_type("journey launcher")
        .set_function("journey_launcher_main")
        .set_library("journey")
        .enable_spi_access()
        .set_restart_time(Some(Duration::from_secs(1)))
        .load();
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn journey_launcher_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    // no database: only shared catalogs (pg_database) can be read
    BackgroundWorker::connect_worker_to_spi(None, None);
    let database = guc::database();
    let wanted = guc::WORKERS.get().max(1) as usize;
    let mut workers: Vec<DynamicBackgroundWorker> = Vec::new();
    let mut backoff = Duration::from_secs(1);
    let mut said = false;
    loop {
        let nap = if database_exists(&database) {
            if said {
                log!("journey launcher: database \"{database}\" exists now");
            }
            said = false;
            backoff = Duration::from_secs(1);
            match keep_running(&mut workers, wanted) {
                // a worker that stops at once is started again a second later, not in a loop
                true => RESTART_AFTER,
                false => WATCH_EVERY,
            }
        } else {
            stop_all(&mut workers);
            if !said {
                log!(
                    "journey launcher: database \"{database}\" (journey.database) does not exist; the worker starts once it does"
                );
                said = true;
            }
            let nap = backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            nap
        };
        if !BackgroundWorker::wait_latch(Some(nap)) {
            break;
        }
    }
    stop_all(&mut workers);
    // exit code 1: restarted a second later unless the postmaster is shutting down
    unsafe { pg_sys::proc_exit(1) };
}

/// Whether the database exists: a scan of pg_database (a shared catalog, the one kind this
/// process can read; its indexes may not be loaded without a database, so no index scan), as
/// the autovacuum launcher lists databases.
fn database_exists(name: &str) -> bool {
    BackgroundWorker::transaction(|| unsafe {
        let rel = pg_sys::table_open(pg_sys::DatabaseRelationId, pg_sys::AccessShareLock as i32);
        let scan = pg_sys::table_beginscan_catalog(rel, 0, std::ptr::null_mut());
        let mut found = false;
        loop {
            let tuple = pg_sys::heap_getnext(scan, pg_sys::ScanDirection::ForwardScanDirection);
            if tuple.is_null() {
                break;
            }
            // GETSTRUCT: the row's fixed part follows the tuple header
            let header = (*tuple).t_data;
            let form = (header as *const u8).add((*header).t_hoff as usize)
                as *const pg_sys::FormData_pg_database;
            let datname = std::ffi::CStr::from_ptr((*form).datname.data.as_ptr());
            if datname.to_bytes() == name.as_bytes() {
                found = true;
                break;
            }
        }
        pg_sys::table_endscan(scan);
        pg_sys::table_close(rel, pg_sys::AccessShareLock as i32);
        found
    })
}

/// Starts workers until `wanted` run (a worker that stopped is replaced); true when it started
/// any.
fn keep_running(workers: &mut Vec<DynamicBackgroundWorker>, wanted: usize) -> bool {
    workers.retain(|w| !matches!(w.pid(), Err(BackgroundWorkerStatus::Stopped)));
    let mut started = false;
    while workers.len() < wanted {
        match start_worker(workers.len()) {
            Some(w) => {
                workers.push(w);
                started = true;
            }
            None => {
                warning!(
                    "journey launcher: could not register a worker ({} of {wanted} running): raise max_worker_processes",
                    workers.len()
                );
                break;
            }
        }
    }
    started
}

/// Registers a worker (None: no free slot in max_worker_processes). A worker that cannot start
/// (a missing journey.worker_role) is stopped when the launcher next looks, and replaced.
fn start_worker(index: usize) -> Option<DynamicBackgroundWorker> {
    // SAFETY: MyProcPid is this process's pid.
    let me = unsafe { pg_sys::MyProcPid };
    let worker = BackgroundWorkerBuilder::new(&format!("journey worker {}", index + 1))
        .set_type("journey worker")
        .set_function("journey_worker_main")
        .set_library("journey")
        .enable_spi_access()
        .set_restart_time(None)
        .set_notify_pid(me)
        .load_dynamic()
        .ok()?;
    let _ = worker.wait_for_startup();
    Some(worker)
}

fn stop_all(workers: &mut Vec<DynamicBackgroundWorker>) {
    for w in workers.drain(..) {
        let _ = w.terminate().wait_for_shutdown();
    }
}
