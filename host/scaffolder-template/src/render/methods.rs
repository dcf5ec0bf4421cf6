//! The JavaScript methods nunjitsu approves (`'a-b'.split('-')`, `(255).toString(16)`,
//! `tags.join(', ')`, `r/x/.test(s)`), with its argument bounds and, in cookiecutter mode,
//! the Jinja methods it adds (`items()`, `append()`); anything else cannot be called.

use minijinja::Error;
use minijinja::Value;
use minijinja::value::ValueKind;

use super::filters::nunjucks;
use super::filters::regex::JsRegex;
use super::runtime::{Cycler, JsArray, error, from_utf16, items, num, own, string, utf16};

pub(crate) const STRING_METHODS: &[&str] = &[
    "charAt",
    "charCodeAt",
    "concat",
    "endsWith",
    "includes",
    "indexOf",
    "lastIndexOf",
    "replace",
    "slice",
    "split",
    "startsWith",
    "substring",
    "toLowerCase",
    "toUpperCase",
    "trim",
    "trimEnd",
    "trimStart",
];
pub(crate) const NUMBER_METHODS: &[&str] = &["toExponential", "toFixed", "toPrecision", "toString"];
pub(crate) const ARRAY_METHODS: &[&str] = &[
    "at",
    "concat",
    "copyWithin",
    "fill",
    "flat",
    "includes",
    "indexOf",
    "join",
    "lastIndexOf",
    "pop",
    "push",
    "reverse",
    "shift",
    "slice",
    "sort",
    "splice",
    "unshift",
];
const JINJA_ARRAY_METHODS: &[&str] = &["append", "count", "find", "index", "insert", "remove"];
const JINJA_RECORD_METHODS: &[&str] = &["get", "has_key", "items", "keys", "values"];

/// The detail of a call of a method that does not exist; the caller words the message
/// with the callee's path and position.
pub(crate) const NOT_CALLABLE: &str = "not callable";

fn not_callable(_name: &str) -> Error {
    error(NOT_CALLABLE)
}

fn arity(name: &str, args: &[Value], min: usize, max: usize) -> Result<(), Error> {
    if args.len() < min || args.len() > max {
        let range = if min == max {
            min.to_string()
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(error(format!(
            "Template intrinsic {name} requires {range} positional arguments"
        )));
    }
    Ok(())
}

/// `receiver.name(args)`: the methods nunjitsu approves for the receiver's type, with its
/// argument bounds; other objects (a cycler, minijinja's `loop`) answer their own methods.
pub(crate) fn call_method(
    receiver: &Value,
    name: &str,
    args: &[Value],
    cookiecutter: bool,
) -> Result<Value, Error> {
    if args.iter().any(Value::is_kwargs) {
        return Err(error(format!(
            "Template intrinsic {name} does not accept keyword arguments"
        )));
    }
    match receiver.kind() {
        ValueKind::String if STRING_METHODS.contains(&name) => {
            string_method(receiver.as_str().unwrap_or_default(), name, args)
        }
        ValueKind::Number if NUMBER_METHODS.contains(&name) => number_method(receiver, name, args),
        ValueKind::Seq | ValueKind::Iterable
            if ARRAY_METHODS.contains(&name)
                || (cookiecutter && JINJA_ARRAY_METHODS.contains(&name)) =>
        {
            array_method(receiver, name, args, cookiecutter)
        }
        ValueKind::Map if cookiecutter && JINJA_RECORD_METHODS.contains(&name) => {
            record_method(receiver, name, args)
        }
        ValueKind::Plain => match JsRegex::from_value(receiver) {
            Some(regex) if name == "test" => {
                arity(name, args, 1, 1)?;
                Ok(Value::from(regex.test(&string(&args[0])?)))
            }
            Some(_) => Err(not_callable(name)),
            None => match receiver.downcast_object_ref::<Cycler>() {
                Some(cycler) => cycler.invoke(name, args),
                None => Err(not_callable(name)),
            },
        },
        _ => Err(not_callable(name)),
    }
}

fn opt_int(args: &[Value], i: usize) -> Result<Option<f64>, Error> {
    args.get(i)
        .filter(|v| !v.is_undefined())
        .map(to_integer)
        .transpose()
}

/// JavaScript's `ToIntegerOrInfinity`.
fn to_integer(v: &Value) -> Result<f64, Error> {
    let n = num(v)?;
    Ok(if n.is_nan() { 0.0 } else { n.trunc() })
}

/// A relative index (`slice`, `at`): negative counts from the end; clamped to `0..=len`.
fn relative(i: f64, len: usize) -> usize {
    let len_f = len as f64;
    if i < 0.0 {
        (len_f + i).max(0.0) as usize
    } else {
        i.min(len_f) as usize
    }
}

fn find_units(haystack: &[u16], needle: &[u16], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from.min(haystack.len()));
    }
    (from..=haystack.len().saturating_sub(needle.len()))
        .find(|&i| i + needle.len() <= haystack.len() && haystack[i..i + needle.len()] == *needle)
}

