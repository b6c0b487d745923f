//! Verified senders at validation: a `send_email` node naming `from` must name a verified row of
//! `journey.senders` (sql/senders.sql: add_sender, verify_sender, remove_sender). Without
//! `from` the relay's own default sender is used and nothing is checked.
use crate::error::Result;
use crate::model::{FlowDef, NodeKind, Problem};
use pgrx::prelude::*;

/// Whether `text` holds a Liquid tag or output.
fn has_liquid(text: &str) -> bool {
    text.contains("{{") || text.contains("{%")
}

/// The problem of one `from`, if any: Liquid (a sender is one fixed address), no such sender,
/// or not verified yet. The sender's row is locked FOR KEY SHARE: a concurrent remove_sender
/// waits for an activation that checked it (and then finds the flow active), or the activation
/// for the removal (and then finds no sender).
fn from_problem(from: &str) -> Result<Option<String>> {
    let call = format!("journey.add_sender('{from}', 'Name')");
    if has_liquid(from) {
        return Ok(Some(format!(
            "field \"from\": \"{from}\" has Liquid tags: name one verified sender address \
             (journey.add_sender, then journey.verify_sender), or leave out from to send from \
             the relay's default sender"
        )));
    }
    // (a read-only transaction, e.g. validate_flow on a standby, cannot lock: it only reads)
    let read_only =
        Spi::get_one::<bool>("SELECT current_setting('transaction_read_only')::boolean")?;
    // 0: no such sender, 1: not verified, 2: verified
    let query = if read_only == Some(true) {
        "SELECT coalesce((SELECT CASE WHEN s.verified_at IS NULL THEN 1 ELSE 2 END \
             FROM journey.senders s WHERE lower(s.email) = lower($1)), 0)"
    } else {
        "SELECT coalesce((SELECT CASE WHEN s.verified_at IS NULL THEN 1 ELSE 2 END \
             FROM journey.senders s WHERE lower(s.email) = lower($1) FOR KEY SHARE), 0)"
    };
    Ok(
        match Spi::get_one_with_args::<i32>(query, &[from.into()])? {
            Some(2) => None,
            Some(1) => Some(format!(
            "from: sender {from} is not verified (journey.verify_sender('{from}', code) with the \
             code e-mailed to it; {call} sends a new one)"
        )),
            _ => Some(format!(
                "from: sender {from} is not verified ({call} e-mails it a code, then \
             journey.verify_sender('{from}', code))"
            )),
        },
    )
}

/// Appends a problem for each `send_email` whose `from` is not a verified sender.
pub(crate) fn problems(flow: &FlowDef, problems: &mut Vec<Problem>) -> Result<()> {
    for node in flow.nodes.values() {
        if let NodeKind::SendEmail {
            from: Some(from), ..
        } = &node.kind
        {
            if let Some(problem) = from_problem(from)? {
                problems.push(Problem {
                    node: node.id.clone(),
                    problem,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::has_liquid;

    #[test]
    fn liquid_is_an_output_or_a_tag() {
        assert!(has_liquid("{{ contact.email }}"));
        assert!(has_liquid("{% if x %}a@b.c{% endif %}"));
        assert!(!has_liquid("billing@example.com"));
    }
}
