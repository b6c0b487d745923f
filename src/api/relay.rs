//! Relay protocol: claim, mark_sent, mark_failed, report (sql/relay.sql).
use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/relay.sql",
    name = "relay",
    requires = ["schema", "triggers"]
);
