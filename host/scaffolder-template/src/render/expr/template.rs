//! Text templates: the expressions inside their tags translated ([`translate_template`]:
//! comments, raw blocks, `switch`, `for`, `set`), and [`sole_expression`].

use super::emit::emit_string;
use super::error::{Origin, SyntaxError, tag_error};
use super::parser::Parser;
use super::shared::{VARS, shared_names};
use super::{translate_expression, translate_expression_in, translate_located};
use crate::render::Syntax;

/// A `for` loop's targets (`a` or `a, b`).
pub(super) fn loop_targets(source: &str) -> Result<Vec<String>, SyntaxError> {
    let mut parser = Parser::new(source)?;
    let mut targets = Vec::new();
    loop {
        let name = parser.expect_name()?;
        if matches!(name.as_str(), "true" | "false" | "null" | "none") {
            return Err(SyntaxError::new("Binding targets must be ordinary names"));
        }
        targets.push(name);
        if !parser.consume(",") {
            break;
        }
    }
    parser.expect_eof()?;
    Ok(targets)
}

/// The end of a tag's code starting at `from` (the index of `close`), skipping strings.
pub(super) fn find_close(source: &str, from: usize, close: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut chars = source[from..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            continue;
        }
        if source[from + offset..].starts_with(close) {
            return Some(from + offset);
        }
    }
    None
}

/// A tag's code without its whitespace-control markers: (leading `-`, code, trailing `-`).
pub(super) fn split_markers(code: &str) -> (&str, &str, &str) {
    let (lead, rest) = match code.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", code),
    };
    let (rest, trail) = match rest.strip_suffix('-') {
        // `${{ 5 -3 -}}`: only a `-` after white space (or alone) is a marker.
        Some(inner) if inner.is_empty() || inner.ends_with(char::is_whitespace) => (inner, "-"),
        _ => (rest, ""),
    };
    (lead, rest, trail)
}