fn string_method(s: &str, name: &str, args: &[Value]) -> Result<Value, Error> {
    let units = utf16(s);
    let len = units.len();
    let arg_string = |i: usize| string(args.get(i).unwrap_or(&Value::UNDEFINED));
    let v = |s: String| Ok(Value::from(s));
    match name {
        "replace" => {
            arity(name, args, 2, 2)?;
            let replacement = arg_string(1)?;
            if let Some(regex) = JsRegex::from_value(&args[0]) {
                return v(regex.replace(s, &replacement));
            }
            let pattern = arg_string(0)?;
            match s.find(&pattern) {
                Some(at) => {
                    let expanded = expand_replacement(&replacement, s, at, &pattern);
                    v(format!(
                        "{}{}{}",
                        &s[..at],
                        expanded,
                        &s[at + pattern.len()..]
                    ))
                }
                None => v(s.to_owned()),
            }
        }
        "split" => {
            arity(name, args, 0, 2)?;
            let limit = match args.get(1).filter(|v| !v.is_undefined()) {
                Some(l) => num(l)? as i64 as u32 as usize,
                None => usize::MAX,
            };
            if let Some(regex) = args.first().and_then(JsRegex::from_value) {
                let parts = regex.split(s);
                return Ok(JsArray::value(
                    parts.into_iter().take(limit).map(Value::from).collect(),
                ));
            }
            let parts: Vec<Value> = match args.first().filter(|v| !v.is_undefined()) {
                None => {
                    if limit == 0 {
                        Vec::new()
                    } else {
                        vec![Value::from(s)]
                    }
                }
                Some(sep) => {
                    let sep = string(sep)?;
                    if sep.is_empty() {
                        units
                            .iter()
                            .map(|u| Value::from(from_utf16(&[*u])))
                            .collect()
                    } else {
                        s.split(sep.as_str()).map(Value::from).collect()
                    }
                }
            };
            Ok(JsArray::value(parts.into_iter().take(limit).collect()))
        }
        "includes" | "startsWith" | "endsWith" | "indexOf" | "lastIndexOf" => {
            arity(name, args, 1, 2)?;
            let needle = utf16(&arg_string(0)?);
            let position = opt_int(args, 1)?;
            let clamp = |p: f64| p.max(0.0).min(len as f64) as usize;
            Ok(match name {
                "includes" => Value::from(
                    find_units(&units, &needle, clamp(position.unwrap_or(0.0))).is_some(),
                ),
                "indexOf" => Value::from(
                    find_units(&units, &needle, clamp(position.unwrap_or(0.0)))
                        .map_or(-1, |i| i as i64),
                ),
                "startsWith" => {
                    let from = clamp(position.unwrap_or(0.0));
                    Value::from(units[from..].starts_with(&needle))
                }
                "endsWith" => {
                    let end = clamp(position.unwrap_or(len as f64));
                    Value::from(units[..end].ends_with(&needle))
                }
                _ => {
                    let position = match args.get(1).filter(|v| !v.is_undefined()) {
                        Some(p) => {
                            let n = num(p)?;
                            if n.is_nan() { len as f64 } else { n.trunc() }
                        }
                        None => len as f64,
                    };
                    let start = position.max(0.0).min(len as f64) as usize;
                    let found = (0..=start.min(len.saturating_sub(needle.len())))
                        .rev()
                        .find(|&i| {
                            i + needle.len() <= len && units[i..i + needle.len()] == *needle
                        });
                    Value::from(found.map_or(-1, |i| i as i64))
                }
            })
        }
        "slice" => {
            arity(name, args, 0, 2)?;
            let a = relative(opt_int(args, 0)?.unwrap_or(0.0), len);
            let b = relative(opt_int(args, 1)?.unwrap_or(len as f64), len);
            v(if a < b {
                from_utf16(&units[a..b])
            } else {
                String::new()
            })
        }
        "substring" => {
            arity(name, args, 0, 2)?;
            let clamp = |p: f64| p.max(0.0).min(len as f64) as usize;
            let a = clamp(opt_int(args, 0)?.unwrap_or(0.0));
            let b = clamp(opt_int(args, 1)?.unwrap_or(len as f64));
            v(from_utf16(&units[a.min(b)..a.max(b)]))
        }
        "trim" | "trimStart" | "trimEnd" | "toLowerCase" | "toUpperCase" => {
            arity(name, args, 0, 0)?;
            let ws = |c: char| c.is_whitespace() || c == '\u{feff}';
            v(match name {
                "trim" => s.trim_matches(ws).to_owned(),
                "trimStart" => s.trim_start_matches(ws).to_owned(),
                "trimEnd" => s.trim_end_matches(ws).to_owned(),
                "toLowerCase" => s.to_lowercase(),
                _ => s.to_uppercase(),
            })
        }
        "charAt" | "charCodeAt" => {
            arity(name, args, 0, 1)?;
            let i = opt_int(args, 0)?.unwrap_or(0.0);
            let unit = (i >= 0.0 && i < len as f64).then(|| units[i as usize]);
            if name == "charAt" {
                v(unit.map(|u| from_utf16(&[u])).unwrap_or_default())
            } else {
                Ok(unit.map_or(nunjucks::number(f64::NAN), Value::from))
            }
        }
        "concat" => {
            let mut out = s.to_owned();
            for a in args {
                out.push_str(&string(a)?);
            }
            v(out)
        }
        _ => Err(not_callable(name)),
    }
}

