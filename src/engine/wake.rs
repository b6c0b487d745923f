//! Waking the background worker at commit. Transactions that enroll someone or make a step due
//! call [`wake_on_commit`]; at commit the worker's latch (its address kept in shared memory,
//! set by the worker when it starts) is set, so the worker runs at once instead of at its next
//! poll. Used by the SQL API (api) and the worker, so it lives here, below both.
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::{pg_shmem_init, PgAtomic};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static WORKER_LATCH: PgAtomic<AtomicU64> = unsafe { PgAtomic::new(c"journey_worker_latch") };

thread_local! {
    static SHMEM_READY: Cell<bool> = const { Cell::new(false) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
    static PENDING_WAKE: Cell<bool> = const { Cell::new(false) };
}

/// Reserves the latch's slot in shared memory (from `_PG_init`, while preloading).
pub fn init_shared_memory() {
    pg_shmem_init!(WORKER_LATCH);
    SHMEM_READY.with(|r| r.set(true));
}

/// The worker's latch is the one to set (called by the worker when it starts).
pub fn attach_worker_latch() {
    SHMEM_READY.with(|r| r.set(true));
    // SAFETY: MyLatch is this process's latch, valid for its life.
    let latch = unsafe { pg_sys::MyLatch } as u64;
    WORKER_LATCH.get().store(latch, Ordering::Release);
}

/// No latch to set (the worker is stopping).
pub fn detach_worker_latch() {
    WORKER_LATCH.get().store(0, Ordering::Release);
}

/// Asks for the worker to be woken when the current transaction commits (`journey._wake`, in
/// api/wake.rs, calls it for the SQL functions).
pub fn wake_on_commit() {
    if !SHMEM_READY.with(|r| r.get()) {
        return;
    }
    PENDING_WAKE.with(|p| p.set(true));
    if !CALLBACK_REGISTERED.with(|r| r.replace(true)) {
        unsafe { pg_sys::RegisterXactCallback(Some(on_xact_event), std::ptr::null_mut()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    match event {
        pg_sys::XactEvent::XACT_EVENT_COMMIT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
            if PENDING_WAKE.with(|p| p.replace(false)) =>
        {
            let latch = WORKER_LATCH.get().load(Ordering::Acquire);
            if latch != 0 {
                unsafe { pg_sys::SetLatch(latch as *mut pg_sys::Latch) };
            }
        }
        pg_sys::XactEvent::XACT_EVENT_ABORT | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT => {
            PENDING_WAKE.with(|p| p.set(false));
        }
        _ => {}
    }
}
