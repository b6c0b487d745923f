//! Reading a wide SPI result fast: each row is deformed once (`heap_deform_tuple`), and columns
//! are taken from that by ordinal. (pgrx's row reader fetches every column with its own
//! `heap_getattr`, which walks the tuple from its start for each column after the first text
//! or NULL one: quadratic in the number of columns.) Callers name their columns with
//! [`columns!`]: the names are resolved to ordinals once per result, not once per row.
use crate::error::{JourneyError, Result};
use pgrx::datum::{FromDatum, IntoDatum};
use pgrx::pg_sys;
use pgrx::spi::SpiTupleTable;
use std::marker::PhantomData;

/// The rows of the SPI result `table`, one at a time.
pub struct Rows<'t> {
    table: *mut pg_sys::SPITupleTable,
    len: usize,
    next: usize,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    types: Vec<pg_sys::Oid>,
    _table: PhantomData<&'t ()>,
}

impl<'t> Rows<'t> {
    /// The rows of `table`, which must be the result of the last statement run through SPI
    /// (`SPI_tuptable`); borrowing it keeps its memory alive while the rows are read.
    pub fn of(table: &'t SpiTupleTable<'_>) -> Rows<'t> {
        // SAFETY: SPI_tuptable is the result of the last SPI statement, which `table` wraps and
        // keeps alive; its tuple descriptor describes every row.
        unsafe {
            let raw = pg_sys::SPI_tuptable;
            let len = if raw.is_null() { 0 } else { table.len() };
            let natts = if raw.is_null() {
                0
            } else {
                (*(*raw).tupdesc).natts as usize
            };
            let types = (1..=natts as i32)
                .map(|i| pg_sys::SPI_gettypeid((*raw).tupdesc, i))
                .collect();
            Rows {
                table: raw,
                len,
                next: 0,
                values: vec![pg_sys::Datum::from(0usize); natts],
                nulls: vec![true; natts],
                types,
                _table: PhantomData,
            }
        }
    }

    /// Moves to the next row; false when there is none.
    pub fn advance(&mut self) -> bool {
        if self.next >= self.len {
            return false;
        }
        // SAFETY: `next` < the number of rows; values/nulls have one slot per column.
        unsafe {
            let tuple = *(*self.table).vals.add(self.next);
            pg_sys::heap_deform_tuple(
                tuple,
                (*self.table).tupdesc,
                self.values.as_mut_ptr(),
                self.nulls.as_mut_ptr(),
            );
        }
        self.next += 1;
        true
    }

    /// The ordinal (1-based) of the column called `name` in the result.
    pub fn ordinal(&self, name: &str) -> Result<usize> {
        let missing = || JourneyError::Engine {
            flow: "(run)".into(),
            message: format!("the engine's query has no column \"{name}\""),
        };
        if self.table.is_null() {
            return Err(missing());
        }
        let name = std::ffi::CString::new(name).map_err(|_| missing())?;
        // SAFETY: the table (and its descriptor) outlives `self`; `name` is a C string.
        let ordinal = unsafe { pg_sys::SPI_fnumber((*self.table).tupdesc, name.as_ptr()) };
        match usize::try_from(ordinal) {
            Ok(ordinal) if (1..=self.types.len()).contains(&ordinal) => Ok(ordinal),
            _ => Err(missing()),
        }
    }

    /// Bytes the text (varlena) columns `ordinals` of the current row take once detoasted and
    /// decompressed, what `octet_length` says, read from their headers: nothing is copied.
    pub fn text_bytes(&self, ordinals: &[usize]) -> i64 {
        ordinals
            .iter()
            .filter(|&&o| !self.nulls[o - 1])
            // SAFETY: a non-NULL datum of a text, json or jsonb column is a varlena pointer
            // into the table, which outlives `self`.
            .map(|&o| unsafe { pg_sys::toast_raw_datum_size(self.values[o - 1]) } as i64)
            .fold(0, i64::saturating_add)
    }

    /// Column `ordinal` (1-based) of the current row, converted to `T` (None when NULL).
    pub fn get<T: FromDatum + IntoDatum>(&self, ordinal: usize) -> Option<T> {
        let i = ordinal - 1;
        debug_assert!(
            T::is_compatible_with(self.types[i]),
            "column {ordinal} has type {:?}",
            self.types[i]
        );
        // SAFETY: the datum was deformed from the current row with this column's type, and
        // the table it points into outlives `self`.
        unsafe { T::from_polymorphic_datum(self.values[i], self.nulls[i], self.types[i]) }
    }
}

/// Declares a struct holding the ordinals of the named columns of a result, resolved once
/// with [`Rows::ordinal`] by its `of(&rows)`; `row.get(columns.email)` then reads column
/// `email` of each row. The field names are the columns' names (aliases in the query).
macro_rules! columns {
    ($(#[$meta:meta])* $name:ident { $($column:ident),* $(,)? }) => {
        $(#[$meta])*
        struct $name {
            $($column: usize),*
        }

        impl $name {
            /// The ordinals in `rows`' result; an error names a column it does not have.
            fn of(rows: &$crate::engine::rows::Rows<'_>) -> $crate::error::Result<$name> {
                Ok($name {
                    $($column: rows.ordinal(stringify!($column))?),*
                })
            }
        }
    };
}
pub(crate) use columns;