/// `$$`, `$&`, `` $` `` and `$'` in a string replacement (no groups without a regex).
fn expand_replacement(replacement: &str, s: &str, at: usize, matched: &str) -> String {
    let mut out = String::new();
    let mut chars = replacement.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some('&') => {
                chars.next();
                out.push_str(matched);
            }
            Some('`') => {
                chars.next();
                out.push_str(&s[..at]);
            }
            Some('\'') => {
                chars.next();
                out.push_str(&s[at + matched.len()..]);
            }
            _ => out.push('$'),
        }
    }
    out
}

fn number_method(receiver: &Value, name: &str, args: &[Value]) -> Result<Value, Error> {
    arity(name, args, 0, 1)?;
    let n = num(receiver)?;
    let argument = args
        .first()
        .filter(|v| !v.is_undefined())
        .map(num)
        .transpose()?;
    let range = |digits: f64, lo: f64, hi: f64, what: &str| {
        if digits.is_nan() || digits < lo || digits > hi {
            Err(error(format!(
                "{what} argument must be between {lo} and {hi}"
            )))
        } else {
            Ok(digits as usize)
        }
    };
    let text = match name {
        "toString" => match argument {
            None => nunjucks::js_number_to_string(n),
            Some(radix) => {
                let radix = range(radix.trunc(), 2.0, 36.0, "toString() radix")?;
                to_radix(n, radix as u32)
            }
        },
        "toFixed" => {
            let digits = range(
                argument.unwrap_or(0.0).trunc(),
                0.0,
                100.0,
                "toFixed() digits",
            )?;
            if !n.is_finite() || n.abs() >= 1e21 {
                nunjucks::js_number_to_string(n)
            } else {
                to_fixed(n, digits)
            }
        }
        "toPrecision" => match argument {
            None => nunjucks::js_number_to_string(n),
            Some(p) => {
                let p = range(p.trunc(), 1.0, 100.0, "toPrecision() argument")?;
                to_precision(n, p)
            }
        },
        "toExponential" => {
            let digits = match argument {
                None => None,
                Some(d) => Some(range(d.trunc(), 0.0, 100.0, "toExponential() argument")?),
            };
            to_exponential(n, digits)
        }
        _ => return Err(not_callable(name)),
    };
    Ok(Value::from(text))
}

