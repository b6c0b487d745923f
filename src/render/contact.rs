//! A contact as Liquid templates see it (`contact.<column>`, `contact.attributes.<key>`), built
//! from the engine's typed columns: no JSON text in between, field lookup by name is a `match`,
//! and the two timestamps are formatted only when a template reads them.
use chrono::{DateTime, SecondsFormat, Utc};
use liquid::model::{ObjectView, Value};
use std::cell::OnceCell;

/// One `journey.contacts` row. `attributes` is a Liquid object (empty when the column is `{}`).
#[derive(liquid::ObjectView, liquid::ValueView, Debug, Default)]
pub struct Contact {
    pub id: i64,
    pub external_id: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// `YYYY-MM-DD`
    pub birthday: Option<String>,
    pub time_zone: Option<String>,
    pub attributes: Value,
    pub email_opt_out: bool,
    pub sms_opt_out: bool,
    pub created_at: Stamp,
    pub updated_at: Stamp,
}

/// A timestamp that renders as ISO 8601 in UTC (`2026-11-26T17:40:00.123456+00:00`, as
/// PostgreSQL's JSON prints it), formatted on first use.
#[derive(Default)]
pub struct Stamp {
    at: Option<DateTime<Utc>>,
    text: OnceCell<Option<String>>,
}

impl Stamp {
    pub fn new(at: Option<DateTime<Utc>>) -> Stamp {
        Stamp {
            at,
            text: OnceCell::new(),
        }
    }

    fn text(&self) -> &Option<String> {
        self.text.get_or_init(|| {
            self.at
                .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
        })
    }
}

value_view_via!(Stamp, text, at);

#[cfg(test)]
mod unit {
    use super::*;
    use crate::render::template::{self, Vars};
    use chrono::TimeZone;

    fn dana() -> Contact {
        Contact {
            id: 7,
            first_name: Some("Dana".into()),
            email: Some("dana@example.com".into()),
            attributes: Value::Object(
                template::parse_object(r#"{"plan": "pro", "n": 3}"#).unwrap(),
            ),
            created_at: Stamp::new(Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap())),
            birthday: Some("1990-05-06".into()),
            ..Contact::default()
        }
    }

    #[test]
    fn columns_attributes_and_nil_fields_render() {
        let (contact, event) = (dana(), crate::render::event::Event::new(None));
        let empty = Value::Object(Default::default());
        let vars = Vars {
            contact: &contact,
            event: &event,
            flow: &empty,
        };
        let out = template::render_test(
            "{{ contact.id }} {{ contact.first_name }} {{ contact.attributes.plan }} {{ contact.attributes.n | plus: 1 }} [{{ contact.last_name }}] {{ contact.last_name | default: 'x' }} {{ contact.sms_opt_out }} {{ contact.birthday }} {{ contact.created_at }} [{{ contact.updated_at }}]",
            &vars,
        )
        .unwrap();
        assert_eq!(
            out,
            "7 Dana pro 4 [] x false 1990-05-06 2026-01-02T03:04:05+00:00 []"
        );
        assert!(template::render_test("{{ contact.no_such_column }}", &vars).is_err());
        assert_eq!(
            template::render_test("{% if contact.updated_at %}y{% else %}n{% endif %}", &vars)
                .unwrap(),
            "n"
        );
    }
}
