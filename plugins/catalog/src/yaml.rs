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

use serde_json::{Map, Value};

use crate::js;

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

/// `stringifyString`: control characters force double quotes; otherwise plain if possible.
fn string(value: &[u16], ctx: Scalar) -> Vec<u16> {
    let needs_escapes = char::decode_utf16(value.iter().copied()).any(|c| match c {
        Ok(c) => matches!(c, '\x00'..='\x08' | '\x0b'..='\x1f' | '\x7f'..='\u{9f}'),
        Err(_) => true,
    });
    if needs_escapes {
        double_quoted(value, ctx)
    } else {
        plain(value, ctx)
    }
}

/// `plainString`: the value as it is, unless it would not read back as the same string.
fn plain(value: &[u16], ctx: Scalar) -> Vec<u16> {
    let multi_line = value.contains(&NL);
    if ctx.implicit_key && multi_line {
        return quoted(value, ctx);
    }
    if has_plain_indicator(value) {
        return if ctx.implicit_key || !multi_line {
            quoted(value, ctx)
        } else {
            block(value, ctx)
        };
    }
    if !ctx.implicit_key && multi_line {
        return block(value, ctx);
    }
    // A document marker at the start of a root-level key would end the document.
    // (Scalars in a mapping are never at indentation zero, the other case the package has.)
    if contains_document_marker(value) && ctx.implicit_key && ctx.indent == INDENT_STEP {
        return quoted(value, ctx);
    }
    // Plain scalars that the core schema would read as null, a boolean or a number.
    if reads_as_non_string(value) {
        return quoted(value, ctx);
    }
    if ctx.implicit_key {
        value.to_vec()
    } else {
        fold_lines(value, ctx.indent, Fold::Flow, ctx.indent_at_start).0
    }
}

/// The package's test for text a plain scalar cannot hold:
/// `/^[\n\t ,[\]{}#&*!|>'"%@`]|^[?-]$|^[?-][ \t]|[\n:][ \t]|[ \t]\n|[\n\t ]#|[\n\t :]$/`.
fn has_plain_indicator(value: &[u16]) -> bool {
    let is = |c: Option<&u16>, set: &str| {
        c.is_some_and(|&c| c < 128 && set.as_bytes().contains(&(c as u8)))
    };
    let first = value.first();
    if is(first, "\n\t ,[]{}#&*!|>'\"%@`") {
        return true;
    }
    if is(first, "?-") && (value.len() == 1 || is(value.get(1), " \t")) {
        return true;
    }
    let inner = value.windows(2).any(|w| {
        (is(Some(&w[0]), "\n:") && is(Some(&w[1]), " \t"))
            || (is(Some(&w[0]), " \t") && w[1] == NL)
            || (is(Some(&w[0]), "\n\t ") && w[1] == u16::from(b'#'))
    });
    inner || is(value.last(), "\n\t :")
}

/// `/^(%|---|\.\.\.)/m`: a line (JavaScript's lines: after `\n`, `\r`, U+2028 or U+2029)
/// that starts with `%`, `---` or `...`.
fn contains_document_marker(value: &[u16]) -> bool {
    let mut line_starts = std::iter::once(0).chain(
        value
            .iter()
            .enumerate()
            .filter(|(_, c)| matches!(**c, NL | CR | LINE_SEPARATOR | PARAGRAPH_SEPARATOR))
            .map(|(index, _)| index + 1),
    );
    line_starts.any(|start| {
        let line = &value[start..];
        line.starts_with(&utf16("%"))
            || line.starts_with(&utf16("---"))
            || line.starts_with(&utf16("..."))
    })
}

