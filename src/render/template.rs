//! Liquid templates (the `liquid` crate, in the bounded language of `language.rs`). Parsed
//! templates are cached per backend by source text, so a flow's templates are parsed once, not
//! once per contact. Renders run under a budget (`budget.rs`).
use super::budget::{self, Limits};
use liquid::{Object, ObjectView, Parser, Template};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

thread_local! {
    static PARSER: Parser = super::language::parser();
    static CACHE: RefCell<(HashMap<String, Rc<Template>>, usize)> = RefCell::new((HashMap::new(), 0));
}

/// The cache is emptied when it holds this many templates, or sources of this many bytes in all
/// (a parsed template takes some 40 times its source).
const CACHE_LIMIT: usize = 4096;
const CACHE_BYTES: usize = 4 << 20;

/// Longest template source, in bytes.
pub const MAX_SOURCE: usize = 262_144;
/// Deepest nesting of blocks (`if`, `for`, …, each `elsif` a level more) and of brackets in a
/// tag or an expression (`a[b[c]]`, ranges): the parser recurses once per level, so the depth
/// is checked before parsing.
pub const MAX_NESTING: usize = 32;

/// Blocks that open a level of nesting.
const BLOCKS: &[&str] = &[
    "if",
    "unless",
    "for",
    "case",
    "capture",
    "comment",
    "ifchanged",
    "tablerow",
];

/// A `{% tag %}` of the source: its name and whether anything follows the name.
struct Tag<'a> {
    name: &'a str,
    has_arguments: bool,
}

/// The tags of a source as Liquid's lexer splits it: text, `{% tags %}` and `{{ expressions }}`,
/// each ending at the first `%}` or `}}` outside a string literal. Fails when brackets in one of
/// them nest deeper than MAX_NESTING.
fn tags(source: &str) -> Result<Vec<Tag<'_>>, String> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = source[i..].find('{').map(|k| i + k) {
        let close = match bytes.get(at + 1) {
            Some(b'%') => b'%',
            Some(b'{') => b'}',
            _ => {
                i = at + 1;
                continue;
            }
        };
        let (mut j, mut quote, mut brackets, mut operators) = (at + 2, None, 0usize, 0usize);
        while j < bytes.len() {
            let b = bytes[j];
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => {}
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if b == b'[' || b == b'(' => {
                    brackets += 1;
                    if brackets > MAX_NESTING {
                        return Err(format!(
                            "brackets are nested more than {MAX_NESTING} deep in one tag"
                        ));
                    }
                }
                None if b == b']' || b == b')' => brackets = brackets.saturating_sub(1),
                // `and` and `or` chain a condition one level deeper each
                None if (b == b'a' || b == b'o') && is_operator(bytes, j) => {
                    operators += 1;
                    if operators > MAX_NESTING {
                        return Err(format!(
                            "a condition joins more than {MAX_NESTING} terms with and/or"
                        ));
                    }
                }
                None if b == close && bytes.get(j + 1) == Some(&b'}') => break,
                None => {}
            }
            j += 1;
        }
        if close == b'%' {
            let body = source[at + 2..j.min(source.len())]
                .trim_start_matches('-')
                .trim_start()
                .trim_end()
                .trim_end_matches('-');
            let name_end = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                .unwrap_or(body.len());
            out.push(Tag {
                name: &body[..name_end],
                has_arguments: !body[name_end..].trim().is_empty(),
            });
        }
        i = (j + 2).min(source.len());
    }
    Ok(out)
}

/// Whether the word `and` or `or` starts at `j` (not part of a longer name).
fn is_operator(bytes: &[u8], j: usize) -> bool {
    let word = |k: usize| {
        bytes
            .get(k)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_')
    };
    if j > 0 && word(j - 1) {
        return false;
    }
    let rest = &bytes[j..];
    (rest.starts_with(b"and") && !word(j + 3)) || (rest.starts_with(b"or") && !word(j + 2))
}

