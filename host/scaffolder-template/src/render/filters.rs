//! Backstage's template filters (`parseRepoUrl`, `parseEntityRef`, `pick`, `projectSlug`),
//! called as nunjitsu calls a registered filter: positional arguments only, the value and
//! arguments as plain JavaScript values, a thrown error reported as
//! `Template filter "<name>" failed: <message>`. The Nunjucks built-ins are in
//! [`super::nunjucks`].

use minijinja::value::{Rest, ValueKind, ValueOrKwargs};
use minijinja::{Environment, Error, ErrorKind, Value};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use nunjucks::{to_js_string, truthy};

use super::Syntax;

#[path = "nunjucks/mod.rs"]
pub(crate) mod nunjucks;
/// Regular-expression literals, also for JavaScript string methods (`.replace`, `.split`).
#[path = "regex.rs"]
pub(crate) mod regex;

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
    nunjucks::register(env, syntax);
    env.add_function(regex::REGEX_FUNCTION, regex::regex_function);
    let repo_integrations = integrations.to_vec();
    env.add_filter(
        "parseRepoUrl",
        move |input: Value, args: Rest<ValueOrKwargs>| {
            host_filter("parseRepoUrl", &args, || {
                let url = to_js_string(&input)?;
                let parsed = parse_repo_url(&url, &repo_integrations)?;
                Ok(Value::from(minijinja::value::Serde(Json::Object(parsed))))
            })
        },
    );
    let slug_integrations = integrations.to_vec();
    env.add_filter(
        "projectSlug",
        move |input: Value, args: Rest<ValueOrKwargs>| {
            host_filter("projectSlug", &args, || {
                let parsed = parse_repo_url(&to_js_string(&input)?, &slug_integrations)?;
                let part = |key: &str| {
                    parsed
                        .get(key)
                        .and_then(Json::as_str)
                        .unwrap_or("undefined")
                        .to_owned()
                };
                Ok(Value::from(format!("{}/{}", part("owner"), part("repo"))))
            })
        },
    );
    env.add_filter(
        "parseEntityRef",
        |input: Value, args: Rest<ValueOrKwargs>| {
            let context = args
                .first()
                .map(|a| Value::from(a.clone()))
                .unwrap_or_default();
            host_filter("parseEntityRef", &args, || {
                parse_entity_ref_value(&input, &context)
            })
        },
    );
    env.add_filter("pick", |input: Value, args: Rest<ValueOrKwargs>| {
        let arg = |i: usize| {
            args.get(i)
                .map(|a| Value::from(a.clone()))
                .unwrap_or_default()
        };
        let (path, default) = (arg(0), arg(1));
        host_filter("pick", &args, || Ok(lodash_get(&input, &path, &default)))
    });
}

/// Backstage's registered filters, in the order nunjitsu lists them for suggestions.
const BACKSTAGE_FILTERS: [&str; 4] = ["parseRepoUrl", "parseEntityRef", "pick", "projectSlug"];

/// nunjitsu's message for a text template that failed in a filter or a test, as
/// `fetch:template` reports it: `Template error at line L, column C: <what failed>` (the
/// position of the filter's or test's name), with nunjitsu's wording for an unknown filter
/// or test (and its `did you mean` suggestion). `None` for other failures.
pub(crate) fn diagnostic(source: &str, err: &Error, syntax: Syntax) -> Option<String> {
    let detail = err.detail().unwrap_or_default();
    let quoted_name = |prefix: &str| {
        let rest = detail.strip_prefix(prefix)?;
        Some(rest[..rest.find('"')?].to_owned())
    };
    let (what, name, is_test) = match err.kind() {
        ErrorKind::UnknownFilter => {
            let name = detail
                .strip_prefix("filter ")?
                .strip_suffix(" is unknown")?;
            let cookiecutter = (syntax == Syntax::Cookiecutter).then_some("jsonify");
            let candidates = nunjucks::FILTERS
                .iter()
                .copied()
                .chain(cookiecutter)
                .chain(BACKSTAGE_FILTERS);
            let what = unknown_name("template filter", name, candidates);
            (what, name.to_owned(), false)
        }
        ErrorKind::UnknownTest => {
            let name = detail.strip_prefix("test ")?.strip_suffix(" is unknown")?;
            let candidates = nunjucks::TESTS.iter().map(|(name, _)| *name);
            let what = unknown_name("template test", name, candidates);
            (what, name.to_owned(), true)
        }
        _ => {
            let (name, is_test) = if let Some(n) = quoted_name("Filter \"") {
                (n, false)
            } else if let Some(n) = quoted_name("Template filter \"") {
                (n, false)
            } else if let Some(n) = quoted_name("Test \"") {
                (n, true)
            } else {
                return None;
            };
            (detail.to_owned(), name, is_test)
        }
    };
    let line = err.line()?;
    let text = source.split('\n').nth(line.checked_sub(1)?)?;
    let column = name_column(text, &name, is_test).unwrap_or(1);
    Some(format!(
        "Template error at line {line}, column {column}: {what}"
    ))
}