/// `Number.prototype.toFixed` (exact decimal expansion, round half up on the exact value).
fn to_fixed(n: f64, digits: usize) -> String {
    // Rust formats the exact binary value with round-half-to-even on exact ties; JavaScript
    // rounds exact ties up (away from zero for the magnitude).
    let formatted = format!("{:.*}", digits, n);
    let exact = format!("{:.*}", digits + 30, n);
    let tie = exact[exact.len() - 30..].starts_with('5')
        && exact[exact.len() - 29..].bytes().all(|b| b == b'0');
    let mut out = if tie {
        let scaled = (n.abs() * 10f64.powi(digits as i32)).floor() + 1.0;
        let s = format!("{:.*}", digits, scaled / 10f64.powi(digits as i32));
        if n < 0.0 { format!("-{s}") } else { s }
    } else {
        formatted
    };
    if out == "-0" || (out.starts_with("-0") && out.trim_start_matches(['-', '0', '.']).is_empty())
    {
        out = out.trim_start_matches('-').to_owned();
    }
    out
}

fn to_exponential(n: f64, digits: Option<usize>) -> String {
    if !n.is_finite() {
        return nunjucks::js_number_to_string(n);
    }
    let formatted = match digits {
        Some(d) => format!("{:.*e}", d, n),
        None => format!("{n:e}"),
    };
    let (mantissa, exponent) = formatted.split_once('e').expect("exponent form");
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let sign = if exponent >= 0 { "+" } else { "-" };
    format!("{mantissa}e{sign}{}", exponent.abs())
}

fn to_precision(n: f64, p: usize) -> String {
    if !n.is_finite() {
        return nunjucks::js_number_to_string(n);
    }
    if n == 0.0 {
        return if p > 1 {
            format!("0.{}", "0".repeat(p - 1))
        } else {
            "0".into()
        };
    }
    let formatted = format!("{:.*e}", p - 1, n);
    let (mantissa, exponent) = formatted.split_once('e').expect("exponent form");
    let e: i32 = exponent.parse().unwrap_or(0);
    if e < -6 || e >= p as i32 {
        let sign = if e >= 0 { "+" } else { "-" };
        return format!("{mantissa}e{sign}{}", e.abs());
    }
    let decimals = (p as i32 - 1 - e).max(0) as usize;
    format!("{:.*}", decimals, n)
}

fn to_radix(n: f64, radix: u32) -> String {
    if radix == 10 || !n.is_finite() {
        return nunjucks::js_number_to_string(n);
    }
    let negative = n < 0.0;
    let mut int = n.abs().trunc();
    let mut frac = n.abs() - int;
    let mut digits = Vec::new();
    if int == 0.0 {
        digits.push('0');
    }
    while int >= 1.0 {
        let d = (int % radix as f64) as u32;
        digits.push(std::char::from_digit(d, radix).expect("digit below radix"));
        int = (int / radix as f64).trunc();
    }
    digits.reverse();
    let mut out: String = digits.into_iter().collect();
    if frac > 0.0 {
        out.push('.');
        let mut count = 0;
        while frac > 0.0 && count < 52 {
            frac *= radix as f64;
            let d = frac.trunc() as u32;
            out.push(std::char::from_digit(d, radix).expect("digit below radix"));
            frac -= d as f64;
            count += 1;
        }
    }
    if negative { format!("-{out}") } else { out }
}

