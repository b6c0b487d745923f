//! An enrollment's event data (the trigger payload, `event.<key>` in templates and conditions),
//! kept as the JSON text the claim read and parsed only when a node reads it: into Liquid
//! values for templates, into `serde_json` for conditions.
use liquid::model::Value;
use std::cell::OnceCell;

#[derive(Default)]
pub struct Event {
    /// None for `{}`
    text: Option<String>,
    liquid: OnceCell<Value>,
    json: OnceCell<serde_json::Value>,
}

impl Event {
    pub fn new(text: Option<String>) -> Event {
        Event {
            text,
            ..Event::default()
        }
    }

    /// The data as JSON (`{}` when empty).
    pub fn json(&self) -> &serde_json::Value {
        self.json.get_or_init(|| {
            self.text
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_else(|| serde_json::Value::Object(Default::default()))
        })
    }

    fn liquid(&self) -> &Value {
        self.liquid.get_or_init(|| {
            Value::Object(
                self.text
                    .as_deref()
                    .and_then(super::template::parse_object)
                    .unwrap_or_default(),
            )
        })
    }
}

value_view_via!(Event, liquid, text);

#[cfg(test)]
mod unit {
    use super::*;
    use liquid::model::ValueView;

    #[test]
    fn parsed_on_demand_for_templates_and_conditions() {
        let e = Event::new(Some(r#"{"amount": 12, "tags": ["a"]}"#.into()));
        assert_eq!(e.json()["amount"], 12);
        assert_eq!(
            e.as_object()
                .and_then(|o| o.get("amount"))
                .map(|v| v.to_kstr().to_string()),
            Some("12".into())
        );
        let empty = Event::new(None);
        assert_eq!(empty.json(), &serde_json::json!({}));
        assert_eq!(empty.as_object().map(|o| o.size()), Some(0));
    }
}
