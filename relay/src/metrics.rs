//! Counters per channel (claimed, sent, failed, retried, …) and per callback kind, served as
//! Prometheus text on /metrics and summed into the progress line.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

/// The counters and what each counts.
pub const COUNTERS: [(&str, &str, &str); 9] = [
    ("claimed", "channel", "Outbox rows claimed"),
    ("sent", "channel", "Messages sent and marked sent"),
    (
        "failed",
        "channel",
        "Messages failed for good (mark_failed retry => false)",
    ),
    (
        "retried",
        "channel",
        "Transient failures given back for a later try (mark_failed retry => true)",
    ),
    (
        "lease_lost",
        "channel",
        "Results that no longer counted: the lease had passed to another relay",
    ),
    (
        "rate_limited",
        "channel",
        "429 answers (the provider's rate was lowered)",
    ),
    ("callbacks", "kind", "Callbacks received"),
    (
        "reports",
        "kind",
        "Callbacks recorded by journey.report or journey.receive_sms",
    ),
    ("errors", "kind", "Database errors"),
];

#[derive(Default)]
pub struct Metrics {
    counts: Mutex<BTreeMap<(&'static str, String), u64>>,
    in_flight: AtomicI64,
}

impl Metrics {
    pub fn add(&self, counter: &'static str, label: &str, n: u64) {
        debug_assert!(COUNTERS.iter().any(|c| c.0 == counter), "{counter}");
        *self
            .counts
            .lock()
            .unwrap()
            .entry((counter, label.to_string()))
            .or_default() += n;
    }

    pub fn in_flight(&self, delta: i64) {
        self.in_flight.fetch_add(delta, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub fn get(&self, counter: &'static str, label: &str) -> u64 {
        let counts = self.counts.lock().unwrap();
        counts
            .get(&(counter, label.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Prometheus text exposition format.
    pub fn render(&self) -> String {
        let counts = self.counts.lock().unwrap();
        let mut out = String::new();
        for (name, label, help) in COUNTERS {
            out.push_str(&format!("# HELP journey_relay_{name}_total {help}.\n# TYPE journey_relay_{name}_total counter\n"));
            for ((n, value), count) in counts.iter() {
                if *n == name {
                    out.push_str(&format!(
                        "journey_relay_{name}_total{{{label}=\"{}\"}} {count}\n",
                        escape(value)
                    ));
                }
            }
        }
        out.push_str("# HELP journey_relay_in_flight Messages claimed and not yet marked.\n# TYPE journey_relay_in_flight gauge\n");
        out.push_str(&format!(
            "journey_relay_in_flight {}\n",
            self.in_flight.load(Ordering::Relaxed)
        ));
        out
    }

    /// "claimed email=3 sms=2 | sent … | failed … | retried … | in flight N" (counts so far).
    pub fn progress(&self) -> String {
        let counts = self.counts.lock().unwrap();
        let mut parts = vec![];
        for name in ["claimed", "sent", "failed", "retried"] {
            let per: Vec<String> = counts
                .iter()
                .filter(|((n, _), _)| *n == name)
                .map(|((_, ch), c)| format!("{ch}={c}"))
                .collect();
            parts.push(format!(
                "{name} {}",
                if per.is_empty() {
                    "0".into()
                } else {
                    per.join(" ")
                }
            ));
        }
        let cb: u64 = counts
            .iter()
            .filter(|((n, _), _)| *n == "callbacks")
            .map(|(_, c)| c)
            .sum();
        parts.push(format!("callbacks {cb}"));
        parts.push(format!(
            "in flight {}",
            self.in_flight.load(Ordering::Relaxed)
        ));
        parts.join(" | ")
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_and_progress() {
        let m = Metrics::default();
        m.add("claimed", "sms", 3);
        m.add("sent", "sms", 2);
        m.add("retried", "sms", 1);
        m.add("callbacks", "twilio", 1);
        assert_eq!(m.get("claimed", "sms"), 3);
        m.in_flight(3);
        m.in_flight(-3);
        let text = m.render();
        assert!(text.contains("# TYPE journey_relay_sent_total counter\njourney_relay_sent_total{channel=\"sms\"} 2\n"), "{text}");
        assert!(text.contains("journey_relay_in_flight 0\n"));
        assert_eq!(
            m.progress(),
            "claimed sms=3 | sent sms=2 | failed 0 | retried sms=1 | callbacks 1 | in flight 0"
        );
        assert_eq!(escape("a\"b"), "a\\\"b");
    }
}