fn array_method(
    receiver: &Value,
    name: &str,
    args: &[Value],
    cookiecutter: bool,
) -> Result<Value, Error> {
    let (min, max) = match name {
        "at" | "count" | "index" | "find" | "remove" | "append" => (1, 1),
        "insert" => (2, 2),
        "includes" | "indexOf" | "lastIndexOf" => (1, 2),
        "copyWithin" | "fill" => (1, 3),
        "flat" | "join" => (0, 1),
        "slice" => (0, 2),
        "pop" => (0, if cookiecutter { 1 } else { 0 }),
        "shift" | "sort" | "reverse" => (0, 0),
        _ => (0, usize::MAX),
    };
    arity(name, args, min, max)?;
    let mut list = items(receiver);
    let len = list.len();
    let arg = |i: usize| args.get(i).cloned().unwrap_or(Value::UNDEFINED);
    let strict_index = |list: &[Value], needle: &Value, from: usize| {
        (from..list.len())
            .find(|&i| nunjucks::strict_equal(&list[i], needle))
            .map_or(-1, |i| i as i64)
    };
    // Writes a mutated list back when the receiver is a template-made array.
    let store = |list: Vec<Value>| {
        if let Some(array) = receiver.downcast_object_ref::<JsArray>() {
            *array.items.lock().expect("not poisoned") = list;
        }
    };
    Ok(match name {
        "at" => {
            let i = to_integer(&args[0])?;
            let i = if i < 0.0 { len as f64 + i } else { i };
            if i >= 0.0 && i < len as f64 {
                list[i as usize].clone()
            } else {
                Value::UNDEFINED
            }
        }
        "concat" => {
            for a in args {
                if matches!(a.kind(), ValueKind::Seq | ValueKind::Iterable) {
                    list.extend(items(a));
                } else {
                    list.push(a.clone());
                }
            }
            JsArray::value(list)
        }
        "flat" => {
            let depth = match opt_int(args, 0)? {
                None => 1.0,
                Some(d) => d.max(0.0),
            };
            let mut out = Vec::new();
            flatten(&list, depth, &mut out);
            JsArray::value(out)
        }
        "includes" => {
            let from = relative(opt_int(args, 1)?.unwrap_or(0.0), len);
            let needle = arg(0);
            Value::from(list[from..].iter().any(|v| {
                nunjucks::strict_equal(v, &needle)
                    || (is_nan(v) && is_nan(&needle))
                    || (v.is_undefined() && needle.is_undefined())
            }))
        }
        "indexOf" => {
            let from = relative(opt_int(args, 1)?.unwrap_or(0.0), len);
            Value::from(strict_index(&list, &arg(0), from))
        }
        "lastIndexOf" => {
            let from = match opt_int(args, 1)? {
                None => len as f64 - 1.0,
                Some(f) if f < 0.0 => len as f64 + f,
                Some(f) => f.min(len as f64 - 1.0),
            };
            let needle = arg(0);
            let found = (0..len)
                .rev()
                .filter(|&i| (i as f64) <= from)
                .find(|&i| nunjucks::strict_equal(&list[i], &needle));
            Value::from(found.map_or(-1, |i| i as i64))
        }
        "join" => {
            let separator = match args.first().filter(|v| !v.is_undefined()) {
                None => ",".to_owned(),
                Some(s) => string(s)?,
            };
            let parts: Result<Vec<String>, Error> = list
                .iter()
                .map(|v| {
                    if v.is_undefined() || v.is_none() {
                        Ok(String::new())
                    } else {
                        string(v)
                    }
                })
                .collect();
            Value::from(parts?.join(&separator))
        }
        "slice" => {
            let a = relative(opt_int(args, 0)?.unwrap_or(0.0), len);
            let b = relative(opt_int(args, 1)?.unwrap_or(len as f64), len);
            JsArray::value(if a < b {
                list[a..b].to_vec()
            } else {
                Vec::new()
            })
        }
        "push" | "append" => {
            list.extend(args.iter().cloned());
            let n = list.len();
            store(list);
            Value::from(n)
        }
        "unshift" => {
            let mut out = args.to_vec();
            out.extend(list);
            let n = out.len();
            store(out);
            Value::from(n)
        }
        "pop" => {
            if cookiecutter && !args.is_empty() {
                let i = to_integer(&args[0])?;
                let i = if i < 0.0 { len as f64 + i } else { i };
                if i < 0.0 || i >= len as f64 {
                    return Ok(Value::UNDEFINED);
                }
                let removed = list.remove(i as usize);
                store(list);
                removed
            } else {
                let removed = list.pop().unwrap_or(Value::UNDEFINED);
                store(list);
                removed
            }
        }
        "shift" => {
            if list.is_empty() {
                Value::UNDEFINED
            } else {
                let removed = list.remove(0);
                store(list);
                removed
            }
        }
        "splice" => {
            if args.is_empty() {
                return Ok(JsArray::value(Vec::new()));
            }
            let start = relative(to_integer(&args[0])?, len);
            let count = match args.get(1) {
                None => len - start,
                Some(c) => (to_integer(c)?.max(0.0) as usize).min(len - start),
            };
            let removed: Vec<Value> = list
                .splice(start..start + count, args.iter().skip(2).cloned())
                .collect();
            store(list);
            JsArray::value(removed)
        }
        "sort" | "reverse" => {
            if name == "reverse" {
                list.reverse();
            } else {
                let keys: Result<Vec<(String, Value)>, Error> =
                    list.iter().map(|v| Ok((string(v)?, v.clone()))).collect();
                let mut keys = keys?;
                // Undefined sorts last in JavaScript.
                keys.sort_by(|a, b| match (a.1.is_undefined(), b.1.is_undefined()) {
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    _ => a.0.encode_utf16().cmp(b.0.encode_utf16()),
                });
                list = keys.into_iter().map(|(_, v)| v).collect();
            }
            sorted_result(receiver, list)
        }
        "fill" => {
            let a = relative(opt_int(args, 1)?.unwrap_or(0.0), len);
            let b = relative(opt_int(args, 2)?.unwrap_or(len as f64), len);
            for item in list.iter_mut().take(b).skip(a) {
                *item = arg(0);
            }
            sorted_result(receiver, list)
        }
        "copyWithin" => {
            let target = relative(to_integer(&args[0])?, len);
            let a = relative(opt_int(args, 1)?.unwrap_or(0.0), len);
            let b = relative(opt_int(args, 2)?.unwrap_or(len as f64), len);
            let source: Vec<Value> = list[a..b.max(a)].to_vec();
            for (offset, v) in source.into_iter().enumerate() {
                if target + offset < len {
                    list[target + offset] = v;
                }
            }
            sorted_result(receiver, list)
        }
        "insert" => {
            let i = relative(to_integer(&args[0])?, len);
            list.insert(i, arg(1));
            store(list);
            JsArray::value(Vec::new())
        }
        "remove" => {
            let i = strict_index(&list, &arg(0), 0);
            let removed = if i < 0 {
                Vec::new()
            } else {
                vec![list.remove(i as usize)]
            };
            store(list);
            JsArray::value(removed)
        }
        "count" => Value::from(
            list.iter()
                .filter(|v| nunjucks::strict_equal(v, &args[0]))
                .count(),
        ),
        "index" | "find" => Value::from(strict_index(&list, &args[0], 0)),
        _ => return Err(not_callable(name)),
    })
}

