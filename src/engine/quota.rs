//! Quotas: settings.sms_quota (SMS segments), email_quota (e-mails) and whatsapp_quota
//! (WhatsApp messages) are the credit left on each channel, NULL = unlimited. Admin e-mails,
//! tasks and webhooks are never counted.
//!
//! With every quota NULL a batch runs as before: no lock, no write. The first message of a
//! batch on a channel with a quota locks the settings row (`FOR NO KEY UPDATE`: under READ
//! COMMITTED the value read after waiting is the committed one), so batches spending credit
//! run their sends one after the other; the batch then counts down locally and writes the
//! decrement back with its rows (the CHECK (x >= 0) stays as a safety net). A send the credit
//! cannot cover writes nothing: its step is `quota`, the enrollment stays at the node, and the
//! batch calls journey._quota_exhausted, which pauses every active flow sending on that channel
//! (paused_reason 'quota') and tells the admin once. Raising the quota resumes them
//! (journey.add_quota, the settings trigger in sql/quota.sql).
use super::batch::Message;
use super::claim::Enrollment;
use super::nodes::Outcome;
use super::subxact;
use crate::error::{JourneyError, Result};
use chrono::{DateTime, Utc};
use pgrx::prelude::*;

/// A channel with a quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Sms,
    Email,
    Whatsapp,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::Whatsapp];

    /// The outbox channel's name (`<name>_quota` is its settings column).
    pub fn name(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Whatsapp => "whatsapp",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The channel `m` counts against and what it costs (an SMS its segments, any other
    /// message 1), if it counts.
    pub fn cost(m: &Message) -> Option<(Channel, i64)> {
        match m.channel {
            "sms" => Some((Channel::Sms, i64::from(m.sms_segments.unwrap_or(1).max(1)))),
            "email" => Some((Channel::Email, 1)),
            "whatsapp" => Some((Channel::Whatsapp, 1)),
            _ => None,
        }
    }
}

/// The quotas as settings holds them, in `Channel::ALL`'s order (None = unlimited).
pub type Quotas = [Option<i64>; 3];

/// Reads the quotas again with the settings row locked until the transaction ends.
const LOCK: &str = "SELECT sms_quota::bigint, email_quota::bigint, whatsapp_quota::bigint \
     FROM journey.settings FOR NO KEY UPDATE";

/// Locks the settings row and returns its quotas (see [`LOCK`]), for `e`'s send at `node`. In
/// a subtransaction: an error while waiting (a deadlock, a lock timeout, a serialization
/// failure) fails or retries that enrollment (`transient`), not the batch.
pub fn lock_settings(e: &Enrollment, node: &str) -> Result<Quotas> {
    let locked = subxact::run(|| Spi::get_three::<i64, i64, i64>(LOCK));
    match locked {
        Ok(row) => {
            let (sms, email, whatsapp) = row?;
            Ok([sms, email, whatsapp])
        }
        Err(caught) => Err(JourneyError::Step {
            flow: e.flow_name.clone(),
            node: node.to_string(),
            message: format!(
                "locking journey.settings for its quotas: {}",
                caught.message
            ),
            transient: caught.is_transient(),
        }),
    }
}

/// A run's credit and one batch's spending of it. The run's part (`credit`, `locked`,
/// `refused`) goes from batch to batch with [`Quota::carried`]; the batch's part (`spent`,
/// `exhausted`, `flows`, `contact`) is what its write-back writes.
#[derive(Clone, Debug, Default)]
pub struct Quota {
    /// Credit left per channel (None = unlimited), counted down as messages are taken.
    credit: Quotas,
    /// Whether the settings row is locked (and `credit` read under the lock).
    locked: bool,
    /// Channels a send was refused on in this run: later sends on them are refused too (their
    /// flows are being paused).
    refused: [bool; 3],
    /// What this batch took from each channel.
    spent: [i64; 3],
    /// Channels this batch refused a send on.
    exhausted: [bool; 3],
    /// The flows of the enrollments this batch refused a send to.
    flows: Vec<i64>,
    /// The contact of the first refused send (the admin's message row names one).
    contact: Option<i64>,
}

impl Quota {
    /// The credit settings gave the batch (read without a lock).
    pub fn new(credit: Quotas) -> Quota {
        Quota {
            credit,
            ..Quota::default()
        }
    }

    /// The run's state for the next batch: the credit left, the lock and the refusals; nothing
    /// spent yet.
    pub fn carried(&self) -> Quota {
        Quota {
            credit: self.credit,
            locked: self.locked,
            refused: self.refused,
            ..Quota::default()
        }
    }

    /// Takes `cost` from `channel`'s credit: true when it is unlimited or covers the cost. The
    /// first take on a channel with a quota calls `lock` (the settings row locked, the quotas
    /// read again). A refusal is remembered: later sends on the channel are refused as well.
    pub fn take(
        &mut self,
        channel: Channel,
        cost: i64,
        lock: impl FnOnce() -> Result<Quotas>,
    ) -> Result<bool> {
        let i = channel.index();
        if self.credit[i].is_none() {
            return Ok(true);
        }
        if !self.locked {
            self.credit = lock()?;
            self.locked = true;
        }
        let Some(left) = self.credit[i] else {
            return Ok(true);
        };
        if self.refused[i] || left < cost {
            self.refused[i] = true;
            self.exhausted[i] = true;
            return Ok(false);
        }
        self.credit[i] = Some(left - cost);
        self.spent[i] += cost;
        Ok(true)
    }

    /// `outcome` of `e`'s node if its message (if any) fits the credit, else `quota` (nothing
    /// written; the enrollment stays at the node, due at `now`). `lock` as for [`Quota::take`].
    pub fn charge<'d>(
        &mut self,
        e: &Enrollment,
        outcome: Outcome<'d>,
        now: DateTime<Utc>,
        lock: impl FnOnce() -> Result<Quotas>,
    ) -> Result<Outcome<'d>> {
        let Outcome::Sent(m) = &outcome else {
            return Ok(outcome);
        };
        let Some((channel, cost)) = Channel::cost(m) else {
            return Ok(outcome);
        };
        if self.take(channel, cost, lock)? {
            return Ok(outcome);
        }
        if !self.flows.contains(&e.flow_id) {
            self.flows.push(e.flow_id);
        }
        self.contact.get_or_insert(e.contact_id);
        Ok(Outcome::Quota(now))
    }

    /// The batch's decrements (`Channel::ALL`'s order), if it took any credit.
    pub fn spent(&self) -> Option<[i64; 3]> {
        self.spent.iter().any(|&n| n > 0).then_some(self.spent)
    }

    /// The channels this batch refused a send on, the flows of those sends and the contact of
    /// the first, if it refused any.
    pub fn exhausted(&self) -> Option<(Vec<&'static str>, &[i64], i64)> {
        // (a refused send sets the contact: a batch that refused nothing allocates nothing)
        let contact = self.contact?;
        let channels: Vec<_> = Channel::ALL
            .iter()
            .filter(|c| self.exhausted[c.index()])
            .map(|c| c.name())
            .collect();
        Some((channels, &self.flows, contact))
    }
}

