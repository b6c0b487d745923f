//! Look-ups the nodes need beyond the claimed row.
use pgrx::prelude::*;
use serde_json::Value;

/// The contact as JSON (its row, `attributes` included) and the names of its groups, or why
/// it cannot be read (data serde cannot hold; a missing contact reads as null).
pub fn contact(contact: i64) -> Result<(Value, Vec<String>), String> {
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
