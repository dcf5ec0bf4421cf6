//! Nunjucks' built-in filters and tests as Backstage 4.2.0 runs them: its renderer is
//! nunjitsu, a closed re-implementation of Nunjucks 3.2.4 whose filters follow JavaScript's
//! coercions (`Number("")` is 0, `String(undefined)` is `"undefined"`, `Math.round(-2.5)` is
//! -2), not Jinja's. Every filter and test nunjitsu has is registered here, with its quirks
//! (`default('x', boolean=false)` still defaults falsy values, `selectattr` ignores a test
//! argument, `urlize(none, true)` links with empty text), and every minijinja filter or test
//! nunjitsu lacks is removed, so a template using one stays unrendered as in Backstage.
//!
//! A filter that fails returns an error worded as nunjitsu's (`Filter "first" failed for
//! undefined input: first requires a sequence`).

use std::cmp::Ordering;

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, ErrorKind, Value};

use super::regex::JsRegex;
use crate::render::Syntax;
use crate::render::runtime::items;

/// The filters nunjitsu has (`hasBuiltinFilter`).
pub(crate) const FILTERS: &[&str] = &[
    "abs",
    "batch",
    "capitalize",
    "center",
    "d",
    "default",
    "dictsort",
    "dump",
    "e",
    "escape",
    "first",
    "float",
    "forceescape",
    "groupby",
    "indent",
    "int",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "nl2br",
    "random",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "select",
    "selectattr",
    "slice",
    "sort",
    "string",
    "striptags",
    "sum",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "urlize",
    "wordcount",
];

/// The tests nunjitsu has, with the number of arguments each takes (`builtinTestArities`).
pub(crate) const TESTS: &[(&str, usize)] = &[
    ("callable", 0),
    ("defined", 0),
    ("divisibleby", 1),
    ("escaped", 0),
    ("eq", 1),
    ("equalto", 1),
    ("even", 0),
    ("falsy", 0),
    ("ge", 1),
    ("greaterthan", 1),
    ("gt", 1),
    ("iterable", 0),
    ("le", 1),
    ("lessthan", 1),
    ("lower", 0),
    ("lt", 1),
    ("mapping", 0),
    ("ne", 1),
    ("null", 0),
    ("number", 0),
    ("odd", 0),
    ("sameas", 1),
    ("string", 0),
    ("truthy", 0),
    ("undefined", 0),
    ("upper", 0),
];

/// Registers nunjitsu's filters and tests on an environment made with
/// `Environment::empty()` (minijinja's own built-ins are not nunjitsu's, and building
/// them is most of what a fresh plugin instance would spend on its renderer); `jsonify`
/// (an alias of `dump`) exists only with cookiecutter delimiters.
pub(crate) fn register(env: &mut Environment<'static>, syntax: Syntax) {
    for &name in FILTERS {
        env.add_filter(name, move |input: Value, args: Rest<ValueOrKwargs>| {
            call_filter(name, name, input, args)
        });
    }
    if syntax == Syntax::Cookiecutter {
        env.add_filter("jsonify", |input: Value, args: Rest<ValueOrKwargs>| {
            call_filter("jsonify", "dump", input, args)
        });
    }
    for &(name, arity) in TESTS {
        env.add_test(name, move |input: Value, args: Rest<Value>| {
            call_test(name, arity, &input, &args)
        });
    }
}

fn call_filter(
    shown: &str,
    name: &str,
    input: Value,
    args: Rest<ValueOrKwargs>,
) -> Result<Value, Error> {
    let args = args.into_values();
    let (positional, kwargs) = from_args::<(&[Value], Kwargs)>(&args)?;
    let positional = lower_arguments(name, positional, &kwargs);
    apply_filter(name, &input, &positional).map_err(|message| {
        let _ = shown;
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "Filter \"{name}\" failed for {} input: {message}",
                kind_name(&input)
            ),
        )
    })
}

/// nunjitsu's `lowerBuiltinFilterArguments`: `int` and `sort` take their keyword arguments
/// by name; any other filter receives them as one trailing record (`{…, __keywords: true}`).
fn lower_arguments(name: &str, positional: &[Value], kwargs: &Kwargs) -> Vec<Value> {
    let names: &[&str] = match name {
        "int" => &["default", "base"],
        "sort" => &["reverse", "case_sensitive", "attribute"],
        _ => {
            let mut out = positional.to_vec();
            let keys: Vec<&str> = kwargs.args().collect();
            if !keys.is_empty() {
                let mut entries: Vec<(Value, Value)> = keys
                    .iter()
                    .map(|k| (Value::from(*k), kwargs.peek::<Value>(k).unwrap_or_default()))
                    .collect();
                entries.push((Value::from("__keywords"), Value::from(true)));
                out.push(Value::from_pairs(entries));
            }
            return out;
        }
    };
    let mut out: Vec<Value> = positional.iter().take(names.len()).cloned().collect();
    for name in &names[out.len().min(names.len())..] {
        out.push(kwargs.peek::<Value>(name).unwrap_or(Value::UNDEFINED));
    }
    out
}

/// How nunjitsu names a value's kind in errors (`runtimeValueKind`).
fn kind_name(value: &Value) -> &'static str {
    match value.kind() {
        ValueKind::Undefined => "undefined",
        ValueKind::None => "null",
        ValueKind::Bool => "boolean",
        ValueKind::Number => "number",
        ValueKind::String if value.is_safe() => "safe string",
        ValueKind::String => "string",
        ValueKind::Seq | ValueKind::Iterable => "array",
        ValueKind::Map => "record",
        ValueKind::Plain if is_regex(value) => "regular expression",
        ValueKind::Plain => "callable",
        _ => "unknown value",
    }
}

type Filtered = Result<Value, String>;

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::UNDEFINED)
}

fn apply_filter(name: &str, input: &Value, args: &[Value]) -> Filtered {
    no_callable(input)?;
    for a in args {
        no_callable(a)?;
    }
    let p0 = arg(args, 0);
    let p1 = arg(args, 1);
    match name {
        "abs" => Ok(number(to_number(input)?.abs())),
        "batch" => batch(input, &p0, &p1),
        "capitalize" => {
            let text = text(&normalize_text_input(input))?.to_lowercase();
            let units: Vec<u16> = text.encode_utf16().collect();
            let out = match units.split_first() {
                Some((first, rest)) => {
                    String::from_utf16_lossy(&[*first]).to_uppercase()
                        + &String::from_utf16_lossy(rest)
                }
                None => String::new(),
            };
            Ok(copy_safeness(input, out))
        }
        "center" => {
            let normalized = normalize_text_input(input);
            let width = if truthy(&p0) { p0 } else { Value::from(80) };
            let length = direct_length(&normalized);
            if order(&length, &width)?.is_some_and(|o| o != Ordering::Less) {
                return Ok(normalized);
            }
            let spaces = to_number(&width)? - to_number(&length)?;
            let text = to_js_string(&normalized)?;
            let out = repeat_spaces(spaces / 2.0 - js_rem(spaces, 2.0))?
                + &text
                + &repeat_spaces(spaces / 2.0)?;
            Ok(copy_safeness(&normalized, out))
        }
        "default" | "d" => Ok(if truthy(&p1) {
            if truthy(input) { input.clone() } else { p0 }
        } else if input.is_undefined() {
            p0
        } else {
            input.clone()
        }),
        "dictsort" => dictsort(input, &p0, &p1),
        "dump" => dump(input, &p0),
        "escape" | "e" => Ok(if input.is_safe() {
            input.clone()
        } else {
            Value::from_safe_string(escape_html(&render(input)?))
        }),
        "forceescape" => Ok(Value::from_safe_string(escape_html(&render(input)?))),
        "safe" => Ok(if input.is_safe() {
            input.clone()
        } else {
            Value::from_safe_string(render(input)?)
        }),
        "first" | "last" => edge(input, name == "last"),
        "float" => {
            let parsed = parse_float(&to_js_string(input)?);
            Ok(if parsed.is_nan() { p0 } else { number(parsed) })
        }
        "int" => {
            let base = if p1.is_undefined() {
                10.0
            } else {
                to_number(&p1)?.trunc()
            };
            let parsed = parse_int(&to_js_string(input)?, base);
            Ok(if parsed.is_nan() { p0 } else { number(parsed) })
        }
        "reverse" => {
            if is_string(input) {
                let mut units: Vec<u16> = text(input)?.encode_utf16().collect();
                units.reverse();
                return Ok(copy_safeness(input, String::from_utf16_lossy(&units)));
            }
            match input.kind() {
                ValueKind::Seq | ValueKind::Iterable => {
                    let mut items = items(input);
                    items.reverse();
                    Ok(Value::from(items))
                }
                ValueKind::Map => {
                    let mut items = record_indexed_values(input, true)?;
                    items.reverse();
                    Ok(Value::from(items))
                }
                _ => Ok(Value::from(Vec::<Value>::new())),
            }
        }
        "groupby" => groupby(input, &p0),
        "join" => join(input, &p0, &p1),
        "sum" => sum(input, &p0, &p1),
        "sort" => sort(input, &p0, &p1, &arg(args, 2)),
        "selectattr" | "rejectattr" => select_attr(input, &p0, name == "selectattr"),
        "select" | "reject" => select(input, args, name == "select"),
        "indent" => {
            let normalized = normalize_text_input(input);
            let text = text(&normalized)?;
            if !normalized.is_safe() && text.is_empty() {
                return Ok(Value::from(""));
            }
            let width = if truthy(&p0) { p0 } else { Value::from(4) };
            let first = truthy(&p1);
            let indentation = repeat_spaces(to_number(&width)?)?;
            bounded(text.len() + (text.matches('\n').count() + 1) * indentation.len())?;
            let lines: Vec<String> = text
                .split('\n')
                .enumerate()
                .map(|(i, line)| {
                    if i > 0 || first {
                        format!("{indentation}{line}")
                    } else {
                        line.to_owned()
                    }
                })
                .collect();
            Ok(copy_safeness(&normalized, lines.join("\n")))
        }
        "length" => Ok(length(input)),
        "list" => list(input),
        "lower" => Ok(Value::from(
            text(&normalize_text_input(input))?.to_lowercase(),
        )),
        "upper" => Ok(Value::from(js_upper(&text(&normalize_text_input(input))?))),
        "nl2br" => {
            let text = if input.is_undefined() || input.is_none() {
                String::new()
            } else {
                text(input)?
            };
            Ok(copy_safeness(
                input,
                text.replace("\r\n", "\n").replace('\n', "<br />\n"),
            ))
        }
        "random" => random(input),
        "replace" => replace(input, &p0, &p1, &arg(args, 2)),
        "round" => {
            let precision = if truthy(&p0) { to_number(&p0)? } else { 0.0 };
            let factor = 10f64.powf(precision);
            let x = to_number(input)? * factor;
            let rounded = match p1.as_str() {
                Some("ceil") if !p1.is_safe() => x.ceil(),
                Some("floor") if !p1.is_safe() => x.floor(),
                _ => js_round(x),
            };
            Ok(number(rounded / factor))
        }
        "slice" => slice(input, &p0, &p1),
        "string" => {
            if input.is_undefined() || input.is_none() {
                return Err("string requires a value".into());
            }
            if input.is_safe() {
                return Ok(input.clone());
            }
            Ok(copy_safeness(input, render(input)?))
        }
        "striptags" => {
            let stripped = strip_tags(&text(&normalize_text_input(input))?)?;
            let stripped = js_trim(&stripped);
            let out = if truthy(&p0) {
                let lines: Vec<&str> = stripped.split('\n').collect();
                let trimmed: Vec<String> = lines
                    .iter()
                    .map(|l| l.trim_matches(' ').to_owned())
                    .collect();
                let joined = trimmed.join("\n");
                let collapsed = collapse(&joined, |c| c == ' ', " ");
                let unix = collapsed.replace("\r\n", "\n");
                collapse_blank_lines(&unix)
            } else {
                collapse(stripped, is_js_whitespace, " ")
            };
            Ok(copy_safeness(input, out))
        }
        "title" => {
            let words: Vec<String> = text(&normalize_text_input(input))?
                .split(' ')
                .map(|word| {
                    let lower: Vec<u16> = word.to_lowercase().encode_utf16().collect();
                    match lower.split_first() {
                        Some((first, rest)) => {
                            js_upper(&String::from_utf16_lossy(&[*first]))
                                + &String::from_utf16_lossy(rest)
                        }
                        None => String::new(),
                    }
                })
                .collect();
            Ok(copy_safeness(input, words.join(" ")))
        }
        "trim" => Ok(copy_safeness(input, js_trim(&text(input)?).to_owned())),
        "truncate" => truncate(input, &p0, &p1, &arg(args, 2)),
        "urlencode" => urlencode(input),
        "urlize" => urlize(input, &p0, &p1),
        "wordcount" => {
            let normalized = normalize_text_input(input);
            if !truthy(&normalized) {
                return Ok(Value::from(()));
            }
            let count = count_words(&text(&normalized)?);
            Ok(if count == 0 {
                Value::from(())
            } else {
                Value::from(count)
            })
        }
        _ => Err(format!("Unknown template filter {name}")),
    }
}

