//! A flow's routes: at activation its triggers become `journey.flow_triggers` rows (which the
//! audience tables' statement triggers join with their transition tables) and its date
//! triggers a `journey.date_schedule`; pause and archive remove both. `include_existing` enrolls
//! what is already there for the kinds that have something (KINDS' `include_existing`).
use crate::error::{JourneyError, Result};
use crate::model::triggers::{self, Key, Trigger};
use pgrx::prelude::*;
use pgrx::JsonB;

/// Writes the flow's routing rows (one per routed trigger, `pos` its place in `triggers`); a
/// record trigger's say whether the flow (its stored `definition`) can read `old`.
pub fn install(flow_id: i64, triggers: &[Trigger], definition: &serde_json::Value) -> Result<()> {
    clear(flow_id)?;
    let reads_old = triggers::record::reads_old(definition);
    for (pos, t) in triggers.iter().enumerate() {
        if !triggers::kind(t.kind).is_some_and(|k| k.routed) {
            continue;
        }
        let key = match &t.key {
            Key::Group(name) => {
                look_up("SELECT id::text FROM journey.groups WHERE name = $1", name)?
            }
            Key::Form(name) => look_up("SELECT id::text FROM journey.forms WHERE name = $1", name)?,
            Key::EventType(name) => {
                look_up("SELECT name FROM journey.event_types WHERE name = $1", name)?
            }
            Key::Text(text) => text.clone(),
            Key::Any => String::new(),
        };
        // a date trigger's groups are matched by id at firing time
        Spi::run_with_args(
            "INSERT INTO journey.flow_triggers (flow_id, kind, key, condition, pos, params) \
             SELECT $1, $2, $3, $4, $5, CASE WHEN $6::jsonb ? 'groups' THEN $6::jsonb || jsonb_build_object('group_ids', \
                 (SELECT coalesce(jsonb_agg(g.id ORDER BY g.id), '[]') FROM journey.groups g \
                   WHERE g.name IN (SELECT jsonb_array_elements_text($6::jsonb -> 'groups')))) ELSE $6::jsonb END",
            &[
                flow_id.into(),
                t.kind.into(),
                key.into(),
                t.condition.clone().map(JsonB).into(),
                i32::try_from(pos).unwrap_or(i32::MAX).into(),
                match t.kind {
                    "record" => triggers::record::routed_params(t.params.as_ref(), reads_old),
                    _ => t.params.clone(),
                }
                .map(JsonB)
                .into(),
            ],
        )?;
    }
    Ok(())
}

fn look_up(query: &str, name: &str) -> Result<String> {
    Ok(Spi::get_one_with_args::<String>(query, &[name.into()])?.unwrap_or_default())
}

/// Takes the flow out of the routing table and the date schedule: writes stop enrolling into it.
pub fn clear(flow_id: i64) -> Result<()> {
    Spi::run_with_args(
        "DELETE FROM journey.flow_triggers WHERE flow_id = $1",
        &[flow_id.into()],
    )?;
    Spi::run_with_args(
        "DELETE FROM journey.date_schedule WHERE flow_id = $1",
        &[flow_id.into()],
    )?;
    Ok(())
}

/// `include_existing` needs a trigger kind that has existing contacts to enroll (group members,
/// dates); for the others (events, forms, contact changes) it would silently do nothing.
pub fn check_include_existing(flow: &str, triggers: &[Trigger]) -> Result<()> {
    if triggers
        .iter()
        .any(|t| triggers::kind(t.kind).is_some_and(|k| k.include_existing))
    {
        return Ok(());
    }
    let kinds: Vec<&str> = triggers.iter().map(|t| t.kind).collect();
    Err(JourneyError::InvalidArgument {
        argument: "include_existing".into(),
        reason: format!(
            "flow \"{flow}\" has no trigger it could apply to (its triggers: {}); only group_joined (current members) and date (occurrences within settings.date_catch_up) have existing contacts to enroll",
            kinds.join(", ")
        ),
        hint: "Activate it without include_existing, or enroll existing contacts with journey.enroll.".into(),
    })
}

/// Whether the definition (as stored, before the flow is locked) has a date trigger: its
/// activation then holds contacts' writes back (see `activate_flow`).
pub fn has_date_trigger(name: &str) -> Result<bool> {
    Ok(Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM journey.flows f \
             JOIN journey.flow_versions v ON v.flow_id = f.id AND v.version = f.version \
             WHERE f.name = $1 AND v.definition -> 'triggers' @> '[{\"type\": \"date\"}]')",
        &[name.into()],
    )?
    .unwrap_or(false))
}

/// Schedules the flow's date triggers for every contact: the next occurrences after now, or
/// with `include_existing` after now - settings.date_catch_up (those passed within the window
/// are enrolled by the next pass).
pub fn schedule_dates(flow_id: i64, include_existing: bool) -> Result<()> {
    Spi::run_with_args(
        "SELECT journey._date_schedule_flow($1, CASE WHEN $2 THEN now() - \
             (SELECT s.date_catch_up FROM journey.settings s) ELSE now() END)",
        &[flow_id.into(), include_existing.into()],
    )?;
    Ok(())
}

/// Enrolls the current members of the flow's group_joined groups.
pub fn enroll_members(flow_id: i64) -> Result<()> {
    // KEY SHARE on each member's contact, as `enroll` does: enrollments have no foreign key,
    // and the contacts' delete trigger cannot see an enrollment not committed yet. A DELETE of
    // a member now waits for this transaction and then deletes its enrollment; a member deleted
    // by a transaction that commits while this waits is skipped (READ COMMITTED re-checks the
    // locked row and finds it gone).
    Spi::run_with_args(
        "SELECT count(*) FROM (SELECT journey._enroll(array_agg(m.flow_id), array_agg(m.contact_id), \
             array_agg(jsonb_build_object('trigger', 'group_joined', 'group', m.name))) \
           FROM (SELECT t.flow_id, c.id AS contact_id, g.name \
                 FROM journey.flow_triggers t \
                 JOIN journey.group_members m ON m.group_id::text = t.key \
                 JOIN journey.groups g ON g.id = m.group_id \
                 JOIN journey.contacts c ON c.id = m.contact_id \
                 WHERE t.flow_id = $1 AND t.kind = 'group_joined' \
                   AND (t.condition IS NULL OR journey._matches(t.condition, c.id, \
                        jsonb_build_object('trigger', 'group_joined', 'group', g.name))) \
                 FOR KEY SHARE OF c) m \
           HAVING count(*) > 0) x",
        &[flow_id.into()],
    )?;
    Ok(())
}
