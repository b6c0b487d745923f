//! Conversions between PostgreSQL timestamps and chrono.
use chrono::{DateTime, Utc};
use pgrx::datum::TimestampWithTimeZone;

/// Microseconds between the Unix epoch and the PostgreSQL epoch (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

pub fn to_chrono(ts: TimestampWithTimeZone) -> DateTime<Utc> {
    let micros: i64 = ts.into();
    DateTime::from_timestamp_micros(micros + PG_EPOCH_OFFSET_MICROS).unwrap_or_default()
}

pub fn to_pg(dt: DateTime<Utc>) -> TimestampWithTimeZone {
    TimestampWithTimeZone::try_from(dt.timestamp_micros() - PG_EPOCH_OFFSET_MICROS)
        .unwrap_or_else(|_| TimestampWithTimeZone::positive_infinity())
}