/// Whether a plain scalar would resolve to a tag other than `!!str` in the YAML 1.2 core
/// schema, by the package's tests for `!!null`, `!!bool`, `!!int` (decimal, `0o`, `0x`)
/// and `!!float` (`.inf`/`.nan`, exponential, decimal).
fn reads_as_non_string(value: &[u16]) -> bool {
    let Ok(text) = String::from_utf16(value) else {
        return false;
    };
    let text = text.as_str();
    if !text.is_ascii() {
        return false;
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let null = matches!(text, "" | "~" | "null" | "Null" | "NULL");
    let boolean = matches!(text, "true" | "True" | "TRUE" | "false" | "False" | "FALSE");
    let octal = text
        .strip_prefix("0o")
        .is_some_and(|o| !o.is_empty() && o.bytes().all(|b| (b'0'..=b'7').contains(&b)));
    let hex = text
        .strip_prefix("0x")
        .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let decimal = digits(unsigned);
    let special =
        matches!(unsigned, ".inf" | ".Inf" | ".INF") || matches!(text, ".nan" | ".NaN" | ".NAN");
    // `\.[0-9]+` or `[0-9]+\.[0-9]*`.
    let fraction = |s: &str| match s.split_once('.') {
        Some(("", after)) => digits(after),
        Some((before, after)) => digits(before) && (after.is_empty() || digits(after)),
        None => false,
    };
    let float = fraction(unsigned);
    // `(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+`.
    let exponential = unsigned
        .split_once(['e', 'E'])
        .is_some_and(|(mantissa, exponent)| {
            let exponent = exponent.strip_prefix(['-', '+']).unwrap_or(exponent);
            (digits(mantissa) || fraction(mantissa)) && digits(exponent)
        });
    null || boolean || octal || hex || decimal || special || float || exponential
}

/// `quotedString`: single quotes for text with `"` and no `'`, double quotes otherwise.
fn quoted(value: &[u16], ctx: Scalar) -> Vec<u16> {
    let has_double = value.contains(&DOUBLE_QUOTE);
    let has_single = value.contains(&SINGLE_QUOTE);
    if has_double && !has_single {
        single_quoted(value, ctx)
    } else {
        double_quoted(value, ctx)
    }
}

/// `singleQuotedString`: `'` doubled, line breaks doubled (one is folded away on reading).
fn single_quoted(value: &[u16], ctx: Scalar) -> Vec<u16> {
    let blank_around_break = value.windows(2).any(|w| {
        (matches!(w[0], SPACE | TAB) && w[1] == NL) || (w[0] == NL && matches!(w[1], SPACE | TAB))
    });
    if (ctx.implicit_key && value.contains(&NL)) || blank_around_break {
        return double_quoted(value, ctx);
    }
    let mut escaped = Vec::with_capacity(value.len() + 2);
    for &c in value {
        if c == SINGLE_QUOTE {
            escaped.push(SINGLE_QUOTE);
        }
        escaped.push(c);
    }
    let mut out = vec![SINGLE_QUOTE];
    out.extend(replace_breaks(&escaped, |out, run| {
        out.extend(run);
        out.push(NL);
        push_spaces(out, ctx.indent);
    }));
    out.push(SINGLE_QUOTE);
    if ctx.implicit_key {
        out
    } else {
        fold_lines(&out, ctx.indent, Fold::Flow, ctx.indent_at_start).0
    }
}

/// `doubleQuotedString`: `JSON.stringify`, then YAML's shorter escapes, and line breaks
/// written as real (doubled) line breaks in strings of 40 characters or more.
fn double_quoted(value: &[u16], ctx: Scalar) -> Vec<u16> {
    let json = json_string(value);
    let at = |k: usize| json.get(k).copied();
    let is = |k: usize, c: u8| at(k) == Some(u16::from(c));
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < json.len() {
        let mut c = json[i];
        if c == SPACE && is(i + 1, b'\\') && is(i + 2, b'n') {
            // A space before a line break is escaped, or reading would fold it away.
            out.extend_from_slice(&json[start..i]);
            out.extend(utf16("\\ "));
            i += 1;
            start = i;
            c = BACKSLASH;
        }
        if c == BACKSLASH {
            match at(i + 1).and_then(|c| u8::try_from(c).ok()) {
                Some(b'u') => {
                    out.extend_from_slice(&json[start..i]);
                    let code = String::from_utf16_lossy(&json[i + 2..i + 6]);
                    let short = match code.as_str() {
                        "0000" => Some("\\0".to_owned()),
                        "0007" => Some("\\a".to_owned()),
                        "000b" => Some("\\v".to_owned()),
                        "001b" => Some("\\e".to_owned()),
                        "0085" => Some("\\N".to_owned()),
                        "00a0" => Some("\\_".to_owned()),
                        "2028" => Some("\\L".to_owned()),
                        "2029" => Some("\\P".to_owned()),
                        _ => code.strip_prefix("00").map(|byte| format!("\\x{byte}")),
                    };
                    match short {
                        Some(short) => out.extend(utf16(&short)),
                        None => out.extend_from_slice(&json[i..i + 6]),
                    }
                    i += 5;
                    start = i + 1;
                }
                Some(b'n') => {
                    if ctx.implicit_key
                        || is(i + 2, b'"')
                        || json.len() < DOUBLE_QUOTED_MIN_MULTI_LINE_LENGTH
                    {
                        i += 1;
                    } else {
                        // Folding eats the first line break, hence two.
                        out.extend_from_slice(&json[start..i]);
                        out.extend([NL, NL]);
                        while is(i + 2, b'\\') && is(i + 3, b'n') && !is(i + 4, b'"') {
                            out.push(NL);
                            i += 2;
                        }
                        push_spaces(&mut out, ctx.indent);
                        // A space after a line break is escaped, or reading would drop it.
                        if is(i + 2, b' ') {
                            out.push(BACKSLASH);
                        }
                        i += 1;
                        start = i + 1;
                    }
                }
                _ => i += 1,
            }
        }
        i += 1;
    }
    let out = if start > 0 {
        out.extend_from_slice(&json[start..]);
        out
    } else {
        json
    };
    if ctx.implicit_key {
        out
    } else {
        fold_lines(&out, ctx.indent, Fold::Quoted, ctx.indent_at_start).0
    }
}

/// `JSON.stringify(string)`.
fn json_string(value: &[u16]) -> Vec<u16> {
    let mut out = vec![DOUBLE_QUOTE];
    let mut i = 0;
    while i < value.len() {
        let c = value[i];
        let escape = match c {
            0x08 => Some("\\b".to_owned()),
            0x09 => Some("\\t".to_owned()),
            0x0a => Some("\\n".to_owned()),
            0x0c => Some("\\f".to_owned()),
            0x0d => Some("\\r".to_owned()),
            0x22 => Some("\\\"".to_owned()),
            0x5c => Some("\\\\".to_owned()),
            0x00..0x20 => Some(format!("\\u{c:04x}")),
            0xd800..0xdc00
                if value
                    .get(i + 1)
                    .is_some_and(|n| (0xdc00..0xe000).contains(n)) =>
            {
                out.extend_from_slice(&value[i..i + 2]);
                i += 2;
                continue;
            }
            0xd800..0xe000 => Some(format!("\\u{c:04x}")),
            _ => None,
        };
        match escape {
            Some(escape) => out.extend(utf16(&escape)),
            None => out.push(c),
        }
        i += 1;
    }
    out.push(DOUBLE_QUOTE);
    out
}

/// `blockString`: a literal (`|`) block, or a folded (`>`) one when some line is too long
/// and folding gets every line under the width; the header carries the chomping indicator
/// (`-` strip, `+` keep, none for one final line break) and `2` when the text starts with a space.
fn block(value: &[u16], ctx: Scalar) -> Vec<u16> {
    // Text ending in a line of blanks only is clearer quoted.
    let trailing_blank_line = {
        let trimmed = value.len()
            - value
                .iter()
                .rev()
                .take_while(|&&c| matches!(c, SPACE | TAB))
                .count();
        trimmed < value.len() && trimmed > 0 && value[trimmed - 1] == NL
    };
    if trailing_blank_line {
        return quoted(value, ctx);
    }
    let indent = ctx.indent;
    let literal = !line_length_over_limit(value, indent);
    // Chomping, from the white space at the end.
    let end_start = value.len()
        - value
            .iter()
            .rev()
            .take_while(|&&c| matches!(c, NL | TAB | SPACE))
            .count();
    let mut end = &value[end_start..];
    let end_nl = end.iter().position(|&c| c == NL);
    let chomp = match end_nl {
        None => "-",
        Some(pos) if end_start == 0 || pos != end.len() - 1 => "+",
        Some(_) => "",
    };
    let mut body = &value[..end_start];
    if end.last() == Some(&NL) {
        end = &end[..end.len() - 1];
    }
    // Line breaks inside the end that are followed by blanks start indented lines.
    let end = {
        let mut out = Vec::new();
        let mut i = 0;
        while i < end.len() {
            if end[i] == NL {
                let run = end[i..].iter().take_while(|&&c| c == NL).count();
                out.extend_from_slice(&end[i..i + run]);
                if i + run < end.len() {
                    push_spaces(&mut out, indent);
                }
                i += run;
            } else {
                out.push(end[i]);
                i += 1;
            }
        }
        out
    };
    // Indentation indicator, from the white space at the start.
    let mut starts_with_space = false;
    let mut start_nl = None;
    for (index, &c) in body.iter().enumerate() {
        match c {
            SPACE => starts_with_space = true,
            NL => start_nl = Some(index),
            _ => break,
        }
    }
    let start: Vec<u16> = match start_nl {
        Some(pos) => {
            let start = &body[..=pos];
            body = &body[pos + 1..];
            replace_breaks(start, |out, run| {
                out.extend(run);
                push_spaces(out, indent);
            })
        }
        None => Vec::new(),
    };
    let header = format!("{}{chomp}", if starts_with_space { "2" } else { "" });
    if !literal {
        let doubled = replace_breaks(body, |out, run| {
            out.push(NL);
            out.extend(run);
        });
        let folded = replace_breaks(&keep_more_indented_lines(&doubled), |out, run| {
            out.extend(run);
            push_spaces(out, indent);
        });
        let mut text = start.clone();
        text.extend(folded);
        text.extend_from_slice(&end);
        let (folded, overflow) = fold_lines(&text, indent, Fold::Block, Some(indent));
        if !overflow {
            let mut out = utf16(&format!(">{header}\n"));
            push_spaces(&mut out, indent);
            out.extend(folded);
            return out;
        }
    }
    let mut out = utf16(&format!("|{header}\n"));
    push_spaces(&mut out, indent);
    out.extend(start);
    out.extend(replace_breaks(body, |out, run| {
        out.extend(run);
        push_spaces(out, indent);
    }));
    out.extend(end);
    out
}

/// `lineLengthOverLimit`: whether some line is longer than the width left after `indent`.
fn line_length_over_limit(text: &[u16], indent: usize) -> bool {
    let limit = LINE_WIDTH - indent as isize;
    let len = text.len() as isize;
    if len <= limit {
        return false;
    }
    let mut start = 0isize;
    for (i, &c) in text.iter().enumerate() {
        let i = i as isize;
        if c == NL {
            if i - start > limit {
                return true;
            }
            start = i + 1;
            if len - start <= limit {
                return false;
            }
        }
    }
    true
}

/// The package's `/(?:^|\n)([\t ].*)(?:([\n\t ]*)\n(?![\n\t ]))?/g` → `$1$2` on text whose
/// line breaks were doubled: lines starting with a blank ("more indented") are not folded
/// when read, so the doubling is undone around them.
fn keep_more_indented_lines(text: &[u16]) -> Vec<u16> {
    let blank = |c: Option<&u16>| matches!(c, Some(&SPACE) | Some(&TAB));
    let mut out = Vec::with_capacity(text.len());
    let mut copied = 0;
    let mut p = 0;
    while p < text.len() {
        let line_start = if p == 0 && blank(text.first()) {
            Some(0)
        } else if text[p] == NL && blank(text.get(p + 1)) {
            Some(p + 1)
        } else {
            None
        };
        let Some(line_start) = line_start else {
            p += 1;
            continue;
        };
        // `.*` stops at any JavaScript line terminator.
        let line_end = line_start
            + text[line_start..]
                .iter()
                .take_while(|&&c| !matches!(c, NL | CR | LINE_SEPARATOR | PARAGRAPH_SEPARATOR))
                .count();
        let blanks_end = line_end
            + text[line_end..]
                .iter()
                .take_while(|&&c| matches!(c, NL | TAB | SPACE))
                .count();
        let (match_end, kept_blanks) = if blanks_end > line_end && text[blanks_end - 1] == NL {
            (blanks_end, &text[line_end..blanks_end - 1])
        } else {
            (line_end, &text[line_end..line_end])
        };
        out.extend_from_slice(&text[copied..p]);
        out.extend_from_slice(&text[line_start..line_end]);
        out.extend_from_slice(kept_blanks);
        copied = match_end;
        p = match_end;
    }
    out.extend_from_slice(&text[copied..]);
    out
}

/// How `fold_lines` may break a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fold {
    /// Plain and single-quoted scalars: at a single space between non-blanks.
    Flow,
    /// Folded block scalars: the same, never inside more-indented lines.
    Block,
    /// Double-quoted scalars: also anywhere else, with an escaped line break.
    Quoted,
}

