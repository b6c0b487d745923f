//! The occurrence arithmetic of date triggers as SQL functions (sql/dates.sql calls them from
//! its set-based statements): `journey._date_next` and `journey._date_days`. Dates cross the
//! boundary as days since 2000-01-01 (PostgreSQL's epoch: `date - DATE '2000-01-01'`) and times
//! of day as seconds, plain integers with no conversion cost.
use crate::engine::{clock, occurrence};
use chrono::{Duration, NaiveDate, NaiveTime};
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).expect("a valid date")
}

/// `journey._date_next(days, yearly, offset_days, at_seconds, mar1, zone, after)`: when the
/// date trigger next fires after `after`, NULL when never (or any input is out of range).
#[pg_extern(name = "_date_next", strict, stable, parallel_safe)]
pub fn date_next(
    days: i32,
    yearly: bool,
    offset_days: i32,
    at_seconds: i32,
    mar1: bool,
    zone: &str,
    after: TimestampWithTimeZone,
) -> Option<TimestampWithTimeZone> {
    let date = epoch().checked_add_signed(Duration::days(days.into()))?;
    let at = NaiveTime::from_num_seconds_from_midnight_opt(u32::try_from(at_seconds).ok()?, 0)?;
    let tz = crate::model::zone::parse(zone)?;
    let rule = occurrence::Rule {
        yearly,
        offset_days: offset_days.into(),
        at,
        mar1,
    };
    occurrence::next(date, &rule, tz, clock::to_chrono(after)?).map(clock::to_pg)
}

/// `journey._date_days(text, zone)`: the date an attribute holds (an ISO date, or a
/// timestamp's date in the zone) as days since 2000-01-01; NULL when it holds none.
#[pg_extern(name = "_date_days", strict, immutable, parallel_safe)]
pub fn date_days(text: &str, zone: &str) -> Option<i32> {
    let tz = crate::model::zone::parse(zone)?;
    let date = occurrence::field_date(text, tz)?;
    i32::try_from((date - epoch()).num_days()).ok()
}

extension_sql!(
    "COMMENT ON FUNCTION journey._date_next(integer, boolean, integer, integer, boolean, text, timestamptz) IS \
     'Internal: when a date trigger (yearly or once, offset_days, at as seconds after midnight, Feb 29 on Mar 1 or Feb 28) next fires after a time for a date given as days since 2000-01-01, in a zone; NULL when never.';\n\
     COMMENT ON FUNCTION journey._date_days(text, text) IS \
     'Internal: the date a contact attribute holds (an ISO date, or a timestamp''s date in the zone) as days since 2000-01-01; NULL when it holds none.';",
    name = "dates_comments",
    requires = [date_next, date_days]
);
