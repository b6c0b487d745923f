//! Authoring around the lifecycle: preview_update (what activating an edit would do to the
//! enrollments in flight), rename_flow, copy_flow, delete_flow and retry_enrollment. test_send
//! is in `test_send`. The functions that change a flow take its lock like the lifecycle
//! functions (`flows::load_flow`); bad input is an error that changes nothing.
use super::flows::{self, load_flow};
use super::jsonb::JsonbText;
use crate::error::{required, JourneyError, OrReport, Result};
use crate::model::FlowDef;
use pgrx::prelude::*;

const NEW_NAME_HINT: &str = "Pass the new flow's name, e.g. 'welcome_v2'.";
const ENROLLMENT_HINT: &str =
    "Pass the id of a failed enrollment (journey.enrollments, status failed).";

/// `new_name` checked: given and not blank.
fn new_name(new_name: Option<&str>) -> Result<&str> {
    super::flows::non_blank(new_name, "new_name", NEW_NAME_HINT, NEW_NAME_HINT)
}

/// An error when a flow called `name` exists.
fn refuse_existing(name: &str) -> Result<()> {
    let exists = Spi::get_one_with_args::<bool>(
        "SELECT EXISTS (SELECT 1 FROM journey.flows WHERE name = $1)",
        &[name.into()],
    )?;
    if exists == Some(true) {
        return Err(JourneyError::DuplicateFlow(name.to_string()));
    }
    Ok(())
}

/// What `activate_flow(…, in_flight => 'continue')` does with an enrollment waiting at `node`
/// once `def` is the current version.
fn effect(def: &FlowDef, node: &str) -> &'static str {
    if def.nodes.contains_key(node) {
        "continue"
    } else {
        "stop: node removed"
    }
}

/// `journey.preview_update(name, definition)`: per node with active (or frozen) enrollments of
/// the flow, how many wait there and what activating the definition with in_flight =>
/// 'continue' after update_flow would do with them. Writes nothing; the errors of update_flow.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn preview_update(
    name: Option<&str>,
    definition: Option<JsonbText>,
) -> TableIterator<
    'static,
    (
        name!(node, String),
        name!(waiting, i64),
        name!(effect, String),
    ),
> {
    let rows = (|| -> Result<Vec<(String, i64, String)>> {
        let (name, def) = flows::checked_update(name, definition)?;
        let flow = load_flow(Some(name), None)?;
        if flow.status == "archived" {
            return Err(JourneyError::WrongStatus {
                flow: flow.name,
                status: flow.status,
                action: "save a new version",
            });
        }
        let (def, _) = FlowDef::parse(&def);
        Spi::connect(|client| {
            let rows = client.select(
                "SELECT node, count(*) FROM journey.enrollments \
                 WHERE flow_id = $1 AND status = 'active' GROUP BY node ORDER BY node",
                None,
                &[flow.id.into()],
            )?;
            let mut out = Vec::new();
            for row in rows {
                let node: String = row.get(1)?.unwrap_or_default();
                let waiting: i64 = row.get(2)?.unwrap_or_default();
                let effect = effect(&def, &node).to_string();
                out.push((node, waiting, effect));
            }
            Ok(out)
        })
    })()
    .or_report();
    TableIterator::new(rows)
}

/// `journey.rename_flow(name, new_name)`: any status; ids (enrollments, steps, outbox) are kept.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn rename_flow(name: Option<&str>, new_name: Option<&str>) {
    (|| -> Result<()> {
        let flow = load_flow(name, Some(true))?;
        let new_name = self::new_name(new_name)?;
        if new_name == flow.name {
            return Ok(());
        }
        refuse_existing(new_name)?;
        Spi::run_with_args(
            "UPDATE journey.flows SET name = $2 WHERE id = $1",
            &[flow.id.into(), new_name.into()],
        )?;
        Ok(())
    })()
    .or_report()
}

/// `journey.copy_flow(name, new_name) → bigint`: a new draft flow, version 1, with the current
/// definition of `name` (copied as stored).
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn copy_flow(name: Option<&str>, new_name: Option<&str>) -> i64 {
    (|| -> Result<i64> {
        let flow = load_flow(name, None)?;
        let new_name = self::new_name(new_name)?;
        refuse_existing(new_name)?;
        let id = Spi::get_one_with_args::<i64>(
            "INSERT INTO journey.flows (name) VALUES ($1) RETURNING id",
            &[new_name.into()],
        )?
        .unwrap_or_default();
        Spi::run_with_args(
            "INSERT INTO journey.flow_versions (flow_id, version, definition) \
             SELECT $1, 1, definition FROM journey.flow_versions WHERE flow_id = $2 AND version = $3",
            &[id.into(), flow.id.into(), flow.version.into()],
        )?;
        Ok(id)
    })()
    .or_report()
}

