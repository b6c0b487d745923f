//! Flow lifecycle: create_flow, update_flow, validate_flow, activate_flow, pause_flow,
//! archive_flow, enroll.
use super::jsonb::JsonbText;
use super::routes;
use crate::error::{required, JourneyError, OrReport, Result};
use crate::model::definition::check_shape;
use crate::model::{FlowDef, Problem, Reentry};
use pgrx::prelude::*;
use pgrx::JsonB;

const NAME_HINT: &str = "Pass the flow's name (journey.flows.name).";
const DEF_HINT: &str =
    "Pass the definition as jsonb: {\"triggers\": [...], \"start\": ..., \"nodes\": {...}}.";

struct FlowRow {
    id: i64,
    name: String,
    status: String,
    version: i32,
    definition: serde_json::Value,
}

/// The lock `load` takes on the flow before it reads it (issue #11, item 10).
///
/// Enrolling takes a shared lock on every flow it enrolls into (`journey._lock_flows`, called by
/// `journey._enroll` and the audience triggers; `enroll` here); the lifecycle functions
/// (activate_flow, update_flow, pause_flow, archive_flow) take the exclusive lock before they
/// read the flow. Whichever comes second waits for the first to commit and then reads the flow
/// and its enrollments with a snapshot taken after the lock, so no enrollment made concurrently
/// stays on a version or status a lifecycle change replaced. It is a heavyweight lock on the
/// object (journey.flows, flow id) in the lock manager: nothing is written (no WAL, no row
/// lock, no multixact), it ends with the transaction, and no SQL statement can take it (unlike
/// an advisory lock, which any role may take and hold for its whole session).
#[derive(Clone, Copy, PartialEq, Eq)]
enum FlowLock {
    /// No lock: validate_flow only reads the flow.
    None,
    /// Enrolling: many at a time.
    Share,
    /// A lifecycle change: waits for transactions that enrolled into the flow, and they for it.
    Exclusive,
}

/// Takes `mode` on the flow `id`: the object lock (journey.flows, id), `pg_locks.locktype =
/// 'object'`, `classid = 'journey.flows'::regclass`, `objid` = the id's low 32 bits (ids further
/// apart than 2^32 share a lock: they only wait for each other).
fn lock_flow(id: i64, mode: FlowLock) {
    let lockmode = match mode {
        FlowLock::None => return,
        FlowLock::Share => pg_sys::AccessShareLock,
        FlowLock::Exclusive => pg_sys::AccessExclusiveLock,
    };
    // SAFETY: plain catalog lookups and a lock acquisition; an ERROR (deadlock, lock_timeout,
    // cancel) is turned into a Rust panic by pgrx's guard and raised again at the boundary.
    unsafe {
        let namespace = pg_sys::get_namespace_oid(c"journey".as_ptr(), false);
        let flows = pg_sys::get_relname_relid(c"flows".as_ptr(), namespace);
        if flows == pg_sys::Oid::INVALID {
            pgrx::error!("journey.flows does not exist");
        }
        pg_sys::LockDatabaseObject(
            flows,
            pg_sys::Oid::from(id as u32),
            0,
            lockmode as pg_sys::LOCKMODE,
        );
    }
}

/// `journey._lock_flows(flows bigint[])`: internal, the shared lock of enrolling on each of
/// these flows (see `FlowLock`), in id order. Called by journey._enroll and the audience
/// triggers before they read the flows.
#[pg_extern(name = "_lock_flows")]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn lock_flows(flows: Option<pgrx::Array<i64>>) {
    let Some(flows) = flows else { return };
    let mut ids: Vec<i64> = flows.iter().flatten().collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        lock_flow(id, FlowLock::Share);
    }
}

