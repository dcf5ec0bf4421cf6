//! Backstage's template filters (`parseRepoUrl`, `parseEntityRef`, `pick`,
//! `projectSlug`) and the Nunjucks built-ins that minijinja lacks (`dump`, `truncate`,
//! `wordcount`, `center`, `striptags`, `nl2br`, ...).

use minijinja::value::{Kwargs, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::Syntax;
use super::js::{to_js_string, to_json};

/// The kind of an SCM host, which decides the query parameters `parseRepoUrl` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ScmKind {
    Github,
    Gitlab,
    BitbucketCloud,
    BitbucketServer,
    Azure,
    Gitea,
    Gerrit,
}

/// A configured SCM host (Backstage's `integrations.<kind>[].host`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScmIntegration {
    pub host: String,
    pub kind: ScmKind,
}

impl ScmIntegration {
    /// The hosts Backstage knows without configuration.
    pub fn defaults() -> Vec<Self> {
        [
            ("github.com", ScmKind::Github),
            ("gitlab.com", ScmKind::Gitlab),
            ("bitbucket.org", ScmKind::BitbucketCloud),
            ("dev.azure.com", ScmKind::Azure),
        ]
        .into_iter()
        .map(|(host, kind)| Self {
            host: host.into(),
            kind,
        })
        .collect()
    }
}

pub(crate) fn register(
    env: &mut Environment<'static>,
    integrations: &[ScmIntegration],
    syntax: Syntax,
) {
    let repo_integrations = integrations.to_vec();
    env.add_filter("parseRepoUrl", move |url: String| -> Result<Value, Error> {
        parse_repo_url(&url, &repo_integrations)
            .map(|parsed| Value::from(minijinja::value::Serde(parsed)))
            .map_err(|m| Error::new(ErrorKind::InvalidOperation, m))
    });
    let slug_integrations = integrations.to_vec();
    env.add_filter("projectSlug", move |url: String| -> Result<String, Error> {
        let parsed = parse_repo_url(&url, &slug_integrations)
            .map_err(|m| Error::new(ErrorKind::InvalidOperation, m))?;
        let owner = parsed
            .get("owner")
            .and_then(Json::as_str)
            .unwrap_or_default();
        let repo = parsed
            .get("repo")
            .and_then(Json::as_str)
            .unwrap_or_default();
        Ok(format!("{owner}/{repo}"))
    });
    env.add_filter("parseEntityRef", parse_entity_ref_filter);
    env.add_filter("pick", pick);
    env.add_filter("dump", dump);
    if syntax == Syntax::Cookiecutter {
        env.add_filter("jsonify", dump);
    }
    env.add_filter("truncate", truncate);
    env.add_filter("wordcount", |s: String| s.split_whitespace().count());
    env.add_filter("center", center);
    env.add_filter("striptags", striptags);
    env.add_filter("nl2br", |s: String| {
        s.replace("\r\n", "<br />\n").replace('\n', "<br />\n")
    });
    env.add_filter("forceescape", |s: String| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', "&#39;")
    });
    env.add_test("truthy", |v: Value| v.is_true());
    env.add_test("falsy", |v: Value| !v.is_true());
    env.add_test("null", |v: Value| v.is_none());
    env.add_test("callable", |v: Value| v.kind() == ValueKind::Plain);
}

/// `parseRepoUrl`: `github.com?owner=o&repo=r` → `{host, owner, repo}`, checked against
/// the configured SCM hosts.
pub fn parse_repo_url(
    url: &str,
    integrations: &[ScmIntegration],
) -> Result<Map<String, Json>, String> {
    let (authority, query) = url.split_once('?').unwrap_or((url, ""));
    let host = authority.trim_end_matches('/').to_owned();
    if host.is_empty() || host.contains('/') {
        return Err(format!("Invalid repo URL passed to publisher: {url}"));
    }
    let Some(integration) = integrations
        .iter()
        .find(|i| i.host.eq_ignore_ascii_case(&host))
    else {
        return Err(format!(
            "No matching integration configuration for host {host}, please check your integrations config"
        ));
    };
    let mut out = Map::new();
    out.insert("host".into(), Json::String(host));
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if matches!(
            key,
            "owner" | "repo" | "organization" | "workspace" | "project"
        ) {
            let value = percent_decode(value);
            out.insert(key.into(), Json::String(value.trim_matches('/').to_owned()));
        }
    }
    let required: &[&str] = match integration.kind {
        ScmKind::BitbucketCloud => &["workspace", "project", "repo"],
        ScmKind::BitbucketServer | ScmKind::Azure => &["project", "repo"],
        ScmKind::Gitlab if out.contains_key("project") => &[],
        ScmKind::Gitlab | ScmKind::Github => &["owner", "repo"],
        ScmKind::Gitea | ScmKind::Gerrit => &["repo"],
    };
    for param in required {
        if out
            .get(*param)
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(format!(
                "Invalid repo URL passed to publisher: {url}, missing {param}"
            ));
        }
    }
    Ok(out)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `parseEntityRef`: `kind:namespace/name` → `{kind, namespace, name}`, with defaults.
