//! The claim loop: per provider class, claims as many rows as its senders can finish well
//! within one lease, hands them to the class's pool (task rows are marked sent at once: tasks
//! are for the app to read), and records each result: sent → mark_sent with the provider's
//! id, transient → mark_failed(retry => true), permanent → mark_failed(retry => false). On
//! SIGTERM/SIGINT it claims no more, finishes and marks what it holds, and returns: nothing
//! is left leased. With --until-idle it returns once a round claims nothing and nothing is
//! in flight.
use crate::config::Config;
use crate::db::{self, Mark, Message};
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use crate::pool::{Done, Job, Pool};
use postgres::Client;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// A group of channels sent by one provider.
pub struct Class {
    pub name: &'static str,
    pub channels: Vec<&'static str>,
    /// None: marked sent at once (tasks)
    pub pool: Option<Pool>,
    /// most rows held (claimed, not yet marked) at once
    pub capacity: usize,
    held: usize,
}

impl Class {
    pub fn new(
        name: &'static str,
        channels: Vec<&'static str>,
        pool: Option<Pool>,
        capacity: usize,
    ) -> Class {
        Class {
            name,
            channels,
            pool,
            capacity: capacity.max(1),
            held: 0,
        }
    }
}

/// A claim error no retry will cure: no privilege, no such function or schema.
fn is_fatal(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        [
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::UNDEFINED_FUNCTION,
            SqlState::INVALID_SCHEMA_NAME,
        ]
        .contains(c)
    })
}

/// How many rows a provider's senders can surely send in half a lease: concurrency sends per
/// timeout, at most `rate` per second, at most a batch.
pub fn capacity(
    batch: usize,
    concurrency: usize,
    rate: f64,
    lease: Duration,
    timeout: Duration,
) -> usize {
    let half = lease.as_secs_f64() / 2.0;
    let by_senders = concurrency as f64 * (half / timeout.as_secs_f64()).floor();
    let by_rate = if rate > 0.0 {
        rate * half
    } else {
        f64::INFINITY
    };
    (batch as f64).min(by_senders).min(by_rate).max(1.0) as usize
}

pub struct Relay {
    pub config: Arc<Config>,
    pub db: Client,
    pub classes: Vec<Class>,
    pub done: Receiver<Done>,
    pub metrics: Arc<Metrics>,
    pub stop: Arc<AtomicBool>,
    /// why the relay cannot go on (the role may not claim, the extension is missing)
    pub fatal: Option<String>,
}

fn log(msg: impl AsRef<str>) {
    eprintln!("journey-relay: {}", msg.as_ref());
}

impl Relay {
    fn held(&self) -> usize {
        self.classes.iter().map(|c| c.held).sum()
    }

    /// Claims for every class with room: how many rows were claimed and whether a class was
    /// too busy to claim; None after an error.
    fn claim_round(&mut self, marks: &mut Vec<(Message, Mark)>) -> Option<(usize, bool)> {
        let mut claimed = 0;
        let mut busy = false;
        for i in 0..self.classes.len() {
            let class = &self.classes[i];
            if class.held > class.capacity / 2 {
                busy = true; // claim again when half of it is done
                continue;
            }
            let want = class.capacity - class.held;
            let before = Instant::now();
            let rows = match db::claim(&mut self.db, &class.channels, want, self.config.lease) {
                Ok(rows) => rows,
                Err(e) => {
                    self.metrics.add("errors", "claim", 1);
                    log(format!("claim failed: {}", db::describe(&e)));
                    if is_fatal(&e) {
                        // nothing will change by trying again: finish what is held and stop
                        self.fatal = Some(format!(
                            "{}; is the role granted journey.grant_role(role, 'relay')?",
                            db::describe(&e)
                        ));
                        self.stop.store(true, Ordering::Relaxed);
                    }
                    return None;
                }
            };
            let lease_end = before + self.config.lease;
            claimed += rows.len();
            let class = &mut self.classes[i];
            for message in rows {
                self.metrics.add("claimed", &message.channel, 1);
                match &class.pool {
                    Some(pool) => {
                        class.held += 1;
                        self.metrics.in_flight(1);
                        pool.submit(Job { message, lease_end });
                    }
                    None => marks.push((message, Mark::Sent(None))),
                }
            }
        }
        Some((claimed, busy))
    }

    /// Collects finished sends: waits up to `wait` for the first one.
    fn collect(&mut self, wait: Duration, marks: &mut Vec<(Message, Mark)>) {
        let mut next = if wait.is_zero() {
            self.done.try_recv().ok()
        } else {
            self.done.recv_timeout(wait).ok()
        };
        while let Some(Done { message, outcome }) = next {
            if let Some(c) = self
                .classes
                .iter_mut()
                .find(|c| c.channels.contains(&message.channel.as_str()))
            {
                c.held -= 1;
            }
            self.metrics.in_flight(-1);
            let mark = match outcome {
                Outcome::Sent(id) => Mark::Sent(id),
                Outcome::Transient { error, .. } => Mark::Failed { error, retry: true },
                Outcome::Permanent(error) => Mark::Failed {
                    error,
                    retry: false,
                },
            };
            marks.push((message, mark));
            next = self.done.try_recv().ok();
        }
    }

