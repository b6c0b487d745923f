//! A contact as Liquid templates see it (`contact.<column>`, `contact.attributes.<key>`), built
//! from the engine's typed columns: no JSON text in between, field lookup by name is a `match`,
//! and the two timestamps are formatted only when a template reads them. Attributes vary from
//! one contact to the next: a missing one is nil (`| default: '…'` applies, `{% if %}` is
//! false); a column that does not exist (`contact.nick`) is an error.
use super::lenient::Lenient;
use chrono::{DateTime, SecondsFormat, Utc};
use liquid::model::{KStringCow, ObjectView, Value, ValueView};
use std::cell::OnceCell;

/// One `journey.contacts` row. `attributes` is a Liquid object (empty when the column is `{}`).
#[derive(liquid::ValueView, Debug, Default)]
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

/// What templates see of a contact, in order.
pub const FIELDS: &[&str] = &[
    "id",
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "birthday",
    "time_zone",
    "attributes",
    "email_opt_out",
    "sms_opt_out",
    "created_at",
    "updated_at",
];

impl Contact {
    /// The field `name` as templates see it (`attributes` lenient), None for no such field.
    fn field(&self, name: &str) -> Option<&dyn ValueView> {
        Some(match name {
            "id" => &self.id,
            "external_id" => &self.external_id,
            "email" => &self.email,
            "phone" => &self.phone,
            "first_name" => &self.first_name,
            "last_name" => &self.last_name,
            "birthday" => &self.birthday,
            "time_zone" => &self.time_zone,
            "attributes" => Lenient::of(&self.attributes),
            "email_opt_out" => &self.email_opt_out,
            "sms_opt_out" => &self.sms_opt_out,
            "created_at" => &self.created_at,
            "updated_at" => &self.updated_at,
            _ => return None,
        })
    }
}

impl ObjectView for Contact {
    fn as_value(&self) -> &dyn ValueView {
        self
    }
    fn size(&self) -> i64 {
        FIELDS.len() as i64
    }
    fn keys<'k>(&'k self) -> Box<dyn Iterator<Item = KStringCow<'k>> + 'k> {
        Box::new(FIELDS.iter().map(|f| KStringCow::from_static(f)))
    }
    fn values<'k>(&'k self) -> Box<dyn Iterator<Item = &'k dyn ValueView> + 'k> {
        Box::new(FIELDS.iter().filter_map(|f| self.field(f)))
    }
    fn iter<'k>(&'k self) -> Box<dyn Iterator<Item = (KStringCow<'k>, &'k dyn ValueView)> + 'k> {
        Box::new(
            FIELDS
                .iter()
                .filter_map(|f| Some((KStringCow::from_static(f), self.field(f)?))),
        )
    }
    fn contains_key(&self, index: &str) -> bool {
        FIELDS.contains(&index)
    }
    fn get<'s>(&'s self, index: &str) -> Option<&'s dyn ValueView> {
        self.field(index)
    }
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
        let record = crate::render::event::Part::new(&event, "record");
        let vars = Vars {
            contact: &contact,
            event: &event,
            flow: &empty,
            record: &record,
            old: &record,
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
            template::render_test(
                "{{ contact.attributes.nick | default: 'there' }} {% if contact.attributes.vip %}vip{% endif %}[{{ contact.attributes.nick }}]",
                &vars
            )
            .unwrap(),
            "there []"
        );
        assert_eq!(
            template::render_test("{{ contact.size }} {{ contact.attributes.size }}", &vars)
                .unwrap(),
            "13 2"
        );
        assert_eq!(
            template::render_test("{% if contact.updated_at %}y{% else %}n{% endif %}", &vars)
                .unwrap(),
            "n"
        );
    }
}