/// Refuses sources too long or too deeply nested to parse safely. Follows the block parsers
/// of the `liquid` crate: a block's end tag closes it; any other `end…` tag is an error that
/// ends the parse, or, inside a `comment` (which ignores its tags' errors), every block opened
/// inside it; `raw` holds everything up to its `endraw` as text; each `elsif` nests one level
/// deeper (the parser recurses for it).
fn check_source(source: &str) -> Result<(), String> {
    if source.len() > MAX_SOURCE {
        return Err(format!(
            "the template is {} bytes long, more than {MAX_SOURCE}",
            source.len()
        ));
    }
    let (mut open, mut raw): (Vec<(&str, usize)>, bool) = (Vec::new(), false);
    let (mut depth, mut deepest) = (0usize, 0usize);
    for tag in tags(source)? {
        let name = tag.name;
        if raw {
            // (an endraw with arguments is not the end of raw: Liquid takes it as text)
            raw = name != "endraw" || tag.has_arguments;
        } else if name == "raw" {
            raw = true;
        } else if BLOCKS.contains(&name) {
            open.push((name, 1));
            depth += 1;
        } else if name == "elsif" {
            if let Some(top) = open.last_mut() {
                top.1 += 1;
                depth += 1;
            }
        } else if let Some(block) = name.strip_prefix("end") {
            // an end tag the innermost block does not expect fails the parse up to the nearest
            // comment, or altogether; popping only up to a block it names (or the comment)
            // leaves at least as many levels open as the parser has, and scanning on after a
            // parse that failed only counts more
            while let Some(&(top, levels)) = open.last() {
                if top == "comment" && block != "comment" {
                    break;
                }
                open.pop();
                depth -= levels;
                if top == block {
                    break;
                }
            }
        }
        deepest = deepest.max(depth);
    }
    if deepest > MAX_NESTING {
        return Err(format!(
            "blocks are nested {deepest} deep, more than {MAX_NESTING}"
        ));
    }
    Ok(())
}

/// Parses (or fetches from the cache) a template; the error is Liquid's message.
pub fn compile(source: &str) -> Result<Rc<Template>, String> {
    if let Some(t) = CACHE.with(|c| c.borrow().0.get(source).cloned()) {
        return Ok(t);
    }
    check_source(source)?;
    let template = PARSER
        .with(|p| p.parse(source))
        .map(Rc::new)
        .map_err(|e| one_line(&e.to_string()))?;
    CACHE.with(|c| {
        let (map, bytes) = &mut *c.borrow_mut();
        if map.len() >= CACHE_LIMIT || *bytes + source.len() > CACHE_BYTES {
            map.clear();
            *bytes = 0;
        }
        map.insert(source.to_string(), template.clone());
        *bytes += source.len();
    });
    Ok(template)
}

/// Renders a template with the given variables (`contact`, `event`, `flow`) within `limits`,
/// honouring Postgres interrupts.
pub fn render(
    source: &str,
    vars: &dyn liquid::ObjectView,
    limits: Limits,
) -> Result<String, String> {
    render_with(source, vars, limits, postgres_interrupts)
}

/// Raises the Postgres error of a pending cancel or terminate.
pub fn postgres_interrupts() {
    pgrx::check_for_interrupts!();
}

/// [`render`] with the interrupt check given (tests outside Postgres pass a no-op).
pub fn render_with(
    source: &str,
    vars: &dyn liquid::ObjectView,
    limits: Limits,
    interrupts: fn(),
) -> Result<String, String> {
    let template = compile(source)?;
    budget::run(limits, interrupts, || {
        let mut out = budget::Output::message();
        template
            .render_to(&mut out, vars)
            .map_err(|e| super::explain::explain(&one_line(&e.to_string())))?;
        let text = String::from_utf8(out.bytes)
            .map_err(|_| "the rendered text is not UTF-8".to_string())?;
        // (Postgres text cannot hold NUL; `url_decode` of %00 makes one)
        if text.contains('\0') {
            return Err("the rendered text contains a NUL character".into());
        }
        Ok(text)
    })
}