/// activate_flow and archive_flow update the flow's enrollments after waiting for its lock: at
/// REPEATABLE READ or SERIALIZABLE their snapshot predates the wait and would miss enrollments
/// committed meanwhile.
fn require_read_committed(action: &str) -> Result<()> {
    // SAFETY: reads the backend's transaction isolation level.
    let level = unsafe { pg_sys::XactIsoLevel };
    if level >= pg_sys::XACT_REPEATABLE_READ as i32 {
        let name = if level == pg_sys::XACT_REPEATABLE_READ as i32 {
            "REPEATABLE READ"
        } else {
            "SERIALIZABLE"
        };
        return Err(JourneyError::InvalidArgument {
            argument: "transaction isolation".into(),
            reason: format!("{action} runs at READ COMMITTED, not {name}"),
            hint: format!(
                "Call {action} in a READ COMMITTED transaction (the default): it waits for transactions \
                 enrolling into the flow and must then see their enrollments."
            ),
        });
    }
    Ok(())
}

/// The flow's current row and definition, after taking `lock` on it. With a lock, the flow is
/// read again by id with a snapshot taken after the lock (SPI in read-write mode takes a new
/// snapshot per statement at READ COMMITTED), so a change committed while waiting is seen.
fn load(name: &str, lock: FlowLock) -> Result<FlowRow> {
    Spi::connect_mut(|client| {
        let by_id = if lock == FlowLock::None {
            None
        } else {
            let rows = client.update(
                "SELECT id FROM journey.flows WHERE name = $1",
                None,
                &[name.into()],
            )?;
            let Some(row) = rows.into_iter().next() else {
                return Err(JourneyError::UnknownFlow(name.to_string()));
            };
            let id: i64 = row.get(1)?.unwrap_or_default();
            lock_flow(id, lock);
            Some(id)
        };
        let select = "SELECT f.id, f.status, f.version, v.definition::text FROM journey.flows f \
             JOIN journey.flow_versions v ON v.flow_id = f.id AND v.version = f.version";
        let rows = match by_id {
            None => client.update(&format!("{select} WHERE f.name = $1"), None, &[name.into()])?,
            // FOR UPDATE as well: a direct UPDATE of the row (not through these functions)
            // cannot slip in between
            Some(id) if lock == FlowLock::Exclusive => client.update(
                &format!("{select} WHERE f.id = $1 FOR UPDATE OF f"),
                None,
                &[id.into()],
            )?,
            Some(id) => client.update(&format!("{select} WHERE f.id = $1"), None, &[id.into()])?,
        };
        let Some(row) = rows.into_iter().next() else {
            return Err(JourneyError::UnknownFlow(name.to_string()));
        };
        Ok(FlowRow {
            id: row.get(1)?.unwrap_or_default(),
            name: name.to_string(),
            status: row.get(2)?.unwrap_or_default(),
            version: row.get(3)?.unwrap_or_default(),
            // read as text: a version put into flow_versions by hand that serde cannot hold is
            // an error naming the flow, not a panic
            definition: match row.get::<String>(4)? {
                Some(text) => {
                    crate::model::json::parse(&text, "its definition").map_err(|problem| {
                        JourneyError::Malformed {
                            flow: name.to_string(),
                            problem,
                        }
                    })?
                }
                None => serde_json::Value::Null,
            },
        })
    })
}

/// The definition argument parsed (from its text: a number beyond f64 or nesting past serde's
/// limit is a clear error) and checked for shape and size.
pub(crate) fn checked_definition(
    flow: &str,
    definition: Option<JsonbText>,
) -> Result<serde_json::Value> {
    let text = required(definition, "definition", DEF_HINT)?.0;
    let malformed = |problem| JourneyError::Malformed {
        flow: flow.to_string(),
        problem,
    };
    if text.len() > crate::model::json::MAX_DEFINITION_BYTES {
        return Err(malformed(format!(
            "it is {} bytes long, more than {}",
            text.len(),
            crate::model::json::MAX_DEFINITION_BYTES
        )));
    }
    let def = crate::model::json::parse(&text, "the definition").map_err(malformed)?;
    check_shape(&def).map_err(|problem| JourneyError::Malformed {
        flow: flow.to_string(),
        problem,
    })?;
    Ok(def)
}