// ---- values as JavaScript sees them -------------------------------------------------------

fn is_regex(value: &Value) -> bool {
    JsRegex::from_value(value).is_some()
}

/// A function (a global such as `always`), which nunjitsu calls a callable.
fn is_callable(value: &Value) -> bool {
    value.kind() == ValueKind::Plain && !is_regex(value)
}

fn no_callable(value: &Value) -> Result<(), String> {
    if is_callable(value) {
        return Err("Callable values cannot be coerced".into());
    }
    Ok(())
}

fn is_string(value: &Value) -> bool {
    value.kind() == ValueKind::String
}

fn is_plain_string(value: &Value) -> bool {
    is_string(value) && !value.is_safe()
}

fn is_array(value: &Value) -> bool {
    matches!(value.kind(), ValueKind::Seq | ValueKind::Iterable)
}

fn is_record(value: &Value) -> bool {
    value.kind() == ValueKind::Map
}

/// A record's entries, keys as strings, in JavaScript property order (integer-like keys first,
/// ascending, then the others in insertion order), as `Object.keys` of a parsed JSON object.
fn entries(value: &Value) -> Vec<(String, Value)> {
    let mut indexed = Vec::new();
    let mut named = Vec::new();
    for key in items(value) {
        let item = value.get_item(&key).unwrap_or_default();
        let key = render(&key).unwrap_or_default();
        match array_index(&key) {
            Some(i) => indexed.push((i, key, item)),
            None => named.push((key, item)),
        }
    }
    indexed.sort_by_key(|(i, _, _)| *i);
    indexed
        .into_iter()
        .map(|(_, k, v)| (k, v))
        .chain(named)
        .collect()
}

/// A canonical array index (`"0"`, `"12"`, not `"01"`), as JavaScript orders property keys.
fn array_index(key: &str) -> Option<u32> {
    let i: u32 = key.parse().ok()?;
    (i < u32::MAX && i.to_string() == key).then_some(i)
}

fn record_get(value: &Value, key: &str) -> Value {
    value.get_item(&Value::from(key)).unwrap_or_default()
}

fn record_has(value: &Value, key: &str) -> bool {
    items(value).iter().any(|k| k.as_str() == Some(key))
}

/// A record read as an array-like through its `length` and `"0"`, `"1"`, … keys
/// (`indexedRuntimeRecordValues`); `checked` also rejects a bad numeric `length`.
fn record_indexed_values(value: &Value, checked: bool) -> Result<Vec<Value>, String> {
    let length = record_get(value, "length");
    if checked && length.kind() == ValueKind::Number {
        let l = to_number(&length)?;
        if !l.is_nan() && (l.fract() != 0.0 || !(0.0..=4_294_967_295.0).contains(&l)) {
            return Err("Invalid array-like record length".into());
        }
    }
    let count = to_number(&length)?;
    let count = if count.is_nan() || count <= 0.0 {
        0
    } else {
        count.ceil().min(1e6) as usize
    };
    Ok((0..count)
        .map(|i| record_get(value, &i.to_string()))
        .collect())
}

/// JavaScript truthiness as nunjitsu's `runtimeTruthy`: a safe string is always truthy, an
/// empty array or object too.
pub(crate) fn truthy(value: &Value) -> bool {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => false,
        ValueKind::Bool => value.is_true(),
        ValueKind::Number => f64_of(value).is_some_and(|f| f != 0.0 && !f.is_nan()),
        ValueKind::String => value.is_safe() || !value.as_str().unwrap_or_default().is_empty(),
        _ => true,
    }
}

fn f64_of(value: &Value) -> Option<f64> {
    if let Some(i) = value.as_i64() {
        return Some(i as f64);
    }
    f64::try_from(value.clone()).ok()
}

/// A number as a template value: whole numbers become integers, so they print and serialise
/// as JavaScript prints them (`3`, not `3.0`).
pub(crate) fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        Value::from(f as i64)
    } else {
        Value::from(f)
    }
}

/// A JavaScript primitive: what `ToPrimitive` makes of a template value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Primitive {
    Undefined,
    Null,
    Bool(bool),
    Number(f64),
    String(String),
}

pub(crate) fn to_primitive(value: &Value) -> Result<Primitive, String> {
    Ok(match value.kind() {
        ValueKind::Undefined => Primitive::Undefined,
        ValueKind::None => Primitive::Null,
        ValueKind::Bool => Primitive::Bool(value.is_true()),
        ValueKind::Number => Primitive::Number(f64_of(value).unwrap_or(f64::NAN)),
        ValueKind::String => Primitive::String(value.as_str().unwrap_or_default().to_owned()),
        ValueKind::Seq | ValueKind::Iterable => {
            let parts: Result<Vec<String>, String> = items(value)
                .iter()
                .map(|item| {
                    if item.is_undefined() || item.is_none() {
                        Ok(String::new())
                    } else {
                        to_js_string(item)
                    }
                })
                .collect();
            Primitive::String(parts?.join(","))
        }
        ValueKind::Map => Primitive::String("[object Object]".into()),
        ValueKind::Plain => match JsRegex::from_value(value) {
            Some(regex) => Primitive::String(regex.to_string()),
            None => return Err("Callable values cannot be coerced".into()),
        },
        _ => Primitive::String(value.to_string()),
    })
}

pub(crate) fn primitive_to_number(p: &Primitive) -> f64 {
    match p {
        Primitive::Undefined => f64::NAN,
        Primitive::Null => 0.0,
        Primitive::Bool(b) => f64::from(u8::from(*b)),
        Primitive::Number(n) => *n,
        Primitive::String(s) => string_to_number(s),
    }
}

pub(crate) fn primitive_to_string(p: &Primitive) -> String {
    match p {
        Primitive::Undefined => "undefined".into(),
        Primitive::Null => "null".into(),
        Primitive::Bool(b) => b.to_string(),
        Primitive::Number(n) => js_number_to_string(*n),
        Primitive::String(s) => s.clone(),
    }
}

/// JavaScript's `Number(value)` (`runtimeToNumber`).
pub(crate) fn to_number(value: &Value) -> Result<f64, String> {
    Ok(primitive_to_number(&to_primitive(value)?))
}

/// JavaScript's `String(value)`: `undefined` and `null` spelled out.
pub(crate) fn to_js_string(value: &Value) -> Result<String, String> {
    Ok(primitive_to_string(&to_primitive(value)?))
}

