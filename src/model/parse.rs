//! Reading a definition's fields: each reader records a problem (against the node being read)
//! instead of stopping, so validation lists every problem at once.
use super::flow::{Edge, Problem, Reference};
use super::interval::Interval;
use super::predicate;
use super::suggest;
use super::times::{self, Window};
use chrono::{NaiveTime, Weekday};
use serde_json::{Map, Value};

/// What problems about the definition as a whole are recorded against.
pub const FLOW: &str = "(flow)";

/// The parser's state: every problem found so far, the names to look up, and the node (or
/// `(flow)`, `trigger[i]`) being read, which problems and references are recorded against.
pub struct Ctx {
    pub problems: Vec<Problem>,
    pub refs: Vec<Reference>,
    pub node: String,
}

impl Ctx {
    pub fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(Problem {
            node: self.node.clone(),
            problem: text.into(),
        });
    }

    pub fn reference(&mut self, kind: &'static str, name: &str) {
        self.refs.push(Reference {
            node: self.node.clone(),
            kind,
            name: name.to_string(),
        });
    }

    pub fn string(
        &mut self,
        obj: &Map<String, Value>,
        field: &str,
        required: bool,
    ) -> Option<String> {
        match obj.get(field) {
            None | Some(Value::Null) => {
                if required {
                    self.problem(format!("missing required field \"{field}\""));
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() && required => {
                self.problem(format!("field \"{field}\" must not be empty"));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => {
                self.problem(format!("field \"{field}\" must be a string, not {other}"));
                None
            }
        }
    }

    pub fn boolean(&mut self, obj: &Map<String, Value>, field: &str) -> bool {
        match obj.get(field) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(format!(
                    "field \"{field}\" must be true or false, not {other}"
                ));
                false
            }
        }
    }

    pub fn interval(&mut self, obj: &Map<String, Value>, field: &str) -> Option<Interval> {
        let text = self.string(obj, field, false)?;
        match Interval::parse(&text) {
            Ok(iv) => Some(iv),
            Err(e) => {
                self.problem(format!("field \"{field}\": {e}"));
                None
            }
        }
    }

    /// An interval that must be longer than zero (a wait, a check's wait, a timeout): a zero
    /// one would let an enrollment loop or re-send without time passing.
    pub fn positive_interval(&mut self, obj: &Map<String, Value>, field: &str) -> Option<Interval> {
        let iv = self.interval(obj, field)?;
        if iv.is_zero() {
            self.problem(format!(
                "field \"{field}\" must be longer than zero (e.g. \"1 hour\")"
            ));
        }
        Some(iv)
    }

    pub fn time(&mut self, obj: &Map<String, Value>, field: &str) -> Option<NaiveTime> {
        let text = self.string(obj, field, false)?;
        match times::parse_time(&text) {
            Some(t) => Some(t),
            None => {
                self.problem(format!(
                    "field \"{field}\": \"{text}\" is not a time of day (HH:MM, 00:00 to 23:59)"
                ));
                None
            }
        }
    }

    pub fn days(&mut self, obj: &Map<String, Value>, field: &str) -> Option<Vec<Weekday>> {
        let v = obj.get(field)?;
        match times::parse_days(v) {
            Ok(days) => Some(days),
            Err(e) => {
                self.problem(format!("field \"{field}\": {e}"));
                None
            }
        }
    }

    /// A send window (`times::parse_window`) at `obj[key]`; its problems name `label.key`
    /// (`window.from`, `next.window.days`).
    pub fn window(&mut self, obj: &Map<String, Value>, key: &str, label: &str) -> Option<Window> {
        match obj.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => times::parse_window(v)
                .map_err(|problems| {
                    for p in problems {
                        self.problem(format!("field \"{label}\": {p}"));
                    }
                })
                .ok(),
        }
    }

    /// A window decides when a step goes on its own: `at` beside it ("exactly at" against "at
    /// once inside the hours") is a problem, and so are `days` beside it (they go inside it).
    pub fn window_alone(&mut self, obj: &Map<String, Value>, field: &str) {
        let given = |key: &str| obj.get(key).is_some_and(|v| !v.is_null());
        if !given("window") {
            return;
        }
        if given("at") {
            self.problem(format!(
                "{field}\"at\" and \"window\" cannot both be given: \"at\" goes exactly at a time, \
                 a window at once inside its hours (drop one)"
            ));
        }
        if given("days") {
            self.problem(format!(
                "{field}\"days\" beside \"window\": put the days inside the window \
                 ({{\"window\": {{\"from\": ..., \"to\": ..., \"days\": ...}}}})"
            ));
        }
    }

    pub fn edge(&mut self, v: Option<&Value>, field: &str) -> Option<Edge> {
        match v {
            None | Some(Value::Null) => None,
            Some(Value::String(to)) => Some(Edge {
                to: to.clone(),
                ..Edge::default()
            }),
            Some(Value::Object(o)) => {
                let to = self.string(o, "to", true)?;
                const KEYS: &[&str] = &["to", "delay", "at", "days", "window"];
                for key in o.keys() {
                    if !KEYS.contains(&key.as_str()) {
                        let hint = suggest::hint(key, KEYS, "use");
                        self.problem(format!("field \"{field}\" has unknown key \"{key}\"{hint}"));
                    }
                }
                self.window_alone(o, &format!("field \"{field}\": "));
                Some(Edge {
                    to,
                    delay: self.interval(o, "delay"),
                    at: self.time(o, "at"),
                    days: self.days(o, "days"),
                    window: self.window(o, "window", &format!("{field}.window")),
                })
            }
            Some(other) => {
                self.problem(format!("field \"{field}\" must be a node id or {{\"to\", \"delay\", \"at\", \"days\", \"window\"}}, not {other}"));
                None
            }
        }
    }

    /// Checks a predicate (an event trigger's `where`, a condition's `if`): its problems
    /// prefixed by `field`, the groups it names as references.
    pub fn predicate(&mut self, p: &Value, field: &str) {
        let (mut problems, mut groups) = (Vec::new(), Vec::new());
        predicate::check(p, &mut problems, &mut groups);
        problems
            .into_iter()
            .for_each(|x| self.problem(format!("{field}: {x}")));
        groups.iter().for_each(|g| self.reference("group", g));
    }
}
