//! Running a batch: claim due enrollments (`claim`), run each one's nodes until it waits,
//! completes, exits or fails (`nodes`, dispatched here on the node type), and write the results
//! back set-based (`batch`). A failing enrollment (render error, missing template, unreadable
//! data) is marked failed with its error, or retried with backoff when the error is transient;
//! the rest of the batch goes on. The batch runs in a subtransaction: should anything in it
//! raise (a Postgres error outside a node's own subtransaction, a Rust panic), it is rolled
//! back and run again one enrollment at a time, each in a subtransaction of its own, so a
//! poisoned enrollment fails alone and never holds up the others. One enrollment runs at most
//! STEP_TIME and MAX_NODES_PER_STEP nodes per step and never enters a node twice in one step; a
//! batch stops taking enrollments after BATCH_TIME.
use super::batch::{Batch, Step, Update};
use super::claim::{claim, Enrollment, Settings};
use super::nodes::{self, Context, Outcome, Route};
use super::quota::{self, Quota};
use super::{cache, clock, schedule, subxact};
use crate::error::{JourneyError, Result};
use crate::model::{Edge, FlowDef, Node, NodeKind};
use chrono::{DateTime, Utc};
use pgrx::datum::TimestampWithTimeZone;

/// Most nodes one enrollment runs in one go (validation forbids cycles without a delay).
const MAX_NODES_PER_STEP: usize = 100;

/// Longest one enrollment may run in one step (all its nodes, renders included) before it fails.
const STEP_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Longest a batch takes new enrollments: past it, the rest of the claimed ones are left due
/// for the next batch (so hostile templates slow a batch down by at most this much).
const BATCH_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs one batch; returns the number of enrollments advanced. See the module comment for
/// what happens when the batch raises.
pub fn run_batch(max: i32, at: TimestampWithTimeZone) -> Result<i32> {
    let now = clock::to_chrono(at).ok_or_else(|| JourneyError::Engine {
        flow: "(run)".into(),
        message: "the time to run at is infinite or out of range".into(),
    })?;
    match subxact::attempt(|| run_claimed(max, at, now, None, false)) {
        Ok(n) => Ok(n),
        Err(caught) => {
            pgrx::log!(
                "journey: a batch raised \"{}\"; running its enrollments one at a time",
                caught.message
            );
            run_claimed(max, at, now, None, true)
        }
    }
}

/// Runs the enrollment `id` of `contact` and its fork branches as of `at`, those due then
/// (`journey.simulate`): one at a time, so one that raises fails alone. Returns how many ran.
pub fn run_one(id: i64, contact: i64, at: TimestampWithTimeZone) -> Result<i32> {
    let now = clock::to_chrono(at).ok_or_else(|| JourneyError::Engine {
        flow: "(run)".into(),
        message: "the time to run at is infinite or out of range".into(),
    })?;
    run_claimed(100, at, now, Some((id, contact)), true)
}

/// Claims up to `max` due enrollments and runs them: as one batch, or `one_by_one`, each in
/// its own subtransaction (an enrollment that raises is rolled back and marked failed).
fn run_claimed(
    max: i32,
    at: TimestampWithTimeZone,
    now: DateTime<Utc>,
    only: Option<(i64, i64)>,
    one_by_one: bool,
) -> Result<i32> {
    let (due, settings) = claim(max, at, only)?;
    let started = std::time::Instant::now();
    // enrollments left unrun when the batch ran out of time are still due: the next batch
    // claims them again
    let in_time = || started.elapsed() < BATCH_TIME;
    let mut ran = 0;
    // the quotas' credit, carried from one enrollment's batch to the next when one by one
    let mut quota = Quota::new(settings.quotas);
    if !one_by_one {
        let mut batch = Batch {
            quota,
            ..Batch::default()
        };
        for e in due.iter().take_while(|_| in_time()) {
            step(e, &settings, now, &mut batch);
            ran += 1;
        }
        batch.finish(at)?;
        return Ok(ran);
    }
    for e in due.iter().take_while(|_| in_time()) {
        ran += 1;
        let mut batch = Batch {
            quota: quota.carried(),
            ..Batch::default()
        };
        let done = subxact::attempt(std::panic::AssertUnwindSafe(|| {
            step(e, &settings, now, &mut batch);
            batch.finish(at)
        }));
        // a rolled-back enrollment took no credit (nor, if it took the settings lock, the lock)
        if done.is_ok() {
            quota = batch.quota.carried();
        }
        if let Err(caught) = done {
            let mut batch = Batch::default();
            let failure = Failure {
                node: e.node.clone(),
                seq: e.seq,
                error: JourneyError::Step {
                    flow: e.flow_name.clone(),
                    node: e.node.clone(),
                    message: caught.message,
                    transient: false,
                },
            };
            fail(&mut batch, e, failure, now, &settings);
            batch.finish(at)?;
        }
    }
    Ok(ran)
}

