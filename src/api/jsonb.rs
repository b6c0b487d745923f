//! `jsonb` arguments received as their text. pgrx's `JsonB` parses an argument with serde
//! before the function runs and panics (an internal error, SQLSTATE XX000) on a value serde
//! cannot hold (`1e400`, nesting deeper than 128); `JsonbText` keeps the text, and the function
//! parses it with `model::json::parse`, reporting a clear error that names the argument.
use crate::error::{JourneyError, Result};
use pgrx::callconv::{Arg, ArgAbi};
use pgrx::nullable::Nullable;
use pgrx::pg_sys;
use pgrx::pgrx_sql_entity_graph::metadata::{
    ArgumentError, ReturnsError, ReturnsRef, SqlMappingRef, SqlTranslatable,
};
use pgrx::{direct_function_call, FromDatum};

/// A `jsonb` argument, as the text PostgreSQL prints for it.
pub struct JsonbText(pub String);

impl JsonbText {
    /// The value; an error naming `argument` when serde cannot hold it.
    pub fn parse(&self, argument: &str) -> Result<serde_json::Value> {
        crate::model::json::parse(&self.0, argument).map_err(|reason| {
            JourneyError::InvalidArgument {
                argument: argument.to_string(),
                reason,
                hint:
                    "Numbers must fit a double (±1.7e308) and nesting must stay under 128 levels."
                        .into(),
            }
        })
    }
}

impl FromDatum for JsonbText {
    unsafe fn from_polymorphic_datum(
        datum: pg_sys::Datum,
        is_null: bool,
        _: pg_sys::Oid,
    ) -> Option<JsonbText> {
        if is_null {
            return None;
        }
        // SAFETY: the datum is a jsonb (the function's declared argument type); jsonb_out
        // returns a palloc'd C string, copied here.
        unsafe {
            let varlena = datum.cast_mut_ptr::<pg_sys::varlena>();
            let detoasted = pg_sys::pg_detoast_datum_packed(varlena);
            let text = direct_function_call::<&core::ffi::CStr>(
                pg_sys::jsonb_out,
                &[Some(pg_sys::Datum::from(detoasted))],
            )?;
            Some(JsonbText(text.to_string_lossy().into_owned()))
        }
    }
}

unsafe impl<'fcx> ArgAbi<'fcx> for JsonbText {
    unsafe fn unbox_arg_unchecked(arg: Arg<'_, 'fcx>) -> Self {
        let index = arg.index();
        unsafe {
            arg.unbox_arg_using_from_datum()
                .unwrap_or_else(|| panic!("argument {index} must not be null"))
        }
    }

    unsafe fn unbox_nullable_arg(arg: Arg<'_, 'fcx>) -> Nullable<Self> {
        unsafe { arg.unbox_arg_using_from_datum().into() }
    }
}

unsafe impl SqlTranslatable for JsonbText {
    const TYPE_IDENT: &'static str = concat!(module_path!(), "::JsonbText");
    const TYPE_ORIGIN: pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin =
        pgrx::pgrx_sql_entity_graph::metadata::TypeOrigin::External;
    const ARGUMENT_SQL: std::result::Result<SqlMappingRef, ArgumentError> =
        Ok(SqlMappingRef::literal("jsonb"));
    const RETURN_SQL: std::result::Result<ReturnsRef, ReturnsError> =
        Ok(ReturnsRef::One(SqlMappingRef::literal("jsonb")));
}
