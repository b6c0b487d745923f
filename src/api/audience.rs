//! Audience helpers: upsert_contact, add_to_group, remove_from_group, submit_form,
//! define_event, emit (sql/audience.sql).
use pgrx::prelude::*;

extension_sql_file!(
    "../../sql/audience.sql",
    name = "audience",
    requires = ["triggers"]
);
