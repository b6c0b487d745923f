//! Empty: the SQL-level tests that were here are SQL regression files now, one per concern
//! (`tests/pg_regress/`, run by `tests/regress_test.sh`), and the race tests isolation specs
//! (`tests/isolation/`). Kept only until `mod tests;` leaves `lib.rs`: delete both together.
