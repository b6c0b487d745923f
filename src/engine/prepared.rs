//! The engine's hot statements, prepared once per backend and kept across batches (SPI plans
//! saved with `keep`): a batch pays no parse or plan. Postgres replans a kept statement by
//! itself when the tables it uses change.
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys::PgOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static STATEMENTS: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// Runs `sql` (a constant) as a kept prepared statement; its argument types are those of the
/// first call's `args`.
pub fn update<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid<'_>],
) -> SpiResult<SpiTupleTable<'conn>> {
    let statement = match STATEMENTS.with(|s| s.borrow().get(sql).cloned()) {
        Some(statement) => statement,
        None => {
            let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
            let statement = Rc::new(client.prepare_mut(sql, &types)?.keep());
            STATEMENTS.with(|s| s.borrow_mut().insert(sql, statement.clone()));
            statement
        }
    };
    client.update(&*statement, None, args)
}
