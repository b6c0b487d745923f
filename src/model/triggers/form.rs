//! form_submitted: a submission of the named form (INSERT into journey.form_submissions,
//! submit_form); the submitted data becomes the enrollment's event data.
use super::{known_keys, named, Key, Parsed};
use crate::model::parse::Ctx;
use serde_json::{Map, Value};

pub fn submitted(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(o, "form_submitted", &["form"], cx);
    Some((Key::Form(named(o, "form", "form", cx)?), None))
}
