//! `stringifyString`: a string as a plain, single-quoted, double-quoted, literal (`|`) or
//! folded (`>`) scalar, whichever the package would pick, and how each style is written.

use super::fold::{Fold, fold_lines};
use super::{
    BACKSLASH, CR, DOUBLE_QUOTE, DOUBLE_QUOTED_MIN_MULTI_LINE_LENGTH, INDENT_STEP, LINE_SEPARATOR,
    LINE_WIDTH, NL, PARAGRAPH_SEPARATOR, SINGLE_QUOTE, SPACE, Scalar, TAB, push_spaces,
    replace_breaks, utf16,
};

/// `stringifyString`: control characters force double quotes; otherwise plain if possible.
pub(super) fn string(value: &[u16], ctx: Scalar) -> Vec<u16> {
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
pub(super) fn plain(value: &[u16], ctx: Scalar) -> Vec<u16> {
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
pub(super) fn has_plain_indicator(value: &[u16]) -> bool {
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
pub(super) fn contains_document_marker(value: &[u16]) -> bool {
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
pub(super) fn reads_as_non_string(value: &[u16]) -> bool {
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
pub(super) fn quoted(value: &[u16], ctx: Scalar) -> Vec<u16> {
    let has_double = value.contains(&DOUBLE_QUOTE);
    let has_single = value.contains(&SINGLE_QUOTE);
    if has_double && !has_single {
        single_quoted(value, ctx)
    } else {
        double_quoted(value, ctx)
    }
}

/// `singleQuotedString`: `'` doubled, line breaks doubled (one is folded away on reading).
pub(super) fn single_quoted(value: &[u16], ctx: Scalar) -> Vec<u16> {
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
pub(super) fn double_quoted(value: &[u16], ctx: Scalar) -> Vec<u16> {
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
pub(super) fn json_string(value: &[u16]) -> Vec<u16> {
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
pub(super) fn block(value: &[u16], ctx: Scalar) -> Vec<u16> {
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
pub(super) fn line_length_over_limit(text: &[u16], indent: usize) -> bool {
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
pub(super) fn keep_more_indented_lines(text: &[u16]) -> Vec<u16> {
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
