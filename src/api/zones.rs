//! `journey._is_time_zone`: the CHECK constraints of contacts and settings (sql/schema.sql)
//! accept IANA zone names only (`model::zone`, chrono-tz).
use pgrx::prelude::*;

/// `journey._is_time_zone(text)`: used by CHECK constraints on contacts and settings.
#[pg_extern(name = "_is_time_zone", immutable, parallel_safe)]
pub fn is_time_zone(zone: &str) -> bool {
    crate::model::zone::parse(zone).is_some()
}

extension_sql!(
    "COMMENT ON FUNCTION journey._is_time_zone(text) IS 'Internal: true when the text is an IANA time zone name (chrono-tz), e.g. Europe/Bucharest.';",
    name = "is_time_zone_comment",
    requires = [is_time_zone]
);