fn checked_name(name: Option<&str>) -> Result<&str> {
    non_blank(
        name,
        "flow name",
        NAME_HINT,
        "Give the flow a name, e.g. 'welcome'.",
    )
}

/// A text argument that must be given (`missing` hints how) and not blank (`blank` hints).
pub(crate) fn non_blank<'a>(
    value: Option<&'a str>,
    argument: &'static str,
    missing: &'static str,
    blank: &str,
) -> Result<&'a str> {
    let value = required(value, argument, missing)?;
    if value.trim().is_empty() {
        return Err(JourneyError::InvalidArgument {
            argument: argument.into(),
            reason: "it is empty".into(),
            hint: blank.into(),
        });
    }
    Ok(value)
}

/// `journey.create_flow(name, definition) → bigint`: a new draft flow, version 1.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn create_flow(name: Option<&str>, definition: Option<JsonbText>) -> i64 {
    (|| -> Result<i64> {
        let name = checked_name(name)?;
        let def = checked_definition(name, definition)?;
        let exists = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT 1 FROM journey.flows WHERE name = $1)",
            &[name.into()],
        )?;
        if exists == Some(true) {
            return Err(JourneyError::DuplicateFlow(name.to_string()));
        }
        let id = Spi::get_one_with_args::<i64>(
            "INSERT INTO journey.flows (name) VALUES ($1) RETURNING id",
            &[name.into()],
        )?
        .unwrap_or_default();
        Spi::run_with_args(
            "INSERT INTO journey.flow_versions (flow_id, version, definition) VALUES ($1, 1, $2)",
            &[id.into(), JsonB(def).into()],
        )?;
        Ok(id)
    })()
    .or_report()
}

/// `journey.update_flow(name, definition) → int`: saves a new version; an active flow is
/// paused with reason 'edited' until it is activated again.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn update_flow(name: Option<&str>, definition: Option<JsonbText>) -> i32 {
    (|| -> Result<i32> {
        let name = checked_name(name)?;
        let def = checked_definition(name, definition)?;
        let flow = load(name, FlowLock::Exclusive)?;
        if flow.status == "archived" {
            return Err(JourneyError::WrongStatus {
                flow: flow.name,
                status: flow.status,
                action: "save a new version",
            });
        }
        let version = flow.version + 1;
        Spi::run_with_args(
            "INSERT INTO journey.flow_versions (flow_id, version, definition) VALUES ($1, $2, $3)",
            &[flow.id.into(), version.into(), JsonB(def).into()],
        )?;
        Spi::run_with_args(
            "UPDATE journey.flows SET version = $2, \
                 status = CASE WHEN status = 'active' THEN 'paused' ELSE status END, \
                 paused_reason = CASE WHEN status = 'active' THEN 'edited' ELSE paused_reason END \
             WHERE id = $1",
            &[flow.id.into(), version.into()],
        )?;
        // The routes stay (those of the version last activated): contacts whose triggers fire
        // while the flow is paused by this edit (or by a quota) are enrolled frozen and follow
        // activate_flow's in_flight; a flow paused by hand has none.
        Ok(version)
    })()
    .or_report()
}

/// Checks the syntax of a Liquid field of a definition (the compiled template is cached for
/// the renders to come).
fn liquid_syntax(source: &str) -> std::result::Result<(), String> {
    crate::render::template::compile(source).map(|_| ())
}