/// The 1-based column (in UTF-16 units) of the first `| name` (or `is [not] name` for a test)
/// on a line, as nunjitsu reports the name token of the filter or test that failed.
fn name_column(line: &str, name: &str, is_test: bool) -> Option<usize> {
    let is_ident = |c: char| c.is_alphanumeric() || c == '_' || c == '$';
    let mut from = 0;
    while let Some(found) = line[from..].find(name) {
        let at = from + found;
        from = at + name.len();
        let after_ok = !line[at + name.len()..].starts_with(is_ident);
        let before = line[..at].trim_end();
        let before_ok = if is_test {
            let before = before.strip_suffix("not").map_or(before, str::trim_end);
            before.ends_with("is") && !before[..before.len() - 2].ends_with(is_ident)
        } else {
            before.ends_with('|') && !before.ends_with("||")
        };
        if after_ok && before_ok {
            return Some(line[..at].encode_utf16().count() + 1);
        }
    }
    None
}

/// `Unknown <description> "<name>"`, with `; did you mean "<closest>"?` when a candidate is
/// within nunjitsu's edit distance (1 for names up to 4 characters, 2 up to 10, else 3).
fn unknown_name<'a>(
    description: &str,
    name: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> String {
    let quoted = |s: &str| nunjucks::stringify_value(&Value::from(s)).unwrap_or_default();
    let length = name.encode_utf16().count();
    let maximum = match length {
        0..=4 => 1,
        5..=10 => 2,
        _ => 3,
    };
    let mut closest: Option<(&str, usize)> = None;
    if (1..=64).contains(&length) {
        for candidate in candidates.take(256) {
            let candidate_length = candidate.encode_utf16().count();
            if candidate == name
                || candidate.is_empty()
                || candidate_length.abs_diff(length) > maximum
            {
                continue;
            }
            let distance = edit_distance(name, candidate);
            if distance <= maximum && closest.is_none_or(|(_, best)| distance < best) {
                closest = Some((candidate, distance));
            }
        }
    }
    let suggestion = closest
        .map(|(c, _)| format!("; did you mean {}?", quoted(c)))
        .unwrap_or_default();
    format!("Unknown {description} {}{suggestion}", quoted(name))
}

/// Optimal string alignment distance (adjacent transpositions count 1), over UTF-16 units.
fn edit_distance(left: &str, right: &str) -> usize {
    let a: Vec<u16> = left.encode_utf16().collect();
    let b: Vec<u16> = right.encode_utf16().collect();
    let mut before: Option<Vec<usize>> = None;
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut current = vec![i];
        for j in 1..=b.len() {
            let substitution = previous[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            let mut distance = (previous[j] + 1).min(current[j - 1] + 1).min(substitution);
            if let Some(before) = &before
                && i > 1
                && j > 1
                && a[i - 1] == b[j - 2]
                && a[i - 2] == b[j - 1]
            {
                distance = distance.min(before[j - 2] + 1);
            }
            current.push(distance);
        }
        before = Some(previous);
        previous = current;
    }
    previous[b.len()]
}

/// Runs a registered filter as nunjitsu does: keyword arguments are refused, a failure
/// becomes `Template filter "<name>" failed: <message>`.
fn host_filter(
    name: &str,
    args: &[ValueOrKwargs],
    run: impl FnOnce() -> Result<Value, String>,
) -> Result<Value, Error> {
    if args.iter().any(|a| a.is_kwargs()) {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("Registered filter {name} accepts only positional arguments"),
        ));
    }
    run().map_err(|message| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("Template filter \"{name}\" failed: {message}"),
        )
    })
}

/// The query parameters `parseRepoUrl` reads, in the order of its result.
const REPO_PARAMS: [&str; 5] = ["owner", "repo", "organization", "workspace", "project"];

