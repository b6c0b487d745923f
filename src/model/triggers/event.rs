//! event: an event of the named type (INSERT into journey.events, emit); its payload becomes the
//! enrollment's event data.
use super::{known_keys, named, Key, Parsed};
use crate::model::parse::Ctx;
use serde_json::{Map, Value};

pub fn event(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(o, "event", &["event"], cx);
    Some((Key::EventType(named(o, "event", "event type", cx)?), None))
}
