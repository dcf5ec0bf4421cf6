//! References to `steps.<id>` that can only render empty: an id no step has, a step that
//! has not run yet (a later one, or the step itself), or a member other than `output`.
//! Backstage renders them empty without a word (Nunjucks' member lookup of `undefined`
//! is `undefined`); the renderer does the same, and this check finds them by reading the
//! template, so a load (and a run) can warn about them.
//!
//! Read: the strings of each step's `input`, `if` and `each` (which see the steps before
//! it) and of `spec.output` (which sees them all), inside `${{ }}` and `{% %}`. A
//! reference is `steps` followed by `.id` or `['id']` (`["id"]`); member accesses of other
//! names (`parameters.steps.x`) and text in quotes are not references.
//! Deliberately absent: references computed at run time (`steps[name]`), which no reading
//! can resolve, and strings that bind a variable of their own named `steps` (`{% set %}`,
//! `{% for %}`), which are skipped whole.

use std::collections::BTreeSet;

use serde_json::{Map, Value as Json};

use crate::error::TemplateError;
use crate::yaml::{child_index, child_key};

/// Every reference of `steps` (each as written, with its `id`) and `output` that renders
/// empty, as a warning naming the JSON path of the string that holds it.
pub fn step_reference_warnings(
    steps: &[Map<String, Json>],
    output: &Map<String, Json>,
) -> Vec<TemplateError> {
    let ids: Vec<String> = steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            step.get("id")
                .and_then(Json::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("step-{}", index + 1))
        })
        .collect();
    let mut warnings = Vec::new();
    for (index, step) in steps.iter().enumerate() {
        let scope = Scope {
            ids: &ids,
            current: Some(index),
        };
        let path = child_index("spec.steps", index);
        for field in ["if", "each", "input"] {
            if let Some(value) = step.get(field) {
                check_value(value, &child_key(&path, field), &scope, &mut warnings);
            }
        }
    }
    let scope = Scope {
        ids: &ids,
        current: None,
    };
    for (key, value) in output {
        check_value(value, &child_key("spec.output", key), &scope, &mut warnings);
    }
    warnings
}

/// The step ids, and the step whose values are read (`None`: `spec.output`, after all).
struct Scope<'a> {
    ids: &'a [String],
    current: Option<usize>,
}

impl Scope<'_> {
    /// Why `steps.<id>` is empty here, or `None` when the step has run.
    fn problem(&self, id: &str, member: Option<&str>) -> Option<String> {
        let Some(position) = self.ids.iter().position(|known| known == id) else {
            let mut message = format!("`steps.{id}` names no step, so it renders empty; ");
            match self.current {
                Some(0) => message.push_str("no step runs before this one"),
                Some(current) => {
                    message.push_str("the steps before this one are: ");
                    message.push_str(&self.ids[..current].join(", "));
                }
                None if self.ids.is_empty() => message.push_str("the template has no steps"),
                None => {
                    message.push_str("the template's steps are: ");
                    message.push_str(&self.ids.join(", "));
                }
            }
            return Some(message);
        };
        match self.current {
            Some(current) if position > current => Some(format!(
                "`steps.{id}` runs after this step, so its output is empty here"
            )),
            Some(current) if position == current => Some(format!(
                "`steps.{id}` is this step, whose output is empty until it has run"
            )),
            _ => match member {
                Some(member) if member != "output" => Some(format!(
                    "`steps.{id}.{member}` is always empty: a step has only `output`"
                )),
                _ => None,
            },
        }
    }
}