/// How nunjitsu prints a value into text (`renderRuntimeValue`): nothing for undefined and
/// null, arrays joined with `,` (their undefined and null items empty).
pub(crate) fn render(value: &Value) -> Result<String, String> {
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::Seq | ValueKind::Iterable => {
            let parts: Result<Vec<String>, String> = items(value).iter().map(render).collect();
            parts?.join(",")
        }
        _ => to_js_string(value)?,
    })
}

/// JavaScript's `StringToNumber`: whitespace trimmed, empty is 0, decimal literals with an
/// optional sign and exponent, `Infinity`, and unsigned `0x`/`0o`/`0b` integers; anything
/// else is NaN.
pub(crate) fn string_to_number(s: &str) -> f64 {
    let t = js_trim(s);
    if t.is_empty() {
        return 0.0;
    }
    for (prefix, radix) in [
        ("0x", 16),
        ("0X", 16),
        ("0o", 8),
        ("0O", 8),
        ("0b", 2),
        ("0B", 2),
    ] {
        if let Some(digits) = t.strip_prefix(prefix) {
            if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
                return f64::NAN;
            }
            return digits.chars().fold(0.0, |acc, c| {
                acc * f64::from(radix) + f64::from(c.to_digit(radix).unwrap_or(0))
            });
        }
    }
    let (sign, unsigned) = match t.as_bytes()[0] {
        b'-' => (-1.0, &t[1..]),
        b'+' => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    if unsigned == "Infinity" {
        return sign * f64::INFINITY;
    }
    match decimal_prefix(unsigned) {
        Some(len) if len == unsigned.len() => sign * unsigned.parse::<f64>().unwrap_or(f64::NAN),
        _ => f64::NAN,
    }
}

/// The length of the longest `StrUnsignedDecimalLiteral` (without `Infinity`) at the start.
fn decimal_prefix(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        let save = i;
        i += 1;
        frac_digits = digits(&mut i);
        if int_digits == 0 && frac_digits == 0 {
            i = save;
        }
    }
    if int_digits == 0 && frac_digits == 0 {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let save = i;
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            i = save;
        }
    }
    Some(i)
}

/// JavaScript's `parseFloat`.
fn parse_float(s: &str) -> f64 {
    let t = s.trim_start_matches(is_js_whitespace);
    let (sign, unsigned) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    if unsigned.starts_with("Infinity") {
        return sign * f64::INFINITY;
    }
    match decimal_prefix(unsigned) {
        Some(len) => sign * unsigned[..len].parse::<f64>().unwrap_or(f64::NAN),
        None => f64::NAN,
    }
}

/// JavaScript's `parseInt(s, radix)`.
fn parse_int(s: &str, radix: f64) -> f64 {
    let t = s.trim_start_matches(is_js_whitespace);
    let (sign, mut rest) = match t.as_bytes().first() {
        Some(b'-') => (-1.0, &t[1..]),
        Some(b'+') => (1.0, &t[1..]),
        _ => (1.0, t),
    };
    // ToInt32 of the radix; 0 (or NaN) means 10, or 16 with a `0x` prefix.
    let mut radix = if radix.is_finite() {
        (radix.trunc() as i64 as i32) as i64
    } else {
        0
    };
    let strip_prefix = radix == 0 || radix == 16;
    if radix == 0 {
        radix = 10;
    }
    if !(2..=36).contains(&radix) {
        return f64::NAN;
    }
    if strip_prefix && (rest.starts_with("0x") || rest.starts_with("0X")) {
        rest = &rest[2..];
        radix = 16;
    }
    let radix = radix as u32;
    let digits: Vec<u32> = rest.chars().map_while(|c| c.to_digit(radix)).collect();
    if digits.is_empty() {
        return f64::NAN;
    }
    sign * digits
        .iter()
        .fold(0.0, |acc, d| acc * f64::from(radix) + f64::from(*d))
}

/// JavaScript's `Math.round`: halves round up (towards +∞).
pub(crate) fn js_round(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    let floor = x.floor();
    if x - floor >= 0.5 { floor + 1.0 } else { floor }
}

/// JavaScript's `%` (the sign of the dividend).
fn js_rem(a: f64, b: f64) -> f64 {
    a % b
}

/// JavaScript's `Number.prototype.toString()` for a number.
pub(crate) fn js_number_to_string(n: f64) -> String {
    if n.is_nan() {
        return "NaN".into();
    }
    if n.is_infinite() {
        return if n > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if n == 0.0 {
        return "0".into();
    }
    // The shortest round-tripping digits and exponent, from Rust's `{:e}`.
    let formatted = format!("{:e}", n.abs());
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let k = digits.len() as i32;
    let n_exp = exponent + 1; // the decimal point position
    let sign = if n < 0.0 { "-" } else { "" };
    let body = if k <= n_exp && n_exp <= 21 {
        format!("{digits}{}", "0".repeat((n_exp - k) as usize))
    } else if 0 < n_exp && n_exp <= 21 {
        format!(
            "{}.{}",
            &digits[..n_exp as usize],
            &digits[n_exp as usize..]
        )
    } else if -6 < n_exp && n_exp <= 0 {
        format!("0.{}{digits}", "0".repeat((-n_exp) as usize))
    } else {
        let e = n_exp - 1;
        let e = if e >= 0 {
            format!("+{e}")
        } else {
            e.to_string()
        };
        if k == 1 {
            format!("{digits}e{e}")
        } else {
            format!("{}.{}e{e}", &digits[..1], &digits[1..])
        }
    };
    format!("{sign}{body}")
}

/// JavaScript's white space and line terminators (`String.prototype.trim`, `\s`).
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}'..='\u{d}'
            | ' '
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
            | '\u{feff}'
    )
}

fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// JavaScript's `toUpperCase` (Rust's agrees, `ß` becoming `SS` included).
fn js_upper(s: &str) -> String {
    s.to_uppercase()
}

/// The relational order of two values after `ToPrimitive` (`runtimeOrder`): strings compare
/// by UTF-16 code units, anything else as numbers; `None` when a side is NaN.
fn order(left: &Value, right: &Value) -> Result<Option<Ordering>, String> {
    Ok(order_primitives(
        &to_primitive(left)?,
        &to_primitive(right)?,
    ))
}

pub(crate) fn order_primitives(left: &Primitive, right: &Primitive) -> Option<Ordering> {
    if let (Primitive::String(a), Primitive::String(b)) = (left, right) {
        return Some(a.encode_utf16().cmp(b.encode_utf16()));
    }
    primitive_to_number(left).partial_cmp(&primitive_to_number(right))
}

/// JavaScript's `===` over template values; containers compare by identity.
pub(crate) fn strict_equal(left: &Value, right: &Value) -> bool {
    match (left.kind(), right.kind()) {
        (ValueKind::Undefined, ValueKind::Undefined) | (ValueKind::None, ValueKind::None) => true,
        (ValueKind::Bool, ValueKind::Bool) => left.is_true() == right.is_true(),
        (ValueKind::Number, ValueKind::Number) => f64_of(left) == f64_of(right),
        (ValueKind::String, ValueKind::String) => {
            !left.is_safe() && !right.is_safe() && left.as_str() == right.as_str()
        }
        (a, b) if a == b && left.as_object().is_some() && right.as_object().is_some() => {
            minijinja::tests::is_sameas(left, right)
        }
        _ => false,
    }
}

fn text(value: &Value) -> Result<String, String> {
    match value.as_str() {
        Some(s) if is_string(value) => Ok(s.to_owned()),
        _ => Err("Filter input must be a string".into()),
    }
}

fn normalize_text_input(value: &Value) -> Value {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Value::from(""),
        ValueKind::Bool if !value.is_true() => Value::from(""),
        _ => value.clone(),
    }
}

fn copy_safeness(input: &Value, out: String) -> Value {
    if input.is_safe() {
        Value::from_safe_string(out)
    } else {
        Value::from(out)
    }
}

fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// `runtimeDirectLength`: a string's or array's length, a record's `length` key.
fn direct_length(value: &Value) -> Value {
    match value.kind() {
        ValueKind::String => Value::from(utf16_len(value.as_str().unwrap_or_default())),
        ValueKind::Seq | ValueKind::Iterable => Value::from(items(value).len()),
        ValueKind::Map => record_get(value, "length"),
        _ => Value::UNDEFINED,
    }
}

fn repeat_spaces(bound: f64) -> Result<String, String> {
    if bound.is_nan() || bound <= 0.0 {
        return Ok(String::new());
    }
    if !bound.is_finite() || bound > f64::from(16 * 1024 * 1024) {
        return Err("Filter spacing exceeds the supported bound".into());
    }
    Ok(" ".repeat(bound.ceil() as usize))
}

/// Refuses to build a string or list past the renderer's output bound (8 MiB), so a filter
/// cannot multiply a small template into a memory bomb (`indent`, `replace`, `batch` fills).
fn bounded(size: usize) -> Result<(), String> {
    if size > crate::render::MAX_OUTPUT_BYTES {
        return Err("Filter output exceeds the supported bound".into());
    }
    Ok(())
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' => out.push_str("&#92;"),
            c => out.push(c),
        }
    }
    out
}

// ---- the filters --------------------------------------------------------------------------

fn batch(input: &Value, size: &Value, fill: &Value) -> Filtered {
    if input.is_undefined() || input.is_none() {
        return Err("batch requires a sequence".into());
    }
    let width = to_number(size)?.trunc();
    if !(width.is_finite() && width > 0.0 && width <= 9_007_199_254_740_991.0) {
        return Err("Batch size must be a positive integer".into());
    }
    let width = width as usize;
    let values = if is_record(input) {
        record_indexed_values(input, false)?
    } else {
        match sequence_values(input) {
            Some(v) => v,
            None => return Ok(Value::from(Vec::<Value>::new())),
        }
    };
    let mut rows: Vec<Value> = Vec::new();
    let mut row: Vec<Value> = Vec::new();
    for value in values {
        row.push(value);
        if row.len() == width {
            rows.push(Value::from(std::mem::take(&mut row)));
        }
    }
    if !row.is_empty() {
        if truthy(fill) {
            bounded(width - row.len())?;
            while row.len() < width {
                row.push(fill.clone());
            }
        }
        rows.push(Value::from(row));
    }
    Ok(Value::from(rows))
}