/// `parseRepoUrl` (`@backstage/plugin-scaffolder-node`): `github.com?owner=o&repo=r` read as
/// `new URL("https://" + url)`, its host (lower-case, with a port unless 443) matched against
/// the configured SCM hosts, the query parameters the host's kind requires checked. The
/// result has `host`, then `owner`, `repo`, `organization`, `workspace`, `project` when given
/// (`+` and `%XX` decoded, `/` trimmed from both ends).
pub fn parse_repo_url(
    url: &str,
    integrations: &[ScmIntegration],
) -> Result<Map<String, Json>, String> {
    let parsed = ParsedUrl::parse(url).ok_or_else(|| {
        format!("Invalid repo URL passed to publisher, got {url}, TypeError: Invalid URL")
    })?;
    let Some(integration) = integrations.iter().find(|i| i.host == parsed.host) else {
        return Err(format!(
            "No matching integration configuration for host {}, please check your integrations config",
            parsed.host
        ));
    };
    let mut out = Map::new();
    out.insert("host".into(), Json::String(parsed.host.clone()));
    for param in REPO_PARAMS {
        if let Some(value) = parsed.param(param) {
            out.insert(
                param.into(),
                Json::String(value.trim_matches('/').to_owned()),
            );
        }
    }
    let has_project = out
        .get("project")
        .and_then(Json::as_str)
        .is_some_and(|p| !p.is_empty());
    let required: &[&str] = match integration.kind {
        ScmKind::BitbucketCloud => &["workspace", "project", "repo"],
        ScmKind::BitbucketServer | ScmKind::Azure => &["project", "repo"],
        ScmKind::Gitlab if has_project => &[],
        ScmKind::Gitlab => &["owner", "repo"],
        ScmKind::Gitea | ScmKind::Gerrit => &["repo"],
        ScmKind::Github => &["repo", "owner"],
    };
    for param in required {
        if parsed.param(param).is_none_or(|v| v.is_empty()) {
            return Err(format!(
                "Invalid repo URL passed to publisher: {}, missing {param}",
                parsed.href()
            ));
        }
    }
    Ok(out)
}

/// The parts of `new URL("https://" + text)` that `parseRepoUrl` uses.
struct ParsedUrl {
    host: String,
    path: String,
    query: Option<String>,
}

