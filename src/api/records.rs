//! Record types (sql/records.sql): who may attach and write the app's tables
//! (`journey._caller_may`), and the names a flow's record triggers and record nodes use that
//! must exist in the catalog: record types (a reference, checked in flows.rs), the columns a
//! trigger's `changed` lists, the tables and columns update_record and create_record write.
use crate::error::Result;
use crate::model::triggers::Key;
use crate::model::{FlowDef, NodeKind, Problem};
use pgrx::pg_sys;
use pgrx::prelude::*;

/// `journey._caller_may(table, privilege)`: whether the role outside any SECURITY DEFINER
/// function (the one that called attach_table, link or allow_writes) holds the privilege on the
/// table. Inside a definer function `current_user` is the definer; the outer user is not.
/// Never inside a security-restricted operation: there the outer user is not who runs the code
/// (a trigger on an app table that the worker writes as the table's owner runs as that owner
/// while the outer user is still the worker's role), so nothing is lent from there.
#[pg_extern(name = "_caller_may", stable)]
#[search_path(pg_catalog, journey, pg_temp)]
pub fn caller_may(tbl: pg_sys::Oid, privilege: &str) -> bool {
    if unsafe { pg_sys::InSecurityRestrictedOperation() } {
        return false;
    }
    let caller = unsafe { pg_sys::GetOuterUserId() };
    Spi::get_one_with_args::<bool>(
        "SELECT pg_catalog.has_table_privilege($1, $2, $3)",
        &[caller.into(), tbl.into(), privilege.into()],
    )
    .ok()
    .flatten()
    .unwrap_or(false)
}

extension_sql!(
    "COMMENT ON FUNCTION journey._caller_may(oid, text) IS 'Internal: whether the calling role (outside any SECURITY DEFINER function) holds the privilege on the table; false inside a security-restricted operation (a trigger a flow''s write fires), where that role is not who runs the code.';",
    name = "caller_may_comment",
    requires = [caller_may]
);

/// Lists what a definition's record triggers and record nodes name that the catalog lacks.
pub fn problems(flow: &FlowDef, problems: &mut Vec<Problem>) -> Result<()> {
    let types: Vec<&str> = flow
        .triggers
        .iter()
        .filter(|t| t.kind == "record")
        .filter_map(|t| match &t.key {
            Key::Text(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    for (i, t) in flow.triggers.iter().enumerate() {
        if let (Key::Text(name), Some(changed)) =
            (&t.key, t.params.as_ref().and_then(|p| p.get("changed")))
        {
            if t.kind == "record" {
                let columns: Vec<String> =
                    serde_json::from_value(changed.clone()).unwrap_or_default();
                if let Some(p) = check(
                    "SELECT journey._record_columns_problem($1, NULL, NULL, $2, false)",
                    name,
                    &columns,
                )? {
                    problems.push(Problem {
                        node: format!("trigger[{i}]"),
                        problem: format!("field \"changed\": {p}"),
                    });
                }
            }
        }
    }
    for node in flow.nodes.values() {
        let problem = match &node.kind {
            NodeKind::UpdateRecord { target, set } => {
                let columns: Vec<String> = set.iter().map(|(c, _)| c.clone()).collect();
                if types.is_empty() {
                    Some("update_record needs a record trigger (the record it updates is the one that fired the flow)".to_string())
                } else {
                    let mut found = None;
                    for t in &types {
                        found = found.or(check_target(t, target, &columns)?);
                    }
                    found
                }
            }
            NodeKind::CreateRecord { table, values } => {
                let columns: Vec<String> = values.iter().map(|(c, _)| c.clone()).collect();
                Spi::get_one_with_args::<String>(
                    "SELECT journey._record_columns_problem(NULL, NULL, $1, $2, true)",
                    &[table.as_str().into(), columns.into()],
                )?
            }
            _ => None,
        };
        if let Some(problem) = problem {
            problems.push(Problem {
                node: node.id.clone(),
                problem,
            });
        }
    }
    Ok(())
}

fn check_target(record_type: &str, target: &str, columns: &[String]) -> Result<Option<String>> {
    Ok(Spi::get_one_with_args::<String>(
        "SELECT journey._record_columns_problem($1, $2, NULL, $3, true)",
        &[record_type.into(), target.into(), columns.to_vec().into()],
    )?)
}

fn check(query: &str, name: &str, columns: &[String]) -> Result<Option<String>> {
    Ok(Spi::get_one_with_args::<String>(
        query,
        &[name.into(), columns.to_vec().into()],
    )?)
}