/// `runtimeSequenceValues`: an array's items, a string's UTF-16 code units; else none.
fn sequence_values(input: &Value) -> Option<Vec<Value>> {
    if is_array(input) {
        return Some(items(input));
    }
    if is_string(input) {
        return Some(code_units(input.as_str().unwrap_or_default()));
    }
    None
}

fn code_units(s: &str) -> Vec<Value> {
    s.encode_utf16()
        .map(|u| Value::from(String::from_utf16_lossy(&[u])))
        .collect()
}

fn dictsort(input: &Value, case_sensitive: &Value, by: &Value) -> Filtered {
    if !is_record(input) {
        return Err("dictsort requires a record".into());
    }
    let case_sensitive = truthy(case_sensitive);
    let by_value = match by.as_str() {
        _ if by.is_undefined() => false,
        Some("key") if is_plain_string(by) => false,
        Some("value") if is_plain_string(by) => true,
        _ => return Err("dictsort can only sort by key or value".into()),
    };
    let mut pairs: Vec<(Value, Value)> = entries(input)
        .into_iter()
        .map(|(k, v)| (Value::from(k), v))
        .collect();
    let normalise = |v: &Value| {
        if !case_sensitive && is_string(v) {
            Value::from(js_upper(v.as_str().unwrap_or_default()))
        } else {
            v.clone()
        }
    };
    js_sort(&mut pairs, |a, b| {
        let (a, b) = if by_value { (&a.1, &b.1) } else { (&a.0, &b.0) };
        let (a, b) = (normalise(a), normalise(b));
        if order(&a, &b).ok().flatten() == Some(Ordering::Greater) {
            1.0
        } else if strict_equal(&a, &b) {
            0.0
        } else {
            -1.0
        }
    });
    Ok(Value::from(
        pairs
            .into_iter()
            .map(|(k, v)| Value::from(vec![k, v]))
            .collect::<Vec<_>>(),
    ))
}

fn dump(input: &Value, indent: &Value) -> Filtered {
    let Some(json) = to_json(input)? else {
        return Ok(Value::UNDEFINED);
    };
    let indent: Option<String> = match indent.kind() {
        ValueKind::String if !indent.is_safe() => {
            let units: Vec<u16> = indent.as_str().unwrap_or_default().encode_utf16().collect();
            Some(String::from_utf16_lossy(&units[..units.len().min(10)]))
        }
        ValueKind::Number => {
            let n = to_number(indent)?;
            (!n.is_nan() && n > 0.0).then(|| " ".repeat(n.trunc().min(10.0) as usize))
        }
        _ => None,
    };
    Ok(Value::from(stringify(
        &json,
        indent.as_deref().unwrap_or(""),
    )))
}

/// A template value as JSON for `dump`: undefined members dropped, undefined items `null`,
/// NaN and infinities `null`, record keys in JavaScript order; `None` for undefined.
fn to_json(value: &Value) -> Result<Option<serde_json::Value>, String> {
    use serde_json::Value as Json;
    Ok(Some(match value.kind() {
        ValueKind::Undefined => return Ok(None),
        ValueKind::None => Json::Null,
        ValueKind::Bool => Json::Bool(value.is_true()),
        ValueKind::Number => match value.as_i64() {
            Some(i) => Json::from(i),
            None => {
                let f = f64_of(value).unwrap_or(f64::NAN);
                if f.is_finite() {
                    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
                } else {
                    Json::Null
                }
            }
        },
        ValueKind::String => Json::String(value.as_str().unwrap_or_default().to_owned()),
        ValueKind::Seq | ValueKind::Iterable => Json::Array(
            items(value)
                .iter()
                .map(|v| Ok(to_json(v)?.unwrap_or(Json::Null)))
                .collect::<Result<_, String>>()?,
        ),
        ValueKind::Map => {
            let mut map = serde_json::Map::new();
            for (k, v) in entries(value) {
                if let Some(v) = to_json(&v)? {
                    map.insert(k, v);
                }
            }
            Json::Object(map)
        }
        ValueKind::Plain if !is_regex(value) => {
            return Err("Callable values cannot be serialized".into());
        }
        _ => Json::Object(serde_json::Map::new()),
    }))
}

/// `JSON.stringify(json, null, indent)`.
fn stringify(json: &serde_json::Value, indent: &str) -> String {
    use serde_json::Value as Json;
    fn write(out: &mut String, json: &Json, indent: &str, depth: usize) {
        let newline = |out: &mut String, depth: usize| {
            if !indent.is_empty() {
                out.push('\n');
                for _ in 0..depth {
                    out.push_str(indent);
                }
            }
        };
        match json {
            Json::Array(items) if !items.is_empty() => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    write(out, item, indent, depth + 1);
                }
                newline(out, depth);
                out.push(']');
            }
            Json::Object(map) if !map.is_empty() => {
                out.push('{');
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    newline(out, depth + 1);
                    out.push_str(&json_string(k));
                    out.push(':');
                    if !indent.is_empty() {
                        out.push(' ');
                    }
                    write(out, v, indent, depth + 1);
                }
                newline(out, depth);
                out.push('}');
            }
            Json::Number(n) => out.push_str(&match n.as_f64() {
                Some(f) if !n.is_i64() && !n.is_u64() => js_number_to_string(f),
                _ => n.to_string(),
            }),
            Json::String(s) => out.push_str(&json_string(s)),
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(&mut out, json, indent, 0);
    out
}

/// A JSON string literal as `JSON.stringify` writes it (only `"`, `\` and control
/// characters escaped).
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn edge(input: &Value, last: bool) -> Filtered {
    if input.is_undefined() || input.is_none() {
        return Err(format!(
            "{} requires a sequence",
            if last { "last" } else { "first" }
        ));
    }
    if is_array(input) {
        let items = items(input);
        let item = if last { items.last() } else { items.first() };
        return Ok(item.cloned().unwrap_or(Value::UNDEFINED));
    }
    if is_string(input) {
        let units = code_units(input.as_str().unwrap_or_default());
        let unit = if last { units.last() } else { units.first() };
        return Ok(unit.cloned().unwrap_or(Value::UNDEFINED));
    }
    if is_record(input) {
        if !last {
            return Ok(record_get(input, "0"));
        }
        let index = to_number(&record_get(input, "length"))? - 1.0;
        return Ok(record_get(input, &js_number_to_string(index)));
    }
    Ok(Value::UNDEFINED)
}

/// `runtimeLength`: strings, arrays and records have one; undefined, null and false are 0;
/// anything else is undefined.
fn length(input: &Value) -> Value {
    match input.kind() {
        ValueKind::Seq | ValueKind::Iterable => Value::from(items(input).len()),
        ValueKind::Map => Value::from(items(input).len()),
        ValueKind::String => Value::from(utf16_len(input.as_str().unwrap_or_default())),
        ValueKind::Undefined | ValueKind::None => Value::from(0),
        ValueKind::Bool if !input.is_true() => Value::from(0),
        _ => Value::UNDEFINED,
    }
}

fn list(input: &Value) -> Filtered {
    if is_array(input) {
        return Ok(input.clone());
    }
    if is_string(input) {
        return Ok(Value::from(code_units(input.as_str().unwrap_or_default())));
    }
    if is_record(input) {
        return Ok(Value::from(
            entries(input)
                .into_iter()
                .map(|(k, v)| {
                    Value::from_pairs([
                        (Value::from("key"), Value::from(k)),
                        (Value::from("value"), v),
                    ])
                })
                .collect::<Vec<_>>(),
        ));
    }
    Err("list requires an iterable value".into())
}

fn groupby(input: &Value, attribute: &Value) -> Filtered {
    if input.is_undefined() || input.is_none() {
        return Err("groupby requires a sequence".into());
    }
    let values = if is_record(input) {
        record_indexed_values(input, false)?
    } else {
        match sequence_values(input) {
            Some(v) => v,
            None => return Ok(Value::from_pairs(Vec::<(Value, Value)>::new())),
        }
    };
    let path = attribute_path(attribute)?;
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for value in values {
        let key = to_js_string(&lookup_path(&value, &path)?)?;
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(value),
            None => groups.push((key, vec![value])),
        }
    }
    // A record's keys, as a JavaScript object prints them: integer-like keys first.
    let record = Value::from_pairs(
        groups
            .into_iter()
            .map(|(k, v)| (Value::from(k), Value::from(v))),
    );
    Ok(Value::from_pairs(
        entries(&record)
            .into_iter()
            .map(|(k, v)| (Value::from(k), v)),
    ))
}

/// `getterAttributePath`: a falsy attribute is the item itself, a string splits on `.`.
fn attribute_path(attribute: &Value) -> Result<Vec<String>, String> {
    if !truthy(attribute) {
        return Ok(Vec::new());
    }
    if is_plain_string(attribute) {
        return Ok(attribute
            .as_str()
            .unwrap_or_default()
            .split('.')
            .map(str::to_owned)
            .collect());
    }
    Ok(vec![to_js_string(attribute)?])
}

/// `lookupRuntimeAttributePath`: own properties only; a missing one is undefined, reading
/// from undefined or null fails.
fn lookup_path(value: &Value, path: &[String]) -> Result<Value, String> {
    let mut current = value.clone();
    for segment in path {
        if current.is_undefined() || current.is_none() {
            return Err("Cannot read a template attribute from a nullish value".into());
        }
        current = own_property(&current, segment);
    }
    Ok(current)
}