fn check_value(value: &Json, path: &str, scope: &Scope, warnings: &mut Vec<TemplateError>) {
    match value {
        Json::String(text) => {
            let mut messages = BTreeSet::new();
            for reference in references(text) {
                let problem = match hyphenated_id(&reference, scope.ids) {
                    Some(message) => Some(message),
                    None => scope.problem(&reference.id, reference.member.as_deref()),
                };
                if let Some(message) = problem
                    && messages.insert(message.clone())
                {
                    warnings.push(TemplateError::at(path, message));
                }
            }
        }
        Json::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check_value(item, &child_index(path, index), scope, warnings);
            }
        }
        Json::Object(map) => {
            for (key, item) in map {
                check_value(item, &child_key(path, key), scope, warnings);
            }
        }
        _ => {}
    }
}

/// `steps.fetch-base` when a step `fetch-base` exists: Nunjucks reads `steps.fetch` minus
/// `base`.
fn hyphenated_id(reference: &Reference, ids: &[String]) -> Option<String> {
    let rest = reference.hyphenated.as_deref()?;
    let written = format!("{}-{rest}", reference.id);
    let id = ids.iter().find(|id| id.starts_with(&written))?;
    Some(format!(
        "`steps.{written}` reads `steps.{}` minus `{rest}`; write `steps['{id}']`: a step id \
         with `-` needs brackets",
        reference.id
    ))
}

/// `steps.<id>` or `steps['<id>']` as found in a string.
#[derive(Debug, PartialEq)]
struct Reference {
    id: String,
    /// The member read next by name (`output` in `steps.a.output`).
    member: Option<String>,
    /// `base` in `steps.fetch-base`: the name subtracted right after a dotted id.
    hyphenated: Option<String>,
}

/// The step references of a template string, in order; none when the string binds a
/// variable named `steps` itself.
fn references(text: &str) -> Vec<Reference> {
    let mut found = Vec::new();
    for (kind, code) in code_blocks(text) {
        let tokens = tokenize(code);
        if kind == Block::Tag && binds_steps(&tokens) {
            return Vec::new();
        }
        found.extend(references_in(&tokens));
    }
    found
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Expression,
    Tag,
}

/// The code of each `${{ … }}` and `{% … %}` of a string; `{# … #}` comments and the text
/// of `{% raw %}` blocks are not code.
fn code_blocks(text: &str) -> Vec<(Block, &str)> {
    let mut blocks = Vec::new();
    let mut rest = text;
    loop {
        let opening = ["${{", "{%", "{#"]
            .iter()
            .filter_map(|open| rest.find(open).map(|at| (at, *open)))
            .min();
        let Some((at, open)) = opening else {
            break;
        };
        let code = &rest[at + open.len()..];
        let (close, kind) = match open {
            "${{" => ("}}", Some(Block::Expression)),
            "{%" => ("%}", Some(Block::Tag)),
            _ => ("#}", None),
        };
        let Some(end) = find_close(code, close) else {
            // Unclosed: the renderer reports it; nothing after it is code.
            break;
        };
        rest = &code[end + close.len()..];
        if let Some(kind) = kind {
            let inner = &code[..end];
            blocks.push((kind, inner));
            if kind == Block::Tag && is_raw_start(inner) {
                // Skip to the matching end tag.
                match rest.find("endraw").or_else(|| rest.find("endverbatim")) {
                    Some(end) => rest = &rest[end..],
                    None => break,
                }
                match rest.find("%}") {
                    Some(end) => rest = &rest[end + 2..],
                    None => break,
                }
            }
        }
    }
    blocks
}

fn is_raw_start(tag: &str) -> bool {
    let word = tag.trim_matches(|c: char| c == '-' || c.is_whitespace());
    word == "raw" || word == "verbatim"
}

/// Where `close` ends the code, quotes skipped.
fn find_close(code: &str, close: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (at, c) in code.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => quote = Some(c),
            None if code[at..].starts_with(close) => return Some(at),
            None => {}
        }
    }
    None
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Str(String),
    Punct(char),
}

