//! SMS encoding and segment counting: GSM-7 when every character is in the GSM
//! 03.38 alphabet (160 per single message, 153 per part; the extension table `^{}\[~]|€`
//! counts twice), otherwise UCS-2 (70 / 67; characters outside the BMP count twice).

const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{000C}";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

impl Encoding {
    pub fn as_str(&self) -> &'static str {
        match self {
            Encoding::Gsm7 => "GSM-7",
            Encoding::Ucs2 => "UCS-2",
        }
    }
}

/// Septets per ASCII character: 1 in the basic alphabet, 2 in the extension table, 0 outside
/// GSM-7 (the backtick and most control characters). Built from the two tables above.
const ASCII_SEPTETS: [u8; 128] = {
    let mut table = [0u8; 128];
    let (basic, extended) = (GSM_BASIC.as_bytes(), GSM_EXTENDED.as_bytes());
    let mut i = 0;
    while i < basic.len() {
        if basic[i] < 128 {
            table[basic[i] as usize] = 1;
        }
        i += 1;
    }
    i = 0;
    while i < extended.len() {
        if extended[i] < 128 {
            table[extended[i] as usize] = 2;
        }
        i += 1;
    }
    table
};

/// The encoding and number of segments of a text.
pub fn segments(text: &str) -> (Encoding, i32) {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if c.is_ascii() {
            match ASCII_SEPTETS[c as usize] {
                0 => {
                    gsm = false;
                    break;
                }
                n => septets += n as usize,
            }
        } else if GSM_BASIC.contains(c) {
            septets += 1;
        } else if GSM_EXTENDED.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (units, single, part, enc) = if gsm {
        (septets, 160, 153, Encoding::Gsm7)
    } else {
        (
            text.chars().map(|c| c.len_utf16()).sum::<usize>(),
            70,
            67,
            Encoding::Ucs2,
        )
    };
    let n = if units <= single {
        1
    } else {
        units.div_ceil(part)
    };
    (enc, n as i32)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn gsm_and_ucs2_limits() {
        assert_eq!(segments(&"a".repeat(160)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"a".repeat(161)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(306)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"a".repeat(307)), (Encoding::Gsm7, 3));
        assert_eq!(segments(&"€".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"€".repeat(81)), (Encoding::Gsm7, 2));
        assert_eq!(segments(&"ש".repeat(70)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"ש".repeat(71)), (Encoding::Ucs2, 2));
        assert_eq!(segments(&"😀".repeat(35)), (Encoding::Ucs2, 1));
        assert_eq!(segments(&"😀".repeat(36)), (Encoding::Ucs2, 2));
        // ASCII: extension characters count twice; the backtick is not in GSM-7
        assert_eq!(segments(&"[".repeat(80)), (Encoding::Gsm7, 1));
        assert_eq!(segments(&"{".repeat(81)), (Encoding::Gsm7, 2));
        assert_eq!(segments("a`b"), (Encoding::Ucs2, 1));
        assert_eq!(segments("a\tb").0, Encoding::Ucs2);
        assert_eq!(segments("a\nb\r@$_"), (Encoding::Gsm7, 1));
    }
}