/// Liquid fields (that compile) reading a variable no contact or event will ever have: an
/// unknown top-level name or contact column (render/probe.rs). A missing attribute or event key
/// is not one: it is nil at run time.
fn unknown_variables(flow: &FlowDef, problems: &mut Vec<Problem>) {
    use crate::render::{probe, template};
    for node in flow.nodes.values() {
        for (field, source) in node.templates() {
            if liquid_syntax(source).is_err() {
                continue; // listed as a syntax error already
            }
            if let Err(why) = probe::unknown_variables(source, template::postgres_interrupts) {
                problems.push(Problem {
                    node: node.id.clone(),
                    problem: format!("field \"{field}\": {why}"),
                });
            }
        }
    }
}

/// Every problem of a definition (its Liquid fields checked by the template compiler),
/// including names that must exist in the database.
pub fn problems(def: &serde_json::Value) -> Result<(FlowDef, Vec<Problem>)> {
    if let Err(problem) = check_shape(def) {
        return Ok((
            FlowDef::parse(&serde_json::json!({})).0,
            vec![Problem {
                node: "(flow)".into(),
                problem,
            }],
        ));
    }
    let (flow, mut problems) = FlowDef::validate(def, &liquid_syntax);
    unknown_variables(&flow, &mut problems);
    for r in &flow.refs {
        let query = match r.kind {
            "group" => "SELECT EXISTS (SELECT 1 FROM journey.groups WHERE name = $1)",
            "form" => "SELECT EXISTS (SELECT 1 FROM journey.forms WHERE name = $1)",
            "event type" => "SELECT EXISTS (SELECT 1 FROM journey.event_types WHERE name = $1)",
            "template" => "SELECT EXISTS (SELECT 1 FROM journey.templates WHERE name = $1)",
            "sms template" => "SELECT EXISTS (SELECT 1 FROM journey.templates WHERE name = $1 AND channel = 'sms')",
            "whatsapp template" => "SELECT EXISTS (SELECT 1 FROM journey.templates WHERE name = $1 AND channel = 'whatsapp')",
            "record type" => "SELECT EXISTS (SELECT 1 FROM journey.record_types WHERE name = $1)",
            _ => continue,
        };
        if Spi::get_one_with_args::<bool>(query, &[r.name.as_str().into()])? != Some(true) {
            problems.push(Problem {
                node: r.node.clone(),
                problem: format!("unknown {} \"{}\"", r.kind, r.name),
            });
        }
    }
    crate::api::records::problems(&flow, &mut problems)?;
    crate::api::senders::problems(&flow, &mut problems)?;
    Ok((flow, problems))
}

/// `journey.validate_flow(name)`: one row per problem of the current version; none = complete.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn validate_flow(
    name: Option<&str>,
) -> TableIterator<'static, (name!(node, String), name!(problem, String))> {
    let rows = (|| -> Result<Vec<(String, String)>> {
        let flow = load(checked_name(name)?, FlowLock::None)?;
        let (_, problems) = problems(&flow.definition)?;
        Ok(problems.into_iter().map(|p| (p.node, p.problem)).collect())
    })()
    .or_report();
    TableIterator::new(rows)
}

