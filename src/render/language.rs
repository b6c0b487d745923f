//! The Liquid language templates are written in: Liquid's standard library, bounded. Every tag,
//! block and filter of the standard library is wrapped so that it ticks the render's budget
//! (`budget.rs`: interrupts, time, memory) and every filter first checks that its result fits;
//! `for` and `capture` are replaced by bounded versions (a range is counted before it is
//! materialised, every iteration is counted, a capture writes into bounded output). `tablerow`,
//! `include` and `render` are left out (no partials exist, and `tablerow` is a second loop).
use super::budget;
use liquid_core::error::ResultLiquidExt;
use liquid_core::model::{KString, ObjectView, Scalar, Value, ValueCow, ValueView};
use liquid_core::parser::{BlockElement, FilterArguments, TryMatchToken};
use liquid_core::runtime::{Interrupt, InterruptRegister, StackFrame};
use liquid_core::{
    BlockReflection, Expression, Filter, Language, ParseBlock, ParseFilter, ParseTag, Renderable,
    Result, Runtime, TagBlock, TagTokenIter, Template,
};
use liquid_lib::stdlib;
use std::fmt;
use std::io::Write;

/// The parser of the bounded language.
pub fn parser() -> liquid::Parser {
    let mut builder = liquid::ParserBuilder::new();
    let tags: Vec<Box<dyn ParseTag>> = vec![
        Box::new(stdlib::AssignTag),
        Box::new(stdlib::BreakTag),
        Box::new(stdlib::ContinueTag),
        Box::new(stdlib::CycleTag),
        Box::new(stdlib::IncrementTag),
        Box::new(stdlib::DecrementTag),
    ];
    for tag in tags {
        builder = builder.tag(Ticked(tag));
    }
    let blocks: Vec<Box<dyn ParseBlock>> = vec![
        Box::new(stdlib::RawBlock),
        Box::new(stdlib::IfBlock),
        Box::new(stdlib::UnlessBlock),
        Box::new(stdlib::IfChangedBlock),
        Box::new(stdlib::CommentBlock),
        Box::new(stdlib::CaseBlock),
    ];
    for block in blocks {
        builder = builder.block(Ticked(block));
    }
    builder = builder.block(BoundedFor).block(BoundedCapture);
    for filter in stdlib_filters() {
        builder = builder.filter(Checked(filter));
    }
    builder.build().expect("the bounded Liquid language builds")
}

fn stdlib_filters() -> Vec<Box<dyn ParseFilter>> {
    use stdlib::*;
    vec![
        Box::new(Abs),
        Box::new(Append),
        Box::new(AtLeast),
        Box::new(AtMost),
        Box::new(Capitalize),
        Box::new(Ceil),
        Box::new(Compact),
        Box::new(Concat),
        Box::new(Date),
        Box::new(Default),
        Box::new(DividedBy),
        Box::new(Downcase),
        Box::new(Escape),
        Box::new(EscapeOnce),
        Box::new(First),
        Box::new(Floor),
        Box::new(Join),
        Box::new(Last),
        Box::new(Lstrip),
        Box::new(Map),
        Box::new(Minus),
        Box::new(Modulo),
        Box::new(NewlineToBr),
        Box::new(Plus),
        Box::new(Prepend),
        Box::new(Remove),
        Box::new(RemoveFirst),
        Box::new(Replace),
        Box::new(ReplaceFirst),
        Box::new(Reverse),
        Box::new(Round),
        Box::new(Rstrip),
        Box::new(Size),
        Box::new(Slice),
        Box::new(Sort),
        Box::new(SortNatural),
        Box::new(Split),
        Box::new(Strip),
        Box::new(StripHtml),
        Box::new(StripNewlines),
        Box::new(Times),
        Box::new(Truncate),
        Box::new(TruncateWords),
        Box::new(Uniq),
        Box::new(Upcase),
        Box::new(UrlDecode),
        Box::new(UrlEncode),
        Box::new(Where),
    ]
}

/// A standard tag or block whose renders tick the budget before and after.
#[derive(Clone)]
struct Ticked<P>(P);

#[derive(Debug)]
struct TickedRender(Box<dyn Renderable>);

impl Renderable for TickedRender {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        budget::tick()?;
        self.0.render_to(writer, runtime)?;
        budget::tick()
    }
}

impl ParseTag for Ticked<Box<dyn ParseTag>> {
    fn parse(&self, arguments: TagTokenIter, options: &Language) -> Result<Box<dyn Renderable>> {
        Ok(Box::new(TickedRender(self.0.parse(arguments, options)?)))
    }

