//! Flow definitions parsed once per (flow, version) and kept for the life of the backend. An
//! entry is checked against the row's `xmin` once per statement (a batch of the worker, a
//! `run_due` call): a version rewritten in place, or a flow id reused after DROP EXTENSION and
//! CREATE EXTENSION in the same backend, is read again, never served stale.
use crate::error::{JourneyError, Result};
use crate::model::FlowDef;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

struct Entry {
    /// The version row's xmin when it was read.
    xmin: String,
    /// The statement start at which the entry was last checked against the row.
    checked: i64,
    def: Rc<FlowDef>,
}

thread_local! {
    static DEFINITIONS: RefCell<HashMap<(i64, i32), Entry>> = RefCell::new(HashMap::new());
}

fn statement_start() -> i64 {
    // SAFETY: reads the backend's statement start time; the worker sets it per transaction.
    unsafe { pg_sys::GetCurrentStatementStartTimestamp() }
}

pub fn definition(flow_id: i64, version: i32) -> Result<Rc<FlowDef>> {
    let key = (flow_id, version);
    let now = statement_start();
    let fresh = DEFINITIONS.with(|c| {
        c.borrow()
            .get(&key)
            .filter(|e| e.checked == now)
            .map(|e| e.def.clone())
    });
    if let Some(def) = fresh {
        return Ok(def);
    }
    let missing = || JourneyError::Engine {
        flow: flow_id.to_string(),
        message: format!("version {version} does not exist"),
    };
    let xmin = Spi::get_one_with_args::<String>(
        "SELECT xmin::text FROM journey.flow_versions WHERE flow_id = $1 AND version = $2",
        &[flow_id.into(), version.into()],
    )
    .or_else(|e| match e {
        // no row: the version does not exist (reported below, naming it)
        pgrx::spi::Error::InvalidPosition => Ok(None),
        other => Err(other),
    })?
    .ok_or_else(missing)?;
    let unchanged = DEFINITIONS.with(|c| {
        let mut c = c.borrow_mut();
        let e = c.get_mut(&key).filter(|e| e.xmin == xmin)?;
        e.checked = now;
        Some(e.def.clone())
    });
    if let Some(def) = unchanged {
        return Ok(def);
    }
    let text = Spi::get_one_with_args::<String>(
        "SELECT definition::text FROM journey.flow_versions WHERE flow_id = $1 AND version = $2",
        &[flow_id.into(), version.into()],
    )?
    .ok_or_else(missing)?;
    let json = crate::model::json::parse(&text, &format!("version {version} of the flow"))
        .map_err(|message| JourneyError::Engine {
            flow: flow_id.to_string(),
            message,
        })?;
    let def = Rc::new(FlowDef::parse(&json).0);
    DEFINITIONS.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() > 1024 {
            c.clear();
        }
        c.insert(
            key,
            Entry {
                xmin,
                checked: now,
                def: def.clone(),
            },
        );
    });
    Ok(def)
}
