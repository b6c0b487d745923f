//! IANA time zones (chrono-tz).
use chrono_tz::Tz;
use pgrx::prelude::*;

/// Parses an IANA zone name.
pub fn parse(name: &str) -> Option<Tz> {
    name.parse::<Tz>().ok()
}

/// `journey._is_time_zone(text)`: used by CHECK constraints on contacts and settings.
#[pg_extern(name = "_is_time_zone", immutable, parallel_safe)]
pub fn is_time_zone(zone: &str) -> bool {
    parse(zone).is_some()
}

extension_sql!(
    "COMMENT ON FUNCTION journey._is_time_zone(text) IS 'Internal: true when the text is an IANA time zone name (chrono-tz), e.g. Europe/Bucharest.';",
    name = "is_time_zone_comment",
    requires = [is_time_zone]
);