/// Writes a batch's quota back: the credit it took, and the channels it found exhausted
/// (journey._quota_exhausted pauses their flows and writes the admin's message). Nothing when
/// the batch took no credit and refused nothing.
pub fn write_back(quota: &Quota) -> Result<()> {
    if let Some([sms, email, whatsapp]) = quota.spent() {
        Spi::run_with_args(
            "UPDATE journey.settings SET sms_quota = sms_quota - $1, \
                 email_quota = email_quota - $2, whatsapp_quota = whatsapp_quota - $3",
            &[sms.into(), email.into(), whatsapp.into()],
        )?;
    }
    if let Some((channels, flows, contact)) = quota.exhausted() {
        Spi::run_with_args(
            "SELECT journey._quota_exhausted($1, $2, $3)",
            &[channels.into(), flows.to_vec().into(), contact.into()],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod unit {
    use super::*;
    use crate::engine::nodes::testing::enrollment;

    fn sms(segments: i32) -> Outcome<'static> {
        Outcome::Sent(Box::new(Message {
            channel: "sms",
            sms_segments: Some(segments),
            ..Message::default()
        }))
    }

    fn message(channel: &'static str) -> Outcome<'static> {
        Outcome::Sent(Box::new(Message {
            channel,
            ..Message::default()
        }))
    }

    fn never() -> Result<Quotas> {
        panic!("unlimited credit must not lock the settings")
    }

    fn charge(q: &mut Quota, outcome: Outcome<'static>, fresh: Quotas) -> String {
        let e = enrollment("n");
        let now = chrono::DateTime::<Utc>::UNIX_EPOCH;
        let outcome = q.charge(&e, outcome, now, || Ok(fresh)).unwrap();
        outcome.text().into_owned()
    }

    #[test]
    fn unlimited_takes_no_lock_and_writes_nothing() {
        let mut q = Quota::new([None, None, None]);
        for outcome in [sms(3), message("email"), message("whatsapp")] {
            let e = enrollment("n");
            let now = chrono::DateTime::<Utc>::UNIX_EPOCH;
            let out = q.charge(&e, outcome, now, never).unwrap();
            assert_eq!(out.text(), "sent");
        }
        assert!(q.spent().is_none());
        assert!(q.exhausted().is_none());
    }

    #[test]
    fn sms_count_segments_until_the_credit_is_spent() {
        // the lock reads 5 where the unlocked read said 100: the fresh value counts
        let mut q = Quota::new([Some(100), None, None]);
        let fresh = [Some(5), None, None];
        assert_eq!(charge(&mut q, sms(2), fresh), "sent");
        assert_eq!(charge(&mut q, sms(2), [None, None, None]), "sent");
        // 1 left: a 2-segment SMS is refused, and so is every later SMS of the run
        assert_eq!(charge(&mut q, sms(2), fresh), "quota");
        assert_eq!(charge(&mut q, sms(1), fresh), "quota");
        assert_eq!(charge(&mut q, message("email"), fresh), "sent");
        assert_eq!(q.spent(), Some([4, 0, 0]));
        let (channels, flows, contact) = q.exhausted().unwrap();
        assert_eq!((channels, flows, contact), (vec!["sms"], &[3i64][..], 7));
        // the next batch carries the credit and the refusal, not the spending
        let next = q.carried();
        assert!(next.spent().is_none() && next.exhausted().is_none());
        assert_eq!(next.credit, [Some(1), None, None]);
        assert!(next.refused[0] && next.locked);
    }

    #[test]
    fn each_counted_channel_has_its_own_credit() {
        let mut q = Quota::new([Some(0), Some(1), Some(1)]);
        let fresh = [Some(0), Some(1), Some(1)];
        assert_eq!(charge(&mut q, message("admin_email"), fresh), "sent");
        assert_eq!(charge(&mut q, message("email"), fresh), "sent");
        assert_eq!(charge(&mut q, message("email"), fresh), "quota");
        assert_eq!(charge(&mut q, message("whatsapp"), fresh), "sent");
        assert_eq!(charge(&mut q, sms(1), fresh), "quota");
        assert_eq!(q.spent(), Some([0, 1, 1]));
        assert_eq!(q.exhausted().unwrap().0, vec!["sms", "email"]);
        // tasks and webhooks are not messages the quotas count
        let task = Outcome::Created(Box::new(Message {
            channel: "task",
            ..Message::default()
        }));
        assert_eq!(charge(&mut q, task, fresh), "created");
    }

    #[test]
    fn a_quota_set_to_null_under_the_lock_is_unlimited() {
        let mut q = Quota::new([Some(1), None, None]);
        assert_eq!(charge(&mut q, sms(4), [None, None, None]), "sent");
        assert!(q.spent().is_none());
    }
}
