//! `${VAR}` substitution in string values (`$${VAR}` is a literal, `${VAR:-fallback}` falls
//! back when unset or empty).

use serde_json::Value;

use crate::parse::{KeyError, Segment};

/// Replaces `${VAR}` in every string value, Backstage's way: `$${...}` is a literal
/// `${...}`, `${VAR:-fallback}` uses the fallback when the variable is unset or empty,
/// and text like `${{ parameters.name }}` (no closing brace before an opening one) is left
/// alone.
pub(crate) fn substitute_env(
    value: &mut Value,
    path: &mut Vec<Segment>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), KeyError> {
    match value {
        Value::String(text) if text.contains("${") => {
            *text = substitute(text, env).map_err(|message| KeyError {
                path: path.clone(),
                message,
            })?;
        }
        Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                path.push(Segment::Index(index));
                substitute_env(item, path, env)?;
                path.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                path.push(Segment::Key(key.clone()));
                substitute_env(item, path, env)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}

pub(crate) fn substitute(
    input: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(start) = rest.find("${") {
        let body_start = start + 2;
        let end = rest[body_start..]
            .find(['{', '}'])
            .filter(|&i| rest.as_bytes()[body_start + i] == b'}');
        let Some(end) = end.map(|i| body_start + i) else {
            // Not a reference: keep the `$` and look further.
            out.push_str(&rest[..start + 1]);
            rest = &rest[start + 1..];
            continue;
        };
        if rest[..start].ends_with('$') {
            out.push_str(&rest[..start - 1]);
            out.push_str(&rest[start..=end]);
        } else {
            out.push_str(&rest[..start]);
            out.push_str(&lookup_env(&rest[body_start..end], env)?);
        }
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

pub(crate) fn lookup_env(
    body: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let (name, fallback) = match body.split_once(":-") {
        Some((name, fallback)) => (name.trim(), Some(fallback)),
        None => (body.trim(), None),
    };
    if name.is_empty() {
        return Err(format!(
            "`${{{body}}}` names no environment variable; write `$${{{body}}}` for the literal text"
        ));
    }
    match (env(name), fallback) {
        (Some(value), Some(fallback)) if value.is_empty() => Ok(fallback.to_owned()),
        (Some(value), _) => Ok(value),
        (None, Some(fallback)) => Ok(fallback.to_owned()),
        (None, None) => Err(format!("environment variable {name} is not set")),
    }
}