/// `journey.delete_flow(name)`: a draft or archived flow goes with its versions (and so its
/// enrollments and steps: the delete triggers), routes and date schedule. Its outbox rows stay:
/// their flow_name is set to the flow's name (flow_id keeps the old id).
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn delete_flow(name: Option<&str>) {
    (|| -> Result<()> {
        read_committed()?;
        let flow = load_flow(name, Some(true))?;
        if !["draft", "archived"].contains(&flow.status.as_str()) {
            return Err(JourneyError::WrongStatus {
                flow: flow.name,
                status: flow.status,
                action: "delete",
            });
        }
        Spi::run_with_args(
            "UPDATE journey.outbox SET flow_name = $2 WHERE flow_id = $1",
            &[flow.id.into(), flow.name.as_str().into()],
        )?;
        Spi::run_with_args("DELETE FROM journey.flows WHERE id = $1", &[flow.id.into()])?;
        Ok(())
    })()
    .or_report()
}

/// delete_flow names the outbox rows of the flow after waiting for its lock: at REPEATABLE READ
/// or SERIALIZABLE its snapshot would predate the wait and miss a test_send committed meanwhile.
fn read_committed() -> Result<()> {
    let level = Spi::get_one::<String>("SELECT current_setting('transaction_isolation')")?;
    match level.as_deref() {
        Some("read committed") | Some("read uncommitted") => Ok(()),
        other => Err(JourneyError::InvalidArgument {
            argument: "transaction isolation".into(),
            reason: format!(
                "delete_flow runs at READ COMMITTED, not {}",
                other.unwrap_or("?").to_uppercase()
            ),
            hint: "Call delete_flow in a READ COMMITTED transaction (the default).".into(),
        }),
    }
}

fn enrollment_error(reason: String, hint: &str) -> JourneyError {
    JourneyError::InvalidArgument {
        argument: "enrollment".into(),
        reason,
        hint: hint.into(),
    }
}

/// A failed enrollment as retry_enrollment reads it (locked).
struct Failed {
    contact_id: i64,
    status: String,
    node: Option<String>,
    /// The fork enrollment this one is a branch of, if it is one.
    parent_id: Option<i64>,
}

/// The enrollment `id` of flow `flow_id`, locked FOR UPDATE.
fn lock_enrollment(id: i64, flow_id: i64) -> Result<Option<Failed>> {
    Spi::connect_mut(|client| {
        let rows = client.update(
            "SELECT contact_id, status, node, parent_id FROM journey.enrollments \
             WHERE id = $1 AND flow_id = $2 FOR UPDATE",
            None,
            &[id.into(), flow_id.into()],
        )?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(Failed {
            contact_id: row.get(1)?.unwrap_or_default(),
            status: row.get(2)?.unwrap_or_default(),
            node: row.get(3)?,
            parent_id: row.get(4)?,
        }))
    })
}

/// An error unless `node` (where `what` failed) is in the flow's current version.
fn require_node(flow: &flows::Flow, def: &FlowDef, what: &str, node: &str) -> Result<()> {
    if def.nodes.contains_key(node) {
        return Ok(());
    }
    let reason = format!(
        "{what} failed at node \"{node}\", which version {} of flow \"{}\" does not have",
        flow.version, flow.name
    );
    let hint = "Enroll the contact again with journey.enroll(flow, contact).";
    Err(enrollment_error(reason, hint))
}

/// An error when the contact has an active enrollment in the flow (the one-active rule).
fn refuse_active(flow: &flows::Flow, contact_id: i64) -> Result<()> {
    let other = Spi::get_one_with_args::<i64>(
        "SELECT (SELECT id FROM journey.enrollments \
         WHERE flow_id = $1 AND contact_id = $2 AND status = 'active' AND parent_id IS NULL)",
        &[flow.id.into(), contact_id.into()],
    )?;
    let Some(other) = other else { return Ok(()) };
    let reason = format!(
        "contact {contact_id} already has an active enrollment ({other}) in flow \"{}\"",
        flow.name
    );
    let hint = "Retry once that enrollment has ended (journey.timeline(contact) shows it).";
    Err(enrollment_error(reason, hint))
}

/// The failed branches (id, node) of the fork enrollment `id`, locked.
fn failed_branches(id: i64, contact_id: i64) -> Result<Vec<(i64, String)>> {
    Spi::connect_mut(|client| {
        let rows = client.update(
            "SELECT id, node FROM journey.enrollments \
             WHERE contact_id = $1 AND parent_id = $2 AND status = 'failed' ORDER BY id FOR UPDATE",
            None,
            &[contact_id.into(), id.into()],
        )?;
        let mut out = Vec::new();
        for row in rows {
            out.push((
                row.get(1)?.unwrap_or_default(),
                row.get(2)?.unwrap_or_default(),
            ));
        }
        Ok(out)
    })
}

/// Makes the enrollments `ids` of the contact active on `version` at their node, due at
/// `due` ('now' or 'infinity': a fork's enrollment waits for its branches).
fn reactivate(ids: &[i64], contact_id: i64, version: i32, due: &str) -> Result<()> {
    Spi::run_with_args(
        "UPDATE journey.enrollments SET status = 'active', version = $3, \
             due_at = CASE WHEN $4 = 'infinity' THEN 'infinity'::timestamptz ELSE now() END, \
             attempts = 0, last_error = NULL, waiting = NULL, updated_at = now() \
         WHERE contact_id = $2 AND id = ANY ($1)",
        &[
            ids.to_vec().into(),
            contact_id.into(),
            version.into(),
            due.into(),
        ],
    )?;
    Ok(())
}

