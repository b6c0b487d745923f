//! update_contact: adds and removes groups (so group_joined flows fire) and sets columns and
//! attributes, now, in a subtransaction: a lock timeout or a violated constraint fails (or
//! retries) this enrollment, not the batch. Row locks are waited for at most briefly (see
//! `batch::LockTimeout`).
use super::{Context, Outcome};
use crate::engine::claim::Enrollment;
use crate::engine::{store, subxact};
use crate::error::{JourneyError, Result};
use crate::model::{Node, NodeKind};

pub fn run<'d>(e: &Enrollment, node: &'d Node, cx: &mut Context) -> Result<Outcome<'d>> {
    let NodeKind::UpdateContact {
        add_groups,
        remove_groups,
        set,
    } = &node.kind
    else {
        unreachable!("{} is not update_contact", node.type_name())
    };
    cx.lock_timeout.hold_briefly()?;
    match subxact::run(std::panic::AssertUnwindSafe(|| {
        store::update_contact(e.contact_id, add_groups, remove_groups, set)
    })) {
        Ok(done) => done?,
        Err(caught) => {
            return Err(JourneyError::Step {
                flow: e.flow_name.clone(),
                node: node.id.clone(),
                transient: caught.is_transient(),
                message: caught.message,
            })
        }
    }
    Ok(Outcome::Updated)
}
