//! Times of day and days of the week as flows write them: `at` (`"HH:MM"`), `days`
//! (`"weekdays"`, `"weekend"`, `"all"`, or a list of day names) and send windows
//! (`{"from": "09:00", "to": "18:00", "days": "weekdays"}`) of waits and edges. Intervals
//! (`delay`, `wait`, `timeout`, …) are read by `interval.rs`.
use chrono::{NaiveTime, Weekday};
use serde_json::Value;

/// A send window: the hours (local, in the contact's zone) a step may go, on `days` (all days
/// when None). `to` before `from` spans midnight: the window opens on an allowed day at `from`
/// and closes at `to` the next morning (so `{"from": "22:00", "to": "02:00", "days": ["fri"]}`
/// includes Saturday 01:00). `from == to` is refused (empty, or every hour: say which with no
/// window or other hours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveTime,
    pub to: NaiveTime,
    pub days: Option<Vec<Weekday>>,
}

impl Window {
    /// Whether the window runs past midnight into the next day.
    pub fn spans_midnight(&self) -> bool {
        self.to < self.from
    }
}

/// Reads a window object; every problem, each naming its key (`from`, `to`, `days`).
pub fn parse_window(v: &Value) -> Result<Window, Vec<String>> {
    let Value::Object(o) = v else {
        return Err(vec![format!(
            "must be {{\"from\": \"HH:MM\", \"to\": \"HH:MM\", \"days\": ...}}, not {v}"
        )]);
    };
    let mut problems = Vec::new();
    for key in o.keys() {
        if !["from", "to", "days"].contains(&key.as_str()) {
            problems.push(format!("unknown key \"{key}\" (use from, to, days)"));
        }
    }
    let mut time = |key: &str| match o.get(key) {
        None | Some(Value::Null) => {
            problems.push(format!(
                "missing \"{key}\" (a time of day, HH:MM, e.g. \"09:00\")"
            ));
            None
        }
        Some(Value::String(s)) => parse_time(s).or_else(|| {
            problems.push(format!(
                "\"{key}\": \"{s}\" is not a time of day (HH:MM, 00:00 to 23:59)"
            ));
            None
        }),
        Some(other) => {
            problems.push(format!(
                "\"{key}\" must be a time of day as a string (\"HH:MM\"), not {other}"
            ));
            None
        }
    };
    let (from, to) = (time("from"), time("to"));
    let days = match o.get("days") {
        None | Some(Value::Null) => None,
        Some(d) => parse_days(d)
            .map_err(|e| problems.push(format!("\"days\": {e}")))
            .ok(),
    };
    if from.is_some() && from == to {
        problems.push(
            "\"from\" and \"to\" are the same time: a window needs hours between them \
             (\"to\" before \"from\" spans midnight)"
                .into(),
        );
    }
    match (from, to) {
        (Some(from), Some(to)) if problems.is_empty() => Ok(Window { from, to, days }),
        _ => Err(problems),
    }
}

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

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn windows() {
        let w = parse_window(&json!({"from": "09:00", "to": "18:00", "days": "weekdays"})).unwrap();
        assert_eq!(
            w,
            Window {
                from: hm(9, 0),
                to: hm(18, 0),
                days: Some(vec![Mon, Tue, Wed, Thu, Fri])
            }
        );
        assert!(!w.spans_midnight());
        let night = parse_window(&json!({"from": "22:00", "to": "2:00"})).unwrap();
        assert_eq!(night.days, None);
        assert!(night.spans_midnight());
    }

    #[test]
    fn bad_windows_name_each_field() {
        let problems = |v: Value| parse_window(&v).unwrap_err().join(" | ");
        assert_eq!(
            problems(json!("9-5")),
            "must be {\"from\": \"HH:MM\", \"to\": \"HH:MM\", \"days\": ...}, not \"9-5\""
        );
        let p = problems(json!({"from": "9am", "days": ["funday"], "until": "18:00"}));
        assert!(p.contains("unknown key \"until\""), "{p}");
        assert!(p.contains("\"from\": \"9am\" is not a time of day"), "{p}");
        assert!(p.contains("missing \"to\""), "{p}");
        assert!(p.contains("\"days\": \"funday\" is not a day name"), "{p}");
        assert!(problems(json!({"from": 9, "to": "18:00"}))
            .contains("\"from\" must be a time of day as a string"));
        assert!(problems(json!({"from": "09:00", "to": "9:00"})).contains("are the same time"));
        assert!(problems(json!({"from": "09:00", "to": "18:00", "days": []})).contains("\"days\""));
    }
}
