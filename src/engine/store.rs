//! What nodes read and write beyond the claimed row: templates by name, the status of a message
//! sent, events since a time, the contact as JSON, and update_contact's writes.
use super::clock;
use crate::error::Result;
use chrono::{DateTime, Utc};
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::Value;

/// No row reads as None (where pgrx reports `InvalidPosition`).
fn optional<T>(row: std::result::Result<Option<T>, pgrx::spi::Error>) -> Result<Option<T>> {
    match row {
        Err(pgrx::spi::Error::InvalidPosition) => Ok(None),
        other => Ok(other?),
    }
}

/// The contact as JSON (its row, `attributes` included) and the names of its groups, or why
/// it cannot be read (data serde cannot hold; a missing contact reads as null).
pub fn contact(contact: i64) -> std::result::Result<(Value, Vec<String>), String> {
    let row = Spi::get_two_with_args::<String, Vec<String>>(
        "SELECT to_jsonb(c)::text, ARRAY(SELECT g.name FROM journey.group_members m \
         JOIN journey.groups g ON g.id = m.group_id WHERE m.contact_id = c.id) \
         FROM journey.contacts c WHERE c.id = $1",
        &[contact.into()],
    );
    match row {
        Ok((Some(text), groups)) => Ok((
            crate::model::json::parse(&text, &format!("contact {contact}'s data"))?,
            groups.unwrap_or_default(),
        )),
        Ok((None, _)) | Err(pgrx::spi::Error::InvalidPosition) => Ok((Value::Null, Vec::new())),
        Err(e) => Err(e.to_string()),
    }
}

/// The template called `name`: its subject and body (None when there is no such template).
pub fn template(name: &str) -> Result<Option<(Option<String>, String)>> {
    Spi::connect(|client| {
        let rows = client.select(
            "SELECT subject, body FROM journey.templates WHERE name = $1",
            None,
            &[name.into()],
        )?;
        let mut out = None;
        for row in rows {
            out = Some((
                row.get::<String>(1)?,
                row.get::<String>(2)?.unwrap_or_default(),
            ));
        }
        Ok(out)
    })
}

/// Status of the latest outbox row this enrollment wrote at `node`.
pub fn message_status(enrollment: i64, contact: i64, node: &str) -> Result<Option<String>> {
    optional(Spi::get_one_with_args::<String>(
        "SELECT status FROM journey.outbox WHERE enrollment_id = $1 AND contact_id = $2 AND node = $3 \
         ORDER BY id DESC LIMIT 1",
        &[enrollment.into(), contact.into(), node.into()],
    ))
}

/// Whether the contact has had `event` at or after `since`.
pub fn event_since(contact: i64, event: &str, since: DateTime<Utc>) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM journey.events WHERE contact_id = $1 AND name = $2 AND occurred_at >= $3)",
        &[contact.into(), event.into(), clock::to_pg(since).into()],
    )?
    .unwrap_or(false))
}

/// update_contact: groups through group_members (so group_joined flows fire), fields through
/// the same code as forms and upsert_contact.
pub fn update_contact(
    contact: i64,
    add: &[String],
    remove: &[String],
    set: &serde_json::Map<String, Value>,
) -> Result<()> {
    Spi::connect_mut(|client| -> Result<()> {
        if !add.is_empty() {
            client.update(
                "INSERT INTO journey.group_members (group_id, contact_id) \
                 SELECT g.id, $1 FROM journey.groups g WHERE g.name = ANY ($2) ON CONFLICT DO NOTHING",
                None,
                &[contact.into(), add.to_vec().into()],
            )?;
        }
        if !remove.is_empty() {
            client.update(
                "DELETE FROM journey.group_members m USING journey.groups g \
                 WHERE m.contact_id = $1 AND m.group_id = g.id AND g.name = ANY ($2)",
                None,
                &[contact.into(), remove.to_vec().into()],
            )?;
        }
        if !set.is_empty() {
            client.update(
                "SELECT journey._apply_contact_fields($1, $2)",
                None,
                &[contact.into(), JsonB(contact_fields(set)).into()],
            )?;
        }
        Ok(())
    })
}

/// update_contact's `set` as `_apply_contact_fields` takes it: columns at the top, keys
/// `attributes.<key>` under `attributes`.
fn contact_fields(set: &serde_json::Map<String, Value>) -> Value {
    let mut fields = serde_json::Map::new();
    let mut attributes = serde_json::Map::new();
    for (k, v) in set {
        match k.strip_prefix("attributes.") {
            Some(key) => attributes.insert(key.to_string(), v.clone()),
            None => fields.insert(k.clone(), v.clone()),
        };
    }
    fields.insert("attributes".into(), Value::Object(attributes));
    Value::Object(fields)
}

/// The enrollment a branch belongs to (fork), or None for an enrollment that entered the flow;
/// and how many branches that enrollment (the branch's parent, or the enrollment itself) has
/// started so far.
pub fn parent(contact: i64, enrollment: i64) -> Result<(Option<i64>, i64)> {
    let row = Spi::get_two_with_args::<i64, i64>(
        "SELECT e.parent_id, (SELECT count(*) FROM journey.enrollments b \
                              WHERE b.contact_id = $1 AND b.parent_id = coalesce(e.parent_id, e.id)) \
         FROM journey.enrollments e WHERE e.contact_id = $1 AND e.id = $2",
        &[contact.into(), enrollment.into()],
    );
    match row {
        Ok((parent, started)) => Ok((parent, started.unwrap_or(0))),
        Err(pgrx::spi::Error::InvalidPosition) => Ok((None, 0)),
        Err(e) => Err(e.into()),
    }
}

/// The name of the verified sender at this (lower-case) address, if it has one.
pub fn sender_name(address: &str) -> Result<Option<String>> {
    optional(Spi::get_one_with_args::<String>(
        "SELECT s.name FROM journey.senders s \
         WHERE lower(s.email) = $1 AND s.verified_at IS NOT NULL AND s.name <> '' ORDER BY s.id LIMIT 1",
        &[address.into()],
    ))
}

/// Which of these (lower-case) e-mail addresses belong to a contact who opted out of e-mail.
pub fn opted_out_emails(addresses: &[String]) -> Result<Vec<String>> {
    if addresses.is_empty() {
        return Ok(Vec::new());
    }
    let found = Spi::get_one_with_args::<Vec<String>>(
        "SELECT ARRAY(SELECT DISTINCT lower(c.email) FROM journey.contacts c \
         WHERE lower(c.email) = ANY ($1) AND c.email_opt_out)",
        &[addresses.to_vec().into()],
    )?;
    Ok(found.unwrap_or_default())
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_keys_split_into_columns_and_attributes() {
        let set = json!({"first_name": "Dana", "attributes.plan": "pro", "attributes.n": 3});
        assert_eq!(
            contact_fields(set.as_object().unwrap()),
            json!({"first_name": "Dana", "attributes": {"plan": "pro", "n": 3}})
        );
        assert_eq!(
            contact_fields(&serde_json::Map::new()),
            json!({"attributes": {}})
        );
    }
}
