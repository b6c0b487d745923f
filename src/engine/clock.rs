//! Conversions between PostgreSQL timestamps and chrono. PostgreSQL's range (4713 BC to
//! 294276 AD, and ±infinity) is wider than chrono's: a timestamp chrono cannot hold converts to
//! None instead of overflowing.
use chrono::{DateTime, Utc};
use pgrx::datum::TimestampWithTimeZone;

/// Microseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

/// The instant, or None for ±infinity and instants chrono cannot represent.
pub fn to_chrono(ts: TimestampWithTimeZone) -> Option<DateTime<Utc>> {
    if !ts.is_finite() {
        return None;
    }
    let micros: i64 = ts.into();
    DateTime::from_timestamp_micros(micros.checked_add(PG_EPOCH_OFFSET_MICROS)?)
}

pub fn to_pg(dt: DateTime<Utc>) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(dt.timestamp_micros() - PG_EPOCH_OFFSET_MICROS)
        .unwrap_or_else(|_| TimestampWithTimeZone::positive_infinity())
}
