//! A token bucket per provider: `rate` sends per second with a burst of one second's worth.
//! A 429 pauses the provider until its Retry-After and halves the rate; each later success
//! wins back 5 % of it, up to the configured rate. Rate 0 = unlimited (a 429 still pauses).
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

pub struct Bucket {
    rate: f64,
    state: Mutex<State>,
}

struct State {
    tokens: f64,
    last: Instant,
    current: f64,
    paused_until: Option<Instant>,
}

impl Bucket {
    pub fn new(rate: f64) -> Bucket {
        Bucket::at(rate, Instant::now())
    }

    fn at(rate: f64, now: Instant) -> Bucket {
        Bucket {
            rate,
            state: Mutex::new(State {
                tokens: rate.max(1.0),
                last: now,
                current: rate,
                paused_until: None,
            }),
        }
    }

    /// Takes a token at `now`, or says when one will be there.
    fn take(&self, now: Instant) -> Result<(), Instant> {
        let mut s = self.state.lock().unwrap();
        if let Some(until) = s.paused_until {
            if now < until {
                return Err(until);
            }
            s.paused_until = None;
            s.last = now;
        }
        if self.rate == 0.0 {
            return Ok(());
        }
        let burst = s.current.max(1.0);
        s.tokens =
            (s.tokens + now.saturating_duration_since(s.last).as_secs_f64() * s.current).min(burst);
        s.last = now;
        if s.tokens >= 1.0 {
            s.tokens -= 1.0;
            Ok(())
        } else {
            Err(now + Duration::from_secs_f64((1.0 - s.tokens) / s.current))
        }
    }

    /// Waits for a token; false (taking none) when none comes before `latest`.
    pub fn acquire(&self, latest: Instant) -> bool {
        loop {
            let now = Instant::now();
            match self.take(now) {
                Ok(()) => return true,
                Err(at) if at > latest => return false,
                Err(at) => thread::sleep(at.saturating_duration_since(now)),
            }
        }
    }

    /// A 429: nothing is sent before `now + retry_after`, and the rate is halved.
    pub fn slow_down(&self, retry_after: Duration) {
        self.slow_down_at(Instant::now(), retry_after)
    }

    fn slow_down_at(&self, now: Instant, retry_after: Duration) {
        let mut s = self.state.lock().unwrap();
        let until = now + retry_after;
        s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
        if self.rate > 0.0 {
            s.current = (s.current / 2.0).max(self.rate / 64.0);
            s.tokens = s.tokens.min(1.0);
        }
    }

    /// A send went through: the rate recovers a little.
    pub fn succeeded(&self) {
        let mut s = self.state.lock().unwrap();
        s.current = (s.current * 1.05).min(self.rate);
    }

    /// The rate now (sends per second; 0 = unlimited).
    #[cfg(test)]
    pub fn current_rate(&self) -> f64 {
        self.state.lock().unwrap().current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_burst() {
        let t0 = Instant::now();
        let b = Bucket::at(2.0, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok(), "a burst of one second's worth");
        let next = b.take(t0).unwrap_err();
        assert_eq!(next - t0, Duration::from_millis(500));
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(t0 + Duration::from_millis(600)).is_err());
        // idle time fills the bucket only up to the burst
        let later = t0 + Duration::from_secs(60);
        assert!(b.take(later).is_ok() && b.take(later).is_ok() && b.take(later).is_err());
    }

    #[test]
    fn unlimited_never_waits_unless_paused() {
        let t0 = Instant::now();
        let b = Bucket::at(0.0, t0);
        for _ in 0..1000 {
            assert!(b.take(t0).is_ok());
        }
        b.slow_down_at(t0, Duration::from_secs(2));
        assert_eq!(
            b.take(t0 + Duration::from_secs(1)),
            Err(t0 + Duration::from_secs(2))
        );
        assert!(b.take(t0 + Duration::from_secs(2)).is_ok());
        assert_eq!(b.current_rate(), 0.0);
    }

    #[test]
    fn a_429_pauses_halves_and_successes_recover() {
        let t0 = Instant::now();
        let b = Bucket::at(10.0, t0);
        b.slow_down_at(t0, Duration::from_secs(3));
        assert_eq!(b.take(t0).unwrap_err(), t0 + Duration::from_secs(3));
        assert_eq!(b.current_rate(), 5.0);
        let t3 = t0 + Duration::from_secs(3);
        assert!(b.take(t3).is_ok());
        assert_eq!(
            b.take(t3).unwrap_err() - t3,
            Duration::from_millis(200),
            "5 per second now"
        );
        for _ in 0..100 {
            b.succeeded();
        }
        assert_eq!(
            b.current_rate(),
            10.0,
            "back to the configured rate, not past it"
        );
        // a shorter Retry-After does not shorten a pause
        b.slow_down_at(t3, Duration::from_secs(10));
        b.slow_down_at(t3, Duration::from_secs(1));
        assert_eq!(
            b.take(t3 + Duration::from_secs(5)).unwrap_err(),
            t3 + Duration::from_secs(10)
        );
    }

    #[test]
    fn acquire_gives_up_past_the_deadline() {
        let b = Bucket::new(1.0);
        let soon = Instant::now() + Duration::from_millis(50);
        assert!(b.acquire(soon));
        assert!(!b.acquire(soon), "the next token is a second away");
    }
}
