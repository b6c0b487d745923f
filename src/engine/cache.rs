//! Flow definitions parsed once per (flow, version) and kept for the life of the backend.
//! Versions are immutable, so the cache never needs invalidating. (After DROP EXTENSION and
//! CREATE EXTENSION in the same backend, flow ids start again from 1; a backend that lives
//! across that can see a stale definition until it reconnects.)
use crate::error::{JourneyError, Result};
use crate::model::FlowDef;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static DEFINITIONS: RefCell<HashMap<(i64, i32), Rc<FlowDef>>> = RefCell::new(HashMap::new());
}

pub fn definition(flow_id: i64, version: i32) -> Result<Rc<FlowDef>> {
    if let Some(def) = DEFINITIONS.with(|c| c.borrow().get(&(flow_id, version)).cloned()) {
        return Ok(def);
    }
    let text = Spi::get_one_with_args::<String>(
        "SELECT definition::text FROM journey.flow_versions WHERE flow_id = $1 AND version = $2",
        &[flow_id.into(), version.into()],
    )
    .or_else(|e| match e {
        // no row: the version does not exist (reported below, naming it)
        pgrx::spi::Error::InvalidPosition => Ok(None),
        other => Err(other),
    })?
    .ok_or_else(|| JourneyError::Engine {
        flow: flow_id.to_string(),
        message: format!("version {version} does not exist"),
    })?;
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
        c.insert((flow_id, version), def.clone());
    });
    Ok(def)
}
