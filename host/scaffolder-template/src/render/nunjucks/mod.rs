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
//!
//! This file holds the registration table and the dispatch (filters short enough to be a
//! match arm are written there); the longer filters are in one file per kind (`sequences`,
//! `sort`, `json`, `text_filters`, `url_filters`), the tests in `is_tests`, and the
//! JavaScript semantics they share in `values`, `numbers` and `strings`.

mod is_tests;
mod json;
mod numbers;
mod sequences;
mod sort;
mod strings;
mod text_filters;
mod url_filters;
mod values;

#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use minijinja::value::{Kwargs, Rest, ValueKind, ValueOrKwargs, from_args};
use minijinja::{Environment, Error, ErrorKind, Value};

use crate::render::Syntax;
use crate::render::runtime::items;
use is_tests::call_test;
use json::dump;
use numbers::{js_rem, parse_float, parse_int};
use sequences::{
    batch, edge, groupby, join, length, list, random, select, select_attr, slice, sum,
};
use sort::{dictsort, sort};
use strings::{
    bounded, copy_safeness, direct_length, escape_html, is_js_whitespace, js_trim, js_upper,
    normalize_text_input, repeat_spaces, text,
};
use text_filters::{collapse, collapse_blank_lines, count_words, replace, strip_tags, truncate};
use url_filters::{urlencode, urlize};
use values::{is_regex, is_string, no_callable, order, record_indexed_values};

pub(crate) use json::stringify_value;
pub(crate) use numbers::{js_number_to_string, js_round, number, string_to_number};
pub(crate) use values::{
    Primitive, order_primitives, primitive_to_number, primitive_to_string, render, strict_equal,
    to_js_string, to_number, to_primitive, truthy,
};

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
