//! IANA time zones (chrono-tz).
use chrono_tz::Tz;

/// Parses an IANA zone name.
pub fn parse(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}
