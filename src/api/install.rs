//! The install script's hand-written SQL (sql/*.sql), wired here and nowhere else, in this
//! order: each file `requires` the one before it and the Rust functions it calls at creation
//! (pgrx places a file after what it requires; `cargo pgrx schema` shows the result). The
//! COMMENTs of the Rust functions are beside them (flows.rs, stats.rs, …); the upgrade script
//! of a release repeats what changed here (sql/journey--A--B.sql).
use pgrx::prelude::*;

// Tables, indexes, sequences, the contacts' and settings' CHECKs (journey._is_time_zone), the
// delete triggers, dump configuration.
extension_sql_file!(
    "../../sql/schema.sql",
    name = "schema",
    requires = [api::zones::is_time_zone]
);

// Phones in E.164 form: the contacts' BEFORE INSERT OR UPDATE OF phone trigger
// (journey._on_contact_phone, through journey._e164 with settings.default_country).
extension_sql_file!(
    "../../sql/phones.sql",
    name = "phones",
    requires = ["schema", api::phones::e164]
);

// Enrollment from the audience tables: journey._enroll and the statement-level trigger
// functions (transition tables, routed through journey.flow_triggers, so a write no flow
// listens to costs one index probe), which take the flow lock (journey._lock_flows), evaluate
// an event trigger's `where` (journey._matches) and wake the worker (journey._wake).
extension_sql_file!(
    "../../sql/triggers.sql",
    name = "triggers",
    requires = [
        "phones",
        api::flows::lock_flows,
        api::predicates::matches,
        api::wake::wake
    ]
);

// Date triggers: the schedule of next occurrences kept current by the contacts' and settings'
// triggers, and journey._date_pass, which enrolls due occurrences (journey._date_next and
// journey._date_days compute them).
extension_sql_file!(
    "../../sql/dates.sql",
    name = "dates",
    requires = ["triggers", api::dates::date_next, api::dates::date_days]
);

// Record types: the app's tables attached as record types (attach_table, detach_table, link,
// allow_writes), the trigger that enrolls from their writes, the record view, the writes of
// update_record and create_record, record_timeline.
extension_sql_file!(
    "../../sql/records.sql",
    name = "records",
    requires = [
        "dates",
        api::records::caller_may,
        api::record_trigger::on_record_written
    ]
);

// Audience helpers: upsert_contact, add_to_group, remove_from_group, submit_form,
// define_event, emit.
extension_sql_file!(
    "../../sql/audience.sql",
    name = "audience",
    requires = ["dates"]
);

// Relay protocol: claim, mark_sent, mark_failed, report.
extension_sql_file!(
    "../../sql/relay.sql",
    name = "relay",
    requires = ["audience"]
);

// Inbound SMS: the event type sms_received and journey.receive_sms (opt-out words).
extension_sql_file!(
    "../../sql/inbound.sql",
    name = "inbound",
    requires = ["relay"]
);

// Quotas: add_quota, journey._quota_exhausted (the engine calls it when a channel's credit
// runs out: flows paused, the admin told) and the settings trigger that resumes them.
extension_sql_file!("../../sql/quota.sql", name = "quota", requires = ["relay"]);

// Counters the stats read: counter_deltas written by the enrollments' and outbox's triggers and
// the engine's write-back (journey._count_batch), compact_counters, the recount.
extension_sql_file!(
    "../../sql/counters.sql",
    name = "counters",
    requires = ["quota"]
);

// Introspection: flow_stats, node_stats, message_stats, split_stats, goal_stats,
// flow_overview, timeline (in flow order, from journey._node_order), from the counters.
extension_sql_file!(
    "../../sql/stats.sql",
    name = "stats",
    requires = ["counters", api::stats::node_order]
);

// Operations: forget_contact (erasure requests), the retention pass the worker runs.
extension_sql_file!(
    "../../sql/operations.sql",
    name = "operations",
    requires = ["stats"]
);
extension_sql_file!(
    "../../sql/retention.sql",
    name = "retention",
    requires = ["operations"]
);

// Verified senders (send_email's `from`): add_sender, verify_sender, remove_sender.
extension_sql_file!(
    "../../sql/senders.sql",
    name = "senders",
    requires = ["retention"]
);

// Change data capture: settings.cdc_events, journey.outbox_events written by the outbox's
// statement trigger, prune_outbox_events, the publication journey_outbox_events.
extension_sql_file!("../../sql/cdc.sql", name = "cdc", requires = ["senders"]);

// Roles and privileges: journey.grant_role(role, kind) and the revocation of PUBLIC's EXECUTE
// on the schema's functions. Last, once every function exists.
extension_sql_file!("../../sql/roles.sql", name = "roles", finalize);