    /// Records results, in one transaction when it can; what could not be recorded stays.
    fn record(&mut self, marks: &mut Vec<(Message, Mark)>) {
        if marks.is_empty() {
            return;
        }
        let all = std::mem::take(marks);
        let together = (|| -> Result<Vec<bool>, postgres::Error> {
            let mut tx = self.db.transaction()?;
            let counted = all
                .iter()
                .map(|(m, mark)| db::mark(&mut tx, m.id, &m.lease_token, mark))
                .collect::<Result<Vec<_>, _>>()?;
            tx.commit()?;
            Ok(counted)
        })();
        let counted: Vec<Option<bool>> = match together {
            Ok(c) => c.into_iter().map(Some).collect(),
            // one by one: a row deleted meanwhile (an error) must not hold back the others
            Err(_) => all
                .iter()
                .map(
                    |(m, mark)| match db::mark(&mut self.db, m.id, &m.lease_token, mark) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            self.metrics.add("errors", "mark", 1);
                            log(format!(
                                "recording message {} failed: {}",
                                m.id,
                                db::describe(&e)
                            ));
                            None
                        }
                    },
                )
                .collect(),
        };
        for ((m, mark), counted) in all.into_iter().zip(counted) {
            match counted {
                None if self.db.is_closed() => marks.push((m, mark)), // again once reconnected
                None => {}
                Some(false) => {
                    self.metrics.add("lease_lost", &m.channel, 1);
                    log(format!(
                        "message {} ({}): the lease had passed to another relay",
                        m.id, m.idempotency_key
                    ));
                }
                Some(true) => {
                    let counter = match &mark {
                        Mark::Sent(_) => "sent",
                        Mark::Failed { retry: true, .. } => "retried",
                        Mark::Failed { retry: false, .. } => "failed",
                    };
                    if let Mark::Failed { error, .. } = &mark {
                        log(format!(
                            "message {} ({}) {counter}: {error}",
                            m.id, m.channel
                        ));
                    }
                    self.metrics.add(counter, &m.channel, 1);
                }
            }
        }
    }

    /// Connects again; false when stopping and the database stayed away for 10 s (what is
    /// held stays leased until its lease ends, then another relay sends it again).
    fn reconnect(&mut self) -> bool {
        let mut tries = 0;
        loop {
            match db::connect(&self.config.database_url) {
                Ok(c) => {
                    self.db = c;
                    log("reconnected to the database");
                    return true;
                }
                Err(e) => {
                    tries += 1;
                    log(format!("cannot reconnect: {}", db::describe(&e)));
                    if self.stop.load(Ordering::Relaxed) && tries >= 10 {
                        log("stopping without the database: rows held stay leased until their lease ends");
                        return false;
                    }
                    thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }

    /// Runs until stopped (or idle with --until-idle); finishes what it holds first. The error
    /// that stopped it, if one did.
    pub fn run(mut self) -> Option<String> {
        let mut marks: Vec<(Message, Mark)> = vec![];
        let mut next_progress = self.config.progress_interval.map(|p| Instant::now() + p);
        loop {
            let stopping = self.stop.load(Ordering::Relaxed);
            let round = if stopping {
                Some((0, false))
            } else {
                self.claim_round(&mut marks)
            };
            // idle: every class asked and none had a row
            let idle = round == Some((0, false));
            let wait = match round {
                Some((n, _)) if n > 0 => Duration::ZERO,
                _ if self.held() > 0 => self.config.poll_interval.min(Duration::from_millis(200)),
                _ => Duration::ZERO,
            };
            self.collect(wait, &mut marks);
            self.record(&mut marks);
            if self.db.is_closed() && !self.reconnect() {
                break;
            }
            if let (Some(at), Some(p)) = (next_progress, self.config.progress_interval) {
                if Instant::now() >= at {
                    log(self.metrics.progress());
                    next_progress = Some(Instant::now() + p);
                }
            }
            if self.held() == 0 && marks.is_empty() {
                if stopping {
                    log("stopped: nothing left leased");
                    break;
                }
                if idle {
                    if self.config.until_idle {
                        log("idle: nothing to claim");
                        break;
                    }
                    self.sleep(self.config.poll_interval);
                } else if round.is_none() {
                    self.sleep(self.config.poll_interval);
                }
            }
        }
        log(self.metrics.progress());
        for c in self.classes.drain(..) {
            if let Some(p) = c.pool {
                p.close();
            }
        }
        self.fatal.take()
    }

    /// Sleeps, waking early on a stop.
    fn sleep(&self, d: Duration) {
        let end = Instant::now() + d;
        while !self.stop.load(Ordering::Relaxed) && Instant::now() < end {
            thread::sleep((end - Instant::now()).min(Duration::from_millis(50)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_fits_half_a_lease() {
        let s = Duration::from_secs;
        // 8 senders, 10 s per send at worst, 150 s: 15 rounds = 120, batch 100 wins
        assert_eq!(capacity(100, 8, 0.0, s(300), s(10)), 100);
        assert_eq!(capacity(1000, 8, 0.0, s(300), s(10)), 120);
        // 2 senders, 1 s timeout, a 6 s lease: 3 rounds of 2
        assert_eq!(capacity(100, 2, 0.0, s(6), s(1)), 6);
        // 2 per second for 150 s
        assert_eq!(capacity(1000, 8, 2.0, s(300), s(1)), 300);
        assert_eq!(
            capacity(100, 1, 0.001, s(3), s(1)),
            1,
            "always at least one"
        );
    }
}
