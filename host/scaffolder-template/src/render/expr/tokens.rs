//! The tokeniser: an expression's tokens (names, numbers, strings, `r/…/` literals,
//! operators) with the byte offset where each starts.

use super::error::{SyntaxError, quoted};
use crate::render::filters::regex;

impl Tok {
    /// The token's text, as nunjitsu quotes it in messages.
    pub(super) fn text(&self) -> String {
        match self {
            Tok::Name(t) | Tok::Number(t) | Tok::Str(t) | Tok::Regex(t) => t.clone(),
            Tok::Op(op) => (*op).to_owned(),
            Tok::Eof => String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Name(String),
    Number(String),
    Str(String),
    /// An `r/…/` literal, already emitted as the call that builds it.
    Regex(String),
    Op(&'static str),
    Eof,
}

pub(super) const OPERATORS: &[&str] = &["===", "!==", "**", "//", "==", "!=", "<=", ">="];
pub(super) const SINGLE: &str = "()[]{}.,:|~+-*/%<>=";

pub(super) fn is_code_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{a0}')
}

/// The tokens of `source` and the byte offset where each starts.
pub(super) fn tokenize(source: &str) -> Result<(Vec<Tok>, Vec<usize>), SyntaxError> {
    let mut tokens: Vec<Tok> = Vec::new();
    let mut offsets: Vec<usize> = Vec::new();
    let bytes = source.as_bytes();
    let mut i = 0;
    while i < source.len() {
        let c = source[i..].chars().next().expect("in bounds");
        if is_code_whitespace(c) {
            i += c.len_utf8();
            continue;
        }
        let after_dot = matches!(tokens.last(), Some(Tok::Op(".")));
        if let Some(end) = scan_identifier(bytes, i, after_dot) {
            let name = &source[i..end];
            if name == "r"
                && bytes.get(end) == Some(&b'/')
                && let Some((call, len)) = regex::rewrite_literal(source, i)
            {
                offsets.push(i);
                tokens.push(Tok::Regex(call));
                i += len;
                continue;
            }
            offsets.push(i);
            tokens.push(Tok::Name(name.to_owned()));
            i = end;
            continue;
        }
        let after_operand = match tokens.last() {
            Some(Tok::Name(_) | Tok::Number(_) | Tok::Str(_) | Tok::Regex(_)) => true,
            Some(Tok::Op(op)) => matches!(*op, ")" | "]" | "}"),
            _ => false,
        };
        if c == '.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) && !after_operand {
            return Err(SyntaxError::at("Invalid numeric literal", i));
        }
        if c.is_ascii_digit() {
            let mut end = i;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if bytes.get(end) == Some(&b'.') {
                end += 1;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
            }
            if bytes
                .get(end)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            {
                return Err(SyntaxError::at("Invalid numeric literal", i));
            }
            offsets.push(i);
            tokens.push(Tok::Number(source[i..end].to_owned()));
            i = end;
            continue;
        }
        if c == '"' || c == '\'' {
            let (value, end) = read_string(source, i, c)?;
            offsets.push(i);
            tokens.push(Tok::Str(value));
            i = end;
            continue;
        }
        if let Some(op) = OPERATORS.iter().find(|op| source[i..].starts_with(**op)) {
            offsets.push(i);
            tokens.push(Tok::Op(op));
            i += op.len();
            continue;
        }
        match SINGLE.find(c) {
            Some(at) => {
                offsets.push(i);
                tokens.push(Tok::Op(&SINGLE[at..at + 1]));
                i += 1;
            }
            None => {
                return Err(SyntaxError::at(
                    format!("Unexpected character {}", quoted(&c.to_string())),
                    i,
                ));
            }
        }
    }
    offsets.push(source.len());
    tokens.push(Tok::Eof);
    Ok((tokens, offsets))
}

/// The end of an identifier at `i` (`[A-Za-z_][A-Za-z0-9_]*`); after a `.`, leading digits
/// are part of it (`values.1password`).
pub(super) fn scan_identifier(bytes: &[u8], i: usize, allow_leading_digit: bool) -> Option<usize> {
    let mut start = i;
    if allow_leading_digit {
        while start < bytes.len() && bytes[start].is_ascii_digit() {
            start += 1;
        }
    }
    let first = *bytes.get(start)?;
    if !(first == b'_' || first.is_ascii_alphabetic()) {
        return None;
    }
    let mut end = start + 1;
    while end < bytes.len() && (bytes[end] == b'_' || bytes[end].is_ascii_alphanumeric()) {
        end += 1;
    }
    Some(end)
}

pub(super) fn read_string(
    source: &str,
    start: usize,
    quote: char,
) -> Result<(String, usize), SyntaxError> {
    let mut value = String::new();
    let mut chars = source[start + 1..].char_indices();
    while let Some((offset, c)) = chars.next() {
        if c == quote {
            return Ok((value, start + 1 + offset + 1));
        }
        if c != '\\' {
            value.push(c);
            continue;
        }
        let Some((_, escaped)) = chars.next() else {
            break;
        };
        value.push(match escaped {
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            other => other,
        });
    }
    Err(SyntaxError::at("Unterminated string literal", start))
}