/// `journey.activate_flow(name, include_existing, in_flight)`.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn activate_flow(
    name: Option<&str>,
    include_existing: default!(Option<bool>, false),
    in_flight: default!(Option<&str>, "'continue'"),
) {
    (|| -> Result<()> {
        let name = checked_name(name)?;
        require_read_committed("activate_flow")?;
        let include_existing = required(include_existing, "include_existing", "Pass true or false.")?;
        if include_existing {
            // Members joining while this runs: their trigger cannot see this activation's routes
            // and the query below could not see their rows, so neither would enroll them. SHARE
            // waits for open transactions that wrote memberships (the query then sees them) and
            // holds new ones back until this commits (their trigger then enrolls). Taken before
            // the flow lock, so a writer holding a membership never waits for this flow's lock
            // while this waits for it.
            Spi::run("LOCK TABLE journey.group_members IN SHARE MODE")?;
        }
        let dated = routes::has_date_trigger(name)?;
        if dated {
            // The same for contacts and their dates: a contact written while this scans
            // contacts would be scheduled by neither this nor its own trigger.
            Spi::run("LOCK TABLE journey.contacts IN SHARE MODE")?;
        }
        let flow = load(name, FlowLock::Exclusive)?;
        let in_flight = required(in_flight, "in_flight", "Pass 'continue' or 'stop'.")?;
        if !["continue", "stop"].contains(&in_flight) {
            return Err(JourneyError::InvalidArgument {
                argument: "in_flight".into(),
                reason: format!("\"{in_flight}\" is neither 'continue' nor 'stop'"),
                hint: "'continue' moves frozen enrollments onto the new version; 'stop' stops them.".into(),
            });
        }
        if flow.status == "archived" {
            return Err(JourneyError::WrongStatus { flow: flow.name, status: flow.status, action: "activate" });
        }
        let (def, problems) = problems(&flow.definition)?;
        if !problems.is_empty() {
            return Err(JourneyError::Incomplete {
                flow: flow.name,
                problems: problems.into_iter().map(|p| (p.node, p.problem)).collect(),
            });
        }
        if include_existing {
            routes::check_include_existing(&flow.name, &def.triggers)?;
        }
        let reentry = match def.reentry {
            Reentry::Never => None,
            Reentry::Always => Some("0".to_string()),
            Reentry::After(iv) => Some(iv.to_pg()),
        };
        Spi::run_with_args(
            "UPDATE journey.flows SET status = 'active', paused_reason = NULL, activated_at = now(), \
                 start_node = $2, reentry_after = $3::interval, routed_version = version WHERE id = $1",
            &[flow.id.into(), def.start.as_str().into(), reentry.into()],
        )?;
        routes::install(flow.id, &def.triggers, &flow.definition)?;
        let nodes: Vec<String> = def.nodes.keys().cloned().collect();
        if in_flight == "stop" {
            Spi::run_with_args(
                "UPDATE journey.enrollments SET status = 'stopped', due_at = NULL, updated_at = now(), \
                     last_error = 'stopped when the flow was activated with in_flight = stop' \
                 WHERE flow_id = $1 AND status = 'active'",
                &[flow.id.into()],
            )?;
        } else {
            // (an enrollment waiting at a fork for its branches, due never, never runs its node
            // again: it waits on, whatever the new version, and its branches end it)
            Spi::run_with_args(
                "UPDATE journey.enrollments SET status = 'stopped', due_at = NULL, updated_at = now(), \
                     last_error = format('node \"%s\" no longer exists in version %s', node, $2) \
                 WHERE flow_id = $1 AND status = 'active' AND version <> $2 AND NOT node = ANY ($3) \
                   AND due_at < 'infinity'",
                &[flow.id.into(), flow.version.into(), nodes.into()],
            )?;
            Spi::run_with_args(
                "UPDATE journey.enrollments SET version = $2, updated_at = now() \
                 WHERE flow_id = $1 AND status = 'active' AND version <> $2",
                &[flow.id.into(), flow.version.into()],
            )?;
        }
        if include_existing {
            routes::enroll_members(flow.id)?;
        }
        if def.triggers.iter().any(|t| t.kind == "date") {
            routes::schedule_dates(flow.id, include_existing)?;
        }
        crate::engine::wake::wake_on_commit();
        Ok(())
    })()
    .or_report()
}

/// `journey.pause_flow(name)`: enrollments freeze and triggers stop enrolling. A flow paused
/// by an edit or a quota (whose triggers still enroll, frozen) becomes paused by hand.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn pause_flow(name: Option<&str>) {
    (|| -> Result<()> {
        let flow = load(checked_name(name)?, FlowLock::Exclusive)?;
        match flow.status.as_str() {
            "active" | "paused" => {}
            _ => {
                return Err(JourneyError::WrongStatus {
                    flow: flow.name,
                    status: flow.status,
                    action: "pause",
                })
            }
        }
        Spi::run_with_args(
            "UPDATE journey.flows SET status = 'paused', paused_reason = 'manual' WHERE id = $1",
            &[flow.id.into()],
        )?;
        routes::clear(flow.id)?;
        Ok(())
    })()
    .or_report()
}

