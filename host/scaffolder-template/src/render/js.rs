//! The JavaScript side of Nunjucks that templates rely on: how values print, the string
//! and array methods templates call (`.toUpperCase()`, `.split('/')`, ...), `.length`,
//! and `===`.

use minijinja::value::{ValueKind, from_args};
use minijinja::{Error, ErrorKind, State, Value};
use serde_json::Value as Json;

use super::Syntax;

/// The longest string `.repeat()` / `.padStart()` may build.
const MAX_BUILT_STRING: usize = 1 << 20;

/// How JavaScript's `String(value)` prints a value inside text: `undefined` and `null`
/// print nothing (Nunjucks suppresses them), arrays join their items with `,`, objects
/// print `[object Object]`, whole floats print without a fraction.
pub(crate) fn to_js_string(value: &Value) -> String {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::Bool => value.is_true().to_string(),
        ValueKind::Number => number_to_string(value),
        ValueKind::String => value.as_str().unwrap_or_default().to_owned(),
        ValueKind::Seq | ValueKind::Iterable => value
            .try_iter()
            .map(|items| {
                items
                    .map(|v| to_js_string(&v))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default(),
        ValueKind::Map | ValueKind::Plain => "[object Object]".to_owned(),
        _ => value.to_string(),
    }
}

fn number_to_string(value: &Value) -> String {
    if let Some(i) = value.as_i64() {
        return i.to_string();
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Ok(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{f:.0}"),
        Ok(f) => f.to_string(),
        Err(_) => value.to_string(),
    }
}

/// A template value as JSON; `None` for undefined. Values JSON cannot hold (NaN) become
/// `null`, as `JSON.stringify` makes them.
pub(crate) fn to_json(value: &Value) -> Option<Json> {
    if value.is_undefined() {
        return None;
    }
    Some(serde_json::to_value(value).unwrap_or(Json::Null))
}

/// Calls a JavaScript method on a string, array, number or object.
pub(crate) fn call_method(
    _state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match value.kind() {
        ValueKind::String => string_method(value.as_str().unwrap_or_default(), method, args),
        ValueKind::Seq | ValueKind::Iterable => array_method(value, method, args),
        ValueKind::Number => number_method(value, method, args),
        ValueKind::Map => map_method(value, method, args),
        _ => Err(unknown(value, method)),
    }
}

fn unknown(value: &Value, method: &str) -> Error {
    Error::new(
        ErrorKind::UnknownMethod,
        format!("{} has no method named {method}", value.kind()),
    )
}

fn string_method(s: &str, method: &str, args: &[Value]) -> Result<Value, Error> {
    let v = |s: String| Ok(Value::from(s));
    match method {
        "toUpperCase" | "toLocaleUpperCase" => v(s.to_uppercase()),
        "toLowerCase" | "toLocaleLowerCase" => v(s.to_lowercase()),
        "trim" => v(s.trim().to_owned()),
        "trimStart" | "trimLeft" => v(s.trim_start().to_owned()),
        "trimEnd" | "trimRight" => v(s.trim_end().to_owned()),
        "toString" | "valueOf" => v(s.to_owned()),
        "startsWith" => {
            let (needle,): (&str,) = from_args(args)?;
            Ok(Value::from(s.starts_with(needle)))
        }
        "endsWith" => {
            let (needle,): (&str,) = from_args(args)?;
            Ok(Value::from(s.ends_with(needle)))
        }
        "includes" => {
            let (needle,): (&str,) = from_args(args)?;
            Ok(Value::from(s.contains(needle)))
        }
        "indexOf" => {
            let (needle,): (&str,) = from_args(args)?;
            Ok(Value::from(char_index(s, s.find(needle))))
        }
        "lastIndexOf" => {
            let (needle,): (&str,) = from_args(args)?;
            Ok(Value::from(char_index(s, s.rfind(needle))))
        }
        // String patterns replace the first occurrence, as in JavaScript.
        "replace" => {
            let (from, to): (&str, &str) = from_args(args)?;
            v(s.replacen(from, to, 1))
        }
        "replaceAll" => {
            let (from, to): (&str, &str) = from_args(args)?;
            v(s.replace(from, to))
        }
        "split" => {
            let (sep, limit): (Option<&str>, Option<usize>) = from_args(args)?;
            let parts: Vec<Value> = match sep {
                None => vec![Value::from(s)],
                Some("") => s.chars().map(|c| Value::from(c.to_string())).collect(),
                Some(sep) => s.split(sep).map(Value::from).collect(),
            };
            let limit = limit.unwrap_or(usize::MAX);
            Ok(Value::from(
                parts.into_iter().take(limit).collect::<Vec<_>>(),
            ))
        }
        "substring" => {
            let (start, end): (i64, Option<i64>) = from_args(args)?;
            let len = s.chars().count() as i64;
            let clamp = |i: i64| i.clamp(0, len);
            let (a, b) = (clamp(start), clamp(end.unwrap_or(len)));
            v(chars(s, a.min(b), a.max(b)))
        }
        "slice" => {
            let (start, end): (i64, Option<i64>) = from_args(args)?;
            let len = s.chars().count() as i64;
            let (a, b) = (js_index(start, len), js_index(end.unwrap_or(len), len));
            v(if a < b { chars(s, a, b) } else { String::new() })
        }
        "substr" => {
            let (start, count): (i64, Option<i64>) = from_args(args)?;
            let len = s.chars().count() as i64;
            let a = js_index(start, len);
            let b = (a + count.unwrap_or(len).max(0)).min(len);
            v(chars(s, a, b))
        }
        "charAt" => {
            let (i,): (i64,) = from_args(args)?;
            v(s.chars()
                .nth(usize::try_from(i).unwrap_or(usize::MAX))
                .map(String::from)
                .unwrap_or_default())
        }
        "at" => {
            let (i,): (i64,) = from_args(args)?;
            let len = s.chars().count() as i64;
            let i = if i < 0 { len + i } else { i };
            Ok(usize::try_from(i)
                .ok()
                .and_then(|i| s.chars().nth(i))
                .map(|c| Value::from(c.to_string()))
                .unwrap_or(Value::UNDEFINED))
        }
        "concat" => {
            let mut out = s.to_owned();
            for a in args {
                out.push_str(&to_js_string(a));
            }
            v(out)
        }
        "repeat" => {
            let (n,): (usize,) = from_args(args)?;
            bounded(s.len().saturating_mul(n))?;
            v(s.repeat(n))
        }
        "padStart" | "padEnd" => {
            let (width, fill): (usize, Option<&str>) = from_args(args)?;
            bounded(width)?;
            let fill = fill.unwrap_or(" ");
            let len = s.chars().count();
            if width <= len || fill.is_empty() {
                return v(s.to_owned());
            }
            let pad: String = fill.chars().cycle().take(width - len).collect();
            v(if method == "padStart" {
                pad + s
            } else {
                s.to_owned() + &pad
            })
        }
        "localeCompare" => {
            let (other,): (&str,) = from_args(args)?;
            Ok(Value::from(match s.cmp(other) {
                std::cmp::Ordering::Less => -1,
                std::cmp::Ordering::Equal => 0,
                std::cmp::Ordering::Greater => 1,
            }))
        }
        _ => Err(unknown(&Value::from(s), method)),
    }
}

fn array_method(value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    let items: Vec<Value> = value.try_iter()?.collect();
    match method {
        "join" => {
            let (sep,): (Option<&str>,) = from_args(args)?;
            Ok(Value::from(
                items
                    .iter()
                    .map(to_js_string)
                    .collect::<Vec<_>>()
                    .join(sep.unwrap_or(",")),
            ))
        }
        "includes" => {
            let (needle,): (Value,) = from_args(args)?;
            Ok(Value::from(items.contains(&needle)))
        }
        "indexOf" => {
            let (needle,): (Value,) = from_args(args)?;
            Ok(Value::from(
                items
                    .iter()
                    .position(|v| *v == needle)
                    .map(|i| i as i64)
                    .unwrap_or(-1),
            ))
        }
        "slice" => {
            let (start, end): (Option<i64>, Option<i64>) = from_args(args)?;
            let len = items.len() as i64;
            let a = js_index(start.unwrap_or(0), len) as usize;
            let b = js_index(end.unwrap_or(len), len) as usize;
            Ok(Value::from(if a < b {
                items[a..b].to_vec()
            } else {
                Vec::new()
            }))
        }
        "concat" => {
            let mut out = items;
            for a in args {
                match a.kind() {
                    ValueKind::Seq | ValueKind::Iterable => out.extend(a.try_iter()?),
                    _ => out.push(a.clone()),
                }
            }
            Ok(Value::from(out))
        }
        "at" => {
            let (i,): (i64,) = from_args(args)?;
            let len = items.len() as i64;
            let i = if i < 0 { len + i } else { i };
            Ok(usize::try_from(i)
                .ok()
                .and_then(|i| items.get(i).cloned())
                .unwrap_or(Value::UNDEFINED))
        }
        "toString" => Ok(Value::from(to_js_string(value))),
        _ => Err(unknown(value, method)),
    }
}

fn number_method(value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "toString" => Ok(Value::from(to_js_string(value))),
        "toFixed" => {
            let (digits,): (Option<usize>,) = from_args(args)?;
            let f = f64::try_from(value.clone())?;
            Ok(Value::from(format!("{f:.*}", digits.unwrap_or(0).min(100))))
        }
        _ => Err(unknown(value, method)),
    }
}

fn map_method(value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    match method {
        "hasOwnProperty" => {
            let (key,): (Value,) = from_args(args)?;
            Ok(Value::from(!value.get_item(&key)?.is_undefined()))
        }
        _ => Err(unknown(value, method)),
    }
}

fn bounded(len: usize) -> Result<(), Error> {
    if len > MAX_BUILT_STRING {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("refusing to build a string of {len} characters"),
        ));
    }
    Ok(())
}