/// Names, quoted strings and punctuation; numbers are names here, which is harmless.
fn tokenize(code: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        if c == '\'' || c == '"' {
            let mut value = String::new();
            while let Some(next) = chars.next() {
                match next {
                    '\\' => value.extend(chars.next()),
                    _ if next == c => break,
                    _ => value.push(next),
                }
            }
            tokens.push(Token::Str(value));
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut name = String::from(c);
            while let Some(&next) = chars.peek() {
                if next.is_alphanumeric() || next == '_' || next == '$' {
                    name.push(next);
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Name(name));
        } else {
            tokens.push(Token::Punct(c));
        }
    }
    tokens
}

/// `{% set steps = … %}`, `{% for steps in … %}`, `{% for k, steps in … %}`.
fn binds_steps(tokens: &[Token]) -> bool {
    let Some(Token::Name(keyword)) = tokens.iter().find(|t| **t != Token::Punct('-')) else {
        return false;
    };
    if keyword != "set" && keyword != "for" {
        return false;
    }
    tokens
        .iter()
        .take_while(|t| **t != Token::Punct('=') && **t != Token::Name("in".into()))
        .any(|t| *t == Token::Name("steps".into()))
}

fn references_in(tokens: &[Token]) -> Vec<Reference> {
    let name = |i: usize| match tokens.get(i) {
        Some(Token::Name(n)) => Some(n.as_str()),
        _ => None,
    };
    let punct = |i: usize, c: char| tokens.get(i) == Some(&Token::Punct(c));
    let mut found = Vec::new();
    for i in 0..tokens.len() {
        if name(i) != Some("steps") || (i > 0 && punct(i - 1, '.')) {
            continue;
        }
        let (id, next) = if punct(i + 1, '.')
            && let Some(id) = name(i + 2)
        {
            (id.to_owned(), i + 3)
        } else if punct(i + 1, '[')
            && let Some(Token::Str(id)) = tokens.get(i + 2)
            && punct(i + 3, ']')
        {
            (id.clone(), i + 4)
        } else {
            continue;
        };
        let member = punct(next, '.').then(|| name(next + 1)).flatten();
        let hyphenated = (tokens.get(next - 1) != Some(&Token::Punct(']')) && punct(next, '-'))
            .then(|| name(next + 1))
            .flatten();
        found.push(Reference {
            id,
            member: member.map(str::to_owned),
            hyphenated: hyphenated.map(str::to_owned),
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<String> {
        references(text).into_iter().map(|r| r.id).collect()
    }

    #[test]
    fn references_are_read_only_in_code_and_only_from_the_steps_variable() {
        assert_eq!(ids("${{ steps.a.output }}"), ["a"]);
        assert_eq!(ids("x ${{ steps['b-c'] }} ${{steps[\"d\"]}}"), ["b-c", "d"]);
        assert_eq!(ids("{% if steps.e %}${{ steps.f }}{% endif %}"), ["e", "f"]);
        assert!(ids("steps.a outside code").is_empty());
        assert!(ids("${{ 'steps.a' }} ${{ parameters.steps.a }}").is_empty());
        assert!(ids("{# ${{ steps.a }} #}").is_empty());
        assert!(ids("{% raw %}${{ steps.a }}{% endraw %}").is_empty());
        assert_eq!(ids("${{ '}}' }} ${{ steps.g }}"), ["g"]);
        assert!(ids("${{ steps[name] }}").is_empty());
        assert!(ids("{% for steps in list %}${{ steps.a }}{% endfor %}").is_empty());
        assert!(ids("${{ steps.a").is_empty());
    }

    #[test]
    fn the_member_after_the_id_and_a_subtraction_are_kept() {
        let found = references("${{ steps.fetch-base.output }} ${{ steps['x'].outputs }}");
        assert_eq!(
            found,
            [
                Reference {
                    id: "fetch".into(),
                    member: None,
                    hyphenated: Some("base".into()),
                },
                Reference {
                    id: "x".into(),
                    member: Some("outputs".into()),
                    hyphenated: None,
                },
            ]
        );
    }
}
