//! nunjitsu's regular-expression literals (`r/[^a-z]/g`, flags `g`, `i`, `m`, `y`), which
//! Backstage 4.2.0 lets the `replace` filter execute: the literal is rewritten into a call of
//! [`REGEX_FUNCTION`] that builds a [`JsRegex`], and `replace` applies it with JavaScript's
//! `String.prototype.replace` semantics (`$1`, `$&`, `$$`, first match without `g`).
//!
//! Patterns run on `fancy-regex` (lookaround and back-references as in JavaScript) with `\d`,
//! `\w` and `\b` narrowed to ASCII, as JavaScript's are.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr};
use minijinja::{Error, ErrorKind, Value};

/// The function a regex literal is rewritten into; not meant to be called by templates.
pub(crate) const REGEX_FUNCTION: &str = "__nunjucks_regex";

/// A compiled regular-expression literal.
#[derive(Debug)]
pub(crate) struct JsRegex {
    source: String,
    flags: String,
    regex: fancy_regex::Regex,
}

impl JsRegex {
    pub(crate) fn new(source: &str, flags: &str) -> Result<Self, String> {
        let mut prefix = String::new();
        if flags.contains('i') {
            prefix.push('i');
        }
        if flags.contains('m') {
            prefix.push('m');
        }
        let translated = translate(source);
        let pattern = if prefix.is_empty() {
            translated
        } else {
            format!("(?{prefix}){translated}")
        };
        let regex = fancy_regex::RegexBuilder::new(&pattern)
            .build()
            .map_err(|_| "Invalid regular-expression literal".to_owned())?;
        Ok(Self {
            source: source.to_owned(),
            flags: flags.to_owned(),
            regex,
        })
    }

    /// The regex a template value holds, if it is one.
    pub(crate) fn from_value(value: &Value) -> Option<Arc<JsRegex>> {
        value.downcast_object::<JsRegex>()
    }

    /// `text.replace(regex, replacement)`.
    pub(crate) fn replace(&self, text: &str, replacement: &str) -> String {
        let global = self.flags.contains('g');
        let sticky = self.flags.contains('y');
        let mut out = String::with_capacity(text.len());
        let mut last = 0;
        for captures in self.regex.captures_iter(text) {
            let Ok(captures) = captures else { break };
            let whole = captures.get(0).expect("group 0 always matches");
            if sticky && whole.start() != last {
                break;
            }
            out.push_str(&text[last..whole.start()]);
            expand(&mut out, replacement, text, &captures);
            last = whole.end();
            if !global {
                break;
            }
        }
        out.push_str(&text[last..]);
        out
    }

    /// `regex.test(text)` (a fresh `lastIndex`, as each literal is a new regex).
    pub(crate) fn test(&self, text: &str) -> bool {
        self.regex.is_match(text).unwrap_or(false)
    }

    /// `text.split(regex)`: the pieces between matches, with capture groups spliced in.
    pub(crate) fn split(&self, text: &str) -> Vec<String> {
        if text.is_empty() {
            return if self.test(text) {
                Vec::new()
            } else {
                vec![String::new()]
            };
        }
        let mut out = Vec::new();
        let mut last = 0;
        for captures in self.regex.captures_iter(text) {
            let Ok(captures) = captures else { break };
            let whole = captures.get(0).expect("group 0 always matches");
            if whole.end() == whole.start() && (whole.start() == 0 || whole.start() >= text.len()) {
                continue;
            }
            out.push(text[last..whole.start()].to_owned());
            for group in captures.iter().skip(1) {
                out.push(group.map(|g| g.as_str().to_owned()).unwrap_or_default());
            }
            last = whole.end();
        }
        out.push(text[last..].to_owned());
        out
    }
}

