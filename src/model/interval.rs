//! Intervals as flows write them ("2 days", "1 hour 30 minutes", "90 minutes", "02:30").
//!
//! Kept like PostgreSQL's interval (months, days, microseconds) so that calendar units are
//! added in the contact's local calendar and clock units as elapsed time.
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interval {
    pub months: i32,
    pub days: i32,
    pub micros: i64,
}

const SECOND: i64 = 1_000_000;
const DAY: i64 = 86_400 * SECOND;

/// Longest interval a flow may use (delays, waits, timeouts, re-entry), in days counting a
/// month as 31: 100 years. Longer ones would only overflow the date arithmetic.
pub const MAX_DAYS: i64 = 1200 * 31;

impl Interval {
    pub fn is_zero(&self) -> bool {
        self.months == 0 && self.days == 0 && self.micros == 0
    }

    pub fn parse(text: &str) -> Result<Interval, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("an interval must not be empty".into());
        }
        if text.contains(':') {
            return Self::parse_clock(text);
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        if !words.len().is_multiple_of(2) {
            return Err(format!(
                "\"{text}\" is not an interval (write a number and a unit, e.g. \"2 days\")"
            ));
        }
        let (mut months, mut days, mut micros) = (0i64, 0i64, 0i64);
        for pair in words.chunks(2) {
            let n: i64 = pair[0]
                .parse()
                .map_err(|_| format!("\"{}\" in \"{text}\" is not a whole number", pair[0]))?;
            if !(0..=100_000).contains(&n) {
                return Err(format!("{n} in \"{text}\" is out of range (0 to 100000)"));
            }
            match pair[1].to_ascii_lowercase().trim_end_matches(',') {
                "second" | "seconds" | "sec" | "secs" | "s" => micros += n * SECOND,
                "minute" | "minutes" | "min" | "mins" | "m" => micros += n * 60 * SECOND,
                "hour" | "hours" | "h" => micros += n * 3600 * SECOND,
                "day" | "days" | "d" => days += n,
                "week" | "weeks" | "w" => days += 7 * n,
                "month" | "months" | "mon" | "mons" => months += n,
                "year" | "years" | "y" => months += 12 * n,
                other => {
                    return Err(format!(
                        "unknown unit \"{other}\" in \"{text}\" (use seconds, minutes, hours, days, weeks, months or years)"
                    ))
                }
            }
            // (each pair adds at most 100000 years: the sums cannot overflow before this check)
            Self::check_length(text, months, days, micros)?;
        }
        Ok(Interval {
            months: months as i32,
            days: days as i32,
            micros,
        })
    }

    /// Refuses intervals longer than [`MAX_DAYS`].
    fn check_length(text: &str, months: i64, days: i64, micros: i64) -> Result<(), String> {
        let total = months * 31 + days + micros / DAY;
        if total > MAX_DAYS {
            return Err(format!(
                "\"{text}\" is longer than 100 years (the longest interval a flow may use)"
            ));
        }
        Ok(())
    }

    fn parse_clock(text: &str) -> Result<Interval, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let bad = || format!("\"{text}\" is not an interval (HH:MM or HH:MM:SS)");
        if parts.len() < 2 || parts.len() > 3 {
            return Err(bad());
        }
        let nums: Vec<i64> = parts
            .iter()
            .map(|p| p.parse::<i64>().map_err(|_| bad()))
            .collect::<Result<_, _>>()?;
        if nums.iter().any(|n| *n < 0) || nums[1] > 59 || nums.get(2).is_some_and(|s| *s > 59) {
            return Err(bad());
        }
        if nums[0] > 24 * MAX_DAYS {
            return Err(format!(
                "\"{text}\" is longer than 100 years (the longest interval a flow may use)"
            ));
        }
        Ok(Interval {
            months: 0,
            days: 0,
            micros: (nums[0] * 3600 + nums[1] * 60 + nums.get(2).copied().unwrap_or(0)) * SECOND,
        })
    }

    /// As text PostgreSQL's interval input accepts.
    pub fn to_pg(&self) -> String {
        format!(
            "{} months {} days {} microseconds",
            self.months, self.days, self.micros
        )
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if self.months != 0 {
            parts.push(format!("{} mon", self.months));
        }
        if self.days != 0 {
            parts.push(format!("{} d", self.days));
        }
        let secs = self.micros / SECOND;
        if secs / 3600 != 0 {
            parts.push(format!("{} h", secs / 3600));
        }
        if (secs % 3600) / 60 != 0 {
            parts.push(format!("{} min", (secs % 3600) / 60));
        }
        if secs % 60 != 0 {
            parts.push(format!("{} s", secs % 60));
        }
        if parts.is_empty() {
            parts.push("0".into());
        }
        write!(f, "{}", parts.join(" "))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn parses_units_and_clock() {
        assert_eq!(Interval::parse("2 days").unwrap().days, 2);
        assert_eq!(
            Interval::parse("1 hour 30 minutes").unwrap().micros,
            5400 * SECOND
        );
        assert_eq!(Interval::parse("02:30").unwrap().micros, 9000 * SECOND);
        assert_eq!(Interval::parse("1 month").unwrap().months, 1);
        assert_eq!(Interval::parse("2 weeks").unwrap().days, 14);
        assert_eq!(Interval::parse("100 years").unwrap().months, 1200);
        assert_eq!(Interval::parse("36525 days").unwrap().days, 36525);
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "soon",
            "2",
            "two days",
            "3 fortnights",
            "-1 day",
            "1:99",
            "101 years",
            "37201 days",
            "5000 weeks 5000 weeks 5000 weeks 5000 weeks",
            "99999999999:00",
        ] {
            assert!(Interval::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
