//! Objects whose missing keys are nil, as Liquid users expect of data that varies from one
//! contact or event to the next: `{{ contact.attributes.nick | default: 'there' }}` renders
//! `there` when the contact has no `nick`, and `{% if event.coupon %}` is false when the event
//! has none. Nested objects are lenient too. What templates see of `contact` itself (its
//! columns) is not: `contact.nick` stays an error (a typo of a column, or a missing
//! `attributes.`).
use liquid::model::{KStringCow, ObjectView, State, Value, ValueView};

/// A view of a Liquid value that, when it is an object, answers nil for keys it lacks.
#[repr(transparent)]
pub struct Lenient(Value);

/// What a missing key reads as.
static NIL: Value = Value::Nil;

impl Lenient {
    pub fn new(value: Value) -> Lenient {
        Lenient(value)
    }

    /// The lenient view of a value held elsewhere (a contact's attributes, a nested object).
    pub fn of(value: &Value) -> &Lenient {
        // SAFETY: Lenient is a #[repr(transparent)] wrapper of Value, so both have the same
        // layout and a &Value is a valid &Lenient for the same lifetime.
        unsafe { &*(value as *const Value as *const Lenient) }
    }

    pub fn value(&self) -> &Value {
        &self.0
    }
}

impl std::fmt::Debug for Lenient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ValueView for Lenient {
    fn as_debug(&self) -> &dyn std::fmt::Debug {
        self
    }
    fn render(&self) -> liquid::model::DisplayCow<'_> {
        self.0.render()
    }
    fn source(&self) -> liquid::model::DisplayCow<'_> {
        self.0.source()
    }
    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }
    fn query_state(&self, state: State) -> bool {
        self.0.query_state(state)
    }
    fn to_kstr(&self) -> KStringCow<'_> {
        self.0.to_kstr()
    }
    fn to_value(&self) -> Value {
        self.0.clone()
    }
    fn as_scalar(&self) -> Option<liquid::model::ScalarCow<'_>> {
        self.0.as_scalar()
    }
    fn as_array(&self) -> Option<&dyn liquid::model::ArrayView> {
        self.0.as_array()
    }
    fn as_object(&self) -> Option<&dyn ObjectView> {
        self.0.as_object().map(|_| self as &dyn ObjectView)
    }
    fn is_nil(&self) -> bool {
        self.0.is_nil()
    }
}

impl ObjectView for Lenient {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        self.object().map_or(0, |o| o.len() as i64)
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(
            self.object()
                .into_iter()
                .flat_map(|o| o.keys().map(|k| k.as_str().into())),
        )
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(self.iter().map(|(_, v)| v))
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(self.object().into_iter().flat_map(|o| {
            o.iter()
                .map(|(k, v)| (k.as_str().into(), Lenient::of(v) as &dyn ValueView))
        }))
    }
    fn contains_key(&self, index: &str) -> bool {
        self.object().is_some_and(|o| o.contains_key(index))
    }
    /// The key's value, nil when it is missing; but not for `size`, which Liquid then answers
    /// with the object's size.
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        match self.object()?.get(index) {
            Some(v) => Some(Lenient::of(v)),
            None if index == "size" => None,
            None => Some(&NIL),
        }
    }
}

impl Lenient {
    fn object(&self) -> Option<&liquid::model::Object> {
        match &self.0 {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::render::template::{parse_object, render_test};

    fn render(source: &str, data: &str) -> Result<String, String> {
        let lenient = Lenient::new(Value::Object(parse_object(data).unwrap()));
        #[derive(liquid::ObjectView, liquid::ValueView, Debug)]
        struct Vars<'a> {
            d: &'a Lenient,
        }
        render_test(source, &Vars { d: &lenient })
    }

    #[test]
    fn missing_keys_are_nil() {
        let data = r#"{"nick": "Dee", "profile": {"city": "Oslo"}, "tags": ["a", "b"], "n": 0}"#;
        for (source, out) in [
            ("{{ d.nick | default: 'there' }}", "Dee"),
            ("{{ d.name | default: 'there' }}", "there"),
            ("[{{ d.name }}]", "[]"),
            ("{% if d.name %}y{% else %}n{% endif %}", "n"),
            ("{% if d.nick %}y{% else %}n{% endif %}", "y"),
            ("{% unless d.vip %}not vip{% endunless %}", "not vip"),
            (
                "{{ d.profile.city }} {{ d.profile.zip | default: '-' }}",
                "Oslo -",
            ),
            ("{{ d.tags.size }} {{ d.tags.first }} {{ d.size }}", "2 a 4"),
            ("{{ d.n | default: 5 }}", "0"),
            ("{% for t in d.tags %}{{ t }}{% endfor %}", "ab"),
            ("{% if d.name == nil %}nil{% endif %}", "nil"),
        ] {
            assert_eq!(render(source, data).as_deref(), Ok(out), "{source}");
        }
    }

    #[test]
    fn indexing_into_a_missing_value_is_still_an_error() {
        assert!(render("{{ d.name.first.x }}", "{}").is_err());
    }
}
