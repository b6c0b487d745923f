//! What a node did: one [`Outcome`] per node entered. It gives the `journey.steps.outcome`
//! text, the outbox message (if any) and the [`Route`] the enrollment takes. The two failure
//! outcomes (`retry`, `failed`) are made by the engine's retry policy from a node's error.
//! [`forms`] lists every form of outcome text; the COMMENT on journey.steps lists the same, in
//! the same order (a test compares them).
use crate::engine::batch::{Message, Spawn};
use crate::model::Edge;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::borrow::Cow;

pub enum Outcome<'d> {
    /// A message for the contact or the admin (send_sms, send_email, send_whatsapp,
    /// notify_admin): `sent`.
    Sent(Box<Message>),
    /// create_task's task: `created`.
    Created(Box<Message>),
    /// webhook's call: `queued`.
    Queued(Box<Message>),
    /// A send the contact opted out of or has no address for (or no admin address): nothing
    /// written, `suppressed: <reason>` (sms_opt_out, email_opt_out, no phone, no email, no
    /// admin_email).
    Suppressed(&'static str),
    /// update_contact changed the contact: `updated`.
    Updated,
    /// wait: `waited`; `next` is followed from this time.
    Waited(DateTime<Utc>),
    /// goal: `goal` (goal_stats counts these).
    Goal,
    /// exit: `exited`, the enrollment ends.
    Exited,
    /// condition held: `then`, along this edge.
    Then(Option<&'d Edge>),
    /// condition did not hold: `else`.
    Else(Option<&'d Edge>),
    /// split: `branch <n>` (from 0), along its edge.
    Branch(usize, Option<&'d Edge>),
    /// check or wait_event: `yes` (wait_event) or `yes: <status>` (a check: the message's
    /// status), along `yes`.
    Yes(Option<String>, Option<&'d Edge>),
    /// check or wait_event: `no: <reason>` (the message's status, `no message was sent`,
    /// `timed out`), along `no`.
    No(Cow<'static, str>, Option<&'d Edge>),
    /// check or wait_event parks on the node: `waiting` until `until` (a delivery report or
    /// the event wakes it sooner); `waiting` is what it waits for.
    Waiting {
        until: DateTime<Utc>,
        waiting: Value,
    },
    /// A transient error (a lock timeout, a deadlock...) at the node: `retry: <error>`, the
    /// enrollment stays at the node, due at `until`, with `attempts` failed attempts in a row.
    Retry {
        error: String,
        until: DateTime<Utc>,
        attempts: i32,
    },
    /// `failed: <error>`: the enrollment fails at the node.
    Failed { error: String, attempts: i32 },
    /// A send the channel's quota cannot cover (engine/quota.rs): `quota`, nothing written;
    /// the enrollment stays at the node, due at this time (its flow is paused until the quota
    /// is raised).
    Quota(DateTime<Utc>),
    /// fork: `forked`; `spawns` are the branches it starts (written with the batch). A branch
    /// goes on along `follow` itself; the enrollment that entered the flow (no `follow`) waits
    /// at the fork, due never, until its branches have ended.
    Forked {
        spawns: Vec<Spawn>,
        follow: Option<&'d Edge>,
    },
    /// send_email with several recipients, some of them skipped (empty, invalid, opted out):
    /// `sent, skipped: <recipients>` (each skipped one and why); the others get the message.
    SentSkipping(Box<Message>, String),
    /// create_record inserted its row into the app's table: `record created`.
    RecordCreated,
}

/// Where an enrollment goes after a node.
pub enum Route<'d> {
    /// Along `edge`, its delay counted from `from` (else from now); no edge: the enrollment
    /// has completed the flow.
    Follow {
        edge: Option<&'d Edge>,
        from: Option<DateTime<Utc>>,
    },
    /// Stays at the node, due at `until`, waiting for `waiting`.
    Park {
        until: DateTime<Utc>,
        waiting: Value,
    },
    /// Leaves the flow with this status (`exited`).
    End(&'static str),
    /// Stays at the node, due at `until`, with its error and failed attempts.
    Retry {
        error: String,
        until: DateTime<Utc>,
        attempts: i32,
    },
    /// Fails at the node with its error.
    Fail { error: String, attempts: i32 },
    /// Stays at the node, due at `until`, to enter it again (with the same message key).
    Hold { until: DateTime<Utc> },
}

impl<'d> Outcome<'d> {
    /// The form of the outcome's `steps.outcome` text: a word, or words ending in a `<what>`
    /// that the text fills in.
    pub fn form(&self) -> &'static str {
        use Outcome::*;
        match self {
            Sent(_) => "sent",
            Created(_) => "created",
            Queued(_) => "queued",
            Suppressed(_) => "suppressed: <reason>",
            Updated => "updated",
            Waited(_) => "waited",
            Goal => "goal",
            Exited => "exited",
            Then(_) => "then",
            Else(_) => "else",
            Branch(..) => "branch <n>",
            Yes(None, _) => "yes",
            Yes(Some(_), _) => "yes: <status>",
            No(..) => "no: <reason>",
            Waiting { .. } => "waiting",
            Retry { .. } => "retry: <error>",
            Failed { .. } => "failed: <error>",
            Quota(_) => "quota",
            Forked { .. } => "forked",
            SentSkipping(..) => "sent, skipped: <recipients>",
            RecordCreated => "record created",
        }
    }

    /// What fills in the `<what>` of the form, if it has one.
    fn detail(&self) -> Option<Cow<'_, str>> {
        use Outcome::*;
        match self {
            Suppressed(why) => Some(Cow::Borrowed(why)),
            Branch(n, _) => Some(Cow::Owned(n.to_string())),
            Yes(Some(status), _) => Some(Cow::Borrowed(status)),
            No(why, _) => Some(Cow::Borrowed(why)),
            Retry { error, .. } | Failed { error, .. } => Some(Cow::Borrowed(error)),
            SentSkipping(_, skipped) => Some(Cow::Borrowed(skipped)),
            _ => None,
        }
    }

    /// The `steps.outcome` text: the form with its `<what>` filled in.
    pub fn text(&self) -> Cow<'static, str> {
        let form = self.form();
        match (form.find('<'), self.detail()) {
            (Some(at), Some(detail)) => Cow::Owned(format!("{}{detail}", &form[..at])),
            _ => Cow::Borrowed(form),
        }
    }

    /// The message to write, and where the enrollment goes (`next`: the node's own `next`,
    /// taken unless the outcome chose another edge).
    pub fn into_route(self, next: Option<&'d Edge>) -> (Option<Message>, Route<'d>) {
        use Outcome::*;
        let follow = |edge| Route::Follow { edge, from: None };
        match self {
            Sent(m) | Created(m) | Queued(m) | SentSkipping(m, _) => (Some(*m), follow(next)),
            Suppressed(_) | Updated | Goal | RecordCreated => (None, follow(next)),
            Waited(from) => (
                None,
                Route::Follow {
                    edge: next,
                    from: Some(from),
                },
            ),
            Exited => (None, Route::End("exited")),
            Then(edge) | Else(edge) | Branch(_, edge) | Yes(_, edge) | No(_, edge) => {
                (None, follow(edge))
            }
            Waiting { until, waiting } => (None, Route::Park { until, waiting }),
            Retry {
                error,
                until,
                attempts,
            } => (
                None,
                Route::Retry {
                    error,
                    until,
                    attempts,
                },
            ),
            Failed { error, attempts } => (None, Route::Fail { error, attempts }),
            Quota(until) => (None, Route::Hold { until }),
            Forked {
                follow: Some(edge), ..
            } => (None, follow(Some(edge))),
            // due never (past chrono's range: infinity): the trigger on enrollments ends it
            Forked { follow: None, .. } => (
                None,
                Route::Hold {
                    until: DateTime::<Utc>::MAX_UTC,
                },
            ),
        }
    }
}

/// One outcome of each form, in the order the COMMENT on journey.steps lists them.
fn one_of_each() -> Vec<Outcome<'static>> {
    use Outcome::*;
    let t = DateTime::<Utc>::UNIX_EPOCH;
    let error = || String::from("e");
    vec![
        Sent(Box::default()),
        Created(Box::default()),
        Queued(Box::default()),
        Suppressed("no phone"),
        Updated,
        Waited(t),
        Goal,
        Exited,
        Then(None),
        Else(None),
        Branch(0, None),
        Yes(None, None),
        Yes(Some("delivered".into()), None),
        No("timed out".into(), None),
        Waiting {
            until: t,
            waiting: Value::Null,
        },
        Failed {
            error: error(),
            attempts: 0,
        },
        Retry {
            error: error(),
            until: t,
            attempts: 1,
        },
        Quota(t),
        Forked {
            spawns: Vec::new(),
            follow: None,
        },
        SentSkipping(Box::default(), "x".into()),
        RecordCreated,
    ]
}

