//! The one error enum. Every variant names the flow, node or field it is about and maps to a
//! SQLSTATE (never XX000 for bad input), a message, an optional detail and a hint.
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum JourneyError {
    #[error("{argument} must not be NULL")]
    NullArgument {
        argument: &'static str,
        hint: &'static str,
    },

    #[error("invalid {argument}: {reason}")]
    InvalidArgument {
        argument: String,
        reason: String,
        hint: String,
    },

    #[error("flow \"{0}\" does not exist")]
    UnknownFlow(String),

    #[error("flow \"{0}\" already exists")]
    DuplicateFlow(String),

    #[error("contact {0} does not exist")]
    UnknownContact(i64),

    #[error("definition of flow \"{flow}\" is malformed: {problem}")]
    Malformed { flow: String, problem: String },

    #[error("flow \"{flow}\" is incomplete: {} problem(s)", problems.len())]
    Incomplete {
        flow: String,
        problems: Vec<(String, String)>,
    },

    #[error("flow \"{flow}\" is {status}: cannot {action}")]
    WrongStatus {
        flow: String,
        status: String,
        action: &'static str,
    },

    #[error("flow \"{flow}\", node \"{node}\": {message}")]
    Render {
        flow: String,
        node: String,
        message: String,
    },

    #[error("flow \"{flow}\", node \"{node}\": template \"{template}\" does not exist")]
    MissingTemplate {
        flow: String,
        node: String,
        template: String,
    },

    #[error("flow \"{flow}\": {message}")]
    Engine { flow: String, message: String },

    /// A Postgres error raised while a node ran (inside a subtransaction); `transient` ones
    /// (lock timeouts, deadlocks, serialization failures) are retried with backoff.
    #[error("flow \"{flow}\", node \"{node}\": {message}")]
    Step {
        flow: String,
        node: String,
        message: String,
        transient: bool,
    },

    /// A statement writing a batch's results back failed (the batch is then run again one
    /// enrollment at a time).
    #[error("writing journey.{table}: {message}")]
    BatchWrite {
        table: &'static str,
        message: String,
    },

    #[error("SPI error: {0}")]
    Spi(#[from] pgrx::spi::Error),
}

pub type Result<T> = std::result::Result<T, JourneyError>;

impl JourneyError {
    pub fn sqlstate(&self) -> PgSqlErrorCode {
        use JourneyError::*;
        match self {
            NullArgument { .. } => PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            InvalidArgument { .. } => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            UnknownFlow(_) => PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            DuplicateFlow(_) => PgSqlErrorCode::ERRCODE_DUPLICATE_OBJECT,
            UnknownContact(_) => PgSqlErrorCode::ERRCODE_FOREIGN_KEY_VIOLATION,
            Malformed { .. } => PgSqlErrorCode::ERRCODE_INVALID_JSON_TEXT,
            Incomplete { .. } => PgSqlErrorCode::ERRCODE_INVALID_OBJECT_DEFINITION,
            WrongStatus { .. } => PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            Render { .. }
            | MissingTemplate { .. }
            | Engine { .. }
            | Step { .. }
            | BatchWrite { .. } => PgSqlErrorCode::ERRCODE_DATA_EXCEPTION,
            Spi(_) => PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
        }
    }

    pub fn detail(&self) -> Option<String> {
        match self {
            JourneyError::Incomplete { problems, .. } => Some(
                problems
                    .iter()
                    .map(|(node, problem)| format!("{node}: {problem}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            _ => None,
        }
    }

    pub fn hint(&self) -> String {
        use JourneyError::*;
        match self {
            NullArgument { hint, .. } => hint.to_string(),
            InvalidArgument { hint, .. } => hint.clone(),
            UnknownFlow(_) => "SELECT name FROM journey.flows lists the flows; create one with journey.create_flow(name, definition).".into(),
            DuplicateFlow(_) => "Pick another name, or save a new version with journey.update_flow(name, definition).".into(),
            UnknownContact(_) => "Create the contact with journey.upsert_contact(data) first.".into(),
            Malformed { .. } => "A definition is a JSON object {\"triggers\": [...], \"start\": \"node\", \"nodes\": {\"node\": {\"type\": ...}}}.".into(),
            Incomplete { flow, .. } => format!("SELECT * FROM journey.validate_flow('{flow}') lists every problem; fix them with journey.update_flow."),
            WrongStatus { action: "delete", .. } => "Only draft and archived flows can be deleted: archive it first with journey.archive_flow(name).".into(),
            WrongStatus { .. } => "SELECT name, status FROM journey.flows shows the status; activate_flow resumes a draft or paused flow.".into(),
            Render { .. } => "Check the node's Liquid template and the contact's data it uses (journey.timeline shows the failed step).".into(),
            MissingTemplate { .. } => "Create the template in journey.templates, or change the node with journey.update_flow.".into(),
            Engine { .. } | Step { .. } => "See journey.timeline for the enrollment.".into(),
            BatchWrite { table, .. } => format!("A constraint or trigger on journey.{table} refused the batch's rows; see the server log."),
            Spi(_) => "This is a bug in journey; please report it with the statement that caused it.".into(),
        }
    }

    /// Raises the error in Postgres. Never returns.
    pub fn report(self) -> ! {
        let mut report =
            ErrorReport::new(self.sqlstate(), self.to_string(), "journey").set_hint(self.hint());
        if let Some(detail) = self.detail() {
            report = report.set_detail(detail);
        }
        report.report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

/// Unwraps a result, raising the error in Postgres.
pub trait OrReport<T> {
    fn or_report(self) -> T;
}

impl<T> OrReport<T> for Result<T> {
    fn or_report(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => e.report(),
        }
    }
}

/// Turns a NULL SQL argument into an error naming it.
pub fn required<T>(value: Option<T>, argument: &'static str, hint: &'static str) -> Result<T> {
    value.ok_or(JourneyError::NullArgument { argument, hint })
}