/// `journey.archive_flow(name)`: the flow stops for good; active enrollments are stopped.
#[pg_extern]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn archive_flow(name: Option<&str>) {
    (|| -> Result<()> {
        let name = checked_name(name)?;
        require_read_committed("archive_flow")?;
        let flow = load(name, FlowLock::Exclusive)?;
        Spi::run_with_args(
            "UPDATE journey.flows SET status = 'archived', paused_reason = NULL WHERE id = $1",
            &[flow.id.into()],
        )?;
        routes::clear(flow.id)?;
        Spi::run_with_args(
            "UPDATE journey.enrollments SET status = 'stopped', due_at = NULL, updated_at = now(), \
                 last_error = 'flow archived' WHERE flow_id = $1 AND status = 'active'",
            &[flow.id.into()],
        )?;
        Ok(())
    })()
    .or_report()
}

/// `journey.enroll(flow, contact, data) → bigint`: enrolls a contact by hand (any active
/// flow). Returns the enrollment id, or NULL when the contact is already active in the flow
/// or its reentry rule keeps it out. SECURITY DEFINER (search_path pinned) so that the app role
/// may call it with no privilege on journey._enroll or UPDATE on journey.flows: it takes the
/// flow's shared lock (not a row lock), checks the flow is active, locks the contact and
/// enrolls through journey._enroll.
#[pg_extern(security_definer)]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn enroll(
    flow: Option<&str>,
    contact: Option<i64>,
    data: default!(Option<JsonbText>, "'{}'"),
) -> Option<i64> {
    (|| -> Result<Option<i64>> {
        let f = load(checked_name(flow)?, FlowLock::Share)?;
        let contact = required(contact, "contact", "Pass a contact id from journey.contacts.")?;
        let data = match data {
            Some(d) => d.parse("data")?,
            None => serde_json::json!({}),
        };
        if !data.is_object() {
            return Err(JourneyError::InvalidArgument {
                argument: "data".into(),
                reason: format!("{data} is not a JSON object"),
                hint: "Pass the payload templates see as event, e.g. '{\"order\": 42}'.".into(),
            });
        }
        if f.status != "active" {
            return Err(JourneyError::WrongStatus { flow: f.name, status: f.status, action: "enroll" });
        }
        let exists = Spi::get_one_with_args::<bool>(
            // KEY SHARE: the contact cannot be deleted before this transaction ends (enrollments
            // have no foreign key; see sql/schema.sql)
            "SELECT EXISTS (SELECT 1 FROM journey.contacts WHERE id = $1 FOR KEY SHARE)",
            &[contact.into()],
        )?;
        if exists != Some(true) {
            return Err(JourneyError::UnknownContact(contact));
        }
        let id = Spi::get_one_with_args::<i64>(
            "SELECT (SELECT id FROM journey._enroll(ARRAY[$1::bigint], ARRAY[$2::bigint], ARRAY[$3::jsonb]) id)",
            &[f.id.into(), contact.into(), JsonB(data).into()],
        )?;
        if id.is_some() {
            crate::engine::wake::wake_on_commit();
        }
        Ok(id)
    })()
    .or_report()
}

/// A flow as api::authoring reads it: its current row and definition.
pub(crate) struct Flow {
    pub id: i64,
    pub name: String,
    pub status: String,
    pub version: i32,
    pub definition: serde_json::Value,
}

