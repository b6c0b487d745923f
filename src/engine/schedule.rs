//! When is a step due: delays, `at` (HH:MM) and `days`, send windows (`{"from", "to",
//! "days"}`) and quiet hours, all in the contact's zone (chrono-tz). A local time inside a DST
//! gap resolves to the first instant after the gap; an ambiguous one (DST fall-back) to its
//! first occurrence, except the end of a send window: its last (every local time inside the
//! hours is inside the window).
use crate::model::times::Window;
use crate::model::{Edge, Interval};
use chrono::{
    DateTime, Datelike, Duration, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime,
    TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

/// Resolves a local wall-clock time to an instant (gap: first instant after; fold: first).
pub fn resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    let mut probe = local;
    for _ in 0..(4 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => match probe.checked_add_signed(Duration::minutes(1)) {
                Some(next) => probe = next,
                None => break,
            },
        }
    }
    Utc.from_utc_datetime(&local)
}

/// Resolves a local wall-clock time to its first occurrence at or after `after` (in a fold,
/// the second occurrence when the first is already past), else as [`resolve`].
fn resolve_after(tz: Tz, local: NaiveDateTime, after: DateTime<Utc>) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Ambiguous(first, second) if first.with_timezone(&Utc) < after => {
            second.with_timezone(&Utc)
        }
        _ => resolve(tz, local),
    }
}

/// Adds an interval: months and days on the local calendar (keeping the wall-clock time),
/// then the clock part as elapsed time, like PostgreSQL's timestamptz + interval. None when
/// the result is out of range (validation keeps intervals far from that).
pub fn add_interval(from: DateTime<Utc>, iv: Interval, tz: Tz) -> Option<DateTime<Utc>> {
    let mut t = from;
    if iv.months != 0 || iv.days != 0 {
        let local = from.with_timezone(&tz).naive_local();
        let mut date = local.date();
        if iv.months > 0 {
            date = date.checked_add_months(Months::new(u32::try_from(iv.months).ok()?))?;
        }
        date = date.checked_add_signed(Duration::try_days(i64::from(iv.days))?)?;
        t = resolve(tz, date.and_time(local.time()));
    }
    t.checked_add_signed(Duration::microseconds(iv.micros))
}

/// The first instant at or after `t` that is on an allowed day and (when given) at `at`.
pub fn window(
    t: DateTime<Utc>,
    at: Option<NaiveTime>,
    days: Option<&[Weekday]>,
    tz: Tz,
) -> DateTime<Utc> {
    let allowed = |d: NaiveDate| days.is_none_or(|ds| ds.contains(&d.weekday()));
    let local = t.with_timezone(&tz).naive_local();
    let mut date = local.date();
    for _ in 0..15 {
        let candidate = match at {
            Some(time) => resolve_after(tz, date.and_time(time), t),
            None if date == local.date() => t,
            None => resolve(tz, date.and_time(NaiveTime::MIN)),
        };
        if candidate >= t && allowed(date) {
            return candidate;
        }
        date = date.succ_opt().unwrap_or(date);
    }
    t
}

/// Due time after following an edge (or a wait): `from` + delay, then the window. None when
/// out of range.
pub fn due(
    from: DateTime<Utc>,
    delay: Option<Interval>,
    at: Option<NaiveTime>,
    days: Option<&[Weekday]>,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    let t = match delay {
        Some(d) => add_interval(from, d, tz)?,
        None => from,
    };
    Some(if at.is_none() && days.is_none() {
        t
    } else {
        window(t, at, days, tz)
    })
}

/// Due time after following `edge` from `from`: its delay, then its `at`/`days`, then its
/// window. None when out of range.
pub fn edge_due(from: DateTime<Utc>, edge: &Edge, tz: Tz) -> Option<DateTime<Utc>> {
    let t = due(from, edge.delay, edge.at, edge.days.as_deref(), tz)?;
    match &edge.window {
        Some(w) => in_window(t, w, tz),
        None => Some(t),
    }
}

