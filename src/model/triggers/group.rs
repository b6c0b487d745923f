//! group_joined and group_left: a membership added to (INSERT into journey.group_members,
//! add_to_group) or removed from (DELETE, remove_from_group) the named group.
use super::{known_keys, named, Key, Parsed};
use crate::model::parse::Ctx;
use serde_json::{Map, Value};

pub fn joined(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(o, "group_joined", &["group"], cx);
    Some((Key::Group(named(o, "group", "group", cx)?), None))
}

pub fn left(o: &Map<String, Value>, cx: &mut Ctx) -> Parsed {
    known_keys(o, "group_left", &["group"], cx);
    Some((Key::Group(named(o, "group", "group", cx)?), None))
}
