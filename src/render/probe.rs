//! Variables a template reads that no contact or event will ever have, found when a flow is
//! validated rather than when a contact reaches the node: an unknown top-level name
//! (`{{ contat.first_name }}`, `{{ order }}`) or a contact column that does not exist
//! (`{{ contact.nick }}`). The template is rendered once with an empty contact, event and flow
//! (attributes and event keys are nil, as for a contact or event without them); only those
//! two errors are problems, anything else a render with empty data may raise is left to the
//! real renders. What a branch the empty data does not take reads is not checked.
use super::budget::Limits;
use super::contact::Contact;
use super::event::Event;
use super::lenient::Lenient;
use super::template;
use liquid::model::{ObjectView, Value};

/// What the probe renders with: the engine's variables, but `flow` lenient too.
#[derive(liquid::ObjectView, liquid::ValueView, Debug)]
struct Probe<'a> {
    contact: &'a Contact,
    event: &'a Event,
    flow: &'a Lenient,
    record: &'a Lenient,
    old: &'a Lenient,
}

/// Err(why) when `source` reads a variable that does not exist (see the module's doc);
/// `interrupts` is called as renders call it.
pub fn unknown_variables(source: &str, interrupts: fn()) -> Result<(), String> {
    let contact = Contact {
        attributes: Value::Object(Default::default()),
        ..Contact::default()
    };
    let (event, flow) = (
        Event::new(None),
        Lenient::new(Value::Object(Default::default())),
    );
    let record = Lenient::new(Value::Object(Default::default()));
    let vars = Probe {
        contact: &contact,
        event: &event,
        flow: &flow,
        record: &record,
        old: &record,
    };
    match template::render_with(source, &vars, Limits::output(1 << 20), interrupts) {
        Err(why) if why.contains(" is not a variable") => Err(why),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod unit {
    use super::unknown_variables;

    fn check(source: &str) -> Result<(), String> {
        unknown_variables(source, || {})
    }

    #[test]
    fn unknown_names_and_columns_are_found() {
        for ok in [
            "Hi {{ contact.first_name }}",
            "{{ contact.attributes.nick | default: 'there' }}",
            "{% if event.coupon %}{{ event.coupon.code }}{% endif %}",
            "{{ flow.name }} {{ event.order.total | default: 0 }}",
            "{% assign n = contact.first_name | default: 'you' %}{{ n }}",
            "{% for t in contact.attributes.tags %}{{ t }}{% endfor %}",
            "{% if contact.first_name %}{{ contat }}{% endif %}",
        ] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check("Hi {{ contat.first_name }}"),
            Err("contat is not a variable (did you mean contact?)".into())
        );
        assert_eq!(
            check("Hi {{ contact.frist_name }}"),
            Err("contact.frist_name is not a variable (did you mean contact.first_name?)".into())
        );
        assert!(check("{{ contact.nick | default: 'x' }}")
            .unwrap_err()
            .starts_with("contact.nick is not a variable: use contact.attributes.nick"));
    }
}