    fn reflection(&self) -> &dyn liquid_core::TagReflection {
        self.0.reflection()
    }
}

impl ParseBlock for Ticked<Box<dyn ParseBlock>> {
    fn parse(
        &self,
        arguments: TagTokenIter,
        block: TagBlock,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        Ok(Box::new(TickedRender(
            self.0.parse(arguments, block, options)?,
        )))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self.0.reflection()
    }
}

/// A standard filter that checks, before it runs, that its result fits in the budget: the
/// filters whose result can be a multiple of their input (`replace`, `join`, `split`) are
/// estimated from their arguments, the others as input plus arguments.
#[derive(Clone)]
struct Checked(Box<dyn ParseFilter>);

impl ParseFilter for Checked {
    fn parse(&self, arguments: FilterArguments) -> Result<Box<dyn Filter>> {
        let positional: Vec<Expression> = arguments.positional.collect();
        let inner = self.0.parse(FilterArguments {
            positional: Box::new(positional.clone().into_iter()),
            keyword: arguments.keyword,
        })?;
        Ok(Box::new(CheckedFilter {
            name: self.0.reflection().name().to_string(),
            positional,
            inner,
        }))
    }

    fn reflection(&self) -> &dyn liquid_core::parser::FilterReflection {
        self.0.reflection()
    }
}

#[derive(Debug)]
struct CheckedFilter {
    name: String,
    positional: Vec<Expression>,
    inner: Box<dyn Filter>,
}

impl fmt::Display for CheckedFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Filter for CheckedFilter {
    fn evaluate(&self, input: &dyn ValueView, runtime: &dyn Runtime) -> Result<Value> {
        let args = self
            .positional
            .iter()
            .map(|e| e.evaluate(runtime))
            .collect::<Result<Vec<_>>>()?;
        if let Some(why) = refused(&self.name, input, &args) {
            return Err(liquid_core::Error::with_msg(why));
        }
        budget::reserve(estimate(&self.name, input, &args))?;
        let out = self.inner.evaluate(input, runtime)?;
        budget::tick()?;
        Ok(out)
    }
}

/// Widest field a `date` format may ask for (`%64Y`): strftime pads one character at a time,
/// before any budget could see it.
const MAX_DATE_WIDTH: u64 = 64;