/// `journey.retry_enrollment(id) → boolean`: a failed enrollment runs again from the node it
/// failed at, on the flow's current version, due now (attempts 0, last_error and waiting
/// cleared; its steps keep the failure). An enrollment a fork's branch failed waits at its
/// fork again and its failed branches run again from their nodes. Refused when it is not
/// failed, it is a fork's branch, its flow is not active, a node is not in the current version
/// or its contact has another active enrollment in the flow. Takes the flow's shared lock,
/// like enrolling.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn retry_enrollment(id: Option<i64>) -> bool {
    (|| -> Result<bool> {
        let id = required(id, "enrollment id", ENROLLMENT_HINT)?;
        let unknown = || enrollment_error(format!("enrollment {id} does not exist"), ENROLLMENT_HINT);
        let flow_name = Spi::get_one_with_args::<String>(
            "SELECT (SELECT f.name FROM journey.enrollments e JOIN journey.flows f ON f.id = e.flow_id \
             WHERE e.id = $1)",
            &[id.into()],
        )?
        .ok_or_else(unknown)?;
        let flow = load_flow(Some(&flow_name), Some(false))?;
        let e = lock_enrollment(id, flow.id)?.ok_or_else(unknown)?;
        if e.status != "failed" {
            let reason = format!("enrollment {id} is {}, not failed", e.status);
            return Err(enrollment_error(reason, "Only a failed enrollment can be retried."));
        }
        if let Some(parent) = e.parent_id {
            let reason = format!("enrollment {id} is a branch of a fork (enrollment {parent})");
            let hint = "Retry the enrollment the branch belongs to: its failed branches run again.";
            return Err(enrollment_error(reason, hint));
        }
        if flow.status != "active" {
            return Err(JourneyError::WrongStatus {
                flow: flow.name,
                status: flow.status,
                action: "retry an enrollment",
            });
        }
        let (def, _) = FlowDef::parse(&flow.definition);
        require_node(&flow, &def, &format!("enrollment {id}"), e.node.as_deref().unwrap_or_default())?;
        let branches = failed_branches(id, e.contact_id)?;
        for (branch, node) in &branches {
            require_node(&flow, &def, &format!("branch {branch} of enrollment {id}"), node)?;
        }
        refuse_active(&flow, e.contact_id)?;
        if branches.is_empty() {
            reactivate(&[id], e.contact_id, flow.version, "now")?;
        } else {
            reactivate(&[id], e.contact_id, flow.version, "infinity")?;
            let ids: Vec<i64> = branches.iter().map(|(b, _)| *b).collect();
            reactivate(&ids, e.contact_id, flow.version, "now")?;
        }
        crate::engine::wake::wake_on_commit();
        Ok(true)
    })()
    .or_report()
}

extension_sql!(
    r#"
COMMENT ON FUNCTION journey.preview_update(text, jsonb) IS 'What saving this definition (update_flow) and activating it with in_flight => continue would do with the flow''s active and frozen enrollments: per node they wait at, how many (waiting) and the effect: continue (the node is in the new definition) or stop: node removed. Writes nothing; refuses what update_flow refuses. activate_flow still refuses an incomplete definition (validate_flow).';
COMMENT ON FUNCTION journey.rename_flow(text, text) IS 'Renames a flow (any status); its enrollments, steps and messages keep it (by id). Refused when the new name is taken.';
COMMENT ON FUNCTION journey.copy_flow(text, text) IS 'Creates a draft flow new_name, version 1, with the current definition of flow name; returns its id.';
COMMENT ON FUNCTION journey.delete_flow(text) IS 'Deletes a draft or archived flow with its versions, enrollments, steps, routes and date schedule. Its outbox rows stay, with outbox.flow_name set to its name (coalesce(f.name, o.flow_name) over outbox o LEFT JOIN flows f ON f.id = o.flow_id names the flow of any message).';
COMMENT ON FUNCTION journey.retry_enrollment(bigint) IS 'Runs a failed enrollment again from the node it failed at, on the flow''s current version, due now (attempts 0, last_error cleared; the failed step stays in steps). An enrollment a fork''s branch failed waits at its fork again and its failed branches run again from their nodes. Refused unless the enrollment is failed and not a fork''s branch (retry the enrollment it belongs to), its flow active, its node (and its failed branches'') in the current version and its contact without another active enrollment in the flow. Returns true.';
"#,
    name = "authoring_comments",
    requires = [
        preview_update,
        rename_flow,
        copy_flow,
        delete_flow,
        retry_enrollment
    ]
);

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn preview_continues_kept_nodes_and_stops_removed_ones() {
        let def = json!({"triggers": [{"type": "manual"}], "start": "a",
                         "nodes": {"a": {"type": "goal", "name": "g"}}});
        let (def, _) = FlowDef::parse(&def);
        assert_eq!(effect(&def, "a"), "continue");
        assert_eq!(effect(&def, "b"), "stop: node removed");
    }
}
