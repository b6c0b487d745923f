//! SQL-level tests run by `cargo pgrx test` in a real cluster, each in a rolled-back
//! transaction. Time is the virtual clock of `journey.run_due(max, at)`.
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    fn sql(query: &str) {
        Spi::run(query).unwrap_or_else(|e| panic!("{query}: {e}"));
    }

    fn one<T: pgrx::IntoDatum + pgrx::FromDatum>(query: &str) -> Option<T> {
        Spi::get_one::<T>(query).unwrap_or_else(|e| panic!("{query}: {e}"))
    }

    #[pg_test]
    fn extension_installs() {
        assert_eq!(one::<i64>("SELECT count(*) FROM journey.settings"), Some(1));
    }

}