/// An own property of a value: a record's key, an array's or string's index or `length`.
fn own_property(value: &Value, key: &str) -> Value {
    match value.kind() {
        ValueKind::Map => {
            if record_has(value, key) {
                record_get(value, key)
            } else {
                Value::UNDEFINED
            }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = items(value);
            if key == "length" {
                return Value::from(items.len());
            }
            array_index(key)
                .and_then(|i| items.get(i as usize).cloned())
                .unwrap_or(Value::UNDEFINED)
        }
        ValueKind::String => {
            let s = value.as_str().unwrap_or_default();
            if key == "length" {
                return Value::from(utf16_len(s));
            }
            array_index(key)
                .and_then(|i| code_units(s).get(i as usize).cloned())
                .unwrap_or(Value::UNDEFINED)
        }
        _ => Value::UNDEFINED,
    }
}

/// `lookupRuntimeAttribute`: one own property; reading from undefined or null fails.
fn lookup_attribute(value: &Value, key: &str) -> Result<Value, String> {
    if value.is_undefined() || value.is_none() {
        return Err("Cannot read a template attribute from a nullish value".into());
    }
    Ok(own_property(value, key))
}

/// `projectRuntimeAttributeValues`: an attribute of every item.
fn project(input: &Value, attribute: &str) -> Result<Vec<Value>, String> {
    match input.kind() {
        ValueKind::Seq | ValueKind::Iterable => items(input)
            .iter()
            .map(|item| lookup_attribute(item, attribute))
            .collect(),
        ValueKind::String if !input.is_safe() => code_units(input.as_str().unwrap_or_default())
            .iter()
            .map(|item| lookup_attribute(item, attribute))
            .collect(),
        ValueKind::Map => record_indexed_values(input, true)?
            .iter()
            .map(|item| lookup_attribute(item, attribute))
            .collect(),
        ValueKind::String if !input.as_str().unwrap_or_default().is_empty() => {
            lookup_attribute(&Value::UNDEFINED, attribute).map(|_| Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}

fn join(input: &Value, separator: &Value, attribute: &Value) -> Filtered {
    let separator = if truthy(separator) {
        to_js_string(separator)?
    } else {
        String::new()
    };
    let values = if truthy(attribute) {
        project(input, &to_js_string(attribute)?)?
    } else {
        if !is_array(input) {
            return Err("join requires an array".into());
        }
        items(input)
    };
    let parts: Result<Vec<String>, String> = values
        .iter()
        .map(|item| {
            if item.is_undefined() || item.is_none() {
                Ok(String::new())
            } else {
                to_js_string(item)
            }
        })
        .collect();
    Ok(Value::from(parts?.join(&separator)))
}

/// `JSON.stringify(value)`; `None` for undefined.
pub(crate) fn stringify_value(value: &Value) -> Option<String> {
    to_json(value)
        .ok()
        .flatten()
        .map(|json| stringify(&json, ""))
}

/// JavaScript's `+` after `ToPrimitive` (`runtimeAdd`).
fn add(left: &Value, right: &Value) -> Result<Value, String> {
    let (a, b) = (to_primitive(left)?, to_primitive(right)?);
    if matches!(a, Primitive::String(_)) || matches!(b, Primitive::String(_)) {
        return Ok(Value::from(
            primitive_to_string(&a) + &primitive_to_string(&b),
        ));
    }
    Ok(number(primitive_to_number(&a) + primitive_to_number(&b)))
}

fn sum(input: &Value, attribute: &Value, start: &Value) -> Filtered {
    let values = if truthy(attribute) {
        project(input, &to_js_string(attribute)?)?
    } else {
        if !is_array(input) {
            return Err("sum requires an array".into());
        }
        items(input)
    };
    let mut reduced = Value::from(0);
    for value in &values {
        reduced = add(&reduced, value)?;
    }
    let start = if start.is_undefined() {
        Value::from(0)
    } else {
        start.clone()
    };
    add(&start, &reduced)
}

fn sort(input: &Value, reverse: &Value, case_sensitive: &Value, attribute: &Value) -> Filtered {
    let values = if is_record(input) {
        record_indexed_values(input, true)?
    } else if let Some(values) = sequence_values(input) {
        values
    } else {
        return Ok(Value::from(Vec::<Value>::new()));
    };
    let reverse = truthy(reverse);
    let case_sensitive = truthy(case_sensitive);
    let path = attribute_path(attribute)?;
    // Array.prototype.sort moves undefined items to the end without comparing them.
    let (mut defined, undefined): (Vec<Value>, Vec<Value>) =
        values.into_iter().partition(|v| !v.is_undefined());
    let mut failure = None;
    let mut keyed: Vec<(Value, Value)> = Vec::with_capacity(defined.len());
    for value in defined.drain(..) {
        match lookup_sort_path(&value, &path) {
            Ok(key) => keyed.push((key, value)),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    js_sort(&mut keyed, |(a, _), (b, _)| {
        let (a, b) = if !case_sensitive && is_string(a) && is_string(b) {
            (
                Value::from(a.as_str().unwrap_or_default().to_lowercase()),
                Value::from(b.as_str().unwrap_or_default().to_lowercase()),
            )
        } else {
            (a.clone(), b.clone())
        };
        match order(&a, &b).ok().flatten() {
            Some(Ordering::Less) => {
                if reverse {
                    1.0
                } else {
                    -1.0
                }
            }
            Some(Ordering::Greater) => {
                if reverse {
                    -1.0
                } else {
                    1.0
                }
            }
            _ => 0.0,
        }
    });
    let mut out: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
    out.extend(undefined);
    Ok(Value::from(out))
}

/// The sort key of an item: like [`lookup_path`], but a missing key ends the path.
fn lookup_sort_path(value: &Value, path: &[String]) -> Result<Value, String> {
    let mut current = value.clone();
    for segment in path {
        if current.is_undefined() || current.is_none() {
            return Err("Cannot read a template attribute from a nullish value".into());
        }
        current = own_property(&current, segment);
        if current.is_undefined() {
            return Ok(current);
        }
    }
    Ok(current)
}

/// V8's `Array.prototype.sort` for the lengths templates use: below 64 items, the initial
/// run then binary insertion (so inconsistent comparators order items as Node does); longer
/// arrays a stable merge sort. Never panics, whatever the comparator answers.
fn js_sort<T: Clone>(items: &mut [T], mut compare: impl FnMut(&T, &T) -> f64) {
    let n = items.len();
    if n < 2 {
        return;
    }
    if n >= 64 {
        merge_sort(items, &mut compare);
        return;
    }
    // CountAndMakeRun.
    let mut run = 2;
    let descending = compare(&items[1], &items[0]) < 0.0;
    while run < n {
        let order = compare(&items[run], &items[run - 1]);
        if (descending && order >= 0.0) || (!descending && order < 0.0) {
            break;
        }
        run += 1;
    }
    if descending {
        items[..run].reverse();
    }
    // BinaryInsertionSort from the end of the run.
    for start in run..n {
        let pivot = items[start].clone();
        let (mut left, mut right) = (0, start);
        while left < right {
            let mid = left + ((right - left) >> 1);
            if compare(&pivot, &items[mid]) < 0.0 {
                right = mid;
            } else {
                left = mid + 1;
            }
        }
        items[left..=start].rotate_right(1);
    }
}

fn merge_sort<T: Clone>(items: &mut [T], compare: &mut impl FnMut(&T, &T) -> f64) {
    let n = items.len();
    if n < 2 {
        return;
    }
    let mid = n / 2;
    merge_sort(&mut items[..mid], compare);
    merge_sort(&mut items[mid..], compare);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, mid);
    while i < mid && j < n {
        if compare(&items[j], &items[i]) < 0.0 {
            merged.push(items[j].clone());
            j += 1;
        } else {
            merged.push(items[i].clone());
            i += 1;
        }
    }
    merged.extend_from_slice(&items[i..mid]);
    merged.extend_from_slice(&items[j..n]);
    items.clone_from_slice(&merged);
}

fn select_attr(input: &Value, attribute: &Value, select: bool) -> Filtered {
    if !is_array(input) {
        return Err(format!(
            "{} requires an array",
            if select { "selectattr" } else { "rejectattr" }
        ));
    }
    let key = to_js_string(attribute)?;
    let mut out = Vec::new();
    for item in items(input) {
        if truthy(&lookup_attribute(&item, &key)?) == select {
            out.push(item);
        }
    }
    Ok(Value::from(out))
}

fn select(input: &Value, args: &[Value], select: bool) -> Filtered {
    let test = match args.first() {
        None => "truthy".to_owned(),
        Some(v) if v.is_undefined() => "truthy".to_owned(),
        Some(v) => to_js_string(v)?,
    };
    let Some(&(_, arity)) = TESTS.iter().find(|(n, _)| *n == test) else {
        return Err(format!("Unknown template test {test}"));
    };
    if input.is_undefined() || input.is_none() {
        return Err(format!(
            "{} requires a sequence",
            if select { "select" } else { "reject" }
        ));
    }
    let values = if is_record(input) {
        let length = to_number(&record_get(input, "length"))?;
        let count = if length.is_nan() || length <= 0.0 {
            0
        } else {
            length.floor().min(1e6) as usize
        };
        (0..count)
            .map(|i| i.to_string())
            .filter(|k| record_has(input, k))
            .map(|k| record_get(input, &k))
            .collect()
    } else {
        match sequence_values(input) {
            Some(v) => v,
            None => return Ok(Value::from(Vec::<Value>::new())),
        }
    };
    let test_args = args.get(1..).unwrap_or_default();
    check_arity(&test, arity, test_args.len())?;
    let mut out = Vec::new();
    for value in values {
        if apply_test(&test, &value, test_args)? == select {
            out.push(value);
        }
    }
    Ok(Value::from(out))
}

fn replace(input: &Value, search: &Value, replacement: &Value, maximum: &Value) -> Filtered {
    if let Some(regex) = JsRegex::from_value(search) {
        if !is_string(input) {
            return Err("Regular-expression replacement requires a string".into());
        }
        return Ok(Value::from(regex.replace(
            input.as_str().unwrap_or_default(),
            &to_js_string(replacement)?,
        )));
    }
    if !is_plain_string(search) && search.kind() != ValueKind::Number {
        return Ok(input.clone());
    }
    let coerced = if input.kind() == ValueKind::Number {
        Value::from(to_js_string(input)?)
    } else {
        input.clone()
    };
    if !is_string(&coerced) {
        return Ok(coerced);
    }
    let text = coerced.as_str().unwrap_or_default().to_owned();
    let needle = to_js_string(search)?;
    if needle.is_empty() {
        let replacement_text = to_js_string(replacement)?;
        let separator = if replacement.is_undefined() {
            ",".to_owned()
        } else {
            replacement_text.clone()
        };
        bounded(
            text.len()
                + (text.encode_utf16().count() + 1) * separator.len().max(replacement_text.len()),
        )?;
        let units: Vec<String> = code_units(&text)
            .iter()
            .map(|u| u.as_str().unwrap_or_default().to_owned())
            .collect();
        return Ok(copy_safeness(
            &coerced,
            format!(
                "{replacement_text}{}{replacement_text}",
                units.join(&separator)
            ),
        ));
    }
    let maximum_is_zero = maximum.kind() == ValueKind::Number && f64_of(maximum) == Some(0.0);
    if maximum_is_zero || !text.contains(&needle) {
        return Ok(coerced);
    }
    let replacement_text = to_js_string(replacement)?;
    let unlimited = maximum.is_undefined()
        || (maximum.kind() == ValueKind::Number && f64_of(maximum) == Some(-1.0));
    bounded(text.len() + text.matches(&needle).count() * replacement_text.len())?;
    if unlimited {
        return Ok(copy_safeness(
            input,
            text.replace(&needle, &replacement_text),
        ));
    }
    let maximum = to_number(maximum)?;
    let mut remaining = text.as_str();
    let mut out = String::new();
    let mut count = 0.0;
    while count < maximum {
        let Some(index) = remaining.find(&needle) else {
            break;
        };
        out.push_str(&remaining[..index]);
        out.push_str(&replacement_text);
        remaining = &remaining[index + needle.len()..];
        count += 1.0;
    }
    out.push_str(remaining);
    Ok(copy_safeness(input, out))
}

fn slice(input: &Value, count: &Value, fill: &Value) -> Filtered {
    let Some(values) = sequence_values(input) else {
        return Err("slice requires a sequence".into());
    };
    let count = to_number(count)?.trunc();
    if !(count.is_finite() && count > 0.0 && count <= 9_007_199_254_740_991.0) {
        return Err("Slice count must be a positive integer".into());
    }
    let count = count as usize;
    if count > 1_000_000 {
        return Err("Slice count must be a positive integer".into());
    }
    let base = values.len() / count;
    let extra = values.len() % count;
    let text: Option<Vec<u16>> =
        is_string(input).then(|| input.as_str().unwrap_or_default().encode_utf16().collect());
    let mut out = Vec::with_capacity(count);
    let mut offset = 0;
    for index in 0..count {
        let length = base + usize::from(index < extra);
        let end = (offset + length).min(values.len());
        let start = offset.min(end);
        offset += length;
        match &text {
            Some(units) => {
                if truthy(fill) && index >= extra {
                    return Err("slice cannot append a fill value to a string".into());
                }
                out.push(Value::from(String::from_utf16_lossy(&units[start..end])));
            }
            None => {
                let mut part = values[start..end].to_vec();
                if truthy(fill) && index >= extra {
                    part.push(fill.clone());
                }
                out.push(Value::from(part));
            }
        }
    }
    Ok(Value::from(out))
}

/// Removes HTML tags and comments, repeatedly, as nunjitsu's `stripHtmlTags` (the tag name
/// must start with a letter).
fn strip_tags(value: &str) -> Result<String, String> {
    let mut stripped = value.to_owned();
    for _ in 0..8 {
        let next = strip_tags_once(&stripped);
        if next == stripped {
            return Ok(stripped);
        }
        stripped = next;
    }
    if strip_tags_once(&stripped) != stripped {
        return Err("striptags input contains excessively nested markup".into());
    }
    Ok(stripped)
}

/// One pass of `/<\/?([a-z][a-z0-9]*)\b[^>]*>|<!--[\s\S]*?-->/gi`.
fn strip_tags_once(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let b = s.as_bytes();
    while i < b.len() {
        if b[i] == b'<'
            && let Some(len) = tag_len(&s[i..])
        {
            i += len;
            continue;
        }
        let c = s[i..].chars().next().expect("in bounds");
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn tag_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    // `<!--[\s\S]*?-->` is the second alternative; the first is tried first at each index.
    let mut i = 1;
    if b.get(i) == Some(&b'/') {
        i += 1;
    }
    if b.get(i).is_some_and(u8::is_ascii_alphabetic) {
        i += 1;
        while b.get(i).is_some_and(u8::is_ascii_alphanumeric) {
            i += 1;
        }
        // `\b` after the name holds: the next char is not a word char (or the end).
        let boundary = !b
            .get(i)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_');
        if boundary && let Some(close) = s[i..].find('>') {
            return Some(i + close + 1);
        }
    }
    if s.starts_with("<!--")
        && let Some(end) = s[4..].find("-->")
    {
        return Some(4 + end + 3);
    }
    None
}

/// Replaces every run of characters matching `pred` with `with`.
fn collapse(s: &str, pred: impl Fn(char) -> bool, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if pred(c) {
            if !in_run {
                out.push_str(with);
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// `/\n\n\n+/g` → `\n\n`.
fn collapse_blank_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut newlines = 0;
    for c in s.chars() {
        if c == '\n' {
            newlines += 1;
            continue;
        }
        out.push_str(&"\n".repeat(if newlines >= 3 { 2 } else { newlines }));
        newlines = 0;
        out.push(c);
    }
    out.push_str(&"\n".repeat(if newlines >= 3 { 2 } else { newlines }));
    out
}

/// The number of `/\w+/g` matches.
fn count_words(s: &str) -> usize {
    let mut count = 0;
    let mut in_word = false;
    for c in s.chars() {
        let word = c.is_ascii_alphanumeric() || c == '_';
        if word && !in_word {
            count += 1;
        }
        in_word = word;
    }
    count
}

fn truncate(input: &Value, length: &Value, killwords: &Value, end: &Value) -> Filtered {
    let normalized = normalize_text_input(input);
    let length_value = if truthy(length) {
        length.clone()
    } else {
        Value::from(255)
    };
    if order(&direct_length(&normalized), &length_value)?.is_some_and(|o| o != Ordering::Greater) {
        return Ok(normalized);
    }
    let units: Vec<u16> = text(&normalized)?.encode_utf16().collect();
    let length = to_number(&length_value)?;
    let cut = |n: f64| -> usize {
        if n.is_nan() || n <= 0.0 {
            0
        } else {
            (n.trunc() as usize).min(units.len())
        }
    };
    let truncated = if truthy(killwords) {
        String::from_utf16_lossy(&units[..cut(length)])
    } else {
        // lastIndexOf(" ", length), then substring(0, index or length).
        let from = cut(length).min(units.len().saturating_sub(1));
        let index = (0..=from)
            .rev()
            .find(|&i| units.get(i) == Some(&u16::from(b' ')));
        String::from_utf16_lossy(&units[..index.unwrap_or_else(|| cut(length))])
    };
    let end = if end.is_undefined() || end.is_none() {
        "...".to_owned()
    } else {
        to_js_string(end)?
    };
    Ok(copy_safeness(input, truncated + &end))
}

/// JavaScript's `encodeURIComponent`.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c) {
            out.push(c);
        } else {
            let mut buf = [0; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out
}

fn urlencode(input: &Value) -> Filtered {
    if is_string(input) {
        return Ok(Value::from(encode_uri_component(
            input.as_str().unwrap_or_default(),
        )));
    }
    let pair = |k: &Value, v: &Value| -> Result<String, String> {
        Ok(format!(
            "{}={}",
            encode_uri_component(&to_js_string(k)?),
            encode_uri_component(&to_js_string(v)?)
        ))
    };
    let mut out = Vec::new();
    if is_record(input) {
        for (k, v) in entries(input) {
            out.push(pair(&Value::from(k), &v)?);
        }
    } else if is_array(input) {
        for item in items(input) {
            let (k, v) = match item.kind() {
                ValueKind::Undefined | ValueKind::None => {
                    return Err("urlencode sequence entries cannot be nullish".into());
                }
                ValueKind::Seq | ValueKind::Iterable => {
                    let parts = items(&item);
                    (
                        parts.first().cloned().unwrap_or_default(),
                        parts.get(1).cloned().unwrap_or_default(),
                    )
                }
                ValueKind::Map => (record_get(&item, "0"), record_get(&item, "1")),
                ValueKind::String => {
                    let units = code_units(item.as_str().unwrap_or_default());
                    (
                        units.first().cloned().unwrap_or_default(),
                        units.get(1).cloned().unwrap_or_default(),
                    )
                }
                _ => (Value::UNDEFINED, Value::UNDEFINED),
            };
            out.push(pair(&k, &v)?);
        }
    }
    Ok(Value::from(out.join("&")))
}

fn urlize(input: &Value, length: &Value, nofollow: &Value) -> Filtered {
    let limit = if length.is_undefined() {
        usize::MAX
    } else {
        let n = to_number(length)?;
        if n.is_nan() && length.kind() == ValueKind::Number {
            usize::MAX
        } else if n.is_nan() || n <= 0.0 {
            0
        } else if n.is_finite() {
            n.trunc() as usize
        } else {
            usize::MAX
        }
    };
    let nofollow = if nofollow.kind() == ValueKind::Bool && nofollow.is_true() {
        " rel=\"nofollow\""
    } else {
        ""
    };
    let text = text(input)?;
    let mut out = String::new();
    for word in split_keeping_whitespace(&text) {
        if word.is_empty() {
            continue;
        }
        let possible = strip_punctuation(word);
        let units: Vec<u16> = possible.encode_utf16().collect();
        let short = String::from_utf16_lossy(&units[..units.len().min(limit)]);
        if possible.starts_with("http://") || possible.starts_with("https://") {
            out.push_str(&format!("<a href=\"{possible}\"{nofollow}>{short}</a>"));
        } else if possible.starts_with("www.") {
            out.push_str(&format!(
                "<a href=\"http://{possible}\"{nofollow}>{short}</a>"
            ));
        } else if is_email(possible) {
            out.push_str(&format!("<a href=\"mailto:{possible}\">{possible}</a>"));
        } else if has_common_domain(possible) {
            out.push_str(&format!(
                "<a href=\"http://{possible}\"{nofollow}>{short}</a>"
            ));
        } else {
            out.push_str(word);
        }
    }
    Ok(Value::from(out))
}

/// `text.split(/(\s+)/)`: words and the whitespace runs between them.
fn split_keeping_whitespace(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (i, c) in text.char_indices() {
        let space = is_js_whitespace(c);
        match in_space {
            Some(s) if s != space => {
                parts.push(&text[start..i]);
                start = i;
            }
            None if space => {
                parts.push("");
            }
            _ => {}
        }
        in_space = Some(space);
    }
    parts.push(&text[start..]);
    parts
}

/// `/^(?:\(|<|&lt;)?(.*?)(?:\.|,|\)|\n|&gt;)?$/` group 1.
fn strip_punctuation(word: &str) -> &str {
    let mut inner = word;
    for prefix in ["(", "<", "&lt;"] {
        if let Some(rest) = inner.strip_prefix(prefix) {
            inner = rest;
            break;
        }
    }
    if inner.contains(['\n', '\r', '\u{2028}', '\u{2029}']) {
        // `.` does not match line terminators: the regex fails and the word is used whole.
        return word;
    }
    for suffix in [".", ",", ")", "&gt;"] {
        if let Some(rest) = inner.strip_suffix(suffix) {
            return rest;
        }
    }
    inner
}

/// `/^[\w.!#$%&'*+\-/=?^`{|}~]+@[a-z\d-]+(?:\.[a-z\d-]+)+$/i`.
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.!#$%&'*+-/=?^`{|}~".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    local_ok
        && labels.len() >= 2
        && labels
            .iter()
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
}

/// `/\.(?:org|net|com)(?::|\/|$)/`.
fn has_common_domain(s: &str) -> bool {
    ["org", "net", "com"].iter().any(|tld| {
        let needle = format!(".{tld}");
        s.match_indices(&needle).any(|(i, _)| {
            let after = &s[i + needle.len()..];
            after.is_empty() || after.starts_with(':') || after.starts_with('/')
        })
    })
}

fn random(input: &Value) -> Filtered {
    if input.is_undefined() || input.is_none() {
        return Err("random requires a sequence".into());
    }
    let values = if is_record(input) {
        record_indexed_values(input, false)?
    } else {
        sequence_values(input).unwrap_or_default()
    };
    if values.is_empty() {
        return Ok(Value::UNDEFINED);
    }
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_usize(values.len());
    let index = (hasher.finish() % values.len() as u64) as usize;
    Ok(values[index].clone())
}

// ---- the tests ----------------------------------------------------------------------------

fn check_arity(name: &str, expected: usize, actual: usize) -> Result<(), String> {
    if actual != expected {
        return Err(format!(
            "Template test {name} requires {expected} positional argument{}",
            if expected == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

fn call_test(name: &str, arity: usize, input: &Value, args: &[Value]) -> Result<bool, Error> {
    let run = || {
        check_arity(name, arity, args.len())?;
        apply_test(name, input, args)
    };
    run().map_err(|message| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "Test \"{name}\" failed for {} input: {message}",
                kind_name(input)
            ),
        )
    })
}

/// nunjitsu's `applyBuiltinTest`.
fn apply_test(name: &str, input: &Value, args: &[Value]) -> Result<bool, String> {
    if !matches!(name, "callable" | "eq" | "equalto" | "sameas" | "ne") {
        no_callable(input)?;
        for a in args {
            no_callable(a)?;
        }
    }
    let p0 = arg(args, 0);
    let rem = |divisor: f64| -> Result<f64, String> { Ok(js_rem(to_number(input)?, divisor)) };
    Ok(match name {
        "callable" => is_callable(input),
        "defined" => !input.is_undefined(),
        "divisibleby" => rem(to_number(&p0)?)? == 0.0,
        "escaped" => input.is_safe(),
        "eq" | "equalto" | "sameas" => args.len() == 1 && strict_equal(input, &p0),
        "ne" => args.len() != 1 || !strict_equal(input, &p0),
        "even" => rem(2.0)? == 0.0,
        "odd" => rem(2.0)? == 1.0,
        "falsy" => !truthy(input),
        "truthy" => truthy(input),
        "ge" => order(input, &p0)?.is_some_and(|o| o != Ordering::Less),
        "gt" | "greaterthan" => order(input, &p0)? == Some(Ordering::Greater),
        "le" => order(input, &p0)?.is_some_and(|o| o != Ordering::Greater),
        "lt" | "lessthan" => order(input, &p0)? == Some(Ordering::Less),
        "iterable" => {
            if input.is_undefined() || input.is_none() {
                return Err("iterable test requires a value".into());
            }
            is_string(input) || is_array(input)
        }
        "lower" => {
            if input.is_safe() {
                return Ok(false);
            }
            let t = text(input)?;
            t.to_lowercase() == t
        }
        "upper" => {
            if input.is_safe() {
                return Ok(false);
            }
            let t = text(input)?;
            js_upper(&t) == t
        }
        "mapping" => is_record(input) || input.is_safe() || is_regex(input),
        "null" => input.is_none(),
        "number" => input.kind() == ValueKind::Number,
        "string" => is_plain_string(input),
        "undefined" => input.is_undefined(),
        _ => return Err(format!("Unknown template test {name}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment<'static> {
        let mut env = Environment::empty();
        register(&mut env, Syntax::Backstage);
        env
    }

    /// Evaluates an expression with `x` bound to `input`, as JSON.
    fn eval(expr: &str) -> serde_json::Value {
        let env = env();
        let value = env
            .compile_expression(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .eval(minijinja::context! {})
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        serde_json::to_value(&value).unwrap()
    }

    fn eval_err(expr: &str) -> String {
        let env = env();
        env.compile_expression(expr)
            .unwrap()
            .eval(minijinja::context! {})
            .expect_err(expr)
            .to_string()
    }

    #[test]
    fn numbers_print_as_javascript_prints_them() {
        for (n, text) in [
            (1.0, "1"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (123456789012345680000.0, "123456789012345680000"),
            (-0.000001, "-0.000001"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(js_number_to_string(n), text);
        }
    }

    #[test]
    fn strings_become_numbers_as_in_javascript() {
        assert_eq!(string_to_number("  12 "), 12.0);
        assert_eq!(string_to_number(""), 0.0);
        assert_eq!(string_to_number("0x1A"), 26.0);
        assert!(string_to_number("12px").is_nan());
        assert!(string_to_number("inf").is_nan());
        assert_eq!(string_to_number("-Infinity"), f64::NEG_INFINITY);
        assert_eq!(parse_float("3.5x"), 3.5);
        assert_eq!(parse_float(".5e1z"), 5.0);
        assert!(parse_float("x").is_nan());
        assert_eq!(parse_int("0x1A", 16.0), 26.0);
        assert_eq!(parse_int("-3.9", 10.0), -3.0);
        assert!(parse_int("true", 10.0).is_nan());
    }

    #[test]
    fn default_replaces_only_undefined_unless_asked_and_keywords_count_as_true() {
        assert_eq!(eval("none | default('d')"), serde_json::Value::Null);
        assert_eq!(eval("'' | default('d', true)"), "d");
        assert_eq!(eval("x | default('d')"), "d");
        // Keyword arguments arrive as a trailing record, which is truthy.
        assert_eq!(eval("'' | default('d', boolean=false)"), "d");
    }

    #[test]
    fn round_rounds_halves_up_with_precision_and_methods() {
        assert_eq!(eval("2.5 | round"), 3);
        assert_eq!(eval("-2.5 | round"), -2);
        assert_eq!(eval("1.25 | round(1)"), 1.3);
        assert_eq!(eval("2.567 | round(1, 'floor')"), 2.5);
        assert_eq!(eval("1234 | round(-2)"), 1200);
    }

    #[test]
    fn int_and_float_parse_prefixes_and_fall_back_to_the_default() {
        assert_eq!(eval("'42abc' | int"), 42);
        assert_eq!(eval("'x' | int(7)"), 7);
        assert_eq!(eval("'ff' | int(0, 16)"), 255);
        assert_eq!(eval("'x' | int(default=5)"), 5);
        assert_eq!(eval("'3.5x' | float"), 3.5);
        assert_eq!(eval("('x' | float) is undefined"), true);
    }

    #[test]
    fn sort_is_case_insensitive_with_reverse_and_attributes() {
        assert_eq!(
            eval("['b', 'C', 'a', 'B'] | sort"),
            serde_json::json!(["a", "b", "B", "C"])
        );
        assert_eq!(
            eval("['b', 'C', 'a'] | sort(true)"),
            serde_json::json!(["C", "b", "a"])
        );
        assert_eq!(
            eval("[10, '9', 100, '1'] | sort"),
            serde_json::json!(["1", "9", 10, 100])
        );
        assert_eq!(
            eval("[{'n': 2}, {'x': 1}, {'n': 1}] | sort(attribute='n')"),
            serde_json::json!([{"n": 2}, {"x": 1}, {"n": 1}])
        );
    }

    #[test]
    fn dictsort_sorts_pairs_by_key_or_value() {
        assert_eq!(
            eval("{'b': 1, 'a': 2, 'C': 0} | dictsort"),
            serde_json::json!([["a", 2], ["b", 1], ["C", 0]])
        );
        assert_eq!(
            eval("{'b': 1, 'a': 2, 'c': 0} | dictsort(false, 'value')"),
            serde_json::json!([["c", 0], ["b", 1], ["a", 2]])
        );
        assert!(eval_err("[1] | dictsort").contains("dictsort requires a record"));
    }

    #[test]
    fn join_and_sum_follow_javascript_addition_and_attributes() {
        assert_eq!(eval("[1, 2] | join(0)"), "12");
        assert_eq!(eval("['a', none, x, 'b'] | join('|')"), "a|||b");
        assert_eq!(eval("['1', 2, 3] | sum"), "00123");
        assert_eq!(eval("[{'v': 1}, {'v': 2}] | sum('v', 5)"), 8);
        assert!(eval_err("'abc' | join").contains("join requires an array"));
    }

    #[test]
    fn batch_slice_and_groupby_shape_lists() {
        assert_eq!(
            eval("[1, 2, 3] | batch(2, 0)"),
            serde_json::json!([[1, 2], [3]])
        );
        assert_eq!(
            eval("[1, 2, 3, 4, 5] | slice(3, 'x')"),
            serde_json::json!([[1, 2], [3, 4], [5, "x"]])
        );
        assert_eq!(eval("'abcde' | slice(2)"), serde_json::json!(["abc", "de"]));
        assert_eq!(
            eval("[{'v': 1}, {'w': 2}] | groupby('v')"),
            serde_json::json!({"1": [{"v": 1}], "undefined": [{"w": 2}]})
        );
        assert!(eval_err("[1] | batch(0)").contains("Batch size must be a positive integer"));
    }

    #[test]
    fn select_takes_tests_with_arguments_and_selectattr_ignores_them() {
        assert_eq!(
            eval("[3, 4, 6, 9] | select('divisibleby', 3)"),
            serde_json::json!([3, 6, 9])
        );
        assert_eq!(
            eval("[0, 1, '', 'a', none, false, []] | select"),
            serde_json::json!([1, "a", []])
        );
        assert_eq!(
            eval("[{'n': 1}, {'n': 2}, {'n': 0}] | selectattr('n', 'equalto', 2)"),
            serde_json::json!([{"n": 1}, {"n": 2}])
        );
        assert!(eval_err("[1] | select('nope')").contains("Unknown template test nope"));
    }

    #[test]
    fn replace_counts_and_empty_search_strings() {
        assert_eq!(eval("'aaa' | replace('a', 'b', 2)"), "bba");
        assert_eq!(eval("'abc' | replace('', '-')"), "-a-b-c-");
        assert_eq!(eval("'abc' | replace('')"), "undefineda,b,cundefined");
        assert_eq!(eval("1231 | replace(1, 'one')"), "one23one");
        assert_eq!(
            eval("[1, 2] | replace('1', 'x')"),
            serde_json::json!([1, 2])
        );
    }

    #[test]
    fn indent_truncate_and_center_pad_as_nunjucks() {
        assert_eq!(eval("'a\nb' | indent(0)"), "a\n    b");
        assert_eq!(eval("'a\n' | indent(2, true)"), "  a\n  ");
        assert_eq!(eval("'hello world foo' | truncate(8)"), "hello...");
        assert_eq!(
            eval("'hello world foo' | truncate(8, true, '')"),
            "hello wo"
        );
        assert_eq!(eval("'abcd efgh' | truncate(4)"), "abcd...");
        assert_eq!(eval("'abc' | center(6)"), " abc  ");
    }

    #[test]
    fn dump_writes_json_stringify_output() {
        assert_eq!(
            eval("{'b': 1, 'a': [1, none]} | dump"),
            "{\"b\":1,\"a\":[1,null]}"
        );
        assert_eq!(eval("{'a': 1} | dump(12)"), "{\n          \"a\": 1\n}");
        assert_eq!(eval("{'a': 1} | dump('2')"), "{\n2\"a\": 1\n}");
        assert_eq!(
            eval("{'a': [], 'b': {}} | dump(2)"),
            "{\n  \"a\": [],\n  \"b\": {}\n}"
        );
        assert_eq!(eval("{'a': x, 'b': [x]} | dump"), "{\"b\":[null]}");
        assert_eq!(eval("'é<' | dump"), "\"é<\"");
    }

    #[test]
    fn escape_marks_safe_and_forceescape_escapes_again() {
        assert_eq!(
            eval("'a&b<c>\"d\\'e\\\\' | escape"),
            "a&amp;b&lt;c&gt;&quot;d&#39;e&#92;"
        );
        assert_eq!(eval("'<' | escape | escape"), "&lt;");
        assert_eq!(eval("'<' | escape | forceescape"), "&amp;lt;");
        assert_eq!(eval("'<' | escape is escaped"), true);
        assert_eq!(eval("'x' | safe is string"), false);
    }

    #[test]
    fn text_filters_strip_count_link_and_encode() {
        assert_eq!(eval("'a<!-- c -->b<br/>c' | striptags"), "abc");
        assert_eq!(
            eval("'<p>one</p>\n\n\n\n<p>two  three</p>\r\n x ' | striptags(true)"),
            "one\n\ntwo three\nx"
        );
        assert_eq!(eval("\"it's a dog-eat-dog world\" | wordcount"), 7);
        assert_eq!(eval("'!!!' | wordcount"), serde_json::Value::Null);
        assert_eq!(
            eval("'go to example.com, then' | urlize"),
            "go to <a href=\"http://example.com\">example.com</a> then"
        );
        assert_eq!(
            eval("'http://example.com' | urlize(none, true)"),
            "<a href=\"http://example.com\" rel=\"nofollow\"></a>"
        );
        assert_eq!(
            eval("'a b&c=d/é?' | urlencode"),
            "a%20b%26c%3Dd%2F%C3%A9%3F"
        );
        assert_eq!(eval("['ab', 'cd'] | urlencode"), "a=b&c=d");
    }

    #[test]
    fn sequence_filters_on_strings_arrays_and_records() {
        assert_eq!(eval("{'0': 'zero'} | first"), "zero");
        assert_eq!(eval("{'a': 1} | reverse"), serde_json::json!([]));
        assert_eq!(eval("{'a': 1, 'b': 2} | length"), 2);
        assert_eq!(eval("(123 | length) is undefined"), true);
        assert_eq!(eval("false | length"), 0);
        assert_eq!(
            eval("{'a': 1} | list"),
            serde_json::json!([{"key": "a", "value": 1}])
        );
        assert_eq!(eval("['only'] | random"), "only");
        assert!(
            eval_err("none | first")
                .contains("Filter \"first\" failed for null input: first requires a sequence")
        );
    }

    #[test]
    fn string_filters_coerce_falsy_inputs_and_reject_numbers() {
        assert_eq!(eval("none | capitalize"), "");
        assert_eq!(eval("'my new-service' | title"), "My New-service");
        assert!(eval_err("12 | capitalize").contains("Filter input must be a string"));
        assert_eq!(eval("[1, 'a', none] | string"), "1,a,");
        assert!(eval_err("none | string").contains("string requires a value"));
    }

    #[test]
    fn tests_compare_as_javascript_does() {
        assert_eq!(eval("1 is eq('1')"), false);
        assert_eq!(eval("[1] is sameas([1])"), false);
        assert_eq!(eval("'10' is gt('9')"), false);
        assert_eq!(eval("'10' is gt(9)"), true);
        assert_eq!(eval("-3 is odd"), false);
        assert_eq!(eval("none is even"), true);
        assert_eq!(eval("{} is truthy"), true);
        assert_eq!(eval("'123' is upper"), true);
        assert!(eval_err("4 is divisibleby").contains("requires 1 positional argument"));
        assert!(eval_err("none is iterable").contains("iterable test requires a value"));
    }

    #[test]
    fn minijinja_only_filters_and_tests_are_unknown() {
        let env = env();
        for expr in [
            "'a' | tojson",
            "[1] | map('upper')",
            "1 is boolean",
            "none is none",
        ] {
            let result = env
                .compile_expression(expr)
                .and_then(|e| e.eval(minijinja::context! {}));
            assert!(result.is_err(), "{expr} should fail");
        }
    }

    #[test]
    fn filters_refuse_to_multiply_a_template_past_the_output_bound() {
        for expr in [
            "('a\n' * 100) | indent(16000000)",
            "[1] | batch(100000000, 'x')",
            "'abcdefghij' | replace('', 'x' * 1000000)",
            "('aaaaaaaaaa' * 1000) | replace('a', 'b' * 10000)",
        ] {
            assert!(
                eval_err(expr).contains("exceeds the supported bound"),
                "{expr}"
            );
        }
    }

    #[test]
    fn sorting_never_panics_on_inconsistent_comparisons() {
        let mut items: Vec<i32> = (0..200).map(|i| (i * 7919) % 101).collect();
        js_sort(&mut items, |_, _| f64::NAN);
        js_sort(&mut items, |a, b| if (a + b) % 3 == 0 { -1.0 } else { 1.0 });
        let mut small = vec![3, 1, 2];
        js_sort(&mut small, |a, b| f64::from(a - b));
        assert_eq!(small, vec![1, 2, 3]);
    }
}