/// `foldFlowLines`: breaks `text` so lines stay within the width where possible. Returns
/// the text and whether some line could not be brought under the width (`onOverflow`).
fn fold_lines(
    text: &[u16],
    indent: usize,
    mode: Fold,
    indent_at_start: Option<usize>,
) -> (Vec<u16>, bool) {
    let len = text.len() as isize;
    let indent_len = indent as isize;
    let end_step = (1 + MIN_CONTENT_WIDTH).max(1 + LINE_WIDTH - indent_len);
    if len <= end_step {
        return (text.to_vec(), false);
    }
    let at = |k: isize| usize::try_from(k).ok().and_then(|k| text.get(k).copied());
    let mut folds: Vec<isize> = Vec::new();
    let mut escaped_folds: Vec<isize> = Vec::new();
    let mut end = LINE_WIDTH - indent_len;
    if let Some(start) = indent_at_start {
        let start = start as isize;
        if start > LINE_WIDTH - MIN_CONTENT_WIDTH.max(2) {
            folds.push(0);
        } else {
            end = LINE_WIDTH - start;
        }
    }
    let mut split: Option<isize> = None;
    let mut prev: Option<u16> = None;
    let mut overflow = false;
    let mut i: isize = -1;
    let mut escape_start: isize = -1;
    let mut escape_end: isize = -1;
    if mode == Fold::Block {
        i = consume_more_indented_lines(text, i, indent_len);
        if i != -1 {
            end = i + end_step;
        }
    }
    loop {
        i += 1;
        let Some(first) = at(i) else { break };
        let mut c = Some(first);
        if mode == Fold::Quoted && first == BACKSLASH {
            escape_start = i;
            i += match at(i + 1).and_then(|c| u8::try_from(c).ok()) {
                Some(b'x') => 3,
                Some(b'u') => 5,
                Some(b'U') => 9,
                _ => 1,
            };
            escape_end = i;
        }
        if c == Some(NL) {
            if mode == Fold::Block {
                i = consume_more_indented_lines(text, i, indent_len);
            }
            end = i + indent_len + end_step;
            split = None;
        } else {
            let not_blank = |c: Option<u16>| c.is_some_and(|c| !matches!(c, SPACE | NL | TAB));
            if c == Some(SPACE) && not_blank(prev) && not_blank(at(i + 1)) {
                // A space between non-blanks can become a line break and indentation.
                split = Some(i);
            }
            if i >= end {
                if let Some(at_split) = split.take() {
                    folds.push(at_split);
                    end = at_split + end_step;
                } else if mode == Fold::Quoted {
                    // Blanks collected at the end may stretch past the width.
                    while matches!(prev, Some(SPACE) | Some(TAB)) {
                        prev = c;
                        i += 1;
                        c = at(i);
                        overflow = true;
                    }
                    // Break before the last character, but not inside an escape.
                    let j = if i > escape_end + 1 {
                        i - 2
                    } else {
                        escape_start - 1
                    };
                    if escaped_folds.contains(&j) {
                        return (text.to_vec(), false);
                    }
                    folds.push(j);
                    escaped_folds.push(j);
                    end = j + end_step;
                } else {
                    overflow = true;
                }
            }
        }
        prev = c;
    }
    if folds.is_empty() {
        return (text.to_vec(), overflow);
    }
    let mut out = js_slice(text, 0, folds[0]);
    for (index, &fold) in folds.iter().enumerate() {
        let next = folds
            .get(index + 1)
            .copied()
            .filter(|&f| f != 0)
            .unwrap_or(len);
        if fold == 0 {
            out = vec![NL];
            push_spaces(&mut out, indent);
            out.extend(js_slice(text, 0, next));
        } else {
            if mode == Fold::Quoted && escaped_folds.contains(&fold) {
                match at(fold) {
                    Some(c) => out.push(c),
                    None => out.extend(utf16("undefined")),
                }
                out.push(BACKSLASH);
            }
            out.push(NL);
            push_spaces(&mut out, indent);
            out.extend(js_slice(text, fold + 1, next));
        }
    }
    (out, overflow)
}