/// Every form of `steps.outcome` text the engine writes (see [`Outcome::form`]).
pub fn forms() -> Vec<&'static str> {
    one_of_each().iter().map(Outcome::form).collect()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn texts_fill_in_their_form() {
        let texts: Vec<_> = one_of_each().iter().map(|o| o.text()).collect();
        assert_eq!(
            texts.join(", "),
            "sent, created, queued, suppressed: no phone, updated, waited, goal, exited, then, \
             else, branch 0, yes, yes: delivered, no: timed out, waiting, failed: e, retry: e, quota, \
             forked, sent, skipped: x, record created"
        );
    }

    #[test]
    fn every_form_is_listed_once() {
        let forms = forms();
        for (i, form) in forms.iter().enumerate() {
            assert!(!forms[..i].contains(form), "{form} listed twice");
        }
        assert_eq!(forms.len(), 21);
    }

    #[test]
    fn routes_take_the_chosen_edge_or_next() {
        let next = Edge {
            to: "next".into(),
            ..Edge::default()
        };
        let other = Edge {
            to: "other".into(),
            ..Edge::default()
        };
        let to = |o: Outcome| match o.into_route(Some(&next)) {
            (_, Route::Follow { edge, .. }) => edge.map(|e| e.to.clone()),
            _ => None,
        };
        assert_eq!(to(Outcome::Goal).as_deref(), Some("next"));
        assert_eq!(to(Outcome::Then(Some(&other))).as_deref(), Some("other"));
        assert_eq!(to(Outcome::No("timed out".into(), None)), None);
        let (message, route) = Outcome::Sent(Box::default()).into_route(None);
        assert!(message.is_some());
        assert!(matches!(route, Route::Follow { edge: None, .. }));
        assert!(matches!(
            Outcome::Exited.into_route(Some(&next)).1,
            Route::End("exited")
        ));
        // quota: nothing written, the enrollment held at the node (not along next)
        let t = DateTime::<Utc>::UNIX_EPOCH;
        let (message, route) = Outcome::Quota(t).into_route(Some(&next));
        assert!(message.is_none());
        assert!(matches!(route, Route::Hold { until } if until == t));
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    /// The COMMENT on journey.steps lists exactly the outcomes the engine writes, in order.
    #[pg_test]
    fn steps_comment_lists_every_outcome() {
        let comment = Spi::get_one::<String>("SELECT obj_description('journey.steps'::regclass)")
            .unwrap()
            .unwrap_or_default();
        let list = format!("one of: {}.", super::forms().join(", "));
        assert!(
            comment.contains(&list),
            "the COMMENT on journey.steps should list \"{list}\": {comment}"
        );
    }
}