/// The first instant at or after `t` inside the window: `t` itself when it is inside, else the
/// next opening (`from` on an allowed day). A window spanning midnight belongs to the day it
/// opens. None when out of range.
pub fn in_window(t: DateTime<Utc>, w: &Window, tz: Tz) -> Option<DateTime<Utc>> {
    let allowed = |d: NaiveDate| w.days.as_ref().is_none_or(|ds| ds.contains(&d.weekday()));
    // yesterday's window may still be open (past midnight)
    let mut date = t.with_timezone(&tz).date_naive().pred_opt()?;
    for _ in 0..10 {
        if allowed(date) {
            let start = resolve(tz, date.and_time(w.from));
            let end_date = if w.spans_midnight() {
                date.succ_opt()?
            } else {
                date
            };
            let end = resolve_last(tz, end_date.and_time(w.to));
            if start < end && t < end {
                return Some(start.max(t));
            }
        }
        date = date.succ_opt()?;
    }
    Some(t)
}

/// As [`resolve`], but an ambiguous local time (DST fall-back) is its second occurrence.
fn resolve_last(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Ambiguous(_, second) => second.with_timezone(&Utc),
        _ => resolve(tz, local),
    }
}

/// If `t` falls in the quiet hours [start, end) (local, may span midnight), the end of that
/// quiet period: the first instant after `t` whose local time is `end` (on the night clocks go
/// back, the repeated hour's second `end` when `t` is already past the first); otherwise None.
pub fn quiet_until(
    t: DateTime<Utc>,
    start: NaiveTime,
    end: NaiveTime,
    tz: Tz,
) -> Option<DateTime<Utc>> {
    if start == end {
        return None;
    }
    let local = t.with_timezone(&tz).naive_local();
    let now = local.time();
    let inside = if start < end {
        now >= start && now < end
    } else {
        now >= start || now < end
    };
    if !inside {
        return None;
    }
    let end_date = if start < end || now < end {
        local.date()
    } else {
        local.date().succ_opt()?
    };
    Some(resolve_after(tz, end_date.and_time(end), t))
}