/// Rewrites the expressions inside the tags of a text template into minijinja's (see the
/// module documentation); text, comments and `{% raw %}` blocks are left alone.
///
/// nunjitsu's `trimBlocks` leaves the newline after a comment and after `{% endraw %}`, which
/// minijinja's would remove: a comment without markers becomes an empty interpolation, and a raw block
/// becomes its text, its tag openings interpolated as strings and the raw tags' markers,
/// `trimBlocks` and `lstripBlocks` applied here.
pub(crate) fn translate_template(
    source: &str,
    syntax: Syntax,
    trim_blocks: bool,
    lstrip_blocks: bool,
) -> Result<String, SyntaxError> {
    let (open_expr, _) = crate::render::delimiters(syntax);
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    // `{% switch %}` blocks open (their numbers), and how many were opened so far.
    let mut switches: Vec<usize> = Vec::new();
    let mut switch_count = 0;
    let shared = shared_names(source);
    // Inside a macro the shared names are the macro's own (nunjitsu isolates macros).
    let mut macros = 0usize;
    if !shared.is_empty() {
        out.push_str(&format!(
            "{{% set {VARS} = __js_namespace() %}}{open_expr} \"\" }}}}"
        ));
    }
    loop {
        let next = [open_expr, "{%", "{#"]
            .iter()
            .filter_map(|o| rest.find(o).map(|at| (at, *o)))
            .min_by_key(|(at, o)| (*at, usize::MAX - o.len()));
        let Some((at, open)) = next else {
            out.push_str(rest);
            return Ok(out);
        };
        out.push_str(&rest[..at]);
        let body_start = at + open.len();
        match open {
            "{#" => {
                let end = rest[body_start..]
                    .find("#}")
                    .ok_or_else(|| tag_error(source, rest, at, "Unterminated comment tag"))?;
                let comment = &rest[at..body_start + end + 2];
                if comment.starts_with("{#-") || comment.ends_with("-#}") {
                    out.push_str(comment);
                } else {
                    // Nothing, yet a stop for the white-space markers of the tags around it.
                    out.push_str(open_expr);
                    out.push_str(" \"\" }}");
                }
                rest = &rest[body_start + end + 2..];
            }
            "{%" => {
                let end = find_close(rest, body_start, "%}")
                    .ok_or_else(|| tag_error(source, rest, at, "Unterminated block tag"))?;
                let code = &rest[body_start..end];
                let after = &rest[end + 2..];
                let (lead, inner, trail) = split_markers(code);
                let name = inner
                    .trim_start()
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or("");
                if name == "raw" || name == "verbatim" {
                    let end_tag = format!("end{name}");
                    let (body, tail) = find_end_raw(after, name).ok_or_else(|| {
                        let consumed = source.len() - rest.len();
                        let origin = Origin::after(&source[..consumed + at]);
                        SyntaxError::new(format!(
                            "Template error at line {}, column {}: Missing \"{end_tag}\" tag",
                            origin.line + 1,
                            origin.column + 1
                        ))
                    })?;
                    let mut body = body;
                    let mut tail = tail;
                    if lead == "-" {
                        let kept = out.trim_end().len();
                        out.truncate(kept);
                    } else if lstrip_blocks {
                        lstrip_line(&mut out);
                    }
                    if trim_blocks {
                        body = body
                            .strip_prefix("\r\n")
                            .or_else(|| body.strip_prefix('\n'))
                            .unwrap_or(body);
                    }
                    // nunjitsu applies the opening tag's `-%}` after the closing tag.
                    if trail == "-" {
                        tail = tail.trim_start();
                    }
                    // The body stays text (so later markers trim it as nunjitsu's text);
                    // only the openings of tags in it become string interpolations.
                    escape_openings(body, open_expr, &mut out);
                    rest = tail;
                    continue;
                }
                let statement = match name {
                    // minijinja has no `switch`: an if/elif chain over a variable, with
                    // nunjitsu's `===` and its fall-through of a case with an empty body.
                    "switch" => {
                        switch_count += 1;
                        switches.push(switch_count);
                        let value = translate_expression(inner.trim()[6..].trim())?;
                        format!("set __js_switch{switch_count} = {value} %}}{{% if false")
                    }
                    "case" => {
                        let n = *switches
                            .last()
                            .ok_or_else(|| SyntaxError::new("case outside switch"))?;
                        let mut conditions = vec![inner.trim()[4..].trim().to_owned()];
                        let mut tail = after;
                        // Cases with empty bodies share the next case's body.
                        while let Some(next) = tail.strip_prefix("{%") {
                            let Some(close) = find_close(tail, 2, "%}") else {
                                break;
                            };
                            let (_, next_inner, _) = split_markers(&next[..close - 2]);
                            let Some(condition) = next_inner.trim().strip_prefix("case ") else {
                                break;
                            };
                            conditions.push(condition.trim().to_owned());
                            tail = &tail[close + 2..];
                        }
                        let tests: Result<Vec<String>, SyntaxError> = conditions
                            .iter()
                            .map(|c| {
                                Ok(format!(
                                    "__js_compare(\"===\", __js_switch{n}, {})",
                                    translate_expression(c)?
                                ))
                            })
                            .collect();
                        rest = tail;
                        out.push_str("{%");
                        out.push_str(lead);
                        out.push_str(&format!(" elif {} ", tests?.join(" or ")));
                        out.push_str(trail);
                        out.push_str("%}");
                        continue;
                    }
                    "default" if !switches.is_empty() => "else".to_owned(),
                    "endswitch" => {
                        switches.pop();
                        "endif".to_owned()
                    }
                    _ => {
                        match name {
                            "macro" | "call" => macros += 1,
                            "endmacro" | "endcall" => macros = macros.saturating_sub(1),
                            _ => {}
                        }
                        let visible: &[String] = if macros == 0 { &shared } else { &[] };
                        translate_statement(inner.trim(), visible)?
                    }
                };
                out.push_str("{%");
                out.push_str(lead);
                out.push(' ');
                out.push_str(&statement);
                out.push(' ');
                out.push_str(trail);
                out.push_str("%}");
                rest = after;
            }
            _ => {
                let end = find_close(rest, body_start, "}}")
                    .ok_or_else(|| tag_error(source, rest, at, "Unterminated variable tag"))?;
                let (lead, inner, trail) = split_markers(&rest[body_start..end]);
                out.push_str(open);
                out.push_str(lead);
                out.push(' ');
                let visible: &[String] = if macros == 0 { &shared } else { &[] };
                let inner_at = body_start + lead.len();
                let consumed = source.len() - rest.len();
                let origin = Origin::after(&source[..consumed + inner_at]);
                out.push_str(&translate_located(inner, visible, origin)?);
                out.push(' ');
                out.push_str(trail);
                out.push_str("}}");
                rest = &rest[end + 2..];
            }
        }
    }
}

/// Drops the spaces and tabs that begin the current (last) line of `out`, when nothing else
/// is on it: `lstripBlocks` before a block tag.
pub(super) fn lstrip_line(out: &mut String) {
    let line_start = out.rfind('\n').map_or(0, |at| at + 1);
    if out[line_start..].chars().all(|c| c == ' ' || c == '\t') {
        out.truncate(line_start);
    }
}

