//! Phone numbers in E.164 form (`+` country code and number, 7 to 15 digits): what the
//! contacts' phone trigger (sql/phones.sql, through `journey._e164`) stores. This is formatting,
//! not carrier validation: spaces, dashes, dots, slashes and brackets are dropped, a leading
//! `00` is `+`, and a national number gets the default country's calling code, its trunk
//! prefix dropped (`050-1234567` in IL is `+972501234567`; NANP numbers (US, CA, …) are 10
//! digits with an optional leading 1). A well-formed number in an unassigned range is kept;
//! text that is not a phone number (letters, too few or too many digits) is an error.
//!
//! The calling codes are a static table (ISO 3166 alpha-2 -> calling code, trunk prefixes):
//! no phone-number crate is among the project's packages, and libphonenumber's metadata would
//! check number ranges, which is not wanted here.

/// Fewest and most digits of a number, country code included (E.164 allows 15; 7 admits the
/// shortest numbers of small countries).
pub const MIN_DIGITS: usize = 7;
pub const MAX_DIGITS: usize = 15;

/// Whether `text` is already in the form `normalize` returns (the trigger's WHEN clause
/// tests the same: `^\+[1-9][0-9]{6,14}$`).
pub fn is_e164(text: &str) -> bool {
    let Some(digits) = text.strip_prefix('+') else {
        return false;
    };
    (MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// Whether `text` is written as an international number (`+…` or `00…`), which needs no
/// default country.
pub fn is_international(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with('+') || t.starts_with("00")
}

/// Whether `text` is a national number (separators and digits, no `+` or `00`): it needs a
/// country.
pub fn is_national(text: &str) -> bool {
    !is_international(text) && digits(text).is_ok()
}

/// The E.164 form of `text`; `country` (ISO alpha-2, any case) for a national number. The
/// error says what is wrong and names the value.
pub fn normalize(text: &str, country: Option<&str>) -> Result<String, String> {
    let not_a_phone = |why: String| format!("\"{text}\" is not a phone number: {why}");
    let digits = digits(text).map_err(not_a_phone)?;
    let full = if let Some(rest) = digits.strip_prefix('+') {
        rest.to_string()
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else {
        let Some(code) = country.map(str::trim).filter(|c| !c.is_empty()) else {
            return Err(format!(
                "\"{text}\" is a national number and no country is known for it"
            ));
        };
        let (calling, trunks) = calling_code(code).ok_or_else(|| {
            format!("\"{code}\" is not a country code (ISO 3166 alpha-2, e.g. IL, US, RO)")
        })?;
        national(&digits, calling, trunks).map_err(not_a_phone)?
    };
    if full.starts_with('0') {
        return Err(not_a_phone("no country code begins with 0".into()));
    }
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&full.len()) {
        return Err(not_a_phone(format!(
            "it has {} digits with its country code ({MIN_DIGITS} to {MAX_DIGITS} in E.164)",
            full.len()
        )));
    }
    Ok(format!("+{full}"))
}

/// The digits of `text` (with a leading `+` kept), its separators dropped; an error for
/// anything else. `(0)` after a country code (`+44 (0)20 …`) is a trunk prefix: dropped.
fn digits(text: &str) -> Result<String, String> {
    let t = text.trim();
    let international = t.starts_with('+');
    let t = if international {
        t.replacen("(0)", "", 1)
    } else {
        t.to_string()
    };
    let mut out = String::with_capacity(t.len());
    for (i, c) in t.chars().enumerate() {
        match c {
            '0'..='9' => out.push(c),
            '+' if i == 0 => out.push(c),
            '+' => return Err("\"+\" only goes first".into()),
            ' ' | '-' | '.' | '(' | ')' | '/' => {}
            c if c.is_whitespace() => {}
            c if c.is_alphabetic() => return Err("it contains letters".into()),
            c => return Err(format!("it contains \"{c}\"")),
        }
    }
    if out.trim_start_matches('+').is_empty() {
        return Err("it has no digits".into());
    }
    Ok(out)
}

/// A national number's country code and significant number: its trunk prefix dropped (NANP:
/// ten digits, an optional 1 before them).
fn national(digits: &str, calling: &str, trunks: &[&str]) -> Result<String, String> {
    if calling == "1" {
        let ten = match digits.len() {
            11 if digits.starts_with('1') => &digits[1..],
            _ => digits,
        };
        if ten.len() != 10 {
            return Err(format!(
                "a North American number has 10 digits (a 1 may go before them), not {}",
                digits.len()
            ));
        }
        return Ok(format!("1{ten}"));
    }
    let significant = trunks
        .iter()
        .find_map(|t| digits.strip_prefix(t))
        .unwrap_or(digits);
    Ok(format!("{calling}{significant}"))
}

/// ISO 3166 alpha-2 (any case) -> calling code and the trunk prefixes dropped from a national
/// number (tried in order; none for the countries whose numbers keep a leading 0).
pub fn calling_code(country: &str) -> Option<(&'static str, &'static [&'static str])> {
    let upper = country.to_ascii_uppercase();
    let (_, calling) = COUNTRIES.iter().find(|(iso, _)| *iso == upper)?;
    let trunks = TRUNKS
        .iter()
        .find(|(iso, _)| *iso == upper)
        .map_or(&["0"][..], |(_, t)| *t);
    Some((calling, trunks))
}

/// Trunk prefixes other than the usual 0.
const TRUNKS: &[(&str, &[&str])] = &[
    // numbers that begin with 0 keep it (Italy, San Marino, Vatican, Côte d'Ivoire, Congo, Gabon)
    ("IT", &[]),
    ("SM", &[]),
    ("VA", &[]),
    ("CI", &[]),
    ("CG", &[]),
    ("GA", &[]),
    // 8 (and 8 0 in Belarus)
    ("RU", &["8"]),
    ("KZ", &["8"]),
    ("BY", &["80", "8", "0"]),
    ("LT", &["8", "0"]),
    ("TM", &["8"]),
    ("TJ", &["8"]),
    ("UZ", &["8"]),
    ("HU", &["06"]),
];

/// ISO 3166 alpha-2 -> ITU calling code (NANP countries are 1; the Russia/Kazakhstan zone 7).
#[rustfmt::skip]
const COUNTRIES: &[(&str, &str)] = &[
    ("AD", "376"), ("AE", "971"), ("AF", "93"), ("AG", "1"), ("AI", "1"), ("AL", "355"),
    ("AM", "374"), ("AO", "244"), ("AQ", "672"), ("AR", "54"), ("AS", "1"), ("AT", "43"),
    ("AU", "61"), ("AW", "297"), ("AX", "358"), ("AZ", "994"), ("BA", "387"), ("BB", "1"),
    ("BD", "880"), ("BE", "32"), ("BF", "226"), ("BG", "359"), ("BH", "973"), ("BI", "257"),
    ("BJ", "229"), ("BL", "590"), ("BM", "1"), ("BN", "673"), ("BO", "591"), ("BQ", "599"),
    ("BR", "55"), ("BS", "1"), ("BT", "975"), ("BW", "267"), ("BY", "375"), ("BZ", "501"),
    ("CA", "1"), ("CC", "61"), ("CD", "243"), ("CF", "236"), ("CG", "242"), ("CH", "41"),
    ("CI", "225"), ("CK", "682"), ("CL", "56"), ("CM", "237"), ("CN", "86"), ("CO", "57"),
    ("CR", "506"), ("CU", "53"), ("CV", "238"), ("CW", "599"), ("CX", "61"), ("CY", "357"),
    ("CZ", "420"), ("DE", "49"), ("DJ", "253"), ("DK", "45"), ("DM", "1"), ("DO", "1"),
    ("DZ", "213"), ("EC", "593"), ("EE", "372"), ("EG", "20"), ("EH", "212"), ("ER", "291"),
    ("ES", "34"), ("ET", "251"), ("FI", "358"), ("FJ", "679"), ("FK", "500"), ("FM", "691"),
    ("FO", "298"), ("FR", "33"), ("GA", "241"), ("GB", "44"), ("GD", "1"), ("GE", "995"),
    ("GF", "594"), ("GG", "44"), ("GH", "233"), ("GI", "350"), ("GL", "299"), ("GM", "220"),
    ("GN", "224"), ("GP", "590"), ("GQ", "240"), ("GR", "30"), ("GT", "502"), ("GU", "1"),
    ("GW", "245"), ("GY", "592"), ("HK", "852"), ("HN", "504"), ("HR", "385"), ("HT", "509"),
    ("HU", "36"), ("ID", "62"), ("IE", "353"), ("IL", "972"), ("IM", "44"), ("IN", "91"),
    ("IO", "246"), ("IQ", "964"), ("IR", "98"), ("IS", "354"), ("IT", "39"), ("JE", "44"),
    ("JM", "1"), ("JO", "962"), ("JP", "81"), ("KE", "254"), ("KG", "996"), ("KH", "855"),
    ("KI", "686"), ("KM", "269"), ("KN", "1"), ("KP", "850"), ("KR", "82"), ("KW", "965"),
    ("KY", "1"), ("KZ", "7"), ("LA", "856"), ("LB", "961"), ("LC", "1"), ("LI", "423"),
    ("LK", "94"), ("LR", "231"), ("LS", "266"), ("LT", "370"), ("LU", "352"), ("LV", "371"),
    ("LY", "218"), ("MA", "212"), ("MC", "377"), ("MD", "373"), ("ME", "382"), ("MF", "590"),
    ("MG", "261"), ("MH", "692"), ("MK", "389"), ("ML", "223"), ("MM", "95"), ("MN", "976"),
    ("MO", "853"), ("MP", "1"), ("MQ", "596"), ("MR", "222"), ("MS", "1"), ("MT", "356"),
    ("MU", "230"), ("MV", "960"), ("MW", "265"), ("MX", "52"), ("MY", "60"), ("MZ", "258"),
    ("NA", "264"), ("NC", "687"), ("NE", "227"), ("NF", "672"), ("NG", "234"), ("NI", "505"),
    ("NL", "31"), ("NO", "47"), ("NP", "977"), ("NR", "674"), ("NU", "683"), ("NZ", "64"),
    ("OM", "968"), ("PA", "507"), ("PE", "51"), ("PF", "689"), ("PG", "675"), ("PH", "63"),
    ("PK", "92"), ("PL", "48"), ("PM", "508"), ("PR", "1"), ("PS", "970"), ("PT", "351"),
    ("PW", "680"), ("PY", "595"), ("QA", "974"), ("RE", "262"), ("RO", "40"), ("RS", "381"),
    ("RU", "7"), ("RW", "250"), ("SA", "966"), ("SB", "677"), ("SC", "248"), ("SD", "249"),
    ("SE", "46"), ("SG", "65"), ("SH", "290"), ("SI", "386"), ("SJ", "47"), ("SK", "421"),
    ("SL", "232"), ("SM", "378"), ("SN", "221"), ("SO", "252"), ("SR", "597"), ("SS", "211"),
    ("ST", "239"), ("SV", "503"), ("SX", "1"), ("SY", "963"), ("SZ", "268"), ("TC", "1"),
    ("TD", "235"), ("TG", "228"), ("TH", "66"), ("TJ", "992"), ("TK", "690"), ("TL", "670"),
    ("TM", "993"), ("TN", "216"), ("TO", "676"), ("TR", "90"), ("TT", "1"), ("TV", "688"),
    ("TW", "886"), ("TZ", "255"), ("UA", "380"), ("UG", "256"), ("US", "1"), ("UY", "598"),
    ("UZ", "998"), ("VA", "39"), ("VC", "1"), ("VE", "58"), ("VG", "1"), ("VI", "1"),
    ("VN", "84"), ("VU", "678"), ("WF", "681"), ("WS", "685"), ("XK", "383"), ("YE", "967"),
    ("YT", "262"), ("ZA", "27"), ("ZM", "260"), ("ZW", "263"),
];

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn national_numbers_take_the_country_code_and_drop_the_trunk_prefix() {
        for (text, country, e164) in [
            ("050-1234567", "IL", "+972501234567"),
            ("050 123 4567", "il", "+972501234567"),
            ("(0721) 000.002", "RO", "+40721000002"),
            ("020 7946 0958", "GB", "+442079460958"),
            ("030 1234567", "DE", "+49301234567"),
            ("06 12 34 56 78", "FR", "+33612345678"),
            ("06 39 1234567", "IT", "+3906391234567"),
            ("8 (912) 345-67-89", "RU", "+79123456789"),
            ("06 30 123 4567", "HU", "+36301234567"),
            ("8 029 123-45-67", "BY", "+375291234567"),
            ("(555) 000-0001", "US", "+15550000001"),
            ("1 555 000 0001", "US", "+15550000001"),
            ("416.555.0199", "CA", "+14165550199"),
            ("0412 345 678", "AU", "+61412345678"),
        ] {
            assert_eq!(
                normalize(text, Some(country)),
                Ok(e164.into()),
                "{text} {country}"
            );
        }
    }

    #[test]
    fn international_numbers_need_no_country() {
        for (text, e164) in [
            ("+972 50-123-4567", "+972501234567"),
            ("00972501234567", "+972501234567"),
            ("+44 (0)20 7946 0958", "+442079460958"),
            ("+1 555 0001", "+15550001"),
            ("+15550001", "+15550001"),
            ("  +40 721 000 002 ", "+40721000002"),
            ("+1234567", "+1234567"),
        ] {
            assert_eq!(normalize(text, None), Ok(e164.into()), "{text}");
            assert_eq!(normalize(text, Some("IL")), Ok(e164.into()), "{text}");
            assert!(is_international(text), "{text}");
            assert!(is_e164(e164), "{e164}");
        }
    }

    #[test]
    fn what_is_not_a_phone_number_says_why() {
        let err = |text: &str, country: Option<&str>| normalize(text, country).unwrap_err();
        assert_eq!(
            err("call me", Some("IL")),
            "\"call me\" is not a phone number: it contains letters"
        );
        assert!(err("+1555Dana", None).ends_with("it contains letters"));
        assert!(err("+1555", None).contains("it has 4 digits with its country code (7 to 15"));
        assert!(err("+1234567890123456", None).contains("16 digits"));
        assert!(err("12", Some("IL")).contains("5 digits"));
        assert!(err("555-0001", Some("US")).contains("a North American number has 10 digits"));
        assert!(err("+0123456789", None).contains("no country code begins with 0"));
        assert!(err("1+2", Some("IL")).contains("\"+\" only goes first"));
        assert!(err("050#1234567", Some("IL")).contains("it contains \"#\""));
        assert!(err(" - ", Some("IL")).contains("it has no digits"));
        assert_eq!(
            err("050-1234567", None),
            "\"050-1234567\" is a national number and no country is known for it"
        );
        assert!(err("050-1234567", Some("ZZ")).contains("\"ZZ\" is not a country code"));
        assert!(!is_international("050-1234567"));
        assert!(is_national("050-1234567"));
        assert!(!is_national("call me") && !is_national("+972501234567"));
    }

    #[test]
    fn e164_form_is_what_normalize_returns() {
        for ok in ["+15550001", "+972501234567", "+123456789012345"] {
            assert!(is_e164(ok), "{ok}");
            assert_eq!(normalize(ok, None).as_deref(), Ok(ok));
        }
        for not in [
            "15550001",
            "+1555",
            "+1234567890123456",
            "+0123456789",
            "+1 5550001",
            "+1555Q",
        ] {
            assert!(!is_e164(not), "{not}");
        }
    }

    #[test]
    fn every_country_once_with_a_calling_code() {
        for (i, (iso, code)) in COUNTRIES.iter().enumerate() {
            assert!(
                iso.len() == 2 && iso.bytes().all(|b| b.is_ascii_uppercase()),
                "{iso}"
            );
            assert!(
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()),
                "{iso}"
            );
            assert!(!COUNTRIES[..i].iter().any(|(o, _)| o == iso), "{iso} twice");
        }
        assert!(COUNTRIES.len() > 240);
        for (iso, _) in TRUNKS {
            assert!(
                calling_code(iso).is_some(),
                "{iso} in TRUNKS, not in COUNTRIES"
            );
        }
        assert_eq!(calling_code("il"), Some(("972", &["0"][..])));
    }
}
