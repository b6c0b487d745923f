//! Sender threads: one pool per provider (SMTP, the SMS gateway, webhooks), as many threads
//! as its concurrency, one token bucket. A message is sent only while its lease leaves time
//! for the send to end (timeout + 1 s): otherwise it is given back unsent. A 429 pauses the
//! provider for its Retry-After and the message is tried again in place while its lease
//! allows.
use crate::bucket::Bucket;
use crate::db::Message;
use crate::email::Smtp;
use crate::http::{Gateway, Webhook};
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub enum Provider {
    Smtp(Smtp),
    Gateway(Gateway),
    Webhook(Webhook),
}

impl Provider {
    fn send(&self, m: &Message) -> Outcome {
        match self {
            Provider::Smtp(p) => p.send(m),
            Provider::Gateway(p) => p.send(m),
            Provider::Webhook(p) => p.send(m),
        }
    }
}

pub struct Job {
    pub message: Message,
    /// when the lease ends (measured from before the claim: never later than the real one)
    pub lease_end: Instant,
}

pub struct Done {
    pub message: Message,
    pub outcome: Outcome,
}

/// Tries at one message within one lease (the first and those after 429s).
const TRIES: usize = 3;
/// Time kept between the end of a send and the end of its lease.
const MARGIN: Duration = Duration::from_secs(1);

pub struct Pool {
    jobs: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

struct Worker {
    provider: Arc<Provider>,
    bucket: Arc<Bucket>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl Worker {
    /// Sends one message: waits for a token, sends, retries after a 429 while the lease allows.
    fn attempt(&self, job: &Job) -> Outcome {
        let unsent = || {
            Outcome::transient(
                "not sent: its lease would end before a send could (rate limit or slow provider)",
            )
        };
        let Some(latest) = job.lease_end.checked_sub(self.timeout + MARGIN) else {
            return unsent();
        };
        for n in 1..=TRIES {
            if !self.bucket.acquire(latest) || Instant::now() > latest {
                return unsent();
            }
            match self.provider.send(&job.message) {
                Outcome::Transient {
                    error,
                    retry_after: Some(wait),
                } => {
                    self.metrics.add("rate_limited", &job.message.channel, 1);
                    self.bucket.slow_down(wait);
                    if n == TRIES || Instant::now() + wait > latest {
                        return Outcome::Transient {
                            error,
                            retry_after: Some(wait),
                        };
                    }
                }
                sent @ Outcome::Sent(_) => {
                    self.bucket.succeeded();
                    return sent;
                }
                other => return other,
            }
        }
        unreachable!("the last try returns")
    }

    fn run(self, jobs: Arc<Mutex<Receiver<Job>>>, done: Sender<Done>) {
        loop {
            let job = match jobs.lock().unwrap().recv() {
                Ok(job) => job,
                Err(_) => return, // the pool is closing
            };
            let outcome = self.attempt(&job);
            if done
                .send(Done {
                    message: job.message,
                    outcome,
                })
                .is_err()
            {
                return;
            }
        }
    }
}

impl Pool {
    pub fn start(
        name: &str,
        provider: Provider,
        concurrency: usize,
        rate: f64,
        timeout: Duration,
        done: Sender<Done>,
        metrics: Arc<Metrics>,
    ) -> Pool {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let provider = Arc::new(provider);
        let bucket = Arc::new(Bucket::new(rate));
        let threads = (0..concurrency)
            .map(|i| {
                let worker = Worker {
                    provider: provider.clone(),
                    bucket: bucket.clone(),
                    timeout,
                    metrics: metrics.clone(),
                };
                let (rx, done) = (rx.clone(), done.clone());
                thread::Builder::new()
                    .name(format!("{name}-{i}"))
                    .spawn(move || worker.run(rx, done))
                    .expect("a sender thread starts")
            })
            .collect();
        Pool {
            jobs: Some(tx),
            threads,
        }
    }

    pub fn submit(&self, job: Job) {
        if let Some(tx) = &self.jobs {
            tx.send(job)
                .expect("sender threads outlive the pool's sender");
        }
    }

    /// Lets the threads finish what they hold and waits for them.
    pub fn close(mut self) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
