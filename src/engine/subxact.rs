//! Subtransactions for the parts of a batch that can raise a Postgres ERROR (writes that take row
//! locks or check constraints): the error rolls back only that part, and the batch goes on. The
//! pattern of PL/Python's `PLy_spi_subtransaction_begin/abort`.
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

/// An ERROR raised inside [`run`].
pub struct Caught {
    pub code: PgSqlErrorCode,
    pub message: String,
}

impl From<pg_sys::panic::CaughtError> for Caught {
    fn from(e: pg_sys::panic::CaughtError) -> Caught {
        match e {
            pg_sys::panic::CaughtError::PostgresError(r)
            | pg_sys::panic::CaughtError::ErrorReport(r)
            | pg_sys::panic::CaughtError::RustPanic { ereport: r, .. } => Caught {
                code: r.sql_error_code(),
                message: r.message().to_string(),
            },
        }
    }
}

impl Caught {
    /// A cancel (statement_timeout, pg_cancel_backend) or shutdown: never swallowed by a
    /// subtransaction, it ends the statement or the worker's batch.
    pub fn is_interrupt(&self) -> bool {
        use PgSqlErrorCode::*;
        matches!(
            self.code,
            ERRCODE_QUERY_CANCELED | ERRCODE_ADMIN_SHUTDOWN | ERRCODE_CRASH_SHUTDOWN
        )
    }

    /// Raises the error again.
    pub fn raise(self) -> ! {
        pgrx::pg_sys::panic::ErrorReport::new(self.code, self.message, "journey")
            .report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }

    /// Errors that go away when tried again later: lock waits, deadlocks, serialization
    /// failures, cancelled statements (timeouts), lack of resources.
    pub fn is_transient(&self) -> bool {
        use PgSqlErrorCode::*;
        matches!(
            self.code,
            ERRCODE_LOCK_NOT_AVAILABLE
                | ERRCODE_T_R_DEADLOCK_DETECTED
                | ERRCODE_T_R_SERIALIZATION_FAILURE
                | ERRCODE_QUERY_CANCELED
                | ERRCODE_TOO_MANY_CONNECTIONS
                | ERRCODE_OUT_OF_MEMORY
        )
    }
}

/// Runs `body` in a subtransaction: released when it returns Ok, rolled back when it returns
/// an error or raises (the error is returned either way).
pub fn attempt<R>(
    body: impl FnOnce() -> crate::error::Result<R> + std::panic::UnwindSafe,
) -> Result<R, Caught> {
    run(|| {
        body().unwrap_or_else(|e| {
            // an error result rolls back like an ERROR: raise it inside the subtransaction
            let mut report =
                pgrx::pg_sys::panic::ErrorReport::new(e.sqlstate(), e.to_string(), "journey");
            if let Some(detail) = e.detail() {
                report = report.set_detail(detail);
            }
            report.report(PgLogLevel::ERROR);
            unreachable!("ERROR does not return")
        })
    })
}

/// Runs `body`, catching an ERROR it raises (or a Rust panic) as a [`Caught`]. The caller
/// rolls back what the error interrupted: a subtransaction ([`run`]), the worker's transaction.
pub fn catch<R>(body: impl FnOnce() -> R + std::panic::UnwindSafe) -> Result<R, Caught> {
    PgTryBuilder::new(|| Ok(body()))
        .catch_others(|e| Err(Caught::from(e)))
        .execute()
}

/// Runs `body` in a subtransaction: released when it returns, rolled back when it raises. An
/// interrupt (cancel, shutdown) is raised again after the rollback, never returned.
pub fn run<R>(body: impl FnOnce() -> R + std::panic::UnwindSafe) -> Result<R, Caught> {
    within(body, true)
}

/// Runs `body` in a subtransaction that is always rolled back: what it wrote is gone, what it
/// returns stays (`journey.simulate`). Errors as [`run`].
pub fn rolled_back<R>(body: impl FnOnce() -> R + std::panic::UnwindSafe) -> Result<R, Caught> {
    within(body, false)
}

fn within<R>(body: impl FnOnce() -> R + std::panic::UnwindSafe, keep: bool) -> Result<R, Caught> {
    // SAFETY: the sequence of PL/Python's subtransactions: remember the memory context and
    // resource owner, begin, and restore both after release or rollback.
    let (context, owner) = unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        (context, owner)
    };
    let result = catch(body);
    unsafe {
        if result.is_ok() && keep {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::MemoryContextSwitchTo(context);
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
    }
    match result {
        Err(caught) if caught.is_interrupt() => caught.raise(),
        other => other,
    }
}