/// `consumeMoreIndentedLines`: from the line after `i`, skips lines indented deeper than
/// `indent`; returns the position of the last line break skipped, or `i`.
fn consume_more_indented_lines(text: &[u16], mut i: isize, indent: isize) -> isize {
    let at = |k: isize| usize::try_from(k).ok().and_then(|k| text.get(k).copied());
    let mut end = i;
    let mut start = i + 1;
    let mut c = at(start);
    while matches!(c, Some(SPACE) | Some(TAB)) {
        if i < start + indent {
            i += 1;
            c = at(i);
        } else {
            loop {
                i += 1;
                c = at(i);
                if c.is_none() || c == Some(NL) {
                    break;
                }
            }
            end = i;
            start = i + 1;
            c = at(start);
        }
    }
    end
}

/// `String.prototype.slice(start, end)`: negative positions count from the end.
fn js_slice(text: &[u16], start: isize, end: isize) -> Vec<u16> {
    let len = text.len() as isize;
    let clamp = |k: isize| if k < 0 { (len + k).max(0) } else { k.min(len) } as usize;
    let (start, end) = (clamp(start), clamp(end));
    if start < end {
        text[start..end].to_vec()
    } else {
        Vec::new()
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
mod tests {
    use super::*;

    /// `(JSON text, yaml.stringify(JSON.parse(text)))`. The expected strings were produced by
    /// `yaml@2.9.1` `stringify` with default options, on Node.js 20.
    const CASES: &[(&str, &str)] = &[
        (
            r#"{"apiVersion":"backstage.io/v1alpha1","kind":"Component","metadata":{"name":"test","annotations":{}},"spec":{"type":"service","lifecycle":"production","owner":"default/owner"}}"#,
            "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: test\n  annotations: {}\nspec:\n  type: service\n  lifecycle: production\n  owner: default/owner\n",
        ),
        (r#"{}"#, "{}\n"),
        (
            r#"{"a":{},"b":[],"c":[{}],"d":[[]]}"#,
            "a: {}\nb: []\nc:\n  - {}\nd:\n  - []\n",
        ),
        (
            r#"{"a":[1,[2,3],{"b":4,"c":[5]},[],[[6]]]}"#,
            "a:\n  - 1\n  - - 2\n    - 3\n  - b: 4\n    c:\n      - 5\n  - []\n  - - - 6\n",
        ),
        (
            r#"{"a":[{"b":{"c":[{"d":"e","f":"g"}]}}]}"#,
            "a:\n  - b:\n      c:\n        - d: e\n          f: g\n",
        ),
        (
            r#"{"b":1,"2":2,"a":3,"1":4,"01":5,"4294967295":6,"4294967294":7}"#,
            "\"1\": 4\n\"2\": 2\n\"4294967294\": 7\nb: 1\na: 3\n\"01\": 5\n\"4294967295\": 6\n",
        ),
        (r#"{"a":1,"b":2,"a":3}"#, "a: 3\nb: 2\n"),
        (
            r#"{"n":null,"t":true,"f":false}"#,
            "n: null\nt: true\nf: false\n",
        ),
        (
            r#"{"a":0,"b":-0,"c":1.5,"d":-1,"e":100,"f":0.1,"g":1e21,"h":1e-7,"i":0.000001,"j":123456789012345678901234,"k":9007199254740993,"l":1.0}"#,
            "a: 0\nb: -0\nc: 1.5\nd: -1\ne: 100\nf: 0.1\ng: 1e+21\nh: 1e-7\ni: 0.000001\nj: 1.2345678901234569e+23\nk: 9007199254740992\nl: 1\n",
        ),
        (r#"{"a":""}"#, "a: \"\"\n"),
        (r#"{"a":"true"}"#, "a: \"true\"\n"),
        (r#"{"a":"True"}"#, "a: \"True\"\n"),
        (r#"{"a":"TRUE"}"#, "a: \"TRUE\"\n"),
        (r#"{"a":"false"}"#, "a: \"false\"\n"),
        (r#"{"a":"null"}"#, "a: \"null\"\n"),
        (r#"{"a":"Null"}"#, "a: \"Null\"\n"),
        (r#"{"a":"NULL"}"#, "a: \"NULL\"\n"),
        (r#"{"a":"~"}"#, "a: \"~\"\n"),
        (r#"{"a":"1"}"#, "a: \"1\"\n"),
        (r#"{"a":"-1"}"#, "a: \"-1\"\n"),
        (r#"{"a":"+1"}"#, "a: \"+1\"\n"),
        (r#"{"a":"007"}"#, "a: \"007\"\n"),
        (r#"{"a":"1.5"}"#, "a: \"1.5\"\n"),
        (r#"{"a":".5"}"#, "a: \".5\"\n"),
        (r#"{"a":"1."}"#, "a: \"1.\"\n"),
        (r#"{"a":"-.5"}"#, "a: \"-.5\"\n"),
        (r#"{"a":"1e3"}"#, "a: \"1e3\"\n"),
        (r#"{"a":"1E-3"}"#, "a: \"1E-3\"\n"),
        (r#"{"a":".5e+2"}"#, "a: \".5e+2\"\n"),
        (r#"{"a":"0x1F"}"#, "a: \"0x1F\"\n"),
        (r#"{"a":"0o17"}"#, "a: \"0o17\"\n"),
        (r#"{"a":".inf"}"#, "a: \".inf\"\n"),
        (r#"{"a":"-.Inf"}"#, "a: \"-.Inf\"\n"),
        (r#"{"a":"+.INF"}"#, "a: \"+.INF\"\n"),
        (r#"{"a":".nan"}"#, "a: \".nan\"\n"),
        (r#"{"a":".NaN"}"#, "a: \".NaN\"\n"),
        (r#"{"a":"yes"}"#, "a: yes\n"),
        (r#"{"a":"no"}"#, "a: no\n"),
        (r#"{"a":"on"}"#, "a: on\n"),
        (r#"{"a":"off"}"#, "a: off\n"),
        (r#"{"a":"y"}"#, "a: y\n"),
        (r#"{"a":"0b101"}"#, "a: 0b101\n"),
        (r#"{"a":"1_000"}"#, "a: 1_000\n"),
        (r#"{"a":"0X1F"}"#, "a: 0X1F\n"),
        (r#"{"a":"0o8"}"#, "a: 0o8\n"),
        (r#"{"a":"1.2.3"}"#, "a: 1.2.3\n"),
        (r#"{"a":"1e"}"#, "a: 1e\n"),
        (r#"{"a":"e3"}"#, "a: e3\n"),
        (r#"{"a":"."}"#, "a: .\n"),
        (r#"{"a":".."}"#, "a: ..\n"),
        (r#"{"a":"nan"}"#, "a: nan\n"),
        (r#"{"a":"inf"}"#, "a: inf\n"),
        (r#"{"a":"0x"}"#, "a: 0x\n"),
        (r#"{"a":"null!"}"#, "a: null!\n"),
        (r#"{"a":"a~"}"#, "a: a~\n"),
        (r#"{"a":"-"}"#, "a: \"-\"\n"),
        (r#"{"a":"?"}"#, "a: \"?\"\n"),
        (r#"{"a":":"}"#, "a: \":\"\n"),
        (r#"{"a":"- a"}"#, "a: \"- a\"\n"),
        (r#"{"a":"? a"}"#, "a: \"? a\"\n"),
        (r#"{"a":"-a"}"#, "a: -a\n"),
        (r#"{"a":"?a"}"#, "a: ?a\n"),
        (r#"{"a":"a:"}"#, "a: \"a:\"\n"),
        (r#"{"a":"a: b"}"#, "a: \"a: b\"\n"),
        (r#"{"a":"a:b"}"#, "a: a:b\n"),
        (r#"{"a":"a :b"}"#, "a: a :b\n"),
        (r#"{"a":"a #b"}"#, "a: \"a #b\"\n"),
        (r#"{"a":"a#b"}"#, "a: a#b\n"),
        (r##"{"a":"#a"}"##, "a: \"#a\"\n"),
        (r#"{"a":"&a"}"#, "a: \"&a\"\n"),
        (r#"{"a":"*a"}"#, "a: \"*a\"\n"),
        (r#"{"a":"!a"}"#, "a: \"!a\"\n"),
        (r#"{"a":"|a"}"#, "a: \"|a\"\n"),
        (r#"{"a":">a"}"#, "a: \">a\"\n"),
        (r#"{"a":"'a"}"#, "a: \"'a\"\n"),
        (r#"{"a":"\"a"}"#, "a: '\"a'\n"),
        (r#"{"a":"%a"}"#, "a: \"%a\"\n"),
        (r#"{"a":"@a"}"#, "a: \"@a\"\n"),
        (r#"{"a":"`a"}"#, "a: \"`a\"\n"),
        (r#"{"a":",a"}"#, "a: \",a\"\n"),
        (r#"{"a":"[a"}"#, "a: \"[a\"\n"),
        (r#"{"a":"]a"}"#, "a: \"]a\"\n"),
        (r#"{"a":"{a"}"#, "a: \"{a\"\n"),
        (r#"{"a":"}a"}"#, "a: \"}a\"\n"),
        (r#"{"a":"a,b"}"#, "a: a,b\n"),
        (r#"{"a":"a[b]{c}"}"#, "a: a[b]{c}\n"),
        (
            r#"{"a":"http://example.com:8080/a#b"}"#,
            "a: http://example.com:8080/a#b\n",
        ),
        (r#"{"a":" a"}"#, "a: \" a\"\n"),
        (r#"{"a":"a "}"#, "a: \"a \"\n"),
        (r#"{"a":"\ta"}"#, "a: \"\\ta\"\n"),
        (r#"{"a":"a\t"}"#, "a: \"a\\t\"\n"),
        (r#"{"a":"a - b"}"#, "a: a - b\n"),
        (r#"{"a":"a\t#b"}"#, "a: \"a\\t#b\"\n"),
        (r#"{"a":"it's"}"#, "a: it's\n"),
        (r#"{"a":"say \"hi\""}"#, "a: say \"hi\"\n"),
        (r#"{"a":"\"hi\" there"}"#, "a: '\"hi\" there'\n"),
        (r#"{"a":"'hi' there"}"#, "a: \"'hi' there\"\n"),
        (r#"{"a":"\"a\" 'b'"}"#, "a: \"\\\"a\\\" 'b'\"\n"),
        (r#"{"a":" \"a\""}"#, "a: ' \"a\"'\n"),
        (r#"{"a":" 'a'"}"#, "a: \" 'a'\"\n"),
        (r#"{"a":" \"a\" 'b'"}"#, "a: \" \\\"a\\\" 'b'\"\n"),
        (
            r#"{"---":"---","...":"...","%x":"%x","--- a":"--- a","a":{"---":"--- a","...":1}}"#,
            "\"---\": ---\n\"...\": ...\n\"%x\": \"%x\"\n\"--- a\": --- a\na:\n  ---: --- a\n  ...: 1\n",
        ),
        (r#"{"a":"\u0007"}"#, "a: \"\\a\"\n"),
        (r#"{"a":"\u0000"}"#, "a: \"\\0\"\n"),
        (r#"{"a":"\u001b"}"#, "a: \"\\e\"\n"),
        (r#"{"a":"\u000b"}"#, "a: \"\\v\"\n"),
        (r#"{"a":"\r"}"#, "a: \"\\r\"\n"),
        (r#"{"a":"a\rb"}"#, "a: \"a\\rb\"\n"),
        (r#"{"a":"\u007f"}"#, "a: \"\u{7f}\"\n"),
        (r#"{"a":"\u0085"}"#, "a: \"\u{85}\"\n"),
        (r#"{"a":"\u00a0"}"#, "a: \u{a0}\n"),
        (r#"{"a":"\u2028"}"#, "a: \u{2028}\n"),
        (r#"{"a":"a\u2029b"}"#, "a: a\u{2029}b\n"),
        (r#"{"a":"\b\f"}"#, "a: \"\\b\\f\"\n"),
        (r#"{"a":"\t"}"#, "a: \"\\t\"\n"),
        (r#"{"a":"a\tb"}"#, "a: a\tb\n"),
        (r#"{"a":"\u0001\u0002"}"#, "a: \"\\x01\\x02\"\n"),
        (r#"{"a":"a\\b"}"#, "a: a\\b\n"),
        (r#"{"a":"é"}"#, "a: é\n"),
        (r#"{"a":"😀"}"#, "a: 😀\n"),
        (r#"{"a":"Grüße, 世界"}"#, "a: Grüße, 世界\n"),
        (r#"{"a":"a\nb"}"#, "a: |-\n  a\n  b\n"),
        (r#"{"a":"a\nb\n"}"#, "a: |\n  a\n  b\n"),
        (r#"{"a":"a\nb\n\n"}"#, "a: |+\n  a\n  b\n\n"),
        (r#"{"a":"a\n\nb"}"#, "a: |-\n  a\n\n  b\n"),
        (r#"{"a":"\na"}"#, "a: |-\n  \n  a\n"),
        (r#"{"a":"\n\na"}"#, "a: |-\n  \n\n  a\n"),
        (r#"{"a":" a\nb"}"#, "a: |2-\n   a\n  b\n"),
        (r#"{"a":"  a\n b"}"#, "a: |2-\n    a\n   b\n"),
        (r#"{"a":"a\n b"}"#, "a: |-\n  a\n   b\n"),
        (r#"{"a":"a\n\tb"}"#, "a: |-\n  a\n  \tb\n"),
        (r#"{"a":"a\n "}"#, "a: \"a\\n \"\n"),
        (r#"{"a":"a\n\t"}"#, "a: \"a\\n\\t\"\n"),
        (r#"{"a":"\n"}"#, "a: |+\n  \n"),
        (r#"{"a":"\n\n"}"#, "a: |+\n  \n\n"),
        (r#"{"a":" \n"}"#, "a: |+\n   \n"),
        (r#"{"a":"a \nb"}"#, "a: |-\n  a \n  b\n"),
        (r#"{"a":"a\n#b"}"#, "a: |-\n  a\n  #b\n"),
        (r#"{"a":"a\n- b"}"#, "a: |-\n  a\n  - b\n"),
        (r#"{"a":"---\na"}"#, "a: |-\n  ---\n  a\n"),
        (r#"{"a":"a\n---"}"#, "a: |-\n  a\n  ---\n"),
        (r#"{"a":"a\n..."}"#, "a: |-\n  a\n  ...\n"),
        (r##"{"a":"#a\nb"}"##, "a: |-\n  #a\n  b\n"),
        (r#"{"a":"a: b\nc"}"#, "a: |-\n  a: b\n  c\n"),
        (r#"{"a":"\"a\"\n'b'"}"#, "a: |-\n  \"a\"\n  'b'\n"),
        (r#"{"a":"a\u0007\nb"}"#, "a: \"a\\a\\nb\"\n"),
        (
            r#"{"key\nwith break":"a","a":["x\ny","x\ny\n"],"b":{"c":"one\ntwo\n"}}"#,
            "\"key\\nwith break\": a\na:\n  - |-\n    x\n    y\n  - |\n    x\n    y\nb:\n  c: |\n    one\n    two\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "a: The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "a: The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter The quick brown fox jumps over the lazy dog\n  and keeps running far beyond the eighty column limit of the emitter\n",
        ),
        (
            r#"{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            "a: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        ),
        (
            r#"{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            "a: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        ),
        (
            r#"{"a":"short xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            "a: short\n  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        ),
        (
            r#"{"a":"The  quick  brown  fox  jumps  over  the  lazy  dog  and  keeps  running  far  beyond  the  eighty  column  limit  of  the  emitter"}"#,
            "a: The  quick  brown  fox  jumps  over  the  lazy  dog  and  keeps  running  far  beyond  the  eighty  column  limit  of  the  emitter\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter #"}"#,
            "a: \"The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter #\"\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter: x"}"#,
            "a: \"The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter: x\"\n",
        ),
        (
            r#"{"a":"\"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\""}"#,
            "a: '\"The quick brown fox jumps over the lazy dog and keeps running far beyond\n  the eighty column limit of the emitter\"'\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "a: >-\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n"}"#,
            "a: >\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n\n\n"}"#,
            "a: >+\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n\n\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n\n\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n  indented The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nback"}"#,
            "a: >-\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n    indented The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n  back\n",
        ),
        (
            r#"{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "a: |-\n  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
            "a: |-\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\n  xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
        ),
        (
            r#"{"a":" The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter\nThe quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "a: >2-\n   The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
        ),
        (
            r#"{"a":"line one with a break in it that is long enough\nsecond"}"#,
            "a: |-\n  line one with a break in it that is long enough\n  second\n",
        ),
        (
            r#"{"a":"a \u0007 The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "a: \"a \\a The quick brown fox jumps over the lazy dog and keeps running far\n  beyond the eighty column limit of the emitter\"\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over\u0007\n\n the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "a: \"The quick brown fox jumps over\\a\n\n\n  \\ the lazy dog and keeps running far beyond the eighty column limit of the\n  emitter\"\n",
        ),
        (
            r#"{"a":"The quick brown fox jumps over the lazy  \n dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "a: |-\n  The quick brown fox jumps over the lazy  \n   dog and keeps running far beyond the eighty column limit of the emitter\n",
        ),
        (
            r#"{"a":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u0007yyyyyyyyyyyyyyyyyyyy"}"#,
            "a: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\\\n  \\ayyyyyyyyyyyyyyyyyyyy\"\n",
        ),
        (
            r#"{"a":"😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀"}"#,
            "a: 😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀😀\n",
        ),
        (
            r#"{"a":"😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 "}"#,
            "a: \"😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀\n  😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 😀 \"\n",
        ),
        (
            r#"{"a":["The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter",{"b":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}]}"#,
            "a:\n  - The quick brown fox jumps over the lazy dog and keeps running far beyond the\n    eighty column limit of the emitter\n  - b: The quick brown fox jumps over the lazy dog and keeps running far beyond the\n      eighty column limit of the emitter\n",
        ),
        (
            r#"{"a":{"b":{"c":{"d":{"e":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}}}}}"#,
            "a:\n  b:\n    c:\n      d:\n        e: The quick brown fox jumps over the lazy dog and keeps running far beyond the\n          eighty column limit of the emitter\n",
        ),
        (
            r#"{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":"value after a long key"}"#,
            "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: value after a long key\n",
        ),
        (
            r#"{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk:\n  The quick brown fox jumps over the lazy dog and keeps running far beyond the\n  eighty column limit of the emitter\n",
        ),
        (
            r#"{"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk":"The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"}"#,
            "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk: The quick brown fox jumps over the\n  lazy dog and keeps running far beyond the eighty column limit of the emitter\n",
        ),
        (
            r#"{"true":1,"null":2,"":3,"-":4,"a b":5,"a: b":6,"a#b":7,"a #b":8," a":9,"'":10,"\"":11,"?":12,"é":13,"1.5":14,"~":15}"#,
            "\"true\": 1\n\"null\": 2\n\"\": 3\n\"-\": 4\na b: 5\n\"a: b\": 6\na#b: 7\n\"a #b\": 8\n\" a\": 9\n\"'\": 10\n'\"': 11\n\"?\": 12\né: 13\n\"1.5\": 14\n\"~\": 15\n",
        ),
        (
            r#"{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":{"k":"one\ntwo"}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}"#,
            "k:\n  k:\n    k:\n      k:\n        k:\n          k:\n            k:\n              k:\n                k:\n                  k:\n                    k:\n                      k:\n                        k:\n                          k:\n                            k:\n                              k:\n                                k:\n                                  k:\n                                    k:\n                                      k:\n                                        k:\n                                          k:\n                                            k:\n                                              k:\n                                                k:\n                                                  k:\n                                                    k:\n                                                      k:\n                                                        k:\n                                                          k:\n                                                            k:\n                                                              k: |-\n                                                                one\n                                                                two\n",
        ),
        (
            r#"{"a":[[[[[[[[[[[["The quick brown fox jumps over the lazy dog and keeps running far beyond the eighty column limit of the emitter"]]]]]]]]]]]]}"#,
            "a:\n  - - - - - - - - - - - - The quick brown fox jumps over the lazy dog and keeps\n                          running far beyond the eighty column limit of the\n                          emitter\n",
        ),
    ];

    #[test]
    fn output_matches_yaml_2_9_1() {
        let mismatches: Vec<String> = CASES
            .iter()
            .filter_map(|(json, expected)| {
                let object: Map<String, Value> = serde_json::from_str(json).unwrap();
                let actual = stringify(&object);
                (actual != *expected)
                    .then(|| format!("{json}\n  expected {expected:?}\n  actual   {actual:?}"))
            })
            .collect();
        assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    }

    #[test]
    fn keys_over_1024_characters_are_explicit_keys() {
        // From `yaml@2.9.1`, as above, with the key written as <K>.
        let cases = [
            (1030, "\"v\"", "? <K>\n: v\n"),
            (1030, r#"{"b":1,"c":[2]}"#, "? <K>\n: b: 1\n  c:\n    - 2\n"),
            (1030, "[]", "? <K>\n: []\n"),
            (1020, "\"v\"", "<K>: v\n"),
        ];
        for (length, value, expected) in cases {
            let key = "k".repeat(length);
            let object: Map<String, Value> =
                serde_json::from_str(&format!(r#"{{"{key}":{value}}}"#)).unwrap();
            assert_eq!(
                stringify(&object),
                expected.replace("<K>", &key),
                "{length} {value}"
            );
        }
    }
}
