//! `journey._matches`: an event trigger's `where` evaluated by the audience triggers
//! (sql/triggers.sql). The predicate language itself (check, eval) is `model::predicate`.
use crate::error::{JourneyError, OrReport};
use crate::model::predicate::{eval, needs_contact, Subject};
use pgrx::prelude::*;
use serde_json::Value;

/// `journey._matches(predicate, contact, event)`: evaluates an event trigger's `where`. The
/// jsonb arguments arrive as text: an event payload serde cannot hold is a clear error, not a
/// panic.
#[pg_extern(name = "_matches", stable, parallel_safe)]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn matches(
    predicate: crate::api::jsonb::JsonbText,
    contact: i64,
    event: crate::api::jsonb::JsonbText,
) -> bool {
    let p = predicate.parse("where").or_report();
    let event = event.parse("event payload").or_report();
    let (contact_json, groups) = if needs_contact(&p) {
        crate::engine::store::contact(contact)
            .map_err(|reason| JourneyError::InvalidArgument {
                argument: "contact".into(),
                reason,
                hint: "Fix the contact's attributes with journey.upsert_contact.".into(),
            })
            .or_report()
    } else {
        (Value::Null, Vec::new())
    };
    eval(
        &p,
        &Subject {
            contact: &contact_json,
            event: &event,
            groups: &groups,
        },
    )
}

extension_sql!(
    "COMMENT ON FUNCTION journey._matches(jsonb, bigint, jsonb) IS 'Internal: evaluates a predicate (the if/where language of flow definitions: field/op/value, all, any, not, in_group) against a contact and an event payload.';",
    name = "matches_comment",
    requires = [matches]
);