/// Copies raw text, turning each tag opening in it (`${{`, `{%`, `{#`) into an interpolated
/// string so minijinja prints it instead of reading a tag.
pub(super) fn escape_openings(text: &str, open_expr: &str, out: &mut String) {
    let mut rest = text;
    while !rest.is_empty() {
        let found = [open_expr, "{%", "{#"]
            .into_iter()
            .find(|o| rest.starts_with(o));
        match found {
            Some(opening) => {
                out.push_str(open_expr);
                out.push(' ');
                emit_string(opening, out);
                out.push_str(" }}");
                rest = &rest[opening.len()..];
            }
            None => {
                let c = rest.chars().next().expect("not empty");
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
}

/// The body of a raw block up to its closing tag, and the text after that tag. As in
/// nunjitsu, only `{% endraw %}` without markers closes it, and inner `{% raw %}` tags nest.
pub(super) fn find_end_raw<'a>(source: &'a str, name: &str) -> Option<(&'a str, &'a str)> {
    let closing = format!("end{name}");
    let mut depth = 1;
    let mut from = 0;
    while let Some(at) = source[from..].find("{%") {
        let start = from + at;
        let after_open = &source[start + 2..];
        let inner = after_open.trim_start();
        let marker = if after_open.starts_with('-') {
            None
        } else if let Some(rest) = inner.strip_prefix(closing.as_str()) {
            Some((false, rest))
        } else {
            inner.strip_prefix(name).map(|rest| (true, rest))
        };
        match marker.and_then(|(open, rest)| Some((open, rest.trim_start().strip_prefix("%}")?))) {
            Some((open, after)) => {
                let end = source.len() - after.len();
                if open {
                    depth += 1;
                } else {
                    depth -= 1;
                    if depth == 0 {
                        return Some((&source[..start], after));
                    }
                }
                from = end;
            }
            None => from = start + 2,
        }
    }
    None
}

pub(super) fn translate_statement(code: &str, shared: &[String]) -> Result<String, SyntaxError> {
    let translate_expression = |e: &str| translate_expression_in(e, shared);
    let target = |t: &String| {
        if shared.contains(t) {
            format!("{VARS}.{t}")
        } else {
            t.clone()
        }
    };
    let (name, args) = match code.find(|c: char| c.is_whitespace()) {
        Some(at) => (&code[..at], code[at..].trim()),
        None => (code, ""),
    };
    Ok(match name {
        "if" | "elif" | "elseif" => format!(
            "{} __js_truthy({})",
            if name == "if" { "if" } else { "elif" },
            translate_expression(args)?
        ),
        "for" => {
            let split =
                top_level_keyword(args, "in").ok_or_else(|| SyntaxError::new("Expected in"))?;
            let targets = loop_targets(&args[..split])?;
            let iterable = translate_expression(&args[split + 2..])?;
            format!(
                "for {} in __js_iter({iterable}, {})",
                targets.join(", "),
                targets.len()
            )
        }
        "set" => match top_level_char(args, '=') {
            Some(at) => {
                let targets = loop_targets(&args[..at])?;
                let value = translate_expression(&args[at + 1..])?;
                let first = target(&targets[0]);
                let mut s = format!("set {first} = {value}");
                for t in &targets[1..] {
                    s.push_str(&format!(" %}}{{% set {} = {first}", target(t)));
                }
                s
            }
            None => code.to_owned(),
        },
        _ => code.to_owned(),
    })
}

/// Where `keyword` stands alone at the top level of `code` (outside strings and brackets).
pub(super) fn top_level_keyword(code: &str, keyword: &str) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut quote = None;
    let mut depth = 0i32;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if let Some(q) = quote {
            if c == b'\\' {
                i += 1;
            } else if c == q {
                quote = None;
            }
        } else {
            match c {
                b'\'' | b'"' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ if depth == 0
                    && code[i..].starts_with(keyword)
                    && (i == 0 || !is_ident(bytes[i - 1]))
                    && !bytes.get(i + keyword.len()).copied().is_some_and(is_ident) =>
                {
                    return Some(i);
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

pub(super) fn top_level_char(code: &str, wanted: char) -> Option<usize> {
    let bytes = code.as_bytes();
    let mut quote = None;
    let mut depth = 0i32;
    for (i, &c) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            b'\'' | b'"' => quote = Some(c),
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth -= 1,
            _ if depth == 0
                && c == wanted as u8
                && bytes.get(i + 1) != Some(&b'=')
                && (i == 0 || !matches!(bytes[i - 1], b'=' | b'!' | b'<' | b'>')) =>
            {
                return Some(i);
            }
            _ => {}
        }
    }
    None
}

pub(super) fn is_ident(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

/// When `source` is one interpolation and nothing else (white space around it counts only
/// where a `-` marker trims it), the expression inside it.
pub(crate) fn sole_expression(source: &str, syntax: Syntax) -> Option<&str> {
    let (open, _) = crate::render::delimiters(syntax);
    let start = source.find(open)?;
    let body_start = start + open.len();
    let end = find_close(source, body_start, "}}")?;
    let (lead, inner, trail) = split_markers(&source[body_start..end]);
    let before = &source[..start];
    let after = &source[end + 2..];
    let before_ok = before.is_empty() || (lead == "-" && before.trim().is_empty());
    let after_ok = after.is_empty() || (trail == "-" && after.trim().is_empty());
    (before_ok && after_ok).then_some(inner)
}