/// Why a filter must not run on these values, if so: integer arithmetic past i64 (Liquid's own
/// wraps, or panics for i64::MIN / -1) and `date` fields wider than MAX_DATE_WIDTH.
fn refused(name: &str, input: &dyn ValueView, args: &[ValueCow<'_>]) -> Option<String> {
    let int = |v: &dyn ValueView| v.as_scalar().and_then(|s| s.to_integer());
    if name == "date" {
        let format = args.first()?.to_kstr().into_owned();
        return date_width(&format)
            .filter(|w| *w > MAX_DATE_WIDTH)
            .map(|w| format!("date: a field {w} wide, more than {MAX_DATE_WIDTH}"));
    }
    let (i, o) = (int(input)?, int(args.first()?.as_view())?);
    let overflows = match name {
        "plus" => i.checked_add(o).is_none(),
        "minus" => i.checked_sub(o).is_none(),
        "times" => i.checked_mul(o).is_none(),
        "divided_by" | "modulo" => o != 0 && i.checked_div(o).is_none(),
        _ => false,
    };
    overflows.then(|| format!("{name}: the result is past the integer range"))
}

/// The widest field of a strftime format (`%` then flags, then a width), if any asks for one.
fn date_width(format: &str) -> Option<u64> {
    let mut widest = None;
    for part in format.split('%').skip(1) {
        let digits: String = part
            .trim_start_matches(['-', '_', '0', '^', '#'])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if !digits.is_empty() {
            let w = digits.parse::<u64>().unwrap_or(u64::MAX);
            widest = widest.max(Some(w));
        }
    }
    widest
}

/// Bytes a value takes as text (arrays: their elements, one level).
fn size(v: &dyn ValueView) -> usize {
    match v.as_array() {
        Some(items) => items
            .values()
            .map(|i| i.to_kstr().len() + 32)
            .fold(0, usize::saturating_add),
        None => v.to_kstr().len(),
    }
}

/// An upper bound of the bytes a filter's result takes.
fn estimate(name: &str, input: &dyn ValueView, args: &[ValueCow<'_>]) -> usize {
    let arg = |i: usize| args.get(i).map(|a| a.to_kstr().into_owned());
    let input_len = size(input);
    let args_len = args
        .iter()
        .map(|a| size(a.as_view()))
        .fold(0, usize::saturating_add);
    let occurrences = |pattern: &str| {
        let text = input.to_kstr();
        if pattern.is_empty() {
            text.chars().count() + 1
        } else {
            text.matches(pattern).count()
        }
    };
    match name {
        "replace" => {
            let n = occurrences(&arg(0).unwrap_or_default());
            let with = arg(1).map_or(0, |w| w.len());
            input_len.saturating_add(n.saturating_mul(with))
        }
        "join" => {
            let n = input.as_array().map_or(1, |a| a.size() as usize);
            let separator = arg(0).map_or(1, |s| s.len());
            input_len.saturating_add(n.saturating_mul(separator))
        }
        "split" => {
            let n = occurrences(&arg(0).unwrap_or_default()) + 1;
            input_len.saturating_add(n.saturating_mul(64))
        }
        _ => input_len.saturating_add(args_len),
    }
}

/// `{% for x in … %}`: Liquid's `for`, with the range counted against the iteration limit
/// before it is built and every iteration ticking the budget.
#[derive(Clone, Copy, Debug, Default)]
struct BoundedFor;

impl BlockReflection for BoundedFor {
    fn start_tag(&self) -> &str {
        "for"
    }

    fn end_tag(&self) -> &str {
        "endfor"
    }

    fn description(&self) -> &str {
        "A loop, bounded by the render's iteration limit."
    }
}

fn attribute(arguments: &mut TagTokenIter<'_>) -> Result<Expression> {
    arguments
        .expect_next("\":\" expected.")?
        .expect_str(":")
        .into_result_custom_msg("\":\" expected.")?;
    arguments
        .expect_next("Value expected.")?
        .expect_value()
        .into_result()
}

impl ParseBlock for BoundedFor {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let var_name = arguments
            .expect_next("Identifier expected.")?
            .expect_identifier()
            .into_result()?;
        arguments
            .expect_next("\"in\" expected.")?
            .expect_str("in")
            .into_result_custom_msg("\"in\" expected.")?;
        let range = arguments.expect_next("Array or range expected.")?;
        let range = match range.expect_value() {
            TryMatchToken::Matches(array) => stdlib::RangeExpression::Array(array),
            TryMatchToken::Fails(range) => match range.expect_range() {
                TryMatchToken::Matches((start, stop)) => {
                    stdlib::RangeExpression::Counted(start, stop)
                }
                TryMatchToken::Fails(range) => return range.raise_error().into_err(),
            },
        };
        let (mut limit, mut offset, mut reversed) = (None, None, false);
        while let Some(token) = arguments.next() {
            match token.as_str() {
                "limit" => limit = Some(attribute(&mut arguments)?),
                "offset" => offset = Some(attribute(&mut arguments)?),
                "reversed" => reversed = true,
                _ => {
                    return token
                        .raise_custom_error("\"limit\", \"offset\" or \"reversed\" expected.")
                        .into_err()
                }
            }
        }
        arguments.expect_nothing()?;
        let mut body = Vec::new();
        let mut otherwise = None;
        while let Some(element) = tokens.next()? {
            match element {
                BlockElement::Tag(mut tag) => match tag.name() {
                    "else" => {
                        tag.tokens().expect_nothing()?;
                        otherwise = Some(Template::new(tokens.parse_all(options)?));
                        break;
                    }
                    _ => body.push(tag.parse(&mut tokens, options)?),
                },
                element => body.push(element.parse(&mut tokens, options)?),
            }
        }
        tokens.assert_empty();
        Ok(Box::new(For {
            var_name: KString::from_ref(var_name),
            range,
            body: Template::new(body),
            otherwise,
            limit,
            offset,
            reversed,
        }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct For {
    var_name: KString,
    range: stdlib::RangeExpression,
    body: Template,
    otherwise: Option<Template>,
    limit: Option<Expression>,
    offset: Option<Expression>,
    reversed: bool,
}

/// `forloop` inside a loop.
#[derive(Debug, Clone, liquid::ValueView, liquid::ObjectView)]
struct Forloop<'p> {
    length: i64,
    parentloop: Option<&'p dyn ValueView>,
    index0: i64,
    index: i64,
    rindex0: i64,
    rindex: i64,
    first: bool,
    last: bool,
}

fn whole_number(attr: &Option<Expression>, runtime: &dyn Runtime) -> Result<Option<usize>> {
    let Some(attr) = attr else {
        return Ok(None);
    };
    let value = attr.evaluate(runtime)?;
    value
        .as_scalar()
        .and_then(|s| s.to_integer())
        .map(|n| Some(n.max(0) as usize))
        .ok_or_else(|| liquid_core::Error::with_msg("Expected whole number"))
}

impl For {
    /// The items to loop over, the range's size checked before it is built.
    fn items<'r>(&self, range: &'r stdlib::Range<'r>) -> Result<Vec<ValueCow<'r>>> {
        match range {
            stdlib::Range::Counted(start, stop) => {
                let n = stop.saturating_sub(*start).saturating_add(1).max(0) as u64;
                budget::iterations_fit(n)?;
                Ok((*start..=*stop).map(|x| Value::scalar(x).into()).collect())
            }
            stdlib::Range::Array(array) => {
                let array = array.as_view();
                if let Some(items) = array.as_array() {
                    Ok(items.values().map(ValueCow::Borrowed).collect())
                } else if let Some(object) = array.as_object() {
                    Ok(object
                        .iter()
                        .map(|(k, v)| {
                            Value::Array(vec![Value::scalar(k.into_owned()), v.to_value()]).into()
                        })
                        .collect())
                } else if array.is_state() || array.is_nil() {
                    Ok(Vec::new())
                } else {
                    Err(liquid_core::Error::with_msg(format!(
                        "Expected array, found `{}`",
                        array.type_name()
                    )))
                }
            }
        }
    }
}

impl Renderable for For {
    fn render_to(&self, writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        budget::tick()?;
        let range = self.range.evaluate(runtime)?;
        let mut items = self.items(&range)?;
        let offset = whole_number(&self.offset, runtime)?
            .unwrap_or(0)
            .min(items.len());
        items.drain(..offset);
        if let Some(limit) = whole_number(&self.limit, runtime)? {
            items.truncate(limit);
        }
        if self.reversed {
            items.reverse();
        }
        if items.is_empty() {
            if let Some(t) = &self.otherwise {
                t.render_to(writer, runtime)?;
            }
            return Ok(());
        }
        let parent = runtime.try_get(&[Scalar::new("forloop")]);
        let parentloop = parent.as_ref().map(|v| v.as_view());
        let len = items.len() as i64;
        for (i, item) in items.into_iter().enumerate() {
            budget::iteration()?;
            let i = i as i64;
            let forloop = Forloop {
                length: len,
                parentloop,
                index0: i,
                index: i + 1,
                rindex0: len - i - 1,
                rindex: len - i,
                first: i == 0,
                last: i == len - 1,
            };
            let mut root = std::collections::HashMap::<
                liquid_core::model::KStringRef<'_>,
                &dyn ValueView,
            >::new();
            root.insert("forloop".into(), &forloop);
            root.insert(self.var_name.as_ref(), &item);
            let scope = StackFrame::new(runtime, &root);
            self.body
                .render_to(writer, &scope)
                .trace_with(|| format!("{{% for {} %}}", self.var_name).into())?;
            let interrupt = scope.registers().get_mut::<InterruptRegister>().reset();
            if let Some(Interrupt::Break) = interrupt {
                break;
            }
        }
        Ok(())
    }
}

/// `{% capture x %}`: Liquid's `capture`, writing into output bounded by the render's memory.
#[derive(Clone, Copy, Debug, Default)]
struct BoundedCapture;

impl BlockReflection for BoundedCapture {
    fn start_tag(&self) -> &str {
        "capture"
    }

    fn end_tag(&self) -> &str {
        "endcapture"
    }

    fn description(&self) -> &str {
        "Captures text into a variable, bounded by the render's memory limit."
    }
}

impl ParseBlock for BoundedCapture {
    fn parse(
        &self,
        mut arguments: TagTokenIter<'_>,
        mut tokens: TagBlock<'_, '_>,
        options: &Language,
    ) -> Result<Box<dyn Renderable>> {
        let id: KString = arguments
            .expect_next("Identifier expected")?
            .expect_identifier()
            .into_result()?
            .to_owned()
            .into();
        arguments.expect_nothing()?;
        let body = Template::new(tokens.parse_all(options)?);
        tokens.assert_empty();
        Ok(Box::new(Capture { id, body }))
    }

    fn reflection(&self) -> &dyn BlockReflection {
        self
    }
}

#[derive(Debug)]
struct Capture {
    id: KString,
    body: Template,
}

impl Renderable for Capture {
    fn render_to(&self, _writer: &mut dyn Write, runtime: &dyn Runtime) -> Result<()> {
        budget::tick()?;
        let mut captured = budget::Output::capture();
        self.body.render_to(&mut captured, runtime)?;
        let text = String::from_utf8(captured.bytes)
            .map_err(|_| liquid_core::Error::with_msg("a capture is not UTF-8"))?;
        runtime.set_global(self.id.clone(), Value::scalar(text));
        budget::tick()
    }
}
