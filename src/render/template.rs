//! Liquid templates (the `liquid` crate). Parsed templates are cached per backend by source
//! text, so a flow's templates are parsed once, not once per contact.
use liquid::{Object, ObjectView, Parser, Template};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static PARSER: Parser = liquid::ParserBuilder::with_stdlib()
        .build()
        .expect("the Liquid standard library builds");
    static CACHE: RefCell<HashMap<String, Rc<Template>>> = RefCell::new(HashMap::new());
}

const CACHE_LIMIT: usize = 4096;

/// Parses (or fetches from the cache) a template; the error is Liquid's message.
pub fn compile(source: &str) -> Result<Rc<Template>, String> {
    if let Some(t) = CACHE.with(|c| c.borrow().get(source).cloned()) {
        return Ok(t);
    }
    let template = PARSER
        .with(|p| p.parse(source))
        .map(Rc::new)
        .map_err(|e| one_line(&e.to_string()))?;
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_LIMIT {
            c.clear();
        }
        c.insert(source.to_string(), template.clone());
    });
    Ok(template)
}

/// Renders a template with the given variables (`contact`, `event`, `flow`).
pub fn render(source: &str, vars: &dyn liquid::ObjectView) -> Result<String, String> {
    let template = compile(source)?;
    template.render(vars).map_err(|e| one_line(&e.to_string()))
}

/// Parses a JSON object's text straight into a Liquid object (the engine reads contacts'
/// attributes as text): one pass, no `serde_json::Value` in between.
pub fn parse_object(text: &str) -> Option<Object> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    match LiquidSeed.deserialize(&mut de).ok()? {
        liquid::model::Value::Object(o) => de.end().ok().map(|_| o),
        _ => None,
    }
}

/// The variables of one render, borrowed rather than copied into a new object: the engine
/// keeps each enrollment's contact and event, and one `flow` value per flow version.
#[derive(liquid::ObjectView, liquid::ValueView, Debug)]
pub struct Vars<'a> {
    pub contact: &'a super::contact::Contact,
    pub event: &'a super::event::Event,
    pub flow: &'a liquid::model::Value,
}

struct LiquidSeed;

impl<'de> serde::de::DeserializeSeed<'de> for LiquidSeed {
    type Value = liquid::model::Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(LiquidVisitor)
    }
}

struct LiquidVisitor;

impl<'de> serde::de::Visitor<'de> for LiquidVisitor {
    type Value = liquid::model::Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => liquid::model::Value::scalar(i),
            Err(_) => liquid::model::Value::scalar(v as f64),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::Nil)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(LiquidSeed)? {
            items.push(v);
        }
        Ok(liquid::model::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Object::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(LiquidSeed)?;
            object.insert(key.into(), value);
        }
        Ok(liquid::model::Value::Object(object))
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    /// JSON to a Liquid value, walked directly.
    fn to_liquid(value: &serde_json::Value) -> liquid::model::Value {
        use liquid::model::Value as L;
        use serde_json::Value as J;
        match value {
            J::Null => L::Nil,
            J::Bool(b) => L::scalar(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => L::scalar(i),
                None => L::scalar(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => L::scalar(s.clone()),
            J::Array(items) => L::Array(items.iter().map(to_liquid).collect()),
            J::Object(map) => L::Object(
                map.iter()
                    .map(|(k, v)| (k.clone().into(), to_liquid(v)))
                    .collect(),
            ),
        }
    }

    /// Builds the variables object from JSON values.
    fn variables(
        contact: &serde_json::Value,
        event: &serde_json::Value,
        flow: &serde_json::Value,
    ) -> Object {
        let mut vars = Object::new();
        for (name, value) in [("contact", contact), ("event", event), ("flow", flow)] {
            vars.insert(name.into(), to_liquid(value));
        }
        vars
    }

    #[test]
    fn renders_contact_and_event() {
        let vars = variables(
            &json!({"first_name": "Dana"}),
            &json!({"amount": 12}),
            &json!({"name": "f"}),
        );
        assert_eq!(
            render(
                "Hi {{ contact.first_name }}, {{ event.amount }} in {{ flow.name }}",
                &vars
            )
            .unwrap(),
            "Hi Dana, 12 in f"
        );
        assert_eq!(
            render(
                "Hi {{ contact.last_name | default: 'there' }}",
                &variables(&json!({"last_name": null}), &json!({}), &json!({}))
            )
            .unwrap(),
            "Hi there"
        );
    }

    #[test]
    fn json_values_keep_their_types() {
        let vars = variables(
            &json!({"n": 3, "x": 1.5, "ok": true, "tags": ["a", "b"], "none": null, "o": {"k": "v"}}),
            &json!({}),
            &json!({}),
        );
        assert_eq!(
            render(
                "{{ contact.n | plus: 1 }} {{ contact.x }} {{ contact.ok }} {{ contact.tags | join: '+' }} [{{ contact.none }}] {{ contact.o.k }}",
                &vars
            )
            .unwrap(),
            "4 1.5 true a+b [] v"
        );
    }

    #[test]
    fn json_text_parses_to_the_same_variables() {
        let text = r#"{"n": 3, "x": 1.5, "ok": true, "tags": ["a", "b"], "none": null, "o": {"k": "v\u00e9"}}"#;
        let mut direct = Object::new();
        direct.insert(
            "contact".into(),
            liquid::model::Value::Object(parse_object(text).unwrap()),
        );
        let via_serde = variables(&serde_json::from_str(text).unwrap(), &json!({}), &json!({}));
        let t = "{{ contact.n | plus: 1 }} {{ contact.x }} {{ contact.ok }} {{ contact.tags | join: '+' }} [{{ contact.none }}] {{ contact.o.k }}";
        assert_eq!(render(t, &direct).unwrap(), render(t, &via_serde).unwrap());
        assert_eq!(render(t, &direct).unwrap(), "4 1.5 true a+b [] v\u{e9}");
        assert!(parse_object("[1]").is_none());
        assert!(parse_object("{\"a\": 1} x").is_none());
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(compile("{% if %}").is_err());
        assert!(compile("{{ contact.first_name ").is_err());
    }
}
