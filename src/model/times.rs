//! Times of day and days of the week as flows write them: `at` (`"HH:MM"`) and `days`
//! (`"weekdays"`, `"weekend"`, `"all"`, or a list of day names) of waits and edges. Intervals
//! (`delay`, `wait`, `timeout`, …) are read by `interval.rs`.
use chrono::{NaiveTime, Weekday};
use serde_json::Value;

/// `"HH:MM"`, 00:00 to 23:59 (one or two digits for the hour).
pub fn parse_time(text: &str) -> Option<NaiveTime> {
    let (h, m) = text.split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)
}

/// `"weekdays"`, `"weekend"`, `"all"` / `"every day"`, or a non-empty list of day names
/// (`mon` … `sun`, a few other abbreviations, or in full; any case).
pub fn parse_days(v: &Value) -> Result<Vec<Weekday>, String> {
    use Weekday::*;
    match v {
        Value::String(s) if s == "weekdays" => Ok(vec![Mon, Tue, Wed, Thu, Fri]),
        Value::String(s) if s == "weekend" => Ok(vec![Sat, Sun]),
        Value::String(s) if s == "all" || s == "every day" => {
            Ok(vec![Mon, Tue, Wed, Thu, Fri, Sat, Sun])
        }
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|d| {
                let name = d.as_str().unwrap_or("").to_ascii_lowercase();
                match name.as_str() {
                    "mon" | "monday" => Ok(Mon),
                    "tue" | "tues" | "tuesday" => Ok(Tue),
                    "wed" | "wednesday" => Ok(Wed),
                    "thu" | "thur" | "thurs" | "thursday" => Ok(Thu),
                    "fri" | "friday" => Ok(Fri),
                    "sat" | "saturday" => Ok(Sat),
                    "sun" | "sunday" => Ok(Sun),
                    _ => Err(format!(
                        "{d} is not a day name (mon, tue, wed, thu, fri, sat, sun, or in full)"
                    )),
                }
            })
            .collect(),
        other => Err(format!(
            "{other} is not \"weekdays\", \"weekend\" or a non-empty list of day names"
        )),
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;
    use Weekday::*;

    #[test]
    fn times_of_day() {
        assert_eq!(parse_time("9:05"), NaiveTime::from_hms_opt(9, 5, 0));
        assert_eq!(parse_time("23:59"), NaiveTime::from_hms_opt(23, 59, 0));
        for bad in ["24:00", "12:60", "12", "12:5", ":30", "123:00", "noon"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_of_the_week() {
        assert_eq!(parse_days(&json!("weekend")), Ok(vec![Sat, Sun]));
        assert_eq!(
            parse_days(&json!(["MON", "thurs", "Sunday"])),
            Ok(vec![Mon, Thu, Sun])
        );
        assert!(parse_days(&json!(["funday"]))
            .unwrap_err()
            .contains("\"funday\" is not a day name"));
        assert!(parse_days(&json!([])).is_err());
        assert!(parse_days(&json!("someday")).is_err());
    }
}
