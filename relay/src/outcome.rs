//! What one send came to, and how an HTTP answer or an I/O error is classified: success,
//! transient (timeouts, connection errors, 408, 429, 5xx: tried again later) or permanent
//! (other 4xx, 3xx: the row fails for good).
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Sent; the provider's message id, if it gave one.
    Sent(Option<String>),
    /// Try again later; `retry_after` is the provider's Retry-After, if any.
    Transient {
        error: String,
        retry_after: Option<Duration>,
    },
    /// Never going to work: the row fails for good.
    Permanent(String),
}

impl Outcome {
    pub fn transient(error: impl Into<String>) -> Outcome {
        Outcome::Transient {
            error: error.into(),
            retry_after: None,
        }
    }
}

/// The most of a provider's answer kept in `last_error`.
const ERROR_TEXT: usize = 300;

fn excerpt(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(ERROR_TEXT) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_string(),
    }
}

/// A Retry-After header in seconds (an HTTP date counts as 1 s; at most an hour).
pub fn retry_after(header: Option<&str>) -> Option<Duration> {
    let h = header?.trim();
    let secs = h
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(1.0);
    Some(Duration::from_secs_f64(secs.min(3600.0)))
}

/// An HTTP answer that is not a success: 408, 429 and 5xx are transient, the rest permanent.
pub fn http_failure(status: u16, retry_after_header: Option<&str>, body: &str) -> Outcome {
    let error = format!("HTTP {status}: {}", excerpt(body));
    match status {
        408 | 425 | 429 | 500..=599 => Outcome::Transient {
            error,
            retry_after: retry_after(retry_after_header).filter(|_| status == 429 || status == 503),
        },
        _ => Outcome::Permanent(error),
    }
}

/// An SMTP reply code's class: 4xx transient, 5xx permanent (RFC 5321).
pub fn smtp_failure(code: Option<u16>, error: String) -> Outcome {
    match code {
        Some(500..=599) => Outcome::Permanent(error),
        _ => Outcome::transient(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses() {
        assert!(matches!(
            http_failure(500, None, "oops"),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            http_failure(503, None, ""),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            http_failure(408, None, ""),
            Outcome::Transient { .. }
        ));
        assert_eq!(
            http_failure(429, Some("2"), "slow down"),
            Outcome::Transient {
                error: "HTTP 429: slow down".into(),
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            http_failure(400, None, " bad number "),
            Outcome::Permanent("HTTP 400: bad number".into())
        );
        assert!(matches!(http_failure(404, None, ""), Outcome::Permanent(_)));
        assert!(matches!(http_failure(301, None, ""), Outcome::Permanent(_)));
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after(Some("0.5")), Some(Duration::from_millis(500)));
        assert_eq!(
            retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::from_secs(1))
        );
        assert_eq!(retry_after(Some("99999")), Some(Duration::from_secs(3600)));
        assert_eq!(retry_after(None), None);
        // a Retry-After on a 500 is not a rate limit
        assert!(matches!(
            http_failure(500, Some("3"), ""),
            Outcome::Transient {
                retry_after: None,
                ..
            }
        ));
    }

    #[test]
    fn long_answers_are_cut() {
        let Outcome::Permanent(e) = http_failure(400, None, &"x".repeat(1000)) else {
            panic!()
        };
        assert_eq!(e.chars().count(), "HTTP 400: ".len() + ERROR_TEXT + 1);
    }

    #[test]
    fn smtp_codes() {
        assert!(matches!(
            smtp_failure(Some(550), "no such user".into()),
            Outcome::Permanent(_)
        ));
        assert!(matches!(
            smtp_failure(Some(451), "try later".into()),
            Outcome::Transient { .. }
        ));
        assert!(matches!(
            smtp_failure(None, "connection refused".into()),
            Outcome::Transient { .. }
        ));
    }
}
