//! The URL filters: `urlencode` (JavaScript's `encodeURIComponent`) and `urlize`, with
//! nunjitsu's regular expressions for words, e-mail addresses and common domains.

use minijinja::Value;
use minijinja::value::ValueKind;

use super::Filtered;
use super::strings::{code_units, is_js_whitespace, text};
use super::values::{entries, is_array, is_record, is_string, record_get, to_js_string, to_number};
use crate::render::runtime::items;

/// JavaScript's `encodeURIComponent`.
pub(super) fn encode_uri_component(s: &str) -> String {
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

pub(super) fn urlencode(input: &Value) -> Filtered {
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

/// `text.split(/(\s+)/)`: words and the whitespace runs between them.
pub(super) fn split_keeping_whitespace(text: &str) -> Vec<&str> {
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
pub(super) fn strip_punctuation(word: &str) -> &str {
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
pub(super) fn is_email(s: &str) -> bool {
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
pub(super) fn has_common_domain(s: &str) -> bool {
    ["org", "net", "com"].iter().any(|tld| {
        let needle = format!(".{tld}");
        s.match_indices(&needle).any(|(i, _)| {
            let after = &s[i + needle.len()..];
            after.is_empty() || after.starts_with(':') || after.starts_with('/')
        })
    })
}

pub(super) fn urlize(input: &Value, length: &Value, nofollow: &Value) -> Filtered {
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
