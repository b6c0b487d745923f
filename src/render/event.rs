//! An enrollment's event data (the trigger payload, `event.<key>` in templates and conditions),
//! kept as the JSON text the claim read and parsed only when a node reads it: into Liquid
//! values for templates, into `serde_json` for conditions. Data that cannot be read (a number
//! beyond f64, nesting past serde's limit) is an error of this enrollment: `json` returns it,
//! and after a render `error` tells it (a Liquid view cannot fail). Event data varies by
//! trigger: a missing key is nil (`lenient.rs`).
use super::lenient::Lenient;
use liquid::model::Value;
use std::cell::OnceCell;

#[derive(Default)]
pub struct Event {
    /// None for `{}`
    text: Option<String>,
    liquid: OnceCell<Lenient>,
    json: OnceCell<Result<serde_json::Value, String>>,
    error: OnceCell<String>,
}

impl Event {
    pub fn new(text: Option<String>) -> Event {
        Event {
            text,
            ..Event::default()
        }
    }

    /// The data as JSON (`{}` when empty), or why it cannot be read.
    pub fn json(&self) -> Result<&serde_json::Value, String> {
        self.json
            .get_or_init(|| match self.text.as_deref() {
                None => Ok(serde_json::Value::Object(Default::default())),
                Some(t) => crate::model::json::parse(t, "the event data"),
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Why the data could not be read for a template, once a template tried.
    pub fn error(&self) -> Option<String> {
        self.error.get().cloned()
    }

    fn liquid(&self) -> &Lenient {
        self.liquid.get_or_init(|| {
            let parsed = match self.text.as_deref() {
                None => Some(Default::default()),
                Some(t) => super::template::parse_object(t),
            };
            Lenient::new(Value::Object(parsed.unwrap_or_else(|| {
                let why = self
                    .json()
                    .err()
                    .unwrap_or_else(|| "the event data cannot be read".into());
                let _ = self.error.set(why);
                Default::default()
            })))
        })
    }
}

value_view_via!(Event, liquid, text);

/// A key of the event data seen as a variable of its own: a record trigger's `record` and
/// `old` (`{{ record.amount }}` is `{{ event.record.amount }}`). Absent, it is an empty object
/// (its keys nil); read only when a template reads it.
pub struct Part<'a> {
    event: &'a Event,
    key: &'static str,
}

impl<'a> Part<'a> {
    pub fn new(event: &'a Event, key: &'static str) -> Part<'a> {
        Part { event, key }
    }

    fn inner(&self) -> &Lenient {
        static EMPTY: std::sync::OnceLock<Lenient> = std::sync::OnceLock::new();
        match self.event.liquid().value() {
            Value::Object(o) => match o.get(self.key) {
                Some(v @ Value::Object(_)) => Lenient::of(v),
                _ => EMPTY.get_or_init(|| Lenient::new(Value::Object(Default::default()))),
            },
            _ => EMPTY.get_or_init(|| Lenient::new(Value::Object(Default::default()))),
        }
    }
}

value_view_via!(Part<'_>, inner, key);

#[cfg(test)]
mod unit {
    use super::*;
    use liquid::model::ValueView;

    #[test]
    fn record_and_old_are_parts_of_the_data() {
        let e = Event::new(Some(
            r#"{"record": {"id": 7, "account": {"name": "Acme"}}}"#.into(),
        ));
        let vars = crate::render::template::Vars {
            contact: &Default::default(),
            event: &e,
            flow: &Value::Nil,
            record: &Part::new(&e, "record"),
            old: &Part::new(&e, "old"),
        };
        let out = crate::render::template::render_test(
            "{{ record.id }} {{ record.account.name }} [{{ old.status }}] [{{ record.missing }}]",
            &vars,
        );
        assert_eq!(out.unwrap(), "7 Acme [] []");
    }

    #[test]
    fn parsed_on_demand_for_templates_and_conditions() {
        let e = Event::new(Some(r#"{"amount": 12, "tags": ["a"]}"#.into()));
        assert_eq!(e.json().unwrap()["amount"], 12);
        assert_eq!(
            e.as_object()
                .and_then(|o| o.get("amount"))
                .map(|v| v.to_kstr().to_string()),
            Some("12".into())
        );
        let empty = Event::new(None);
        assert_eq!(empty.json().unwrap(), &serde_json::json!({}));
        assert_eq!(empty.as_object().map(|o| o.size()), Some(0));
    }

    #[test]
    fn unreadable_data_is_an_error_not_an_empty_object() {
        let e = Event::new(Some(r#"{"n": 1e400}"#.into()));
        assert!(e.json().unwrap_err().contains("out of range"));
        assert_eq!(e.error(), None);
        assert_eq!(e.as_object().map(|o| o.size()), Some(0));
        assert!(e.error().unwrap().contains("out of range"));
    }
}