impl fmt::Display for JsRegex {
    /// `runtimeRegexToString`: `/source/flags`, flags in `gimy` order.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = if self.source.is_empty() {
            "(?:)".to_owned()
        } else {
            self.source
                .replace('\n', "\\n")
                .replace('\r', "\\r")
                .replace('\u{2028}', "\\u2028")
                .replace('\u{2029}', "\\u2029")
        };
        let flags: String = "gimy".chars().filter(|c| self.flags.contains(*c)).collect();
        write!(f, "/{source}/{flags}")
    }
}

impl Object for JsRegex {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&**self, f)
    }
}

/// How many compiled literals a thread keeps; past it the cache starts again.
const COMPILED_LIMIT: usize = 256;

thread_local! {
    /// Compiled literals by source and flags. A literal is evaluated each time its
    /// expression is (in a loop, in every file of a skeleton); it is compiled once.
    static COMPILED: RefCell<HashMap<(String, String), Arc<JsRegex>>> =
        RefCell::new(HashMap::new());
}

/// `__nunjucks_regex(source, flags)`.
pub(crate) fn regex_function(source: String, flags: String) -> Result<Value, Error> {
    let key = (source, flags);
    if let Some(compiled) = COMPILED.with_borrow(|cache| cache.get(&key).cloned()) {
        return Ok(Value::from_dyn_object(compiled));
    }
    let compiled =
        Arc::new(JsRegex::new(&key.0, &key.1).map_err(|m| Error::new(ErrorKind::SyntaxError, m))?);
    COMPILED.with_borrow_mut(|cache| {
        if cache.len() >= COMPILED_LIMIT {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
    });
    Ok(Value::from_dyn_object(compiled))
}

/// JavaScript's replacement patterns: `$$`, `$&`, `` $` ``, `$'`, `$1`…`$99`, `$<name>`.
fn expand(
    out: &mut String,
    replacement: &str,
    text: &str,
    captures: &fancy_regex::Captures<'_, str>,
) {
    let whole = captures.get(0).expect("group 0 always matches");
    let groups = captures.len() - 1;
    let b = replacement.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' || i + 1 >= b.len() {
            let c = replacement[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
            continue;
        }
        match b[i + 1] {
            b'$' => {
                out.push('$');
                i += 2;
            }
            b'&' => {
                out.push_str(whole.as_str());
                i += 2;
            }
            b'`' => {
                out.push_str(&text[..whole.start()]);
                i += 2;
            }
            b'\'' => {
                out.push_str(&text[whole.end()..]);
                i += 2;
            }
            b'0'..=b'9' => {
                let one = usize::from(b[i + 1] - b'0');
                let two = b
                    .get(i + 2)
                    .filter(|c| c.is_ascii_digit())
                    .map(|c| one * 10 + usize::from(c - b'0'));
                match two {
                    Some(n) if (1..=groups).contains(&n) => {
                        out.push_str(captures.get(n).map_or("", |m| m.as_str()));
                        i += 3;
                    }
                    _ if (1..=groups).contains(&one) => {
                        out.push_str(captures.get(one).map_or("", |m| m.as_str()));
                        i += 2;
                    }
                    _ => {
                        out.push('$');
                        i += 1;
                    }
                }
            }
            b'<' => match replacement[i + 2..].find('>') {
                Some(end) => {
                    let name = &replacement[i + 2..i + 2 + end];
                    out.push_str(captures.name(name).map_or("", |m| m.as_str()));
                    i += 2 + end + 1;
                }
                None => {
                    out.push('$');
                    i += 1;
                }
            },
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
}

/// A JavaScript pattern in Rust's syntax: `\d`, `\w`, `\b` and their negations are ASCII.
fn translate(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str("[0-9]"),
            Some('D') => out.push_str("[^0-9]"),
            Some('w') => out.push_str("[0-9A-Za-z_]"),
            Some('W') => out.push_str("[^0-9A-Za-z_]"),
            Some('b') => out.push_str("(?-u:\\b)"),
            Some('B') => out.push_str("(?-u:\\B)"),
            Some('/') => out.push('/'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// At `i` in an expression: when an `r/…/flags` literal starts there, the call it becomes
/// and the literal's length. The literal follows nunjitsu's scanner: an `r` that starts an
/// identifier, directly followed by `/`; `\/` does not end it; flags are `gimy`.
pub(crate) fn rewrite_literal(expr: &str, i: usize) -> Option<(String, usize)> {
    let rest = &expr[i..];
    if !rest.starts_with("r/") {
        return None;
    }
    let before = expr[..i].chars().next_back();
    if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == '.') {
        return None;
    }
    let mut pattern = String::new();
    let mut backslashes = 0;
    let mut end = None;
    for (offset, c) in rest[2..].char_indices() {
        match c {
            '\\' => {
                pattern.push(c);
                backslashes += 1;
            }
            '/' if backslashes % 2 == 0 => {
                end = Some(2 + offset + 1);
                break;
            }
            c => {
                pattern.push(c);
                backslashes = 0;
            }
        }
    }
    let mut end = end?;
    let mut flags = String::new();
    while let Some(c) = rest[end..].chars().next() {
        if !"gimy".contains(c) {
            break;
        }
        flags.push(c);
        end += 1;
    }
    let quoted = |s: &str| {
        let mut q = String::from("\"");
        for c in s.chars() {
            match c {
                '\\' => q.push_str("\\\\"),
                '"' => q.push_str("\\\""),
                '\n' => q.push_str("\\n"),
                '\r' => q.push_str("\\r"),
                c => q.push(c),
            }
        }
        q.push('"');
        q
    };
    Some((
        format!("{REGEX_FUNCTION}({}, {})", quoted(&pattern), quoted(&flags)),
        end,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(source: &str, flags: &str, text: &str, replacement: &str) -> String {
        JsRegex::new(source, flags)
            .unwrap()
            .replace(text, replacement)
    }

    #[test]
    fn replaces_the_first_match_or_every_match_with_g() {
        assert_eq!(replace("-", "", "a-b-c", "+"), "a+b-c");
        assert_eq!(replace("[-_]", "g", "a-b_c", "."), "a.b.c");
        assert_eq!(replace("hello", "gi", "Hello HELLO", "bye"), "bye bye");
        assert_eq!(replace(r"^\s+|\s+$", "g", "  trim me  ", ""), "trim me");
    }

    #[test]
    fn expands_javascript_replacement_patterns() {
        assert_eq!(
            replace(r"(\w+) (\w+)", "", "john smith", "$2, $1"),
            "smith, john"
        );
        assert_eq!(replace("b", "g", "abc", "[$&]"), "a[b]c");
        assert_eq!(replace("b", "", "abc", "$$"), "a$c");
        assert_eq!(replace("b", "", "abc", "$`$'"), "aacc");
        assert_eq!(replace("b", "", "abc", "$3"), "a$3c");
    }

    #[test]
    fn word_and_digit_classes_are_ascii_as_in_javascript() {
        assert_eq!(replace(r"\w", "g", "aé1", "x"), "xéx");
        assert_eq!(replace(r"\d", "g", "1٣", "x"), "x٣");
    }

    #[test]
    fn literals_are_rewritten_into_calls() {
        let expr = r#"x | replace(r/[^a-z]\/"/gi, '')"#;
        let at = expr.find("r/").unwrap();
        assert_eq!(
            rewrite_literal(expr, at),
            Some((format!(r#"{REGEX_FUNCTION}("[^a-z]\\/\"", "gi")"#), 14))
        );
        assert_eq!(rewrite_literal("var/2", 2), None);
        assert_eq!(rewrite_literal("r/unterminated", 0), None);
    }

    #[test]
    fn prints_as_javascript_prints_a_regex() {
        assert_eq!(JsRegex::new("a/b", "ig").unwrap().to_string(), "/a/b/gi");
        assert_eq!(JsRegex::new("", "").unwrap().to_string(), "/(?:)/");
    }
}