/// Where an enrollment failed: the node it was at, its `seq` before it entered that node (a
/// retry enters it again with the same message key), and why.
struct Failure {
    node: String,
    seq: i32,
    error: JourneyError,
}

/// Runs one enrollment into the batch: its nodes, or its failure.
fn step(e: &Enrollment, settings: &Settings, now: DateTime<Utc>, batch: &mut Batch) {
    let at_start = |error| Failure {
        node: e.node.clone(),
        seq: e.seq,
        error,
    };
    // a contact that is gone, data that cannot be read or a version that cannot be loaded
    // fails its enrollment, not the batch
    let advanced = if let Some(why) = &e.unreadable {
        Err(at_start(JourneyError::Engine {
            flow: e.flow_name.clone(),
            message: why.clone(),
        }))
    } else if !e.contact_found {
        Err(at_start(JourneyError::UnknownContact(e.contact_id)))
    } else {
        match cache::definition(e.flow_id, e.version) {
            Ok(def) => advance(e, &def, settings, now, batch),
            Err(error) => Err(at_start(error)),
        }
    };
    if let Err(failure) = advanced {
        fail(batch, e, failure, now, settings);
    }
}

/// Runs one enrollment's nodes from its current node until it waits, completes or exits.
fn advance(
    e: &Enrollment,
    def: &FlowDef,
    settings: &Settings,
    now: DateTime<Utc>,
    batch: &mut Batch,
) -> std::result::Result<(), Failure> {
    let failure = |(node, seq): (&str, i32), error| Failure {
        node: node.to_string(),
        seq,
        error,
    };
    let mut current = e.node.as_str();
    let mut seq = e.seq;
    // where a failure is recorded: the node last entered, and the seq before it
    let mut at = (current, seq);
    let started = std::time::Instant::now();
    let mut entered: Vec<&str> = Vec::new();
    for _ in 0..MAX_NODES_PER_STEP {
        if started.elapsed() > STEP_TIME {
            let message = format!(
                "its nodes ran longer than {} ms in one step",
                STEP_TIME.as_millis()
            );
            return Err(failure(at, engine_error(e, message)));
        }
        at = (current, seq);
        let node = enter(e, def, current, &entered).map_err(|err| failure(at, err))?;
        entered.push(current);
        let mut cx = Context {
            settings,
            now,
            seq: seq + 1,
            templates: &mut batch.templates,
            sender_names: &mut batch.sender_names,
            lock_timeout: &mut batch.lock_timeout,
            messages: &batch.messages,
            interrupts: nodes::postgres_interrupts,
            opted_out: crate::engine::store::opted_out_emails,
        };
        let outcome = run_node(e, node, &mut cx).map_err(|err| failure(at, err))?;
        let lock_timeout = &mut batch.lock_timeout;
        let outcome = batch
            .quota
            .charge(e, outcome, now, || {
                // the settings lock is waited for with the session's own lock_timeout
                lock_timeout.restore()?;
                quota::lock_settings(e, &node.id)
            })
            .map_err(|err| failure(at, err))?;
        // a held node is entered again with the same seq (and so the same message key)
        if !matches!(outcome, Outcome::Quota(_)) {
            seq += 1;
        }
        let Some((edge, from)) = record(batch, e, current, seq, outcome, node.next.as_ref()) else {
            return Ok(());
        };
        let from = from.unwrap_or(now);
        if edge.is_immediate() && from <= now {
            current = &edge.to;
            continue;
        }
        let due = schedule::edge_due(from, edge, e.zone)
            .ok_or_else(|| failure(at, nodes::out_of_range(e, current)))?;
        let update = Update::of(e, "active", edge.to.clone(), Some(due), seq);
        batch.updates.push(update);
        return Ok(());
    }
    let message = format!("more than {MAX_NODES_PER_STEP} nodes without a delay");
    Err(failure(at, engine_error(e, message)))
}

fn engine_error(e: &Enrollment, message: String) -> JourneyError {
    JourneyError::Engine {
        flow: e.flow_name.clone(),
        message,
    }
}

/// The node `id` the enrollment enters next, unless it entered it already in this step (a
/// loop) or the version has no such node.
fn enter<'d>(e: &Enrollment, def: &'d FlowDef, id: &str, entered: &[&str]) -> Result<&'d Node> {
    // a node reached twice without time passing is a loop (validation refuses them; a
    // version written past validation, or older than the rule, must not send round it)
    if entered.contains(&id) {
        let message =
            format!("node \"{id}\" was reached twice in one step: the flow loops without a delay");
        return Err(engine_error(e, message));
    }
    def.nodes.get(id).ok_or_else(|| {
        let message = format!("node \"{id}\" does not exist in version {}", e.version);
        engine_error(e, message)
    })
}

