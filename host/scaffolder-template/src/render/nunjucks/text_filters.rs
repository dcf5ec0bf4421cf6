//! The text filters with more to them than a line of coercions: `replace`, `striptags`,
//! `wordcount`'s word count and `truncate`, on hand-written equivalents of nunjitsu's regular
//! expressions.

use std::cmp::Ordering;

use minijinja::Value;
use minijinja::value::ValueKind;

use super::Filtered;
use super::strings::{
    bounded, code_units, copy_safeness, direct_length, normalize_text_input, text,
};
use super::values::{f64_of, is_plain_string, is_string, order, to_js_string, to_number, truthy};
use crate::render::filters::regex::JsRegex;

pub(super) fn replace(
    input: &Value,
    search: &Value,
    replacement: &Value,
    maximum: &Value,
) -> Filtered {
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

/// Removes HTML tags and comments, repeatedly, as nunjitsu's `stripHtmlTags` (the tag name
/// must start with a letter).
pub(super) fn strip_tags(value: &str) -> Result<String, String> {
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
pub(super) fn strip_tags_once(s: &str) -> String {
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

pub(super) fn tag_len(s: &str) -> Option<usize> {
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
pub(super) fn collapse(s: &str, pred: impl Fn(char) -> bool, with: &str) -> String {
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
pub(super) fn collapse_blank_lines(s: &str) -> String {
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
pub(super) fn count_words(s: &str) -> usize {
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

pub(super) fn truncate(input: &Value, length: &Value, killwords: &Value, end: &Value) -> Filtered {
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