#[cfg(test)]
mod unit {
    use super::*;
    use chrono::Weekday::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }
    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn friday_noon_one_day_weekdays_at_ten_is_monday_ten() {
        let weekdays = [Mon, Tue, Wed, Thu, Fri];
        for (zone, friday_noon, monday_ten) in [
            ("UTC", "2026-11-20T12:00:00Z", "2026-11-23T10:00:00Z"),
            (
                "America/New_York",
                "2026-11-20T17:00:00Z",
                "2026-11-23T15:00:00Z",
            ),
            (
                "Europe/Bucharest",
                "2026-11-20T10:00:00Z",
                "2026-11-23T08:00:00Z",
            ),
            (
                "Asia/Jerusalem",
                "2026-11-20T10:00:00Z",
                "2026-11-23T08:00:00Z",
            ),
        ] {
            let tz: Tz = zone.parse().unwrap();
            let got = due(
                utc(friday_noon),
                Interval::parse("1 day").ok(),
                Some(hm(10, 0)),
                Some(&weekdays),
                tz,
            )
            .unwrap();
            assert_eq!(got, utc(monday_ten), "{zone}");
        }
    }

    #[test]
    fn dst_gap_and_fold() {
        // New York springs forward 2026-03-08 02:00 -> 03:00: 02:30 does not exist.
        let ny: Tz = "America/New_York".parse().unwrap();
        let gap = NaiveDate::from_ymd_opt(2026, 3, 8)
            .unwrap()
            .and_time(hm(2, 30));
        assert_eq!(resolve(ny, gap), utc("2026-03-08T07:00:00Z"));
        // falls back 2026-11-01 02:00 -> 01:00: 01:30 happens twice; take the first (EDT).
        let fold = NaiveDate::from_ymd_opt(2026, 11, 1)
            .unwrap()
            .and_time(hm(1, 30));
        assert_eq!(resolve(ny, fold), utc("2026-11-01T05:30:00Z"));
        // one day later at the same wall-clock time across the spring-forward change
        let bucharest: Tz = "Europe/Bucharest".parse().unwrap();
        let before = utc("2026-03-28T08:00:00Z"); // 10:00 EET
        assert_eq!(
            add_interval(before, Interval::parse("1 day").unwrap(), bucharest),
            Some(utc("2026-03-29T07:00:00Z"))
        ); // 10:00 EEST
    }

    #[test]
    fn quiet_hours_across_midnight() {
        let tz: Tz = "Asia/Jerusalem".parse().unwrap();
        // 22:30 local (UTC+2 in November) -> quiet until 07:00 next day
        assert_eq!(
            quiet_until(utc("2026-11-20T20:30:00Z"), hm(21, 0), hm(7, 0), tz),
            Some(utc("2026-11-21T05:00:00Z"))
        );
        // 03:00 local -> until 07:00 the same day
        assert_eq!(
            quiet_until(utc("2026-11-20T01:00:00Z"), hm(21, 0), hm(7, 0), tz),
            Some(utc("2026-11-20T05:00:00Z"))
        );
        // noon -> not quiet
        assert_eq!(
            quiet_until(utc("2026-11-20T10:00:00Z"), hm(21, 0), hm(7, 0), tz),
            None
        );
    }

    /// (zone, from (UTC), delay, at, days, expected (UTC)): both DST changes of every zone,
    /// windows across midnight, weekend-only days.
    #[test]
    fn table_of_zones_and_transitions() {
        let weekend = [Sat, Sun];
        let weekdays = [Mon, Tue, Wed, Thu, Fri];
        #[allow(clippy::type_complexity)]
        let rows: &[(
            &str,
            &str,
            Option<&str>,
            Option<(u32, u32)>,
            Option<&[Weekday]>,
            &str,
        )] = &[
            // New York: spring forward 2026-03-08 02:00 EST -> 03:00 EDT; fall back 2026-11-01 02:00 EDT -> 01:00 EST
            (
                "America/New_York",
                "2026-03-07T15:00:00Z",
                Some("1 day"),
                None,
                None,
                "2026-03-08T14:00:00Z",
            ),
            (
                "America/New_York",
                "2026-03-07T12:00:00Z",
                Some("1 day"),
                Some((2, 30)),
                None,
                "2026-03-09T06:30:00Z",
            ),
            (
                "America/New_York",
                "2026-03-07T12:00:00Z",
                None,
                Some((2, 30)),
                Some(&[Sun]),
                "2026-03-08T07:00:00Z",
            ),
            (
                "America/New_York",
                "2026-10-31T12:00:00Z",
                None,
                Some((1, 30)),
                Some(&[Sun]),
                "2026-11-01T05:30:00Z",
            ),
            (
                "America/New_York",
                "2026-10-31T16:00:00Z",
                Some("1 day"),
                None,
                None,
                "2026-11-01T17:00:00Z",
            ),
            // Bucharest: 2026-03-29 03:00 EET -> 04:00 EEST; 2026-10-25 04:00 EEST -> 03:00 EET
            (
                "Europe/Bucharest",
                "2026-03-28T12:00:00Z",
                None,
                Some((3, 30)),
                Some(&[Sun]),
                "2026-03-29T01:00:00Z",
            ),
            (
                "Europe/Bucharest",
                "2026-10-24T12:00:00Z",
                None,
                Some((3, 30)),
                Some(&[Sun]),
                "2026-10-25T00:30:00Z",
            ),
            (
                "Europe/Bucharest",
                "2026-10-24T08:00:00Z",
                Some("1 day"),
                None,
                None,
                "2026-10-25T09:00:00Z",
            ),
            // Jerusalem: 2026-03-27 02:00 IST -> 03:00 IDT; 2026-10-25 02:00 IDT -> 01:00 IST
            (
                "Asia/Jerusalem",
                "2026-03-26T12:00:00Z",
                None,
                Some((2, 15)),
                Some(&[Fri]),
                "2026-03-27T00:00:00Z",
            ),
            (
                "Asia/Jerusalem",
                "2026-10-24T12:00:00Z",
                None,
                Some((1, 15)),
                Some(&[Sun]),
                "2026-10-24T22:15:00Z",
            ),
            // UTC: windows across midnight and weekend-only days
            (
                "UTC",
                "2026-11-20T23:45:00Z",
                None,
                Some((23, 30)),
                None,
                "2026-11-21T23:30:00Z",
            ),
            (
                "UTC",
                "2026-11-20T23:45:00Z",
                Some("30 minutes"),
                Some((0, 10)),
                None,
                "2026-11-22T00:10:00Z",
            ),
            (
                "UTC",
                "2026-11-20T12:00:00Z",
                None,
                None,
                Some(&weekend),
                "2026-11-21T00:00:00Z",
            ),
            (
                "UTC",
                "2026-11-21T12:00:00Z",
                Some("1 day"),
                Some((10, 0)),
                Some(&weekdays),
                "2026-11-23T10:00:00Z",
            ),
        ];
        for (zone, from, delay, at, days, expected) in rows {
            let tz: Tz = zone.parse().unwrap();
            let got = due(
                utc(from),
                delay.map(|d| Interval::parse(d).unwrap()),
                at.map(|(h, m)| hm(h, m)),
                *days,
                tz,
            )
            .unwrap();
            assert_eq!(
                got,
                utc(expected),
                "{zone} from {from} delay {delay:?} at {at:?} days {days:?}"
            );
        }
    }

    /// New York falls back 2026-11-01 02:00 EDT -> 01:00 EST. Quiet 01:00-01:30: at 01:10 in
    /// the repeated hour (EST, 06:10 UTC) the quiet period ends at 01:30 EST (06:30 UTC), not at
    /// the first 01:30 (EDT, 05:30 UTC), which is already past.
    #[test]
    fn quiet_hours_end_after_the_instant_on_the_night_clocks_go_back() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let second_pass = utc("2026-11-01T06:10:00Z");
        let end = quiet_until(second_pass, hm(1, 0), hm(1, 30), ny).unwrap();
        assert_eq!(end, utc("2026-11-01T06:30:00Z"));
        assert!(end > second_pass);
        // in the first pass through the hour, the first 01:30 is still ahead
        assert_eq!(
            quiet_until(utc("2026-11-01T05:10:00Z"), hm(1, 0), hm(1, 30), ny),
            Some(utc("2026-11-01T05:30:00Z"))
        );
    }

    fn win(from: (u32, u32), to: (u32, u32), days: Option<&[Weekday]>) -> Window {
        Window {
            from: hm(from.0, from.1),
            to: hm(to.0, to.1),
            days: days.map(|d| d.to_vec()),
        }
    }

    /// (zone, t (UTC), window, expected (UTC)): inside goes at once, before waits for the
    /// opening, after waits for the next day's; across midnight; days; both DST nights.
    #[test]
    fn send_windows() {
        let weekdays: &[Weekday] = &[Mon, Tue, Wed, Thu, Fri];
        let nine_to_six = win((9, 0), (18, 0), None);
        let weekdays_nine_to_six = win((9, 0), (18, 0), Some(weekdays));
        let night = win((22, 0), (2, 0), None);
        let friday_night = win((22, 0), (2, 0), Some(&[Fri]));
        let rows: &[(&str, &str, &Window, &str)] = &[
            // Friday 2026-11-20: inside at 15:33 -> at once (where `at: 09:00` would wait a day)
            (
                "UTC",
                "2026-11-20T15:33:00Z",
                &nine_to_six,
                "2026-11-20T15:33:00Z",
            ),
            (
                "UTC",
                "2026-11-20T09:00:00Z",
                &nine_to_six,
                "2026-11-20T09:00:00Z",
            ),
            // before -> the opening the same day; at the closing time or after -> the next day
            (
                "UTC",
                "2026-11-20T06:10:00Z",
                &nine_to_six,
                "2026-11-20T09:00:00Z",
            ),
            (
                "UTC",
                "2026-11-20T18:00:00Z",
                &nine_to_six,
                "2026-11-21T09:00:00Z",
            ),
            (
                "UTC",
                "2026-11-20T23:59:00Z",
                &nine_to_six,
                "2026-11-21T09:00:00Z",
            ),
            // weekdays: Friday evening and Saturday -> Monday 09:00; Wednesday noon at once
            (
                "UTC",
                "2026-11-20T19:00:00Z",
                &weekdays_nine_to_six,
                "2026-11-23T09:00:00Z",
            ),
            (
                "UTC",
                "2026-11-21T12:00:00Z",
                &weekdays_nine_to_six,
                "2026-11-23T09:00:00Z",
            ),
            (
                "UTC",
                "2026-11-18T12:00:00Z",
                &weekdays_nine_to_six,
                "2026-11-18T12:00:00Z",
            ),
            // across midnight: 23:00 and 01:00 inside; 02:00 and noon wait for 22:00
            (
                "UTC",
                "2026-11-20T23:00:00Z",
                &night,
                "2026-11-20T23:00:00Z",
            ),
            (
                "UTC",
                "2026-11-21T01:00:00Z",
                &night,
                "2026-11-21T01:00:00Z",
            ),
            (
                "UTC",
                "2026-11-21T02:00:00Z",
                &night,
                "2026-11-21T22:00:00Z",
            ),
            (
                "UTC",
                "2026-11-21T12:00:00Z",
                &night,
                "2026-11-21T22:00:00Z",
            ),
            // a Friday night window: Saturday 01:00 is inside (it opened on Friday); Saturday
            // 23:00 is not (Saturday's window is not allowed) -> next Friday 22:00
            (
                "UTC",
                "2026-11-21T01:00:00Z",
                &friday_night,
                "2026-11-21T01:00:00Z",
            ),
            (
                "UTC",
                "2026-11-21T23:00:00Z",
                &friday_night,
                "2026-11-27T22:00:00Z",
            ),
            // in the contact's zone: Jerusalem (UTC+2 in November) 06:00 local -> 09:00 local
            (
                "Asia/Jerusalem",
                "2026-11-20T04:00:00Z",
                &nine_to_six,
                "2026-11-20T07:00:00Z",
            ),
            (
                "Asia/Jerusalem",
                "2026-11-20T15:59:00Z",
                &nine_to_six,
                "2026-11-20T15:59:00Z",
            ),
            (
                "Asia/Jerusalem",
                "2026-11-20T16:00:00Z",
                &nine_to_six,
                "2026-11-21T07:00:00Z",
            ),
            // New York springs forward 2026-03-08 02:00 EST -> 03:00 EDT: a window from 02:30
            // opens at 03:00 EDT (07:00 UTC); 09:00 EDT is 13:00 UTC that day
            (
                "America/New_York",
                "2026-03-08T06:00:00Z",
                &win((2, 30), (5, 0), None),
                "2026-03-08T07:00:00Z",
            ),
            (
                "America/New_York",
                "2026-03-08T05:00:00Z",
                &nine_to_six,
                "2026-03-08T13:00:00Z",
            ),
            // falls back 2026-11-01 02:00 EDT -> 01:00 EST: a window to 01:30 ends at the second
            // 01:30 (06:30 UTC), so 01:10 in the repeated hour (06:10 UTC) is inside
            (
                "America/New_York",
                "2026-11-01T06:10:00Z",
                &win((22, 0), (1, 30), None),
                "2026-11-01T06:10:00Z",
            ),
            (
                "America/New_York",
                "2026-11-01T06:30:00Z",
                &win((22, 0), (1, 30), None),
                "2026-11-02T03:00:00Z",
            ),
            // Bucharest springs forward 2026-03-29 03:00 EET -> 04:00 EEST: 09:00 is 06:00 UTC
            (
                "Europe/Bucharest",
                "2026-03-29T00:30:00Z",
                &nine_to_six,
                "2026-03-29T06:00:00Z",
            ),
            (
                "Europe/Bucharest",
                "2026-03-28T16:30:00Z",
                &nine_to_six,
                "2026-03-29T06:00:00Z",
            ),
        ];
        for (zone, t, w, expected) in rows {
            let tz: Tz = zone.parse().unwrap();
            assert_eq!(
                in_window(utc(t), w, tz),
                Some(utc(expected)),
                "{zone} {t} {w:?}"
            );
        }
    }

    /// A delay first, then the window: Friday 17:00 + 2 hours is 19:00, outside 09:00-18:00 on
    /// weekdays -> Monday 09:00; + 30 minutes is inside -> 17:30.
    #[test]
    fn an_edge_with_a_delay_and_a_window() {
        let edge = |delay: &str| Edge {
            to: "x".into(),
            delay: Interval::parse(delay).ok(),
            window: Some(win((9, 0), (18, 0), Some(&[Mon, Tue, Wed, Thu, Fri]))),
            ..Edge::default()
        };
        let friday_five = utc("2026-11-20T17:00:00Z");
        assert_eq!(
            edge_due(friday_five, &edge("2 hours"), Tz::UTC),
            Some(utc("2026-11-23T09:00:00Z"))
        );
        assert_eq!(
            edge_due(friday_five, &edge("30 minutes"), Tz::UTC),
            Some(utc("2026-11-20T17:30:00Z"))
        );
        let plain = Edge {
            to: "x".into(),
            ..Edge::default()
        };
        assert_eq!(edge_due(friday_five, &plain, Tz::UTC), Some(friday_five));
    }

    #[test]
    fn out_of_range_dates_are_none_not_a_panic() {
        let far = DateTime::<Utc>::MAX_UTC - Duration::days(1);
        let years = Interval {
            months: 1200,
            days: 0,
            micros: 0,
        };
        assert_eq!(add_interval(far, years, Tz::UTC), None);
        assert_eq!(due(far, Some(years), Some(hm(9, 0)), None, Tz::UTC), None);
        let days = Interval {
            months: 0,
            days: i32::MAX,
            micros: 0,
        };
        assert_eq!(
            add_interval(utc("2026-01-01T00:00:00Z"), days, Tz::UTC),
            None
        );
    }
}