fn char_index(s: &str, byte: Option<usize>) -> i64 {
    byte.map(|b| s[..b].chars().count() as i64).unwrap_or(-1)
}

fn chars(s: &str, from: i64, to: i64) -> String {
    s.chars()
        .skip(from as usize)
        .take((to - from).max(0) as usize)
        .collect()
}

/// A JavaScript slice index: negative counts from the end; clamped to `0..=len`.
fn js_index(i: i64, len: i64) -> i64 {
    if i < 0 { (len + i).max(0) } else { i.min(len) }
}

/// Rewrites the JavaScript-isms of an expression that minijinja does not parse:
/// `x.length` becomes `x|length`, `===`/`!==` become `==`/`!=`, and bare keys of object
/// literals (`{ defaultKind: 'user' }`) become strings, as Nunjucks reads them. String
/// literals are left alone.
pub(crate) fn rewrite_expression(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let bytes = expr.as_bytes();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    // Open brackets, innermost last; a `{` marks an object literal.
    let mut brackets: Vec<u8> = Vec::new();
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            // Copy whole UTF-8 characters: a byte is not a character past ASCII.
            let ch = expr[i..].chars().next().expect("in bounds");
            out.push(ch);
            if c == b'\\' && i + 1 < bytes.len() {
                let escaped = expr[i + 1..].chars().next().expect("in bounds");
                out.push(escaped);
                i += 1 + escaped.len_utf8();
                continue;
            }
            if c == q {
                quote = None;
            }
            i += ch.len_utf8();
            continue;
        }
        // `r/…/g` regular-expression literals (nunjitsu's), for the `replace` filter.
        if c == b'r'
            && let Some((call, len)) = super::filters::rewrite_regex_literal(expr, i)
        {
            out.push_str(&call);
            i += len;
            continue;
        }
        if brackets.last() == Some(&b'{')
            && let Some(len) = bare_key_at(expr, i)
        {
            out.push('"');
            out.push_str(&expr[i..i + len]);
            out.push('"');
            i += len;
            continue;
        }
        match c {
            b'\'' | b'"' => {
                quote = Some(c);
                out.push(c as char);
                i += 1;
            }
            b'{' | b'[' | b'(' => {
                brackets.push(c);
                out.push(c as char);
                i += 1;
            }
            b'}' | b']' | b')' => {
                brackets.pop();
                out.push(c as char);
                i += 1;
            }
            b'=' | b'!' if expr[i..].starts_with("===") || expr[i..].starts_with("!==") => {
                out.push(c as char);
                out.push('=');
                i += 3;
            }
            b'.' if expr[i + 1..].starts_with("length")
                && !expr[i + 7..]
                    .chars()
                    .next()
                    .is_some_and(|n| n.is_alphanumeric() || n == '_' || n == '(')
                && i > 0
                && (bytes[i - 1].is_ascii_alphanumeric()
                    || matches!(bytes[i - 1], b'_' | b']' | b')')) =>
            {
                out.push_str("|length");
                i += 7;
            }
            _ => {
                // Copy one UTF-8 character.
                let ch = expr[i..].chars().next().expect("in bounds");
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

/// The length of an identifier at `i` that is a key of an object literal: it follows `{`
/// or `,` (ignoring spaces) and is followed by `:`.
fn bare_key_at(expr: &str, i: usize) -> Option<usize> {
    let before = expr[..i].trim_end();
    if !(before.ends_with('{') || before.ends_with(',')) {
        return None;
    }
    let rest = &expr[i..];
    let first = rest.chars().next()?;
    if !(first.is_alphabetic() || first == '_' || first == '$') {
        return None;
    }
    let len = rest
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(rest.len());
    rest[len..].trim_start().starts_with(':').then_some(len)
}

/// Applies [`rewrite_expression`] inside the expression and statement tags of a text
/// template, leaving the text between them untouched.
pub(crate) fn rewrite_template(source: &str, syntax: Syntax) -> String {
    let (open_expr, _) = super::delimiters(syntax);
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    loop {
        let next = [(open_expr, "}}"), ("{%", "%}")]
            .iter()
            .filter_map(|(o, c)| rest.find(o).map(|at| (at, *o, *c)))
            .min_by_key(|(at, _, _)| *at);
        let Some((at, open, close)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + open.len()]);
        rest = &rest[at + open.len()..];
        match rest.find(close) {
            Some(end) => {
                out.push_str(&rewrite_expression(&rest[..end]));
                out.push_str(close);
                rest = &rest[end + close.len()..];
            }
            None => {
                out.push_str(rest);
                return out;
            }
        }
    }
}
