//! Roles and privileges (sql/roles.sql): `journey.grant_role(role, kind)` and the revocation of
//! PUBLIC's EXECUTE on the schema's functions. Runs last, once every function exists.
use pgrx::prelude::*;

extension_sql_file!("../../sql/roles.sql", name = "roles", finalize);