/// Parses a JSON object's text straight into a Liquid object (the engine reads contacts'
/// attributes as text): one pass, no `serde_json::Value` in between.
pub fn parse_object(text: &str) -> Option<Object> {
    use serde::de::DeserializeSeed;
    let mut de = serde_json::Deserializer::from_str(text);
    match LiquidSeed.deserialize(&mut de).ok()? {
        liquid::model::Value::Object(o) => de.end().ok().map(|_| o),
        _ => None,
    }
}

/// The variables of one render, borrowed rather than copied into a new object: the engine
/// keeps each enrollment's contact and event, and one `flow` value per flow version.
#[derive(liquid::ObjectView, liquid::ValueView, Debug)]
pub struct Vars<'a> {
    pub contact: &'a super::contact::Contact,
    pub event: &'a super::event::Event,
    pub flow: &'a liquid::model::Value,
    /// A record trigger's record (with its links) and, on updates, its old row.
    pub record: &'a super::event::Part<'a>,
    pub old: &'a super::event::Part<'a>,
}

struct LiquidSeed;

impl<'de> serde::de::DeserializeSeed<'de> for LiquidSeed {
    type Value = liquid::model::Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(LiquidVisitor)
    }
}

struct LiquidVisitor;

impl<'de> serde::de::Visitor<'de> for LiquidVisitor {
    type Value = liquid::model::Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => liquid::model::Value::scalar(i),
            Err(_) => liquid::model::Value::scalar(v as f64),
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::scalar(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::Nil)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(liquid::model::Value::Nil)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(LiquidSeed)? {
            items.push(v);
        }
        Ok(liquid::model::Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut object = Object::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(LiquidSeed)?;
            object.insert(key.into(), value);
        }
        Ok(liquid::model::Value::Object(object))
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Renders outside Postgres for unit tests: default limits with a 1 MB output, no interrupts.
#[cfg(test)]
pub fn render_test(source: &str, vars: &dyn liquid::ObjectView) -> Result<String, String> {
    render_with(source, vars, Limits::output(1 << 20), || {})
}

#[cfg(test)]
mod unit {
    use super::*;
    use serde_json::json;