/// For api::authoring: the flow `name` (checked like the lifecycle functions' argument), after
/// taking its exclusive lock (`Some(true)`), its shared lock (`Some(false)`) or none (`None`).
pub(crate) fn load_flow(name: Option<&str>, exclusive: Option<bool>) -> Result<Flow> {
    let lock = match exclusive {
        Some(true) => FlowLock::Exclusive,
        Some(false) => FlowLock::Share,
        None => FlowLock::None,
    };
    let f = load(checked_name(name)?, lock)?;
    Ok(Flow {
        id: f.id,
        name: f.name,
        status: f.status,
        version: f.version,
        definition: f.definition,
    })
}

/// For api::authoring: update_flow's checks of its arguments (name, then definition).
pub(crate) fn checked_update(
    name: Option<&str>,
    definition: Option<JsonbText>,
) -> Result<(&str, serde_json::Value)> {
    let name = checked_name(name)?;
    Ok((name, checked_definition(name, definition)?))
}

extension_sql!(
    r#"
COMMENT ON FUNCTION journey.create_flow(text, jsonb) IS 'Creates a draft flow (version 1) from a definition ({triggers, reentry, start, nodes}, see the README); returns its id. The definition may be incomplete: journey.validate_flow lists what is missing.';
COMMENT ON FUNCTION journey.update_flow(text, jsonb) IS 'Saves a new version of a flow and returns its number. An active flow is paused (reason edited) until activated again: its enrollments freeze meanwhile, and contacts its triggers (those of the version last activated) fire for are enrolled frozen at its start node; activate_flow''s in_flight applies to them all.';
COMMENT ON FUNCTION journey.validate_flow(text) IS 'Every problem of the flow''s current version as (node, problem) rows; no rows = complete. Unknown groups, forms, event types and templates are problems too.';
COMMENT ON FUNCTION journey.activate_flow(text, boolean, text) IS 'Activates a flow, refusing (listing the problems) when incomplete. include_existing enrolls current members of its trigger groups. in_flight = continue moves frozen enrollments onto the current version by node id (stopping those whose node is gone); stop stops them all.';
COMMENT ON FUNCTION journey.pause_flow(text) IS 'Pauses a flow by hand (paused_reason manual): its enrollments freeze (the engine skips them) and its triggers stop enrolling, also for a flow paused by an edit or a quota (whose triggers enroll frozen). activate_flow resumes it.';
COMMENT ON FUNCTION journey.archive_flow(text) IS 'Archives a flow for good: triggers stop and active enrollments are stopped.';
COMMENT ON FUNCTION journey._lock_flows(bigint[]) IS 'Internal: the shared lock of enrolling on each of these flows, held until the transaction ends. journey._enroll and the audience triggers take it before they read the flows; activate_flow, update_flow, pause_flow and archive_flow take the exclusive one before they read the flow, so either waits for the other to commit and then sees its changes. A heavyweight lock on the object (journey.flows, flow id) in the lock manager: pg_locks shows it as locktype object, classid journey.flows, objid the flow id; nothing is written and no SQL statement can take it.';
COMMENT ON FUNCTION journey.enroll(text, bigint, jsonb) IS 'Enrolls a contact into an active flow by hand; data becomes the event payload templates see. Returns the enrollment id, or NULL when the contact is already active in the flow or the flow''s reentry rule keeps it out.';
"#,
    name = "flows_comments",
    requires = [
        create_flow,
        update_flow,
        validate_flow,
        activate_flow,
        pause_flow,
        archive_flow,
        enroll,
        lock_flows
    ]
);

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    #[test]
    fn validation_checks_liquid_with_the_template_compiler() {
        let def = json!({
            "triggers": [{"type": "manual"}], "start": "a",
            "nodes": {"a": {"type": "send_sms", "text": "{% if %}", "sender": "{{ x }}"}}
        });
        let (_, problems) = FlowDef::validate(&def, &liquid_syntax);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].node, "a");
        assert!(
            problems[0]
                .problem
                .starts_with("field \"text\": Liquid syntax error: "),
            "{problems:?}"
        );
    }
}
