//! `dump` and `JSON.stringify`: template values as JSON, written as JavaScript writes them.

use minijinja::Value;
use minijinja::value::ValueKind;

use super::Filtered;
use super::numbers::js_number_to_string;
use super::values::{entries, f64_of, is_regex, to_number};
use crate::render::runtime::items;

pub(super) fn dump(input: &Value, indent: &Value) -> Filtered {
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
pub(super) fn to_json(value: &Value) -> Result<Option<serde_json::Value>, String> {
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
pub(super) fn stringify(json: &serde_json::Value, indent: &str) -> String {
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
pub(super) fn json_string(s: &str) -> String {
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

/// `JSON.stringify(value)`; `None` for undefined.
pub(crate) fn stringify_value(value: &Value) -> Option<String> {
    to_json(value)
        .ok()
        .flatten()
        .map(|json| stringify(&json, ""))
}