pub fn parse_entity_ref(
    reference: &str,
    default_kind: Option<&str>,
    default_namespace: Option<&str>,
) -> Result<Map<String, Json>, String> {
    let (kind, rest) = match reference.split_once(':') {
        Some((k, r)) => (Some(k), r),
        None => (None, reference),
    };
    let (namespace, name) = match rest.split_once('/') {
        Some((ns, n)) => (Some(ns), n),
        None => (None, rest),
    };
    let kind = kind.or(default_kind).ok_or_else(|| {
        format!("Entity reference \"{reference}\" had missing or empty kind (e.g. did not start with \"component:\" or similar)")
    })?;
    let namespace = namespace.or(default_namespace).unwrap_or("default");
    if kind.is_empty() || namespace.is_empty() || name.is_empty() {
        return Err(format!(
            "Entity reference \"{reference}\" was not on the form [<kind>:][<namespace>/]<name>"
        ));
    }
    let mut out = Map::new();
    out.insert("kind".into(), kind.into());
    out.insert("namespace".into(), namespace.into());
    out.insert("name".into(), name.into());
    Ok(out)
}

fn parse_entity_ref_filter(value: Value, options: Option<Value>) -> Result<Value, Error> {
    let opt = |key: &str| -> Option<String> {
        options
            .as_ref()
            .and_then(|o| o.get_attr(key).ok())
            .and_then(|v| v.as_str().map(str::to_owned))
    };
    let (default_kind, default_namespace) = (opt("defaultKind"), opt("defaultNamespace"));
    let parsed = match value.kind() {
        ValueKind::String => parse_entity_ref(
            value.as_str().unwrap_or_default(),
            default_kind.as_deref(),
            default_namespace.as_deref(),
        ),
        ValueKind::Map => {
            let field = |k: &str| {
                value
                    .get_attr(k)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
            };
            let kind = field("kind").or(default_kind);
            let namespace = field("namespace").or(default_namespace);
            let name = field("name").unwrap_or_default();
            let reference = format!(
                "{}{}{name}",
                kind.map(|k| format!("{k}:")).unwrap_or_default(),
                namespace.map(|n| format!("{n}/")).unwrap_or_default()
            );
            parse_entity_ref(&reference, None, None)
        }
        _ => Err("Entity reference must be a string or an object".to_owned()),
    };
    parsed
        .map(|m| Value::from(minijinja::value::Serde(m)))
        .map_err(|m| Error::new(ErrorKind::InvalidOperation, m))
}

/// `pick`: lodash `get(obj, path)` with dot and bracket paths.
fn pick(value: Value, path: String) -> Value {
    let mut current = value;
    for segment in path_segments(&path) {
        let next = match segment.parse::<i64>() {
            Ok(i) if matches!(current.kind(), ValueKind::Seq) => current.get_item(&Value::from(i)),
            _ => current.get_attr(&segment),
        };
        current = match next {
            Ok(v) if !v.is_undefined() => v,
            _ => return Value::UNDEFINED,
        };
    }
    current
}

fn path_segments(path: &str) -> Vec<String> {
    path.replace('[', ".")
        .replace(']', "")
        .split('.')
        .map(|s| s.trim_matches(|c| c == '\'' || c == '"').to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `dump`: `JSON.stringify(value, null, indent)`.
fn dump(value: Value, indent: Option<Value>) -> Result<Value, Error> {
    let Some(json) = to_json(&value) else {
        return Ok(Value::UNDEFINED);
    };
    let indent = match indent {
        Some(v) if v.kind() == ValueKind::Number => {
            " ".repeat(v.as_i64().unwrap_or(0).clamp(0, 10) as usize)
        }
        Some(v) if v.kind() == ValueKind::String => {
            v.as_str().unwrap_or_default().chars().take(10).collect()
        }
        _ => String::new(),
    };
    if indent.is_empty() {
        return Ok(Value::from(json.to_string()));
    }
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(&json, &mut ser)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(Value::from(String::from_utf8_lossy(&out).into_owned()))
}

/// `truncate(length=255, killwords=false, end='...')`.
fn truncate(
    s: Value,
    length: Option<usize>,
    killwords: Option<bool>,
    end: Option<String>,
    _: Kwargs,
) -> String {
    let s = to_js_string(&s);
    let length = length.unwrap_or(255);
    if s.chars().count() <= length {
        return s;
    }
    let end = end.unwrap_or_else(|| "...".into());
    let mut cut: String = s.chars().take(length).collect();
    if !killwords.unwrap_or(false)
        && let Some(space) = cut.rfind(' ')
    {
        cut.truncate(space);
    }
    cut + &end
}

/// `center(width=80)`.
fn center(s: String, width: Option<usize>) -> String {
    let width = width.unwrap_or(80).min(1 << 16);
    let len = s.chars().count();
    if len >= width {
        return s;
    }
    let left = (width - len) / 2;
    let right = width - len - left;
    format!("{}{s}{}", " ".repeat(left), " ".repeat(right))
}

/// `striptags`: removes tags and collapses whitespace.
fn striptags(s: String) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}