/// Runs `node` (the dispatch on its type).
fn run_node<'d>(e: &Enrollment, node: &'d Node, cx: &mut Context) -> Result<Outcome<'d>> {
    use NodeKind::*;
    match &node.kind {
        SendSms { .. }
        | SendEmail { .. }
        | SendWhatsapp { .. }
        | NotifyAdmin { .. }
        | CreateTask { .. }
        | Webhook { .. } => nodes::send::run(e, node, cx),
        Wait { .. } => nodes::wait::run(e, node, cx),
        Condition { .. } | Split { .. } => nodes::branch::run(e, node, cx),
        Check { .. } | WaitEvent { .. } => nodes::check::run(e, node, cx),
        UpdateContact { .. } => nodes::contact::run(e, node, cx),
        UpdateRecord { .. } | CreateRecord { .. } => nodes::record::run(e, node, cx),
        Fork { .. } => nodes::fork::run(e, node, cx),
        Goal { .. } | Exit => nodes::goal::run(e, node, cx),
    }
}

/// Records `outcome` of `e` at `node` (`seq`: the enrollment's seq after the outcome): its
/// step, its message, and the enrollment's new state. Returns the edge to follow (and the time
/// it is followed from, if not now) instead of a new state when the outcome follows one.
fn record<'d>(
    batch: &mut Batch,
    e: &Enrollment,
    node: &str,
    seq: i32,
    mut outcome: Outcome<'d>,
    next: Option<&'d Edge>,
) -> Option<(&'d Edge, Option<DateTime<Utc>>)> {
    batch.steps.push(Step::new(e, node, outcome.text()));
    if let Outcome::Forked { spawns, .. } = &mut outcome {
        batch.spawns.append(spawns);
    }
    let (message, route) = outcome.into_route(next);
    batch.messages.extend(message);
    let update = match route {
        Route::Follow {
            edge: Some(edge),
            from,
        } => return Some((edge, from)),
        Route::Follow { edge: None, .. } => Update::of(e, "completed", node.into(), None, seq),
        Route::End(status) => Update::of(e, status, node.into(), None, seq),
        Route::Park { until, waiting } => Update {
            waiting: Some(waiting),
            ..Update::of(e, "active", node.into(), Some(until), seq)
        },
        Route::Retry {
            error,
            until,
            attempts,
        } => Update {
            last_error: Some(error),
            attempts,
            ..Update::of(e, "active", node.into(), Some(until), seq)
        },
        Route::Fail { error, attempts } => Update {
            last_error: Some(error),
            attempts,
            ..Update::of(e, "failed", node.into(), None, seq)
        },
        Route::Hold { until } => Update::of(e, "active", node.into(), Some(until), seq),
    };
    batch.updates.push(update);
    None
}

/// The retry policy: records that `e` failed; a transient error is retried with backoff (the
/// enrollment stays at the node) until settings.max_attempts failures in a row.
fn fail(
    batch: &mut Batch,
    e: &Enrollment,
    failure: Failure,
    now: DateTime<Utc>,
    settings: &Settings,
) {
    let error = failure.error.to_string().replace('\0', "");
    let transient = matches!(
        failure.error,
        JourneyError::Step {
            transient: true,
            ..
        }
    );
    let outcome = if transient && e.attempts + 1 < settings.max_attempts {
        Outcome::Retry {
            error,
            until: now + retry_backoff(e.attempts),
            attempts: e.attempts + 1,
        }
    } else {
        Outcome::Failed {
            error,
            attempts: e.attempts + i32::from(transient),
        }
    };
    let follows = record(batch, e, &failure.node, failure.seq, outcome, None);
    debug_assert!(follows.is_none(), "a failure follows no edge");
}

/// Wait before retrying a transient failure: 2^attempts seconds (1 s, 2 s, 4 s, ...), at most
/// an hour.
fn retry_backoff(attempts: i32) -> chrono::Duration {
    chrono::Duration::seconds(1i64 << attempts.clamp(0, 12)).min(chrono::Duration::hours(1))
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn retries_back_off_to_an_hour() {
        let secs = |n| retry_backoff(n).num_seconds();
        assert_eq!([secs(0), secs(1), secs(2), secs(5)], [1, 2, 4, 32]);
        assert_eq!(secs(12), 3600);
        assert_eq!(secs(100), 3600);
        assert_eq!(secs(-3), 1);
    }
}