impl ParsedUrl {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim_matches(|c: char| c <= ' ');
        let text: String = text
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect();
        let end = text.find(['/', '\\', '?', '#']).unwrap_or(text.len());
        let (authority, rest) = text.split_at(end);
        let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (hostname, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(']') || h.ends_with(']') => (h, Some(p)),
            _ => (authority, None),
        };
        let hostname = percent_decode(hostname, false).to_lowercase();
        if hostname.is_empty()
            || hostname
                .chars()
                .any(|c| c <= ' ' || "#%/:<>?@[\\]^|".contains(c) || c == '\u{7f}')
        {
            return None;
        }
        let host = match port {
            None | Some("") | Some("443") => hostname,
            Some(p) if p.chars().all(|c| c.is_ascii_digit()) => {
                let n: u32 = p.parse().ok().filter(|n| *n <= 65535)?;
                if n == 443 {
                    hostname
                } else {
                    format!("{hostname}:{n}")
                }
            }
            Some(_) => return None,
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (rest, None),
        };
        let path = if path.is_empty() {
            "/".to_owned()
        } else {
            path.replace('\\', "/")
        };
        Some(Self { host, path, query })
    }

    /// `searchParams.get(name)`: the first value, `+` and `%XX` decoded.
    fn param(&self, name: &str) -> Option<String> {
        self.query.as_deref()?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(key, true) == name).then(|| percent_decode(value, true))
        })
    }

    /// `url.toString()`, with the characters the URL parser escapes escaped.
    fn href(&self) -> String {
        let escape = |s: &str| {
            s.chars()
                .map(|c| match c {
                    ' ' => "%20".to_owned(),
                    '"' => "%22".to_owned(),
                    '<' => "%3C".to_owned(),
                    '>' => "%3E".to_owned(),
                    '\'' => "%27".to_owned(),
                    c if c.is_ascii() => c.to_string(),
                    c => {
                        let mut buf = [0; 4];
                        c.encode_utf8(&mut buf)
                            .bytes()
                            .map(|b| format!("%{b:02X}"))
                            .collect()
                    }
                })
                .collect::<String>()
        };
        let query = self
            .query
            .as_deref()
            .map(|q| format!("?{}", escape(q)))
            .unwrap_or_default();
        format!("https://{}{}{query}", self.host, escape(&self.path))
    }
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) if plus_is_space => {
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

/// `parseEntityRef` (`@backstage/catalog-model`) on a string reference:
/// `[<kind>:][<namespace>/]<name>`, with defaults for the missing parts.
pub fn parse_entity_ref(
    reference: &str,
    default_kind: Option<&str>,
    default_namespace: Option<&str>,
) -> Result<Map<String, Json>, String> {
    let mut context = Vec::new();
    if let Some(kind) = default_kind {
        context.push(("defaultKind", Value::from(kind)));
    }
    if let Some(namespace) = default_namespace {
        context.push(("defaultNamespace", Value::from(namespace)));
    }
    let context = if context.is_empty() {
        Value::UNDEFINED
    } else {
        Value::from_pairs(context)
    };
    let value = parse_entity_ref_value(&Value::from(reference), &context)?;
    match serde_json::to_value(&value) {
        Ok(Json::Object(map)) => Ok(map),
        _ => Err("Entity reference could not be parsed".into()),
    }
}

/// `parseEntityRef(ref, context)` on any template value: a string is parsed, anything else
/// is read as `{ kind, namespace, name }`; parts keep their types and case.
fn parse_entity_ref_value(reference: &Value, context: &Value) -> Result<Value, String> {
    if !truthy(reference) {
        return Err("Entity reference must not be empty".into());
    }
    let context_get = |key: &str| -> Value {
        if context.kind() == ValueKind::Map {
            context.get_attr(key).unwrap_or_default()
        } else {
            Value::UNDEFINED
        }
    };
    let nullish = |v: &Value| v.is_undefined() || v.is_none();
    let default_kind = context_get("defaultKind");
    let default_namespace = match context_get("defaultNamespace") {
        v if truthy(&v) => v,
        _ => Value::from("default"),
    };
    let (kind, namespace, name) = if let Some(text) = reference.as_str() {
        let (kind, namespace, name) = parse_ref_string(text)?;
        (
            kind.map(Value::from).unwrap_or(default_kind),
            namespace.map(Value::from).unwrap_or(default_namespace),
            Value::from(name),
        )
    } else {
        let field = |key: &str| {
            if reference.kind() == ValueKind::Map {
                reference.get_attr(key).unwrap_or_default()
            } else {
                Value::UNDEFINED
            }
        };
        let (kind, namespace) = (field("kind"), field("namespace"));
        (
            if nullish(&kind) { default_kind } else { kind },
            if nullish(&namespace) {
                default_namespace
            } else {
                namespace
            },
            field("name"),
        )
    };
    let textual = || nunjucks::stringify_value(reference).unwrap_or_else(|| "undefined".to_owned());
    if !truthy(&kind) {
        return Err(format!(
            "Entity reference {} had missing or empty kind (e.g. did not start with \"component:\" or similar)",
            textual()
        ));
    }
    if !truthy(&namespace) {
        return Err(format!(
            "Entity reference {} had missing or empty namespace",
            textual()
        ));
    }
    if !truthy(&name) {
        return Err(format!(
            "Entity reference {} had missing or empty name",
            textual()
        ));
    }
    Ok(Value::from_pairs([
        ("kind", kind),
        ("namespace", namespace),
        ("name", name),
    ]))
}

/// `parseRefString`: the kind before the first `:` (unless a `/` comes first), the namespace
/// before the first `/`, the rest the name; an empty part is an error.
fn parse_ref_string(reference: &str) -> Result<(Option<&str>, Option<&str>, &str), String> {
    let slash = reference.find('/');
    let colon = reference
        .find(':')
        .filter(|c| slash.is_none_or(|s| s >= *c));
    let kind = colon.map(|c| &reference[..c]);
    let after_colon = colon.map_or(0, |c| c + 1);
    let namespace = slash.map(|s| reference.get(after_colon..s).unwrap_or_default());
    let name_start = after_colon.max(slash.map_or(0, |s| s + 1));
    let name = &reference[name_start..];
    if kind == Some("") || namespace == Some("") || name.is_empty() {
        return Err(format!(
            "Entity reference \"{reference}\" was not on the form [<kind>:][<namespace>/]<name>"
        ));
    }
    Ok((kind, namespace, name))
}

/// lodash's `get(object, path, default)`, as Backstage's `pick` filter.
fn lodash_get(object: &Value, path: &Value, default: &Value) -> Value {
    let result = if object.is_undefined() || object.is_none() {
        Value::UNDEFINED
    } else {
        let segments = cast_path(path, object);
        let mut current = object.clone();
        let mut walked = 0;
        for segment in &segments {
            if current.is_undefined() || current.is_none() {
                break;
            }
            current = property(&current, segment);
            walked += 1;
        }
        if walked > 0 && walked == segments.len() {
            current
        } else {
            Value::UNDEFINED
        }
    };
    if result.is_undefined() {
        default.clone()
    } else {
        result
    }
}

/// lodash's `castPath`: an array is the path, a plain key or a key present on the object is
/// one segment, anything else is split by `stringToPath`.
fn cast_path(path: &Value, object: &Value) -> Vec<String> {
    if matches!(path.kind(), ValueKind::Seq | ValueKind::Iterable) {
        return path
            .try_iter()
            .map(|items| {
                items
                    .map(|v| to_js_string(&v).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default();
    }
    let key = to_js_string(path).unwrap_or_default();
    if !matches!(path.kind(), ValueKind::String | ValueKind::Undefined)
        || key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || !is_deep_prop(&key)
        || !property(object, &key).is_undefined()
    {
        return vec![key];
    }
    string_to_path(&key)
}

/// lodash's `reIsDeepProp`: a `.` or a `[…]` member.
fn is_deep_prop(key: &str) -> bool {
    key.contains('.') || (key.contains('[') && key[key.find('[').unwrap_or(0)..].contains(']'))
}

/// lodash's `stringToPath`.
fn string_to_path(path: &str) -> Vec<String> {
    let chars: Vec<char> = path.chars().collect();
    let mut out = Vec::new();
    if chars.first() == Some(&'.') {
        out.push(String::new());
    }
    let at = |i: usize, s: &str| {
        let c: Vec<char> = s.chars().collect();
        chars.get(i..i + c.len()).is_some_and(|w| w == c.as_slice())
    };
    let mut i = 0;
    while i <= chars.len() {
        // `[^.[\]]+`
        let start = i;
        while i < chars.len() && !matches!(chars[i], '.' | '[' | ']') {
            i += 1;
        }
        if i > start {
            out.push(chars[start..i].iter().collect());
            continue;
        }
        // `\[(?:(-?\d+(?:\.\d+)?)|(["'])((?:(?!\2)[^\\]|\\.)*?)\2)\]`
        if chars.get(i) == Some(&'[')
            && let Some((segment, len)) = bracket_member(&chars[i..])
        {
            out.push(segment);
            i += len;
            continue;
        }
        // `(?=(?:\.|\[\])(?:\.|\[\]|$))`: an empty segment.
        let first = if at(i, ".") {
            Some(1)
        } else if at(i, "[]") {
            Some(2)
        } else {
            None
        };
        if let Some(len) = first
            && (i + len == chars.len() || at(i + len, ".") || at(i + len, "[]"))
        {
            out.push(String::new());
        }
        i += 1;
    }
    out
}

fn bracket_member(chars: &[char]) -> Option<(String, usize)> {
    let mut i = 1;
    // A number.
    let start = i;
    if chars.get(i) == Some(&'-') {
        i += 1;
    }
    let digits = i;
    while chars.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    if i > digits {
        if chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
            i += 1;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
        }
        if chars.get(i) == Some(&']') {
            return Some((chars[start..i].iter().collect(), i + 1));
        }
    }
    // A quoted string, with backslash escapes.
    let quote = *chars.get(1).filter(|c| matches!(c, '"' | '\''))?;
    let mut segment = String::new();
    let mut i = 2;
    while let Some(&c) = chars.get(i) {
        if c == '\\' {
            segment.push(*chars.get(i + 1)?);
            i += 2;
            continue;
        }
        if c == quote && chars.get(i + 1) == Some(&']') {
            return Some((segment, i + 2));
        }
        segment.push(c);
        i += 1;
    }
    None
}

/// `object[key]` for the values templates hold: a record's own key, an array's or a
/// string's index or `length`.
fn property(value: &Value, key: &str) -> Value {
    match value.kind() {
        ValueKind::Map => value.get_attr(key).unwrap_or_default(),
        ValueKind::Seq | ValueKind::Iterable | ValueKind::String => {
            let len = if value.kind() == ValueKind::String {
                value.as_str().unwrap_or_default().encode_utf16().count()
            } else {
                value.len().unwrap_or(0)
            };
            if key == "length" {
                return Value::from(len);
            }
            match key.parse::<usize>() {
                Ok(i) if i.to_string() == key && i < len => {
                    if let Some(s) = value.as_str() {
                        let unit: Vec<u16> = s.encode_utf16().skip(i).take(1).collect();
                        Value::from(String::from_utf16_lossy(&unit))
                    } else {
                        value.get_item(&Value::from(i)).unwrap_or_default()
                    }
                }
                _ => Value::UNDEFINED,
            }
        }
        _ => Value::UNDEFINED,
    }
}

#[cfg(test)]
mod tests;
