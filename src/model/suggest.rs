//! "Did you mean": the known name nearest a misspelt one (a small Levenshtein distance), for
//! the problems of unknown keys in nodes, edges and triggers.

/// The edit distance (insertions, deletions, substitutions) between `a` and `b`, by
/// characters; one row of the table at a time.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            let cost = usize::from(ca != *cb);
            row[j + 1] = (diagonal + cost).min(above + 1).min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The known name nearest `word`, when it is near enough to be a typo of it: at most one edit
/// for names of up to four characters, two up to eight, three beyond (case ignored).
pub fn nearest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase();
    let allowed = match word.chars().count() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    known
        .iter()
        .map(|k| (distance(&word, &k.to_lowercase()), *k))
        .filter(|(d, _)| *d <= allowed)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// ` (did you mean "x"?)` when a known name is near `word`, else ` (<list> a, b, c)` (`list`
/// is e.g. "use" or "its fields:").
pub fn hint(word: &str, known: &[&str], list: &str) -> String {
    match nearest(word, known) {
        Some(k) => format!(" (did you mean \"{k}\"?)"),
        None => format!(" ({list} {})", known.join(", ")),
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("unsubscibe", "unsubscribe"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("dealy", "delay"), 2);
        assert_eq!(distance("día", "dia"), 1);
    }

    #[test]
    fn nearest_known_name_or_none() {
        let known = [
            "text",
            "template",
            "sender",
            "unsubscribe",
            "ignore_quiet_hours",
        ];
        assert_eq!(nearest("unsubscibe", &known), Some("unsubscribe"));
        assert_eq!(nearest("Text", &known), Some("text"));
        assert_eq!(nearest("templte", &known), Some("template"));
        assert_eq!(
            nearest("ignore_quiet_hour", &known),
            Some("ignore_quiet_hours")
        );
        assert_eq!(nearest("body", &known), None);
        assert_eq!(nearest("x", &known), None);
        assert_eq!(nearest("colour", &["color", "colours"]), Some("color"));
    }

    #[test]
    fn hints() {
        let known = ["group", "where"];
        assert_eq!(
            hint("grup", &known, "its fields"),
            " (did you mean \"group\"?)"
        );
        assert_eq!(
            hint("audience", &known, "its fields:"),
            " (its fields: group, where)"
        );
        assert_eq!(hint("x", &known, "use"), " (use group, where)");
    }
}