    /// JSON to a Liquid value, walked directly.
    fn to_liquid(value: &serde_json::Value) -> liquid::model::Value {
        use liquid::model::Value as L;
        use serde_json::Value as J;
        match value {
            J::Null => L::Nil,
            J::Bool(b) => L::scalar(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => L::scalar(i),
                None => L::scalar(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => L::scalar(s.clone()),
            J::Array(items) => L::Array(items.iter().map(to_liquid).collect()),
            J::Object(map) => L::Object(
                map.iter()
                    .map(|(k, v)| (k.clone().into(), to_liquid(v)))
                    .collect(),
            ),
        }
    }

    /// Builds the variables object from JSON values.
    fn variables(
        contact: &serde_json::Value,
        event: &serde_json::Value,
        flow: &serde_json::Value,
    ) -> Object {
        let mut vars = Object::new();
        for (name, value) in [("contact", contact), ("event", event), ("flow", flow)] {
            vars.insert(name.into(), to_liquid(value));
        }
        vars
    }

    #[test]
    fn renders_contact_and_event() {
        let vars = variables(
            &json!({"first_name": "Dana"}),
            &json!({"amount": 12}),
            &json!({"name": "f"}),
        );
        assert_eq!(
            render_test(
                "Hi {{ contact.first_name }}, {{ event.amount }} in {{ flow.name }}",
                &vars
            )
            .unwrap(),
            "Hi Dana, 12 in f"
        );
        assert_eq!(
            render_test(
                "Hi {{ contact.last_name | default: 'there' }}",
                &variables(&json!({"last_name": null}), &json!({}), &json!({}))
            )
            .unwrap(),
            "Hi there"
        );
    }

    #[test]
    fn json_values_keep_their_types() {
        let vars = variables(
            &json!({"n": 3, "x": 1.5, "ok": true, "tags": ["a", "b"], "none": null, "o": {"k": "v"}}),
            &json!({}),
            &json!({}),
        );
        assert_eq!(
            render_test(
                "{{ contact.n | plus: 1 }} {{ contact.x }} {{ contact.ok }} {{ contact.tags | join: '+' }} [{{ contact.none }}] {{ contact.o.k }}",
                &vars
            )
            .unwrap(),
            "4 1.5 true a+b [] v"
        );
    }

    #[test]
    fn json_text_parses_to_the_same_variables() {
        let text = r#"{"n": 3, "x": 1.5, "ok": true, "tags": ["a", "b"], "none": null, "o": {"k": "v\u00e9"}}"#;
        let mut direct = Object::new();
        direct.insert(
            "contact".into(),
            liquid::model::Value::Object(parse_object(text).unwrap()),
        );
        let via_serde = variables(&serde_json::from_str(text).unwrap(), &json!({}), &json!({}));
        let t = "{{ contact.n | plus: 1 }} {{ contact.x }} {{ contact.ok }} {{ contact.tags | join: '+' }} [{{ contact.none }}] {{ contact.o.k }}";
        assert_eq!(
            render_test(t, &direct).unwrap(),
            render_test(t, &via_serde).unwrap()
        );
        assert_eq!(
            render_test(t, &direct).unwrap(),
            "4 1.5 true a+b [] v\u{e9}"
        );
        assert!(parse_object("[1]").is_none());
        assert!(parse_object("{\"a\": 1} x").is_none());
    }

    #[test]
    fn syntax_errors_are_reported() {
        assert!(compile("{% if %}").is_err());
        assert!(compile("{{ contact.first_name ").is_err());
    }

    /// Each of these once aborted or stalled the backend; now each ends with an error naming
    /// the limit, having allocated at most a few times the memory limit.
    #[test]
    fn hostile_templates_hit_a_limit() {
        let vars = variables(&json!({"first_name": "Dana"}), &json!({}), &json!({}));
        let cases = [
            // 2^40 bytes by doubling
            ("{% assign s = 'xx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s }}", "memory"),
            // doubling through a capture, no filter
            ("{% assign s = 'xxxxxxxx' %}{% for i in (1..40) %}{% capture s %}{{ s }}{{ s }}{% endcapture %}{% endfor %}", "memory"),
            // thirty million empty iterations; a range too large to build
            ("{% for i in (1..30000000) %}{% endfor %}", "iterations"),
            ("{% for i in (1..9000000000000000000) %}{% endfor %}", "iterations"),
            // nested loops: each one small
            ("{% for i in (1..1000) %}{% for j in (1..1000) %}{% endfor %}{% endfor %}", "iterations"),
            // one replace or join multiplying its input
            ("{% assign s = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' %}{% for i in (1..12) %}{% assign s = s | append: s %}{% endfor %}{% assign t = s | replace: 'a', s %}", "memory"),
            ("{% assign s = 'ab' %}{% for i in (1..18) %}{% assign s = s | append: s %}{% endfor %}{% assign a = s | split: '' %}{{ a | join: s }}", "memory"),
            // output past the message limit
            ("{% for i in (1..60000) %}0123456789abcdef0123456789{% endfor %}", "longer than"),
            // a date field padded a character at a time, past any budget (1 GB, 4 GB aborted)
            ("{{ 'now' | date: '%1000000000Y' }}", "wide"),
            ("{{ 'now' | date: '%-04000000000d' }}", "wide"),
            // integer arithmetic past i64 (i64::MIN / -1 panicked; the others wrapped)
            ("{% assign m = -9223372036854775807 | minus: 1 %}{{ m | divided_by: -1 }}", "integer range"),
            ("{% assign m = -9223372036854775807 | minus: 1 %}{{ m | modulo: -1 }}", "integer range"),
            ("{{ 9223372036854775807 | plus: 1 }}", "integer range"),
            ("{{ 4611686018427387904 | times: 2 }}", "integer range"),
        ];
        // (no time limit here: a debug build under load must still hit the limit named)
        let limits = Limits {
            time: std::time::Duration::from_secs(3600),
            ..Limits::output(256 << 10)
        };
        for (source, limit) in cases {
            let err = render_with(source, &vars, limits, || {}).expect_err(source);
            assert!(err.contains(limit), "{source}: {err}");
        }
    }

    /// The per-backend cache is emptied once its sources pass CACHE_BYTES (large templates each
    /// take some 40 times their source once parsed), not only at CACHE_LIMIT templates.
    #[test]
    fn the_template_cache_is_bounded_by_bytes() {
        let big = |i: usize| format!("{i}{}", "x".repeat(200_000));
        for i in 0..(CACHE_BYTES / 200_000 + 5) {
            compile(&big(i)).unwrap();
            let (count, bytes) = CACHE.with(|c| (c.borrow().0.len(), c.borrow().1));
            assert!(bytes <= CACHE_BYTES, "{bytes}");
            assert!(count < CACHE_LIMIT);
        }
    }

    #[test]
    fn dates_and_arithmetic_within_range_still_work() {
        let vars = variables(&json!({}), &json!({}), &json!({}));
        assert_eq!(
            render_test(
                "{{ '2026-01-02 10:00:00 +0000' | date: '%Y-%m-%d %-d' }}",
                &vars
            )
            .unwrap(),
            "2026-01-02 2"
        );
        assert_eq!(
            render_test(
                "{{ 7 | plus: 1 | times: 3 | divided_by: -2 | modulo: 5 }}",
                &vars
            )
            .unwrap(),
            "-2"
        );
    }

    #[test]
    fn loops_and_captures_still_work() {
        let vars = variables(&json!({"tags": ["a", "b", "c"]}), &json!({}), &json!({}));
        assert_eq!(
            render_test(
                "{% for t in contact.tags reversed %}{{ forloop.index }}{{ t }}{% if forloop.last %}.{% endif %}{% endfor %}",
                &vars
            )
            .unwrap(),
            "1c2b3a."
        );
        assert_eq!(
            render_test(
                "{% for i in (1..5) offset: 1 limit: 2 %}{{ i }}{% else %}none{% endfor %}|{% for i in (2..1) %}x{% else %}none{% endfor %}",
                &vars
            )
            .unwrap(),
            "23|none"
        );
        assert_eq!(
            render_test(
                "{% for i in (1..3) %}{% for j in (1..2) %}{{ forloop.parentloop.index }}{{ j }} {% endfor %}{% if i == 2 %}{% break %}{% endif %}{% endfor %}",
                &vars
            )
            .unwrap(),
            "11 12 21 22 "
        );
        assert_eq!(
            render_test(
                "{% capture c %}{{ contact.tags | join: '-' | upcase }}{% endcapture %}{{ c }}",
                &vars
            )
            .unwrap(),
            "A-B-C"
        );
    }

    /// Each of these nests far deeper than the tags' names alone show (the parser would recurse
    /// until the stack overflowed and took the server down): refused before parsing.
    #[test]
    fn nesting_hidden_from_a_naive_count_is_refused() {
        let n = 200;
        let hidden = [
            // an end tag inside raw is text, not the end of a block
            "{% if a %}{% raw %}{% endz %}{% endraw %}".repeat(n) + &"{% endif %}".repeat(n),
            "{% if a %}{% raw %}{% endif %}{% endraw %}".repeat(n) + &"{% endif %}".repeat(n),
            // %} and tags inside a string literal are part of the tag
            "{% if a == \"%}{% endif %}\" %}".repeat(n) + &"{% endif %}".repeat(n),
            "{% if a == '%}{% endif %}' %}".repeat(n) + &"{% endif %}".repeat(n),
            // each elsif is parsed one level deeper
            "{% if a %}".to_string() + &"{% elsif b %}".repeat(n) + "{% endif %}",
            // brackets in an expression or a tag
            "{{ a".to_string() + &"[a".repeat(n) + &"]".repeat(n) + " }}",
            "{% if a".to_string() + &"[a".repeat(n) + &"]".repeat(n) + " %}{% endif %}",
            "{% for i in ".to_string()
                + &"(".repeat(n)
                + "1..2"
                + &")".repeat(n)
                + " %}{% endfor %}",
            // each and / or of a condition
            "{% if a".to_string() + &" and 1".repeat(n) + " %}y{% endif %}",
            "{% if a".to_string() + &" or b".repeat(n) + " %}y{% endif %}",
        ];
        for source in hidden {
            let err = compile(&source).err().unwrap_or_default();
            assert!(
                err.contains("nested") || err.contains("and/or"),
                "{}: {err}",
                &source[..60]
            );
        }
    }

    #[test]
    fn nesting_the_parser_never_sees_is_allowed() {
        let allowed = [
            // raw holds anything as text
            "{% raw %}".to_string() + &"{% if a %}".repeat(100) + "{% endraw %}",
            // a comment ignores its tags' errors: the blocks opened inside it close with it
            "{% comment %}{% if a %}{% endfor %}{% endcomment %}".repeat(100),
            "{% if a %}{% elsif b %}{% elsif c %}{% else %}{% endif %}".repeat(100),
            "{{ a[b[c]] }}{% if x == '[[[[[[' %}{% endif %}".repeat(100),
            "{% if brand and order or android == ' and and and' %}{% endif %}".repeat(100),
        ];
        for source in allowed {
            assert!(compile(&source).is_ok(), "{}", &source[..60]);
        }
    }

    #[test]
    fn deep_nesting_and_long_sources_are_refused_before_parsing() {
        let deep = "{% if true %}".repeat(5000) + &"{% endif %}".repeat(5000);
        assert!(compile(&deep).err().unwrap().contains("nested"));
        let long = "x".repeat(MAX_SOURCE + 1);
        assert!(compile(&long).err().unwrap().contains("bytes long"));
        let ok = "{% if true %}".repeat(10) + &"{% endif %}".repeat(10);
        assert!(compile(&ok).is_ok());
        assert!(compile("{% tablerow x in y %}{% endtablerow %}").is_err());
    }

    /// Postgres's interrupts (statement_timeout, cancel, terminate) are checked all through a
    /// render, and one raised (a Rust panic here, as pgrx turns an ERROR) ends the render and
    /// leaves the next render unaffected.
    #[test]
    fn interrupts_are_checked_during_a_render() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        fn count() {
            CALLS.fetch_add(1, Ordering::Relaxed);
        }
        let vars = variables(&json!({}), &json!({}), &json!({}));
        render_with(
            "{% for i in (1..5000) %}{% endfor %}",
            &vars,
            Limits::output(1024),
            count,
        )
        .unwrap();
        assert!(CALLS.load(Ordering::Relaxed) >= 5000);
        fn cancel() {
            panic!("canceling statement due to statement timeout");
        }
        let raised = std::panic::catch_unwind(|| {
            render_with(
                "{% for i in (1..5) %}x{% endfor %}",
                &vars,
                Limits::output(1024),
                cancel,
            )
        });
        assert!(raised.is_err());
        assert_eq!(
            render_test("{% for i in (1..3) %}x{% endfor %}", &vars).unwrap(),
            "xxx"
        );
        assert!(render_test("a{{ '%00' | url_decode }}b", &vars)
            .unwrap_err()
            .contains("NUL"));
    }

    #[test]
    fn a_render_past_its_time_limit_ends() {
        let vars = variables(&json!({}), &json!({}), &json!({}));
        let limits = Limits {
            time: std::time::Duration::ZERO,
            ..Limits::output(1024)
        };
        let err =
            render_with("{% for i in (1..10) %}x{% endfor %}", &vars, limits, || {}).unwrap_err();
        assert!(err.contains("ran longer than 0 ms"), "{err}");
    }
}
