//! JavaScript's strings (white space, trimming, upper case, UTF-16 lengths and code units)
//! and what the filters share to read and write text: string inputs, safeness kept,
//! spacing and output bounds, HTML escaping.

use minijinja::Value;
use minijinja::value::ValueKind;

use super::values::{is_string, record_get};
use crate::render::runtime::items;

/// JavaScript's white space and line terminators (`String.prototype.trim`, `\s`).
pub(super) fn is_js_whitespace(c: char) -> bool {
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

pub(super) fn js_trim(s: &str) -> &str {
    s.trim_matches(is_js_whitespace)
}

/// JavaScript's `toUpperCase` (Rust's agrees, `ß` becoming `SS` included).
pub(super) fn js_upper(s: &str) -> String {
    s.to_uppercase()
}

pub(super) fn text(value: &Value) -> Result<String, String> {
    match value.as_str() {
        Some(s) if is_string(value) => Ok(s.to_owned()),
        _ => Err("Filter input must be a string".into()),
    }
}

pub(super) fn normalize_text_input(value: &Value) -> Value {
    match value.kind() {
        ValueKind::Undefined | ValueKind::None => Value::from(""),
        ValueKind::Bool if !value.is_true() => Value::from(""),
        _ => value.clone(),
    }
}

pub(super) fn copy_safeness(input: &Value, out: String) -> Value {
    if input.is_safe() {
        Value::from_safe_string(out)
    } else {
        Value::from(out)
    }
}

pub(super) fn utf16_len(s: &str) -> usize {
    s.encode_utf16().count()
}

pub(super) fn code_units(s: &str) -> Vec<Value> {
    s.encode_utf16()
        .map(|u| Value::from(String::from_utf16_lossy(&[u])))
        .collect()
}

/// `runtimeDirectLength`: a string's or array's length, a record's `length` key.
pub(super) fn direct_length(value: &Value) -> Value {
    match value.kind() {
        ValueKind::String => Value::from(utf16_len(value.as_str().unwrap_or_default())),
        ValueKind::Seq | ValueKind::Iterable => Value::from(items(value).len()),
        ValueKind::Map => record_get(value, "length"),
        _ => Value::UNDEFINED,
    }
}

pub(super) fn repeat_spaces(bound: f64) -> Result<String, String> {
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
pub(super) fn bounded(size: usize) -> Result<(), String> {
    if size > crate::render::MAX_OUTPUT_BYTES {
        return Err("Filter output exceeds the supported bound".into());
    }
    Ok(())
}

pub(super) fn escape_html(s: &str) -> String {
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
