//! `yaml.stringify(value)` of the npm `yaml` package, version 2.9.1 (what
//! `@backstage/plugin-scaffolder-backend@4.2.0`'s `yaml: ^2.0.0` resolves to), with its
//! default options, for a JSON object.
//!
//! The output has to be byte for byte what Backstage writes, so this follows the package's
//! `stringify/` code path by path for the nodes a JSON value can produce: block mappings
//! and sequences (`{}` and `[]` when empty), `null`, booleans, numbers as JavaScript prints
//! them, and strings as plain, single-quoted, double-quoted, literal (`|`) or folded (`>`)
//! scalars, folded at 80 columns. Keys come in JavaScript's enumeration order.
//! Deliberately absent: comments, anchors and aliases (parsed JSON shares no objects),
//! tags, flow collections with items, and every non-default option.
//!
//! Lengths and positions are JavaScript's, in UTF-16 code units, so scalars are worked on
//! as `[u16]`.
//!
//! This file writes the collections and numbers; `string` writes strings in each scalar
//! style (the package's `stringifyString`) and `fold` folds their lines (`foldFlowLines`).

mod fold;
mod string;

use serde_json::{Map, Value};

use crate::js;
use string::string;

/// The YAML document `yaml.stringify(object)` returns, final newline included.
pub fn stringify(object: &Map<String, Value>) -> String {
    let mut out = map(object, 0);
    out.push(NL);
    String::from_utf16_lossy(&out)
}

/// `lineWidth`, `minContentWidth` and the indentation step of the default options.
const LINE_WIDTH: isize = 80;
const MIN_CONTENT_WIDTH: isize = 20;
const INDENT_STEP: usize = 2;
/// `doubleQuotedMinMultiLineLength`: shorter double-quoted strings keep `\n` escapes.
const DOUBLE_QUOTED_MIN_MULTI_LINE_LENGTH: usize = 40;
/// A key whose scalar is longer than this becomes an explicit `? key` entry.
const MAX_IMPLICIT_KEY_LENGTH: usize = 1024;

const NL: u16 = b'\n' as u16;
const CR: u16 = b'\r' as u16;
const TAB: u16 = b'\t' as u16;
const SPACE: u16 = b' ' as u16;
const BACKSLASH: u16 = b'\\' as u16;
const DOUBLE_QUOTE: u16 = b'"' as u16;
const SINGLE_QUOTE: u16 = b'\'' as u16;
const LINE_SEPARATOR: u16 = 0x2028;
const PARAGRAPH_SEPARATOR: u16 = 0x2029;

/// What the scalar being written needs to know about where it goes.
#[derive(Debug, Clone, Copy)]
struct Scalar {
    /// The indentation of continuation lines.
    indent: usize,
    /// A mapping key: one line, never folded.
    implicit_key: bool,
    /// The column the scalar starts at, as the package counts it (`key:` plus one).
    indent_at_start: Option<usize>,
}

fn node(value: &Value, ctx: Scalar) -> Vec<u16> {
    match value {
        Value::Null => utf16("null"),
        Value::Bool(true) => utf16("true"),
        Value::Bool(false) => utf16("false"),
        Value::Number(number) => utf16(&number_string(number.as_f64().unwrap_or(f64::NAN))),
        Value::String(text) => string(&utf16(text), ctx),
        Value::Array(items) => seq(items, ctx.indent),
        Value::Object(object) => map(object, ctx.indent),
    }
}

/// `YAMLMap.toString` in block style: one `key: value` per line at `indent`.
fn map(object: &Map<String, Value>, indent: usize) -> Vec<u16> {
    if object.is_empty() {
        return utf16("{}");
    }
    let lines = js::entries(object)
        .into_iter()
        .map(|(key, value)| pair(key, value, indent))
        .collect();
    join_lines(lines, indent)
}

/// `YAMLSeq.toString` in block style: `- item` lines at `indent`.
fn seq(items: &[Value], indent: usize) -> Vec<u16> {
    if items.is_empty() {
        return utf16("[]");
    }
    let item_ctx = Scalar {
        indent: indent + 2,
        implicit_key: false,
        indent_at_start: None,
    };
    let lines = items
        .iter()
        .map(|item| {
            let mut line = utf16("- ");
            line.extend(node(item, item_ctx));
            line
        })
        .collect();
    join_lines(lines, indent)
}

fn join_lines(lines: Vec<Vec<u16>>, indent: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for (index, line) in lines.into_iter().enumerate() {
        if index > 0 {
            out.push(NL);
            push_spaces(&mut out, indent);
        }
        out.extend(line);
    }
    out
}

/// `stringifyPair`: `key: value`, with nested collections on the following lines.
fn pair(key: &str, value: &Value, indent: usize) -> Vec<u16> {
    let inner = indent + INDENT_STEP;
    let mut out = string(
        &utf16(key),
        Scalar {
            indent: inner,
            implicit_key: true,
            indent_at_start: None,
        },
    );
    let explicit_key = out.len() > MAX_IMPLICIT_KEY_LENGTH;
    if explicit_key {
        let mut explicit = utf16("? ");
        explicit.extend(out);
        explicit.push(NL);
        push_spaces(&mut explicit, indent);
        out = explicit;
    }
    out.push(u16::from(b':'));
    let collection = matches!(value, Value::Array(_) | Value::Object(_));
    let value_str = node(
        value,
        Scalar {
            indent: inner,
            implicit_key: false,
            indent_at_start: (!explicit_key && !collection).then_some(out.len() + 1),
        },
    );
    if !explicit_key && collection {
        let empty = match value {
            Value::Array(items) => items.is_empty(),
            Value::Object(object) => object.is_empty(),
            _ => false,
        };
        if value_str.contains(&NL) || !empty {
            out.push(NL);
            push_spaces(&mut out, inner);
        } else {
            out.push(SPACE);
        }
    } else if value_str.first().is_some_and(|&c| c != NL) {
        out.push(SPACE);
    }
    out.extend(value_str);
    out
}

/// `stringifyNumber`: JavaScript's digits, and `-0` kept.
fn number_string(value: f64) -> String {
    if value.is_nan() {
        ".nan".to_owned()
    } else if value.is_infinite() {
        if value < 0.0 { "-.inf" } else { ".inf" }.to_owned()
    } else if value == 0.0 && value.is_sign_negative() {
        "-0".to_owned()
    } else {
        js::number_to_string(value)
    }
}

/// `text.replace(/\n+/g, ...)`: each run of line breaks replaced by what `with` writes.
fn replace_breaks(text: &[u16], with: impl Fn(&mut Vec<u16>, &[u16])) -> Vec<u16> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == NL {
            let run = text[i..].iter().take_while(|&&c| c == NL).count();
            with(&mut out, &text[i..i + run]);
            i += run;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    out
}

fn push_spaces(out: &mut Vec<u16>, count: usize) {
    out.extend(std::iter::repeat_n(SPACE, count));
}

fn utf16(text: &str) -> Vec<u16> {
    text.encode_utf16().collect()
}

#[cfg(test)]
mod tests;
