//! `journey._e164(phone, country)`: a phone number in E.164 form (`model::phone`), for the
//! contacts' phone trigger and the look-ups by phone (sql/phones.sql). The caller passes the
//! country (settings.default_country), so the function reads nothing and is immutable.
use crate::error::{JourneyError, OrReport, Result};
use crate::model::phone;
use pgrx::prelude::*;

/// `journey._e164(phone text, country text) → text`: NULL for NULL or blank text (an empty
/// form field); an error (22023) naming the value for text that is not a phone number, or a
/// national number with no country.
#[pg_extern(name = "_e164", immutable, parallel_safe)]
pub fn e164(phone: Option<&str>, country: Option<&str>) -> Option<String> {
    let phone = phone.filter(|p| !p.trim().is_empty())?;
    Some(normalize(phone, country).or_report())
}

fn normalize(text: &str, country: Option<&str>) -> Result<String> {
    phone::normalize(text, country).map_err(|reason| {
        let national = phone::is_national(text);
        let hint = match country {
            None if national => {
                "Set journey.settings.default_country (ISO 3166 alpha-2, e.g. \
                UPDATE journey.settings SET default_country = 'IL'), or write the number as \
                +<country code> and digits (e.g. +972501234567)."
            }
            Some(c) if national && phone::calling_code(c).is_none() => {
                "settings.default_country is an ISO 3166 alpha-2 code, e.g. IL, US, RO."
            }
            _ => {
                "Write a phone number as +<country code> and digits (e.g. +972501234567), or \
                  as a national number with settings.default_country set; spaces, dashes, dots \
                  and brackets are dropped."
            }
        };
        JourneyError::InvalidArgument {
            argument: "phone".into(),
            reason,
            hint: hint.into(),
        }
    })
}

extension_sql!(
    "COMMENT ON FUNCTION journey._e164(text, text) IS 'Internal: the phone number in E.164 form (+<country code><number>, 7 to 15 digits; NULL for NULL or blank text), a national number given the country (ISO 3166 alpha-2: its calling code, its trunk prefix dropped); spaces, dashes, dots and brackets dropped, a leading 00 is +. Formatting, not carrier validation. Raises 22023 for text that is not a phone number or a national number with no country.';",
    name = "e164_comment",
    requires = [e164]
);
