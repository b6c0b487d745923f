//! Date occurrences: when a date trigger fires for a contact. The anniversary of the date in a
//! year (a Feb 29 date falls on Feb 28 or Mar 1 in other years), moved `offset_days`, at a
//! local time of day in the contact's zone, resolved as edges resolve local times (a time in a
//! DST gap is the first instant after it; an ambiguous one its first instant).
use super::schedule::resolve;
use crate::error::Result;
use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use pgrx::datum::TimestampWithTimeZone;
use pgrx::prelude::*;

/// Most schedule rows one pass takes (the worker passes again at once when it took this many).
pub const PASS_ROWS: i32 = 10_000;

/// Enrolls the date occurrences due by `at` (sql/dates.sql, `journey._date_pass`): up to
/// `PASS_ROWS` schedule rows, each enrolled (or skipped as too late) and moved on. Returns how
/// many it enrolled.
pub fn enroll_due(at: TimestampWithTimeZone) -> Result<i32> {
    Ok(Spi::get_one_with_args::<i32>(
        "SELECT journey._date_pass($1, $2)",
        &[at.into(), PASS_ROWS.into()],
    )?
    .unwrap_or(0))
}

/// A date trigger's rule (the params of its `flow_triggers` row).
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub yearly: bool,
    pub offset_days: i64,
    pub at: NaiveTime,
    /// A Feb 29 date falls on Mar 1 (not Feb 28) in years without one.
    pub mar1: bool,
}

/// The date's anniversary in `year` (None: out of range).
fn anniversary(date: NaiveDate, year: i32, mar1: bool) -> Option<NaiveDate> {
    match NaiveDate::from_ymd_opt(year, date.month(), date.day()) {
        Some(d) => Some(d),
        None if mar1 => NaiveDate::from_ymd_opt(year, 3, 1),
        None => NaiveDate::from_ymd_opt(year, 2, 28),
    }
}

/// When the occurrence of the anniversary `day` fires.
fn fire(day: NaiveDate, rule: &Rule, tz: Tz) -> Option<DateTime<Utc>> {
    let date = day.checked_add_signed(Duration::days(rule.offset_days))?;
    Some(resolve(tz, date.and_time(rule.at)))
}

/// The first occurrence that fires after `after` (None: a `once` date already past).
pub fn next(date: NaiveDate, rule: &Rule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if !rule.yearly {
        return fire(date, rule, tz).filter(|t| *t > after);
    }
    // offset_days is at most 366, so the occurrence after `after` is in one of these years
    let year = after.year();
    (year - 2..=year + 2)
        .filter_map(|y| fire(anniversary(date, y, rule.mar1)?, rule, tz))
        .find(|t| *t > after)
}

/// A date field's value: an ISO date (`2026-03-14`), or a timestamp (its date in the zone;
/// without an offset it is a local time). None when it is neither.
pub fn field_date(text: &str, tz: Tz) -> Option<NaiveDate> {
    let text = text.trim();
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(d);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&tz).date_naive());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(text, f).ok())
    .map(|t| t.date())
}

#[cfg(test)]
mod unit {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }
    fn rule(yearly: bool, offset_days: i64, mar1: bool) -> Rule {
        Rule {
            yearly,
            offset_days,
            at: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            mar1,
        }
    }

    #[test]
    fn yearly_the_day_before_at_nine_in_three_zones() {
        let r = rule(true, -1, false);
        let after = utc("2027-01-01T00:00:00Z");
        let bday = d("1990-03-15");
        // New York: DST starts 2027-03-14 02:00, so 09:00 on the 14th is EDT (UTC-4)
        assert_eq!(
            next(bday, &r, chrono_tz::America::New_York, after),
            Some(utc("2027-03-14T13:00:00Z"))
        );
        // Jerusalem: still IST (UTC+2) on Mar 14 2027 (IDT starts Mar 26)
        assert_eq!(
            next(bday, &r, chrono_tz::Asia::Jerusalem, after),
            Some(utc("2027-03-14T07:00:00Z"))
        );
        assert_eq!(
            next(bday, &r, chrono_tz::Asia::Tokyo, after),
            Some(utc("2027-03-14T00:00:00Z"))
        );
        // just after this year's fires: next year
        let t = utc("2027-03-14T13:00:00Z");
        assert_eq!(
            next(bday, &r, chrono_tz::America::New_York, t),
            Some(utc("2028-03-14T13:00:00Z"))
        );
    }

    #[test]
    fn feb29_both_ways_and_once() {
        let after = utc("2027-01-01T00:00:00Z");
        let leap = d("2000-02-29");
        let z = chrono_tz::UTC;
        assert_eq!(
            next(leap, &rule(true, 0, false), z, after),
            Some(utc("2027-02-28T09:00:00Z"))
        );
        assert_eq!(
            next(leap, &rule(true, 0, true), z, after),
            Some(utc("2027-03-01T09:00:00Z"))
        );
        let in_2028 = utc("2027-12-31T00:00:00Z");
        assert_eq!(
            next(leap, &rule(true, 0, true), z, in_2028),
            Some(utc("2028-02-29T09:00:00Z"))
        );
        // once: the date itself, then never
        let once = rule(false, 2, false);
        assert_eq!(
            next(d("2027-05-01"), &once, z, after),
            Some(utc("2027-05-03T09:00:00Z"))
        );
        assert_eq!(next(d("2026-05-01"), &once, z, after), None);
        // an offset across a year end
        assert_eq!(
            next(d("1980-01-01"), &rule(true, -1, false), z, after),
            Some(utc("2027-12-31T09:00:00Z"))
        );
    }

    #[test]
    fn a_time_in_a_dst_gap_is_the_first_instant_after_it() {
        let r = Rule {
            at: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            ..rule(true, 0, false)
        };
        let ny = chrono_tz::America::New_York;
        let t = next(d("1990-03-14"), &r, ny, utc("2027-01-01T00:00:00Z")).unwrap();
        assert_eq!(
            t,
            ny.with_ymd_and_hms(2027, 3, 14, 3, 0, 0)
                .unwrap()
                .with_timezone(&Utc)
        );
    }

    #[test]
    fn field_values() {
        let tz = chrono_tz::Asia::Tokyo;
        assert_eq!(field_date("2026-03-14", tz), Some(d("2026-03-14")));
        assert_eq!(
            field_date("2026-03-14T20:00:00Z", tz),
            Some(d("2026-03-15"))
        );
        assert_eq!(field_date("2026-03-14 20:00", tz), Some(d("2026-03-14")));
        assert_eq!(field_date("next tuesday", tz), None);
        assert_eq!(field_date("2026-02-30", tz), None);
        assert_eq!(field_date("", tz), None);
    }
}