/// The result of an in-place method: the receiver itself when it is a template-made array
/// (now changed), else a new array.
fn sorted_result(receiver: &Value, list: Vec<Value>) -> Value {
    match receiver.downcast_object_ref::<JsArray>() {
        Some(array) => {
            *array.items.lock().expect("not poisoned") = list;
            receiver.clone()
        }
        None => JsArray::value(list),
    }
}

fn is_nan(v: &Value) -> bool {
    v.kind() == ValueKind::Number && f64::try_from(v.clone()).is_ok_and(f64::is_nan)
}

fn flatten(list: &[Value], depth: f64, out: &mut Vec<Value>) {
    for item in list {
        if depth > 0.0 && matches!(item.kind(), ValueKind::Seq | ValueKind::Iterable) {
            flatten(&items(item), depth - 1.0, out);
        } else {
            out.push(item.clone());
        }
    }
}

fn record_method(receiver: &Value, name: &str, args: &[Value]) -> Result<Value, Error> {
    let (min, max) = match name {
        "get" => (1, 2),
        "has_key" => (1, 1),
        _ => (0, 0),
    };
    arity(name, args, min, max)?;
    let keys: Vec<Value> = receiver.try_iter().map(|k| k.collect()).unwrap_or_default();
    Ok(match name {
        "get" => {
            let v = own(receiver, &string(&args[0])?);
            if v.is_undefined() {
                args.get(1).cloned().unwrap_or(Value::UNDEFINED)
            } else {
                v
            }
        }
        "has_key" => Value::from(!own(receiver, &string(&args[0])?).is_undefined()),
        "keys" => JsArray::value(keys),
        "values" => JsArray::value(
            keys.iter()
                .map(|k| receiver.get_item(k).unwrap_or_default())
                .collect(),
        ),
        _ => JsArray::value(
            keys.iter()
                .map(|k| JsArray::value(vec![k.clone(), receiver.get_item(k).unwrap_or_default()]))
                .collect(),
        ),
    })
}
